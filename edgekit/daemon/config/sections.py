"""The [model], [audio], [gpio], [mqtt] and [log] sections: each field read by its declaration,
then what only this section knows (device strings, hop rounding, TLS files, topic prefixes)."""

from __future__ import annotations

import os
from pathlib import Path

from edgekit.daemon.config.reader import BAD, MISSING, Table, build, show
from edgekit.daemon.settings import (AudioSettings, ClipSettings, EventLogSettings, GpioSettings, ModelSettings,
                                     MqttSettings, WebSettings)
from edgekit.errors import ConfigError, DeviceError

SECTION_TYPES = {"model": ModelSettings, "audio": AudioSettings, "groups": None, "rules": None,
                 "gpio": GpioSettings, "mqtt": MqttSettings, "log": EventLogSettings, "clips": ClipSettings, "web": WebSettings}


def looks_like_path(text: str) -> bool:
    return os.sep in text or "/" in text or text.endswith(".tflite") or text.startswith((".", "~"))


def model(t: Table, base: Path) -> ModelSettings:
    def model_file(name):
        if isinstance(name, str) and looks_like_path(name):
            return t.existing_file("model", name, base, 'the path of a .tflite file, or a name such as "yamnet"')
        return name

    def device(text):
        if not isinstance(text, str):
            return text
        from edgekit.models.runtime import parse_device

        try:
            return str(parse_device(text))
        except DeviceError as exc:
            return t.bad("device", str(exc))

    v = t.read_all(base, then={"model": model_file, "device": device})
    t.finish()
    return build(ModelSettings, **v)


def audio(t: Table, base: Path) -> AudioSettings:
    def source(value):
        if isinstance(value, str) and value != "mic":
            return t.existing_file("source", value, base, t.specs["source"].hint)
        return value

    def device(_):
        value = t.get("device")
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)  # "2" would otherwise be taken as part of a device name
        if value is not MISSING and not ((isinstance(value, str) and value.strip())
                                         or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)):
            return t.bad("device", f"must be {t.specs['device'].hint}, got {show(value)}")
        return value

    def hop(value):
        if not isinstance(value, float):
            return value
        from edgekit.params import FeatureParams

        try:
            return FeatureParams().with_hop(value).patch_hop_seconds  # a whole number of frames
        except ConfigError as exc:
            return t.bad("hop_seconds", str(exc))

    v = t.read_all(base, then={"source": source, "device": device, "hop_seconds": hop})
    t.finish()
    return build(AudioSettings, **v)


def gpio(t: Table, base: Path) -> GpioSettings:
    v = t.read_all(base)
    t.finish()
    return build(GpioSettings, **v)


def mqtt(t: Table | None, base: Path) -> MqttSettings | None:
    if t is None:
        return None

    def port(value):
        if value is MISSING and t.data.get("tls") is True:
            return 8883  # the broker's TLS port unless told otherwise, as mosquitto and HA expect
        return value

    def prefix(value):
        if isinstance(value, str) and (not value.strip("/") or any(c in value for c in "+# ")
                                       or value != value.strip("/")):
            return t.bad("topic_prefix", f'must be a topic prefix without "+", "#", spaces or a leading or '
                                         f'trailing "/", e.g. "edgekit", got {show(value)}')
        return value

    def password(value):
        if "password" in t.data and "username" not in t.data:
            t.bad("password", "is set but username is not; add username, or remove password")
        return value

    def needs_tls(key):
        def check(value):
            written = t.data.get(key)
            if isinstance(written, str) and written.strip() and t.data.get("tls") is not True:
                t.bad(key, "is set but tls is not; add tls = true, or remove it")
            if key == "keyfile" and "keyfile" in t.data and "certfile" not in t.data:
                t.bad("keyfile", "is set but certfile is not; a client key needs its certificate (certfile)")
            return value
        return check

    v = t.read_all(base, then={"port": port, "topic_prefix": prefix, "password": password,
                               **{key: needs_tls(key) for key in ("ca_certs", "certfile", "keyfile")}})
    t.finish()
    if v["host"] in (MISSING, BAD):
        v["host"] = ""  # reported; a placeholder so the other fields are still checked
    return build(MqttSettings, **v)


def log(t: Table | None, base: Path) -> EventLogSettings | None:
    if t is None:
        return None
    v = t.read_all(base)
    t.finish()
    if v["path"] in (MISSING, BAD):
        v["path"] = ""  # reported
    return build(EventLogSettings, **v)


def clips(t: Table, base: Path) -> ClipSettings:
    v = t.read_all(base)
    t.finish()
    return build(ClipSettings, **v)


def web(t: Table, base: Path) -> WebSettings:
    def listen(value):
        if isinstance(value, str):
            try:
                parse_listen(value)
            except ConfigError as exc:
                return t.bad("listen", str(exc))
        return value

    def password_hash(value):
        if isinstance(value, str) and not value.startswith("scrypt$"):
            return t.bad("password_hash", "must be the line `edgekit web --hash-password` prints (it starts with "
                                          "\"scrypt$\"); never the password itself")
        return value

    v = t.read_all(base, then={"listen": listen, "password_hash": password_hash})
    t.finish()
    return build(WebSettings, **v)


def parse_listen(text: str) -> tuple[str, int]:
    """"HOST:PORT" (IPv6 in brackets: "[::1]:8470") -> (host, port)."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f'must be HOST:PORT, e.g. "127.0.0.1:8470", got "{text}"')
    return host, int(port)
