"""A real PulseAudio server with a null sink, whose monitor is a microphone for PortAudio.

Audio played into the sink (``paplay``) comes out of ``virt.monitor``, which sounddevice opens
through ALSA's ``pulse`` device: a real capture path with no sound card. A ``pacat`` of zeros
keeps the sink running, or the monitor delivers nothing while idle.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
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

    def stop(self) -> None:
        for proc in (self.keepalive, self.server):
            if proc is not None and proc.poll() is None:
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


@pytest.fixture
def pulse(monkeypatch):
    why = pulse_available()
    if why:
        absent(why)
    runtime = Path(tempfile.mkdtemp(prefix="edgekit-pa-"))
    server = PulseServer(runtime)
    try:
        server.start()
    except RuntimeError as exc:
        server.stop()
        absent(f"PulseAudio cannot start here: {exc}")
    # The ALSA pulse plugin finds the server through these when a stream opens.
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("HOME", str(runtime))
    yield server
    server.stop()
    shutil.rmtree(runtime, ignore_errors=True)
