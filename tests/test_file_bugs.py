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
