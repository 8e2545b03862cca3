"""YAMNet's log-mel features in numpy: the float front end.

Follows ``research/audioset/yamnet/features.py`` (padding, framing, periodic Hann window, STFT
magnitude, HTK mel matrix, log(mel + 0.001), patches); every function takes ``(data, params)``.
float64 throughout, returned as float32; the FFT is numpy's. The mel sums are the exact integer
ones of :class:`.spectrum.MelSums` (Q20 weights) on magnitudes rounded to 29 bits, so that a
frame's features do not depend on the batch it is computed in (streaming equals batch). The
fixed-point path computes its own spectrum exactly (no float FFT), so the two are independent
up to the mel weights. ``mel_matrix`` is the float64 weight matrix (as tf's), for reference.
"""

from __future__ import annotations

import threading
from functools import lru_cache

import numpy as np

from edgekit.frontend.spectrum import PCM_BITS, WEIGHT_BITS, MelSums
from edgekit.params import FeatureParams


def hertz_to_mel(f_hz):
    # HTK mel, as tf.signal uses.
    return 1127.0 * np.log1p(np.asarray(f_hz, dtype=np.float64) / 700.0)


@lru_cache(maxsize=8)
def mel_matrix(params: FeatureParams = FeatureParams()) -> np.ndarray:
    """[spectrum_bins, mel_bands] weights, as ``tf.signal.linear_to_mel_weight_matrix``."""
    nyquist = params.sample_rate_hz / 2.0
    # tf drops the DC bin (bands_to_zero=1) and pads a zero row back in at the end.
    linear_hz = np.linspace(0.0, nyquist, params.spectrum_bins)[1:]
    bins_mel = hertz_to_mel(linear_hz)[:, None]  # [256, 1]
    edges = np.linspace(
        hertz_to_mel(params.mel_min_hz), hertz_to_mel(params.mel_max_hz), params.mel_bands + 2
    )
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]  # [64] each
    lower_slopes = (bins_mel - lower) / (center - lower)
    upper_slopes = (upper - bins_mel) / (upper - center)
    weights = np.maximum(0.0, np.minimum(lower_slopes, upper_slopes))  # [256, 64]
    weights = np.vstack([np.zeros((1, params.mel_bands)), weights])  # [257, 64]
    weights.setflags(write=False)
    return weights


@lru_cache(maxsize=8)
def periodic_hann(length: int) -> np.ndarray:
    """Periodic Hann window (as tf.signal.hann_window(periodic=True))."""
    n = np.arange(length, dtype=np.float64)
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / length)
    w.setflags(write=False)
    return w


def to_float(waveform) -> np.ndarray:
    """int16 PCM or float samples -> float64 in [-1, 1)."""
    x = np.asarray(waveform)
    if x.dtype == np.int16:
        return x.astype(np.float64) / 32768.0
    return x.astype(np.float64)


