"""A JSON-lines event log: one line per event, flushed on write, rotated by size.

Rotation follows logging.handlers.RotatingFileHandler's naming (``events.jsonl`` is the newest,
``.1`` the one before, up to ``.<backups>``). Unlike that handler, ``backups = 0`` still bounds
the size: the file starts over. Written here rather than through the handler so that a full
disk is one log line and a counter in the status, not a traceback on stderr per event.

The example config writes to /var/lib/edgekit/events.jsonl, which systemd's
``StateDirectory=edgekit`` creates for the service. Someone trying the daemon from a shell is
usually not allowed to write there; for such an interactive run (:func:`interactive_fallback`)
an unwritable path falls back to the user's state directory (``~/.local/state/edgekit``), with
a warning that says so, instead of refusing to start.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path

from edgekit.errors import EventLogError
from edgekit.detect.events import Event
from edgekit.actions.settings import EventLogSettings
from edgekit.actions import event_json

log = logging.getLogger(__name__)


def under_systemd(env: Mapping[str, str] | None = None) -> bool:
    """Whether systemd started this process as a service ($INVOCATION_ID is set for every unit)."""
    env = os.environ if env is None else env
    return bool(env.get("INVOCATION_ID") or env.get("STATE_DIRECTORY"))


def state_directory(env: Mapping[str, str] | None = None) -> Path | None:
    """The service's state directory ($STATE_DIRECTORY, its first entry), else an interactive
    run's fallback (:func:`interactive_fallback`); where files live that have no configured path."""
    env = os.environ if env is None else env
    given = env.get("STATE_DIRECTORY", "").split(":")[0]
    return Path(given) if given else interactive_fallback(env)


def interactive_fallback(env: Mapping[str, str] | None = None) -> Path | None:
    """Where an interactive run may write its event log instead: the user's XDG state directory.

    None under systemd: a service must write where its config says, or fail loudly.
    """
    if under_systemd(env):
        return None
    from platformdirs import user_state_dir

    return Path(user_state_dir("edgekit"))


class EventLog:
    """``fallback_dir``: where to write instead when ``settings.path`` cannot be opened."""

    kind = "log"

    def __init__(self, settings: EventLogSettings, *, fsync: bool = False, fallback_dir: str | os.PathLike | None = None):
        self.settings = settings
        self.path = Path(settings.path).expanduser()
        self.max_bytes = settings.max_bytes
        self.backups = settings.backups
        self.fsync = fsync
        self.written = 0
        self.failures = 0
        self._failing = False
        self._closed = False
        self._lock = threading.Lock()
        try:
            self._file = self._open()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            if fallback_dir is None:
                raise EventLogError(
                    f"cannot write the event log {self.path}: {reason}; choose a writable [log] path"
                ) from exc
            wanted, self.path = self.path, Path(fallback_dir) / self.path.name
            try:
                self._file = self._open()
            except OSError as exc2:
                raise EventLogError(
                    f"cannot write the event log {wanted} ({reason}) nor {self.path} "
                    f"({exc2.strerror or exc2}); choose a writable [log] path"
                ) from exc2
            log.warning("cannot write the event log %s (%s); this run is not a systemd service, so events go "
                        "to %s instead (set [log] path to choose)", wanted, reason, self.path)

    def _open(self, mode: str = "ab"):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return open(self.path, mode)

    def _rotate(self) -> None:
        self._file.close()
        self._file = None
        if self.backups > 0:
            for i in range(self.backups - 1, 0, -1):
                older = self.path.with_name(f"{self.path.name}.{i}")
                if older.exists():
                    os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
            os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))
            self._file = self._open()
        else:
            self._file = self._open("wb")

    def handle(self, event: Event) -> None:
        data = (event_json(event) + "\n").encode("utf-8")
        with self._lock:
            if self._closed:
                return
            try:
                if self._file is None:  # a failed write closed it; try again now
                    self._file = self._open()
                size = self._file.tell()
                if self.max_bytes > 0 and size > 0 and size + len(data) > self.max_bytes:
                    self._rotate()
                self._file.write(data)
                self._file.flush()
                if self.fsync:
                    os.fsync(self._file.fileno())
            except OSError as exc:
                self.failures += 1
                if not self._failing:
                    log.error("event log %s: write failed (%s); events are being lost", self.path, exc)
                self._failing = True
                self._drop_file()
                return
            self.written += 1
            if self._failing:
                log.warning("event log %s: writable again after %d lost events", self.path, self.failures)
                self._failing = False

    def _drop_file(self) -> None:
        try:
            if self._file is not None:
                self._file.close()
        except OSError:
            pass  # the data is lost either way; the counter says so
        self._file = None

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._file is not None:
                try:
                    self._file.flush()
                    os.fsync(self._file.fileno())
                except OSError as exc:
                    log.error("event log %s: final flush failed (%s)", self.path, exc)
                self._drop_file()

    def describe(self) -> str:
        return f"event log {self.path}"

    def status(self) -> str:
        text = f"log {self.written} events"
        if self.failures:
            text += f", {self.failures} lost (write errors)"
        return text
