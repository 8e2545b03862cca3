"""The front end's constant tables as integers, computed without the platform's libm.

A table rounded from ``np.cos`` or ``np.log`` can differ by one unit between machines: x86
numpy uses its own SIMD cos, ARM uses glibc's, and either may land on the other side of a
rounding boundary. With ~50,000 entries that is a real risk, and one differing entry would make
the "same bytes on every machine" claim false. So every table here is computed with Python's
:mod:`decimal` (libmpdec: correctly rounded, identical everywhere) at 60 significant digits and
rounded once, half up, to its integer format. Built once per :class:`FeatureParams` (cached).
"""

from __future__ import annotations

import bisect
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext
from fractions import Fraction
from functools import lru_cache

import numpy as np

from edgekit.errors import ConfigError
from edgekit.params import FeatureParams

_DIGITS = 60
_PI = Decimal("3.14159265358979323846264338327950288419716939937510582097494459230781640628620899863")


def _to_int(x: Decimal, bits: int) -> int:
    """round(x * 2**bits), half up."""
    with localcontext() as ctx:
        ctx.prec = _DIGITS + 40
        return int((x * (Decimal(2) ** bits) + Decimal("0.5")).to_integral_value(rounding=ROUND_FLOOR))


def _cos_turns(num: int, den: int) -> Decimal:
    """cos(2 pi num / den) by its Taylor series on an angle reduced to [-pi, pi]."""
    num %= den
    if 2 * num > den:
        num -= den
    with localcontext() as ctx:
        ctx.prec = _DIGITS + 10
        x = 2 * _PI * num / den
        x2, term, total, n = x * x, Decimal(1), Decimal(1), 0
        tiny = Decimal(10) ** -(_DIGITS + 5)
        while abs(term) > tiny:
            n += 2
            term = -term * x2 / (n * (n - 1))
            total += term
        return +total


