"""Fixed-point YAMNet log-mel front end: int16 PCM in, the model's int8 codes out.

The mel spectrum is :class:`.spectrum.MelSpectrum` (exact integers, shared with the float
path; its docstring proves the bounds); this module adds the log and the quantisation in
integers. Nothing that decides a code depends on platform float rounding: the same bytes on
every machine (x86, ARM) and for any batching of the frames.

Number formats after the mel sums (``F`` frames; ``mel * 2**(e - 65)`` is the band's value)::

    mel_q32   y = round(mel * 2**(e - 33)) + round(0.001 * 2**32): mel + 0.001 in Q32, the
              per-frame exponent resolved (e <= 24, so a right shift of 9..33 bits); 2**22 <=
              y < 2**45 (a band is at most 8.95 * 201 < 2**11)                   [F, 64]
    log       log2(y) = msb + table(next 7 bits), linearly interpolated on the remaining 23,
              in Q24 (table error < 2e-5)                                        [F, 64]
    codes     log2 * (ln 2 / scale) with a 31-bit multiplier (product < 2**59), shifted with
              round half away from zero (as TFLite's QUANTIZE), + zero_point, clamped to int8

The spectrum is within 0.0082 of the exact log(mel + 0.001) and the log within 2e-5, so every
code is within one step of the exact log-mel quantised, for every input (the tests check it
against an independent float64 FFT on every shared recording).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from ..params import FeatureParams
from . import reference, tables
from .spectrum import MelSpectrum

_INT = np.int64

_MEL_Q = 32  # common fixed format the per-frame exponents are resolved into before the log
_LOG_TABLE_BITS = 7
_LOG_Q = 24
_MULT_BITS = 31


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


def _msb(x: np.ndarray) -> np.ndarray:
    """Index of the highest set bit of each int64 0 < x < 2**62."""
    # float64(x) is correctly rounded, so its exponent is msb or msb + 1 (rounded up to the
    # next power of two); the integer test takes the + 1 back.
    guess = np.frexp(x.astype(np.float64))[1].astype(_INT) - 1
    return guess - ((x >> guess) == 0)


def _round_right(x: np.ndarray, right: np.ndarray) -> np.ndarray:
    """x * 2**-right rounded half up, for right >= 1 (broadcasts)."""
    return (x + (_INT(1) << (right - 1))) >> right


class FixedFrontend:
    """int16 frames -> int8 log-mel codes in a model's input quantisation, integers only."""

    def __init__(self, quant: InputQuant, params: FeatureParams = FeatureParams()) -> None:
        self.quant = quant
        self.params = params
        self._spectrum = MelSpectrum(params)
        self._offset = _INT(tables.fixed_from_float(params.log_offset, _MEL_Q))
        self._log2_table = tables.log2_table(_LOG_TABLE_BITS, _LOG_Q)  # [129]
        # ln(y) / scale = log2(y) * (ln 2 / scale): a 31-bit multiplier and a right shift.
        mult, shift = tables.multiplier(Decimal(2).ln() / Decimal(quant.scale), _MULT_BITS)
        self._out_mult, self._out_shift = _INT(mult), shift + _LOG_Q
        if not 1 <= self._out_shift <= 62:
            raise ValueError(f"input scale {quant.scale} is outside what the fixed path supports")

    def constants(self) -> dict[str, np.ndarray]:
        """The integer tables the per-frame path uses (compared across machines by
        benchmarks/arm64)."""
        t = self._spectrum.tables
        return {
            "dft_cos_q30": t["fold_cos"],
            "dft_sin_q30": t["fold_sin"],
            "dft_columns": t["columns"],
            "bin_order": t["bin_order"],
            "mel_q20": t["mel"],
            "log2_table_q24": self._log2_table,
            "offset_q32": np.array([self._offset]),
            "out_mult_shift": np.array([self._out_mult, self._out_shift], dtype=_INT),
        }

    def frames_to_codes(self, frames: np.ndarray) -> np.ndarray:
        """[F, 400] int16 -> [F, 64] int8. Frames are independent: any batching, same bytes."""
        return self.stages(frames, keep=False)["codes"]

    def waveform_to_codes(self, pcm16: np.ndarray) -> np.ndarray:
        """[n] int16 -> [patches, 96, 64] int8, padded and patched as the float path."""
        x = _check_int16(pcm16, ndim=1)
        p = self.params
        frames = reference.frame(reference.pad_waveform(x, p), p.window_samples, p.hop_samples)
        return reference.patch_frames(self.frames_to_codes(frames), p)

    def stages(self, frames: np.ndarray, keep: bool = True) -> dict[str, np.ndarray]:
        """Every intermediate of ``frames_to_codes``, for tests and debugging (``keep``)."""
        x = _check_int16(frames, ndim=2)
        if x.shape[1] != self.params.window_samples:
            raise ValueError(f"frames must be [F, {self.params.window_samples}], not {list(x.shape)}")
        out = self._spectrum.stages(x, keep=keep)
        mel, exponent = out["mel"].astype(_INT), out["exponent"]  # exact integers < 2**53
        right = (self._spectrum.scale_bits - _MEL_Q - exponent)[:, None]  # [F, 1], 9..33
        y = _round_right(mel, right) + self._offset  # [F, 64], mel + 0.001 in Q32
        log2 = self._log2(y) - (_MEL_Q << _LOG_Q)  # [F, 64], log2(mel + 0.001) in Q24
        prod = log2 * self._out_mult  # |log2| < 2**28, mult < 2**31: |prod| < 2**59
        half = _INT(1) << (self._out_shift - 1)
        rounded = np.sign(prod) * ((np.abs(prod) + half) >> self._out_shift)  # half away from 0
        out["codes"] = np.clip(rounded + self.quant.zero_point, -128, 127).astype(np.int8)
        if keep:
            out.update(mel_q32=y, log2_q24=log2)
        return out

    def _log2(self, y: np.ndarray) -> np.ndarray:
        """log2(y) in Q24 for 2**22 <= y < 2**62: msb, a 128-entry table on the next bits, interpolated."""
        msb = _msb(y)
        z = _round_right(y << 9, msb - 21)  # y * 2**(30 - msb), the mantissa in [2**30, 2**31]; rounding may carry to 2**31
        carry = z >> 31
        msb, z = msb + carry, z >> carry
        frac = z - (_INT(1) << 30)  # Q30 in [0, 1)
        low_bits = 30 - _LOG_TABLE_BITS
        idx, rest = frac >> low_bits, frac & ((_INT(1) << low_bits) - 1)
        lo, hi = self._log2_table[idx], self._log2_table[idx + 1]
        interp = ((hi - lo) * rest + (_INT(1) << (low_bits - 1))) >> low_bits
        return (msb << _LOG_Q) + lo + interp


def _check_int16(a, ndim: int) -> np.ndarray:
    if not isinstance(a, np.ndarray) or a.dtype != np.int16:
        kind = a.dtype if isinstance(a, np.ndarray) else type(a).__name__
        raise TypeError(f"the fixed-point front end takes int16 PCM as a numpy array, not {kind}; "
                        f"convert float audio with np.round(x * 32768).clip(-32768, 32767).astype(np.int16)")
    if a.ndim != ndim:
        raise ValueError(f"expected a {ndim}-D int16 array, got shape {list(a.shape)}")
    return a
