"""The daemon's TOML config -> a validated, frozen :class:`~edgekit.daemon.settings.Config`.

Everything is checked before anything starts, and every problem is collected, so one run of
``edgekit config check`` lists them all. Each problem names its key (``rules[0].enter``) and
says how to fix it. Relative paths are taken relative to the config file, not to whatever
directory the daemon happens to start in.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any, Sequence

from edgekit.errors import ConfigError, DeviceError, EdgekitError, ModelNotFoundError
from edgekit.params import FeatureParams
from edgekit.models.runtime import parse_device
from edgekit.daemon.settings import (AudioSettings, Config, EventLogSettings, GpioAction, GpioSettings, ModelSettings,
                       MqttSettings, Rule)

SECTIONS = ("model", "audio", "groups", "rules", "gpio", "mqtt", "log")
PIN_FACTORIES = ("lgpio", "rpigpio", "pigpio", "native", "mock")
SMOOTHING = ("k_of_n", "mean", "none")
# 40-pin header position -> BCM number, so "BOARD11" and 17 are seen as the same pin.
_BOARD_TO_BCM = {3: 2, 5: 3, 7: 4, 8: 14, 10: 15, 11: 17, 12: 18, 13: 27, 15: 22, 16: 23, 18: 24, 19: 10,
                 21: 9, 22: 25, 23: 11, 24: 8, 26: 7, 27: 0, 28: 1, 29: 5, 31: 6, 32: 12, 33: 13, 35: 19,
                 36: 16, 37: 26, 38: 20, 40: 21}
_SECTION_TYPES = {"model": ModelSettings, "audio": AudioSettings, "gpio": GpioSettings, "mqtt": MqttSettings,
                  "log": EventLogSettings}
_SLUG = re.compile(r"^[A-Za-z0-9_-]+$")
_BAD = object()  # a value that was reported; the dataclass default stands in so parsing goes on
_MISSING = object()


class InvalidConfig(ConfigError):
    """Every problem found in one config, one per line; ``problems`` holds them as a tuple."""

    def __init__(self, source: str, problems: Sequence[str]):
        self.source, self.problems = source, tuple(problems)
        if len(problems) == 1:
            super().__init__(f"{source}: {problems[0]}")
        else:
            super().__init__(f"{source}: {len(problems)} problems:\n" + "\n".join(f"  {p}" for p in problems))


def load_config(path: str | os.PathLike, labels: Sequence[str] | None = None) -> Config:
    """Read and validate a config file; ``labels``: the model's names, to check rule labels."""
    return parse_config(read_toml(path), labels, source=str(path), base_dir=Path(path).absolute().parent)


def read_toml(path: str | os.PathLike) -> dict:
    p = Path(path)
    try:
        text = p.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file; start from systemd/edgekit.toml") from None
    except IsADirectoryError:
        raise ConfigError(f"{p}: is a directory; give the path of a .toml file") from None
    except PermissionError:
        raise ConfigError(f"{p}: permission denied; check the file's owner and mode") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the config file ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start}); save the file as UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message carries "(at line L, column C)"
        raise ConfigError(f"{p}: TOML syntax error: {exc}") from None


def parse_config(data: dict, labels: Sequence[str] | None = None, source: str = "config",
                 base_dir: str | os.PathLike | None = None) -> Config:
    problems: list[str] = []
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    top = _Table(data, "", problems, SECTIONS)
    model = _model(top.table("model"), base)
    audio = _audio(top.table("audio"), base)
    groups = _groups(top.table("groups"))
    names = _Names(labels, groups)
    for gname, members in groups.items():
        for i, member in enumerate(members):
            if names.label(member) is None:
                problems.append(f"groups.{gname}[{i}]: {names.unknown(member, groups=False)}")
    rules = _rules(top.get("rules"), problems, names)
    gpio = _gpio(top.table("gpio"))
    mqtt = _mqtt(top.table("mqtt", optional=True), base)
    log = _log(top.table("log", optional=True), base)
    top.finish()
    if problems:
        raise InvalidConfig(source, problems)
    return Config(model=model, audio=audio, rules=tuple(rules), gpio=gpio, mqtt=mqtt, log=log,
                  source_path=source)


