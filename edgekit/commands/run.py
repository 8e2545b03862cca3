"""edgekit run: the daemon (under systemd: Type=notify with a watchdog)."""

from __future__ import annotations

import logging
import sys

from edgekit.errors import (ConfigError, EventLogError, LabelsError, ModelFileError, ModelNotFoundError, MqttError,
                            PinFactoryError, UnsupportedModelError)

EX_CONFIG = 78
# Failures that restarting cannot fix, because what the config names is wrong (the preflight turns
# most of them into ConfigError first; these catch what slips past it). Not here: a missing Edge
# TPU or microphone, a busy pin, a broker that is down: those may come right by themselves. A
# missing GPIO chip or pin factory is here: the fix is lgpio or `pin_factory`, never a restart.
CONFIG_CAUSED = (ConfigError, ModelNotFoundError, ModelFileError, UnsupportedModelError, LabelsError, MqttError,
                 EventLogError, PinFactoryError)

HELP = "listen and act: microphone (or a replayed file) → model → detector → GPIO/MQTT/log"


def add_arguments(p) -> None:
    p.add_argument("--config", required=True, help="TOML config (see systemd/edgekit.toml)")
    p.add_argument("--source", help="replay this audio file instead of the configured source")
    p.add_argument("--speed", choices=["realtime", "max"], help="file sources: real time or as fast as possible")


def run(args) -> int:
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
    except CONFIG_CAUSED as exc:
        # EX_CONFIG: the unit's RestartPreventExitStatus=78 stops systemd retrying a bad config.
        print(f"edgekit: error: {exc}", file=sys.stderr)
        return EX_CONFIG
