"""Detector: rule scores -> start/end events, on synthetic score series and on real YAMNet scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgekit.daemon.config import load_config, parse_config
from edgekit.detect.detector import Detector
from edgekit.errors import ConfigError
from edgekit.daemon.settings import Rule

LABELS = ("Speech", "Smoke detector, smoke alarm", "Fire alarm", "Dog")
SMOKE, FIRE = 1, 2
EXAMPLE = Path(__file__).resolve().parents[1] / "systemd" / "edgekit.toml"
ALARM_GROUP = ["Smoke detector, smoke alarm", "Fire alarm", "Alarm", "Siren"]


def rule(**kw) -> Rule:
    kw.setdefault("smoothing", "none")
    return Rule(name=kw.pop("name", "alarm"), labels=kw.pop("labels", (LABELS[SMOKE], LABELS[FIRE])), **kw)


def window(smoke: float = 0.0, fire: float = 0.0, speech: float = 0.0) -> np.ndarray:
    s = np.zeros(len(LABELS), np.float32)
    s[0], s[SMOKE], s[FIRE] = speech, smoke, fire
    return s


def feed(det: Detector, series, hop: float, close: bool = False):
    """(kind, stream_time) of every event; window i ends at i * hop."""
    events = []
    for i, value in enumerate(series):
        scores = value if value is None or isinstance(value, np.ndarray) else window(value)
        events += det.update(scores, 1000.0 + i * hop, 1.7e9 + i * hop, i * hop)
    if close:
        t = len(series) * hop
        events += det.close(1000.0 + t, 1.7e9 + t, t)
    return events


def kinds(events):
    return [(e.kind, round(e.stream_time, 2)) for e in events]


def test_hysteresis_starts_at_enter_and_ends_below_release():
    det = Detector([rule(enter=0.5, release=0.3)], LABELS, 1.0)
    events = feed(det, [0.0, 0.45, 0.6, 0.4, 0.31, 0.29, 0.45, 0.5], 1.0)
    # 0.45 is not enough to start; 0.4 and 0.31 keep it open; 0.29 ends it; 0.45 does not restart.
    assert kinds(events) == [("start", 2.0), ("end", 5.0), ("start", 7.0)]


def test_k_of_n_needs_k_hits_in_the_last_n_windows():
    det = Detector([rule(smoothing="k_of_n", k=2, n=3, enter=0.5, release=0.3)], LABELS, 1.0)
    # A lone spike never starts; two hits within three windows do; it ends when fewer than two of
    # the last three are >= release.
    events = feed(det, [0.9, 0.0, 0.0, 0.6, 0.1, 0.8, 0.35, 0.1, 0.2, 0.0], 1.0)
    assert kinds(events) == [("start", 5.0), ("end", 8.0)]
    start, end = events
    assert start.score == pytest.approx((0.6 + 0.8) / 2, abs=1e-6)  # the mean of the hits
    assert end.peak == pytest.approx(0.8, abs=1e-6)  # [.1 .8 .35]: one hit, 0.8


def test_moving_average_over_n_windows():
    det = Detector([rule(smoothing="mean", n=4, enter=0.5, release=0.3)], LABELS, 1.0)
    # means: .25 .5 .75 1 .75 .5 .25 -> start at the second 1.0, end when the mean reaches .25
    events = feed(det, [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0], 1.0)
    assert kinds(events) == [("start", 1.0), ("end", 6.0)]
    assert events[0].score == pytest.approx(0.5) and events[1].peak == pytest.approx(1.0)
    # A single loud window is averaged away.
    det = Detector([rule(smoothing="mean", n=4, enter=0.5, release=0.3)], LABELS, 1.0)
    assert feed(det, [1.0, 0.0, 0.0, 0.0], 1.0) == []


def test_min_duration_in_seconds():
    det = Detector([rule(min_duration=1.0)], LABELS, 0.48)
    # Two windows (0.96 s) are not enough; three (1.44 s of windows) are.
    assert feed(det, [0.9, 0.9, 0.0, 0.0], 0.48) == []
    events = feed(det, [0.0, 0.9, 0.9, 0.9, 0.9], 0.48)
    assert kinds(events) == [("start", 1.44)]
    # A minimum shorter than one hop acts at once.
    det = Detector([rule(min_duration=0.3)], LABELS, 0.48)
    assert kinds(feed(det, [0.9], 0.48)) == [("start", 0.0)]


def beeping(hop: float, on: float = 2.0, off: float = 1.0, cycles: int = 4, tail: float = 6.0):
    """A smoke alarm's pattern: `on` seconds of alarm, `off` seconds of silence, repeated."""
    period = on + off
    total = period * cycles + tail
    return [0.9 if (i * hop < period * cycles and (i * hop) % period < on) else 0.0
            for i in range(int(round(total / hop)))]


