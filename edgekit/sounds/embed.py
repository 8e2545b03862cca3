"""Embeddings of whole recordings, for learning and testing sounds.

Training needs, for a recording, the windows at a given hop with YAMNet's scores and its 1024-d
embedding. :class:`Embedder` runs the model rewritten by :mod:`edgekit.models.embedding` over the
same streaming front end the daemon uses, so a head sees at training time exactly the features it
will see live.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UnsupportedModelError
from ..frontend.stream import StreamingFrontend, StreamingWindows
from ..graph import read_graph, read_graph_file
from ..labels import embedded_labels, find_sidecar_labels, load_labels
from ..model import LOGMEL, WAVEFORM, edgetpu_twin, input_kind, logmel_quant
from ..models.embedding import classifier_weights, with_embedding_output
from ..params import FeatureParams
from ..paths import resolve_model
from ..runtime import make_interpreter, probe


@dataclass(frozen=True)
class Embedded:
    starts: np.ndarray  # [n] seconds at each window's first sample
    scores: np.ndarray  # [n, classes] float32
    embeddings: np.ndarray  # [n, dims] float32

    def __len__(self) -> int:
        return len(self.starts)

    @staticmethod
    def concat(parts: list["Embedded"]) -> "Embedded":
        return Embedded(np.concatenate([p.starts for p in parts]), np.concatenate([p.scores for p in parts]),
                        np.concatenate([p.embeddings for p in parts]))


class Embedder:
    """A model on the CPU with its embedding as a second output; ``embed(pcm, hop)`` per recording."""

    def __init__(self, spec: str | Path = "yamnet", frontend: str = "fixed", params: FeatureParams = FeatureParams()):
        self.path = resolve_model(spec)
        self.note = ""
        graph, data = read_graph_file(self.path)
        if graph.is_edgetpu:
            # The embedding is inside the compiled Edge TPU op; the CPU model it came from has it.
            twin = edgetpu_twin(self.path)
            if twin is None:
                raise UnsupportedModelError(
                    f"{self.path.name} is compiled for the Edge TPU, whose op hides the embedding; custom sounds "
                    "need its CPU model beside it (e.g. yamnet_spectra_in.tflite)")
            self.note = f"custom sounds run on the CPU body {twin.name}, not on the Edge TPU model {self.path.name}"
            self.path = twin
            graph, data = read_graph_file(self.path)
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.kind = input_kind(graph, params)
        if self.kind not in (WAVEFORM, LOGMEL):
            raise UnsupportedModelError(f"{self.path.name} is an {self.kind} model, not an audio model")
        rewritten = with_embedding_output(data, str(self.path))
        self._data = rewritten
        probe(rewritten, str(self.path))
        self.interpreter = make_interpreter(rewritten, "cpu", source=str(self.path)).interpreter
        self.params = params
        self.quant = logmel_quant(graph) if self.kind == LOGMEL else None
        self.frontend = "graph" if self.kind == WAVEFORM else ("fixed" if frontend == "fixed" and self.quant else "float")
        self._in = self.interpreter.get_input_details()[0]
        self._scores, self._emb = self.interpreter.get_output_details()[:2]
        labels = embedded_labels(read_graph(data), data)
        if labels is None and (sidecar := find_sidecar_labels(self.path)):
            labels = load_labels(sidecar)
        self.labels = labels

    def scores_from_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        """The model's scores recomputed from embeddings by its own final layer (within a rounding)."""
        if not hasattr(self, "_classifier"):
            self._classifier = classifier_weights(self._data)
        w, b = self._classifier
        z = np.asarray(embeddings, np.float64) @ w.T + b
        return np.exp(-np.logaddexp(0.0, -z)).astype(np.float32)

    @property
    def dims(self) -> int:
        return int(np.prod(self._emb["shape"]))

    def _stream(self, hop: float):
        params = self.params.with_hop(hop)
        if self.kind == WAVEFORM:
            return StreamingWindows(params)
        return StreamingFrontend.fixed(self.quant, params) if self.frontend == "fixed" else StreamingFrontend.float(params)

    def _output(self, detail) -> np.ndarray:
        raw = self.interpreter.get_tensor(detail["index"]).reshape(-1)
        scale, zp = detail["quantization"]
        if raw.dtype in (np.int8, np.uint8) and scale:
            return ((raw.astype(np.int32) - zp) * np.float32(scale)).astype(np.float32)
        return raw.astype(np.float32)

    def embed(self, pcm: np.ndarray, hop: float) -> Embedded:
        """Every window of ``pcm`` (int16, 16 kHz) at ``hop`` seconds, the tail padded like a clip."""
        stream = self._stream(hop)
        patches = stream.push(np.asarray(pcm, np.int16)) + stream.flush()
        rate = self.params.sample_rate_hz
        starts, scores, embs = [], [], []
        for p in patches:
            x = p.features
            if self.kind == WAVEFORM:
                x = x.astype(np.float32) / 32768.0
            elif x.dtype == np.int8:
                q = self.quant
                x = ((x.astype(np.int32) - q.zero_point) * np.float32(q.scale)).astype(np.float32)
            self.interpreter.set_tensor(self._in["index"], x.reshape(self._in["shape"]).astype(self._in["dtype"]))
            self.interpreter.invoke()
            starts.append(p.start_sample / rate)
            scores.append(self._output(self._scores))
            embs.append(self._output(self._emb))
        n = len(starts)
        return Embedded(np.asarray(starts, np.float64),
                        np.asarray(scores, np.float32).reshape(n, -1),
                        np.asarray(embs, np.float32).reshape(n, -1))