def model_labels(data: dict, base_dir: str | os.PathLike | None = None) -> tuple[tuple[str, ...] | None, str]:
    """The labels of the model a raw config names, and where they came from (or why there are none).

    For ``edgekit config check``, which may run where the model is not installed yet: a class
    map where the model would be is good enough, and no labels at all only skips that check.
    """
    from edgekit.models.tflite import read_graph_file
    from edgekit.models.labels import embedded_labels, find_sidecar_labels, load_labels
    from edgekit.models.paths import model_dirs, resolve_model

    base = Path(base_dir) if base_dir is not None else Path.cwd()
    problems: list[str] = []
    settings = _model(_Table(data.get("model"), "model", problems, _names(ModelSettings)), base)
    if any(p.startswith(("model.model", "model.labels")) for p in problems):
        return None, "labels not checked: [model] names no usable model or labels file"
    try:
        if settings.labels:
            return load_labels(settings.labels), f"labels from {settings.labels}"
        try:
            path = resolve_model(settings.model)
        except ModelNotFoundError as exc:
            spec = Path(settings.model)
            dirs = [spec.parent] if _looks_like_path(settings.model) else model_dirs()
            for d in dirs:
                sidecar = find_sidecar_labels(d / (spec.stem + ".tflite"))
                if sidecar:
                    return load_labels(sidecar), f"labels from {sidecar}"
            return None, f"labels not checked: {exc}"
        graph, blob = read_graph_file(path)
        names = embedded_labels(graph, blob)
        if names:
            return names, f"labels from {path}"
        sidecar = find_sidecar_labels(path)
        if sidecar:
            return load_labels(sidecar), f"labels from {sidecar}"
        return None, f"labels not checked: {path} has no labels and no class map beside it"
    except EdgekitError as exc:
        return None, f"labels not checked: {exc}"


# --- sections ---------------------------------------------------------------------------------


def _model(t: "_Table", base: Path) -> ModelSettings:
    model = t.string("model", 'a model name such as "yamnet" or the path of a .tflite file')
    if model is not _BAD and model is not _MISSING and _looks_like_path(model):
        model = t.existing_file("model", model, base, "the path of a .tflite file, or a name such as \"yamnet\"")
    device = t.string("device", 'a device such as "cpu", "cpu:4", "usb" or "pci"')
    if isinstance(device, str):
        try:
            device = str(parse_device(device))
        except DeviceError as exc:
            device = t.bad("device", str(exc))
    fallback = t.choice("fallback", ("cpu",), 'leave it out, or "cpu" to run on the CPU when the Edge TPU fails')
    frontend = t.choice("frontend", ("fixed", "float"))
    labels = t.string("labels", "the path of a class map CSV or labels .txt")
    if isinstance(labels, str):
        labels = t.existing_file("labels", labels, base, "the path of a class map CSV or labels .txt")
    t.finish()
    return _build(ModelSettings, model=model, device=device, fallback=fallback, frontend=frontend, labels=labels)


