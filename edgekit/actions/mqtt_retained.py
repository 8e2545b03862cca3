"""The MQTT publisher's retained messages: each rule's ON/OFF state, availability, discovery.

State transitions are published in order while connected but not queued while the broker is
away: every connect (and Home Assistant's restart, and a reload that changes the rules) asks
for all of it again, availability, the discovery configs and the current states, so the
retained state on the broker is always the latest.

Not thread-safe by itself: the publisher (:mod:`edgekit.actions.mqtt`) holds its lock around
every call.
"""

from __future__ import annotations

import json

from edgekit.actions.settings import Rule
from edgekit.actions.mqtt_sensors import discovery as sensor_discovery
from edgekit.actions.mqtt_topics import OFF, ON, ONLINE, Topics


class Retained:
    """What the broker should hold for ``rules``, and which of it is still to publish."""

    def __init__(self, topics: Topics, rules: dict[str, Rule]):
        self._topics = topics
        self.rules = rules
        self.state = {name: OFF for name in rules}
        self._out: list[tuple[str, str]] = []  # state transitions to publish, in order
        self.announcing = False  # availability and discovery configs to publish

    def change(self, rule: str, kind: str, connected: bool) -> None:
        """An event of ``rule``: a start turns it ON, an end OFF."""
        if kind in ("start", "end"):
            self.state[rule] = ON if kind == "start" else OFF
            if connected:  # otherwise the next connect publishes the current state
                self._out.append((rule, self.state[rule]))

    def announce(self) -> None:
        """Publish everything again: availability, discovery configs, every rule's state."""
        self.announcing = True
        self._out = list(self.state.items())

    def due(self) -> bool:
        return bool(self.announcing or self._out)

    def take(self) -> list[tuple[str, str]]:
        """(topic, payload) of every retained message due, in order; none is due afterwards."""
        t = self._topics
        out = []
        if self.announcing:
            out.append((t.availability_topic, ONLINE))
            if t.settings.homeassistant_discovery:
                out += [(t.discovery_topic(n), json.dumps(t.discovery_config(r))) for n, r in self.rules.items()]
                out += sensor_discovery(t, self.rules)  # the device's level, last sound, state; test buttons
            self.announcing = False
        out += [(t.state_topic(r), value) for r, value in self._out]
        self._out.clear()
        return out

    def follow(self, rules: dict[str, Rule], connected: bool) -> None:
        """A new rule set: rules that stay keep their state (a sounding alarm stays ON), new ones start OFF."""
        self.rules = rules
        self.state = {name: self.state.get(name, OFF) for name in rules}
        if connected:  # Home Assistant learns of new rules
            self.announce()

    def carry(self, old: Retained) -> None:
        """Take the states of ``old``'s rules that are also ours (a reload with a changed ``[mqtt]``)."""
        for name in self.state:
            if name in old.state:
                self.state[name] = old.state[name]
