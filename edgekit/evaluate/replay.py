"""Run recordings through the daemon's own path at full speed, and replay its scores through rules.

:func:`score_file` pushes a file, block by block, through the same
:class:`~edgekit.detect.pipeline.Pipeline` (the one path, :class:`edgekit.listen.Listener`) and
:class:`~edgekit.detect.detector.Detector` the daemon builds, with a recorder between them that
keeps each window's scores. :func:`replay` feeds recorded scores to a fresh Detector exactly as the
pipeline did, so trying other thresholds (calibration, curves, the peers' logic) costs no model
time and gives the events the daemon would have given (a test pins that equality).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from edgekit.audio.background import AudibleCounter
from edgekit.audio.files import iter_audio
from edgekit.detect.detector import Detector
from edgekit.detect.events import Event
from edgekit.detect.rules import Rule
from .metrics import WINDOW_SECONDS, Detection

RATE = 16000


@dataclass
class Scores:
    """One recording's windows: ``end`` times (s), ``scores`` [windows, labels] (zeros where gated)."""

    end: np.ndarray
    scores: np.ndarray
    gated: np.ndarray  # bool per window: the volume gate skipped it (the detector saw None)
    dbfs: np.ndarray
    duration: float  # seconds of audio
    hop: float
    closed: float | None = None  # stream time the daemon's path closed the detector at (tail padding included)
    # Seconds of the audio that are not digital silence, measured on its samples as `sounds learn`
    # measures its room (edgekit.audio.background): the calibration budget's one measure.
    audible: float | None = None

    def save(self, path: str | Path) -> None:
        np.savez_compressed(path, end=self.end, scores=self.scores, gated=self.gated, dbfs=self.dbfs,
                            duration=self.duration, hop=self.hop,
                            closed=self.duration if self.closed is None else self.closed,
                            audible=np.nan if self.audible is None else self.audible)

    @classmethod
    def load(cls, path: str | Path) -> "Scores":
        z = np.load(path)
        audible = float(z["audible"]) if "audible" in z.files else np.nan
        return cls(z["end"], z["scores"], z["gated"], z["dbfs"], float(z["duration"]), float(z["hop"]),
                   float(z["closed"]), None if np.isnan(audible) else audible)


class _Recorder:
    """Stands where the pipeline expects its detector: keeps the scores, passes everything on."""

    def __init__(self, detector: Detector):
        self.detector = detector
        self.end: list[float] = []
        self.rows: list[np.ndarray | None] = []
        self.dbfs: list[float] = []

    def update(self, scores, t_mono, t_wall, stream_time, dbfs=None) -> list[Event]:
        self.end.append(stream_time)
        self.rows.append(None if scores is None else np.array(scores, np.float32).reshape(-1))
        self.dbfs.append(-np.inf if dbfs is None else dbfs)
        return self.detector.update(scores, t_mono, t_wall, stream_time, dbfs)

    def close(self, t_mono, t_wall, stream_time) -> list[Event]:
        return self.detector.close(t_mono, t_wall, stream_time)


def score_file(model, path: str | Path, rules: Sequence[Rule] = (), frontend: str = "fixed",
               min_dbfs: float | None = None, sounds: Sequence = ()) -> tuple[Scores, list[Event]]:
    """The daemon's path over a file at full speed: its scores (the model's labels, then the
    custom ``sounds``) and the events ``rules`` gave."""
    from edgekit.detect.pipeline import Pipeline, labels_with_sounds

    hop = model.params.patch_hop_seconds
    labels = labels_with_sounds(model.labels, sounds)
    recorder = _Recorder(Detector(rules, labels, hop))
    pipe = Pipeline(model, recorder, frontend, min_dbfs, sounds=sounds)
    events: list[Event] = []
    pushed = 0
    audible = AudibleCounter()
    for block in iter_audio(path):  # block by block: memory does not grow with the file
        pushed += len(block)
        audible.add(block)
        events += pipe.push(block)
    events += pipe.flush()
    events += pipe.close()
    n = len(labels)
    rows = np.zeros((len(recorder.rows), n), np.float32)
    gated = np.zeros(len(recorder.rows), bool)
    for i, r in enumerate(recorder.rows):
        if r is None:
            gated[i] = True
        else:
            rows[i] = r
    scores = Scores(np.asarray(recorder.end, np.float64), rows, gated, np.asarray(recorder.dbfs, np.float32),
                    pushed / RATE, hop, pipe.stream_seconds, audible.seconds)
    return scores, events


def replay(scores: Scores, rules: Sequence[Rule], labels: Sequence[str], hop: float | None = None,
           every: int = 1) -> list[Event]:
    """The events a fresh Detector gives on recorded scores (``every``: keep one window in that many)."""
    det = Detector(rules, labels, hop or scores.hop * every)
    events: list[Event] = []
    t0 = time.monotonic()
    for i in range(0, len(scores.end), every):
        row = None if scores.gated[i] else scores.scores[i]
        events += det.update(row, t0, 0.0, float(scores.end[i]), float(scores.dbfs[i]))
    events += det.close(t0, 0.0, scores.duration if scores.closed is None else scores.closed)
    return events


def detections(events: Sequence[Event], rules: Sequence[Rule], filename: str, hop: float) -> dict[str, list[Detection]]:
    """Start/end pairs per rule: window centres of the start and of the first window below release."""
    holds = {r.name: r.hold for r in rules}
    out: dict[str, list[Detection]] = {r.name: [] for r in rules}
    open_: dict[str, Event] = {}
    for e in events:
        if e.kind == "start":
            open_[e.rule] = e
        elif e.rule in open_:
            s = open_.pop(e.rule)
            # The end waits `hold` seconds below release, the first window below counting one hop.
            offset = max(s.stream_time, e.stream_time - max(0.0, holds.get(e.rule, 0.0) - hop))
            half = WINDOW_SECONDS / 2
            out[e.rule].append(Detection(filename, s.stream_time - half, max(offset, s.stream_time + 1e-3) - half,
                                         e.peak, s.stream_time))
    return out
