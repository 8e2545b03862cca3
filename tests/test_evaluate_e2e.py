"""edgekit evaluate / calibrate / soundscape end to end on a small real soundscape with yamnet_spectra_in."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from conftest import DATA, need
from edgekit.cli import main

pytest.importorskip("sed_eval")

EVENTS = DATA / "events"


@pytest.fixture(scope="module")
def scene(tmp_path_factory, models_dir):
    events = need(EVENTS)
    root = tmp_path_factory.mktemp("e2e")
    out = root / "scene.flac"
    rc = main(["soundscape", "--targets", str(events / "target"), "--labels", "dog,siren",
               "--background", str(events / "background" / "rain"), "--minutes", "0.75", "--seed", "5",
               "--snr", "10,20", "-o", str(out)])
    assert rc == 0
    cfg = root / "edgekit.toml"
    cfg.write_text(f"""
[model]
model = "{models_dir / 'yamnet_spectra_in.tflite'}"
[audio]
hop_seconds = 0.1
min_dbfs = -70
[[rules]]
name = "dog"
labels = ["Dog", "Bark"]
enter = 0.5
release = 0.3
[[rules]]
name = "siren_rule"
labels = ["Siren"]
enter = 0.5
release = 0.3
smoothing = "k_of_n"
k = 2
n = 3
hold = 2.0
""")
    return root, cfg, out


def test_evaluate_reports_every_rule_as_json_table_and_plots(scene, capsys):
    root, cfg, audio = scene
    rc = main(["evaluate", "--config", str(cfg), "--annotations", str(audio.with_suffix(".tsv")),
               "--map", "siren_rule=siren", "--json", str(root / "out.json"), "--plot", str(root / "plots"),
               str(audio)])
    out = capsys.readouterr()
    assert rc == 0, out.err
    result = json.loads((root / "out.json").read_text())
    keys = {"events", "detected", "missed", "false_alarms", "precision", "recall", "f1", "false_alarms_per_hour",
            "latency_p50", "latency_p95", "dcase_onset", "dcase_onset_offset", "alerts"}
    assert set(result["rules"]) == {"dog", "siren_rule"}
    for m in result["rules"].values():
        assert keys <= set(m)
        assert m["events"] >= 1 and m["detected"] + m["missed"] == m["events"]
    assert result["rules"]["siren_rule"]["label"] == "siren"
    assert "dog" in out.out and "siren_rule" in out.out
    assert result["rules"]["dog"]["detected"] >= 1  # barks at 10-20 dB over rain are heard
    # Threshold-free PSDS beside them, per rule and across rules, named as DCASE's scenarios.
    assert set(result["psds"]) == {"psds1", "psds2"} and result["psds"]["psds2"]["dtc"] == 0.1
    for m in result["rules"].values():
        assert 0.0 <= m["psds1"] <= m["psds2"] <= 1.0  # scenario 2's tolerances are the looser
    assert result["rules"]["dog"]["psds2"] > 0.1
    assert "PSDS2" in out.out
    pngs = sorted(p.name for p in (root / "plots").glob("*.png"))
    assert pngs == ["curve_dog.png", "curve_siren_rule.png", "timeline_scene.png"]


def test_evaluate_detected_agrees_event_by_event_with_the_daemons_own_event_log(scene, tmp_path):
    """`edgekit run --source --speed max` writes its event log; a plain reading of that log (an event
    is detected when its rule starts within [onset - 0.5 s, offset + 2 s]; any other start is a false
    alarm) gives, event by event, what `evaluate` reports."""
    import csv
    import subprocess
    import sys

    root, cfg, audio = scene
    log = tmp_path / "events.jsonl"
    daemon_cfg = tmp_path / "daemon.toml"
    daemon_cfg.write_text(cfg.read_text() + f'\n[log]\npath = "{log}"\n')
    proc = subprocess.run([sys.executable, "-m", "edgekit", "run", "--config", str(daemon_cfg), "--source", str(audio),
                           "--speed", "max"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    starts: dict[str, list[float]] = {}
    for line in log.read_text().splitlines():
        e = json.loads(line)
        if e["kind"] == "start":
            starts.setdefault(e["rule"], []).append(e["stream_time"])
    tsv = audio.with_suffix(".tsv")
    events = [r for r in csv.DictReader(tsv.open(), delimiter="\t") if r.get("event_label")]
    labels = {"dog": "dog", "siren_rule": "siren"}

    assert main(["evaluate", "--config", str(cfg), "--annotations", str(tsv), "--map", "siren_rule=siren",
                 "--json", str(tmp_path / "out.json"), str(audio)]) == 0
    result = json.loads((tmp_path / "out.json").read_text())["rules"]
    total_detected = 0
    for rule, label in labels.items():
        mine = sorted((float(r["onset"]), float(r["offset"])) for r in events if r["event_label"] == label)
        t = starts.get(rule, [])
        first = [min((x for x in t if a - 0.5 <= x <= b + 2.0), default=None) for a, b in mine]
        plain = [x is not None for x in first]

        def r3(x):
            return None if x is None else round(x, 3)

        theirs = [(r3(a["onset"]), r3(a["offset"]), r3(a["detected_at"])) for a in result[rule]["alerts"]]
        assert theirs == [(r3(a), r3(b), r3(x)) for (a, b), x in zip(mine, first)], rule
        assert result[rule]["detected"] == sum(plain)
        outside = sum(not any(a - 0.5 <= x <= b + 2.0 for a, b in mine) for x in t)
        assert result[rule]["false_alarms"] == outside
        total_detected += sum(plain)
    assert total_detected >= 1 and len(events) >= 2  # not a vacuous agreement


def test_replayed_scores_give_the_daemons_own_events(scene, models_dir):
    """The pipeline's events (the daemon's path) equal a fresh Detector fed the recorded scores."""
    from edgekit.daemon.config import load_config
    from edgekit.evaluate.replay import replay, score_file
    from edgekit.evaluate.runner import model_for

    _, cfg, audio = scene
    model = model_for(load_config(cfg))
    config = load_config(cfg, labels=model.labels)
    scores, live = score_file(model, audio, config.rules, config.model.frontend, config.audio.min_dbfs)
    again = replay(scores, config.rules, model.labels)
    key = [(e.kind, e.rule, e.label, round(e.stream_time, 6), round(e.peak, 6)) for e in live]
    assert key and key == [(e.kind, e.rule, e.label, round(e.stream_time, 6), round(e.peak, 6)) for e in again]
    assert scores.duration == pytest.approx(sf.info(audio).duration, abs=1e-3)
    assert np.all(np.diff(scores.end) == pytest.approx(0.1))


def test_bad_files_are_reported_and_the_rest_still_evaluated(scene, tmp_path, capsys):
    root, cfg, audio = scene
    short = tmp_path / "short.wav"
    sf.write(short, 0.1 * np.ones(8000), 16000)  # half a second: less than one window
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all")
    tsv = tmp_path / "a.tsv"
    tsv.write_text(audio.with_suffix(".tsv").read_text()
                   + "short.wav\t0.1\t0.4\tdog\ngone.wav\t1\t2\tdog\nscene.flac\t3\t2\tdog\nscene.flac\t1\t2\tcat\n")
    rc = main(["evaluate", "--config", str(cfg), "--annotations", str(tsv), "--map", "siren_rule=siren",
               "--json", str(tmp_path / "o.json"), str(audio), str(short), str(junk)])
    err = capsys.readouterr().err
    assert rc == 0
    assert "shorter than one 0.975 s window" in err
    assert "gone.wav is not among the recordings" in err
    assert "not after onset" in err
    assert "'cat' has no rule" in err
    assert "junk.wav: cannot read it as audio" in err
    assert list(json.loads((tmp_path / "o.json").read_text())["files"]) == ["scene.flac"]


def test_calibrate_refuses_too_short_background_saying_how_much_is_needed(scene, capsys):
    root, cfg, audio = scene
    rc = main(["calibrate", "--config", str(cfg), "--background", str(audio), "-o", str(root / "new.toml")])
    assert rc == 1
    err = capsys.readouterr().err
    assert "at least 60 min" in err and "--target-fa-per-hour 80" in err and "audible" in err
    assert not (root / "new.toml").exists()


def test_calibrate_writes_a_config_the_daemon_accepts(scene, capsys):
    from edgekit.daemon.config import load_config

    root, cfg, audio = scene
    rc = main(["calibrate", "--config", str(cfg), "--background", str(need(EVENTS / "background" / "rain")),
               "--examples", "dog=" + str(EVENTS / "target" / "dog"), "--target-fa-per-hour", "20",
               "--hop", "0.48", "-o", str(root / "new.toml"), "--json", str(root / "cal.json")])
    out = capsys.readouterr()
    assert rc == 0, out.err
    new = load_config(root / "new.toml")
    fitted = json.loads((root / "cal.json").read_text())["rules"]
    assert new.rules[0].enter == fitted["dog"]["enter"]
    assert fitted["dog"]["false_alarms_per_hour"] <= 20 and fitted["dog"]["examples"] > 0
    assert fitted["siren_rule"]["examples"] == 0 and new.rules[1].smoothing == "k_of_n"


def test_calibrated_config_says_what_to_expect_per_rule(scene):
    root, _, _ = scene
    text = (root / "new.toml").read_text()
    assert text.startswith("# thresholds calibrated by edgekit calibrate: target 20 false alarms per hour")
    assert "#   dog: " in text and "recall" in text and "#   siren_rule: " in text and "no --examples" in text
    # The examples folder's clips are mixed in several times each: the note says which is which.
    import re

    n_clips = len(list((EVENTS / "target" / "dog").glob("*.*")))
    m = re.search(r"recall [\d.]+ on (\d+) mixtures of (\d+) clips", text)
    assert m and int(m.group(2)) == n_clips


def test_soundscape_without_targets_is_one_clear_error(tmp_path, capsys):
    rc = main(["soundscape", "--targets", str(tmp_path / "none"), "--background", str(tmp_path), "-o",
               str(tmp_path / "x.flac")])
    assert rc == 1 and "no such folder of target clips" in capsys.readouterr().err
    (tmp_path / "t" / "dog").mkdir(parents=True)
    sf.write(tmp_path / "t" / "dog" / "a.wav", np.ones(1600) * 0.1, 16000)
    (tmp_path / "empty").mkdir()
    rc = main(["soundscape", "--targets", str(tmp_path / "t"), "--background", str(tmp_path / "empty"), "-o",
               str(tmp_path / "x.flac")])
    assert rc == 1 and "no background audio" in capsys.readouterr().err
