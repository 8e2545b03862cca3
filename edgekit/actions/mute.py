"""Muted rules: a rule muted for a while drives no GPIO and sends no MQTT event; the event log still
records what was heard.

A mute is an operator's "I know, stop the buzzer" (or a test of the house's wiring without the
alarm panel going off): what it silences is the alerting, not the record. So a muted rule's
events still reach the event log (and the daemon's own log line says "muted"), while GPIO and
MQTT see nothing of them. A mute always ends: at most :data:`MAX_MUTE_SECONDS`, because a smoke
alarm muted and forgotten is a smoke alarm that does not work. Mutes live in the daemon's memory:
a restart (or a crash) unmutes everything.

Whole occurrences are muted or not: an occurrence that started before the mute runs its course
(its end still turns the output off), and one that starts during the mute stays silent to its
end, even if the mute ends first. Used from the daemon's main loop only (not thread-safe).
"""

from __future__ import annotations

import time

from edgekit.detect.events import Event

MAX_MUTE_SECONDS = 3600  # one hour: long enough to air a kitchen, short enough not to be forgotten


class Mutes:
    def __init__(self, clock=time.monotonic, wall=time.time):
        self._clock, self._wall = clock, wall
        self._until: dict[str, float] = {}  # rule -> monotonic end of its mute
        self._wall_until: dict[str, float] = {}  # the same end in wall time, fixed when muted (for display)
        self._held: set[str] = set()  # ids of occurrences started while muted: their ends are held too
        self._open: dict[str, str] = {}  # rule -> id of its occurrence the outputs were told of

    def mute(self, rule: str, seconds: float) -> float:
        """Mute ``rule`` for ``seconds`` (0 < seconds <= MAX_MUTE_SECONDS) from now; the wall time it ends."""
        if not 0 < seconds <= MAX_MUTE_SECONDS:
            raise ValueError(f"a mute lasts more than 0 and at most {MAX_MUTE_SECONDS} s, not {seconds}")
        self._until[rule] = self._clock() + seconds
        self._wall_until[rule] = self._wall() + seconds
        return self._wall_until[rule]

    def unmute(self, rule: str) -> bool:
        self._wall_until.pop(rule, None)
        return self._until.pop(rule, None) is not None

    def expire(self) -> list[str]:
        """Rules whose mute has run out (now unmuted)."""
        now = self._clock()
        done = [r for r, until in self._until.items() if until <= now]
        for r in done:
            del self._until[r], self._wall_until[r]
        return done

    def muted(self, rule: str) -> bool:
        until = self._until.get(rule)
        return until is not None and until > self._clock()

    def active(self) -> dict[str, float]:
        """Muted rules and the wall time each mute ends."""
        now = self._clock()
        return {r: self._wall_until[r] for r, u in self._until.items() if u > now}

    def sounding(self, rule: str) -> bool:
        """Whether the outputs were told ``rule`` started and not yet that it ended."""
        return rule in self._open

    def holds(self, event: Event) -> bool:
        """Whether ``event`` is kept from GPIO and MQTT (True) or goes to every action (False)."""
        if event.kind == "start" and self.muted(event.rule):
            self._held.add(event.id)
            return True
        if event.id in self._held:
            if event.kind == "end":
                self._held.discard(event.id)
            return True
        if event.kind == "start":
            self._open[event.rule] = event.id
        elif event.kind == "end" and self._open.get(event.rule) == event.id:
            del self._open[event.rule]
        return False
