"""Under CI=true a test run whose real parts are missing fails instead of passing by skipping."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, absent, need

PROBE = '''
from pathlib import Path

import pytest

import pulse as pulse_module
from pulse import pulse  # the fixture, as tests use it


@pytest.fixture(autouse=True)
def no_audio_tools(monkeypatch):
    monkeypatch.setattr(pulse_module.shutil, "which", lambda name: None)


def test_data():
    from conftest import need
    need(Path("/no/such/data"))


def test_broker(tmp_path):
    import mosquitto
    mosquitto.find_binary = lambda name: None
    mosquitto.Mosquitto(tmp_path)


def test_pulse(pulse):
    pass
'''


SHIM = """
import importlib.util, sys
sys.path.insert(0, {tests!r})
spec = importlib.util.spec_from_file_location("_edgekit_conftest", {conftest!r})
real = importlib.util.module_from_spec(spec)
spec.loader.exec_module(real)
globals().update({{k: v for k, v in vars(real).items() if not k.startswith("__")}})
"""


def run_probe(tmp_path: Path, ci: str | None, data: Path) -> subprocess.CompletedProcess:
    """The probe in a scratch folder whose conftest is the real one; pytest set up by pyproject.toml."""
    d = tmp_path / "probe"
    d.mkdir()
    (d / "conftest.py").write_text(SHIM.format(tests=str(ROOT / "tests"), conftest=str(ROOT / "tests/conftest.py")))
    (d / "test_probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["EDGEKIT_TEST_DATA"] = str(data)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(d),
                           str(d), "-q", "-p", "no:cacheprovider"],
                          cwd=d, env=env, capture_output=True, text=True, timeout=120)


def test_missing_parts_skip_with_reasons_outside_ci(tmp_path):
    r = run_probe(tmp_path, None, tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 skipped" in r.stdout
    # -rs (pyproject's addopts): each skip says why
    for why in ("test data /no/such/data is absent", "mosquitto broker is not installed", "PulseAudio tools missing"):
        assert why in r.stdout


def test_missing_parts_fail_the_run_under_ci(tmp_path, models_dir):
    from mosquitto import find_binary
    from pulse import pulse_available

    if pulse_available() or not find_binary("mosquitto"):  # a CI run stops before it gets here
        absent("this check of CI=true needs PulseAudio and Mosquitto present (only the probe lacks them)")
    r = run_probe(tmp_path, "true", models_dir.parent)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "2 failed, 1 error" in r.stdout and "CI=true: a missing real part fails the run instead of skipping" in r.stdout


def test_missing_data_stops_a_ci_run_at_once(tmp_path):
    r = run_probe(tmp_path, "true", tmp_path / "nothing")
    assert r.returncode == 4, r.stdout + r.stderr  # pytest's usage error: nothing ran
    assert f"the shared test data at {tmp_path / 'nothing'}" in r.stderr


def test_absent_and_need(monkeypatch, tmp_path):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        absent("gone")
    assert need(tmp_path) == tmp_path
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="gone is absent .* .CI=true"):
        need(tmp_path / "gone")
