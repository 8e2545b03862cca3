"""Threshold-free PSDS (polyphonic sound detection score): a secondary figure of ``evaluate``.

PSDS (Bilen et al., ICASSP 2020; DCASE task 4 since 2021) rates the *scores* a rule watches at
every threshold, so it does not depend on the rule's ``enter``, smoothing or ``hold``: it compares
scorers (labels, wider labels, a learned sound), where the alerting headline rates a configured
rule. Definitions as in the reference implementation, ``psds_eval`` (a test checks agreement with
it, run in an environment of its own: it does not install beside pandas 3 / numpy 2, and
``sed_scores_eval`` has no wheels):

- at a threshold, a rule's detections are the runs of windows scoring at or above it, each window
  standing for ``hop`` seconds around its centre (the timing of the DCASE figures in
  :mod:`.metrics`);
- a detection meets the *detection tolerance criterion* when at least ``dtc`` of it lies in
  annotated events of its label; one that does not is a false positive, and a *cross-trigger* on
  another label when at least ``cttc`` of it lies in that label's events;
- an annotated event is detected when at least ``gtc`` of it is covered by detections meeting
  the DTC;
- per rule, TPR = detected / events, FPR = false positives per hour of all audio, CTR = cross-
  triggers per hour of the other label's events; effective FPR = FPR + ``alpha_ct`` x the mean
  CTR; the PSD-ROC is the best TPR at each effective FPR; across rules the mean TPR less
  ``alpha_st`` x its spread; PSDS = its area up to ``max_efpr`` / ``max_efpr``.

Scenarios as DCASE 2021-2023 set them: ``psds1`` (dtc = gtc = 0.7, alpha_ct 0: timing matters)
and ``psds2`` (dtc = gtc = 0.1, alpha_ct 0.5: detection matters, confusions cost); both
alpha_st 1 and max_efpr 100 per hour. With 0.975 s windows psds1 is hard for short sounds (a
0.5 s knock fills under half of any detection); psds2 is the closer to how an alarm is judged.

Thresholds: every distinct score of the rule when there are at most :data:`MAX_THRESHOLDS`
(the quantised models' scores take at most 256 values: then the figure is exact), else that many
distinct scores evenly by rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

MAX_THRESHOLDS = 256
_GAP = 10.0  # seconds between files laid end to end: no interval spans two files
_HOUR = 3600.0


@dataclass(frozen=True)
class Scenario:
    dtc: float
    gtc: float
    cttc: float
    alpha_ct: float
    alpha_st: float
    max_efpr: float = 100.0  # per hour


SCENARIOS = {
    "psds1": Scenario(dtc=0.7, gtc=0.7, cttc=0.3, alpha_ct=0.0, alpha_st=1.0),
    "psds2": Scenario(dtc=0.1, gtc=0.1, cttc=0.3, alpha_ct=0.5, alpha_st=1.0),
}


@dataclass(frozen=True)
class Result:
    value: float  # across the classes (alpha_st applied)
    per_class: dict[str, float]  # each class's own PSD-ROC area (no alpha_st), same eFPR
    thresholds: dict[str, int]  # operating points per class


class Timeline:
    """Files laid end to end with a gap, so interval arithmetic needs no per-file loop."""

    def __init__(self, durations: Mapping[str, float]):
        self.start: dict[str, float] = {}
        t = 0.0
        for name, seconds in durations.items():
            self.start[name] = t
            t += float(seconds) + _GAP
        self.hours = sum(float(s) for s in durations.values()) / _HOUR

    def intervals(self, items: Sequence[tuple[str, float, float]]) -> tuple[np.ndarray, np.ndarray]:
        """(onsets, offsets) on the timeline, zero-length intervals dropped."""
        on = np.array([self.start[f] + a for f, a, b in items if b > a and f in self.start], float)
        off = np.array([self.start[f] + b for f, a, b in items if b > a and f in self.start], float)
        return on, off


class _Cover:
    """Sum over intervals (overlaps counted each time) of their length inside [a, b], for many a, b."""

    def __init__(self, on: np.ndarray, off: np.ndarray):
        self.on, self.off = np.sort(on), np.sort(off)
        self.con = np.concatenate([[0.0], np.cumsum(self.on)])
        self.coff = np.concatenate([[0.0], np.cumsum(self.off)])

    def _upto(self, t: np.ndarray) -> np.ndarray:
        # Σ_i |[on_i, off_i] ∩ (-inf, t]| = Σ_{on_i < t} (t - on_i) - Σ_{off_i < t} (t - off_i)
        i = np.searchsorted(self.on, t, side="left")
        j = np.searchsorted(self.off, t, side="left")
        return (t * i - self.con[i]) - (t * j - self.coff[j])

    def inside(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self._upto(b) - self._upto(a)


def _union(on: np.ndarray, off: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(on, kind="stable")
    on, off = on[order], off[order]
    reach = np.maximum.accumulate(off) if len(off) else off
    new = np.concatenate([[True], on[1:] > reach[:-1]]) if len(on) else np.zeros(0, bool)
    groups = np.cumsum(new) - 1
    out_on = on[new]
    out_off = np.zeros(len(out_on))
    np.maximum.at(out_off, groups, off)
    return out_on, out_off


@dataclass(frozen=True)
class _Point:
    tpr: float
    fp: int
    ct: dict[str, int]  # per other label


class _Truth:
    """The annotated events of every label on one timeline."""

    def __init__(self, line: Timeline, ground_truth: Sequence[tuple[str, float, float, str]]):
        self.line = line
        self.labels = sorted({lab for *_, lab in ground_truth})
        # Overlapping events of one label are one (their union): psds_eval refuses them outright.
        self.spans = {lab: _union(*line.intervals([(f, a, b) for f, a, b, x in ground_truth if x == lab]))
                      for lab in self.labels}
        self.cover = {lab: _Cover(*self.spans[lab]) for lab in self.labels}
        self.hours = {lab: float(np.sum(off - on)) / _HOUR for lab, (on, off) in self.spans.items()}

    def point(self, det_on: np.ndarray, det_off: np.ndarray, label: str, s: Scenario) -> _Point:
        """One class (scored against ``label``'s events) at one threshold."""
        length = det_off - det_on
        ok = self.cover[label].inside(det_on, det_off) / length >= s.dtc
        on, off = self.spans[label]
        passing = _Cover(det_on[ok], det_off[ok])
        tpr = float(np.count_nonzero(passing.inside(on, off) / (off - on) >= s.gtc)) / len(on)
        bad = ~ok
        ct = {other: int(np.count_nonzero(bad & (cover.inside(det_on, det_off) / length >= s.cttc)))
              for other, cover in self.cover.items() if other != label}
        return _Point(tpr, int(np.count_nonzero(bad)), ct)


def _result(truth: _Truth, points: Mapping[str, Sequence[tuple[np.ndarray, np.ndarray]]],
            class_labels: Mapping[str, str], s: Scenario) -> Result:
    classes = sorted(points)
    missing = [c for c in classes if class_labels[c] not in truth.spans]
    if missing:
        raise ValueError(f"no annotated event for {', '.join(missing)}: PSDS needs at least one per class")
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for c in classes:
        label = class_labels[c]
        tpr, efpr = [0.0], [0.0]  # the point above every score: nothing detected
        for on, off in points[c]:
            p = truth.point(on, off, label, s)
            ctr = [n / truth.hours[o] for o, n in p.ct.items()]
            tpr.append(p.tpr)
            efpr.append(p.fp / truth.line.hours + s.alpha_ct * (float(np.mean(ctr)) if ctr else 0.0))
        curves[c] = (np.array(efpr), np.array(tpr))
    grid = np.unique(np.concatenate([x for x, _ in curves.values()]))
    rows = np.stack([_best_tpr(grid, *curves[c]) for c in classes])
    etpr = np.clip(rows.mean(axis=0) - s.alpha_st * rows.std(axis=0), 0.0, None)
    return Result(_area(grid, etpr, s.max_efpr),
                  {c: _area(grid, rows[i], s.max_efpr) for i, c in enumerate(classes)},
                  {c: len(points[c]) for c in classes})


def psds(ground_truth: Sequence[tuple[str, float, float, str]], durations: Mapping[str, float],
         operating_points: Mapping[str, Sequence[Sequence[tuple[str, float, float]]]],
         scenario: Scenario, class_labels: Mapping[str, str] | None = None) -> Result:
    """PSDS of per-class detection sets (one list of (file, onset, offset) per operating point).

    ``ground_truth``: (file, onset, offset, label), every label's (the others' events count for
    cross-triggers); ``class_labels``: the label each class is scored against (default: its own
    name), which must have at least one event. ``durations``: every evaluated file's seconds.
    """
    truth = _Truth(Timeline(durations), ground_truth)
    points = {c: [truth.line.intervals(dets) for dets in ops] for c, ops in operating_points.items()}
    return _result(truth, points, class_labels or {c: c for c in points}, scenario)


def score_psds(ground_truth: Sequence[tuple[str, float, float, str]], durations: Mapping[str, float],
               series: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray, float]]],
               class_labels: Mapping[str, str], window: float,
               scenarios: Mapping[str, Scenario] = SCENARIOS) -> dict[str, Result]:
    """Threshold-free PSDS of score series: ``series[class][file] = (window ends, scores, hop)``.

    Each class is swept over its own thresholds (:func:`thresholds`); its detections at each
    are the runs of :func:`runs`, laid on one timeline.
    """
    truth = _Truth(Timeline(durations), ground_truth)
    points: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for c, files in series.items():
        a, b, score = _laid_out(truth.line, files, window, durations)
        points[c] = [runs(a, b, score, t) for t in thresholds(score[np.isfinite(score)])]
    return {name: _result(truth, points, class_labels, s) for name, s in scenarios.items()}


