"""edgekit doctor / version: what runtime, numpy, Python, CPU and Edge TPU this machine has."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

HELP = "show the runtime, numpy, Python, CPU and whether an Edge TPU can be used (and why not)"


def add_arguments(p) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("model name", "Model", "Hardware", "cpu model"):
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def board_model() -> str | None:
    try:
        return Path("/proc/device-tree/model").read_text().rstrip("\x00\n") or None
    except OSError:
        return None


def report() -> dict:
    import numpy

    from edgekit import __version__
    from edgekit.models.edgetpu import status
    from edgekit.errors import RuntimeNotFoundError
    from edgekit.models.runtime import EDGETPU_LIBRARY, runtime_info

    try:
        rt = str(runtime_info())
    except RuntimeNotFoundError as exc:
        rt = f"none ({exc})"
    tpu = status()
    import os

    return {
        "edgekit": __version__,
        "runtime": rt,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "board": board_model(),
        "os": platform.platform(),
        "edgetpu": {
            "library": tpu.library or f"{EDGETPU_LIBRARY} not found",
            "usb_devices": list(tpu.usb_devices),
            "pci_devices": list(tpu.pci_devices),
            "usable": tpu.usable,
            "reason": tpu.reason(),
        },
    }


def run(args) -> int:
    info = report()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    tpu = info.pop("edgetpu")
    for key, value in info.items():
        if value is not None:
            print(f"{key:>9}: {value}")
    state = "usable" if tpu["usable"] else "not usable"
    print(f"  edgetpu: {state}: {tpu['reason']}" if not tpu["usable"] else f"  edgetpu: {state}")
    print(f"           library: {tpu['library']}; usb: {tpu['usb_devices'] or 'none'}; pci: {tpu['pci_devices'] or 'none'}")
    return 0
