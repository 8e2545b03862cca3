"""Small file bugs from issue 17: a garbage CA file, a world-writable venv, a broken config's
password, classify's audio warnings, the NaN sample's time, a FIFO as input."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from conftest import DATA, need
from edgekit.cli import main as cli


def _config(path: Path, extra: str = "") -> Path:
    path.write_text(f"""
[model]
model = "{need(DATA / 'models') / 'yamnet_spectra_in.tflite'}"
frontend = "fixed"
[audio]
source = "mic"
[[rules]]
name = "smoke"
labels = ["Smoke detector, smoke alarm"]
[log]
path = "{path.parent / 'events.jsonl'}"
{extra}
""")
    return path


def test_config_check_loads_the_ca_file_as_run_does(tmp_path, capsys):
    """Before: config check passed a garbage ca_certs file and run then refused it."""
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    cfg = _config(tmp_path / "a.toml", f'[mqtt]\nhost = "127.0.0.1"\ntls = true\nca_certs = "{ca}"\n')
    assert cli(["config", "check", str(cfg)]) == 1
    checked = capsys.readouterr().err.strip()
    assert "TLS files unusable" in checked and "ca_certs" in checked and "\n" not in checked
    assert cli(["run", "--config", str(cfg), "--source", str(DATA / "audio" / "speech.wav")]) == 78
    assert capsys.readouterr().err.strip() == checked


def test_exec_in_a_venv_with_world_writable_site_packages_is_refused(tmp_path):
    """Before: `service install --exec VENV/bin/edgekit` accepted it; anyone could replace the code."""
    from edgekit.daemon.exec_checks import exec_problems

    venv = tmp_path / "opt-edgekit"
    (venv / "bin").mkdir(parents=True)
    site = venv / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "bin" / "python").symlink_to(sys.executable)
    prog = venv / "bin" / "edgekit"
    prog.write_text(f"#!{venv / 'bin' / 'python'}\nfrom edgekit.cli import main\n")
    prog.chmod(0o755)
    os.chmod(tmp_path, 0o755)
    site.chmod(0o777)
    problems = exec_problems([str(prog), "run"], None, live=True)
    assert any(p.startswith(f"{site} is writable by everyone") for p in problems), problems
    site.chmod(0o755)
    assert not any("writable by everyone" in p for p in exec_problems([str(prog), "run"], None, live=True))


def test_a_broken_config_with_a_readable_password_is_warned_about(tmp_path):
    """Before: a TOML syntax error hid the world-readable password from the warning."""
    from edgekit.daemon.exec_checks import config_secret_warning

    cfg = tmp_path / "edgekit.toml"
    cfg.write_text('[mqtt]\nhost = "broker"\nusername = "pi"\npassword = "hunter2"\n[[rules]\nname = "x"\n')
    cfg.chmod(0o644)
    warning = config_secret_warning(cfg)
    assert warning and "holds an MQTT password and every local user can read it" in warning
    assert "hunter2" not in warning
    cfg.chmod(0o640)
    assert config_secret_warning(cfg) is None


def _loud_float_wav(path: Path, nan_at: float | None = None) -> Path:
    import numpy as np
    import soundfile as sf

    t = np.arange(3 * 16000) / 16000
    x = (3.0 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)  # far beyond full scale: one warning
    if nan_at is not None:
        x[int(nan_at * 16000)] = np.nan
    sf.write(path, x, 16000, subtype="FLOAT")
    return path


def test_classify_prints_each_audio_warning_once(tmp_path, caplog):
    """Before: the silence pre-check decoded the file a first time, so every warning came twice."""
    import logging

    wav = _loud_float_wav(tmp_path / "loud.wav")
    with caplog.at_level(logging.WARNING):
        assert cli(["classify", "--model", str(need(DATA / "models") / "yamnet.tflite"), str(wav)]) == 0
    assert sum("far outside [-1, 1]" in r.getMessage() for r in caplog.records) == 1


def test_classify_still_refuses_silence_and_empty_files_before_printing(tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    sf.write(tmp_path / "zero.wav", np.zeros(40 * 16000, np.int16), 16000)
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.int16), 16000)
    quiet_then_loud = np.concatenate([np.zeros(12 * 16000, np.int16), np.full(16000, 3000, np.int16)])
    sf.write(tmp_path / "late.wav", quiet_then_loud, 16000)
    model = str(need(DATA / "models") / "yamnet.tflite")
    assert cli(["classify", "--model", model, str(tmp_path / "zero.wav"), str(tmp_path / "empty.wav")]) == 1
    cap = capsys.readouterr()
    assert cap.out == "" and "digital silence" in cap.err and "holds no samples" in cap.err
    assert cli(["classify", "--model", model, "--json", str(tmp_path / "late.wav")]) == 0
    import json

    doc = json.loads(capsys.readouterr().out)
    assert doc["windows"][-1]["end"] >= 12.5  # the quiet lead-in is still classified, in order


def test_the_nan_sample_is_placed_where_it_is(tmp_path, capsys):
    """Before: "near 5.0 s" (the end of the block it was read in) for a NaN at 0.19 s."""
    wav = _loud_float_wav(tmp_path / "nan.wav", nan_at=0.19)
    assert cli(["classify", "--model", str(need(DATA / "models") / "yamnet.tflite"), str(wav)]) == 1
    err = capsys.readouterr().err
    assert "1 samples from 0.19 s on are NaN or infinite" in err


@pytest.mark.parametrize("command", ["classify", "run"])
def test_a_fifo_or_device_is_refused_up_front(tmp_path, command):
    """Before: a FIFO as input (classify FILE, run --source) blocked forever."""
    import subprocess

    fifo = tmp_path / "in.wav"
    os.mkfifo(fifo)
    for target in (fifo, Path("/dev/zero")):
        argv = ["classify", "--model", str(need(DATA / "models") / "yamnet.tflite"), str(target)] if command == "classify" \
            else ["run", "--config", str(_config(tmp_path / "a.toml")), "--source", str(target)]
        proc = subprocess.run([sys.executable, "-m", "edgekit", *argv], capture_output=True, text=True, timeout=90)
        assert proc.returncode != 0 and "not a regular file" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
