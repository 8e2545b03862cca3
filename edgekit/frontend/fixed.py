"""Fixed-point (integer-only) YAMNet log-mel front end: int16 PCM in, the model's int8 codes out.

Every per-frame step below runs on numpy int64 arrays; floats appear only when the constant
tables are built in ``FixedFrontend.__init__``. Integer arithmetic is exact, so the codes are
the same bytes on every machine (x86, ARM) and do not depend on how frames are batched.

Number formats, stage by stage (``F`` frames, ``B`` = 235 bins some mel band weighs; "value" is
the float the reference computes at that point)::

    samples   int16 s, value s * 2**-15                                        [F, 400]
    window    Q30 Hann w (1.0 == 2**30, fits int32); p = s * w exact, |p| <= 2**45,
              value p * 2**-45                                                 [F, 400]
    normalise per-frame exponent n = 28 - msb(max|p|), -17 <= n <= 12: v = p * 2**n
              rounded, so max|v| lies in [2**28, 2**29]; value v * 2**-(45 + n) [F, 512]
    FFT       9 radix-2 stages, Q30 twiddles. Entering a stage |re|, |im| <= 2**29, so a
              twiddle product is < 2**59 (int64, rounded back by 2**-30) and a butterfly
              sum < 2**31 (int32). A stage grows a component by at most 1 + sqrt(2), so a
              frame is shifted right by 0, 1 or 2 bits afterwards whenever its max passed
              2**29; S counts the shifts. value X * 2**(S - 45 - n)             [F, 512]
    magnitude integer sqrt of re**2 + im**2 (<= 2**59), rounded; same exponent  [F, B]
    mel       Q15 weights (column sums <= 9): mel = |X| @ W < 2**48,
              value mel * 2**(S - n - 60)                                      [F, 64]
    log       the exponent is resolved into Q32 so the 0.001 offset is one constant:
              y = mel_q32 + round(0.001 * 2**32), 2**22 <= y < 2**45; then
              log2(y) = msb + table(next 7 bits), linearly interpolated on the
              remaining 23, in Q24 (table error < 2e-5)                        [F, 64]
    codes     log2 * (ln 2 / scale) with a 31-bit multiplier (product < 2**59), shifted
              with round half away from zero (as TFLite's QUANTIZE), + zero_point,
              clamped to int8                                                  [F, 64]

Why Q30 and not Q15 for the window and the twiddles: Q15 leaves a noise floor about 96 dB under
a frame's peak, and a pure beep (smoke_alarm.wav) has mel bands 100 dB down that
log(mel + 0.001) still resolves; Q15 kept only 98.9 % of that clip's codes within 1 LSB of the
float reference, Q30 keeps them all. int32 x int32 -> int64 products are what an ARM port
would use anyway (SMULL).
"""

from __future__ import annotations

import math

import numpy as np

from edgekit.params import FeatureParams
from edgekit.quant import InputQuant, dequantise, quantise  # noqa: F401 (re-exported)
from edgekit.frontend import reference

_INT = np.int64

_PCM_BITS = 15  # int16 s stands for s * 2**-15
_HEADROOM = 29  # block-floating-point ceiling: |re|, |im| <= 2**29 entering each FFT stage
_WINDOW_BITS = 30
_TWIDDLE_BITS = 30
_WEIGHT_BITS = 15
_MEL_Q = 32  # common fixed format the per-frame exponents are resolved into before the log
_LOG_TABLE_BITS = 7
_LOG_Q = 24


def _msb(x: np.ndarray) -> np.ndarray:
    """Index of the highest set bit of each x > 0 (and -1 for 0), by integer comparisons."""
    powers = np.left_shift(_INT(1), np.arange(63, dtype=_INT))
    return np.searchsorted(powers, x, side="right").astype(_INT) - 1


def _round_right(x: np.ndarray, right: np.ndarray) -> np.ndarray:
    """x * 2**-right rounded half up, for right >= 0 (broadcasts)."""
    return (x + (np.left_shift(_INT(1), right) >> 1)) >> right


def _shift(x: np.ndarray, right: np.ndarray) -> np.ndarray:
    """x * 2**-right rounded half up; right may be negative (a left shift) and broadcasts."""
    down = _round_right(x, np.maximum(right, 0))
    return np.where(right >= 0, down, np.left_shift(x, np.maximum(-right, 0)))


