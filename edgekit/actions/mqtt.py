"""MQTT: event messages, retained ON/OFF state, availability, Home Assistant discovery.

Topics, with ``base = <topic_prefix>/<device_id>``:
  ``base/event/<rule>``    one JSON message per event (not retained)
  ``base/state/<rule>``    "ON" / "OFF", retained
  ``base/availability``    "online" once connected, "offline" on close or as the last will
  ``<discovery_prefix>/binary_sensor/<device_id>/<rule>/config``  retained, when discovery is on
  (ids there reduced to [A-Za-z0-9_-]; re-sent when Home Assistant announces itself on
  ``<discovery_prefix>/status``)

Delivery scheme. ``handle()`` only appends to our own bounded queue and wakes a sender thread;
paho's network thread (``loop_start`` + ``connect_async``) owns the socket and reconnects with
back-off. The sender hands a window of queued events to paho while connected; an event leaves
the queue only when its PUBACK comes back (``on_publish`` with its mid). On every (re)connect,
paho's own unacknowledged copies are dropped and the unacknowledged events are sent again from
our queue, in order. So nothing is lost while the process lives and the queue has room
(the oldest are dropped, and counted, when it is full); an event whose PUBACK was lost with the
connection is sent twice, which is what QoS 1 means. With ``qos = 0`` an event counts as sent
once written to the socket. State transitions are published in order while connected but
not queued while the broker is away: every connect re-publishes availability, discovery and
the current state, so the retained state is always the latest.

Across a config reload (:meth:`MqttPublisher.reconfigure`, :meth:`MqttPublisher.adopt`), an
unchanged ``[mqtt]`` keeps the publisher and its connection; a changed one hands the events
still queued, and each rule's ON/OFF state, to the new publisher, so nothing is lost and no
state flaps.

Lock discipline: our lock is never held while calling into paho, because paho holds its own
message lock while running ``on_publish``, which takes ours.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import count

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edgekit.errors import MqttError
from edgekit.detect.events import Event
from edgekit.actions.settings import MqttSettings, Rule
from edgekit.actions import event_json
from edgekit.actions.mqtt_connect import Client, explain_connect_error
from edgekit.actions.mqtt_topics import OFF, OFFLINE, ON, ONLINE, Topics, check_level as _check_level

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class _Msg:
    seq: int
    rule: str
    topic: str
    payload: str


class MqttPublisher(Topics):
    """The MQTT action. ``handle()`` never waits for the network and never raises for it.

    ``start=False`` checks the settings and builds the client but opens no connection until
    :meth:`start` (a reload first hands the old publisher's queue and states over).
    """

    kind = "mqtt"

    def __init__(
        self,
        settings: MqttSettings,
        rules: Iterable[Rule],
        *,
        window: int = 16,
        reconnect_delay: tuple[float, float] = (1, 60),
        flush_seconds: float = 2.0,
        start: bool = True,
    ):
        self.settings = s = settings
        self._rules = self._check_rules(rules)
        prefix = _check_level("[mqtt] topic_prefix", s.topic_prefix, slash_ok=True)
        device = _check_level("[mqtt] device_id", s.device_id)
        self.base = f"{prefix}/{device}"
        self.availability_topic = f"{self.base}/availability"
        self.window = max(1, window)
        self.queue_size = max(1, s.queue_size)
        self.flush_seconds = flush_seconds

        self._cond = threading.Condition(threading.Lock())
        self._pending: deque[_Msg] = deque()  # not yet handed to paho on this connection
        self._inflight: dict[int, _Msg] = {}  # handed to paho, waiting for the PUBACK; by mid
        self._early_acks: set[int] = set()  # PUBACKs that beat the sender to recording the mid
        self._publishing = False
        self._in_batch = 0  # events the sender is handing to paho: in neither container meanwhile
        self._seq = count()
        self._state = {name: OFF for name in self._rules}
        self._state_out: list[tuple[str, str]] = []  # transitions to publish, in order
        self._announce = False
        self._connected = False
        self._gen = 0  # bumped on every connect and disconnect: marks stale sends
        self._stopping = False
        self._closed = False
        self._error: str | None = None
        self._drop_logged = False
        self.sent = self.dropped = 0

        client = Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.client_id or f"edgekit-{device}",
            protocol=mqtt.MQTTv311,
        )
        client.suppress_exceptions = True  # a bug in a callback must not kill the network thread
        if s.username:
            client.username_pw_set(s.username, s.password)
        if s.tls:
            try:
                client.tls_set(ca_certs=s.ca_certs, certfile=s.certfile, keyfile=s.keyfile)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                raise MqttError(f"[mqtt] TLS files unusable ({exc}); check ca_certs, certfile and keyfile") from exc
        client.will_set(self.availability_topic, OFFLINE, qos=s.qos, retain=True)
        client.reconnect_delay_set(*reconnect_delay)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        try:
            if not 0 < s.port < 65536:  # paho lets it through, then its thread dies of OverflowError
                raise ValueError(f"port {s.port} is not 1..65535")
            client.connect_async(s.host, s.port, s.keepalive)  # only checks and stores; no network yet
        except ValueError as exc:
            raise MqttError(f"[mqtt] host/port/keepalive unusable: {exc}") from exc
        self._client = client
        self._sender = threading.Thread(target=self._run, name="edgekit-mqtt-sender", daemon=True)
        self._started = False
        if start:
            self.start()

    @staticmethod
    def _check_rules(rules: Iterable[Rule]) -> dict[str, Rule]:
        chosen = {r.name: r for r in rules if r.mqtt}
        for name in chosen:
            _check_level("rule name", name)
        return chosen

    def start(self) -> None:
        """Start the sender and paho's network thread (which connects, and reconnects)."""
        if self._started or self._closed:
            return
        self._started = True
        self._sender.start()
        self._client.loop_start()

    def _announcements(self) -> list[tuple[str, str]]:
        out = [(self.availability_topic, ONLINE)]
        if self.settings.homeassistant_discovery:
            out += [(self.discovery_topic(n), json.dumps(self.discovery_config(r))) for n, r in self._rules.items()]
        return out

    # -- the detection loop's side --------------------------------------------------------

    def handle(self, event: Event) -> None:
        if event.rule not in self._rules or self._closed:
            return
        msg = _Msg(next(self._seq), event.rule, self.event_topic(event.rule), event_json(event))
        with self._cond:
            if self._backlog() >= self.queue_size and (self._pending or self._inflight):
                if self._pending:
                    self._pending.popleft()
                else:  # queue_size <= window: everything is on the wire; forget the oldest
                    self._inflight.pop(next(iter(self._inflight)))
                self.dropped += 1
                if not self._drop_logged:
                    log.warning("MQTT queue full (%d events): dropping the oldest", self.queue_size)
                    self._drop_logged = True
            self._pending.append(msg)
            if event.kind in ("start", "end"):
                self._state[event.rule] = ON if event.kind == "start" else OFF
                if self._connected:  # otherwise the next connect publishes the current state
                    self._state_out.append((event.rule, self._state[event.rule]))
            self._cond.notify_all()

    # -- the sender thread ----------------------------------------------------------------

    def _has_work(self) -> bool:
        return self._connected and bool(
            self._announce or self._state_out or (self._pending and len(self._inflight) < self.window)
        )

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping and not self._has_work():
                    self._cond.wait()
                if self._stopping:
                    return
                gen = self._gen
                batch: list[tuple[str, str, bool, _Msg | None]] = []
                if self._announce:
                    batch += [(t, p, True, None) for t, p in self._announcements()]
                    self._announce = False
                batch += [(self.state_topic(r), value, True, None) for r, value in self._state_out]
                self._state_out.clear()
                for _ in range(min(len(self._pending), self.window - len(self._inflight))):
                    m = self._pending.popleft()
                    batch.append((m.topic, m.payload, False, m))
                self._publishing = True
                self._in_batch = sum(m is not None for *_, m in batch)
            sent = []
            for topic, payload, retain, msg in batch:
                try:
                    info = self._client.publish(topic, payload, qos=self.settings.qos, retain=retain)
                except Exception as exc:  # e.g. an oversized payload: skip it rather than jam the queue
                    log.error("MQTT publish to %s failed: %s", topic, exc)
                    continue
                sent.append((msg, info.mid))
            with self._cond:
                self._publishing = False
                self._in_batch = 0
                stale = []
                for msg, mid in sent:
                    if msg is None:
                        continue
                    if gen != self._gen:
                        stale.append(msg)  # the connection changed under us: send again on the new one
                    elif mid in self._early_acks:
                        self.sent += 1
                    else:
                        self._inflight[mid] = msg
                self._early_acks.clear()
                if stale:
                    self._pending = deque(sorted((*stale, *self._pending), key=lambda m: m.seq))
                self._cond.notify_all()

    def _backlog(self) -> int:
        return len(self._pending) + len(self._inflight) + self._in_batch

    def _requeue_inflight(self) -> None:
        # Caller holds the lock. In-flight events are older than any pending one.
        if self._inflight:
            self._pending.extendleft(sorted(self._inflight.values(), key=lambda m: m.seq, reverse=True))
            self._inflight.clear()
        self._early_acks.clear()

    # -- paho callbacks (network thread) --------------------------------------------------

    def _set_error(self, text: str | None) -> None:
        with self._cond:
            changed, self._error = text != self._error, text
        if changed and text:
            log.error("MQTT %s:%s: %s", self.settings.host, self.settings.port, text)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            hint = "; check [mqtt] username/password" if reason_code.value in (0x86, 0x87, 4, 5) else ""
            self._set_error(f"the broker refused the connection: {reason_code}{hint}")
            return
        client.drop_out_messages()  # our queue resends them, in order
        if self.settings.homeassistant_discovery:
            client.subscribe(f"{self.settings.discovery_prefix}/status", qos=1)
        with self._cond:
            self._connected = True
            self._gen += 1
            self._requeue_inflight()
            self._announce = True
            self._state_out = list(self._state.items())
            self._drop_logged = False
            backlog = len(self._pending)
            self._cond.notify_all()
        log.info("MQTT %s:%s: connected; %d queued events to send", self.settings.host, self.settings.port, backlog)
        self._set_error(None)

    def _on_connect_fail(self, client, userdata) -> None:
        reason = explain_connect_error(getattr(client, "last_connect_error", None), self.settings.host,
                                       self.settings.port)
        self._set_error(f"{reason}; retrying with back-off, events are queued")

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        with self._cond:
            was_connected, self._connected = self._connected, False
            self._gen += 1
            self._requeue_inflight()
            self._cond.notify_all()
        if was_connected:
            self._set_error(f"connection lost ({reason_code}); events are queued until it returns")

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._cond:
            if self._inflight.pop(mid, None) is not None:
                self.sent += 1
                self._cond.notify_all()
            elif self._publishing:
                self._early_acks.add(mid)

    def _on_message(self, client, userdata, message) -> None:
        # Home Assistant's birth message: it has restarted and wants the configs again.
        if message.payload == b"online":
            with self._cond:
                self._announce = True
                self._state_out = list(self._state.items())
                self._cond.notify_all()

    # -- the daemon's side ----------------------------------------------------------------

    def reconfigure(self, rules: Iterable[Rule]) -> None:
        """A reload with the same ``[mqtt]``: keep the connection, follow the new rule set.

        States of rules that stay are kept (a sounding alarm stays ON); new rules start OFF; the
        discovery configs are announced again, so Home Assistant learns of new rules.
        """
        chosen = self._check_rules(rules)  # raises before anything changes
        with self._cond:
            self._rules = chosen
            self._state = {name: self._state.get(name, OFF) for name in chosen}
            if self._connected:
                self._announce = True
                self._state_out = list(self._state.items())
            self._cond.notify_all()

    def adopt(self, old: MqttPublisher) -> None:
        """Take over ``old``'s undelivered events and rule states, then close ``old``.

        Call before :meth:`start`, so the first connect publishes the carried states. Events go
        to this publisher's topic for their rule, oldest first, ahead of anything new.
        """
        handed = old._hand_over(same_availability=old.availability_topic == self.availability_topic
                                and (old.settings.host, old.settings.port) == (self.settings.host, self.settings.port))
        with self._cond:
            for name in self._state:
                if name in old._state:
                    self._state[name] = old._state[name]
            moved = [_Msg(next(self._seq), m.rule, self.event_topic(m.rule), m.payload) for m in handed]
            excess = len(moved) + self._backlog() - self.queue_size
            if excess > 0:
                moved = moved[excess:]
                self.dropped += excess
            self._pending.extendleft(reversed(moved))
            self._cond.notify_all()
        if handed:
            log.info("MQTT: %d queued events moved to the reloaded [mqtt] settings", len(moved))

    def _hand_over(self, same_availability: bool) -> list[_Msg]:
        """Stop, as :meth:`close`, but return the events not yet acknowledged instead of losing them."""
        return self._shutdown(hand_over=True, say_offline=not same_availability)

    def describe(self) -> str:
        s = self.settings
        return f"MQTT {s.host}:{s.port} {self.base}/event/<rule> ({', '.join(self._rules) or 'no rules'})"

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def queued(self) -> int:
        with self._cond:
            return self._backlog()

    def wait_connected(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._connected and not self._announce, timeout)

    def flush(self, timeout: float) -> bool:
        """Wait until every queued event is acknowledged (while connected); True when none is left."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._backlog() or self._stopping, timeout) and not self._backlog()

    def close(self) -> None:
        """Flush for up to ``flush_seconds``, publish "offline", disconnect. Idempotent."""
        self._shutdown(hand_over=False, say_offline=True)

    def _shutdown(self, hand_over: bool, say_offline: bool) -> list[_Msg]:
        if self._closed:
            return []
        self._closed = True
        deadline = time.monotonic() + self.flush_seconds
        if self._connected:
            self.flush(self.flush_seconds)
        with self._cond:
            self._stopping = True
            connected, self._connected = self._connected, False  # our own disconnect is no loss
            self._cond.notify_all()
        if self._started:
            self._sender.join(timeout=5)
        with self._cond:  # the sender has stopped: whatever it handed to paho is in _inflight now
            self._requeue_inflight()
            left = list(self._pending)
            if hand_over:
                self._pending.clear()
        if connected and say_offline:
            info = self._client.publish(self.availability_topic, OFFLINE, qos=self.settings.qos, retain=True)
            try:
                info.wait_for_publish(max(0.2, deadline - time.monotonic()))
            except (RuntimeError, ValueError):
                pass  # the last will says the same if this one is lost
        self._client.disconnect()  # a clean DISCONNECT: the broker does not send the last will
        if self._started:
            self._client.loop_stop()
        if left and not hand_over:
            log.warning("MQTT: %d queued events were not delivered before close", len(left))
        return left

    def status(self) -> str:
        with self._cond:
            state = "connected" if self._connected else "closed" if self._closed else "down"
            if self._error and not self._connected and not self._closed:
                state += f" ({self._error})"
            queued = self._backlog()
            where = f"{self.settings.host}:{self.settings.port}"
            return f"mqtt {where} {state}, {self.sent} sent, {queued} queued, {self.dropped} dropped"
