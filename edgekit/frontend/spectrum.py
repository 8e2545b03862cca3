"""int16 frames -> YAMNet's mel spectrum, exactly: the fixed-point path's spectrum (its exact mel
sums, :class:`MelSums`, also serve the float path).

Every value below that decides a result is an integer computed exactly, so the output is the
same bytes on every machine (x86, ARM) and does not depend on how frames are batched. Two kinds
of arrays carry the integers:

- float64 holding integers below 2**53. IEEE 754 makes +, -, * of such values exact, so a BLAS
  matrix product whose every product and partial sum stays below 2**53 (in absolute value,
  whatever the order) is exact: the same integer however the library blocks, vectorises,
  fuses (FMA) or threads the sums. That is what lets BLAS do the heavy part.
- int64 for the rest (squares up to 2**59).

Stages (``F`` frames, window ``N`` = 400 = 2c, FFT length ``L`` = 512, ``B`` = 235 bins some
mel band weighs, ``K`` = 124 columns; "value" is the real number the stage stands for)::

    samples  int16 x, value x * 2**-15                                          [F, 400]
    fold     the periodic Hann window is symmetric about n = c and w[0] = 0, so with
             u_m = x[c+m] + x[c-m] and d_m = x[c+m] - x[c-m] (m = 0..c-1; |u|, |d| <= 2**16)
             X[k] = e**(-2 pi i k c / L) (sum_m u_m w'_m cos(t k m) - i sum_m d_m w_m sin(t k m)),
             t = 2 pi / L, w'_0 = w_c / 2 (u_0 counts x[c] twice), w'_m = w_{c+m}.
             The phase factor drops out of |X|.
    split    cos(t (L/2 - k) m) = (-1)**m cos(t k m) and sin(t (L/2 - k) m) = -(-1)**m sin(t k m):
             with E = the sum over even m and O = over odd m, bin k gets E + O and bin L/2 - k
             gets E - O (up to sign). So only the K columns k' = min(k, L/2 - k) are computed:
             four float64 products [F, c/2] @ [c/2, K] (E_cos, O_cos, E_sin, O_sin) instead of
             a [F, 400] @ [400, 2B] one.
    DFT      Q30 coefficients C = round(w'_m cos(t k m) * 2**30) (|C| <= 2**30). Bound on every
             partial sum of E +- O, in any order: sum_m |u_m| |C_m| <= 2**16 (sum_{m<c} w'_m 2**30
             + c/2) = 2**15 (sum_n w_n 2**30 + c) = 2**15 (200 * 2**30 + 200) < 2**52.65 < 2**53
             (sum_n w_n = N/2 for a periodic Hann window). ``MelSpectrum`` checks this bound on
             its actual tables with exact integers. value re * 2**-45              [F, B] x 2
    block    one exponent per frame: e = max(0, msb(peak) - 28) for the frame's largest |re|,
             |im|; re, im <- rint(re * 2**-e) (nearest, ties to even; exact in float64: a
             power-of-two scaling of an integer), now |re|, |im| <= 2**29. value re * 2**(e - 45)
    magnitude int64 n = re**2 + im**2 <= 2**59; m = round(sqrt(n)), from the correctly rounded
             float sqrt (within 2**-22) and, where that lies within 2**-20 of a half-integer,
             an exact integer correction: m is the r with r*r - r < n <= r*r + r.
             m <= 2**29.5, held in float64.                                     [F, B]
    mel      Q20 weights (column sums <= 8.95 * 2**20): mel = m @ W < 2**29.5 * 8.95 * 2**20
             < 2**52.7, exact in float64 again. value mel * 2**(e - 65)          [F, 64]

Accuracy, in units where samples lie in [-1, 1): the coefficient rounding moves re and im by at
most 200 * 2 * 2**-31 < 2e-7, the block rounding and the square root each by at most
2**(e - 46) <= 2**-22, so |X| is within 9e-7 and a mel band (weights summing to <= 8.95) within
8.1e-6; the Q20 weights are within 2**-21 of the true ones, and the smallest nonzero weight is
0.0038, so each band is also within a relative 1.3e-4. log(mel + 0.001) is therefore within
8.1e-6 / 0.001 + 1.3e-4 < 0.0083 of the exact value for every input: less than a fifth of one
int8 step of YAMNet's input quantisation (0.0478).
"""

from __future__ import annotations

import threading

import numpy as np

