"""The device's own MQTT sensors, Frigate-style, and their Home Assistant discovery.

Topics, with ``base = <topic_prefix>/<device_id>`` (:class:`~edgekit.actions.mqtt_topics.Topics`):
  ``base/status``   retained JSON ``{"state": "listening", "queued": 0, "muted": {...}}``; state is
                    ``listening``, ``waiting_for_microphone`` or ``error``; ``queued``: events not yet
                    acknowledged by the broker; ``muted``: rule -> ISO time its mute ends
  ``base/level``    the microphone level in dBFS (one decimal), at most every 5 s and only after a
                    change of 1 dB or more; not retained (a stale level is worse than none)
  ``base/last``     retained JSON of the last detection: rule, label, score, id, time
  ``base/command``  commands in (:mod:`edgekit.daemon.remote`); ``base/ack`` their answers

Everything here is latest-wins: while the broker is away nothing piles up, and every connect
publishes the latest retained values again. Acks are kept (a few) until the broker takes them.
Not thread-safe by itself: the publisher holds its lock around every call.
"""

from __future__ import annotations

import json
import math
from collections import deque

from edgekit.actions.mqtt_topics import Topics

STATES = ("listening", "waiting_for_microphone", "error")
LEVEL_EVERY = 5.0  # seconds between level messages at most
LEVEL_STEP = 1.0  # dB: a smaller change is not worth a message
LEVEL_FLOOR = -120.0  # digital silence (-inf dBFS) reads as this; JSON and Home Assistant take no -inf


class LevelLimiter:
    """Which microphone levels are worth publishing: at most one per ``every`` s, only on a change ≥ ``step`` dB."""

    def __init__(self, every: float = LEVEL_EVERY, step: float = LEVEL_STEP):
        self.every, self.step = every, step
        self.last: float | None = None
        self._at = -math.inf

    def due(self, dbfs: float, now: float) -> float | None:
        """The level to publish now (rounded, floored), or None."""
        if math.isnan(dbfs):
            return None
        value = round(max(LEVEL_FLOOR, dbfs), 1)
        if now - self._at < self.every or (self.last is not None and abs(value - self.last) < self.step):
            return None
        self.last, self._at = value, now
        return value


class DeviceSensors:
    """The status, level and last-detection values due to publish, and the acks waiting to go."""

    def __init__(self, topics: Topics):
        self._t = topics
        self.status: dict = {"state": "listening"}
        self._last: str | None = None  # JSON of the last detection
        self._level: str | None = None  # due while connected; dropped otherwise
        self._acks: deque[str] = deque(maxlen=32)
        self._status_due = self._last_due = False
        self._queued_sent: int | None = None

    def set_status(self, **fields) -> bool:
        """Merge ``fields`` into the status; True when it changed (and is due)."""
        new = {**self.status, **fields}
        if new != self.status:
            self.status, self._status_due = new, True
            return True
        return False

    def refresh(self, queued: int) -> bool:
        """The queue length changed since the last status: publish it again (the caller paces this)."""
        if queued != self._queued_sent:
            self._status_due = True
        return self._status_due

    def detected(self, record: dict) -> None:
        self._last = json.dumps({k: record.get(k) for k in ("rule", "label", "score", "kind", "id", "time")},
                                separators=(",", ":"))
        self._last_due = True

    def level(self, value: float, connected: bool) -> None:
        self._level = f"{value:.1f}" if connected else None

    def ack(self, payload: dict) -> None:
        self._acks.append(json.dumps(payload, separators=(",", ":")))

    def announce(self) -> None:
        """After a connect: the retained values again."""
        self._status_due = True
        self._last_due = self._last is not None

    def due(self) -> bool:
        return bool(self._status_due or self._last_due or self._level is not None or self._acks)

    def take(self, queued: int) -> list[tuple[str, str, bool]]:
        """(topic, payload, retain) of everything due, now not due any more."""
        t, out = self._t, []
        if self._status_due:
            out.append((t.status_topic, json.dumps({**self.status, "queued": queued}, separators=(",", ":")), True))
            self._status_due, self._queued_sent = False, queued
        if self._last_due:
            out.append((t.last_topic, self._last, True))
            self._last_due = False
        if self._level is not None:
            out.append((t.level_topic, self._level, False))
            self._level = None
        while self._acks:
            out.append((t.ack_topic, self._acks.popleft(), False))
        return out


def discovery(t: Topics, rules) -> list[tuple[str, str]]:
    """Home Assistant discovery for the device's sensors and each rule's test button: (topic, JSON)."""
    def sensor(object_id: str, name: str, **extra) -> tuple[str, str]:
        return t.discovery_topic(object_id, "sensor"), json.dumps({**t.entity(object_id, name), **extra})

    out = [
        sensor("level", "Sound level", state_topic=t.level_topic, unit_of_measurement="dBFS",
               state_class="measurement", icon="mdi:microphone"),
        sensor("last_label", "Last sound", state_topic=t.last_topic, value_template="{{ value_json.label }}",
               json_attributes_topic=t.last_topic, icon="mdi:waveform"),
        sensor("last_score", "Last sound score", state_topic=t.last_topic, value_template="{{ value_json.score }}",
               state_class="measurement"),
        sensor("state", "State", state_topic=t.status_topic, value_template="{{ value_json.state }}",
               device_class="enum", options=list(STATES), json_attributes_topic=t.status_topic,
               entity_category="diagnostic"),
        sensor("queued", "Queued events", state_topic=t.status_topic, value_template="{{ value_json.queued }}",
               entity_category="diagnostic"),
    ]
    for name in rules:
        object_id = f"{name}_test"
        press = json.dumps({"command": "test", "rule": name})
        out.append((t.discovery_topic(object_id, "button"),
                    json.dumps({**t.entity(object_id, f"Test {name}"), "command_topic": t.command_topic,
                                "payload_press": press, "entity_category": "diagnostic"})))
    return out
