"""Event clips and speech privacy: the daemon replaying real recordings through the real model.

The daemon runs in process (speed max, gpiozero's MockFactory as the chip); its clips are read
back and compared sample for sample with the track it replayed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edgekit.daemon.clips import ClipRecorder
from edgekit.daemon.service import Service
from edgekit.daemon.settings import ClipSettings
from edgekit.detect.events import Event
from edgekit.detect.rules import Rule

RATE = 16000
ALARM = '["Smoke detector, smoke alarm", "Fire alarm", "Alarm", "Siren"]'


def run_daemon(tmp_path: Path, models_dir: Path, track: np.ndarray, *, labels=ALARM, clips: str = "",
               hold: float = 2.0) -> tuple[list[dict], Path]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    source = tmp_path / "track.wav"
    sf.write(source, track, RATE, subtype="PCM_16")
    cfg = tmp_path / "edgekit.toml"
    cfg.write_text(f"""
[model]
model = "{models_dir / 'yamnet_spectra_in.tflite'}"
[audio]
source = "{source}"
speed = "max"
hop_seconds = 0.1
[[rules]]
name = "watch"
labels = {labels}
enter = 0.5
release = 0.3
smoothing = "k_of_n"
k = 2
n = 3
hold = {hold}
[rules.gpio]
pin = 17
[gpio]
pin_factory = "mock"
[log]
path = "{tmp_path / 'state' / 'events.jsonl'}"
[clips]
{clips}
""")
    assert Service(str(cfg)).run() == 0
    records = [json.loads(x) for x in (tmp_path / "state" / "events.jsonl").read_text().splitlines()]
    return records, tmp_path / "state" / "clips"


def quiet(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), np.int16)


@pytest.fixture(scope="module")
def alarm(recordings) -> np.ndarray:
    return recordings["smoke_alarm.wav"][: 4 * RATE]


def test_clip_is_the_events_audio_with_pre_and_post_roll(tmp_path, models_dir, alarm):
    track = np.concatenate([quiet(4), alarm, quiet(9)])
    records, clips = run_daemon(tmp_path, models_dir, track)
    start, end = records
    assert start["kind"] == "start" and start["clip"] is None and end["kind"] == "end"
    assert end["clip"] == f"{end['id']}.flac" and end["clip_withheld"] is None
    audio, rate = sf.read(clips / end["clip"], dtype="int16")
    assert rate == RATE
    # Sample for sample the replayed track, from 0.975 s (a window) + 2 s before the start's
    # window end to 2 s after the end.
    first = round((start["stream_time"] - 0.975 - 2.0) * RATE)
    last = round((end["stream_time"] + 2.0) * RATE)
    assert len(audio) == last - first
    assert np.array_equal(audio, track[first:last])
    assert first < 4 * RATE < last  # the alarm's onset is inside, after some pre-roll
    assert not list(clips.glob(".*.part"))


def test_a_rule_that_listens_for_speech_keeps_no_clip_unless_opted_out(tmp_path, models_dir, recordings):
    speech = recordings["speech.wav"]
    track = np.concatenate([quiet(2), speech, quiet(6)])
    records, clips = run_daemon(tmp_path / "a", models_dir, track, labels='["Speech"]')
    ends = [r for r in records if r["kind"] == "end"]
    assert ends and all(r["clip"] is None and "listens for speech" in r["clip_withheld"] for r in ends)
    assert not list(clips.glob("*.flac"))
    records, clips = run_daemon(tmp_path / "b", models_dir, track, labels='["Speech"]', clips="keep_speech = true")
    ends = [r for r in records if r["kind"] == "end"]
    assert ends and sorted(p.name for p in clips.glob("*.flac")) == sorted(r["clip"] for r in ends)


def test_a_clip_with_speech_in_it_is_withheld(tmp_path, models_dir, recordings, alarm):
    speech = recordings["speech.wav"]
    talk = np.concatenate([quiet(3), speech[: 12 * RATE]])
    track = np.concatenate([quiet(4), alarm, quiet(8)])
    n = min(len(track), len(talk))
    mixed = track.astype(np.int32)
    mixed[:n] += talk[:n] // 2
    mixed = np.clip(mixed, -32768, 32767).astype(np.int16)
    records, clips = run_daemon(tmp_path / "a", models_dir, mixed)
    ends = [r for r in records if r["kind"] == "end"]
    assert ends, "the alarm under speech was not detected"
    withheld = {}
    if (clips / "withheld.jsonl").exists():
        withheld = {json.loads(x)["id"]: json.loads(x)["reason"] for x in (clips / "withheld.jsonl").read_text().splitlines()}
    for r in ends:
        reason = r["clip_withheld"] or withheld.get(r["id"])
        assert reason and reason.startswith("speech heard"), r
    assert not list(clips.glob("*.flac"))
    # The same without the speech keeps its clip; with keep_speech the speech one is kept too.
    records, clips = run_daemon(tmp_path / "b", models_dir, mixed, clips="keep_speech = true")
    assert [p.name for p in clips.glob("*.flac")] == [r["clip"] for r in records if r["kind"] == "end"]


def test_an_unusable_clips_folder_costs_the_clips_not_the_events(tmp_path, models_dir, alarm, caplog):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "clips").write_text("a file where the folder should be")
    track = np.concatenate([quiet(4), alarm, quiet(5), alarm, quiet(5)])
    with caplog.at_level(logging.WARNING):
        records, _ = run_daemon(tmp_path, models_dir, track)
    assert [r["kind"] for r in records] == ["start", "end", "start", "end"]
    warnings = [r for r in caplog.records if r.name == "edgekit.daemon.clips"]
    assert len(warnings) == 1 and "events are kept" in warnings[0].getMessage(), warnings


# -- the recorder alone ------------------------------------------------------------------------------
def _event(kind, t, eid="01a23cdf-f9a0-78ba-9917-f0cd13ff4c76"):
    return Event(kind, "watch", "Alarm", 0.9, 0.9, 0.0, time.time(), t, id=eid)


def test_a_stop_mid_write_leaves_no_clip_and_the_next_start_clears_the_part(tmp_path, monkeypatch):
    import soundfile

    entered, release = threading.Event(), threading.Event()
    real_write = soundfile.write

    def slow_write(f, *args, **kw):
        f.write(b"fLaC half a clip")
        entered.set()
        release.wait(10)
        return real_write(f, *args, **kw)

    monkeypatch.setattr(soundfile, "write", slow_write)
    rec = ClipRecorder(ClipSettings(post_seconds=0.0), tmp_path, ["Alarm"], [Rule("watch", ("Alarm",))], 0.1)
    block = np.ones(1600, np.int16)
    for _ in range(30):
        rec.push(block)
    rec.on_event(_event("start", 2.0), 3.0)
    ev = rec.on_event(_event("end", 2.5), 3.0)
    assert ev.clip
    for _ in range(20):
        rec.push(block)
    assert entered.wait(10)
    rec.close(timeout=0.2)  # the service stops while the clip is half written
    assert not list(tmp_path.glob("*.flac")) and list(tmp_path.glob(".*.part"))
    release.set()
    monkeypatch.setattr(soundfile, "write", real_write)
    time.sleep(0.2)
    for p in tmp_path.glob("*.flac"):  # the stuck writer may finish its rename late; never a half file
        assert sf.info(p).frames > 0
    ClipRecorder(ClipSettings(), tmp_path, ["Alarm"], [], 0.1).close()
    assert not list(tmp_path.glob(".*.part"))


def test_retention_removes_the_oldest_first_by_size_and_age(tmp_path):
    now = time.time()
    for i in range(6):
        p = tmp_path / f"0000000{i}-0000-7000-8000-000000000000.flac"
        p.write_bytes(b"x" * 400_000)
        age = [40, 5, 4, 3, 2, 1][i] * 86400
        import os

        os.utime(p, (now - age, now - age))
    rec = ClipRecorder(ClipSettings(max_megabytes=1.0, max_days=30), tmp_path, ["Alarm"], [], 0.1)
    rec.close()
    left = sorted(p.name[:8] for p in tmp_path.glob("*.flac"))
    assert left == ["00000004", "00000005"]  # the 40-day-old one by age, then the oldest until <= 1 MB


@pytest.mark.parametrize("clips,key", [({"pre_seconds": -1}, "clips.pre_seconds"), ({"max_megabytes": 0}, "clips.max_megabytes"),
                                       ({"keep_speech": "yes"}, "clips.keep_speech"), ({"post": 2}, "clips.post")])
def test_bad_clip_settings_are_config_errors(clips, key):
    from edgekit.daemon.config import parse_config
    from edgekit.errors import ConfigError

    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_config({"model": {"model": "yamnet"}, "rules": [{"name": "a", "labels": ["Dog"]}], "clips": clips})