def _laid_out(line: Timeline, files, window: float, durations: Mapping[str, float]):
    """(segment starts, ends, scores) of every file's windows on the timeline, -inf between files."""
    parts_a, parts_b, parts_s = [], [], []
    for name, (end, score, hop) in files.items():
        centre = np.asarray(end, float) - window / 2
        t0 = line.start[name]
        parts_a += [t0 + np.clip(centre - hop / 2, 0.0, durations[name]), [np.nan]]
        parts_b += [t0 + np.clip(centre + hop / 2, 0.0, durations[name]), [np.nan]]
        parts_s += [np.asarray(score, float), [-np.inf]]  # a run never crosses into the next file
    if not parts_s:
        return np.zeros(0), np.zeros(0), np.zeros(0)
    return np.concatenate(parts_a), np.concatenate(parts_b), np.concatenate(parts_s)


def _best_tpr(grid: np.ndarray, efpr: np.ndarray, tpr: np.ndarray) -> np.ndarray:
    """The PSD-ROC of one class on ``grid``: the best TPR of any point at or below each eFPR."""
    order = np.argsort(efpr, kind="stable")
    x, y = efpr[order], np.maximum.accumulate(tpr[order])
    i = np.searchsorted(x, grid, side="right") - 1
    return np.where(i >= 0, y[np.maximum(i, 0)], 0.0)


def _area(x: np.ndarray, y: np.ndarray, max_x: float) -> float:
    """Area under the step curve (y holds from each x to the next) from 0 to ``max_x``, / ``max_x``."""
    keep = x < max_x
    edges = np.append(x[keep], max_x)
    return float(np.sum(np.diff(edges) * y[keep]) / max_x)


def thresholds(scores: np.ndarray, most: int = MAX_THRESHOLDS) -> np.ndarray:
    """The thresholds to sweep: every distinct score, or ``most`` of them evenly by rank."""
    values = np.unique(scores)
    if len(values) > most:
        values = values[np.unique(np.linspace(0, len(values) - 1, most).round().astype(int))]
    return values


def runs(a: np.ndarray, b: np.ndarray, score: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Detections at ``threshold``: each run of windows scoring >= it, from its first window's
    segment start to its last's end (segments: ``hop`` s around each window's centre)."""
    above = np.concatenate([[False], score >= threshold, [False]])
    edges = np.flatnonzero(above[1:] != above[:-1])
    on, off = a[edges[0::2]], b[edges[1::2] - 1]
    keep = off > on
    return on[keep], off[keep]
