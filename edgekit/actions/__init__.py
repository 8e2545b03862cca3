"""What the daemon does with detector events: GPIO outputs, MQTT messages, a JSON-lines log.

Every action has ``handle(event)``, ``close()`` (idempotent) and ``status()``. :class:`Actions`
fans an event out to all of them; one failing action is logged and never stops the others. A
muted rule's events (:mod:`edgekit.actions.mute`) go to the event log only.
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

    def __init__(self, actions: Sequence[Action] = (), mutes=None):
        self.actions = list(actions)
        self.mutes = mutes  # a Mutes, or None: nothing is ever muted
        self._closed = False

    def __iter__(self):
        return iter(self.actions)

    def handle(self, event: Event) -> bool:
        """Hand ``event`` to every action; False when its rule is muted (then only the event log has it)."""
        muted = self.mutes is not None and self.mutes.holds(event)
        for action in self.actions:
            if muted and getattr(action, "kind", None) != "log":
                continue
            try:
                action.handle(event)
            except Exception:
                log.exception("%s failed on a %s event of rule %r", type(action).__name__, event.kind, event.rule)
        return not muted

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

    def describe(self) -> str:
        """Where events go, for the log at start: ``event log /var/lib/...; MQTT ...; GPIO ...``."""
        parts = [d() for d in (getattr(a, "describe", None) for a in self.actions) if d is not None]
        return "; ".join(parts) if parts else "nowhere (no [log], [mqtt] or GPIO actions configured)"

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


def build_actions(config, previous: Actions | None = None, *, log_fallback=None, state_dir=None) -> Actions:
    """Every action the config asks for; raises an ActionError subclass when one cannot start.

    ``config``: the daemon's :class:`~edgekit.daemon.settings.Config`, or anything with its
    ``rules``, ``gpio``, ``mqtt`` and ``log`` (not imported: the daemon is the layer above).
    ``previous``: the running actions, on a reload. What did not change is reused, so a level
    GPIO output stays on, the MQTT connection stays up and the event log stays open; a changed
    ``[mqtt]`` gets a new publisher that takes over the old one's queued events and states.
    On success ``previous`` is used up (its parts reused or closed); on failure it is left
    running as it was. ``log_fallback``: see :class:`~edgekit.actions.eventlog.EventLog`.
    ``state_dir``: where MQTT keeps undelivered events across a stop when there is no event log
    to keep them beside (:mod:`edgekit.actions.mqtt_store`); a first start (no ``previous``)
    queues what the last stop kept there.
    """
    prev = {getattr(a, "kind", None): a for a in (previous.actions if previous is not None else ())}
    parts: list[Action] = []
    built: list[Action] = []  # new here: closed again if a later part fails
    undo = []  # how to put reused parts back as they were
    try:
        if config.log is not None:
            old = prev.get("log")
            if old is not None and old.settings == config.log:
                parts.append(old)
            else:
                from edgekit.actions.eventlog import EventLog

                built.append(EventLog(config.log, fallback_dir=log_fallback))
                parts.append(built[-1])
        if config.mqtt is not None and any(rule.mqtt for rule in config.rules):
            old = prev.get("mqtt")
            if old is not None and old.settings == config.mqtt:
                before = tuple(old.rules.values())
                old.reconfigure(config.rules)
                undo.append(lambda old=old, before=before: old.reconfigure(before))
                parts.append(old)
            else:
                from edgekit.actions.mqtt import MqttPublisher
                from edgekit.actions.mqtt_store import OutboxStore, store_path

                logs = [p for p in parts if getattr(p, "kind", None) == "log"]
                where = logs[0].path.parent if logs else state_dir
                store = OutboxStore(store_path(where, config.mqtt.device_id)) if where is not None else None
                # Not connected yet: it first takes over the old publisher's queue and states.
                built.append(MqttPublisher(config.mqtt, config.rules, start=False, store=store))
                parts.append(built[-1])
        # GPIO last, because it may have to release pins the running config holds.
        old = prev.get("gpio")
        if any(rule.gpio is not None for rule in config.rules):
            if old is not None and old.settings == config.gpio:
                old.update(config.rules)  # restores itself when it fails
                parts.append(old)
            else:
                from edgekit.actions.gpio import GpioOutputs

                if old is not None:  # another pin factory: the old one lets go of the chip first
                    old_rules = old.rules
                    old.close()
                    undo.append(lambda: _restore_gpio(previous, old, old_rules))
                built.append(GpioOutputs(config.rules, config.gpio))
                parts.append(built[-1])
    except BaseException:
        Actions(built).close()
        for step in reversed(undo):
            try:
                step()
            except Exception:
                log.exception("reload: cannot restore the running actions")
        raise
    # Commit: hand queued MQTT events over, start new publishers, close what is not reused.
    for part in parts:
        if part in built and getattr(part, "kind", None) == "mqtt":
            if prev.get("mqtt") is not None:
                part.adopt(prev["mqtt"])
            elif previous is None:
                part.restore()  # what the last stop could not deliver goes first
            part.start()
    if previous is not None:
        Actions([a for a in previous.actions if a not in parts]).close()
        previous.actions, previous._closed = [], True
    return Actions(parts, mutes=previous.mutes if previous is not None else None)


def _restore_gpio(previous: Actions, closed, rules) -> None:
    from edgekit.actions.gpio import GpioOutputs

    i = previous.actions.index(closed)
    previous.actions[i] = GpioOutputs(rules, closed.settings)
