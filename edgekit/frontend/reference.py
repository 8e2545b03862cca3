"""Float reference of YAMNet's log-mel features, in numpy.

Mirrors ``research/audioset/yamnet/features.py`` step by step; every function takes
``(data, params)``. Computed in float64 and returned as float32, so it is a reference for the
fixed-point path rather than a copy of the official float32 graph's rounding.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

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


def log_mel_frames(frames, params: FeatureParams = FeatureParams()) -> np.ndarray:
    """[frames, window] samples (int16 or float) -> [frames, mel_bands] float32 log-mel."""
    x = to_float(frames) * periodic_hann(params.window_samples)  # [F, 400]
    magnitude = np.abs(np.fft.rfft(x, n=params.fft_length, axis=-1))  # [F, 257]
    # einsum, not matmul: BLAS picks kernels by matrix size, so a frame computed alone could
    # differ in the last bit from the same frame in a batch; streaming must equal batch exactly.
    mel = np.einsum("fk,kj->fj", magnitude, mel_matrix(params))  # [F, 64]
    return np.log(mel + params.log_offset).astype(np.float32)


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