from edgekit.errors import ConfigError
from edgekit.params import FeatureParams
from edgekit.frontend import tables

COEF_BITS = 30  # DFT coefficients (window * twiddle)
WEIGHT_BITS = 20  # mel weights
PEAK_BITS = 29  # |re|, |im| after the per-frame block exponent
PCM_BITS = 15  # int16 x stands for x * 2**-15
_BLOCK = 128  # frames per block: bounds the scratch memory
# Frames per DFT product. OpenBLAS hands a GEMM to its thread pool above m * n * k = 4 * 65536
# (GEMM_MULTITHREAD_THRESHOLD); 20 * 100 * 124 stays below, so the products never wake (and
# spin) BLAS threads next to the model's own, and the blocks fit the caches better anyway.
_GEMM_FRAMES = 20
# Frames from which the mel product is split by band groups: a dense [F, 235] @ [235, 64]
# product stays under the BLAS threading threshold (see _GEMM_FRAMES) only up to 17 frames.
_GROUPED_FROM = 16



def pow2(exponent: np.ndarray) -> np.ndarray:
    """2.0 ** exponent as float64, exactly, for integer exponents of any integer dtype.

    numpy's ``ldexp`` has loops for a C ``int`` and a C ``long`` exponent only. A C ``long`` is
    64 bits on x86_64 and aarch64 but 32 bits on armv7l (32-bit Pi OS), where an int64 exponent
    finds no loop and raises ``TypeError: ufunc 'ldexp' not supported for the input types``.
    ``np.intc`` (the C ``int``) exists on every platform; the exponents here are within +-64.
    Every ``ldexp`` of the package goes through this function (a test keeps it so)."""
    e = np.asarray(exponent)
    if e.dtype.kind not in "iu":
        raise TypeError(f"pow2 takes integer exponents, not {e.dtype}")
    return np.ldexp(1.0, e.astype(np.intc))