def test_hold_makes_one_alarm_with_dips_one_event():
    assert len([e for e in feed(Detector([rule()], LABELS, 0.1), beeping(0.1), 0.1) if e.kind == "start"]) == 4
    det = Detector([rule(hold=1.5)], LABELS, 0.1)
    events = feed(det, beeping(0.1), 0.1)
    assert kinds(events) == [("start", 0.0), ("end", 12.4)]  # silent from 11.0; 1.5 s later (the window at 11.0 counts)
    assert events[1].duration == pytest.approx(12.4)
    # After the end a new alarm starts again at once.
    assert kinds(feed(det, [0.9], 0.1)) == [("start", 0.0)]


def test_events_carry_rule_label_peak_and_times():
    det = Detector([rule(name="smoke", release=0.2)], LABELS, 0.5)
    series = [window(0.0), window(0.6, 0.7), window(0.95, 0.2), window(0.8), window(0.1)]
    events = feed(det, series, 0.5)
    start, end = events
    assert (start.kind, start.rule, start.label) == ("start", "smoke", "Fire alarm")  # the best at the start
    assert start.score == pytest.approx(0.7) and start.peak == pytest.approx(0.7)
    assert (start.t_mono, start.t_wall, start.stream_time) == (1000.5, 1.7e9 + 0.5, 0.5)
    assert (end.kind, end.rule, end.label) == ("end", "smoke", "Fire alarm")
    assert end.peak == pytest.approx(0.95) and end.score == end.peak
    assert end.stream_time == 2.0 and end.duration == pytest.approx(1.5)
    assert set(start.as_dict()) >= {"kind", "rule", "label", "score", "peak", "t_mono", "t_wall", "stream_time"}


def test_an_occurrence_has_one_id_shared_by_its_start_and_end():
    import uuid

    det = Detector([rule(name="smoke", release=0.2)], LABELS, 0.5)
    events = feed(det, [0.0, 0.9, 0.9, 0.0, 0.9, 0.0, 0.9], 0.5, close=True)
    assert [e.kind for e in events] == ["start", "end"] * 3
    ids = [e.id for e in events]
    assert ids[0::2] == ids[1::2]  # each end joins its start
    assert len(set(ids)) == 3  # and every occurrence is new
    for i in ids:
        u = uuid.UUID(i)
        assert u.version == 7 and u.variant == uuid.RFC_4122
    assert all(json_id in e.as_dict()["id"] for e, json_id in zip(events, ids))


def test_id_survives_a_reload_carry_over():
    det = Detector([rule(name="smoke", release=0.2)], LABELS, 0.5)
    (start,) = feed(det, [0.9], 0.5)
    fresh = Detector([rule(name="smoke", release=0.2)], LABELS, 0.5)
    fresh.carry_over(det)
    (end,) = fresh.close(1001.0, 1.7e9 + 1, 1.0)
    assert end.kind == "end" and end.id == start.id


def test_label_is_the_best_over_a_min_duration_wait():
    det = Detector([rule(min_duration=1.5)], LABELS, 0.5)
    events = feed(det, [window(0.6), window(0.9), window(0.7, 0.8)], 0.5)
    assert kinds(events) == [("start", 1.0)] and events[0].label == LABELS[SMOKE]
    assert events[0].peak == pytest.approx(0.9)


def test_gated_windows_count_as_silence():
    det = Detector([rule()], LABELS, 0.5)
    assert feed(det, [None, None], 0.5) == []
    det = Detector([rule(hold=1.0)], LABELS, 0.5)
    events = feed(det, [0.9, None, 0.9, None, None, None], 0.5)
    assert kinds(events) == [("start", 0.0), ("end", 2.0)]  # one gated window is bridged by the hold
    assert det.update(None, 0.0, 0.0, 3.0, dbfs=-80.0) == []


def test_close_ends_open_events_and_resets():
    det = Detector([rule(name="a"), rule(name="b", labels=("Dog",))], LABELS, 0.48)
    assert det.close(1.0, 2.0, 3.0) == []
    feed(det, [0.9, 0.9], 0.48)
    assert det.active() == ["a"]
    (end,) = det.close(5.0, 6.0, 7.0)
    assert (end.kind, end.rule, end.t_mono, end.t_wall, end.stream_time) == ("end", "a", 5.0, 6.0, 7.0)
    assert end.duration == pytest.approx(7.0) and det.active() == []
    assert kinds(feed(det, [0.9], 0.48)) == [("start", 0.0)]  # a fresh start after close