def _audio(t: "_Table", base: Path) -> AudioSettings:
    source = t.string("source", '"mic", or the path of an audio file to replay')
    if isinstance(source, str) and source != "mic":
        source = t.existing_file("source", source, base, '"mic", or the path of an audio file to replay')
    device = t.get("device")
    if isinstance(device, str) and device.strip().isdigit():
        device = int(device)  # "2" would otherwise be taken as part of a device name
    if device is not _MISSING and not ((isinstance(device, str) and device.strip())
                                       or (isinstance(device, int) and not isinstance(device, bool) and device >= 0)):
        device = t.bad("device", f'must be an input device index such as 2, or part of its name such as "USB" '
                                 f"(see `python -m sounddevice`), got {_show(device)}")
    rate = t.number("rate", "a sample rate in Hz between 8000 and 192000, e.g. 48000", 8000, 192000, integer=True)
    block = t.number("block_seconds", "a number of seconds above 0 and at most 1, e.g. 0.05", 0, 1, open_lo=True)
    hop = t.number("hop_seconds", "a number of seconds between 0.01 and 0.96 in steps of 0.01, e.g. 0.48 or 0.1",
                   0, 0.96, open_lo=True)
    if isinstance(hop, float):
        try:
            hop = FeatureParams().with_hop(hop).patch_hop_seconds
        except ConfigError as exc:
            hop = t.bad("hop_seconds", str(exc))
    speed = t.choice("speed", ("realtime", "max"))
    min_dbfs = t.get("min_dbfs")
    if min_dbfs is False:
        min_dbfs = None  # TOML has no null: false turns the volume gate off
    elif min_dbfs is not _MISSING:
        min_dbfs = t.number("min_dbfs", "a level in dBFS between -120 and 0, e.g. -70, or false to turn the gate off",
                            -120, 0)
    silence = t.number("silence_warning_seconds", "a number of seconds, 0 or more, e.g. 10", 0, None)
    t.finish()
    return _build(AudioSettings, source=source, device=device, rate=rate, block_seconds=block, hop_seconds=hop,
                  speed=speed, min_dbfs=min_dbfs, silence_warning_seconds=silence)


def _groups(t: "_Table") -> dict[str, tuple[str, ...]]:
    groups = {}
    for name in list(t.data):
        value = t.get(name)
        if not _strings(value) or not value:
            t.bad(name, f'must be a list of label names, e.g. {name} = ["Smoke detector, smoke alarm", "Fire alarm"]')
            continue
        groups[name] = tuple(value)
    return groups


def _rules(value: Any, problems: list[str], names: "_Names") -> list[Rule]:
    if value is _MISSING or value == []:
        problems.append('rules: no rules; add at least one [[rules]] table with a name and labels, e.g. '
                        'name = "smoke" and labels = ["Smoke detector, smoke alarm"]')
        return []
    if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
        problems.append("rules: must be an array of tables: start each rule with [[rules]] (two brackets)")
        return []
    rules, seen, pins = [], {}, {}
    for i, table in enumerate(value):
        t = _Table(table, f"rules[{i}]", problems, _names(Rule))
        rule = _rule(t, names)
        if rule.name:
            if rule.name.casefold() in seen:
                t.bad("name", f"the name is already taken by {seen[rule.name.casefold()]} (names are compared "
                              "without regard to case); give each rule its own name")
            seen.setdefault(rule.name.casefold(), f'rules[{i}] ("{rule.name}")')
        if rule.gpio is not None and (bcm := _bcm(rule.gpio.pin)) is not None:
            if bcm in pins:
                t.bad("gpio.pin", f"GPIO{bcm} is already driven by {pins[bcm]}; give each rule its own pin")
            pins.setdefault(bcm, f'rules[{i}] ("{rule.name}")' if rule.name else f"rules[{i}]")
        rules.append(rule)
    return rules


