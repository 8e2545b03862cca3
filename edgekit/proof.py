"""Window-by-window comparison of edgekit's path with Google's official YAMNet.

Used by the tests and by ``benchmarks/proof.py``: both feed the same 16 kHz int16 samples to
(a) the official ``yamnet.tflite``, whose in-graph log-mel tensor is read out, and (b) edgekit's
front end, then compare the scores of Coral's ``yamnet_spectra_in.tflite`` body on each.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgekit.frontend import reference
from edgekit.models.model import Model
from edgekit.params import FeatureParams

OFFICIAL_LOGMEL_TENSOR = "log_mel_spectrogram"


@dataclass(frozen=True)
class Agreement:
    windows: int
    top1_agree: int
    mean_abs_delta: float  # mean |Δscore| over all windows and classes
    max_logmel_delta: float | None = None
    mean_logmel_delta: float | None = None

    @property
    def top1_rate(self) -> float:
        return self.top1_agree / self.windows if self.windows else float("nan")


def official_logmel(official: Model, pcm16: np.ndarray, params: FeatureParams = FeatureParams()):
    """[windows, 96, 64] log-mel computed inside yamnet.tflite, plus its scores per window.

    ``official`` must be loaded with all tensors preserved (see :func:`load_official`).
    """
    it = official.interpreter
    idx = next(d["index"] for d in it.get_tensor_details() if d["name"] == OFFICIAL_LOGMEL_TENSOR)
    padded = reference.to_float(reference.pad_waveform(pcm16, params)).astype(np.float32)
    windows = reference.frame(padded, params.patch_samples, params.patch_hop_samples)
    feats, scores = [], []
    for w in windows:
        scores.append(official.run(w))
        feats.append(it.get_tensor(idx).reshape(params.patch_frames, params.mel_bands).copy())
    return np.stack(feats), np.stack(scores)


def load_official(path) -> Model:
    from edgekit.models.tflite import read_graph_file
    from edgekit.models.labels import embedded_labels
    from edgekit.models.runtime import make_interpreter

    graph, data = read_graph_file(path)
    loaded = make_interpreter(data, "cpu", preserve_all_tensors=True)
    from pathlib import Path

    return Model(Path(path), graph, loaded, embedded_labels(graph, data))


def compare(a: np.ndarray, b: np.ndarray) -> tuple[int, float]:
    """Top-1 agreements and mean |Δ| between two [windows, classes] score arrays."""
    return int(np.sum(a.argmax(1) == b.argmax(1))), float(np.mean(np.abs(a - b)))
