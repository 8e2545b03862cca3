"""Embeddings of whole recordings, for learning and testing sounds.

Training needs, for a recording, its windows at a given hop with YAMNet's scores and its 1024-d
embedding. :class:`Embedder` is a model loaded with ``embedding=True`` run through
:mod:`edgekit.listen`, the path the daemon listens with, so a head sees at training time exactly
the features it will see live.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import FallbackWarning
from ..listen import IN_GRAPH, listen_pcm
from ..models.embedding import classifier_weights, embedding_tensor, with_embedding_output
from ..models.model import WAVEFORM, load_model
from ..params import FeatureParams
from ..detect.heads import file_sha256


@dataclass(frozen=True)
class Embedded:
    starts: np.ndarray  # [n] seconds at each window's first sample
    scores: np.ndarray  # [n, classes] float32
    embeddings: np.ndarray  # [n, dims] float32

    def __len__(self) -> int:
        return len(self.starts)


class Embedder:
    """A model on the CPU with its embedding as a second output; ``embed(pcm, hop)`` per recording.

    An Edge TPU model is replaced by its CPU twin (the compiled op hides the embedding);
    :attr:`note` then says so.
    """

    def __init__(self, spec: str | Path = "yamnet", frontend: str = "fixed", params: FeatureParams = FeatureParams()):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", FallbackWarning)
            self.model = load_model(spec, "cpu", params=params, embedding=True)
        self.note = "; ".join(str(w.message) for w in caught if issubclass(w.category, FallbackWarning))
        self.path = self.model.path
        self.sha256 = file_sha256(self.path)
        self.labels = self.model.labels
        self.params = params
        if self.model.kind == WAVEFORM:
            self.frontend, self._listen_frontend = IN_GRAPH, None
        else:
            self.frontend = "fixed" if frontend == "fixed" and self.model.input_quant is not None else "float"
            self._listen_frontend = self.frontend

    @property
    def dims(self) -> int:
        graph = self.model.graph
        return graph.tensors[embedding_tensor(graph)].elements

    def scores_from_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        """The model's scores recomputed from embeddings by its own final layer (within a rounding)."""
        if not hasattr(self, "_classifier"):
            self._classifier = classifier_weights(with_embedding_output(self.path.read_bytes(), str(self.path)))
        w, b = self._classifier
        z = np.asarray(embeddings, np.float64) @ w.T + b
        return np.exp(-np.logaddexp(0.0, -z)).astype(np.float32)

    def embed(self, pcm: np.ndarray, hop: float) -> Embedded:
        """Every window of ``pcm`` (int16, 16 kHz) at ``hop`` seconds, the tail padded like a clip."""
        results = listen_pcm(self.model, pcm, frontend=self._listen_frontend, embedding=True,
                             params=self.params.with_hop(hop))
        n = len(results)
        return Embedded(np.asarray([r.start for r in results], np.float64),
                        np.asarray([r.scores for r in results], np.float32).reshape(n, -1),
                        np.asarray([r.embedding for r in results], np.float32).reshape(n, -1))
