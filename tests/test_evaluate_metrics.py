"""Event metrics: sed_eval's matching on cases whose answer is known, false alarms per hour, latency."""

from __future__ import annotations

import pytest

from edgekit.evaluate.annotations import Annotation
from edgekit.evaluate.metrics import WINDOW_SECONDS, Detection, rule_metrics
from edgekit.evaluate.replay import Scores, detections, replay
from edgekit.detect.rules import Rule

import numpy as np

pytest.importorskip("sed_eval")


def ref(*spans, name="a.wav"):
    return [Annotation(name, a, b, "dog") for a, b in spans]


def det(*spans, name="a.wav"):
    return [Detection(name, a, b) for a, b in spans]


def test_onset_collar_one_second_late_counts_one_and_a_half_does_not():
    m = rule_metrics(ref((10, 13)), det((10.5, 13)), {"a.wav": 60.0})
    assert (m.events, m.detected, m.missed, m.false_alarms) == (1, 1, 0, 0)
    assert m.recall == 1.0 and m.precision == 1.0 and m.f1 == 1.0
    m = rule_metrics(ref((10, 13)), det((11.5, 13)), {"a.wav": 60.0})
    assert (m.detected, m.missed, m.false_alarms) == (0, 1, 1)
    assert m.recall == 0.0 and m.f1 == 0.0


def test_offset_collar_is_the_larger_of_the_collar_and_half_the_event():
    # A 10 s event: offset collar 5 s. A detection ending 4 s early matches; 6 s early does not.
    assert rule_metrics(ref((10, 20)), det((10.2, 16)), {"a.wav": 60.0}).detected == 1
    assert rule_metrics(ref((10, 20)), det((10.2, 14)), {"a.wav": 60.0}).detected == 0
    # Onsets only: both match.
    assert rule_metrics(ref((10, 20)), det((10.2, 14)), {"a.wav": 60.0}, offsets=False).detected == 1


def test_one_detection_cannot_match_two_events_and_counts_add_up_over_files():
    r = ref((10, 12), (11.5, 14)) + ref((5, 7), name="b.wav")
    d = det((10.3, 12.2), (40, 41)) + det((5.1, 7.0), (30, 31), name="b.wav")
    m = rule_metrics(r, d, {"a.wav": 60.0, "b.wav": 60.0})
    assert (m.events, m.detected, m.missed, m.false_alarms) == (3, 2, 1, 2)
    assert m.precision == pytest.approx(0.5) and m.recall == pytest.approx(2 / 3)
    assert m.f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))


def test_false_alarms_per_hour_count_only_detections_away_from_events_per_hour_of_such_audio():
    # A late detection inside the event's span is a false positive for F1 but not a cry of wolf.
    m = rule_metrics(ref((100, 104)), det((102.5, 104), (500, 501), (900, 901)), {"a.wav": 3600.0})
    assert m.false_alarms == 3 and m.background_false_alarms == 2
    span = (104 + 1 + WINDOW_SECONDS) - (100 - 1)
    assert m.background_hours == pytest.approx((3600 - span) / 3600)
    assert m.false_alarms_per_hour == pytest.approx(2 / ((3600 - span) / 3600))


def test_latency_is_first_start_after_onset_late_ones_included():
    m = rule_metrics(ref((10, 14), (50, 54), (90, 94)), det((10.2, 14), (51.5, 54), (55, 56)), {"a.wav": 120.0})
    assert m.latency_p50 == pytest.approx(0.85)
    assert m.detected == 1  # 1.5 s late is outside the collar, yet its latency is still reported


def test_false_alarms_and_latency_use_the_time_the_detection_fired():
    # Matched by its window centre (0.5 s late), yet it fired 1.2 s after the onset.
    d = [Detection("a.wav", 10.5, 12.0, fired=11.2), Detection("a.wav", 500.0, 501.0, fired=500.5)]
    m = rule_metrics(ref((10, 12)), d, {"a.wav": 3600.0})
    assert m.detected == 1 and m.latency_p50 == pytest.approx(1.2) and m.background_false_alarms == 1


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
