"""Commands from the broker and the device's MQTT sensors, both driven by the daemon's main loop.

Commands arrive on ``<topic_prefix>/<device_id>/command`` as one JSON object each:

  ``{"command": "mute", "rule": "smoke_alarm", "seconds": 600}``  mute a rule (0 < seconds <= 3600)
  ``{"command": "unmute", "rule": "smoke_alarm"}``                end a mute now
  ``{"command": "test", "rule": "smoke_alarm"}``                  "press the test button": a start,
      then an end ``seconds`` later (default 2, at most 30), with label "test", through every
      action of the rule (GPIO, MQTT, event log) as a real detection would go

An optional ``"id"`` (a string of at most 64 characters) is echoed in the answer, and a command
whose id was just carried out is answered again but not carried out twice (a QoS 1 redelivery).
Every command is answered on ``<base>/ack``: ``{"ok": true, "command": ..., "rule": ..., ...}``,
or ``{"ok": false, "error": "<why>"}`` for one that is refused. Commands are checked as the config
is: bad JSON, an unknown command, key or rule, a duration that is not a number in range, more
than 1024 bytes, a retained message (it would run again at every connect) — each is refused with
a logged reason, and nothing else changes. A test is refused while its rule is muted or sounding.

paho's network thread only queues what arrives (:meth:`MqttPublisher.take_commands`); this
module reads the queue from the main loop (:meth:`Remote.tick`), so a command never races the
detector, a reload or the outputs. What a mute does is :mod:`edgekit.actions.mute`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone

from edgekit.actions.mqtt_sensors import LevelLimiter
from edgekit.actions.mute import MAX_MUTE_SECONDS, Mutes
from edgekit.audio.opener import ListeningState
from edgekit.detect.events import Event
from edgekit.errors import CommandError

log = logging.getLogger("edgekit.service")

COMMANDS = ("mute", "unmute", "test")
KEYS = {"mute": ("seconds",), "unmute": (), "test": ("seconds",)}
TEST_SECONDS, MAX_TEST_SECONDS = 2.0, 30.0
MAX_BYTES = 1024  # as the publisher's MAX_COMMAND_BYTES: bigger ones arrive unread
STATUS_EVERY = 5.0  # seconds between status refreshes (queue length) on the broker


@dataclass(frozen=True)
class Command:
    command: str
    rule: str
    seconds: float | None = None
    id: str | None = None


def parse_command(payload: bytes | None, size: int, retained: bool, rules) -> Command:
    """A command checked against the configured ``rules`` (names); CommandError says why not."""
    if retained:
        raise CommandError("a retained command is refused (it would run again at every connect); "
                           "publish commands without the retain flag")
    if payload is None or size > MAX_BYTES:
        raise CommandError(f"{size} bytes; a command is a JSON object of at most {MAX_BYTES} bytes")
    try:
        doc = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CommandError(f"not JSON ({exc}); send e.g. {{\"command\": \"test\", \"rule\": \"smoke_alarm\"}}") from None
    if not isinstance(doc, dict):
        raise CommandError(f"a JSON object is expected, not {type(doc).__name__}")
    cid = doc.get("id")
    if cid is not None and not (isinstance(cid, str) and 0 < len(cid) <= 64):
        raise CommandError("id must be a string of 1 to 64 characters")
    name = doc.get("command")
    if name not in COMMANDS:
        raise CommandError(f"command must be one of {', '.join(COMMANDS)}, got {_show(name)}")
    unknown = sorted(set(doc) - {"command", "rule", "id", *KEYS[name]})
    if unknown:
        allowed = ", ".join(("command", "rule", "id", *KEYS[name]))
        raise CommandError(f"{name}: unknown key {unknown[0]!r}; {name} takes {allowed}")
    rule = doc.get("rule")
    names = list(rules)
    if not isinstance(rule, str) or rule not in names:
        raise CommandError(f"{name}: rule must be one of this device's rules ({', '.join(names) or 'none'}), "
                           f"got {_show(rule)}")
    seconds = doc.get("seconds")
    if name == "mute":
        seconds = _duration(name, seconds, MAX_MUTE_SECONDS, required=True)
    elif name == "test":
        seconds = _duration(name, seconds, MAX_TEST_SECONDS, required=False)
    return Command(name, rule, seconds, cid)


def _duration(name: str, value, limit: float, required: bool) -> float:
    if value is None and not required:
        return TEST_SECONDS
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not 0 < value <= limit:
        raise CommandError(f"{name}: seconds must be a number above 0 and at most {limit:g}, got {_show(value)}")
    return float(value)


def _show(value) -> str:
    text = json.dumps(value) if value is not None else "nothing"
    return text if len(text) <= 40 else text[:37] + "..."


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, tz=timezone.utc).isoformat(timespec="seconds")


class Remote:
    """The main loop's side of MQTT: commands carried out, test events ended, sensors fed.

    ``svc``: the running :class:`~edgekit.daemon.service.Service` (its config, actions, pipeline
    and source are read afresh at every tick, so a reload is followed); ``dispatch``: how events
    reach the actions (the service's own, which logs and counts them).
    """

    def __init__(self, svc, dispatch):
        self._svc = svc
        self._dispatch = dispatch
        self.mutes = Mutes()
        self.state = "listening"
        self._level = LevelLimiter()
        self._tests: list[tuple[float, Event]] = []  # (monotonic time to end it, its end event)
        self._done: deque[tuple[str, dict]] = deque(maxlen=64)  # recent command ids and their answers
        self._status_at = 0.0
        self._pub = None
        self._faulted = False

    def publisher(self):
        actions = self._svc.actions
        return next((a for a in actions if getattr(a, "kind", None) == "mqtt"), None) if actions else None

    def set_state(self, state: str) -> None:
        """The device's state on the broker: listening, waiting_for_microphone or error."""
        self.state = state
        pub = self.publisher()
        if pub is not None:
            pub.set_state(state)

    def tick(self) -> None:
        """Once per turn of the main loop: due test ends, ended mutes, commands, level and state."""
        try:
            self._tick(time.monotonic())
        except Exception:  # a fault here must not stop the detector; say it once
            if not self._faulted:
                log.exception("MQTT commands/sensors failed; detection goes on")
            self._faulted = True

    def _tick(self, now: float) -> None:
        self._end_tests(now)
        for rule in self.mutes.expire():
            log.warning("rule %s: mute ended, its actions run again", rule)
        pub = self.publisher()
        if pub is None:
            return
        if pub is not self._pub:  # a new publisher (start, or a reload that changed [mqtt])
            self._pub, self._status_at = pub, 0.0
        for payload, size, retained in pub.take_commands():
            pub.ack(self._carry_out(payload, size, retained))
        pipeline = self._svc.pipeline
        if pipeline is not None and pipeline.stats.windows and pub.connected:  # a level is news only when sent
            level = self._level.due(pipeline.stats.last_dbfs, now)
            if level is not None:
                pub.level(level)
        # The service tracks whether it hears (Service.listening_state): one state, read here.
        lost = self._svc.listening_state in (ListeningState.WAITING, ListeningState.ERROR)
        pub.set_status(state="waiting_for_microphone" if lost and self.state == "listening" else self.state,
                       muted={r: _iso(w) for r, w in sorted(self.mutes.active().items())})
        if now - self._status_at >= STATUS_EVERY:
            self._status_at = now
            pub.refresh_status()

    def close(self) -> None:
        """At stop: end running tests now, so no output or retained state is left ON."""
        self._end_tests(math.inf)

    def _end_tests(self, now: float) -> None:
        due = [ev for t, ev in self._tests if t <= now]
        if due:
            self._tests = [(t, ev) for t, ev in self._tests if t > now]
            self._dispatch(due)

    def _carry_out(self, payload: bytes | None, size: int, retained: bool) -> dict:
        rules = [r.name for r in self._svc.config.rules]
        try:
            cmd = parse_command(payload, size, retained, rules)
            for cid, answer in self._done:
                if cmd.id is not None and cid == cmd.id:
                    return {**answer, "repeat": True}  # a redelivery: answered, not done twice
            answer = {"id": cmd.id, "ok": True, "command": cmd.command, "rule": cmd.rule,
                      **getattr(self, f"_{cmd.command}")(cmd)}
        except CommandError as exc:
            excerpt = "" if payload is None else payload[:80].decode("utf-8", "replace")
            log.warning("MQTT command refused: %s (%r)", exc, excerpt)
            cid = _peek_id(payload)
            return {**({"id": cid} if cid else {}), "ok": False, "error": str(exc)}
        if cmd.id is not None:
            self._done.append((cmd.id, answer))
        if cmd.id is None:
            del answer["id"]
        return answer

    def _mute(self, cmd: Command) -> dict:
        until = self.mutes.mute(cmd.rule, cmd.seconds)
        log.warning("rule %s muted for %g s (until %s) by an MQTT command: no GPIO or MQTT events; the event log "
                    "still records them", cmd.rule, cmd.seconds, _iso(until))
        return {"until": _iso(until)}

    def _unmute(self, cmd: Command) -> dict:
        was = self.mutes.unmute(cmd.rule)
        log.warning("rule %s unmuted by an MQTT command%s", cmd.rule, "" if was else " (it was not muted)")
        return {"was_muted": was}

    def _test(self, cmd: Command) -> dict:
        if self.mutes.muted(cmd.rule):
            raise CommandError(f"test: rule {cmd.rule} is muted; unmute it first")
        if self.mutes.sounding(cmd.rule):
            raise CommandError(f"test: rule {cmd.rule} is sounding now (a detection or a test); try again later")
        log.warning("rule %s: test started by an MQTT command, for %g s", cmd.rule, cmd.seconds)
        svc = self._svc
        start = Event("start", cmd.rule, "test", 1.0, 1.0, time.monotonic(), time.time(), svc.stream_time)
        end = Event("end", cmd.rule, "test", 1.0, 1.0, start.t_mono + cmd.seconds, start.t_wall + cmd.seconds,
                    start.stream_time + cmd.seconds, cmd.seconds, id=start.id)
        self._dispatch([start])
        self._tests.append((start.t_mono + cmd.seconds, end))
        return {"event": start.id, "seconds": cmd.seconds}


def _peek_id(payload: bytes | None) -> str | None:
    """The id of a refused command, if it has a usable one, so the answer can be matched."""
    try:
        cid = json.loads(payload.decode("utf-8")).get("id")
    except Exception:  # refused for a reason; the id is only a courtesy
        return None
    return cid if isinstance(cid, str) and 0 < len(cid) <= 64 else None
