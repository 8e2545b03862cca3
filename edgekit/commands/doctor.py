"""edgekit doctor / version: what runtime, numpy, Python, CPU and Edge TPU this machine has."""

from __future__ import annotations

import json

HELP = "show the runtime, numpy, Python, CPU and whether an Edge TPU can be used (and why not)"


def add_arguments(p) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")


def report() -> dict:
    """The parts of :func:`edgekit.machine.describe` a person asks ``doctor`` about."""
    from edgekit.machine import describe, runtime_text

    m = describe()
    keys = ("edgekit", "runtime", "numpy", "python", "machine", "cpu", "cores", "board", "os", "edgetpu")
    return {**{k: m[k] for k in keys}, "runtime": runtime_text(m),
            "edgetpu": {k: m["edgetpu"][k] for k in ("library", "usb_devices", "pci_devices", "usable", "reason")}}


def run(args) -> int:
    info = report()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    tpu = info.pop("edgetpu")
    if info["board"] is None:  # the line the README promises, on a PC too
        info["board"] = "none found (no /proc/device-tree/model: not a Raspberry Pi or similar board)"
    for key, value in info.items():
        if value is not None:
            print(f"{key:>9}: {value}")
    state = "usable" if tpu["usable"] else "not usable"
    print(f"  edgetpu: {state}: {tpu['reason']}" if not tpu["usable"] else f"  edgetpu: {state}")
    print(f"           library: {tpu['library']}; usb: {tpu['usb_devices'] or 'none'}; pci: {tpu['pci_devices'] or 'none'}")
    return 0
