"""Per-rule detection quality, as an alarm is judged; DCASE's collar-based F1 beside it.

The headline (``events``, ``detected``, ``missed``, ``false_alarms``, ``recall``,
``false_alarms_per_hour``, latency) is an **alerting** metric, read off the rule's start events
alone, as a user reads the event log (a test checks it against the daemon's own log):

- an annotated event is *detected* when its rule starts while it sounds: a start event at stream
  time t with ``onset - 0.5 s <= t <= offset + 2 s`` (:data:`BEFORE`, :data:`AFTER`: a start
  comes at the end of a 0.975 s window and its smoothing may take a window or two more, so a
  start soon after the offset still answers the sound; one just before the onset is the
  annotation's imprecision);
- its *latency* is the first such start minus the onset;
- a *false alarm* is a start outside every event of the rule's label, each widened the same way;
  several starts within one event are one detection and no false alarm (a beeping alarm split
  by its pauses is still one alarm heard);
- ``false_alarms_per_hour`` divides those same false alarms by the hours of audio outside the
  widened events.

Secondary figures, named as such: DCASE's event-based F1 from sed_eval (its reference
implementation), with an onset collar (default 1 s) on onsets only (``dcase_onset``) and on onsets
and offsets (offset collar max(collar, half the event): ``dcase_onset_offset``). For those a
detection is put at the centre of the windows that decided it: the onset is the centre of the
window that fired the start event, the offset the centre of the first window below ``release``
(the end event less the rule's ``hold``). A window says nothing about *when* in its 0.975 s a
sound began, so timing it by the window's end would charge half a window before any collar.
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


BEFORE = 0.5  # seconds before an annotated onset that a start still counts for the event
AFTER = 2.0  # seconds after its offset


@dataclass(frozen=True)
class Collar:
    """A secondary figure: DCASE's collar-based event F1 (sed_eval)."""

    detected: int
    missed: int
    false_alarms: int  # detections matched to no event (sed_eval's false positives)
    precision: float | None
    recall: float | None
    f1: float | None


@dataclass(frozen=True)
class RuleMetrics:
    events: int
    detected: int  # events with a start of the rule within [onset - BEFORE, offset + AFTER]
    missed: int
    false_alarms: int  # starts outside every such span of the rule's label
    precision: float | None  # starts inside an event's span / all starts
    recall: float | None
    f1: float | None
    false_alarms_per_hour: float | None  # the same false alarms, per hour of audio outside the spans
    background_hours: float
    background_false_alarms: int  # = false_alarms (kept for readers of older JSON)
    latency_p50: float | None
    latency_p95: float | None
    dcase_onset: Collar | None = None  # secondary: sed_eval, onset collar only
    dcase_onset_offset: Collar | None = None  # secondary: sed_eval, onset and offset collars
    # Per annotated event, in the order of the reference: (file, onset, offset, first start or None).
    alerts: tuple[tuple[str, float, float, float | None], ...] = ()

    def as_dict(self) -> dict:
        from dataclasses import asdict

        d = asdict(self)
        d["alerts"] = [{"filename": f, "onset": a, "offset": b, "detected_at": t} for f, a, b, t in self.alerts]
        return d


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


def zones(events: Sequence[Annotation], duration: float) -> list[tuple[float, float]]:
    """Merged spans of one file where a start is not a false alarm: each event widened by the tolerance."""
    spans = sorted((max(0.0, e.onset - BEFORE), min(duration, e.offset + AFTER)) for e in events)
    merged: list[list[float]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def first_alert(event: Annotation, starts: Sequence[float]) -> float | None:
    """The first start that answers ``event``, or None: the headline's one matching rule."""
    hits = [t for t in starts if event.onset - BEFORE <= t <= event.offset + AFTER]
    return min(hits) if hits else None


def collar_f1(reference: Sequence[Annotation], detections: Sequence[Detection], files: Sequence[str],
              onset_collar: float = 1.0, offsets: bool = True) -> Collar:
    """DCASE's event-based metric (sed_eval): a secondary figure."""
    sed_eval, dcase_util = _sed_eval()
    label = "x"  # one class at a time: sed_eval then matches on times only
    metric = sed_eval.sound_event.EventBasedMetrics(
        event_label_list=[label], t_collar=onset_collar, percentage_of_length=0.5,
        evaluate_onset=True, evaluate_offset=offsets,
    )
    for name in files:
        metric.evaluate(
            reference_event_list=_container(dcase_util, [(name, e.onset, e.offset) for e in reference
                                                         if e.filename == name], label),
            estimated_event_list=_container(dcase_util, [(name, d.onset, d.offset) for d in detections
                                                         if d.filename == name], label),
        )
    counts = metric.class_wise[label]
    tp, fp, fn = int(counts["Ntp"]), int(counts["Nfp"]), int(counts["Nfn"])
    f = metric.results_class_wise_metrics()[label]["f_measure"]
    n_ref = int(counts["Nref"])
    return Collar(tp, fn, fp, _none(f["precision"]) if tp + fp else None, _none(f["recall"]) if n_ref else None,
                  _none(f["f_measure"]) if n_ref and tp + fp else None)


def rule_metrics(reference: Sequence[Annotation], detections: Sequence[Detection], durations: dict[str, float],
                 onset_collar: float = 1.0, collars: bool = True) -> RuleMetrics:
    """Metrics of one rule against the annotations of its label, over the files in ``durations``.

    ``collars=False`` skips the secondary DCASE figures (calibration's inner loop needs only the
    headline).
    """
    latencies: list[float] = []
    alerts: list[tuple[str, float, float, float | None]] = []
    bg_seconds = 0.0
    false_alarms = inside = 0
    for name, duration in durations.items():
        ref = [e for e in reference if e.filename == name]
        starts = [d.at for d in detections if d.filename == name]
        spans = zones(ref, duration)
        bg_seconds += duration - sum(b - a for a, b in spans)
        outside = sum(not any(a <= t <= b for a, b in spans) for t in starts)
        false_alarms += outside
        inside += len(starts) - outside
        for e in ref:
            t = first_alert(e, starts)
            alerts.append((name, e.onset, e.offset, t))
            if t is not None:
                latencies.append(t - e.onset)
    n_ref = len(alerts)
    detected = len(latencies)
    hours = bg_seconds / 3600.0
    precision = inside / (inside + false_alarms) if inside + false_alarms else None
    recall = detected / n_ref if n_ref else None
    f1 = (2 * precision * recall / (precision + recall) if precision and recall else 0.0) \
        if precision is not None and recall is not None else None
    files = list(durations)
    return RuleMetrics(
        events=n_ref, detected=detected, missed=n_ref - detected, false_alarms=false_alarms,
        precision=precision, recall=recall, f1=f1,
        false_alarms_per_hour=false_alarms / hours if hours > 0 else None,
        background_hours=hours, background_false_alarms=false_alarms,
        latency_p50=float(np.percentile(latencies, 50)) if latencies else None,
        latency_p95=float(np.percentile(latencies, 95)) if latencies else None,
        dcase_onset=collar_f1(reference, detections, files, onset_collar, offsets=False) if collars else None,
        dcase_onset_offset=collar_f1(reference, detections, files, onset_collar, offsets=True) if collars else None,
        alerts=tuple(alerts),
    )
