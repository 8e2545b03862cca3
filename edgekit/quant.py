"""int8 quantisation of a model's input, shared by the front end (which produces codes) and the model
(which consumes them): real = (code - zero_point) * scale, as TFLite defines it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class InputQuant:
    """int8 input quantisation of a model: real = (code - zero_point) * scale."""

    scale: float
    zero_point: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"input scale must be a positive finite number, not {self.scale!r}")
        if not -128 <= self.zero_point <= 127:
            raise ValueError(f"int8 zero point must lie in [-128, 127], not {self.zero_point!r}")


def quantise(log_mel: np.ndarray, quant: InputQuant) -> np.ndarray:
    """Float log-mel -> int8 codes exactly as TFLite's QUANTIZE does it (float32 division,
    round half away from zero, clamp)."""
    scaled = np.asarray(log_mel, dtype=np.float32) / np.float32(quant.scale)
    whole = np.trunc(scaled)
    # np.round rounds ties to even; TFLite's std::round takes them away from zero.
    rounded = np.where(np.abs(scaled - whole) == 0.5, whole + np.sign(scaled), np.round(scaled))
    return np.clip(rounded + quant.zero_point, -128, 127).astype(np.int8)


def dequantise(codes: np.ndarray, quant: InputQuant) -> np.ndarray:
    """int8 codes -> float32 (code - zero_point) * scale."""
    return (np.asarray(codes, dtype=np.float32) - quant.zero_point) * np.float32(quant.scale)
