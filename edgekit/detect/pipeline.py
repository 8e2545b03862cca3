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

import numpy as np

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
                 embedding: bool = False):
        self.model = model
        self.detector = detector
        # The daemon's default is the fixed-point path; a model without int8 log-mel input (or a
        # waveform model) takes the path it can.
        if frontend == "fixed" and model.input_quant is None:
            frontend = None
        self.listener = Listener(model, frontend, min_dbfs, embedding=embedding)
        self.last_dbfs = -math.inf
        self.on_window = None  # optional callback(WindowResult), e.g. verbose logging

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
            if self.on_window is not None:
                self.on_window(r)
            events += self.detector.update(r.scores, time.monotonic(), time.time(), r.end, r.dbfs)
        return events
