"""A real Mosquitto broker for tests: one process on 127.0.0.1, a free port, config in a temp dir.

Import the fixtures into a test module (``from mosquitto import mosquitto, make_broker``).
``broker.stop()`` / ``broker.start()`` take it down and bring it back on the same port.
Tests skip, saying why, when the ``mosquitto`` binary is absent (and fail under CI=true).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import absent

SEARCH_PATH = os.pathsep.join((os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"))


def find_binary(name: str) -> str | None:
    return shutil.which(name, path=SEARCH_PATH)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Mosquitto:
    host = "127.0.0.1"

    def __init__(
        self,
        workdir: Path,
        *,
        users: dict[str, str] | None = None,
        persistence: bool = False,
        extra: tuple[str, ...] = (),
    ):
        self.binary = find_binary("mosquitto")
        if self.binary is None:
            absent("the mosquitto broker is not installed (apt install mosquitto); MQTT tests need a real broker")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log_path = self.workdir / "mosquitto.log"
        self.proc: subprocess.Popen | None = None
        lines = [
            f"listener {self.port} {self.host}", *(("log_type all",) if os.environ.get("EDGEKIT_MOSQUITTO_DEBUG") else ()),
            f"allow_anonymous {'false' if users else 'true'}",
            f"persistence {'true' if persistence else 'false'}",
            # Run as root, mosquitto would switch to the "mosquitto" user and lose our temp files.
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
        ]
        if persistence:
            lines.append(f"persistence_location {self.workdir}/")
        if users:
            lines.append(f"password_file {self._password_file(users)}")
        lines += extra  # e.g. cafile/certfile/keyfile lines for a TLS listener
        self.config = self.workdir / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n")

    def _password_file(self, users: dict[str, str]) -> Path:
        tool = find_binary("mosquitto_passwd")
        if tool is None:
            absent("mosquitto_passwd is not installed; needed for a broker with passwords")
        path = self.workdir / "passwd"
        for i, (user, password) in enumerate(users.items()):
            create = ["-c"] if i == 0 else []
            subprocess.run([tool, "-b", *create, str(path), user, password], check=True, capture_output=True)
        return path

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 10.0) -> Mosquitto:
        if self.running:
            return self
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([self.binary, "-c", str(self.config)], stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}:\n{self.log()}")
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"mosquitto did not accept connections on port {self.port} within {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: a clean exit (and the persistence file written)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@pytest.fixture
def make_broker(tmp_path):
    """Factory: ``make_broker(users={...}, persistence=True, extra=(...), start=True)``.

    Every broker it made is stopped after the test.
    """
    brokers: list[Mosquitto] = []

    def make(*, start: bool = True, **options) -> Mosquitto:
        broker = Mosquitto(tmp_path / f"broker{len(brokers)}", **options)
        brokers.append(broker)
        return broker.start() if start else broker

    yield make
    for broker in brokers:
        broker.stop()


@pytest.fixture
def mosquitto(make_broker) -> Mosquitto:
    """A running anonymous broker."""
    return make_broker()