def padded_length(num_samples: int, params: FeatureParams) -> int:
    """Length YAMNet pads a waveform to: at least one patch, and whole patch hops after it.

    This is ``features.pad_waveform``: short clips are padded up to one 0.975 s window, and
    longer ones so that the last patch holds the tail of the clip.
    """
    first = params.patch_samples
    if num_samples <= first:
        return first
    hops = -(-(num_samples - first) // params.patch_hop_samples)  # ceil
    return first + hops * params.patch_hop_samples


def pad_waveform(waveform: np.ndarray, params: FeatureParams) -> np.ndarray:
    x = np.asarray(waveform)
    target = padded_length(len(x), params)
    return np.pad(x, (0, target - len(x)))


def frame(signal: np.ndarray, length: int, hop: int) -> np.ndarray:
    """[n] -> [frames, length] view of overlapping frames (no padding)."""
    signal = np.ascontiguousarray(signal)
    count = 0 if len(signal) < length else 1 + (len(signal) - length) // hop
    return np.lib.stride_tricks.as_strided(
        signal,
        shape=(count, length),
        strides=(signal.strides[0] * hop, signal.strides[0]),
        writeable=False,
    )


@lru_cache(maxsize=8)
def _mel_sums(params: FeatureParams) -> MelSums:
    return MelSums(params)


_MAG_BITS = 29  # magnitudes are rounded to integers below 2**29.5 for the exact mel sums
_BLOCK = 128  # frames per FFT call
_RFFT_OUT = np.lib.NumpyVersion(np.__version__) >= "2.0.0"
_scratch = threading.local()


def _buffers(frames: int, params: FeatureParams) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Zero-padded frame and spectrum arrays reused across calls (per thread): fresh large
    arrays cost a page fault per 4 KiB on every call, as much as the FFT itself."""
    cache = _scratch.__dict__.setdefault("buffers", {})
    key = (frames, params)
    if key not in cache:
        if len(cache) >= 4:  # a few batch sizes in turn (a stream's hop, whole patches)
            cache.pop(next(iter(cache)))
        cache[key] = (np.zeros((frames, params.fft_length)), np.empty((frames, params.spectrum_bins), np.complex128),
                      periodic_hann(params.window_samples), params.window_samples)
    return cache[key]


def log_mel_frames(frames, params: FeatureParams = FeatureParams()) -> np.ndarray:
    """[frames, window] samples (int16 or float) -> [frames, mel_bands] float32 log-mel."""
    x = np.asarray(frames)
    if len(x) > _BLOCK:  # frames are independent: blocks bound the scratch memory of long clips
        return np.concatenate([log_mel_frames(x[i : i + _BLOCK], params) for i in range(0, len(x), _BLOCK)])
    sums = _mel_sums(params)
    padded, fft, window, n = _buffers(len(x), params)
    # On the int16 scale (x * 2**-15 is the sample), exactly for samples that came from int16.
    np.multiply(x if x.dtype == np.int16 else to_float(x) * 32768.0, window, out=padded[:, :n])
    if _RFFT_OUT:
        np.fft.rfft(padded, axis=-1, out=fft)
    else:  # numpy < 2 (armv7l's tflite-runtime pins it) has no out=
        fft = np.fft.rfft(padded, axis=-1)
    magnitude = np.abs(fft[:, sums.bin_range])  # [F, B], ascending bins
    # The mel sums must not depend on the batch, and a BLAS product of floats may (its kernel
    # and summation order change with the number of rows). So the magnitudes are rounded to
    # integers, a power-of-two scale per frame putting the frame's largest at 2**28..2**29, and
    # the exact integer mel sums of MelSums are used (relative error < 2**-28 + 1.3e-4).
    peak = magnitude.max(axis=1, initial=0.0)
    shift = (_MAG_BITS - np.frexp(peak)[1]).astype(np.float64)  # frexp: peak < 2**exponent
    magnitude *= np.exp2(shift)[:, None]
    np.rint(magnitude, out=magnitude)
    mel = sums(magnitude)  # [F, bands] exact integers
    mel *= np.exp2(-shift - PCM_BITS - WEIGHT_BITS)[:, None]  # back to real units: exact
    mel += params.log_offset
    return np.log(mel, out=mel).astype(np.float32)


def log_mel(waveform, params: FeatureParams = FeatureParams()) -> np.ndarray:
    """[n] waveform, already padded as wanted -> [frames, mel_bands] float32."""
    return log_mel_frames(frame(np.asarray(waveform), params.window_samples, params.hop_samples), params)


def patch_frames(features: np.ndarray, params: FeatureParams) -> np.ndarray:
    """[frames, bands] -> [patches, patch_frames, bands] at the patch hop (a copy)."""
    f = np.ascontiguousarray(features)
    count = 0 if len(f) < params.patch_frames else 1 + (len(f) - params.patch_frames) // params.patch_hop_frames
    view = np.lib.stride_tricks.as_strided(
        f,
        shape=(count, params.patch_frames, f.shape[1]),
        strides=(f.strides[0] * params.patch_hop_frames, f.strides[0], f.strides[1]),
        writeable=False,
    )
    return view.copy()


def waveform_to_patches(waveform, params: FeatureParams = FeatureParams()) -> np.ndarray:
    """16 kHz waveform (int16 or float) -> [patches, 96, 64] float32 log-mel patches.

    Patch ``i`` covers samples ``[i * patch_hop_samples, i * patch_hop_samples + patch_samples)``
    of the zero-padded waveform, exactly the window a waveform model would be fed.
    """
    return patch_frames(log_mel(pad_waveform(np.asarray(waveform), params), params), params)
