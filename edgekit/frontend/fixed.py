"""Fixed-point YAMNet log-mel front end: int16 PCM in, the model's int8 codes out.

The mel spectrum is :class:`.spectrum.MelSpectrum` (an exact integer DFT on BLAS; its
docstring proves the bounds); this module adds the log and the quantisation, exactly. Nothing that decides a code depends on platform float rounding: the same bytes on
every machine (x86, ARM) and for any batching of the frames.

After the mel sums (``F`` frames; ``mel * 2**(e - 65)`` is the band's value)::

    mel_q32   y = rint(mel * 2**(e - 33)) + round(0.001 * 2**32): mel + 0.001 in Q32, the
              per-frame exponent resolved (e <= 24: a right shift of 9..33 bits, to the
              nearest, ties to even; float64 holding integers, exact);
              2**22 <= y < 2**45 (a band is at most 8.95 * 201 < 2**11)          [F, 64]
    codes     the exact quantisation of ln(y * 2**-32): code >= c exactly when y >= T[c], with
              255 integer thresholds T[c] = ceil(2**32 exp((c - zero_point - 1/2) scale))
              computed once in decimal (round half away from zero, as TFLite's QUANTIZE; no
              real threshold is an integer, as exp of a nonzero rational is irrational). A float64 log
              finds the code to within one step and two integer comparisons settle it, so the
              float log never decides a code                                     [F, 64]

The spectrum is within 0.0083 of the exact log(mel + 0.001), less than a fifth of a step,
so every code is within one step of the exact log-mel quantised, for every input (the tests
also check it against an independent float64 FFT on every shared recording).
"""

from __future__ import annotations

import math

import numpy as np

from edgekit.frontend import reference, tables
from edgekit.frontend.spectrum import MelSpectrum, pow2
from edgekit.params import FeatureParams
from edgekit.quant import InputQuant

_INT = np.int64

_MEL_Q = 32  # common fixed format the per-frame exponents are resolved into before the log


class FixedFrontend:
    """int16 frames -> int8 log-mel codes in a model's input quantisation, integers only."""

    def __init__(self, quant: InputQuant, params: FeatureParams = FeatureParams()) -> None:
        self.quant = quant
        self.params = params
        self._spectrum = MelSpectrum(params)
        self._window = params.window_samples
        self._offset = _INT(tables.fixed_from_float(params.log_offset, _MEL_Q))
        # _thresholds[c + 128] for code c: 0 below (-128 always holds), a sentinel above 127.
        # Integers; as float64 exact up to 2**53, and y < 2**45 never reaches a larger one.
        self._thresholds = np.array([0, *tables.code_thresholds(quant.scale, quant.zero_point, _MEL_Q), 2**62],
                                    dtype=_INT)
        self._thresholds_f = np.minimum(self._thresholds, 2**53).astype(np.float64)
        self._log_base = _MEL_Q * math.log(2.0)

    def constants(self) -> dict[str, np.ndarray]:
        """The integer tables the per-frame path uses (compared across machines by
        benchmarks/arm)."""
        t = self._spectrum.tables
        return {
            "dft_cos_q30": t["fold_cos"],
            "dft_sin_q30": t["fold_sin"],
            "dft_columns": t["columns"],
            "bin_order": t["bin_order"],
            "mel_q20": t["mel"],
            "offset_q32": np.array([self._offset]),
            "code_thresholds_q32": self._thresholds,
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
        if x.shape[1] != self._window:
            raise ValueError(f"frames must be [F, {self._window}], not {list(x.shape)}")
        out = self._spectrum.stages(x, keep=keep)
        # float64 integers below 2**53 all along, so every step is exact: a power-of-two scale
        # (a right shift by 9..33 bits, e <= 24), rounding to the nearest (ties to even), + offset.
        y = out["mel"] * pow2(out["exponent"] + _MEL_Q - self._spectrum.scale_bits)[:, None]
        np.rint(y, out=y)
        y += self._offset  # [F, 64], mel + 0.001 in Q32, < 2**45
        out["codes"] = self._codes(y)
        if keep:
            out["mel_q32"] = y.astype(_INT)
        return out

    def _codes(self, y: np.ndarray) -> np.ndarray:
        """int8 codes of ln(y * 2**-32): a float estimate, then the exact integer thresholds."""
        q = self.quant
        est = np.log(y)
        est -= self._log_base
        est *= 1.0 / q.scale
        est += q.zero_point + 128
        np.rint(est, out=est)
        np.clip(est, 0, 255, out=est)  # within one step of the exact code (float error ~1e-13)
        code = est.astype(_INT)  # code + 128
        t = self._thresholds_f
        code += y >= t[code + 1]
        code -= y < t[code]
        return (code - 128).astype(np.int8)


def _check_int16(a, ndim: int) -> np.ndarray:
    if not isinstance(a, np.ndarray) or a.dtype != np.int16:
        kind = a.dtype if isinstance(a, np.ndarray) else type(a).__name__
        raise TypeError(f"the fixed-point front end takes int16 PCM as a numpy array, not {kind}; "
                        f"convert float audio with np.round(x * 32768).clip(-32768, 32767).astype(np.int16)")
    if a.ndim != ndim:
        raise ValueError(f"expected a {ndim}-D int16 array, got shape {list(a.shape)}")
    return a
