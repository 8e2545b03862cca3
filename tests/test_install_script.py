"""scripts/install refuses what cannot work before it changes anything (the install itself is
tested under a real systemd in test_systemd_boot.py)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "install"


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *argv], capture_output=True, text=True, timeout=30)


def test_help_names_the_offline_options():
    r = run("--help")
    assert r.returncode == 0
    for opt in ("--wheels DIR", "--model FILE", "--uninstall", "--purge", "--venv DIR"):
        assert opt in r.stdout


def test_needs_root():
    argv = [str(SCRIPT)]
    if os.geteuid() == 0:  # as someone else
        if shutil.which("runuser") is None:
            pytest.skip("root, and no runuser to run it as nobody")
        argv = ["runuser", "-u", "nobody", "--", *argv]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "run it as root: sudo" in r.stderr, r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the checks after the root check need root")
@pytest.mark.parametrize("argv,why", [
    (("--venv", "/home/pi/venv"), "the service's sandbox hides that place"),
    (("--venv", "/tmp/edgekit"), "the service's sandbox hides that place"),
    (("--venv", "opt/edgekit"), "give an absolute path"),
    (("--purge",), "--purge goes with --uninstall"),
    (("--frobnicate",), "unknown option --frobnicate"),
])
def test_refuses_before_changing_anything(argv, why):
    r = run(*argv)
    assert r.returncode == 1 and why in r.stderr
    assert r.stderr.count("\n") == 1  # one line, nothing done
