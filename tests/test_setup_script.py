"""scripts/setup and scripts/test on a fresh machine: what they say, the dpkg lock, a user who is
not root. apt-get, dpkg-query and id are stand-ins on PATH, so nothing is installed here."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SETUP = ROOT / "scripts" / "setup"


@pytest.fixture
def fake(tmp_path):
    """A PATH whose apt-get records its arguments, dpkg-query reports $FAKE_MISSING as not installed
    and id answers $FAKE_UID; returns run(*args, **env) -> (CompletedProcess, apt-get calls)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    scripts = {
        "apt-get": f'#!/bin/sh\necho "$*" >> {log}\n',
        "dpkg-query": '#!/bin/sh\nfor p; do :; done\ncase " $FAKE_MISSING " in *" $p "*) echo "unknown ok not-installed";;'
                      ' *) echo "install ok installed";; esac\n',
        "id": '#!/bin/sh\nif [ "$1" = -u ]; then echo "$FAKE_UID"; else echo tester; fi\n',
    }
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    lock = tmp_path / "lock-frontend"
    lock.touch()

    def run(*args: str, **env: str):
        full = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "EDGEKIT_APT_LOCKS": str(lock),
                "FAKE_MISSING": "udev", "FAKE_UID": "0", **env}
        r = subprocess.run([str(SETUP), *args], env=full, capture_output=True, text=True, timeout=60)
        calls = log.read_text().splitlines() if log.exists() else []
        return r, calls

    run.lock = lock
    return run


def hold(path: Path, seconds: float) -> threading.Thread:
    """Hold the fcntl lock apt holds, from this process, for ``seconds``."""
    f = open(path, "a")
    fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def release():
        time.sleep(seconds)
        fcntl.lockf(f, fcntl.LOCK_UN)
        f.close()

    t = threading.Thread(target=release, daemon=True)
    t.start()
    return t


def test_root_installs_what_is_missing_and_says_so(fake):
    r, calls = fake("--system", FAKE_MISSING="python3-venv udev")
    assert r.returncode == 0, r.stderr
    assert "installing system packages: python3-venv udev (about 1-3 minutes" in r.stderr
    assert "-o DPkg::Lock::Timeout=600 update -qq" in calls[0]
    assert calls[1].endswith("install -y -qq --no-install-recommends python3-venv udev")
    assert "waiting" not in r.stderr


def test_nothing_missing_is_quiet(fake):
    r, calls = fake("--system", FAKE_MISSING="")
    assert (r.returncode, r.stderr, calls) == (0, "", [])


def test_it_waits_for_the_dpkg_lock_with_a_plain_message(fake):
    holder = hold(fake.lock, 2.0)
    r, calls = fake("--system", EDGEKIT_APT_LOCK_WAIT="60")
    holder.join()
    assert r.returncode == 0, r.stderr
    assert (f"waiting for another package manager to finish: process {os.getpid()} "
            f"({Path(f'/proc/{os.getpid()}/comm').read_text().strip()}) holds the apt/dpkg lock") in r.stderr
    assert "the other package manager is done (waited" in r.stderr
    assert len(calls) == 2 and "Could not get lock" not in r.stderr


def test_it_gives_up_on_a_lock_that_is_never_released(fake):
    holder = hold(fake.lock, 4.0)
    r, calls = fake("--system", EDGEKIT_APT_LOCK_WAIT="1")
    holder.join()
    assert r.returncode == 1 and calls == []
    assert "gave up after 1 s" in r.stderr and "run scripts/setup again once it is done" in r.stderr


def test_a_user_is_told_the_exact_sudo_command(fake):
    r, calls = fake("--system", FAKE_UID="1000", FAKE_MISSING="python3-venv udev")
    assert r.returncode == 1 and calls == []
    assert "\n  sudo apt-get install -y --no-install-recommends python3-venv udev\n" in r.stderr
    # Without --system it stops too: no venv can be made without python3-venv.
    r, calls = fake(FAKE_UID="1000", FAKE_MISSING="python3-venv")
    assert r.returncode == 1 and "the venv needs python3-venv" in r.stderr


@pytest.mark.parametrize("extras,has_tf,says", [("test,build", False, True), ("test,build", True, False),
                                                ("test", False, False)])
def test_scripts_test_says_when_it_installs_tensorflow(extras, has_tf, says, tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "test", tmp_path / "scripts" / "test")
    (tmp_path / "scripts" / "setup").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").write_text(
        f'#!/bin/sh\ncase "$*" in *find_spec*) exit {0 if has_tf else 1};; esac\nexit 0\n')
    (tmp_path / ".venv" / "bin" / "lint-imports").write_text("#!/bin/sh\nexit 0\n")
    for f in (tmp_path / "scripts" / "setup", *(tmp_path / ".venv" / "bin").iterdir()):
        f.chmod(0o755)
    env = {**os.environ, "EDGEKIT_EXTRAS": extras}
    r = subprocess.run([str(tmp_path / "scripts" / "test")], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert ("installing TensorFlow" in r.stderr and "1.3 GB" in r.stderr) == says


def test_scripts_edgekit_does_not_nag_about_the_tests_packages(fake):
    r, calls = fake("--system", FAKE_UID="1000", FAKE_MISSING="udev mosquitto", EDGEKIT_SETUP_QUIET="1")
    assert (r.returncode, r.stderr) == (0, "")
    r, calls = fake("--system", FAKE_UID="1000", FAKE_MISSING="python3-venv", EDGEKIT_SETUP_QUIET="1")
    assert r.returncode == 1 and "sudo apt-get install -y --no-install-recommends python3-venv" in r.stderr
