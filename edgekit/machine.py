"""What machine this is: CPU, board, memory, clock governor, runtime and Edge TPU, read once.

One description serves ``edgekit doctor`` and every benchmark record (``edgekit bench``,
``edgekit models build``), so a figure is never orphaned from the machine it came from and the
two never disagree about what a machine is. It sits above the model layer only because the
runtime and the Edge TPU are part of the answer.
"""

from __future__ import annotations

import os
import platform
import socket
from pathlib import Path

GOVERNOR_PATH = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")


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
    """The board's name from the device tree ("Raspberry Pi 5 Model B Rev 1.0"); None on a PC."""
    try:
        return Path("/proc/device-tree/model").read_text().rstrip("\x00\n") or None
    except OSError:
        return None


def governor(path: Path = GOVERNOR_PATH) -> str:
    """The cpufreq governor of CPU 0, or 'unknown' where the kernel exposes none (VMs, containers)."""
    try:
        return path.read_text().strip() or "unknown"
    except OSError:
        return "unknown"


def governor_warning(gov: str) -> str | None:
    # As pycoral's benchmarks: a scaling governor turns the clock down between runs, so the
    # same model reads slower or faster depending on what ran just before.
    if gov == "performance":
        return None
    if gov == "unknown":
        return ("CPU frequency governor unknown (no cpufreq in sysfs): the clock may scale; "
                "figures from a VM or shared host are noisier than from a dedicated board")
    return (f"CPU frequency governor is {gov!r}, not 'performance': latencies will vary; "
            "set it with `sudo cpupower frequency-set --governor performance`")


def virtualised() -> bool:
    try:
        return any(line.startswith("flags") and " hypervisor" in line
                   for line in Path("/proc/cpuinfo").read_text().splitlines())
    except OSError:
        return False


def memory_mib() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def describe() -> dict:
    """Everything above as one JSON-ready dict (the ``machine`` of a benchmark record)."""
    import numpy

    from edgekit import __version__
    from edgekit.errors import RuntimeNotFoundError
    from edgekit.models.edgetpu import status
    from edgekit.models.runtime import EDGETPU_LIBRARY, runtime_info

    try:
        rt = runtime_info()
        runtime = {"name": rt.name, "version": rt.version}
    except RuntimeNotFoundError as exc:
        runtime = {"name": None, "version": None, "error": str(exc)}
    gov = governor()
    tpu = status()
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        available = os.cpu_count()
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "hostname": socket.gethostname(),
        "machine": platform.machine(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_available": available,
        "virtualised": virtualised(),
        "memory_mib": memory_mib(),
        "governor": gov,
        "governor_warning": governor_warning(gov),
        "board": board_model(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "runtime": runtime,
        "edgekit": __version__,
        "edgetpu": {
            "usable": tpu.usable,
            "reason": tpu.reason(),
            "library": tpu.library or f"{EDGETPU_LIBRARY} not found",
            "usb_devices": list(tpu.usb_devices),
            "pci_devices": list(tpu.pci_devices),
        },
        "loadavg_at_start": load,
    }


def runtime_text(desc: dict) -> str:
    """The runtime as one phrase: "ai-edge-litert 2.3.1", or "none (why)"."""
    rt = desc.get("runtime") or {}
    return f"{rt['name']} {rt['version']}" if rt.get("name") else f"none ({rt.get('error')})"


def host_label(desc: dict) -> str:
    """A file-name-safe name for this machine: the board if any, else the hostname, else a class."""
    board = desc.get("board")
    host = desc.get("hostname") or ""
    if board:
        base = board
    elif host and host not in ("localhost", "vm") and not desc.get("virtualised"):
        base = host
    else:
        # Hostnames of throw-away VMs ('vm', random ids) say nothing about the hardware.
        base = f"ci-{desc.get('machine', 'unknown')}-vm" if desc.get("virtualised") else f"{host or 'unknown'}"
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in base).strip("-").lower() or "unknown"