def _rule(t: "_Table", names: "_Names") -> Rule:
    name = t.string("name", 'a short name of letters, digits, "_" or "-", e.g. "smoke_alarm"', required=True)
    if isinstance(name, str):
        t.note = f' (rule "{name}")'
        if not _SLUG.match(name):
            name = t.bad("name", f'must be letters, digits, "_" or "-" (it is used in MQTT topics), '
                                 f'e.g. "{_slugify(name)}"')
    labels = _rule_labels(t, names)
    score = "a number between 0 and 1, e.g. {}"
    enter = t.number("enter", score.format(0.5), 0, 1)
    release = t.number("release", score.format(0.3), 0, 1)
    e, r = _or_default(enter, Rule.enter), _or_default(release, Rule.release)
    if e is not _BAD and r is not _BAD and r > e:
        t.bad("release", f"must not be above enter ({e:g}): an event starts at enter and ends below release, "
                         f"e.g. release = {round(e * 0.6, 2):g}")
    smoothing = t.choice("smoothing", SMOOTHING)
    k = t.number("k", "a whole number of windows, 1 or more, e.g. 2", 1, None, integer=True)
    n = t.number("n", "a whole number of windows between 1 and 100, e.g. 3", 1, 100, integer=True)
    mode = smoothing if isinstance(smoothing, str) else "k_of_n"
    if "k" in t.data and mode != "k_of_n":
        k = t.bad("k", f'only applies to smoothing = "k_of_n" (this rule has "{mode}"); remove it')
    if "n" in t.data and mode == "none":
        n = t.bad("n", 'has no effect with smoothing = "none"; remove it, or use "mean" or "k_of_n"')
    kk, nn = _or_default(k, Rule.k), _or_default(n, Rule.n)
    if kk is not _BAD and nn is not _BAD and kk > nn:
        t.bad("k", f"must not exceed n ({nn}{', the default' if n is _MISSING else ''}): an event starts when k of "
                   f"the last n windows reach enter, e.g. k = {kk} and n = {kk + 1}")
    min_duration = t.number("min_duration", "a number of seconds between 0 and 3600, e.g. 1.0", 0, 3600)
    hold = t.number("hold", "a number of seconds between 0 and 3600, e.g. 5.0", 0, 3600)
    mqtt = t.boolean("mqtt")
    gpio = None
    if (g := t.get("gpio")) is not _MISSING:
        if isinstance(g, dict):
            sub = _Table(g, f"{t.where}.gpio", t.problems, _names(GpioAction))
            sub.note = t.note
            gpio = _gpio_action(sub)
        else:
            t.bad("gpio", 'must be a table: write [rules.gpio] under the rule, with pin = 17')
    t.finish()
    return _build(Rule, name=name if isinstance(name, str) else "", labels=labels, enter=enter, release=release,
                  smoothing=smoothing, k=k, n=n, min_duration=min_duration, hold=hold, gpio=gpio, mqtt=mqtt)


def _rule_labels(t: "_Table", names: "_Names") -> tuple[str, ...]:
    raw = t.get("labels")
    if raw is _MISSING:
        t.bad("labels", 'is required: a list of label or group names, e.g. labels = ["alarm"]')
        return ()
    if isinstance(raw, str):
        raw = [raw]  # one name is a list of one
    if not _strings(raw) or not raw:
        t.bad("labels", f'must be a list of label or group names, e.g. labels = ["alarm"], got {_show(raw)}')
        return ()
    resolved: list[str] = []
    for j, entry in enumerate(raw):
        found = names.resolve(entry)
        if found is None:
            t.bad(f"labels[{j}]", names.unknown(entry, groups=True))
        else:
            resolved.extend(x for x in found if x not in resolved)
    return tuple(resolved)


def _gpio_action(t: "_Table") -> GpioAction | None:
    pin = t.get("pin")
    if pin is _MISSING:
        t.bad("pin", "is required: a BCM GPIO number such as 17, or a name such as \"GPIO17\" or \"BOARD11\"")
        pin = _BAD
    elif isinstance(pin, str) and pin.strip().isdigit():
        pin = int(pin)
    if pin is not _BAD and (problem := _pin_problem(pin)):
        pin = t.bad("pin", problem)
    active_high = t.boolean("active_high")
    mode = t.choice("mode", ("level", "pulse"))
    pulse = t.number("pulse_seconds", "a number of seconds above 0 and at most 60, e.g. 1.0", 0, 60, open_lo=True)
    if "pulse_seconds" in t.data and (mode is _MISSING or mode == "level"):
        t.bad("pulse_seconds", 'only applies to mode = "pulse"; add mode = "pulse" or remove it')
    t.finish()
    if pin is _BAD:
        return None
    return _build(GpioAction, pin=pin, active_high=active_high, mode=mode, pulse_seconds=pulse)


def _gpio(t: "_Table") -> GpioSettings:
    factory = t.choice("pin_factory", PIN_FACTORIES, "leave it out to let gpiozero choose")
    t.finish()
    return _build(GpioSettings, pin_factory=factory)


