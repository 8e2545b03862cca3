"""edgekit config check: validate a daemon config without starting anything."""

from __future__ import annotations

import sys
from pathlib import Path

HELP = "check a daemon config file (edgekit config check PATH)"


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="config_command", metavar="ACTION")
    check = sub.add_parser("check", help="validate a config: every problem, with its key and a fix",
                           description="Validate a config file, including rule labels against the model's "
                                       "labels when the model (or its class map) can be found.")
    check.add_argument("path", metavar="PATH", help="the TOML config, e.g. /etc/edgekit/edgekit.toml")
    p.set_defaults(_parser=p)


def run(args) -> int:
    if getattr(args, "config_command", None) != "check":
        args._parser.print_help()
        return 2
    return check(args.path)


def check(path: str) -> int:
    from edgekit.daemon.config import model_labels, parse_config, read_toml
    from edgekit.errors import ConfigError

    try:
        data = read_toml(path)
        base = Path(path).absolute().parent
        labels, note = model_labels(data, base)
        if labels is None:
            print(f"{path}: note: {note}")
        config = parse_config(data, labels, source=path, base_dir=base)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    names = ", ".join(r.name for r in config.rules)
    count = len(config.rules)
    print(f"{path}: ok ({count} rule{'s' if count != 1 else ''}: {names})")
    return 0
