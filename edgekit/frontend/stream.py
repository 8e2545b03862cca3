"""Streaming front end: int16 blocks of any size in, a patch every hop out.

Each 10 ms frame is featurised exactly once, when its 25 ms window is complete; a patch is the
last ``patch_frames`` frames, emitted every ``patch_hop_frames``. Because the featurisers are
row-independent, the patches equal :func:`reference.waveform_to_patches` (or the fixed path's
``waveform_to_codes``) bit for bit, including the zero-padded tail produced by :meth:`flush`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..params import FeatureParams
from . import reference


@dataclass(frozen=True)
class Patch:
    index: int  # patch number since the stream started
    start_sample: int  # first sample of its window, counted from the stream's start
    features: np.ndarray  # [patch_frames, mel_bands], float32 log-mel or int8 codes


class StreamingFrontend:
    def __init__(self, featurise: Callable[[np.ndarray], np.ndarray], params: FeatureParams = FeatureParams(),
                 dtype=np.float32):
        self.params = params
        self._featurise = featurise
        self._dtype = dtype
        self.reset()

    @classmethod
    def float(cls, params: FeatureParams = FeatureParams()) -> "StreamingFrontend":
        return cls(lambda frames: reference.log_mel_frames(frames, params), params, np.float32)

    @classmethod
    def fixed(cls, quant, params: FeatureParams = FeatureParams()) -> "StreamingFrontend":
        from .fixed import FixedFrontend

        return cls(FixedFrontend(quant, params).frames_to_codes, params, np.int8)

    def reset(self) -> None:
        p = self.params
        self._samples = np.zeros(0, np.int16)  # samples not yet fully consumed by frames
        self._samples_start = 0  # absolute index of self._samples[0]
        self._total = 0  # samples pushed so far
        # Frames kept for the next patch: a patch needs patch_frames, the next starts hop later.
        self._frames = np.zeros((0, p.mel_bands), self._dtype)
        self._frames_start = 0  # absolute frame index of self._frames[0]
        self._next_patch = 0

    @property
    def samples_seen(self) -> int:
        return self._total

    def push(self, block: np.ndarray) -> list[Patch]:
        """Feed int16 samples (any length); return the patches that became complete."""
        block = np.asarray(block)
        if block.dtype != np.int16:
            raise TypeError(f"the streaming front end takes int16 PCM, got {block.dtype}")
        p = self.params
        self._total += len(block)
        self._samples = np.concatenate([self._samples, block.reshape(-1)])
        frames = reference.frame(self._samples, p.window_samples, p.hop_samples)  # [n, 400]
        if len(frames):
            feats = self._featurise(frames)  # [n, 64]
            self._frames = np.concatenate([self._frames, feats.astype(self._dtype, copy=False)])
            consumed = len(frames) * p.hop_samples
            self._samples = self._samples[consumed:].copy()
            self._samples_start += consumed
        return self._emit()

    def _emit(self) -> list[Patch]:
        p = self.params
        out = []
        while True:
            first = self._next_patch * p.patch_hop_frames  # absolute frame index
            lo = first - self._frames_start
            if lo + p.patch_frames > len(self._frames):
                break
            out.append(Patch(self._next_patch, first * p.hop_samples, self._frames[lo:lo + p.patch_frames].copy()))
            self._next_patch += 1
        # Drop frames no future patch will use.
        keep_from = self._next_patch * p.patch_hop_frames - self._frames_start
        if keep_from > 0:
            self._frames = self._frames[keep_from:]
            self._frames_start += keep_from
        return out

    def flush(self) -> list[Patch]:
        """End of stream: zero-pad the tail as YAMNet pads a whole clip, emit the last patches."""
        target = reference.padded_length(self._total, self.params)
        out = self.push(np.zeros(target - self._total, np.int16)) if target > self._total else []
        return out


class StreamingWindows:
    """The same patch clock for waveform models: the raw 0.975 s window every hop.

    Emits :class:`Patch` objects whose ``features`` are the window's int16 samples, at the
    start samples the log-mel streams use, so both kinds of model see the same windows.
    """

    def __init__(self, params: FeatureParams = FeatureParams()):
        self.params = params
        self.reset()

    def reset(self) -> None:
        self._samples = np.zeros(0, np.int16)
        self._samples_start = 0
        self._total = 0
        self._next_patch = 0

    @property
    def samples_seen(self) -> int:
        return self._total

    def push(self, block: np.ndarray) -> list[Patch]:
        block = np.asarray(block)
        if block.dtype != np.int16:
            raise TypeError(f"the streaming front end takes int16 PCM, got {block.dtype}")
        p = self.params
        self._total += len(block)
        self._samples = np.concatenate([self._samples, block.reshape(-1)])
        out = []
        while True:
            start = self._next_patch * p.patch_hop_samples
            lo = start - self._samples_start
            if lo + p.patch_samples > len(self._samples):
                break
            out.append(Patch(self._next_patch, start, self._samples[lo:lo + p.patch_samples].copy()))
            self._next_patch += 1
        drop = self._next_patch * p.patch_hop_samples - self._samples_start
        if drop > 0:
            self._samples = self._samples[drop:]
            self._samples_start += drop
        return out

    def flush(self) -> list[Patch]:
        target = reference.padded_length(self._total, self.params)
        return self.push(np.zeros(target - self._total, np.int16)) if target > self._total else []
