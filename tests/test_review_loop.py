"""The review loop: clips reviewed on the status page feed `sounds learn` and `calibrate`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from edgekit.cli import main as cli
from edgekit.daemon.config import load_config
from edgekit.web.reviews import reviewed_clips
from edgekit.web.store import EventStore

from conftest import DATA, need

RATE = 16000
IDS = ["01a23cdf-f9a0-78ba-9917-f0cd13ff4c7" + c for c in "0123"]


def setup_state(tmp_path: Path, recordings) -> Path:
    """A config, its event log with four events, clips for three; reviews: 2 correct, 1 false alarm,
    1 without a clip."""
    state = tmp_path / "state"
    (state / "clips").mkdir(parents=True)
    cfg = tmp_path / "edgekit.toml"
    cfg.write_text(f'[model]\nmodel = "yamnet"\n[[rules]]\nname = "smoke"\nlabels = ["Smoke detector, smoke alarm"]\n'
                   f'[log]\npath = "{state / "events.jsonl"}"\n')
    alarm, speech = recordings["smoke_alarm.wav"], recordings["dog.wav"]
    clips = {IDS[0]: alarm[: 5 * RATE], IDS[1]: alarm[5 * RATE: 10 * RATE], IDS[2]: speech[: 4 * RATE]}
    with open(state / "events.jsonl", "w") as f:
        for i in IDS:
            for kind in ("start", "end"):
                f.write(json.dumps({"kind": kind, "rule": "smoke", "label": "Smoke detector, smoke alarm", "score": 0.9,
                                    "peak": 0.9, "t_wall": 1.8e9, "stream_time": 1.0, "id": i,
                                    "clip": f"{i}.flac" if i in clips and kind == "end" else None}) + "\n")
    for i, pcm in clips.items():
        sf.write(state / "clips" / f"{i}.flac", pcm, RATE, format="FLAC")
    store = EventStore(state / "events.jsonl", state)
    store.review(IDS[0], {"verdict": "correct"})
    store.review(IDS[1], {"verdict": "correct", "note": "kitchen"})
    store.review(IDS[2], {"verdict": "false_alarm", "note": "the dog"})
    store.review(IDS[3], {"verdict": "false_alarm"})
    return cfg


def test_reviews_sort_clips_into_examples_and_background(tmp_path, recordings):
    cfg = setup_state(tmp_path, recordings)
    r = reviewed_clips(load_config(cfg))
    assert sorted(p.stem for p in r.confirmed["smoke"]) == IDS[:2]
    assert [p.stem for p in r.all_false_alarms()] == [IDS[2]]
    assert r.without_clip == 1


def test_sounds_learn_from_reviews(tmp_path, recordings, monkeypatch, capsys):
    cfg = setup_state(tmp_path, recordings)
    monkeypatch.setenv("EDGEKIT_SOUNDS_DIR", str(tmp_path / "sounds"))
    monkeypatch.setenv("EDGEKIT_MODEL_DIR", str(need(DATA / "models")))
    # The reviews' false alarms alone (4 s) are too little room for any false-alarm budget (the one
    # background rule: at least 30 s, 1/target hours), so a recording of the room comes with them.
    room = need(DATA / "events" / "background" / "rain")  # 200 s: enough for a budget of 18/h or more
    assert cli(["sounds", "learn", "smoke", "--from-reviews", str(cfg), "--background", str(room),
                "--fa-per-hour", "20", "--no-bank", "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["summary"]["examples"] == 2
    assert "2 confirmed clip(s), 1 false-alarm clip(s), 1 reviewed event(s) without a clip" in out.err
    # A rule with no confirmed clips and no --examples: a clear refusal.
    assert cli(["sounds", "learn", "bell", "--from-reviews", str(cfg), "--rule", "bell"]) == 1
    assert "no examples" in capsys.readouterr().err
