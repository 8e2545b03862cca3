"""MQTT topics and Home Assistant discovery payloads for the publisher (see :mod:`edgekit.actions.mqtt`)."""

from __future__ import annotations

import re

from edgekit import __version__
from edgekit.errors import MqttError
from edgekit.actions.settings import MqttSettings, Rule

ONLINE, OFFLINE = "online", "offline"
ON, OFF = "ON", "OFF"


def _slug(text: str) -> str:
    # Home Assistant allows only these in node and object ids.
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_") or "x"


def check_level(what: str, value: str, slash_ok: bool = False) -> str:
    bad = "+#\0" if slash_ok else "+#/\0"
    if not value or any(c in value for c in bad) or value.startswith("/") or value.endswith("/"):
        raise MqttError(f"{what} {value!r} cannot be used in an MQTT topic (empty, or holds one of {bad!r})")
    return value


def mqtt_rules(rules) -> dict[str, Rule]:
    """The rules to publish (``mqtt = true``), by name; a name unusable in a topic raises MqttError."""
    chosen = {r.name: r for r in rules if r.mqtt}
    for name in chosen:
        check_level("rule name", name)
    return chosen


def device_class(rule: Rule) -> str:
    text = " ".join((rule.name, *rule.labels)).lower()
    return "smoke" if "smoke" in text or "fire alarm" in text else "sound"


class Topics:
    """Topic names and discovery configs; needs ``settings`` (MqttSettings) and ``base``."""

    settings: MqttSettings
    base: str
    availability_topic: str


    def event_topic(self, rule: str) -> str:
        return f"{self.base}/event/{rule}"

    def state_topic(self, rule: str) -> str:
        return f"{self.base}/state/{rule}"

    # The device's own topics (edgekit.actions.mqtt_sensors): its state, level, last detection, commands.
    @property
    def status_topic(self) -> str:
        return f"{self.base}/status"

    @property
    def level_topic(self) -> str:
        return f"{self.base}/level"

    @property
    def last_topic(self) -> str:
        return f"{self.base}/last"

    @property
    def command_topic(self) -> str:
        return f"{self.base}/command"

    @property
    def ack_topic(self) -> str:
        return f"{self.base}/ack"

    def discovery_topic(self, rule: str, component: str = "binary_sensor") -> str:
        return f"{self.settings.discovery_prefix}/{component}/{_slug(self.settings.device_id)}/{_slug(rule)}/config"

    def entity(self, object_id: str, name: str) -> dict:
        """What every discovery config of this device shares: ids, availability, the device block."""
        device = _slug(self.settings.device_id)
        return {
            "name": name,
            "unique_id": f"edgekit_{device}_{_slug(object_id)}",
            "availability_topic": self.availability_topic,
            "payload_available": ONLINE,
            "payload_not_available": OFFLINE,
            "qos": self.settings.qos,
            "device": {
                "identifiers": [f"edgekit_{device}"],
                "name": self.settings.device_id,
                "manufacturer": "edgekit",
                "model": "Sound-event detector",
                "sw_version": __version__,
            },
            "origin": {"name": "edgekit", "sw_version": __version__},
        }

    def discovery_config(self, rule: Rule) -> dict:
        device = _slug(self.settings.device_id)
        return {
            "name": rule.name,
            "unique_id": f"edgekit_{device}_{_slug(rule.name)}",
            "device_class": device_class(rule),
            "state_topic": self.state_topic(rule.name),
            "payload_on": ON,
            "payload_off": OFF,
            "availability_topic": self.availability_topic,
            "payload_available": ONLINE,
            "payload_not_available": OFFLINE,
            "json_attributes_topic": self.event_topic(rule.name),
            "qos": self.settings.qos,
            "device": {
                "identifiers": [f"edgekit_{device}"],
                "name": self.settings.device_id,
                "manufacturer": "edgekit",
                "model": "Sound-event detector",
                "sw_version": __version__,
            },
            "origin": {"name": "edgekit", "sw_version": __version__},
        }
