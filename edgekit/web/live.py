"""The receiving end of the daemon's live feed (:mod:`edgekit.daemon.live`).

Binds ``live.sock`` in the state directory and reads one JSON datagram per window. Keeps the
latest message and a bounded history of each rule's score (the chart's last minutes), and wakes
the Server-Sent Events streams. Blocks in ``recv`` with a 1 s timeout, so with no daemon and
no page open it wakes once a second.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections import deque
from pathlib import Path

log = logging.getLogger(__name__)

HISTORY_SECONDS = 300
MAX_DATAGRAM = 65536


class LiveReceiver:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.latest: dict | None = None
        self.received_at = 0.0  # time.monotonic() of the latest message
        self.seq = 0
        self.history: deque = deque(maxlen=HISTORY_SECONDS * 10 + 10)  # hop 0.1 s at the finest
        self.changed = threading.Condition()
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self.path.unlink()  # a socket left by an earlier run; datagram sockets cannot be reused
        except FileNotFoundError:
            pass
        old = os.umask(0o077)
        try:
            self._sock.bind(str(self.path))
        finally:
            os.umask(old)
        self._sock.settimeout(1.0)
        self._thread = threading.Thread(target=self._loop, name="edgekit-web-live", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(MAX_DATAGRAM)
            except TimeoutError:
                continue
            except OSError:
                if self._stop.is_set():
                    return
                time.sleep(1.0)
                continue
            try:
                msg = json.loads(data)
            except ValueError:
                continue
            if not isinstance(msg, dict):
                continue
            point = [msg.get("time"), msg.get("dbfs"), [r.get("score") for r in msg.get("rules", [])]]
            with self.changed:
                self.latest, self.received_at = msg, time.monotonic()
                self.history.append(point)
                self.seq += 1
                self.changed.notify_all()

    def connected(self, within: float = 5.0) -> bool:
        return self.latest is not None and time.monotonic() - self.received_at < within

    def recent(self, seconds: float = HISTORY_SECONDS) -> list:
        with self.changed:
            if not self.history:
                return []
            newest = self.history[-1][0] or 0
            return [p for p in self.history if (p[0] or 0) >= newest - seconds]

    def wait(self, seq: int, timeout: float) -> tuple[int, dict | None]:
        """Block until a message newer than ``seq`` (or the timeout); returns (seq, message)."""
        with self.changed:
            if self.seq == seq:
                self.changed.wait(timeout)
            return self.seq, self.latest

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        try:
            self.path.unlink()
        except OSError:
            pass
        with self.changed:
            self.changed.notify_all()
