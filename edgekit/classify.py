"""Recording -> scores per window, for waveform and log-mel models alike.

Both kinds produce windows at the same start times (0, hop, 2·hop, ...) over the same
zero-padded waveform, so results from ``yamnet.tflite`` and ``yamnet_spectra_in.tflite`` can be
compared window by window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgekit.errors import ConfigError, UnsupportedModelError
from edgekit.frontend import reference
from edgekit.models.model import LOGMEL, WAVEFORM, Model
from edgekit.params import FeatureParams

FRONTENDS = ("float", "fixed")


@dataclass(frozen=True)
class Window:
    start: float  # seconds from the start of the recording
    end: float
    scores: np.ndarray  # [classes] float32

    def top(self, k: int) -> list[tuple[int, float]]:
        idx = np.argsort(-self.scores, kind="stable")[:k]
        return [(int(i), float(self.scores[i])) for i in idx]


def classify_pcm(model: Model, pcm16: np.ndarray, params: FeatureParams | None = None,
                 frontend: str | None = None) -> list[Window]:
    """16 kHz int16 mono -> one :class:`Window` per patch hop."""
    params = params or model.params
    if frontend is not None and frontend not in FRONTENDS:
        raise ConfigError(f"unknown front end {frontend!r}: use float or fixed")
    pcm16 = np.asarray(pcm16, dtype=np.int16)
    length = params.patch_samples / params.sample_rate_hz
    hop = params.patch_hop_samples / params.sample_rate_hz
    if model.kind == WAVEFORM:
        if frontend is not None:
            raise ConfigError(
                f"{model.path.name} computes its own features from the waveform; --frontend applies "
                "to log-mel models such as yamnet_spectra_in.tflite"
            )
        padded = reference.to_float(reference.pad_waveform(pcm16, params)).astype(np.float32)
        frames = reference.frame(padded, params.patch_samples, params.patch_hop_samples)
        scores = [model.run(w) for w in frames]
    elif model.kind == LOGMEL:
        if (frontend or "float") == "fixed":
            from edgekit.frontend.fixed import FixedFrontend

            if model.input_quant is None:
                raise ConfigError("--frontend fixed needs a model with a quantised log-mel input")
            codes = FixedFrontend(model.input_quant, params).waveform_to_codes(pcm16)
            scores = [model.run_codes(c) for c in codes]
        else:
            scores = [model.run(p) for p in reference.waveform_to_patches(pcm16, params)]
    else:
        raise UnsupportedModelError(
            f"{model.path.name} is an {model.kind} model; `edgekit classify` takes audio models "
            "(YAMNet waveform or log-mel)"
        )
    return [Window(i * hop, i * hop + length, s) for i, s in enumerate(scores)]
