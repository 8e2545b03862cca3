"""edgekit config check: validate a daemon config without starting anything."""

from __future__ import annotations

import sys

HELP = "check a daemon config file (edgekit config check PATH)"


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="config_command", metavar="ACTION")
    check = sub.add_parser("check", help="validate a config: every problem, with its key and a fix",
                           description="Validate a config file as `edgekit run` does before it listens: "
                                       "every value, then the model (it resolves, takes audio, suits the "
                                       "front end and device) and rule labels against the model's labels. "
                                       "Exits 1 with run's own message where run would refuse it.")
    check.add_argument("path", metavar="PATH", help="the TOML config, e.g. /etc/edgekit/edgekit.toml")
    p.set_defaults(_parser=p)


def run(args) -> int:
    if getattr(args, "config_command", None) != "check":
        args._parser.print_help()
        return 2
    return check(args.path)


def check(path: str) -> int:
    """The checks `edgekit run` makes before it listens, in its order and with its messages."""
    from edgekit.daemon.config import load_config
    from edgekit.daemon.preflight import preflight
    from edgekit.errors import ConfigError

    try:
        facts = preflight(path, load_config(path))
    except ConfigError as exc:
        print(f"edgekit: error: {exc}", file=sys.stderr)
        return 1
    rules = facts.config.rules
    count = len(rules)
    print(f"{path}: ok ({count} rule{'s' if count != 1 else ''}: {', '.join(r.name for r in rules)})")
    print(f"  {facts.describe()}")
    for snd in facts.sounds:  # where each was found: run under systemd looks in the service's directory
        print(f"  learned sound {snd.name}: {snd.path} (threshold {snd.threshold:.2f})")
        if note := _not_the_services(path, snd):
            print(f"  note: {note}")
    m = facts.config.mqtt
    if m is not None:
        from edgekit.actions.device_id import host_device_id

        whose = " (this host's name; set [mqtt] device_id to choose another)" if m.device_id == host_device_id() else ""
        print(f"  MQTT {m.host}:{m.port} as device_id {m.device_id!r}{whose}: topics {m.topic_prefix}/{m.device_id}/...")
    return 0


def _not_the_services(config_path: str, snd) -> str | None:
    """For the service's own config: a sound found outside the service's folder, which it will not see."""
    from pathlib import Path

    from edgekit.daemon.install import CONFIG_PATH
    from edgekit.detect import sound_store

    service = sound_store.SERVICE_SOUNDS_DIR
    if Path(config_path).resolve() != CONFIG_PATH or snd.path is None or Path(snd.path).parent == service:
        return None
    return (f"the service reads learned sounds from {service}, not {Path(snd.path).parent}; give it this one with "
            f"`sudo edgekit sounds learn {snd.name} --service --examples CLIPS` (or copy {snd.path} there)")
