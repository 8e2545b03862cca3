"""A rule's learned sounds (``sounds = [...]``) and what config check, run and a reload do when
one is missing, broken, or does not fit the model: the same refusal everywhere, exit 78 at start,
the running config kept at a reload; and a name in ``labels`` never silently means a sound."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import DATA, need
from edgekit.cli import main as cli
from edgekit.daemon.config import load_config
from edgekit.detect.heads import EmbeddingSpec, Sound, save_sound
from edgekit.errors import ConfigError
from edgekit.models.zoo import sha256_file


@pytest.fixture(scope="module")
def spectra_sha() -> str:
    return sha256_file(need(DATA / "models") / "yamnet_spectra_in.tflite")


def forged(name: str, sha: str, dims: int = 1024, stock=(), path: Path | None = None, **kw) -> Sound:
    spec = EmbeddingSpec(model="yamnet_spectra_in.tflite", model_sha256=sha, hop_seconds=0.48, frontend="fixed",
                         dims=dims, stock_labels=tuple(f"l{i}" for i in stock), stock_indices=tuple(stock))
    w = np.full(spec.width, -0.01, np.float32)
    return Sound(name=name, weights=w, bias=kw.get("bias", -3.0), threshold=kw.get("threshold", 0.5), spec=spec,
                 summary={})


@pytest.fixture
def sounds(tmp_path, monkeypatch) -> Path:
    d = tmp_path / "sounds"
    d.mkdir()
    monkeypatch.setenv("EDGEKIT_SOUNDS_DIR", str(d))
    monkeypatch.setenv("EDGEKIT_MODEL_DIR", str(need(DATA / "models")))
    return d


def config(path: Path, rule: str, *, source: str = "mic", log: Path | None = None) -> Path:
    path.write_text(f"""
