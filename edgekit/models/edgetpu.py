"""Find out why the Edge TPU cannot be used, and say what to install or fix.

The delegate path itself is in :mod:`edgekit.models.runtime`; this module only looks at the system
(library, USB ids, udev rules, /dev/apex_*) so its messages can be tested without a TPU.
"""

from __future__ import annotations

import ctypes.util
import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path

# The Coral USB Accelerator enumerates as Global Unichip before its firmware is loaded and as
# Google afterwards; both need a udev rule for a non-root user.
USB_IDS = (("1a6e", "089a"), ("18d1", "9302"))
INSTALL_HINT = (
    "install the Edge TPU runtime from Coral's apt repository "
    "(`sudo apt-get install libedgetpu1-std`, see https://coral.ai/docs/accelerator/get-started/)"
)


@dataclass(frozen=True)
class EdgeTPUStatus:
    library: str | None  # path or name of libedgetpu found, None if absent
    usb_devices: tuple[str, ...]  # sysfs names of attached Coral USB devices
    usb_writable: bool
    udev_rule: bool
    pci_devices: tuple[str, ...]  # /dev/apex_N nodes
    pci_writable: bool

    @property
    def usable(self) -> bool:
        return bool(self.library) and (
            (self.usb_devices and self.usb_writable) or (self.pci_devices and self.pci_writable)
        )

    def reason(self) -> str:
        """Why no Edge TPU is usable, or 'ok'."""
        if not self.library:
            return f"libedgetpu not found: {INSTALL_HINT}"
        if not self.usb_devices and not self.pci_devices:
            return (
                "no Edge TPU device found: plug in the Coral USB Accelerator (use a USB 3 port) or "
                "check that the PCIe module is seated and the gasket/apex driver is loaded"
            )
        if self.usb_devices and not self.usb_writable:
            if not self.udev_rule:
                return (
                    "a Coral USB Accelerator is attached but this user cannot open it: install "
                    "udev rules for 1a6e:089a and 18d1:9302 (systemd/60-edgetpu.rules), run "
                    "`sudo udevadm control --reload-rules && sudo udevadm trigger`, and re-plug it"
                )
            return "a Coral USB Accelerator is attached but not writable by this user: add the user to the plugdev group"
        if self.pci_devices and not self.pci_writable:
            return (
                f"{self.pci_devices[0]} exists but this user cannot open it: add the user to the "
                "`apex` group (`sudo usermod -aG apex $USER`) and log in again"
            )
        return "ok"


def _find_library() -> str | None:
    found = ctypes.util.find_library("edgetpu")
    if found:
        return found
    for pattern in ("/usr/lib/*/libedgetpu.so.1*", "/usr/lib/libedgetpu.so.1*", "/usr/local/lib/libedgetpu.so.1*"):
        hits = glob.glob(pattern)
        if hits:
            return hits[0]
    return None


def _usb_devices(sysfs: Path) -> list[tuple[str, str]]:
    out = []
    for dev in sorted(sysfs.glob("*")):
        try:
            vid = (dev / "idVendor").read_text().strip()
            pid = (dev / "idProduct").read_text().strip()
        except OSError:
            continue
        if (vid, pid) in USB_IDS:
            try:
                bus = int((dev / "busnum").read_text())
                num = int((dev / "devnum").read_text())
                node = f"/dev/bus/usb/{bus:03d}/{num:03d}"
            except (OSError, ValueError):
                node = ""
            out.append((dev.name, node))
    return out


def _udev_rule_present(rule_dirs=("/etc/udev/rules.d", "/lib/udev/rules.d", "/usr/lib/udev/rules.d")) -> bool:
    for d in rule_dirs:
        for f in glob.glob(os.path.join(d, "*.rules")):
            try:
                text = Path(f).read_text(errors="replace")
            except OSError:
                continue
            if re.search(r"1a6e", text) and re.search(r"18d1", text):
                return True
    return False


def status(sysfs_usb: str = "/sys/bus/usb/devices", dev_glob: str = "/dev/apex_*") -> EdgeTPUStatus:
    usb = _usb_devices(Path(sysfs_usb))
    apex = tuple(sorted(glob.glob(dev_glob)))
    return EdgeTPUStatus(
        library=_find_library(),
        usb_devices=tuple(name for name, _ in usb),
        usb_writable=any(node and os.access(node, os.R_OK | os.W_OK) for _, node in usb),
        udev_rule=_udev_rule_present(),
        pci_devices=apex,
        pci_writable=any(os.access(p, os.R_OK | os.W_OK) for p in apex),
    )


_VERSION_RE = re.compile(r"requires runtime version \((\d+)\), which is newer than this runtime version \((\d+)\)")


def explain_delegate_failure(device, error: str) -> str:
    """Turn a failed ``load_delegate`` into a message that says what to do."""
    m = _VERSION_RE.search(error)
    if m:
        return (
            f"the model was compiled for Edge TPU runtime {m.group(1)} but libedgetpu here is "
            f"version {m.group(2)}: upgrade libedgetpu1-std, or recompile the model with the "
            "edgetpu_compiler that matches this runtime (`edgetpu_compiler --min_runtime_version "
            f"{m.group(2)}`)"
        )
    st = status()
    why = st.reason()
    if why == "ok":
        why = f"libedgetpu could not open {device} ({error.strip() or 'no detail'})"
    return f"cannot use the Edge TPU ({device}): {why}"