class MelSpectrum:
    """int16 frames [F, window] -> (mel [F, bands] float64 integers, exponent [F] int64);
    band j of frame f is ``mel[f, j] * 2**exponent[f]``."""

    def __init__(self, params: FeatureParams = FeatureParams()) -> None:
        if params.fft_length & (params.fft_length - 1) or params.fft_length < 4:
            raise ConfigError(f"fft_length must be a power of two, not {params.fft_length}")
        self.params = params
        t = tables.dft_tables(params, COEF_BITS, WEIGHT_BITS)
        c = params.window_samples // 2
        half = (c + 1) // 2  # even m: 0, 2, ..; odd m: 1, 3, .. (padded with a zero row if c is odd)
        coef = np.zeros((4, half, len(t["columns"])))
        coef[0, : len(range(0, c, 2))] = t["fold_cos"][0::2]
        coef[1, : len(range(1, c, 2))] = t["fold_cos"][1::2]
        coef[2, : len(range(0, c, 2))] = t["fold_sin"][0::2]
        coef[3, : len(range(1, c, 2))] = t["fold_sin"][1::2]
        # The exactness bound of the module docstring, on these very tables, in Python integers.
        for table in (t["fold_cos"], t["fold_sin"]):
            if 2**16 * int(np.abs(table).max(axis=1).sum()) >= 2**53:
                raise ConfigError("DFT partial sums could exceed 2**53 with these parameters")
        self._c, self._half = c, half
        self._split = len(t["plus_index"])
        self._local = threading.local()
        self._coef = coef
        self._plus = _as_slice(t["plus_index"])
        self._minus = _as_slice(t["minus_index"])
        self.mel_sums = MelSums(params)
        self.bins = t["bin_order"]  # the FFT bin behind each magnitude column (ascending)
        if not np.array_equal(self.bins, self.mel_sums.bins):
            raise AssertionError("the DFT's columns and the mel weights' bins disagree")
        self.tables = t
        # mel * 2**(e - scale_bits) is the band's value (samples in [-1, 1)).
        self.scale_bits = PCM_BITS + COEF_BITS + WEIGHT_BITS

    def __call__(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self.stages(frames, keep=False)
        return out["mel"], out["exponent"]

    def stages(self, frames: np.ndarray, keep: bool = True) -> dict[str, np.ndarray]:
        """The computation with its intermediates (``keep``) for tests: ``dft`` [2, F, B]
        (re, im; float64 integers), ``exponent`` [F], ``block`` [2, F, B] and ``magnitude``
        [F, B] (int64), ``mel`` [F, bands] (float64 integers). Columns are in ``self.bins`` order."""
        x = np.asarray(frames)
        # Every frame is computed exactly and on its own, so blocks of any size give the same
        # bytes; blocks bound the reused scratch memory for long clips.
        pieces = [self._block(x[i : i + _BLOCK], keep) for i in range(0, len(x), _BLOCK)] or [self._block(x, keep)]
        if len(pieces) == 1:
            return pieces[0]
        axis = {"dft": 1, "block": 1}
        return {k: np.concatenate([p[k] for p in pieces], axis=axis.get(k, 0)) for k in pieces[0]}

    def _block(self, x: np.ndarray, keep: bool) -> dict[str, np.ndarray]:
        c, ws = self._c, self._workspace(len(x))
        right, left = x[:, c:], x[:, c:0:-1]  # x[c + m], x[c - m] for m = 0..c-1
        f, wide = ws.folded, np.float64  # int16 sums and differences in float64: exact
        ne, no = len(range(0, c, 2)), len(range(1, c, 2))
        np.add(right[:, 0::2], left[:, 0::2], out=f[0, :, :ne], dtype=wide)  # u, even m
        np.add(right[:, 1::2], left[:, 1::2], out=f[1, :, :no], dtype=wide)  # u, odd m
        np.subtract(right[:, 0::2], left[:, 0::2], out=f[2, :, :ne], dtype=wide)  # d, even m
        np.subtract(right[:, 1::2], left[:, 1::2], out=f[3, :, :no], dtype=wide)  # d, odd m
        parts = ws.parts  # [4, F, K]: E_cos, O_cos, E_sin, O_sin; exact
        for i in range(0, len(x), _GEMM_FRAMES):
            np.matmul(f[:, i : i + _GEMM_FRAMES], self._coef, out=parts[:, i : i + _GEMM_FRAMES])
        dft, split = ws.dft, self._split
        np.add(parts[0::2, :, self._plus], parts[1::2, :, self._plus], out=dft[:, :, :split])  # bins k'
        np.subtract(parts[0::2, :, self._minus], parts[1::2, :, self._minus], out=dft[:, :, split:])  # L/2 - k'

        peak = np.maximum(dft.max(axis=(0, 2), initial=0.0), -dft.min(axis=(0, 2), initial=0.0))  # [F]
        tmp = ws.scratch  # shares memory with parts, which is not needed any more
        exponent = np.maximum(np.frexp(peak)[1] - 1 - (PEAK_BITS - 1), 0).astype(np.int64)  # msb - 28
        np.multiply(dft, pow2(-exponent)[:, None], out=tmp)  # exact: a power of two
        np.rint(tmp, out=tmp)  # to the nearest integer, ties to even: exact
        block = ws.block
        np.copyto(block, tmp, casting="unsafe")  # |.| <= 2**29, integers: exact
        n = np.multiply(block[0], block[0], out=ws.n)
        n += np.multiply(block[1], block[1], out=ws.spare)  # <= 2**59
        magnitude = _round_sqrt(n, ws)  # float64 integers
        out = {"mel": self.mel_sums(magnitude), "exponent": exponent}
        if keep:
            out.update(dft=dft.copy(), block=block.copy(), magnitude=magnitude.astype(np.int64))
        return out

    def _workspace(self, frames: int) -> "_Workspace":
        """Scratch arrays for ``frames`` frames, reused across calls (per thread): fresh large
        arrays cost a page fault per 4 KiB on every call, more than the arithmetic itself."""
        cache = self._local.__dict__.setdefault("workspaces", {})
        ws = cache.get(frames)
        if ws is None:
            if len(cache) >= 4:  # a few batch sizes in turn (a stream's hop, whole patches)
                cache.pop(next(iter(cache)))
            ws = cache[frames] = _Workspace(frames, self._c, self._half, self._coef.shape[2], len(self.bins))
        return ws


class MelSums:
    """[F, B] float64 integers <= 2**29.5 (magnitudes of the ``bins``, ascending) -> [F, bands]
    sums with the Q20 mel weights, exact: every partial sum is below 2**29.5 * 8.95 * 2**20 <
    2**53, so the result is the same whatever BLAS does and however the frames are batched."""

    def __init__(self, params: FeatureParams = FeatureParams()) -> None:
        bins, weights = tables.mel_table(params, WEIGHT_BITS)
        if round(2**PEAK_BITS * 2**0.5) * int(weights.sum(axis=0).max()) >= 2**53:
            raise ConfigError("mel partial sums could exceed 2**53 with these parameters")
        if not np.array_equal(bins, np.arange(bins[0], bins[-1] + 1)):
            raise ConfigError("the mel bands leave a gap in the spectrum")
        self.bins = bins
        self.bin_range = slice(int(bins[0]), int(bins[-1]) + 1)
        self._bands = params.mel_bands
        self._dense = weights.astype(np.float64)  # [B, bands]
        self._groups = _band_groups(weights, 8)

    def __call__(self, magnitude: np.ndarray) -> np.ndarray:
        """A fresh [F, bands] float64 array."""
        if len(magnitude) < _GROUPED_FROM:  # few frames: one call costs less than eight
            return magnitude @ self._dense
        mel = np.empty((len(magnitude), self._bands))
        for bands, bins, weights in self._groups:
            mel[:, bands] = magnitude[:, bins] @ weights
        return mel


class _Workspace:
    def __init__(self, frames: int, c: int, half: int, columns: int, bins: int) -> None:
        # Few distinct arrays: between calls the model runs and evicts them from the caches.
        self.folded = np.zeros((4, frames, half))  # a padding row (odd c) stays zero
        pool = np.empty(max(4 * frames * columns, 2 * frames * bins))
        self.parts = pool[: 4 * frames * columns].reshape(4, frames, columns)
        self.scratch = pool[: 2 * frames * bins].reshape(2, frames, bins)
        self.dft = np.empty((2, frames, bins))
        self.block = np.empty((2, frames, bins), np.int64)
        self.n, self.spare = np.empty((frames, bins), np.int64), np.empty((frames, bins), np.int64)
        self.magnitude = np.empty((frames, bins))


def _round_sqrt(n: np.ndarray, ws: _Workspace) -> np.ndarray:
    """round(sqrt(n)) for int64 0 <= n <= 2**60, exactly, as float64 integers in ``ws.magnitude``."""
    # float64(n) and sqrt are correctly rounded (IEEE 754), so the float root is within
    # 2**30 * 2**-52 = 2**-22 of sqrt(n). Where it is more than 2**-20 away from a half-integer,
    # rounding it gives round(sqrt(n)); the (rare) others are settled with integers.
    root, r = ws.scratch[0], ws.magnitude
    np.copyto(root, n)
    np.sqrt(root, out=root)
    np.rint(root, out=r)
    root -= r
    np.abs(root, out=root)
    if root.max(initial=0.0) > 0.5 - 2.0**-20:
        near = np.flatnonzero(root > 0.5 - 2.0**-20)
        m, c = n.reshape(-1)[near], r.reshape(-1)[near].astype(np.int64)
        # round(sqrt(m)) = c exactly when c*c - c < m <= c*c + c (or c = 0 = m): no ties.
        diff = m - c * c
        c += diff > c
        c -= (diff <= -c) & (c > 0)
        r.reshape(-1)[near] = c
    return r


def _as_slice(index: np.ndarray):
    """An index array that steps by +1 or -1 as a slice (a view instead of a gather)."""
    if len(index) > 1 and abs(int(index[1] - index[0])) == 1:
        step = int(index[1] - index[0])
        if np.array_equal(index, index[0] + step * np.arange(len(index))):
            stop = int(index[-1]) + step
            return slice(int(index[0]), None if stop < 0 else stop, step)
    return index


def _band_groups(weights: np.ndarray, groups: int) -> list[tuple[slice, slice, np.ndarray]]:
    """Split the mel product by bands: (bands, bins, weights) with each group's bins only.

    A band weighs at most ~17 of the 235 bins, so 8 products over the bins their bands use do
    a seventh of the multiplications of one dense [B, 64] product (and each stays exact).
    """
    bands = weights.shape[1]
    out = []
    for g in range(groups):
        j0, j1 = bands * g // groups, bands * (g + 1) // groups
        rows = np.flatnonzero(weights[:, j0:j1].any(axis=1))
        lo, hi = (int(rows[0]), int(rows[-1]) + 1) if len(rows) else (0, 0)
        out.append((slice(j0, j1), slice(lo, hi), np.ascontiguousarray(weights[lo:hi, j0:j1], dtype=np.float64)))
    return out