def test_same_events_in_seconds_at_hop_0_1_and_0_48():
    def level(t):  # alarm 1.0-6.0 s with a 0.6 s gap at 3.0 s; a 0.5 s blip at 9.0 s
        return 0.9 if (1.0 <= t < 3.0 or 3.6 <= t < 6.0 or 9.0 <= t < 9.5) else 0.0

    results = {}
    for hop in (0.1, 0.48):
        det = Detector([rule(min_duration=1.0, hold=1.0)], LABELS, hop)
        results[hop] = kinds(feed(det, [level(i * hop) for i in range(int(12 / hop))], hop))
    fast, slow = results[0.1], results[0.48]
    assert [k for k, _ in fast] == [k for k, _ in slow] == ["start", "end"]
    # Each grid sees an edge up to one of its hops late: the times agree within both hops.
    for (_, a), (_, b) in zip(fast, slow):
        assert abs(a - b) <= 0.48 + 0.1 + 1e-6, results


def test_rules_are_independent_and_labels_are_checked():
    det = Detector([rule(name="smoke", labels=("smoke detector, SMOKE ALARM",)), rule(name="dog", labels=("Dog",))],
                   LABELS, 0.48)
    dog = window(0.9)
    dog[3] = 0.8
    assert [(e.rule, e.label) for e in det.update(dog, 0, 0, 0)] == [("smoke", LABELS[SMOKE]), ("dog", "Dog")]
    with pytest.raises(ConfigError, match='rule "x".*"Cat"'):
        Detector([rule(name="x", labels=("Cat",))], LABELS, 0.48)
    with pytest.raises(ValueError, match="4 labels"):
        det.update(np.zeros(3, np.float32), 0, 0, 0)


# --- real scores ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def windows(spectra_model, recordings):
    from edgekit.listen import listen_pcm
    from edgekit.params import FeatureParams

    cache = {}

    def get(name: str, hop: float):
        if (name, hop) not in cache:
            cache[name, hop] = listen_pcm(spectra_model, recordings[name], params=FeatureParams().with_hop(hop))
        return cache[name, hop]

    return get


def run_file(rules, labels, wins, hop):
    det = Detector(rules, labels, hop)
    events = []
    for w in wins:
        events += det.update(w.scores, w.end, 1.7e9 + w.end, w.end)
    end = wins[-1].end + hop
    return events + det.close(end, 1.7e9 + end, end)


@pytest.mark.parametrize("hop", [0.48, 0.1])
def test_real_smoke_alarm_is_one_event_and_speech_none(spectra_model, windows, hop):
    config = parse_config({"groups": {"alarm": ALARM_GROUP},
                           "rules": [{"name": "smoke_alarm", "labels": ["alarm"], "enter": 0.5, "release": 0.3,
                                      "hold": 2.0}]}, labels=spectra_model.labels)
    events = run_file(config.rules, spectra_model.labels, windows("smoke_alarm.wav", hop), hop)
    assert [e.kind for e in events] == ["start", "end"]
    start, end = events
    assert start.label in ALARM_GROUP and start.stream_time < 1.5 and end.peak > 0.9
    assert end.duration > 9.0
    assert run_file(config.rules, spectra_model.labels, windows("speech.wav", hop), hop) == []
    # Without the hold, the alarm's pauses split it (which is why the example config has one).
    bare = parse_config({"rules": [{"name": "smoke_alarm", "labels": ALARM_GROUP, "enter": 0.5, "release": 0.3}]},
                        labels=spectra_model.labels)
    starts = [e for e in run_file(bare.rules, spectra_model.labels, windows("smoke_alarm.wav", hop), hop)
              if e.kind == "start"]
    assert len(starts) >= 2


def test_example_config_rules_on_real_recordings(spectra_model, windows):
    config = load_config(EXAMPLE, labels=spectra_model.labels)
    hop = config.audio.hop_seconds
    got = {name: [(e.kind, e.rule) for e in run_file(config.rules, spectra_model.labels, windows(name, hop), hop)]
           for name in ("smoke_alarm.wav", "glass_break.wav", "speech.wav", "dog.wav")}
    assert got == {
        "smoke_alarm.wav": [("start", "smoke_alarm"), ("end", "smoke_alarm")],
        "glass_break.wav": [("start", "glass_break"), ("end", "glass_break")],
        "speech.wav": [],
        "dog.wav": [],
    }


# --- reloads: what did not change keeps its state --------------------------------------------

