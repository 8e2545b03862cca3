"""The default ``[mqtt] device_id``: this machine's host name, cleaned for MQTT topics.

Every device at defaults used to be ``edgekit``: two of them on one broker connected with the same
client id (the broker drops one each time the other connects) and shared topics and Home
Assistant entities. The host name is what a user already chose to tell machines apart. A stock
host name ("raspberrypi", what Raspberry Pi OS ships) is not: it gets a short suffix from
``/etc/machine-id``, which every systemd machine has and keeps across reboots.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

# Host names that images ship with, so they say nothing about which device this is.
STOCK_HOSTNAMES = frozenset({"", "localhost", "raspberrypi", "raspberry", "ubuntu", "debian", "dietpi", "edgekit",
                             "pi", "armbian", "orangepi", "rockpi", "homeassistant"})
MACHINE_ID = Path("/etc/machine-id")


def clean(text: str) -> str:
    """``text`` as one MQTT topic level that Home Assistant also takes as an id: [a-z0-9_-]."""
    return re.sub(r"[^a-z0-9_-]+", "_", text.lower()).strip("_-")


def host_device_id(hostname: str | None = None, machine_id: Path = MACHINE_ID) -> str:
    """This machine's device id: its host name (before the first dot), cleaned; never empty."""
    name = clean((socket.gethostname() if hostname is None else hostname).split(".")[0])
    if name in STOCK_HOSTNAMES:
        try:
            suffix = clean(machine_id.read_text().strip())[:6]
        except OSError:
            suffix = ""
        name = f"{name or 'edgekit'}_{suffix}" if suffix else name or "edgekit"
    return name