def _mqtt(t: "_Table | None", base: Path) -> MqttSettings | None:
    if t is None:
        return None
    host = t.string("host", 'the broker\'s host name or address, e.g. "homeassistant.local"', required=True)
    tls = t.boolean("tls")
    port = t.number("port", "a TCP port between 1 and 65535, e.g. 1883 (8883 with TLS)", 1, 65535, integer=True)
    if port is _MISSING and tls is True:
        port = 8883  # the broker's TLS port unless told otherwise, as mosquitto and HA expect
    topic = 'a topic level without "/", "+", "#" or spaces, e.g. "{}"'
    client_id = t.string("client_id", "a string unique among the broker's clients")
    device_id = t.topic("device_id", topic.format("kitchen_pi"))
    prefix = t.string("topic_prefix", 'a topic prefix without "+" or "#", e.g. "edgekit" or "home/edgekit"')
    if isinstance(prefix, str) and (not prefix.strip("/") or any(c in prefix for c in "+# ")
                                    or prefix != prefix.strip("/")):
        prefix = t.bad("topic_prefix", f'must be a topic prefix without "+", "#", spaces or a leading or trailing '
                                       f'"/", e.g. "edgekit", got {_show(prefix)}')
    username = t.string("username", "the broker user name")
    password = t.string("password", "the broker password")
    if password is not _MISSING and username is _MISSING:
        t.bad("password", "is set but username is not; add username, or remove password")
    files = {}
    for key in ("ca_certs", "certfile", "keyfile"):
        value = t.string(key, "the path of a PEM file")
        if isinstance(value, str):
            value = t.existing_file(key, value, base, "the path of a PEM file")
            if tls is not True:
                t.bad(key, "is set but tls is not; add tls = true, or remove it")
        files[key] = value
    if files["keyfile"] is not _MISSING and files["certfile"] is _MISSING:
        t.bad("keyfile", "is set but certfile is not; a client key needs its certificate (certfile)")
    qos = t.number("qos", "0, 1 or 2, e.g. 1", 0, 2, integer=True)
    keepalive = t.number("keepalive", "a number of seconds between 5 and 3600, e.g. 30", 5, 3600, integer=True)
    queue = t.number("queue_size", "a number of events between 1 and 1000000, e.g. 1000", 1, 1_000_000, integer=True)
    discovery = t.boolean("homeassistant_discovery")
    dprefix = t.topic("discovery_prefix", topic.format("homeassistant"))
    t.finish()
    return _build(MqttSettings, host=host if isinstance(host, str) else "", port=port, client_id=client_id,
                  device_id=device_id, topic_prefix=prefix, username=username, password=password, tls=tls,
                  qos=qos, keepalive=keepalive, queue_size=queue, homeassistant_discovery=discovery,
                  discovery_prefix=dprefix, **files)


def _log(t: "_Table | None", base: Path) -> EventLogSettings | None:
    if t is None:
        return None
    path = t.string("path", 'the path of the JSON-lines event log, e.g. "/var/lib/edgekit/events.jsonl"',
                    required=True)
    if isinstance(path, str):
        path = str(base / Path(path).expanduser())  # its directory may be made later (StateDirectory=)
    max_bytes = t.number("max_bytes", "a size in bytes of at least 10000, e.g. 10000000 (10 MB)", 10_000, None,
                         integer=True)
    backups = t.number("backups", "a number of rotated files between 0 and 100, e.g. 3", 0, 100, integer=True)
    t.finish()
    return _build(EventLogSettings, path=path if isinstance(path, str) else "", max_bytes=max_bytes, backups=backups)


# --- label names ------------------------------------------------------------------------------


