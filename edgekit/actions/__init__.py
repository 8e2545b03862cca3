"""What the daemon does with detector events: GPIO outputs, MQTT messages, a JSON-lines log.

Every action has ``handle(event)``, ``close()`` (idempotent) and ``status()``. :class:`Actions`
fans an event out to all of them; one failing action is logged and never stops the others.
The action modules are imported only when configured, so a daemon without MQTT or GPIO never
loads paho or gpiozero.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Protocol

from edgekit.detect.events import Event
from edgekit.daemon.settings import Config

log = logging.getLogger(__name__)


class Action(Protocol):
    def handle(self, event: Event) -> None: ...

    def close(self) -> None: ...

    def status(self) -> str: ...


def event_record(event: Event) -> dict:
    """The event as one JSON-ready dict: its fields plus the wall time in ISO 8601 (UTC)."""
    record = event.as_dict()
    record["time"] = datetime.fromtimestamp(event.t_wall, tz=timezone.utc).isoformat(timespec="milliseconds")
    return record


def _plain(value):
    # Scores often arrive as numpy scalars, which json cannot encode.
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def event_json(event: Event) -> str:
    return json.dumps(event_record(event), default=_plain, separators=(",", ":"))


class Actions:
    """Fan-out to several actions."""

    def __init__(self, actions: Sequence[Action] = ()):
        self.actions = list(actions)
        self._closed = False

    def __iter__(self):
        return iter(self.actions)

    def handle(self, event: Event) -> None:
        for action in self.actions:
            try:
                action.handle(event)
            except Exception:
                log.exception("%s failed on a %s event of rule %r", type(action).__name__, event.kind, event.rule)

    def make_safe(self) -> None:
        """Put outputs in their safe state; for signal handlers and atexit. Never raises."""
        for action in self.actions:
            make_safe = getattr(action, "make_safe", None)
            if make_safe is not None:
                try:
                    make_safe()
                except Exception:
                    log.exception("%s: make_safe failed", type(action).__name__)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Outputs go safe before anything slow (an MQTT flush may take seconds) gets its turn.
        self.make_safe()
        for action in self.actions:
            try:
                action.close()
            except Exception:
                log.exception("%s: close failed", type(action).__name__)

    def status(self) -> str:
        parts = []
        for action in self.actions:
            try:
                parts.append(action.status())
            except Exception as exc:  # a status line must never take the daemon down
                parts.append(f"{type(action).__name__}: status failed ({exc})")
        return "; ".join(parts)

    def __enter__(self) -> Actions:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def build_actions(config: Config) -> Actions:
    """Every action the config asks for; raises an ActionError subclass when one cannot start."""
    built: list[Action] = []
    try:
        if config.log is not None:
            from edgekit.actions.eventlog import EventLog

            built.append(EventLog(config.log))
        if any(rule.gpio is not None for rule in config.rules):
            from edgekit.actions.gpio import GpioOutputs

            built.append(GpioOutputs(config.rules, config.gpio))
        if config.mqtt is not None and any(rule.mqtt for rule in config.rules):
            from edgekit.actions.mqtt import MqttPublisher

            built.append(MqttPublisher(config.mqtt, config.rules))
    except BaseException:
        Actions(built).close()
        raise
    return Actions(built)
