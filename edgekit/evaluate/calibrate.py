"""Choose each rule's thresholds from the room's own background: a false-alarm budget, then recall.

For every rule, each smoothing/hold candidate gets the lowest ``enter`` (on a 0.01 grid, found by
bisection since false alarms only fall as ``enter`` rises) whose false alarms on the background
stay within ``floor(target x hours)``; ``release`` keeps the rule's release/enter ratio. Among the
candidates, the one that detects most example events wins (ties: fewer false alarms, then the
earliest detection). Without examples, the lowest feasible ``enter`` of the rule's own smoothing wins.

How much background is needed: :mod:`edgekit.audio.background`'s rule, shared with ``sounds learn``:
at least 1/R hours of audible background to claim at most R false alarms per hour (and a minute
at the least); digital silence never counts. Calibration refuses less and says how much is needed.

Everything replays recorded scores through the daemon's own :class:`~edgekit.detector.Detector`,
fed the rule's best label score per window (which is what the detector takes from the full
score vector), so candidates cost no model time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from edgekit.audio.background import audible_seconds, false_alarm_budget, needed_seconds
from edgekit.errors import CalibrationError
from edgekit.detect.rules import Rule, rule_indices
from .annotations import Annotation
from .metrics import RuleMetrics, rule_metrics
from .replay import Scores, detections, replay

ENTERS = np.round(np.arange(0.01, 1.0, 0.01), 2)
SMOOTHINGS = (("none", 1, 1), ("k_of_n", 2, 3), ("mean", 1, 3))
# Context over seconds rather than windows: alarms and knocks are patterns over seconds, so the fit
# also tries the score's mean, and k of n windows, over the last CONTEXTS seconds.
CONTEXTS = (1.0, 2.0)


def smoothings_for(hop: float) -> tuple[tuple[str, int, int], ...]:
    """SMOOTHINGS, and those over CONTEXTS seconds at this hop (where that is more than 3 windows)."""
    more = []
    for seconds in CONTEXTS:
        n = min(100, int(round(seconds / hop)))
        if n > 3:
            more += [("mean", 1, n), ("k_of_n", max(2, n // 3), n)]
    return SMOOTHINGS + tuple(more)


# Holds tried with examples: 0 for short sounds; up to 5 s bridges a beeping alarm's or a dog's
# pauses, so one sound stays one event (and its offset is matched), without merging sounds
# that are usually further apart.
HOLDS = (0.0, 1.0, 3.0, 5.0)


@dataclass(frozen=True)
class Fitted:
    rule: Rule
    false_alarms: int  # on the background it was fitted on
    false_alarms_per_hour: float
    background_hours: float
    examples: RuleMetrics | None  # on the examples mixed into the background (None: no examples)

    @property
    def expected_per_hour(self) -> float:
        """False alarms an hour to expect on new audio of the room: (k + 1)/h for k kept on h hours
        (the threshold sits just above the (k+1)-th peak; see edgekit.audio.background)."""
        return (self.false_alarms + 1) / self.background_hours if self.background_hours > 0 else float("inf")

    def as_dict(self) -> dict:
        r = self.rule
        return {
            "enter": r.enter, "release": r.release, "smoothing": r.smoothing, "k": r.k, "n": r.n, "hold": r.hold,
            "false_alarms": self.false_alarms, "false_alarms_per_hour": self.false_alarms_per_hour,
            "background_hours": self.background_hours,
            "expected_per_hour_on_new_audio": self.expected_per_hour,
            "recall": self.examples.recall if self.examples else None,
            "examples": self.examples.events if self.examples else 0,
            "detected": self.examples.detected if self.examples else 0,
            "latency_p50": self.examples.latency_p50 if self.examples else None,
        }


def needed_hours(target_fa_per_hour: float) -> float:
    return needed_seconds(target_fa_per_hour) / 3600.0


def check_background(hours: float, target_fa_per_hour: float) -> int:
    """The false alarms allowed on ``hours`` of audible background (the rule ``sounds learn`` uses too)."""
    return false_alarm_budget(hours * 3600.0, target_fa_per_hour, "--target-fa-per-hour")


def background_hours(background: Sequence[Scores]) -> float:
    """Audible hours of recorded background, measured on its samples as ``sounds learn`` measures
    its room (scores made without the audio, e.g. in a test, fall back on their windows' levels)."""
    return sum(s.audible if s.audible is not None else audible_seconds(s.dbfs, s.hop) if len(s.dbfs) else 0.0
               for s in background) / 3600.0


def rule_track(scores: Scores, rule: Rule, labels: Sequence[str]) -> Scores:
    """The recording reduced to the rule's best label score per window, as one label "x"."""
    idx = sorted(rule_indices(rule, labels)[0])
    col = scores.scores[:, idx].max(axis=1, keepdims=True) if idx else np.zeros((len(scores.end), 1), np.float32)
    return replace(scores, scores=col)


def _one(rule: Rule) -> Rule:
    return replace(rule, labels=("x",), sounds=())


def _dets(track: Scores, rule: Rule, name: str):
    return detections(replay(track, [rule], ("x",)), [rule], name, track.hop)[rule.name]


def count_alarms(tracks: Sequence[Scores], rule: Rule) -> int:
    return sum(len(_dets(t, rule, f"bg{i}")) for i, t in enumerate(tracks))


def with_enter(rule: Rule, enter: float, ratio: float) -> Rule:
    return replace(rule, enter=float(enter), release=float(round(min(enter, max(0.0, enter * ratio)), 3)))


def fit_rule(rule: Rule, labels: Sequence[str], background: Sequence[Scores], target_fa_per_hour: float,
             examples: Scores | None = None, reference: Sequence[Annotation] = (),
             smoothings: Sequence[tuple[str, int, int]] | None = None, holds: Sequence[float] | None = None,
             ) -> Fitted:
    hours = background_hours(background)
    allowed = check_background(hours, target_fa_per_hour)
    ratio = rule.release / rule.enter if rule.enter > 0 else 0.6
    bg = [rule_track(s, rule, labels) for s in background]
    ex = rule_track(examples, rule, labels) if examples is not None else None
    if ex is None:
        smoothings = [(rule.smoothing, rule.k, rule.n)]
    elif smoothings is None:
        smoothings = smoothings_for(ex.hop)
    holds = sorted({rule.hold, *(holds if holds is not None else (HOLDS if ex is not None else ()))})
    best: tuple | None = None
    for smoothing, k, n in smoothings:
        for hold in holds:
            base = _one(replace(rule, smoothing=smoothing, k=k, n=n, hold=hold))
            lo, hi = 0, len(ENTERS) - 1  # smallest grid index whose alarms fit the budget
            if count_alarms(bg, with_enter(base, ENTERS[hi], ratio)) > allowed:
                continue
            while lo < hi:
                mid = (lo + hi) // 2
                if count_alarms(bg, with_enter(base, ENTERS[mid], ratio)) <= allowed:
                    hi = mid
                else:
                    lo = mid + 1
            cand = with_enter(base, ENTERS[lo], ratio)
            fa = count_alarms(bg, cand)
            m = None
            if ex is not None:
                m = rule_metrics(reference, _dets(ex, cand, "examples"), {"examples": ex.duration},
                                 collars=False)
            key = ((m.detected if m else 0), -fa, -(m.latency_p50 or 9e9) if m and m.latency_p50 is not None else -9e9,
                   -cand.enter)
            if best is None or key > best[0]:
                best = (key, cand, fa, m)
    if best is None:
        raise CalibrationError(
            f"rule {rule.name}: even enter = {ENTERS[-1]} raises more than {allowed} false alarms on "
            f"{hours * 60:.0f} min of background; its labels fire on this room's sounds (try other labels)"
        )
    _, cand, fa, m = best
    fitted = replace(cand, labels=rule.labels, sounds=rule.sounds)
    return Fitted(fitted, fa, fa / hours, hours, m)


def write_config(source_text: str, fitted: dict[str, Fitted], note: str) -> str:
    """A copy of the config's TOML with the fitted values; comments and layout kept (tomlkit).

    A value that changes loses its trailing comment (it described the old value, e.g. ``hold =
    0.0  # one break, one event``) and says it was calibrated instead; an unchanged value keeps it.
    """
    tomlkit = _tomlkit()

    doc = tomlkit.parse(source_text)
    for table in doc.get("rules", []):
        f = fitted.get(table.get("name"))
        if f is None:
            continue
        for key, value in _keys(f.rule).items():
            if key in table and table[key] == value:
                continue
            item = tomlkit.item(value)
            item.comment("set by edgekit calibrate")
            table[key] = item
        for key in ("k", "n"):
            if key not in _keys(f.rule) and key in table:
                del table[key]  # the config refuses k/n that the smoothing does not use
    return "".join(f"# {line}\n" for line in note.splitlines()) + tomlkit.dumps(doc)


def _keys(r: Rule) -> dict:
    keys = {"enter": r.enter, "release": r.release, "smoothing": r.smoothing}
    if r.smoothing == "k_of_n":
        keys["k"] = r.k
    if r.smoothing in ("k_of_n", "mean"):
        keys["n"] = r.n
    keys["hold"] = r.hold
    return keys


def _tomlkit():
    try:
        import tomlkit
    except ImportError:
        raise CalibrationError("writing the config needs tomlkit: pip install 'edgekit[evaluate]'") from None
    return tomlkit


def toml_snippet(fitted: dict[str, Fitted]) -> str:
    tomlkit = _tomlkit()

    lines = []
    for name, f in fitted.items():
        lines += ["[[rules]]", f'name = "{name}"'] + [f"{k} = {tomlkit.item(v).as_string()}" for k, v in _keys(f.rule).items()] + [""]
    return "\n".join(lines)