class _Names:
    """Rule and group entries -> model display names: groups by exact name, labels case-folded."""

    def __init__(self, labels: Sequence[str] | None, groups: dict[str, tuple[str, ...]]):
        self.labels = tuple(labels) if labels is not None else None
        self.groups = groups
        self.folded = {}
        for name in self.labels or ():
            self.folded.setdefault(name.casefold(), name)

    def label(self, name: str) -> str | None:
        if self.labels is None:
            return name  # nothing to check against: taken as written
        return self.folded.get(name.casefold())

    def resolve(self, entry: str) -> tuple[str, ...] | None:
        if entry in self.groups:
            members = [self.label(m) for m in self.groups[entry]]
            return tuple(m for m in members if m is not None)  # bad members are reported on the group
        found = self.label(entry)
        return (found,) if found is not None else None

    def unknown(self, name: str, groups: bool) -> str:
        candidates = list(self.labels or ()) + (list(self.groups) if groups else [])
        close = suggest_labels(name, candidates)
        what = "label or group" if groups else "label"
        hint = ("did you mean " + " or ".join(f'"{c}"' for c in close) + "?") if close else \
            "use the display names of the model's class map (yamnet_class_map.csv)" + \
            (" or a group from [groups]" if groups else "")
        return f'unknown {what} "{name}"; {hint}'


def suggest_labels(name: str, labels: Sequence[str], n: int = 3) -> list[str]:
    """The closest real names, case-insensitive; each part of "Smoke detector, smoke alarm" counts."""
    aliases: dict[str, str] = {}
    for label in labels:
        aliases.setdefault(label.casefold(), label)
        for part in label.split(","):
            aliases.setdefault(part.strip().casefold(), label)
    key = name.strip().casefold()
    out: list[str] = []
    for hit in difflib.get_close_matches(key, list(aliases), n=n * 3, cutoff=0.7):
        if aliases[hit] not in out:
            out.append(aliases[hit])
    if not out and key:
        out = [label for label in labels if key in label.casefold()]
    return out[:n]


# --- reading values ---------------------------------------------------------------------------


class _Table:
    """Typed reads of one TOML table. A bad value is reported (key: what to write) and ``_BAD``
    returned; a missing one gives ``_MISSING``, which :func:`_build` turns into the default."""

    def __init__(self, data: Any, where: str, problems: list[str], known: Sequence[str], free: bool = False):
        self.data = data if isinstance(data, dict) else {}
        self.where, self.problems, self.known, self.free = where, problems, tuple(known), free
        self.seen: set[str] = set()
        self.note = ""  # e.g. ' (rule "smoke")': "rules[3]" alone is hard to find in a long file

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def bad(self, name: str, message: str):
        self.problems.append(f"{self.key(name)}{self.note}: {message}")
        return _BAD

    def get(self, name: str):
        self.seen.add(name)
        return self.data.get(name, _MISSING)

    def table(self, name: str, optional: bool = False) -> "_Table | None":
        value = self.get(name)
        known = _names(_SECTION_TYPES[name]) if name in _SECTION_TYPES else ()
        if value is _MISSING and optional:
            return None
        if value is not _MISSING and not isinstance(value, dict):
            self.bad(name, f"must be a table: write [{name}] on a line of its own, then its keys")
            value = {}
        return _Table(value, name, self.problems, known, free=(name == "groups"))

    def finish(self) -> None:
        """Unknown keys are errors: a typo would otherwise silently keep the default."""
        if self.free:
            return  # [groups]: every key is a group name
        for name in self.data:
            if name in self.seen:
                continue
            if self.where:
                close = _suggest_key(name, self.known)
                hint = f"did you mean {self.key(close)}?" if close else "known keys: " + ", ".join(self.known)
                self.problems.append(f"unknown key {self.key(name)}{self.note}; {hint}")
                continue
            # At the top a key may be one that belongs under a section header.
            close = _suggest_key(name, self.known)
            owner = next((f"{s}.{name}" for s, cls in _SECTION_TYPES.items() if name in _names(cls)), None)
            hint = (f"did you mean {owner}? put it under [{owner.split('.')[0]}]" if owner else
                    f"did you mean [{close}]?" if close else
                    "sections are " + ", ".join(f"[{s}]" for s in self.known))
            self.problems.append(f"unknown section [{name}]; {hint}" if isinstance(self.data[name], dict)
                                 else f"unknown key {name}; {hint}")

    def string(self, name: str, hint: str, required: bool = False):
        value = self.get(name)
        if value is _MISSING:
            return self.bad(name, f"is required: {hint}") if required else _MISSING
        if not isinstance(value, str) or not value.strip():
            return self.bad(name, f"must be {hint}, got {_show(value)}")
        return value

    def topic(self, name: str, hint: str):
        value = self.string(name, hint)
        if isinstance(value, str) and any(c in value for c in "/+# "):
            return self.bad(name, f"must be {hint}, got {_show(value)}")
        return value

    def choice(self, name: str, choices: Sequence[str], extra: str = ""):
        value = self.get(name)
        if value is _MISSING:
            return _MISSING
        if value not in choices:
            options = " or ".join(f'"{c}"' for c in choices)
            return self.bad(name, f"must be {options}{'; ' + extra if extra else ''}, got {_show(value)}")
        return value

    def boolean(self, name: str):
        value = self.get(name)
        if value is _MISSING or isinstance(value, bool):
            return value
        return self.bad(name, f"must be true or false (no quotes), got {_show(value)}")

    def number(self, name: str, hint: str, lo: float | None, hi: float | None, integer: bool = False,
               open_lo: bool = False):
        value = self.get(name)
        if value is _MISSING:
            return _MISSING
        ok = isinstance(value, int if integer else (int, float)) and not isinstance(value, bool)
        ok = ok and math.isfinite(value) and (lo is None or (value > lo if open_lo else value >= lo))
        if not (ok and (hi is None or value <= hi)):
            return self.bad(name, f"must be {hint}, got {_show(value)}")
        return value if integer else float(value)

    def existing_file(self, name: str, value: str, base: Path, hint: str):
        path = base / Path(value).expanduser()
        if not path.is_file():
            return self.bad(name, f"no such file {path}; give {hint}")
        return str(path)


