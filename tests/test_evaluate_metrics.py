"""Event metrics on cases whose answer is known: the alerting headline, false alarms per hour, latency,
and DCASE's collar F1 (sed_eval) as secondary figures."""

from __future__ import annotations

import pytest

from edgekit.evaluate.annotations import Annotation
from edgekit.evaluate.metrics import AFTER, BEFORE, WINDOW_SECONDS, Detection, rule_metrics
from edgekit.evaluate.replay import Scores, detections, replay
from edgekit.detect.rules import Rule

import numpy as np

pytest.importorskip("sed_eval")


def ref(*spans, name="a.wav"):
    return [Annotation(name, a, b, "dog") for a, b in spans]


def det(*spans, name="a.wav"):
    return [Detection(name, a, b) for a, b in spans]


def fired(*times, name="a.wav"):
    """Detections as the event log shows them: only the start times matter to the headline."""
    return [Detection(name, t - WINDOW_SECONDS / 2, t + 1.0, fired=t) for t in times]


def test_an_event_is_detected_by_a_start_from_half_a_second_before_onset_to_two_after_offset():
    assert (BEFORE, AFTER) == (0.5, 2.0)
    for t, hit in ((9.49, False), (9.51, True), (12.0, True), (14.99, True), (15.01, False)):
        m = rule_metrics(ref((10, 13)), fired(t), {"a.wav": 60.0})
        assert (m.detected, m.missed, m.false_alarms) == ((1, 0, 0) if hit else (0, 1, 1)), t
        assert m.alerts == (("a.wav", 10, 13, t if hit else None),)


def test_a_beeping_alarm_split_by_its_pauses_is_one_detection_and_no_false_alarm():
    # The case: heard 1.3 s late and split in two. DCASE's onset+offset F1 counts a miss
    # and false alarms; the alerting headline counts what the user got: one alarm, on time enough.
    m = rule_metrics(ref((10, 20)), [Detection("a.wav", 10.8, 14, fired=11.3), Detection("a.wav", 15, 19.5, fired=15.5)],
                     {"a.wav": 600.0})
    assert (m.events, m.detected, m.missed, m.false_alarms, m.recall) == (1, 1, 0, 0, 1.0)
    assert m.latency_p50 == pytest.approx(1.3)
    assert m.dcase_onset_offset.detected == 0 and m.dcase_onset_offset.false_alarms == 2


def test_false_alarms_and_their_rate_come_from_the_same_starts():
    m = rule_metrics(ref((100, 104)), fired(101, 105.5, 500, 900), {"a.wav": 3600.0})
    assert m.false_alarms == m.background_false_alarms == 2 and m.detected == 1
    span = (104 + AFTER) - (100 - BEFORE)
    assert m.background_hours == pytest.approx((3600 - span) / 3600)
    assert m.false_alarms_per_hour == pytest.approx(2 / ((3600 - span) / 3600))
    assert m.precision == pytest.approx(2 / 4)  # starts inside an event's span / all starts


def test_latency_is_the_first_start_minus_the_onset_counts_add_up_over_files():
    r = ref((10, 14), (50, 54), (90, 94)) + ref((5, 7), name="b.wav")
    d = fired(10.4, 11.0, 55.5, name="a.wav") + fired(6.0, 30, name="b.wav")
    m = rule_metrics(r, d, {"a.wav": 120.0, "b.wav": 60.0})
    assert (m.events, m.detected, m.missed, m.false_alarms) == (4, 3, 1, 1)
    assert m.latency_p50 == pytest.approx(1.0)  # of 0.4, 5.5, 1.0


def test_dcase_collar_f1_stays_beside_as_a_secondary_figure():
    # Onset collar 1 s: 0.5 s late counts, 1.5 s late does not (sed_eval's own matching).
    m = rule_metrics(ref((10, 13)), det((10.5, 13)), {"a.wav": 60.0})
    assert (m.dcase_onset_offset.detected, m.dcase_onset_offset.f1) == (1, 1.0)
    m = rule_metrics(ref((10, 13)), det((11.5, 13)), {"a.wav": 60.0})
    assert (m.dcase_onset_offset.detected, m.dcase_onset_offset.false_alarms) == (0, 1)
    # A 10 s event: offset collar 5 s. A detection ending 6 s early misses on onset+offset only.
    m = rule_metrics(ref((10, 20)), det((10.2, 14)), {"a.wav": 60.0})
    assert m.dcase_onset_offset.detected == 0 and m.dcase_onset.detected == 1
    assert set(m.as_dict()) >= {"dcase_onset", "dcase_onset_offset", "events", "detected", "false_alarms_per_hour"}


def test_no_events_and_no_detections_give_undefined_ratios_not_errors():
    m = rule_metrics([], [], {"a.wav": 60.0})
    assert (m.events, m.detected, m.recall, m.precision, m.f1, m.false_alarms_per_hour) == (0, 0, None, None, None, 0.0)


def test_detection_offset_is_when_the_score_fell_below_release_not_the_held_end():
    hop = 0.1
    rule = Rule("dog", ("x",), enter=0.5, release=0.3, smoothing="none", hold=2.0)
    values = [0.0] * 10 + [0.9] * 10 + [0.0] * 40  # above from window 10 (t=1.0) to 19 (t=1.9)
    s = Scores(np.arange(len(values)) * hop, np.array(values, np.float32)[:, None], np.zeros(len(values), bool),
               np.zeros(len(values), np.float32), len(values) * hop, hop)
    events = replay(s, [rule], ("x",))
    assert [e.kind for e in events] == ["start", "end"]
    (d,) = detections(events, [rule], "a.wav", hop)["dog"]
    assert d.fired == pytest.approx(1.0)  # the start event: when the daemon acts
    # Matched by the centres of the deciding windows.
    assert d.onset == pytest.approx(1.0 - WINDOW_SECONDS / 2) and d.offset == pytest.approx(2.0 - WINDOW_SECONDS / 2)
    assert events[1].stream_time == pytest.approx(2.0 + 2.0 - hop)
