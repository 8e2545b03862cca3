"""The JSON-lines event log."""

from __future__ import annotations

import json
from datetime import datetime

import numpy as np
import pytest

from edgekit.actions import build_actions
from edgekit.actions.eventlog import EventLog
from edgekit.errors import EdgekitError, EventLogError
from edgekit.detect.events import Event
from edgekit.daemon.settings import Config, EventLogSettings


def event(i: int, kind: str = "start") -> Event:
    return Event(kind, "alarm", "Smoke detector, smoke alarm", 0.5 + i * 1e-6, 0.9, 100.0 + i, 1.7e9 + i, float(i))


def read_lines(path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def test_one_json_line_per_event_flushed_at_once(tmp_path):
    path = tmp_path / "deep" / "er" / "events.jsonl"  # the directory is created
    elog = EventLog(EventLogSettings(path=str(path)))
    elog.handle(event(0))
    # Another reader sees the line before close: it was flushed on write.
    (line,) = read_lines(path)
    assert line["kind"] == "start" and line["rule"] == "alarm" and line["score"] == pytest.approx(0.5)
    assert datetime.fromisoformat(line["time"]).timestamp() == pytest.approx(1.7e9)
    elog.handle(event(1, "end"))
    assert [r["kind"] for r in read_lines(path)] == ["start", "end"]
    assert elog.status() == "log 2 events"
    elog.close()
    elog.close()  # idempotent
    elog.handle(event(2))  # ignored once closed
    assert len(read_lines(path)) == 2


def test_numpy_scores_are_written_as_numbers(tmp_path):
    path = tmp_path / "events.jsonl"
    elog = EventLog(EventLogSettings(path=str(path)), fsync=True)
    ev = Event("start", "alarm", "Siren", np.float32(0.75), np.float64(0.8), 1.0, 1.7e9, 0.96)
    elog.handle(ev)
    elog.close()
    (line,) = read_lines(path)
    assert line["score"] == 0.75 and line["peak"] == 0.8


def test_rotation_bounds_the_size_and_keeps_backups(tmp_path):
    path = tmp_path / "events.jsonl"
    elog = EventLog(EventLogSettings(path=str(path), max_bytes=2000, backups=2))
    for i in range(300):
        elog.handle(event(i))
    elog.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["events.jsonl", "events.jsonl.1", "events.jsonl.2"]
    for p in tmp_path.iterdir():
        assert 0 < p.stat().st_size <= 2000
    # Oldest to newest across the files, no gaps, ending with the last event.
    names = ("events.jsonl.2", "events.jsonl.1", "events.jsonl")
    seq = [int(r["stream_time"]) for name in names for r in read_lines(tmp_path / name)]
    assert seq == list(range(seq[0], 300))


def test_no_backups_still_bounds_the_size(tmp_path):
    path = tmp_path / "events.jsonl"
    elog = EventLog(EventLogSettings(path=str(path), max_bytes=1000, backups=0))
    for i in range(100):
        elog.handle(event(i))
    elog.close()
    assert [p.name for p in tmp_path.iterdir()] == ["events.jsonl"]
    assert path.stat().st_size <= 1000
    assert read_lines(path)[-1]["stream_time"] == 99


def test_appends_to_an_existing_log(tmp_path):
    path = tmp_path / "events.jsonl"
    for i in range(2):
        elog = EventLog(EventLogSettings(path=str(path)))
        elog.handle(event(i))
        elog.close()
    assert len(read_lines(path)) == 2


def test_unwritable_path_is_a_clear_error_at_start_up(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    expected = "cannot write the event log .*not-a-dir/events.jsonl.*writable \\[log\\] path"
    with pytest.raises(EventLogError, match=expected):
        EventLog(EventLogSettings(path=str(blocker / "events.jsonl")))
    with pytest.raises(EventLogError) as info:
        EventLog(EventLogSettings(path=str(tmp_path)))  # a directory
    assert isinstance(info.value, EdgekitError) and isinstance(info.value, OSError)
    with pytest.raises(EventLogError):
        build_actions(Config(log=EventLogSettings(path=str(blocker / "x.jsonl"))))


def test_write_failure_is_counted_not_raised(tmp_path, caplog):
    path = tmp_path / "events.jsonl"
    elog = EventLog(EventLogSettings(path=str(path)))

    class Full:
        def tell(self):
            return 0

        def write(self, data):
            raise OSError(28, "No space left on device")

        def close(self):
            pass

    elog._file = Full()
    elog.handle(event(0))
    elog.handle(event(1))  # reopens the real file and succeeds
    assert elog.failures == 1 and elog.written == 1
    assert "1 lost" in elog.status()
    assert "No space left on device" in caplog.text
    elog.close()
    assert [r["stream_time"] for r in read_lines(path)] == [1.0]


def test_an_interactive_run_falls_back_to_the_user_state_dir(tmp_path, caplog, monkeypatch):
    from edgekit.actions.eventlog import interactive_fallback

    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")  # a file where a directory should be: unwritable even for root
    wanted = blocker / "edgekit" / "events.jsonl"
    state = tmp_path / "state"
    elog = EventLog(EventLogSettings(path=str(wanted)), fallback_dir=state)
    elog.handle(event(0))
    elog.close()
    assert elog.path == state / "events.jsonl" and len(read_lines(elog.path)) == 1
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert str(wanted) in warning and str(state / "events.jsonl") in warning and "not a systemd service" in warning
    assert elog.describe() == f"event log {state / 'events.jsonl'}"
    # Under systemd there is no fallback: the service writes where its config says, or fails.
    assert interactive_fallback({"INVOCATION_ID": "abc"}) is None
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert interactive_fallback({}) == tmp_path / "xdg" / "edgekit"
    with pytest.raises(EventLogError, match="choose a writable"):
        EventLog(EventLogSettings(path=str(wanted)))
    with pytest.raises(EventLogError, match=f"nor {blocker}"):
        EventLog(EventLogSettings(path=str(wanted)), fallback_dir=blocker)
