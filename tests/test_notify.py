"""sd_notify over a real unix datagram socket, as systemd's NOTIFY_SOCKET."""

from __future__ import annotations

import os
import socket

import pytest

from edgekit.daemon.notify import Notifier


@pytest.fixture
def notify_socket(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    yield str(path), sock
    sock.close()


def recv(sock) -> dict:
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.splitlines())


def test_ready_status_watchdog(notify_socket):
    path, sock = notify_socket
    n = Notifier(env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())})
    assert n.enabled and n.watchdog_seconds == 30.0
    n.ready("listening")
    assert recv(sock) == {"READY": "1", "STATUS": "listening"}
    n.watchdog()
    assert recv(sock) == {"WATCHDOG": "1"}
    n.watchdog()  # within half the period: not sent again
    n.status("two\nlines")
    assert recv(sock) == {"STATUS": "two lines"}
    n.reloading()
    msg = recv(sock)
    assert msg["RELOADING"] == "1" and int(msg["MONOTONIC_USEC"]) > 0
    n.stopping()
    assert recv(sock) == {"STOPPING": "1"}


def test_abstract_namespace_address():
    name = f"edgekit-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    try:
        Notifier(env={"NOTIFY_SOCKET": "@" + name}).ready()
        assert recv(sock) == {"READY": "1"}
    finally:
        sock.close()


def test_without_systemd_everything_is_a_no_op():
    n = Notifier(env={})
    assert not n.enabled and n.watchdog_seconds is None
    assert n.send(ready=1) is False


def test_watchdog_for_another_pid_is_ignored():
    n = Notifier(env={"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"})
    assert n.watchdog_seconds is None


def test_socket_gone_does_not_raise(tmp_path):
    assert Notifier(env={"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}).send(ready=1) is False