def _cos_circle(n: int) -> list[Decimal]:
    """cos(2 pi j / n) for j = 0..n-1; for n divisible by 4 from the first quadrant only, by the
    exact symmetries of the circle."""
    if n % 4:
        return [_cos_turns(j, n) for j in range(n)]
    q = n // 4
    first = [_cos_turns(j, n) for j in range(q + 1)]  # cos on [0, pi/2]
    return [(first[j % q], -first[q - j % q], -first[j % q], first[q - j % q])[j // q] for j in range(n)]


def hann(length: int) -> list[Decimal]:
    """Periodic Hann window (tf.signal.hann_window(periodic=True)), exactly."""
    return [(1 - c) / 2 for c in _cos_circle(length)]


def mel_weights(params: FeatureParams) -> list[list[Decimal]]:
    """[spectrum_bins][mel_bands] weights, as tf.signal.linear_to_mel_weight_matrix (HTK mel,
    DC bin dropped), in Decimal."""
    with localcontext() as ctx:
        ctx.prec = _DIGITS

        def mel(hz) -> Decimal:
            return 1127 * (1 + Decimal(hz) / 700).ln()

        bins, bands = params.spectrum_bins, params.mel_bands
        nyquist = Decimal(params.sample_rate_hz) / 2
        lo, hi = mel(params.mel_min_hz), mel(params.mel_max_hz)
        step = (hi - lo) / (bands + 1)
        edges = [lo + i * step for i in range(bands + 2)]
        rows = [[Decimal(0)] * bands]  # DC
        for k in range(1, bins):
            m = mel(nyquist * k / (bins - 1))
            row = [Decimal(0)] * bands
            # Only the bands whose triangle [edges[j], edges[j + 2]] holds m weigh this bin.
            for j in range(max(bisect.bisect_left(edges, m) - 2, 0), min(bisect.bisect_right(edges, m), bands)):
                lower, center, upper = edges[j], edges[j + 1], edges[j + 2]
                row[j] = max(Decimal(0), min((m - lower) / (center - lower), (upper - m) / (upper - center)))
            rows.append(row)
        return rows


_SPECTRAL_FIELDS = ("sample_rate_hz", "stft_window_seconds", "fft_length", "mel_bands", "mel_min_hz", "mel_max_hz")


def _key(params: FeatureParams) -> tuple:
    # The patch sizes and hop do not enter the tables: cache on what does.
    return tuple((f, getattr(params, f)) for f in _SPECTRAL_FIELDS)


def mel_table(params: FeatureParams, weight_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(bins, weights): the FFT bins some band weighs (ascending) and round(W[bin, band] *
    2**weight_bits) for them, [B, bands] int64. Cached."""
    return _mel_table(_key(params), weight_bits)


@lru_cache(maxsize=8)
def _mel_table(key: tuple, weight_bits: int) -> tuple[np.ndarray, np.ndarray]:
    with localcontext() as ctx:
        ctx.prec = _DIGITS
        mel_q = [[_to_int(v, weight_bits) for v in row] for row in mel_weights(FeatureParams(**dict(key)))]
    used = [k for k, row in enumerate(mel_q) if any(row)]
    bins, mel = np.array(used, dtype=np.int64), np.array([mel_q[k] for k in used], dtype=np.int64)
    bins.setflags(write=False)
    mel.setflags(write=False)
    return bins, mel


def dft_tables(params: FeatureParams, coef_bits: int, weight_bits: int) -> dict[str, np.ndarray]:
    """Integer tables of the folded DFT and the mel sums (see :mod:`.spectrum` for their use). Cached.

    ``fold_cos[m, j]`` = round(w'[m] cos(2 pi k_j m / L) * 2**coef_bits), ``fold_sin`` likewise
    with sin, for m = 0..c-1 (c = window / 2) and the columns k_j = ``columns``; w'[m] is the Hann
    window at c + m, halved at m = 0 (whose folded sample counts the centre twice).
    ``mel`` is round(W[k, band] * 2**weight_bits) for the used bins ``bin_order`` (ascending).
    """
    return _dft_tables(_key(params), coef_bits, weight_bits)


@lru_cache(maxsize=8)
def _dft_tables(key: tuple, coef_bits: int, weight_bits: int) -> dict[str, np.ndarray]:
    params = FeatureParams(**dict(key))
    n, length = params.window_samples, params.fft_length
    c = n // 2
    window = hann(n)
    if n % 2 or window[0] != 0:
        raise ConfigError(f"the folded DFT needs an even window length, not {n}")
    used, mel = mel_table(params, weight_bits)
    used = used.tolist()
    # k and L/2 - k share their products (see spectrum.py): compute columns k' <= L/4 only.
    half = length // 2
    columns = sorted({min(k, half - k) for k in used})
    plus = [k for k in used if k <= half - k]  # bins read from E + O
    minus = [k for k in used if k > half - k]  # bins read from E - O
    with localcontext() as ctx:
        ctx.prec = _DIGITS
        # cos/sin of 2 pi j / L for every j once, as integers carrying 40 more bits than the
        # table; each product is then rounded once (integer arithmetic, the same everywhere).
        extra = coef_bits + 40
        cos_j = [_to_int(v, extra) for v in _cos_circle(length)]
        sin_j = [cos_j[(j - length // 4) % length] for j in range(length)]  # sin(a) = cos(a - pi/2)
        w_fold = [_to_int(window[c] / 2, extra)] + [_to_int(window[c + m], extra) for m in range(1, c)]
    shift = 2 * extra - coef_bits
    half_unit = 1 << (shift - 1)
    fold_cos = [[(w_fold[m] * cos_j[(k * m) % length] + half_unit) >> shift for k in columns] for m in range(c)]
    fold_sin = [[(w_fold[m] * sin_j[(k * m) % length] + half_unit) >> shift for k in columns] for m in range(c)]
    col = {k: i for i, k in enumerate(columns)}
    tables = {
        "fold_cos": np.array(fold_cos, dtype=np.int64),  # [c, K]
        "fold_sin": np.array(fold_sin, dtype=np.int64),  # [c, K]
        "columns": np.array(columns, dtype=np.int64),  # [K] the k' computed
        "plus_index": np.array([col[k] for k in plus], dtype=np.int64),  # bins k = k'
        "minus_index": np.array([col[half - k] for k in minus], dtype=np.int64),  # bins k = L/2 - k'
        "bin_order": np.array(plus + minus, dtype=np.int64),  # [B] the bin of each output column
        "mel": mel,  # [B, bands]
    }
    for value in tables.values():
        value.setflags(write=False)
    return tables


@lru_cache(maxsize=16)
def code_thresholds(scale: float, zero_point: int, q_bits: int) -> tuple[int, ...]:
    """T[c] for c = -127..127: an integer y (a value y * 2**-q_bits) quantises to a code >= c
    exactly when y >= T[c], i.e. T[c] = ceil(2**q_bits exp((c - zero_point - 1/2) scale)),
    capped at 2**62."""
    with localcontext() as ctx:
        ctx.prec = _DIGITS
        step, unit = Decimal(scale), Decimal(2) ** q_bits
        out = []
        for c in range(-127, 128):
            bound = ((c - zero_point - Decimal("0.5")) * step).exp() * unit
            out.append(min(int(bound.to_integral_value(rounding=ROUND_CEILING)), 2**62))
    return tuple(out)


def fixed_from_float(value: float, bits: int) -> int:
    """round(value * 2**bits), half up, from the float's exact binary value."""
    return int((Fraction(value) * 2**bits + Fraction(1, 2)).__floor__())
