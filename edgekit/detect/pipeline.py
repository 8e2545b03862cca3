"""What the daemon runs per block: the one path (:class:`edgekit.listen.Listener`) → the detector.

Samples go in as 16 kHz int16 blocks of any size; out come the detector's events. The volume
gate (``min_dbfs``) skips inference on quiet windows, which the detector counts as silence.
``evaluate`` and ``calibrate`` drive the same object at full speed, so what they measure is
what the daemon does.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from edgekit.detect.context import SoundScorer
from edgekit.detect.events import Event
from edgekit.listen import Listener, WindowResult
from edgekit.models.model import Model


@dataclass(frozen=True)
class PipelineStats:
    windows: int = 0
    gated: int = 0  # windows skipped by the volume gate
    inference_seconds: float = 0.0  # total time in the model
    last_dbfs: float = -math.inf


class Pipeline:
    def __init__(self, model: Model, detector, frontend: str | None = "fixed", min_dbfs: float | None = None,
                 sounds: Sequence = ()):
        """``sounds``: custom sounds (:class:`edgekit.detect.heads.Sound`) scored on each window's
        embedding; the detector sees them as labels after the model's (:attr:`labels`)."""
        self.model = model
        self.detector = detector
        self.sounds = tuple(sounds)
        self._score_sounds = SoundScorer(self.sounds)  # holds each context sound's last seconds
        # The daemon's default is the fixed-point path; a model without int8 log-mel input (or a
        # waveform model) takes the path it can.
        if frontend == "fixed" and model.input_quant is None:
            frontend = None
        self.listener = Listener(model, frontend, min_dbfs, embedding=bool(self.sounds))
        self.last_dbfs = -math.inf
        self.on_window = None  # optional callback(WindowResult): verbose logging, clips, the live feed

    @property
    def labels(self) -> tuple[str, ...]:
        """What each score the detector gets stands for: the model's labels, then the sounds."""
        return labels_with_sounds(self.model.labels, self.sounds)

    @property
    def stats(self) -> PipelineStats:
        li = self.listener
        return PipelineStats(li.windows, li.gated, li.inference_seconds, self.last_dbfs)

    @property
    def stream_seconds(self) -> float:
        return self.listener.seconds

    def samples_wanted(self) -> int:
        return self.listener.samples_wanted()

    def push(self, block: np.ndarray) -> list[Event]:
        return self._detect(self.listener.push(block))

    def flush(self) -> list[Event]:
        return self._detect(self.listener.flush())

    def close(self) -> list[Event]:
        return self.detector.close(time.monotonic(), time.time(), self.stream_seconds)

    def _detect(self, results: list[WindowResult]) -> list[Event]:
        events: list[Event] = []
        for r in results:
            self.last_dbfs = r.dbfs
            scores = r.scores
            if self.sounds:
                mine = self._score_sounds(r)  # also on gated windows: they end a context
                if scores is not None:
                    scores = np.concatenate([scores, mine])
            events += self.detector.update(scores, time.monotonic(), time.time(), r.end, r.dbfs)
            if self.on_window is not None:  # after the detector, so it sees this window's rule scores
                self.on_window(r)
        return events


def labels_with_sounds(labels, sounds) -> tuple[str, ...]:
    return tuple(labels) + tuple(snd.name for snd in sounds)
