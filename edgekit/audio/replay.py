"""A recording replayed through the microphone's path: the same :meth:`read` contract and stats."""

from __future__ import annotations

import time

import numpy as np

from edgekit.audio.files import TARGET_RATE, iter_audio
from edgekit.audio.opener import ListeningState
from edgekit.audio.sources import SourceStats
from edgekit.errors import AudioError


class FileSource:
    """A recording replayed in real time (``speed="realtime"``) or as fast as possible (``"max"``).

    The file is decoded a few seconds at a time (:func:`iter_audio`): replaying a 2-hour
    recording costs the memory of a short one.
    """

    def __init__(self, path: str, block_seconds: float = 0.05, speed: str = "realtime"):
        if speed not in ("realtime", "max"):
            raise AudioError(f"unknown speed {speed!r}: use realtime or max")
        self.path = path
        self._blocks = iter_audio(path)
        self._pending = next(self._blocks, np.zeros(0, np.int16))  # opens the file now: errors at start
        self.block = max(1, round(block_seconds * TARGET_RATE))
        self.speed = speed
        self.stats = SourceStats()
        self._pos = 0  # samples handed out
        self._done = False
        self._t0: float | None = None
        self.state, self.state_detail = ListeningState.LISTENING, ""  # a file is always there

    def start(self) -> None:
        self._t0 = time.monotonic()

    @property
    def finished(self) -> bool:
        return self._done

    def _take(self, n: int) -> np.ndarray:
        while len(self._pending) < n:
            nxt = next(self._blocks, None)
            if nxt is None:
                break
            self._pending = np.concatenate([self._pending, nxt])
        block, self._pending = self._pending[:n], self._pending[n:]
        if not len(block):
            self._done = True
        return block

    def read(self, timeout: float = 0.5, want: int | None = None) -> np.ndarray | None:
        """The next block (``want`` samples when given, else one block); in real time, when
        the clock reaches its end. Empty while it is not due yet; None at the end of the file."""
        if self._done:
            return None
        n = want or self.block
        if self.speed == "realtime":
            # Pace by the wall clock, not by sleeps, so processing time does not add drift.
            due = self._t0 + (self._pos + n) / TARGET_RATE
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(min(wait, timeout))
                if time.monotonic() < due:
                    return np.zeros(0, np.int16)
        block = self._take(n)
        if self._done:
            return None
        self._pos += len(block)
        return block

    def stop(self) -> None:
        self._done = True
        self._blocks.close()

    def describe(self) -> str:
        return f"file {self.path} ({self.speed})"

    def status_text(self) -> str:
        return self.state.value
