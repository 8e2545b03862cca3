"""The MQTT publisher's undelivered events, kept on disk across a stop (beside the event log).

A daemon that stops while the broker is away used to drop what it still had queued. At close,
after waiting a bounded time for the broker (:meth:`edgekit.actions.mqtt.MqttPublisher.close`),
whatever is still unacknowledged is written here; the next start puts it back at the head of the
queue and delivers it, then removes the file once all of it is acknowledged. An event is thus
delivered at least once, and a consumer that drops duplicates by ``(id, kind)`` (every event
message carries its ``id``) sees it exactly once, also after a kill -9 between the two steps.

Writes are atomic (a temporary file in the same folder, fsync, rename), so a power cut leaves the
old file or the new one, never half of one. A file that cannot be read is moved aside with a
warning, never fatal: the detector keeps listening.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

FORMAT = "edgekit-mqtt-outbox"
MAX_BYTES = 64 * 1024 * 1024  # a queue of 1 000 000 events is not read back whole into memory on a Pi


def store_path(state_dir: str | os.PathLike, device_id: str) -> Path:
    """One file per device id, so daemons that share a folder keep their events apart."""
    from edgekit.actions.device_id import clean

    return Path(state_dir) / f"mqtt-outbox.{clean(device_id) or 'edgekit'}.json"


class OutboxStore:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def load(self, limit: int) -> list[tuple[str, str, str]]:
        """(rule, topic, payload) of the events kept by the last stop, oldest first; at most ``limit`` (the newest)."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        except OSError as exc:
            log.warning("MQTT: cannot read the kept events %s (%s); starting without them", self.path,
                        exc.strerror or exc)
            return []
        try:
            if size > MAX_BYTES:
                raise ValueError(f"{size} bytes, more than {MAX_BYTES}")
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("events"), list):
                raise ValueError(f"not an {FORMAT} file")
            out = []
            for item in doc["events"]:
                rule, topic, payload = (item.get(k) if isinstance(item, dict) else None for k in ("rule", "topic", "payload"))
                if not all(isinstance(x, str) for x in (rule, topic, payload)):
                    raise ValueError("an event without rule, topic and payload strings")
                out.append((rule, topic, payload))
        except (OSError, ValueError, RecursionError) as exc:  # json.JSONDecodeError is a ValueError
            aside = self.path.with_name(self.path.name + ".bad")
            log.warning("MQTT: the kept events %s are unreadable (%s); moved to %s, starting without them",
                        self.path, exc, aside)
            try:
                os.replace(self.path, aside)
            except OSError:
                pass
            return []
        return out[-limit:] if limit > 0 else []

    def save(self, events) -> bool:
        """Replace the file with ``events`` ((rule, topic, payload), oldest first); none: remove it."""
        if not events:
            return self.clear()
        doc = {"format": FORMAT, "events": [{"rule": r, "topic": t, "payload": p} for r, t, p in events]}
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(doc, f, separators=(",", ":"))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            _fsync_dir(self.path.parent)
            return True
        except OSError as exc:
            log.error("MQTT: cannot keep %d undelivered events in %s (%s); they are lost", len(events), self.path,
                      exc.strerror or exc)
            try:
                tmp.unlink()
            except OSError:
                pass
            return False

    def clear(self) -> bool:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("MQTT: cannot remove the delivered events file %s (%s); they may be sent again",
                        self.path, exc.strerror or exc)
            return False
        return True


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
