"""YAMNet's log-mel transcribed literally from research/audioset/yamnet/features.py, in float64.

An oracle for the tests, independent of both front ends: numpy's FFT of the whole 512-point
frame, the full [257, 64] float64 mel matrix, a plain product. Slow, and not batch-invariant,
which is why the package does not use it.
"""

from __future__ import annotations

import numpy as np

from edgekit.frontend import reference as R
from edgekit.params import FeatureParams


def log_mel_frames(frames, params: FeatureParams = FeatureParams()) -> np.ndarray:
    x = R.to_float(frames) * R.periodic_hann(params.window_samples)
    magnitude = np.abs(np.fft.rfft(x, n=params.fft_length, axis=-1))
    return np.log(magnitude @ R.mel_matrix(params) + params.log_offset)


def waveform_to_patches(pcm, params: FeatureParams = FeatureParams()) -> np.ndarray:
    frames = R.frame(R.pad_waveform(np.asarray(pcm), params), params.window_samples, params.hop_samples)
    return R.patch_frames(log_mel_frames(frames, params), params)
