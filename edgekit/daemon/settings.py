"""The daemon's configuration as frozen objects: the contract between config parsing and the parts.

:mod:`edgekit.daemon.config` fills these from TOML and validates every value; the detector, the
capture loop and the actions only ever see these objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ModelSettings:
    model: str = "yamnet"  # zoo name or .tflite path
    device: str = "cpu"  # cpu, cpu:N, usb, usb:N, pci, pci:N
    fallback: str | None = None  # "cpu": use the CPU when the Edge TPU is unusable
    frontend: str = "fixed"  # log-mel models: "fixed" (integer path) or "float"
    labels: str | None = None  # class map / labels file; default: the model's own


@dataclass(frozen=True)
class AudioSettings:
    source: str = "mic"  # "mic", or an audio file replayed through the same path
    device: str | int | None = None  # input device: name substring or index; None = default
    rate: int | None = None  # capture rate; None = the device's default rate
    block_seconds: float = 0.05  # PortAudio block size
    hop_seconds: float = 0.48  # a patch every hop (multiple of 0.01)
    speed: str = "realtime"  # file sources: "realtime" or "max"
    min_dbfs: float | None = -70.0  # volume gate: skip inference below this level; None = off
    silence_warning_seconds: float = 10.0  # all-zero input this long gets a warning


@dataclass(frozen=True)
class GpioAction:
    pin: int | str  # BCM number or gpiozero pin name ("GPIO17", "BOARD11")
    active_high: bool = True
    mode: str = "level"  # "level": active from start to end; "pulse": active for pulse_seconds
    pulse_seconds: float = 1.0


@dataclass(frozen=True)
class Rule:
    name: str
    labels: tuple[str, ...]  # resolved AudioSet display names (groups expanded)
    enter: float = 0.5  # smoothed score that starts an event
    release: float = 0.3  # smoothed score below which it ends (hysteresis: release <= enter)
    smoothing: str = "k_of_n"  # "k_of_n" or "mean" (moving average over n windows) or "none"
    k: int = 1
    n: int = 1
    min_duration: float = 0.0  # seconds above enter before a start is emitted
    # Seconds the score must stay below release before the event ends: a beeping alarm's gaps
    # do not split it, so one alarm is one event (and no new start follows within hold).
    hold: float = 0.0
    gpio: GpioAction | None = None
    mqtt: bool = True  # publish this rule's events when [mqtt] is configured


@dataclass(frozen=True)
class GpioSettings:
    pin_factory: str | None = None  # gpiozero factory name: "lgpio", "rpigpio", "mock"...; None = env/auto


@dataclass(frozen=True)
class MqttSettings:
    host: str
    port: int = 1883
    client_id: str | None = None
    device_id: str = "edgekit"  # used in topics: <topic_prefix>/<device_id>/...
    topic_prefix: str = "edgekit"
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_certs: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    qos: int = 1
    keepalive: int = 30
    queue_size: int = 1000  # events kept while the broker is away
    homeassistant_discovery: bool = False
    discovery_prefix: str = "homeassistant"


@dataclass(frozen=True)
class EventLogSettings:
    path: str  # JSON lines, one per event
    max_bytes: int = 10_000_000  # rotate beyond this size
    backups: int = 3  # rotated files kept


@dataclass(frozen=True)
class Config:
    model: ModelSettings = field(default_factory=ModelSettings)
    audio: AudioSettings = field(default_factory=AudioSettings)
    rules: tuple[Rule, ...] = ()
    gpio: GpioSettings = field(default_factory=GpioSettings)
    mqtt: MqttSettings | None = None
    log: EventLogSettings | None = None
    source_path: str | None = None  # the TOML file this came from
