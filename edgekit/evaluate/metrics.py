"""Per-rule detection quality: DCASE event-based metrics (sed_eval), false alarms per hour, latency.

Matching is sed_eval's (DCASE's reference implementation), not ours: a detection counts for an
annotated event when its onset is within ``onset_collar`` seconds of the event's onset and,
unless ``offsets=False``, its offset within max(``onset_collar``, half the event's length) of
the event's offset (sed_eval's ``t_collar`` and ``percentage_of_length=0.5``).

A detection's onset and offset are put at the centre of the windows that decided them, as
frame-based event detection does: a 0.975 s window that starts hearing a sound at its last sample
says nothing about *when* in the window the sound began, and timing it by the window's end would
charge every detection half a window of lateness before any collar. The onset is the centre of
the window that fired the start event; the offset, the centre of the first window below
``release`` (the end event less the rule's ``hold``, which only delays the end on purpose).
What a user waits for is measured apart, by latency and false alarms, on ``fired``: the stream
time of the start event itself (the end of its window, when an action would run).

False alarms per hour count detections that start outside every annotated event of the rule's
label (each widened by the onset collar before, and by the collar plus one window after, since a
window still hears a sound for its length after the sound stops), per hour of audio outside those
same spans: the rate a user would see from the background alone.

Latency is measured for every annotated event that a detection fires within (same widened span):
the first such start event's time minus the annotated onset, so late detections count too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from edgekit.errors import EvaluationError
from .annotations import Annotation

WINDOW_SECONDS = 0.975  # YAMNet's window (0.96 s of frames + one STFT window - one hop)


@dataclass(frozen=True)
class Detection:
    filename: str
    onset: float  # estimated event onset and offset (seconds), matched against the annotations
    offset: float
    peak: float = 0.0
    fired: float | None = None  # stream time of the start event (None: the onset)

    @property
    def at(self) -> float:
        return self.onset if self.fired is None else self.fired


@dataclass(frozen=True)
class RuleMetrics:
    events: int
    detected: int
    missed: int
    false_alarms: int  # detections matched to no event (sed_eval's false positives)
    precision: float | None
    recall: float | None
    f1: float | None
    false_alarms_per_hour: float | None  # on audio with no annotated event of the label
    background_hours: float
    background_false_alarms: int
    latency_p50: float | None
    latency_p95: float | None

    def as_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def _sed_eval():
    try:
        import dcase_util
        import sed_eval
    except ImportError:
        raise EvaluationError(
            "event metrics use DCASE's reference implementation: pip install 'edgekit[evaluate]' "
            "(sed_eval)"
        ) from None
    return sed_eval, dcase_util


def _container(dcase_util, items: Sequence[tuple[str, float, float]], label: str):
    return dcase_util.containers.MetaDataContainer(
        [{"filename": f, "event_label": label, "onset": float(a), "offset": float(b)} for f, a, b in items]
    )


def _none(x) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


def zones(events: Sequence[Annotation], collar: float, duration: float) -> list[tuple[float, float]]:
    """Merged spans of one file where a detection is not a false alarm."""
    spans = sorted((max(0.0, e.onset - collar), min(duration, e.offset + collar + WINDOW_SECONDS)) for e in events)
    merged: list[list[float]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def rule_metrics(reference: Sequence[Annotation], detections: Sequence[Detection], durations: dict[str, float],
                 onset_collar: float = 1.0, offsets: bool = True) -> RuleMetrics:
    """Metrics of one rule against the annotations of its label, over the files in ``durations``."""
    sed_eval, dcase_util = _sed_eval()
    label = "x"  # one class at a time: sed_eval then matches on times only
    metric = sed_eval.sound_event.EventBasedMetrics(
        event_label_list=[label], t_collar=onset_collar, percentage_of_length=0.5,
        evaluate_onset=True, evaluate_offset=offsets,
    )
    latencies: list[float] = []
    bg_seconds = 0.0
    bg_alarms = 0
    for name, duration in durations.items():
        ref = [e for e in reference if e.filename == name]
        est = [d for d in detections if d.filename == name]
        metric.evaluate(
            reference_event_list=_container(dcase_util, [(name, e.onset, e.offset) for e in ref], label),
            estimated_event_list=_container(dcase_util, [(name, d.onset, d.offset) for d in est], label),
        )
        spans = zones(ref, onset_collar, duration)
        bg_seconds += duration - sum(b - a for a, b in spans)
        bg_alarms += sum(not any(a <= d.at <= b for a, b in spans) for d in est)
        for e in ref:
            starts = [d.at for d in est
                      if e.onset - onset_collar <= d.at <= e.offset + onset_collar + WINDOW_SECONDS]
            if starts:
                latencies.append(min(starts) - e.onset)
    counts = metric.class_wise[label]
    tp, fp, fn = int(counts["Ntp"]), int(counts["Nfp"]), int(counts["Nfn"])
    f = metric.results_class_wise_metrics()[label]["f_measure"]
    n_ref = int(counts["Nref"])
    hours = bg_seconds / 3600.0
    return RuleMetrics(
        events=n_ref, detected=tp, missed=fn, false_alarms=fp,
        precision=_none(f["precision"]) if tp + fp else None,
        recall=_none(f["recall"]) if n_ref else None,
        f1=_none(f["f_measure"]) if n_ref and tp + fp else None,
        false_alarms_per_hour=bg_alarms / hours if hours > 0 else None,
        background_hours=hours, background_false_alarms=bg_alarms,
        latency_p50=float(np.percentile(latencies, 50)) if latencies else None,
        latency_p95=float(np.percentile(latencies, 95)) if latencies else None,
    )