def _or_default(value, default):
    return default if value is _MISSING else value


def _build(cls, **values):
    return cls(**{k: v for k, v in values.items() if v is not _MISSING and v is not _BAD})


def _names(cls) -> tuple[str, ...]:
    return tuple(f.name for f in fields(cls))


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)  # dates and times


def _suggest_key(name: str, known: Sequence[str]) -> str | None:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return close[0]
    starts = [k for k in known if k.startswith(name) or name.startswith(k) or name in k]
    return starts[0] if starts else None


def _slugify(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_") or "rule"


def _looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or text.endswith(".tflite") or text.startswith((".", "~"))


def _pin_problem(pin: Any) -> str | None:
    fix = 'use a BCM GPIO number from 0 to 27 such as 17, or a name such as "GPIO17" or "BOARD11"'
    if isinstance(pin, bool) or not isinstance(pin, (int, str)):
        return f"must be a pin: {fix}, got {_show(pin)}"
    if _bcm(pin) is None:
        m = re.fullmatch(r"(?:BOARD|J8:)(\d+)", pin.strip().upper()) if isinstance(pin, str) else None
        if m and 1 <= int(m.group(1)) <= 40:
            return f"header pin {m.group(1)} is a power or ground pin, not a GPIO; {fix}"
        return f"{_show(pin)} is not a GPIO pin; {fix}"
    return None


def _bcm(pin: int | str) -> int | None:
    """The BCM number a pin spec names, or None when it names no GPIO on the 40-pin header."""
    if isinstance(pin, int) and not isinstance(pin, bool):
        return pin if 0 <= pin <= 27 else None
    m = re.fullmatch(r"(GPIO|BCM|BOARD|J8:)(\d+)", str(pin).strip().upper())
    if not m:
        return None
    num = int(m.group(2))
    if m.group(1) in ("GPIO", "BCM"):
        return num if 0 <= num <= 27 else None
    return _BOARD_TO_BCM.get(num)
