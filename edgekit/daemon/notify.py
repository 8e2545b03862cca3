"""sd_notify(3) in a few lines: READY, WATCHDOG, STATUS, RELOADING, STOPPING over $NOTIFY_SOCKET.

No library needed: the protocol is one datagram of ``KEY=VALUE`` lines to a unix socket.
Without ``$NOTIFY_SOCKET`` (not under systemd) every call is a no-op.
"""

from __future__ import annotations

import os
import socket
import time


class Notifier:
    def __init__(self, address: str | None = None, env: dict | None = None):
        env = os.environ if env is None else env
        address = address if address is not None else env.get("NOTIFY_SOCKET")
        self._address = None
        if address:
            # An address starting with "@" is in the abstract namespace.
            self._address = "\0" + address[1:] if address.startswith("@") else address
        self._sock = None
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        self.watchdog_seconds = (
            int(usec) / 1e6 if usec and usec.isdigit() and (not pid or pid == str(os.getpid())) else None
        )
        self._last_ping = 0.0

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def send(self, **fields) -> bool:
        if not self._address:
            return False
        payload = "\n".join(f"{k.upper()}={v}" for k, v in fields.items()).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(payload, self._address)
            return True
        except OSError:
            return False  # systemd going away must not take the daemon with it

    def ready(self, status: str | None = None) -> None:
        self.send(ready=1, **({"status": status} if status else {}))

    def status(self, text: str) -> None:
        self.send(status=text.replace("\n", " "))

    def reloading(self) -> None:
        self.send(reloading=1, monotonic_usec=int(time.monotonic() * 1e6))

    def stopping(self) -> None:
        self.send(stopping=1)

    def watchdog(self, force: bool = False) -> None:
        """Ping at most twice per watchdog period (systemd's advice), from the processing loop."""
        now = time.monotonic()
        interval = (self.watchdog_seconds or 10.0) / 2
        if force or now - self._last_ping >= interval:
            self._last_ping = now
            self.send(watchdog=1)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