def split_run(series, first, second, at: int, hop: float = 0.5):
    """Feed series[:at] to a detector of rules ``first``, reload to ``second``, feed the rest.

    Returns (events, carried names) with the reload's end events in their place.
    """
    old = Detector(first, LABELS, hop)
    events = []
    for i, v in enumerate(series[:at]):
        events += old.update(window(v), 0.0, 0.0, i * hop)
    new = Detector(second, LABELS, hop)
    carried = new.carry_over(old)
    events += old.close(0.0, 0.0, (at - 1) * hop, keep=carried)
    for i, v in enumerate(series[at:], start=at):
        events += new.update(window(v), 0.0, 0.0, i * hop)
    return events, carried


ALARM = [0.0, 0.9, 0.9, 0.2, 0.9, 0.9, 0.9, 0.9, 0.1, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]


@pytest.mark.parametrize("at", range(1, len(ALARM)))
def test_an_unchanged_rule_carries_over_a_reload_at_any_window(at):
    r = rule(smoothing="k_of_n", k=2, n=3, enter=0.5, release=0.3, hold=1.5, name="smoke")
    other = rule(name="dog", labels=("Dog",))
    whole = feed(Detector([r], LABELS, 0.5), ALARM, 0.5)
    assert kinds(whole) == [("start", 1.0), ("end", 6.0)]  # one alarm, one event
    # Reload at any window, with a rule added and the order changed: the same events.
    events, carried = split_run(ALARM, [r], [other, r], at)
    assert carried == ("smoke",)
    assert kinds(events) == kinds(whole)
    assert [e.peak for e in events] == [e.peak for e in whole]


def test_a_changed_rule_ends_its_event_and_starts_fresh():
    r = rule(enter=0.5, release=0.3, name="smoke")
    changed = rule(enter=0.6, release=0.3, name="smoke")
    events, carried = split_run([0.0, 0.9, 0.9, 0.9, 0.9, 0.0], [r], [changed], at=3)
    assert carried == ()
    assert kinds(events) == [("start", 0.5), ("end", 1.0), ("start", 1.5), ("end", 2.5)]


def test_a_removed_rule_ends_its_event_and_a_new_one_starts_fresh():
    smoke = rule(name="smoke")
    fire = rule(name="fire")
    events, carried = split_run([0.9, 0.9, 0.9, 0.0], [smoke], [fire], at=2)
    assert carried == ()
    assert [(e.rule, e.kind) for e in events] == [("smoke", "start"), ("smoke", "end"), ("fire", "start"),
                                                 ("fire", "end")]


def test_no_carry_when_the_hop_or_the_labels_changed():
    r = rule(name="smoke")
    old = Detector([r], LABELS, 0.5)
    old.update(window(0.9), 0.0, 0.0, 0.5)
    assert Detector([r], LABELS, 0.1).carry_over(old) == ()
    # Another model whose class list holds the same names elsewhere: the rule watches the same sounds.
    moved = (LABELS[0], "Fire alarm", "Smoke detector, smoke alarm", "Dog")
    assert Detector([r], moved, 0.5).carry_over(old) == ("smoke",)
    # One whose names differ (matched regardless of case, but not the same class list).
    renamed = (LABELS[0], "SMOKE DETECTOR, SMOKE ALARM", "Fire alarm", "Dog")
    assert Detector([r], renamed, 0.5).carry_over(old) == ()


def test_a_rejected_reload_leaves_the_kept_rules_running():
    smoke, dog = rule(name="smoke"), rule(name="dog", labels=("Dog",))
    old = Detector([smoke, dog], LABELS, 1.0)
    s = window(0.9)
    s[3] = 0.9
    assert len(old.update(s, 0.0, 0.0, 1.0)) == 2
    ended = old.close(0.0, 0.0, 1.0, keep=("smoke",))
    assert [(e.rule, e.kind) for e in ended] == [("dog", "end")]
    assert old.active() == ["smoke"]


def test_stream_offset_keeps_the_clock_counting():
    det = Detector([rule(enter=0.5, release=0.3)], LABELS, 1.0, stream_offset=100.0)
    events = feed(det, [0.9, 0.0], 1.0, close=True)
    assert kinds(events) == [("start", 100.0), ("end", 101.0)]


def test_carry_over_can_be_narrowed_to_named_rules():
    smoke, dog = rule(name="smoke"), rule(name="dog", labels=("Dog",))
    old = Detector([smoke, dog], LABELS, 1.0)
    assert Detector([smoke, dog], LABELS, 1.0).carry_over(old, names={"dog"}) == ("dog",)