[model]
model = "yamnet_spectra_in"
frontend = "fixed"
[audio]
source = "{source}"
speed = "realtime"
hop_seconds = 0.48
[[rules]]
name = "bell"
{rule}
[log]
path = "{log or path.parent / 'events.jsonl'}"
""")
    return path


def check_and_run(cfg: Path, capsys) -> tuple[str, str]:
    """(config check's error line, run's error line); check must exit 1 and run 78."""
    assert cli(["config", "check", str(cfg)]) == 1
    checked = capsys.readouterr().err.strip()
    assert cli(["run", "--config", str(cfg), "--source", str(DATA / "audio" / "speech.wav")]) == 78
    ran = capsys.readouterr().err.strip()
    return checked, ran


def test_a_missing_sound_is_an_error_in_check_and_run(sounds, tmp_path, capsys):
    cfg = config(tmp_path / "a.toml", 'sounds = ["doorbell"]')
    checked, ran = check_and_run(cfg, capsys)
    assert checked == ran and "\n" not in checked
    assert 'rules[0].sounds[0] (rule "bell"): no learned sound "doorbell"' in checked
    assert "sudo edgekit sounds learn doorbell --service" in checked


def test_a_name_in_labels_that_is_a_learned_sound_is_refused(sounds, tmp_path, capsys, spectra_sha, spectra_model):
    """Before: labels = ["doorbell"] was the user's sound while it existed and YAMNet's "Doorbell"
    (at the default threshold, silently) once it was removed."""
    save_sound(forged("doorbell", spectra_sha), sounds / "doorbell.sound.npz")
    cfg = config(tmp_path / "a.toml", 'labels = ["doorbell"]')
    with pytest.raises(ConfigError, match=r'labels\[0\] \(rule "bell"\): "doorbell" is a learned sound: name it in '
                                          r'sounds = \["doorbell"\] .*or write the model\'s label as "Doorbell"'):
        load_config(cfg, labels=spectra_model.labels)
    checked, ran = check_and_run(cfg, capsys)
    assert checked == ran
    grouped = tmp_path / "g.toml"
    grouped.write_text(config(tmp_path / "g0.toml", 'labels = ["bells"]').read_text()
                       + '[groups]\nbells = ["Doorbell", "doorbell"]\n')
    with pytest.raises(ConfigError, match=r'groups.bells\[1\]: "doorbell" is a learned sound: name it in sounds'):
        load_config(grouped, labels=spectra_model.labels)
    # The model's label in its own case is the model's; the sound by its key is the sound.
    assert load_config(config(tmp_path / "b.toml", 'labels = ["Doorbell"]'), labels=spectra_model.labels).sounds == ()
    both = load_config(config(tmp_path / "c.toml", 'labels = ["Doorbell"]\nsounds = ["doorbell"]'),
                       labels=spectra_model.labels)
    assert both.sounds == ("doorbell",) and both.rules[0].labels == ("Doorbell",)
    # After the sound is removed, the rule that named it is an error, not YAMNet's label.
    assert cli(["sounds", "remove", "doorbell"]) == 0
    capsys.readouterr()
    checked, _ = check_and_run(config(tmp_path / "c.toml", 'sounds = ["doorbell"]'), capsys)
    assert 'no learned sound "doorbell"' in checked


def test_a_rule_needs_labels_or_sounds(sounds, tmp_path):
    with pytest.raises(ConfigError, match=r"labels \(rule \"bell\"\): is required: .*or name learned sounds in sounds"):
        load_config(config(tmp_path / "a.toml", ""))


def test_a_good_sound_with_a_stock_label_runs(sounds, tmp_path, spectra_sha):
    save_sound(forged("doorbell", spectra_sha, stock=(520,)), sounds / "doorbell.sound.npz")
    cfg = config(tmp_path / "a.toml", 'sounds = ["doorbell"]', log=tmp_path / "ev.jsonl")
    assert cli(["config", "check", str(cfg)]) == 0
    assert cli(["run", "--config", str(cfg), "--source", str(DATA / "audio" / "speech.wav"), "--speed", "max"]) == 0


@pytest.mark.parametrize("case", ["dims", "index", "renamed", "nan"])
def test_a_sound_that_would_crash_the_daemon_is_refused_at_start(sounds, tmp_path, capsys, spectra_sha, case):
    """Before: dims 512 → exit 1 at the first window; index 99999 → IndexError traceback; a renamed
    file passed config check and failed run; NaN bias accepted (the rule never fires)."""
    if case == "dims":
        save_sound(forged("doorbell", spectra_sha, dims=512), sounds / "doorbell.sound.npz")
        expect = "takes a 512-d embedding, but yamnet_spectra_in.tflite gives a 1024-d one"
    elif case == "index":
        save_sound(forged("doorbell", spectra_sha, stock=(99999,)), sounds / "doorbell.sound.npz")
        expect = "stock label index 99999 is not a whole number from 0 to 520"
    elif case == "renamed":
        save_sound(forged("bell", spectra_sha), sounds / "bell.sound.npz").rename(sounds / "doorbell.sound.npz")
        expect = "holds the sound 'bell'"
    else:
        save_sound(forged("doorbell", spectra_sha, bias=float("nan")), sounds / "doorbell.sound.npz")
        expect = "its bias nan is outside"
    cfg = config(tmp_path / "a.toml", 'sounds = ["doorbell"]', log=tmp_path / "ev.jsonl")
    checked, ran = check_and_run(cfg, capsys)
    assert checked == ran and expect in checked and "Traceback" not in checked


def test_run_exits_78_without_a_traceback_in_a_real_process(sounds, tmp_path, spectra_sha):
    save_sound(forged("doorbell", spectra_sha, dims=512), sounds / "doorbell.sound.npz")
    cfg = config(tmp_path / "a.toml", 'sounds = ["doorbell"]')
    proc = subprocess.run([sys.executable, "-m", "edgekit", "run", "--config", str(cfg), "--source",
                           str(DATA / "audio" / "speech.wav"), "--speed", "max"],
                          capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert proc.returncode == 78, proc.stderr
    assert "Traceback" not in proc.stderr and "takes a 512-d embedding" in proc.stderr


def test_reload_keeps_the_running_config_when_a_sound_goes_bad(sounds, tmp_path, spectra_sha, caplog):
    """Before: a bad sound installed while running and a SIGHUP: the reload was accepted, then exit 1."""
    from test_service import run_with_scenario, wait_until

    from edgekit.daemon.service import Service

    save_sound(forged("doorbell", spectra_sha), sounds / "doorbell.sound.npz")
    cfg = config(tmp_path / "a.toml", 'sounds = ["doorbell"]', source=str(DATA / "audio" / "speech.wav"))
    service = Service(str(cfg))

    def scenario(svc, result):
        wait_until(lambda: svc.pipeline is not None and svc.pipeline.stats.windows >= 2, 30, "windows")
        save_sound(forged("doorbell", spectra_sha, dims=512), sounds / "doorbell.sound.npz")
        cfg.write_text(cfg.read_text().replace("hop_seconds = 0.48", "hop_seconds = 0.24"))
        os.kill(os.getpid(), signal.SIGHUP)
        wait_until(lambda: any("reload rejected" in r.getMessage() for r in caplog.records), 10, "rejection")
        before = svc.pipeline.stats.windows
        wait_until(lambda: svc.pipeline.stats.windows > before + 2, 10, "windows after the rejected reload")
        result["hop"] = svc.config.audio.hop_seconds
        svc.request_stop()

    result = run_with_scenario(service, scenario)
    assert result["rc"] == 0 and result["hop"] == 0.48
    rejected = [r.getMessage() for r in caplog.records if "reload rejected" in r.getMessage()]
    assert len(rejected) == 1 and "takes a 512-d embedding" in rejected[0]


def test_config_check_says_when_the_service_would_not_find_a_sound(sounds, tmp_path, capsys, spectra_sha,
                                                                    monkeypatch):
    """Before: a sound learned as a user passed `config check` of the service's config, and the
    service (which cannot read the user's folder) then had no such sound."""
    import edgekit.daemon.install as install
    import edgekit.detect.sound_store as store

    service = tmp_path / "var-lib-edgekit" / "sounds"
    monkeypatch.setattr(store, "SERVICE_SOUNDS_DIR", service)
    cfg = config(tmp_path / "edgekit.toml", 'sounds = ["doorbell"]')
    monkeypatch.setattr(install, "CONFIG_PATH", cfg.resolve())
    save_sound(forged("doorbell", spectra_sha), sounds / "doorbell.sound.npz")
    assert cli(["config", "check", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert f"learned sound doorbell: {sounds / 'doorbell.sound.npz'}" in out
    assert f"note: the service reads learned sounds from {service}" in out and "--service" in out
    service.mkdir(parents=True)
    (sounds / "doorbell.sound.npz").rename(service / "doorbell.sound.npz")
    assert cli(["config", "check", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert f"learned sound doorbell: {service / 'doorbell.sound.npz'}" in out and "note:" not in out
