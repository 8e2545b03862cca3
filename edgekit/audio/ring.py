"""A single-producer, single-consumer ring of int16 samples for the audio callback.

The PortAudio callback runs on a real-time thread: it must not block, allocate or log. ``write``
only copies into preallocated memory and bumps counters; the consumer thread does the rest.
Indices are plain ints, whose updates are atomic under the GIL, so no lock is needed.
"""

from __future__ import annotations

import numpy as np


class SampleRing:
    def __init__(self, capacity: int):
        self._buf = np.zeros(capacity, np.int16)
        self.capacity = capacity
        self._written = 0  # total samples ever written (producer)
        self._read = 0  # total samples ever read (consumer)
        self.dropped_samples = 0  # samples the producer had no room for
        self.dropped_blocks = 0

    def write(self, block: np.ndarray) -> None:
        """Producer side: copy a 1-D int16 view in; drop the block whole if it doesn't fit."""
        n = block.shape[0]
        if self._written - self._read + n > self.capacity:
            self.dropped_samples += n
            self.dropped_blocks += 1
            return
        start = self._written % self.capacity
        first = min(n, self.capacity - start)
        self._buf[start:start + first] = block[:first]
        if first < n:
            self._buf[: n - first] = block[first:]
        self._written += n

    def available(self) -> int:
        return self._written - self._read

    def read(self, max_samples: int | None = None) -> np.ndarray:
        """Consumer side: everything written so far (or up to ``max_samples``), as a new array."""
        n = self._written - self._read
        if max_samples is not None:
            n = min(n, max_samples)
        start = self._read % self.capacity
        first = min(n, self.capacity - start)
        out = np.empty(n, np.int16)
        out[:first] = self._buf[start:start + first]
        out[first:] = self._buf[: n - first]
        self._read += n
        return out

    def clear(self) -> None:
        self._read = self._written
