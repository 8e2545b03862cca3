"""The MQTT publisher's loss-free event queue (see :mod:`edgekit.actions.mqtt` for the threads).

An event is *pending* until the sender hands it to paho, then *in flight* (by paho's message
id) until its PUBACK comes back; only then does it leave the queue. On every (re)connect the
in-flight events go back to the front of the pending ones, in order, and are sent again: so
nothing is lost while the process lives and the queue has room (the oldest are dropped, and
counted, when it is full); an event whose PUBACK was lost with the connection is sent twice,
which is what QoS 1 means.

Not thread-safe by itself: the publisher holds its lock around every call, and never while
calling into paho (paho holds its own message lock while running ``on_publish``, which takes ours).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import count


@dataclass(frozen=True)
class Msg:
    seq: int  # order of arrival: a resend keeps its place ahead of younger events
    rule: str
    topic: str
    payload: str
    restored: bool = False  # kept on disk by the last stop (edgekit.actions.mqtt_store)


class Outbox:
    """Pending and in-flight events, at most ``size`` of them, at most ``window`` in flight."""

    def __init__(self, size: int, window: int):
        self.size = max(1, size)
        self.window = max(1, window)
        self.pending: deque[Msg] = deque()  # not yet handed to paho on this connection
        self.inflight: dict[int, Msg] = {}  # handed to paho, waiting for the PUBACK; by mid
        self._early_acks: set[int] = set()  # PUBACKs that beat the sender to recording the mid
        self._publishing = False
        self._in_batch = 0  # events the sender is handing to paho: in neither container meanwhile
        self._seq = count()
        self.sent = self.dropped = 0
        self.restored = 0  # restored events not yet acknowledged or dropped

    def _gone(self, msg: Msg) -> None:
        self.restored -= msg.restored

    def backlog(self) -> int:
        return len(self.pending) + len(self.inflight) + self._in_batch

    def add(self, rule: str, topic: str, payload: str) -> bool:
        """Queue one event; True when the queue was full and the oldest was dropped for it."""
        msg = Msg(next(self._seq), rule, topic, payload)
        full = self.backlog() >= self.size and bool(self.pending or self.inflight)
        if full:
            if self.pending:
                self._gone(self.pending.popleft())
            else:  # size <= window: everything is on the wire; forget the oldest
                self._gone(self.inflight.pop(next(iter(self.inflight))))
            self.dropped += 1
        self.pending.append(msg)
        return full

    def sendable(self) -> bool:
        return bool(self.pending) and len(self.inflight) < self.window

    def begin_batch(self) -> list[Msg]:
        """Take the events to hand to paho now (as many as the window allows), oldest first."""
        batch = [self.pending.popleft() for _ in range(min(len(self.pending), self.window - len(self.inflight)))]
        self._publishing = True
        self._in_batch = len(batch)
        return batch

    def end_batch(self, published: Iterable[tuple[Msg, int]], stale: bool) -> None:
        """Record the events paho took, with their mids; ``stale``: the connection changed meanwhile."""
        self._publishing = False
        self._in_batch = 0
        resend = []
        for msg, mid in published:
            if stale:
                resend.append(msg)  # the connection changed under us: send again on the new one
            elif mid in self._early_acks:
                self.sent += 1
                self._gone(msg)
            else:
                self.inflight[mid] = msg
        self._early_acks.clear()
        if resend:
            self.pending = deque(sorted((*resend, *self.pending), key=lambda m: m.seq))

    def ack(self, mid: int) -> bool:
        """A PUBACK came back (paho's network thread); True when it settled one of our events."""
        msg = self.inflight.pop(mid, None)
        if msg is not None:
            self.sent += 1
            self._gone(msg)
            return True
        if self._publishing:
            self._early_acks.add(mid)
        return False

    def requeue_inflight(self) -> None:
        # In-flight events are older than any pending one.
        if self.inflight:
            self.pending.extendleft(sorted(self.inflight.values(), key=lambda m: m.seq, reverse=True))
            self.inflight.clear()
        self._early_acks.clear()

    def take_all(self, clear: bool) -> list[Msg]:
        """Every unacknowledged event, oldest first (call once the sender has stopped)."""
        self.requeue_inflight()
        left = list(self.pending)
        if clear:
            self.pending.clear()
        return left

    def adopt(self, handed: Iterable[Msg], topic: Callable[[str], str]) -> int:
        """Put another outbox's events ahead of ours, re-addressed by ``topic(rule)``; how many were kept."""
        return self.restore([(m.rule, topic(m.rule), m.payload, m.restored) for m in handed])

    def restore(self, events: Iterable[tuple[str, str, str, bool]]) -> int:
        """Put (rule, topic, payload, restored) events ahead of ours, oldest first; how many were kept."""
        events = list(events)
        # Numbered below everything queued, so a resend after a reconnect keeps them ahead.
        lo = min([m.seq for m in (*self.pending, *self.inflight.values())] or [next(self._seq)]) - len(events)
        moved = [Msg(lo + i, rule, t, p, restored) for i, (rule, t, p, restored) in enumerate(events)]
        excess = len(moved) + self.backlog() - self.size
        if excess > 0:
            moved = moved[excess:]
            self.dropped += excess
        self.pending.extendleft(reversed(moved))
        self.restored += sum(m.restored for m in moved)
        return len(moved)
