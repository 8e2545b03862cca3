"""`edgekit run` never stops listening on its own: a sound server that freezes, is absent at start,
or crashes and comes back. The real daemon in a child process, a real PulseAudio server, a real
NOTIFY_SOCKET with a 2 s watchdog (pings due every second), a smoke alarm played into the null
sink to prove that it hears again."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pulse import pulse, pulse_off  # noqa: F401 - fixtures
from test_service import write_config


class Notifications:
    """A NOTIFY_SOCKET that keeps each datagram with the time it came."""

    def __init__(self, path: Path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.got: list[tuple[float, dict]] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        while True:
            try:
                data = self.sock.recv(4096).decode()
            except OSError:
                return
            self.got.append((time.monotonic(), dict(ln.split("=", 1) for ln in data.splitlines() if "=" in ln)))

    def wait_for(self, test, timeout: float, what: str, since: float = 0.0) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t, m in list(self.got):
                if t >= since and test(m):
                    return t
            time.sleep(0.05)
        raise AssertionError(f"no {what} within {timeout} s; got {[m for t, m in self.got if t >= since][-8:]}")

    def status(self, text: str, timeout: float, since: float = 0.0) -> float:
        return self.wait_for(lambda m: text in m.get("STATUS", ""), timeout, f"STATUS with {text!r}", since)

    def pings(self, start: float, end: float) -> list[float]:
        return [t for t, m in self.got if "WATCHDOG" in m and start <= t <= end]

    def close(self):
        self.sock.close()


class Daemon:
    """`edgekit run` as systemd starts it: NOTIFY_SOCKET, WATCHDOG_USEC; its log in a file."""

    def __init__(self, tmp_path: Path, models_dir: Path):
        self.config = write_config(tmp_path / "edgekit.toml", models_dir, hop=0.48)
        self.events = tmp_path / "events.jsonl"
        self.notify = Notifications(tmp_path / "notify.sock")
        self.log_path = tmp_path / "daemon.log"
        env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock"), "WATCHDOG_USEC": "2000000"}
        env.pop("WATCHDOG_PID", None)
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "edgekit", "run", "--config", str(self.config)],
                                         stdout=log, stderr=subprocess.STDOUT, env=env)

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def starts(self) -> list[dict]:
        if not self.events.exists():
            return []
        return [e for e in map(json.loads, self.events.read_text().splitlines()) if e["kind"] == "start"]

    def hears_an_alarm(self, pulse, audio_dir, timeout: float = 30.0) -> None:
        before = len(self.starts())
        player = pulse.play(audio_dir / "smoke_alarm.wav", wait=False)
        deadline = time.monotonic() + timeout
        while len(self.starts()) == before:
            assert self.proc.poll() is None, f"the daemon exited ({self.proc.returncode}):\n{self.log[-3000:]}"
            assert time.monotonic() < deadline, f"no smoke-alarm event within {timeout} s:\n{self.log[-3000:]}"
            time.sleep(0.1)
        player.kill()
        player.wait()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"the daemon did not stop on SIGTERM:\n{self.log[-3000:]}") from None
        self.notify.close()
        return self.proc.returncode


@pytest.fixture
def daemon_factory(tmp_path, models_dir):
    made = []

    def make() -> Daemon:
        made.append(Daemon(tmp_path, models_dir))
        return made[-1]

    yield make
    for d in made:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
        d.notify.close()


def max_gap(times: list[float], start: float, end: float) -> float:
    edges = [start, *times, end]
    return max(b - a for a, b in zip(edges, edges[1:]))


def test_a_frozen_sound_server_keeps_the_watchdog_fed_and_listening_resumes(pulse, daemon_factory, audio_dir):
    d = daemon_factory()
    d.notify.wait_for(lambda m: "READY" in m, 60, "READY")
    d.notify.status("listening", 15)
    pulse.freeze()
    frozen = time.monotonic()
    time.sleep(14)  # a hung server, long enough that a loop blocked on it would miss several pings
    thawed = time.monotonic()
    pulse.thaw()
    # Pings due every second (WATCHDOG_USEC=2 s): before the fix none came once the loop blocked
    # inside PortAudio (a reopen waiting on the frozen server), until the server woke up.
    gap = max_gap(d.notify.pings(frozen, thawed), frozen, thawed)
    assert gap < 5.0, f"the watchdog went {gap:.1f} s without a ping while the sound server was frozen"
    said = d.notify.status("waiting for microphone 'pulse'", 1, since=frozen)
    assert said < thawed
    d.notify.status("listening", 20, since=thawed)
    d.hears_an_alarm(pulse, audio_dir)
    assert d.stop() == 0
    log = d.log
    assert log.count("waiting for microphone 'pulse'") == 1, log  # once per state change, not per retry
    assert "Traceback" not in log


def test_no_sound_server_at_start_waits_for_it(pulse_off, daemon_factory, audio_dir):
    d = daemon_factory()
    # Before the fix: "Error querying device -1" and exit 1 (systemd's restarts then ran out).
    ready = d.notify.wait_for(lambda m: "READY" in m, 60, "READY")
    d.notify.status("waiting for microphone 'pulse'", 10)
    time.sleep(max(0.0, ready + 3 - time.monotonic()))
    assert d.proc.poll() is None, f"the daemon exited ({d.proc.returncode}):\n{d.log[-3000:]}"
    pulse_off.start()
    back = time.monotonic()
    heard_at = d.notify.status("listening", 15, since=back)
    assert heard_at - back < 10, "the back-off is capped at a few seconds"
    d.hears_an_alarm(pulse_off, audio_dir)
    assert d.stop() == 0
    log = d.log
    assert "no audio input device: is a microphone plugged in, or a sound server running?" in log
    assert "querying device -1" not in log and "Traceback" not in log


def test_a_sound_server_that_crashes_and_comes_back_is_heard_again(pulse, daemon_factory, audio_dir):
    d = daemon_factory()
    d.notify.wait_for(lambda m: "READY" in m, 60, "READY")
    d.notify.status("listening", 15)
    pulse.crash()
    down = time.monotonic()
    # Long enough for the old back-off (0.5 ... 10, 30 s) to have grown past the server's return.
    time.sleep(19)
    pulse.start()
    back = time.monotonic()
    assert max_gap(d.notify.pings(down, back), down, back) < 5.0
    heard_at = d.notify.status("listening", 20, since=back)
    assert heard_at - back < 12, f"listening again {heard_at - back:.1f} s after the server came back"
    assert d.notify.status("waiting for microphone 'pulse'", 1, since=down) < back
    d.hears_an_alarm(pulse, audio_dir)
    assert d.stop() == 0


def test_sigterm_while_the_sound_server_is_frozen_stops_cleanly(pulse, daemon_factory):
    d = daemon_factory()
    d.notify.wait_for(lambda m: "READY" in m, 60, "READY")
    d.notify.status("listening", 15)
    pulse.freeze()
    frozen = time.monotonic()
    time.sleep(6)  # a reopen is now waiting on the server
    d.proc.send_signal(signal.SIGTERM)
    try:
        rc = d.proc.wait(timeout=15)  # before the fix: not before the server woke up
    except subprocess.TimeoutExpired:
        rc = None
    finally:
        pulse.thaw()
    assert rc == 0, d.log[-3000:]
    assert "SIGTERM received: stopping" in d.log
    assert d.notify.status("waiting for microphone 'pulse'", 1, since=frozen)


def test_a_sound_server_frozen_at_start(pulse, daemon_factory, audio_dir):
    """The first PortAudio call (sounddevice's import: Pa_Initialize) waits on the frozen server,
    with fd 2 pointed at /dev/null by sounddevice: the loop runs anyway, and its log is kept."""
    pulse.freeze()
    try:
        d = daemon_factory()
        ready = d.notify.wait_for(lambda m: "READY" in m, 60, "READY")
        d.notify.status("waiting for microphone 'pulse'", 10)
        time.sleep(max(0.0, ready + 5 - time.monotonic()))
        assert max_gap(d.notify.pings(ready, time.monotonic()), ready, time.monotonic()) < 5.0
        assert d.proc.poll() is None
    finally:
        pulse.thaw()
    thawed = time.monotonic()
    d.notify.status("listening", 20, since=thawed)
    d.hears_an_alarm(pulse, audio_dir)
    assert d.stop() == 0
    assert "waiting for microphone 'pulse'" in d.log  # written while the server was frozen
