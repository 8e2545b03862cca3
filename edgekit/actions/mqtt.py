"""MQTT: event messages, retained ON/OFF state, availability, Home Assistant discovery.

Topics, with ``base = <topic_prefix>/<device_id>``:
  ``base/event/<rule>``    one JSON message per event (not retained)
  ``base/state/<rule>``    "ON" / "OFF", retained
  ``base/availability``    "online" once connected, "offline" on close or as the last will
  ``<discovery_prefix>/binary_sensor/<device_id>/<rule>/config``  retained, when discovery is on
  (ids there reduced to [A-Za-z0-9_-]; re-sent when Home Assistant announces itself on
  ``<discovery_prefix>/status``)
  ``base/status``, ``base/level``, ``base/last``, ``base/command``, ``base/ack``: the device's own
  sensors and commands (:mod:`edgekit.actions.mqtt_sensors`, :mod:`edgekit.daemon.remote`)

Every event message carries the event's ``id`` (shared by an occurrence's start and end): a
consumer drops a QoS 1 redelivery by ``(id, kind)``.

Delivery scheme. ``handle()`` only appends to our own bounded queue
(:class:`~edgekit.actions.mqtt_outbox.Outbox`) and wakes a sender thread; paho's network thread
(``loop_start`` + ``connect_async``) owns the socket and reconnects with back-off. The sender
hands a window of queued events to paho while connected; an event leaves the queue only when
its PUBACK comes back (``on_publish`` with its mid). On every (re)connect, paho's own
unacknowledged copies are dropped and the unacknowledged events are sent again from our queue,
in order. With ``qos = 0`` an event counts as sent once written to the socket. State
transitions are not queued while the broker is away: every connect re-publishes availability,
discovery and the current state (:class:`~edgekit.actions.mqtt_retained.Retained`).

At close, the publisher waits up to ``[mqtt] close_seconds`` for the broker (it may be restarting)
and its acknowledgements, says "offline", and keeps what is still unacknowledged on disk
(:mod:`edgekit.actions.mqtt_store`) for the next start, which sends it first.

Across a config reload (:meth:`MqttPublisher.reconfigure`, :meth:`MqttPublisher.adopt`), an
unchanged ``[mqtt]`` keeps the publisher and its connection; a changed one hands the events
still queued, and each rule's ON/OFF state, to the new publisher, so nothing is lost and no
state flaps.

Lock discipline: our lock is never held while calling into paho, because paho holds its own
message lock while running ``on_publish``, which takes ours.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable

from edgekit.detect.events import Event
from edgekit.actions.settings import MqttSettings, Rule
from edgekit.actions import event_json, event_record
from edgekit.actions.mqtt_connect import explain_connect_error, likely_cause, make_client
from edgekit.actions.mqtt_outbox import Msg, Outbox
from edgekit.actions.mqtt_retained import Retained
from edgekit.actions.mqtt_sensors import DeviceSensors
from edgekit.actions.mqtt_store import OutboxStore
from edgekit.actions.mqtt_topics import OFFLINE, Topics, check_level as _check_level, mqtt_rules

log = logging.getLogger(__name__)

MAX_COMMAND_BYTES = 1024  # a command is a short JSON object; anything longer is refused unread


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
        flush_seconds: float | None = None,
        start: bool = True,
        store: OutboxStore | None = None,
    ):
        self.settings = s = settings
        chosen = mqtt_rules(rules)
        prefix = _check_level("[mqtt] topic_prefix", s.topic_prefix, slash_ok=True)
        device = _check_level("[mqtt] device_id", s.device_id)
        self.base = f"{prefix}/{device}"
        self.availability_topic = f"{self.base}/availability"
        self._outbox = Outbox(s.queue_size, window)
        self.window = self._outbox.window
        self.queue_size = self._outbox.size
        # At close: the wait for the broker (it may be restarting) and for its acknowledgements.
        self.flush_seconds = s.close_seconds if flush_seconds is None else flush_seconds
        self._store = store  # where undelivered events wait for the next start
        self._store_loaded = False  # events came from the store and are not all acknowledged yet
        self._clear_store = False  # all of them are: the sender removes the file
        self._sensors = DeviceSensors(self)
        self._inbox: deque[tuple[bytes | None, int, bool]] = deque(maxlen=64)  # commands for the main loop
        self._failure: tuple[str, int] = ("", 0)  # the last way a connection attempt failed, and how often
        self._answered = False  # the broker answered this connection's CONNECT

        self._retained = Retained(self, chosen)
        self._cond = threading.Condition(threading.Lock())  # guards the outbox, _retained and all below
        self._connected = False
        self._gen = 0  # bumped on every connect and disconnect: marks stale sends
        self._stopping = False
        self._closed = False
        self._error: str | None = None
        self._drop_logged = False

        client = make_client(s, s.client_id or f"edgekit-{device}", self.availability_topic, reconnect_delay)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        self._client = client
        self._sender = threading.Thread(target=self._run, name="edgekit-mqtt-sender", daemon=True)
        self._started = False
        if start:
            self.start()

    def start(self) -> None:
        """Start the sender and paho's network thread (which connects, and reconnects)."""
        if self._started or self._closed:
            return
        self._started = True
        self._sender.start()
        self._client.loop_start()

    # -- the detection loop's side --------------------------------------------------------

    def handle(self, event: Event) -> None:
        if event.rule not in self._retained.rules or self._closed:
            return
        topic, payload = self.event_topic(event.rule), event_json(event)
        with self._cond:
            if self._outbox.add(event.rule, topic, payload) and not self._drop_logged:
                log.warning("MQTT queue full (%d events): dropping the oldest", self.queue_size)
                self._drop_logged = True
            self._retained.change(event.rule, event.kind, self._connected)
            if event.kind == "start":
                self._sensors.detected(event_record(event))
            self._cond.notify_all()

    # -- the sender thread ----------------------------------------------------------------

    def _has_work(self) -> bool:
        return self._clear_store or self._connected and (
            self._retained.due() or self._sensors.due() or self._outbox.sendable())

    def _run(self) -> None:
        qos = self.settings.qos
        while True:
            with self._cond:
                while not self._stopping and not self._has_work():
                    self._cond.wait()
                if self._stopping:
                    return
                clear, self._clear_store = self._clear_store, False
                gen = self._gen
                batch: list[tuple[str, str, bool, Msg | None, int]] = []
                began = self._connected
                if began:
                    batch += [(t, p, True, None, qos) for t, p in self._retained.take()]
                    batch += [(t, p, r, None, qos if r or t == self.ack_topic else 0)
                              for t, p, r in self._sensors.take(self._outbox.backlog())]
                    batch += [(m.topic, m.payload, False, m, qos) for m in self._outbox.begin_batch()]
            if clear and self._store is not None:
                self._store.clear()  # every event kept by the last stop is delivered
            if not began:  # woken only to clear the store
                continue
            sent = []  # the events paho took, with their mids
            for topic, payload, retain, msg, q in batch:
                try:
                    info = self._client.publish(topic, payload, qos=q, retain=retain)
                except Exception as exc:  # e.g. an oversized payload: skip it rather than jam the queue
                    log.error("MQTT publish to %s failed: %s", topic, exc)
                    continue
                if msg is not None:
                    sent.append((msg, info.mid))
            with self._cond:
                self._outbox.end_batch(sent, stale=gen != self._gen)
                self._cond.notify_all()

    # -- paho callbacks (network thread) --------------------------------------------------

    def _set_error(self, text: str | None) -> None:
        with self._cond:
            changed, self._error = text != self._error, text
        if changed and text:
            log.error("MQTT %s:%s: %s", self.settings.host, self.settings.port, text)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self._answered = True  # the broker answered, if only to refuse: its reason code says why
        if reason_code.is_failure:
            hint = "; check [mqtt] username/password" if reason_code.value in (0x86, 0x87, 4, 5) else ""
            self._set_error(f"the broker refused the connection: {reason_code}{hint}")
            return
        client.drop_out_messages()  # our queue resends them, in order
        if self.settings.homeassistant_discovery:
            client.subscribe(f"{self.settings.discovery_prefix}/status", qos=1)
        client.subscribe(self.command_topic, qos=1)
        with self._cond:
            self._connected = True
            self._gen += 1
            self._outbox.requeue_inflight()
            self._retained.announce()
            self._sensors.announce()
            self._drop_logged = False
            self._failure = ("", 0)
            backlog = len(self._outbox.pending)
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
            answered, self._answered = self._answered, False
            self._gen += 1
            self._outbox.requeue_inflight()
            self._cond.notify_all()
        if was_connected:
            self._set_error(f"connection lost ({reason_code}); events are queued until it returns")
        elif not answered:  # the broker closed the connection before answering: paho says nothing else
            self._failed(f"the broker closed the connection before answering ({reason_code})")

    def _failed(self, how: str) -> None:
        """A connection attempt failed ``how``; the second time in a row, say why it probably does."""
        with self._cond:
            last, n = self._failure
            self._failure = (how, n + 1 if how == last else 1)
            again = self._failure[1] == 2
        if again:
            s = self.settings
            text = f"{how}, twice: {likely_cause(s.port, s.tls)}; retrying with back-off, events are queued"
            with self._cond:
                self._error = text
            log.warning("MQTT %s:%s: %s", s.host, s.port, text)

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._cond:
            if self._outbox.ack(mid):
                if self._store_loaded and not self._outbox.restored:
                    self._store_loaded, self._clear_store = False, True
                self._cond.notify_all()

    def _on_message(self, client, userdata, message) -> None:
        if message.topic == self.command_topic:
            # Only queued here: the daemon's main loop reads, checks and carries out commands
            # (edgekit.daemon.remote), never this network thread.
            size = len(message.payload)
            with self._cond:
                self._inbox.append((message.payload if size <= MAX_COMMAND_BYTES else None, size, message.retain))
            return
        # Home Assistant's birth message: it has restarted and wants the configs again.
        if message.payload == b"online":
            with self._cond:
                self._retained.announce()
                self._sensors.announce()
                self._cond.notify_all()

    # -- the daemon's side ----------------------------------------------------------------

    def reconfigure(self, rules: Iterable[Rule]) -> None:
        """A reload with the same ``[mqtt]``: keep the connection, follow the new rule set.

        States of rules that stay are kept (a sounding alarm stays ON); new rules start OFF; the
        discovery configs are announced again, so Home Assistant learns of new rules.
        """
        chosen = mqtt_rules(rules)  # raises before anything changes
        with self._cond:
            self._retained.follow(chosen, self._connected)
            self._cond.notify_all()

    def adopt(self, old: MqttPublisher) -> None:
        """Take over ``old``'s undelivered events and rule states, then close ``old``.

        Call before :meth:`start`, so the first connect publishes the carried states. Events go
        to this publisher's topic for their rule, oldest first, ahead of anything new.
        """
        handed = old._hand_over(same_availability=old.availability_topic == self.availability_topic
                                and (old.settings.host, old.settings.port) == (self.settings.host, self.settings.port))
        with self._cond:
            self._retained.carry(old._retained)
            self._sensors.status = dict(old._sensors.status)
            moved = self._outbox.adopt(handed, self.event_topic)
            self._store_loaded = bool(self._outbox.restored)
            self._cond.notify_all()
        if handed:
            log.info("MQTT: %d queued events moved to the reloaded [mqtt] settings", moved)

    def _hand_over(self, same_availability: bool) -> list[Msg]:
        """Stop, as :meth:`close`, but return the events not yet acknowledged instead of losing them."""
        return self._shutdown(hand_over=True, say_offline=not same_availability)

    def restore(self) -> int:
        """Queue the events the last stop kept on disk (call before :meth:`start`); how many."""
        if self._store is None:
            return 0
        kept = self._store.load(self.queue_size)
        if not kept:
            return 0
        with self._cond:
            n = self._outbox.restore((rule, topic, payload, True) for rule, topic, payload in kept)
            self._store_loaded = True
        log.info("MQTT: %d undelivered events from the last stop (%s) queued to send first", n, self._store.path)
        return n

    # -- the device's sensors and commands (edgekit.actions.mqtt_sensors, edgekit.daemon.remote) --

    def set_state(self, state: str) -> None:
        """The device's state: listening, waiting_for_microphone or error (retained on base/status)."""
        self.set_status(state=state)

    def set_status(self, **fields) -> None:
        with self._cond:
            if self._sensors.set_status(**fields):
                self._cond.notify_all()

    def refresh_status(self) -> None:
        """Publish the status again if the queue length changed since (the daemon paces the calls)."""
        with self._cond:
            if self._sensors.refresh(self._outbox.backlog()):
                self._cond.notify_all()

    def level(self, dbfs: float) -> None:
        """A microphone level worth publishing (the caller rate-limits); dropped while disconnected."""
        with self._cond:
            self._sensors.level(dbfs, self._connected)
            self._cond.notify_all()

    def ack(self, payload: dict) -> None:
        """An answer to a command, on base/ack."""
        with self._cond:
            self._sensors.ack(payload)
            self._cond.notify_all()

    def take_commands(self) -> list[tuple[bytes | None, int, bool]]:
        """Commands received since the last call: (payload or None when oversized, size, retained)."""
        with self._cond:
            got = list(self._inbox)
            self._inbox.clear()
        return got

    def describe(self) -> str:
        s = self.settings
        return (f"MQTT {s.host}:{s.port} as device {s.device_id!r}: {self.base}/event/<rule> "
                f"({', '.join(self.rules) or 'no rules'})")

    @property
    def rules(self) -> dict[str, Rule]:
        """The rules this publisher follows (those with ``mqtt = true``), by name."""
        return self._retained.rules

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def queued(self) -> int:
        with self._cond:
            return self._outbox.backlog()

    @property
    def sent(self) -> int:
        return self._outbox.sent

    @property
    def dropped(self) -> int:
        return self._outbox.dropped

    def wait_connected(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._connected and not self._retained.announcing, timeout)

    def flush(self, timeout: float) -> bool:
        """Wait until every queued event is acknowledged (while connected); True when none is left."""
        with self._cond:
            backlog = self._outbox.backlog
            return self._cond.wait_for(lambda: not backlog() or self._stopping, timeout) and not backlog()

    def close(self) -> None:
        """Flush for up to ``flush_seconds``, publish "offline", disconnect. Idempotent."""
        self._shutdown(hand_over=False, say_offline=True)

    def _shutdown(self, hand_over: bool, say_offline: bool) -> list[Msg]:
        if self._closed:
            return []
        self._closed = True
        deadline = time.monotonic() + self.flush_seconds
        if not hand_over and self._started:
            # The broker may be restarting: wait for it (bounded), then for its acknowledgements.
            if not self._connected and (self.queued or say_offline):
                self.wait_connected(self.flush_seconds)
            if self._connected:
                self.flush(max(0.0, deadline - time.monotonic()))
        with self._cond:
            self._stopping = True
            connected, self._connected = self._connected, False  # our own disconnect is no loss
            self._cond.notify_all()
        if self._started:
            self._sender.join(timeout=5)
        with self._cond:  # the sender has stopped: whatever it handed to paho is in flight now
            left = self._outbox.take_all(clear=hand_over)
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
            if self._store is not None and self._store.save([(m.rule, m.topic, m.payload) for m in left]):
                log.warning("MQTT: %d queued events were not delivered before close; kept in %s for the next "
                            "start", len(left), self._store.path)
            else:
                log.warning("MQTT: %d queued events were not delivered before close", len(left))
        elif not hand_over and self._store is not None:
            self._store.clear()  # nothing is left over: no file either
        return left

    def status(self) -> str:
        with self._cond:
            state = "connected" if self._connected else "closed" if self._closed else "down"
            if self._error and not self._connected and not self._closed:
                state += f" ({self._error})"
            queued = self._outbox.backlog()
            where = f"{self.settings.host}:{self.settings.port}"
            return f"mqtt {where} {state}, {self.sent} sent, {queued} queued, {self.dropped} dropped"