def _isqrt(n: np.ndarray) -> np.ndarray:
    """round(sqrt(n)) for 0 <= n < 2**62 by integer Newton steps."""
    # Start at a power of two >= sqrt(n) (at most 2x too big); from above, integer Newton
    # decreases monotonically onto floor(sqrt(n)), and 6 steps cover 31 bits from 2x off.
    x = np.left_shift(_INT(1), (_msb(n) + 2) >> 1)
    for _ in range(6):
        x = np.minimum(x, (x + n // np.maximum(x, 1)) >> 1)
    # sqrt(n) >= x + 1/2 exactly when the remainder n - x**2 exceeds x.
    return x + (n - x * x > x)


class FixedFrontend:
    """int16 frames -> int8 log-mel codes in a model's input quantisation, integers only."""

    def __init__(self, quant: InputQuant, params: FeatureParams = FeatureParams()) -> None:
        if params.fft_length & (params.fft_length - 1):
            raise ValueError(f"fft_length must be a power of two, not {params.fft_length}")
        self.quant = quant
        self.params = params
        n_fft = params.fft_length

        # Rounded, so 1.0 is exactly 2**30 and the trivial twiddles (1, -i) stay exact.
        self._window = np.round(reference.periodic_hann(params.window_samples) * 2**_WINDOW_BITS).astype(_INT)

        # Bit-reversed load order makes every stage an in-order split into halves (DIT).
        bits = n_fft.bit_length() - 1
        self._bitrev = np.array([int(f"{i:0{bits}b}"[::-1], 2) for i in range(n_fft)], dtype=_INT)
        angle = -2.0 * np.pi * np.arange(n_fft // 2) / n_fft
        self._tw_re = np.round(np.cos(angle) * 2**_TWIDDLE_BITS).astype(_INT)
        self._tw_im = np.round(np.sin(angle) * 2**_TWIDDLE_BITS).astype(_INT)

        # Only the bins some band weighs are needed after the FFT.
        weights = reference.mel_matrix(params)
        used = np.flatnonzero(weights.any(axis=1))
        self._bins = slice(int(used[0]), int(used[-1]) + 1)
        self._mel = np.round(weights[self._bins] * 2**_WEIGHT_BITS).astype(_INT)  # [B, 64]

        self._offset = _INT(round(params.log_offset * 2**_MEL_Q))
        steps = np.arange(2**_LOG_TABLE_BITS + 1) / 2**_LOG_TABLE_BITS
        self._log2_table = np.round(np.log2(1.0 + steps) * 2**_LOG_Q).astype(_INT)  # [129]

        # ln(y) / scale = log2(y) * (ln 2 / scale): a 31-bit multiplier and a right shift.
        per_log2 = math.log(2.0) / quant.scale
        self._out_shift = 31 - math.ceil(math.log2(per_log2) + 1e-12) + _LOG_Q
        self._out_mult = _INT(round(per_log2 * 2.0 ** (self._out_shift - _LOG_Q)))
        if not (1 <= self._out_shift <= 62 and 0 < self._out_mult < 2**31):
            raise ValueError(f"input scale {quant.scale} is outside what the fixed path supports")

    def constants(self) -> dict[str, np.ndarray]:
        """The integer tables the per-frame path uses (pinned by a test across machines)."""
        return {
            "window_q30": self._window,
            "twiddle_re_q30": self._tw_re,
            "twiddle_im_q30": self._tw_im,
            "mel_q15": self._mel,
            "log2_table_q24": self._log2_table,
            "offset_q32": np.array([self._offset]),
            "out_mult_shift": np.array([self._out_mult, self._out_shift], dtype=_INT),
        }

    def frames_to_codes(self, frames: np.ndarray) -> np.ndarray:
        """[F, 400] int16 -> [F, 64] int8. Frames are independent: any batching, same bytes."""
        return self.stages(frames)["codes"]

    def waveform_to_codes(self, pcm16: np.ndarray) -> np.ndarray:
        """[n] int16 -> [patches, 96, 64] int8, padded and patched as the float reference."""
        x = _check_int16(pcm16, ndim=1)
        p = self.params
        frames = reference.frame(reference.pad_waveform(x, p), p.window_samples, p.hop_samples)
        return reference.patch_frames(self.frames_to_codes(frames), p)

    def stages(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """Every intermediate of ``frames_to_codes``, for tests and debugging."""
        x = _check_int16(frames, ndim=2)
        if x.shape[1] != self.params.window_samples:
            raise ValueError(f"frames must be [F, {self.params.window_samples}], not {list(x.shape)}")
        out: dict[str, np.ndarray] = {}

        p = x.astype(_INT) * self._window  # [F, 400], |p| <= 2**45
        peak = np.abs(p).max(axis=1, initial=0)  # [F]
        # All-zero frames have no msb; any n works for them, so leave them unshifted.
        n = np.where(peak > 0, _HEADROOM - 1 - _msb(peak), 0)  # [F]
        v = np.zeros((len(x), self.params.fft_length), dtype=_INT)
        v[:, : x.shape[1]] = _shift(p, -n[:, None])  # [F, 512]
        out["windowed"], out["norm_shift"] = v, n

        re, im, fft_shift = self._fft(v)  # [F, 512] each, [F]
        out["fft_re"], out["fft_im"], out["fft_shift"] = re, im, fft_shift

        re, im = re[:, self._bins], im[:, self._bins]  # [F, B]
        mag = _isqrt(re * re + im * im)  # [F, B], < 2**29.5
        out["magnitude"] = mag

        mel = mag @ self._mel  # [F, 64], value mel * 2**(S - n - 60)
        out["mel"] = mel
        # Resolve the per-frame exponent into Q32 so the offset is one constant.
        exponent = fft_shift - n - (_PCM_BITS + _WINDOW_BITS + _WEIGHT_BITS)  # [F], mel * 2**exponent
        to_q32 = (-exponent - _MEL_Q)[:, None]  # [F, 1], a right shift (left where negative)
        y = _shift(mel, to_q32) + self._offset  # [F, 64], mel + 0.001 in Q32
        out["mel_q32"] = y

        log2 = self._log2(y) - (_MEL_Q << _LOG_Q)  # [F, 64], log2(mel + 0.001) in Q24
        out["log2_q24"] = log2

        prod = log2 * self._out_mult  # [F, 64], |log2| < 2**28, mult < 2**31: |prod| < 2**59
        half = _INT(1) << (self._out_shift - 1)
        rounded = np.sign(prod) * ((np.abs(prod) + half) >> self._out_shift)  # half away from 0
        out["codes"] = np.clip(rounded + self.quant.zero_point, -128, 127).astype(np.int8)
        return out

    def _fft(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Radix-2 DIT FFT with block floating point per frame: (re, im, total right shift)."""
        frames, size = v.shape
        re = v[:, self._bitrev]  # [F, N]
        im = np.zeros_like(re)
        total = np.zeros(frames, dtype=_INT)
        round_q = _INT(1) << (_TWIDDLE_BITS - 1)
        half = 1
        while half < size:
            step = size // (2 * half)
            wr, wi = self._tw_re[::step], self._tw_im[::step]  # [half], exp(-2 pi i k / 2 half)
            re = re.reshape(frames, step, 2 * half)  # [F, N / (2 half) groups, 2 half]
            im = im.reshape(frames, step, 2 * half)
            ar, ai = re[..., :half], im[..., :half]
            br, bi = re[..., half:], im[..., half:]
            # |b| <= 2**29 and |w| <= 2**30: each product <= 2**59, their sum <= 2**60.
            tr = (br * wr - bi * wi + round_q) >> _TWIDDLE_BITS
            ti = (br * wi + bi * wr + round_q) >> _TWIDDLE_BITS
            re = np.concatenate([ar + tr, ar - tr], axis=-1).reshape(frames, size)
            im = np.concatenate([ai + ti, ai - ti], axis=-1).reshape(frames, size)
            # A stage grows a component by at most 1 + sqrt(2) < 4, so 0..2 bits bring it back.
            peak = np.maximum(np.abs(re).max(axis=1), np.abs(im).max(axis=1))  # [F], < 2**31
            s = (peak > 1 << _HEADROOM).astype(_INT) + (peak > 1 << (_HEADROOM + 1))  # [F]
            if s.any():  # shifting by 0 is the identity, so skipping it changes no result
                re, im = _round_right(re, s[:, None]), _round_right(im, s[:, None])
                total += s
            half *= 2
        return re, im, total

    def _log2(self, y: np.ndarray) -> np.ndarray:
        """log2(y) in Q24 for y >= 1: msb, then a 128-entry table on the next bits, interpolated."""
        msb = _msb(y)
        z = _shift(y, msb - 30)  # mantissa in [2**30, 2**31], rounding may carry to 2**31
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
