"""What each action needs from the config, as frozen objects with each field declared once.

:mod:`edgekit.daemon.config` fills these from TOML, checking every value against the field's
declaration (:mod:`edgekit.schema`); the actions only ever see these objects. They live with
the actions, not the daemon, because the lower layer owns the contract it consumes.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache

from edgekit.actions.device_id import host_device_id
from edgekit.detect import rules as detect_rules
from edgekit.schema import setting

_TOPIC = 'a topic level without "/", "+", "#" or spaces, e.g. "{}"'
_PEM = "the path of a PEM file"


@lru_cache(maxsize=1)
def pin_factory_names() -> tuple[str, ...]:
    """gpiozero's pin factories, as gpiozero itself registers them (its entry points)."""
    from importlib.metadata import entry_points

    return tuple(sorted({ep.name.lower() for ep in entry_points(group="gpiozero_pin_factories")}))


@dataclass(frozen=True)
class GpioAction:
    # BCM number or gpiozero pin name ("GPIO17", "BOARD11"); checked in edgekit.daemon.config.pins.
    pin: int | str = setting(hint='a BCM GPIO number such as 17, or a name such as "GPIO17" or "BOARD11"',
                             kind="custom")
    active_high: bool = setting(True, hint="")
    # "level": active from start to end; "pulse": active for pulse_seconds on each start.
    mode: str = setting("level", hint="", kind="choice", choices=("level", "pulse"))
    pulse_seconds: float = setting(1.0, hint="a number of seconds above 0 and at most 60, e.g. 1.0",
                                   lo=0, hi=60, open_lo=True)


@dataclass(frozen=True)
class Rule(detect_rules.Rule):
    """A detection rule plus what the daemon does when it fires."""

    mqtt: bool = setting(True, hint="")  # publish this rule's events when [mqtt] is configured
    gpio: GpioAction | None = setting(None, hint="a table: write [rules.gpio] under the rule, with pin = 17",
                                      kind="custom")

    @property
    def detection(self) -> detect_rules.Rule:
        """The rule without its wiring: all the detector needs."""
        return detect_rules.Rule(**{f.name: getattr(self, f.name) for f in fields(detect_rules.Rule)})


@dataclass(frozen=True)
class GpioSettings:
    # A gpiozero factory name: "lgpio", "rpigpio", "mock"...; None: $GPIOZERO_PIN_FACTORY, else the first that works.
    pin_factory: str | None = setting(None, hint="", kind="choice", choices=pin_factory_names,
                                      extra="leave it out to let gpiozero choose")


@dataclass(frozen=True)
class MqttSettings:
    host: str = setting(hint='the broker\'s host name or address, e.g. "homeassistant.local"')
    tls: bool = setting(False, hint="")
    # 8883 when tls is on and no port is given (edgekit.daemon.config.sections).
    port: int = setting(1883, hint="a TCP port between 1 and 65535, e.g. 1883 (8883 with TLS)", lo=1, hi=65535)
    client_id: str | None = setting(None, hint="a string unique among the broker's clients")
    # <topic_prefix>/<device_id>/...; unique per device by default: the host name (edgekit.actions.device_id).
    device_id: str = setting(host_device_id(), hint=_TOPIC.format("kitchen_pi"), kind="topic")
    topic_prefix: str = setting("edgekit", hint='a topic prefix without "+" or "#", e.g. "edgekit" or "home/edgekit"')
    username: str | None = setting(None, hint="the broker user name")
    password: str | None = setting(None, hint="the broker password", secret=True)
    ca_certs: str | None = setting(None, hint=_PEM, kind="file")
    certfile: str | None = setting(None, hint=_PEM, kind="file")
    keyfile: str | None = setting(None, hint=_PEM, kind="file")
    qos: int = setting(1, hint="0, 1 or 2, e.g. 1", lo=0, hi=2)
    keepalive: int = setting(30, hint="a number of seconds between 5 and 3600, e.g. 30", lo=5, hi=3600)
    # Events kept while the broker is away.
    queue_size: int = setting(1000, hint="a number of events between 1 and 1000000, e.g. 1000", lo=1, hi=1_000_000)
    # At stop: how long to wait for the broker to take what is queued (it may be restarting) before
    # keeping the rest on disk for the next start; under the unit's TimeoutStopSec=20.
    close_seconds: float = setting(5.0, hint="a number of seconds between 0 and 15, e.g. 5", lo=0, hi=15)
    homeassistant_discovery: bool = setting(False, hint="")
    discovery_prefix: str = setting("homeassistant", hint=_TOPIC.format("homeassistant"), kind="topic")


@dataclass(frozen=True)
class EventLogSettings:
    # JSON lines, one per event; relative to the config file. Its folder may be made later (StateDirectory=).
    path: str = setting(hint='the path of the JSON-lines event log, e.g. "/var/lib/edgekit/events.jsonl"',
                        kind="path")
    max_bytes: int = setting(10_000_000, hint="a size in bytes of at least 10000, e.g. 10000000 (10 MB)",
                             lo=10_000)  # rotate beyond this size
    backups: int = setting(3, hint="a number of rotated files between 0 and 100, e.g. 3", lo=0, hi=100)
