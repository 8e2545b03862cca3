"""The daemon's configuration as frozen objects: the contract between config parsing and the parts.

:mod:`edgekit.daemon.config` fills these from TOML and validates every value against the
declaration of its field (:func:`edgekit.schema.setting`: type, default, range and hint, once).
The model and audio settings are the daemon's own; the rules and the actions' settings belong
to the layers that consume them and are re-exported here, so the whole config is one import.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgekit.actions.settings import EventLogSettings, GpioAction, GpioSettings, MqttSettings, Rule
from edgekit.schema import setting

__all__ = ["AudioSettings", "ClipSettings", "Config", "EventLogSettings", "GpioAction", "GpioSettings",
           "ModelSettings", "MqttSettings", "Rule", "WebSettings"]
_SOURCE = '"mic", or the path of an audio file to replay'


@dataclass(frozen=True)
class ModelSettings:
    # A zoo name or the path of a .tflite file (relative to the config file).
    model: str = setting("yamnet", hint='a model name such as "yamnet" or the path of a .tflite file')
    device: str = setting("cpu", hint='a device such as "cpu", "cpu:4", "usb" or "pci"')  # cpu, cpu:N, usb[:N], pci[:N]
    # "cpu": run on the CPU when the Edge TPU is unusable.
    fallback: str | None = setting(None, hint="", kind="choice", choices=("cpu",),
                                   extra='leave it out, or "cpu" to run on the CPU when the Edge TPU fails')
    # Log-mel models: "fixed" (the integer path) or "float".
    frontend: str = setting("fixed", hint="", kind="choice", choices=("fixed", "float"))
    # A class map CSV or labels .txt; default: the model's own.
    labels: str | None = setting(None, hint="the path of a class map CSV or labels .txt", kind="file")


@dataclass(frozen=True)
class AudioSettings:
    source: str = setting("mic", hint=_SOURCE)  # "mic", or an audio file replayed through the same path
    # Input device: part of its name or its index; None: the default device.
    device: str | int | None = setting(None, hint='an input device index such as 2, or part of its name such as '
                                                  '"USB" (see `python -m sounddevice`)', kind="custom")
    rate: int | None = setting(None, hint="a sample rate in Hz between 8000 and 192000, e.g. 48000", kind="int",
                               lo=8000, hi=192000)  # None: the device's default rate
    block_seconds: float = setting(0.05, hint="a number of seconds above 0 and at most 1, e.g. 0.05",
                                   lo=0, hi=1, open_lo=True)  # PortAudio block size
    # A window every hop; a multiple of 0.01 (the front end's frame hop).
    hop_seconds: float = setting(0.48, hint="a number of seconds between 0.01 and 0.96 in steps of 0.01, "
                                            "e.g. 0.48 or 0.1", lo=0, hi=0.96, open_lo=True)
    speed: str = setting("realtime", hint="", kind="choice", choices=("realtime", "max"))  # file sources
    # Volume gate: windows below this level skip inference; None (false in TOML): off.
    min_dbfs: float | None = setting(-70.0, hint="a level in dBFS between -120 and 0, e.g. -70, or false to turn "
                                                 "the gate off", lo=-120, hi=0, false_is_none=True)
    # All-zero input this long gets a warning.
    silence_warning_seconds: float = setting(10.0, hint="a number of seconds, 0 or more, e.g. 10", lo=0)


@dataclass(frozen=True)
class ClipSettings:
    """[clips]: a short recording of each event, kept in the state directory (edgekit.daemon.clips)."""

    enabled: bool = setting(True, hint="")
    pre_seconds: float = setting(2.0, hint="a number of seconds between 0 and 10, e.g. 2", lo=0, hi=10)
    post_seconds: float = setting(2.0, hint="a number of seconds between 0 and 10, e.g. 2", lo=0, hi=10)
    # A long event keeps its first max_seconds (a 10-minute alarm needs no 10-minute clip).
    max_seconds: float = setting(20.0, hint="a number of seconds between 1 and 300, e.g. 20", lo=1, hi=300)
    # Retention: the oldest clips go first once either limit is passed.
    max_megabytes: float = setting(200.0, hint="a size in MB between 1 and 100000, e.g. 200", lo=1, hi=100_000)
    max_days: float = setting(30.0, hint="a number of days between 0.01 and 3650, e.g. 30", lo=0.01, hi=3650)
    # Privacy: a clip in which YAMNet hears people talking is not kept, unless this is true.
    keep_speech: bool = setting(False, hint="")


@dataclass(frozen=True)
class WebSettings:
    """[web]: the status page companion (`edgekit web`); the daemon itself only reads ``live``."""

    listen: str = setting("127.0.0.1:8470", hint='HOST:PORT, e.g. "127.0.0.1:8470" or "0.0.0.0:8470"')
    # Needed to listen beyond loopback: `edgekit web --hash-password` prints it.
    password_hash: str | None = setting(None, hint='the line `edgekit web --hash-password` prints, "scrypt$..."',
                                        secret=True)
    # The daemon sends each window's result to the companion over a Unix datagram socket.
    live: bool = setting(True, hint="")


@dataclass(frozen=True)
class Config:
    model: ModelSettings = field(default_factory=ModelSettings)
    audio: AudioSettings = field(default_factory=AudioSettings)
    rules: tuple[Rule, ...] = ()
    gpio: GpioSettings = field(default_factory=GpioSettings)
    mqtt: MqttSettings | None = None
    log: EventLogSettings | None = None
    clips: ClipSettings = field(default_factory=ClipSettings)
    web: WebSettings = field(default_factory=WebSettings)
    source_path: str | None = None  # the TOML file this came from
    sounds: tuple[str, ...] = ()  # custom sounds the rules name (edgekit sounds learn), in rule order
