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

from edgekit.params import FeatureParams
from edgekit.frontend import reference


@dataclass(frozen=True)
class Patch:
    index: int  # patch number since the stream started
    start_sample: int  # first sample of its window, counted from the stream's start
    features: np.ndarray  # [patch_frames, mel_bands], float32 log-mel or int8 codes


class _Windows:
    """Windows of ``length`` rows every ``hop`` rows over a stream of rows (samples or frames).

    Rows are kept only while a future window still needs them.
    """

    def __init__(self, length: int, hop: int, dtype, width: int | None = None):
        self.length, self.hop = length, hop
        self._buf = np.zeros((0,) if width is None else (0, width), dtype)
        self.rows = 0  # rows pushed so far
        self.count = 0  # windows emitted so far

    def extend(self, rows: np.ndarray) -> np.ndarray:
        """Add rows; return the windows that became complete, [n, length(, width)] (a copy)."""
        self.rows += len(rows)
        self._buf = np.concatenate([self._buf, rows])
        start = self.rows - len(self._buf)  # absolute index of self._buf[0]
        lo = self.count * self.hop - start
        avail = len(self._buf) - lo
        n = 0 if avail < self.length else 1 + (avail - self.length) // self.hop
        if n == 1:  # the common case (a block per hop): a slice, no strided view to build
            out = self._buf[lo : lo + self.length][None].copy()
        elif n:
            buf = np.ascontiguousarray(self._buf[lo:])
            # A strided view straight from the constructor (as_strided costs tens of us a call).
            out = np.ndarray((n, self.length, *buf.shape[1:]), buf.dtype, buffer=buf,
                             strides=(buf.strides[0] * self.hop, *buf.strides)).copy()
        else:
            out = np.zeros((0, self.length, *self._buf.shape[1:]), self._buf.dtype)
        self.count += n
        drop = min(self.count * self.hop - start, len(self._buf))
        if drop > 0:
            self._buf = self._buf[drop:]
        return out


class _Stream:
    """int16 blocks in, :class:`Patch` objects out; :meth:`flush` pads the tail like a whole clip."""

    params: FeatureParams

    def reset(self) -> None:
        self._total = 0

    @property
    def samples_seen(self) -> int:
        return self._total

    def push(self, block: np.ndarray) -> list[Patch]:
        """Feed int16 samples (any length); return the patches that became complete."""
        block = np.asarray(block)
        if block.dtype != np.int16:
            raise TypeError(f"the streaming front end takes int16 PCM, got {block.dtype}")
        self._total += block.size
        return self._push(block.reshape(-1))

    def _patches(self, windows: np.ndarray, done: int) -> list[Patch]:
        if not len(windows):
            return []
        first = done - len(windows)
        hop = self.params.patch_hop_samples
        return [Patch(first + k, (first + k) * hop, w) for k, w in enumerate(windows)]

    def flush(self) -> list[Patch]:
        """End of stream: zero-pad the tail as YAMNet pads a whole clip, emit the last patches."""
        target = reference.padded_length(self._total, self.params)
        return self.push(np.zeros(target - self._total, np.int16)) if target > self._total else []


class StreamingFrontend(_Stream):
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
        from edgekit.frontend.fixed import FixedFrontend

        return cls(FixedFrontend(quant, params).frames_to_codes, params, np.int8)

    def reset(self) -> None:
        super().reset()
        p = self.params
        self._frames = _Windows(p.window_samples, p.hop_samples, np.int16)  # samples -> frames
        self._patch = _Windows(p.patch_frames, p.patch_hop_frames, self._dtype, p.mel_bands)  # frames -> patches

    def _push(self, block: np.ndarray) -> list[Patch]:
        frames = self._frames.extend(block)  # [n, 400]
        if not len(frames):
            return []
        feats = self._featurise(frames).astype(self._dtype, copy=False)  # [n, 64]
        return self._patches(self._patch.extend(feats), self._patch.count)  # [m, 96, 64]


class StreamingWindows(_Stream):
    """The same patch clock for waveform models: the raw 0.975 s window every hop.

    Emits :class:`Patch` objects whose ``features`` are the window's int16 samples, at the
    start samples the log-mel streams use, so both kinds of model see the same windows.
    """

    def __init__(self, params: FeatureParams = FeatureParams()):
        self.params = params
        self.reset()

    def reset(self) -> None:
        super().reset()
        self._windows = _Windows(self.params.patch_samples, self.params.patch_hop_samples, np.int16)

    def _push(self, block: np.ndarray) -> list[Patch]:
        return self._patches(self._windows.extend(block), self._windows.count)
