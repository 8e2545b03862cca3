"""edgekit run: the daemon (under systemd: Type=notify with a watchdog)."""

from __future__ import annotations

import logging
import sys

EX_CONFIG = 78

HELP = "listen and act: microphone (or a replayed file) → model → detector → GPIO/MQTT/log"


def add_arguments(p) -> None:
    p.add_argument("--config", required=True, help="TOML config (see systemd/edgekit.toml)")
    p.add_argument("--source", help="replay this audio file instead of the configured source")
    p.add_argument("--speed", choices=["realtime", "max"], help="file sources: real time or as fast as possible")


def run(args) -> int:
    from edgekit.errors import ConfigError
    from edgekit.daemon.service import Service

    # The daemon's log is its journal: INFO and up, without timestamps (journald adds them).
    root = logging.getLogger()
    if root.level > logging.INFO and not args.verbose:
        root.setLevel(logging.INFO)
    for h in root.handlers:
        h.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    sys.stdout.reconfigure(line_buffering=True)
    try:
        return Service(args.config, source=args.source, speed=args.speed).run()
    except ConfigError as exc:
        # EX_CONFIG: the unit's RestartPreventExitStatus=78 stops systemd retrying a bad config.
        print(f"edgekit: error: {exc}", file=sys.stderr)
        return EX_CONFIG
