"""A real PulseAudio server with a null sink, whose monitor is a microphone for PortAudio.

Audio played into the sink (``paplay``) comes out of ``virt.monitor``, which sounddevice opens
through ALSA's ``pulse`` device: a real capture path with no sound card. A ``pacat`` of zeros
keeps the sink running, or the monitor delivers nothing while idle.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import absent

PA_CONFIG = """\
load-module module-native-protocol-unix auth-anonymous=1
load-module module-null-sink sink_name=virt rate=16000 channels=1
set-default-sink virt
set-default-source virt.monitor
"""


class PulseServer:
    def __init__(self, runtime_dir: Path):
        self.runtime_dir = runtime_dir
        self.server = None
        self.keepalive = None

    @property
    def env(self) -> dict:
        return {**os.environ, "XDG_RUNTIME_DIR": str(self.runtime_dir), "HOME": str(self.runtime_dir)}

    def start(self, timeout: float = 10.0) -> None:
        cfg = self.runtime_dir / "pa.pa"
        cfg.write_text(PA_CONFIG)
        self.server = subprocess.Popen(
            ["pulseaudio", "-n", "-F", str(cfg), "--daemonize=no", "--exit-idle-time=-1",
             "--disallow-exit", "--log-target=stderr"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if subprocess.run(["pactl", "info"], env=self.env, capture_output=True).returncode == 0:
                break
            if self.server.poll() is not None:
                raise RuntimeError("pulseaudio exited at start-up")
            time.sleep(0.1)
        else:
            raise RuntimeError("pulseaudio did not come up")
        self.keepalive = subprocess.Popen(
            ["pacat", "--playback", "--raw", "--format=s16le", "--rate=16000", "--channels=1",
             "--latency-msec=20", "-d", "virt", "/dev/zero"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def play(self, path: Path, wait: bool = True) -> subprocess.Popen:
        proc = subprocess.Popen(["paplay", "-d", "virt", str(path)], env=self.env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if wait:
            proc.wait(timeout=120)
        return proc

    def freeze(self) -> None:
        """SIGSTOP the server: a hung sound server (its clients' calls wait on it)."""
        self.server.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.server.send_signal(signal.SIGCONT)

    def crash(self) -> None:
        """SIGKILL the server (and the keep-alive player), as a crash would end it."""
        for proc in (self.server, self.keepalive):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        self.server = self.keepalive = None

    def stop(self) -> None:
        for proc in (self.keepalive, self.server):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGCONT)  # a frozen server cannot act on SIGTERM
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.server = self.keepalive = None


def pulse_available() -> str | None:
    missing = [b for b in ("pulseaudio", "pactl", "pacat", "paplay") if shutil.which(b) is None]
    if missing:
        return f"PulseAudio tools missing ({', '.join(missing)}): run scripts/setup as root to install them"
    return None


@contextmanager
def pulse_server(start: bool = True):
    """A server in a runtime folder of its own, removed afterwards whatever happened (a failed
    start included): the tests leave no /tmp/edgekit-pa-* behind."""
    runtime = Path(tempfile.mkdtemp(prefix="edgekit-pa-"))
    server = PulseServer(runtime)
    try:
        if start:
            server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(runtime, ignore_errors=True)


def _pulse_fixture(monkeypatch, start: bool):
    why = pulse_available()
    if why:
        absent(why)
    with pulse_server(start=False) as server:
        # The ALSA pulse plugin finds the server through these when a stream opens.
        monkeypatch.setenv("XDG_RUNTIME_DIR", str(server.runtime_dir))
        monkeypatch.setenv("HOME", str(server.runtime_dir))
        if start:
            try:
                server.start()
            except RuntimeError as exc:
                absent(f"PulseAudio cannot start here: {exc}")
        yield server


@pytest.fixture
def pulse(monkeypatch):
    yield from _pulse_fixture(monkeypatch, start=True)


@pytest.fixture
def pulse_off(monkeypatch):
    """The environment of a PulseAudio server that is not running yet: ``pulse_off.start()``."""
    yield from _pulse_fixture(monkeypatch, start=False)
