"""GPIO pin names as gpiozero takes them, checked before gpiozero sees them.

A pin is a BCM number (17) or a name ("GPIO17", "BCM17", "BOARD11", "J8:11"). Header
positions map to BCM numbers here so that "BOARD11" and 17 are seen as the same pin when two
rules would drive it.
"""

from __future__ import annotations

import re
from typing import Any

from edgekit.daemon.config.reader import show

# 40-pin header position -> BCM number; the other positions are power and ground.
BOARD_TO_BCM = {3: 2, 5: 3, 7: 4, 8: 14, 10: 15, 11: 17, 12: 18, 13: 27, 15: 22, 16: 23, 18: 24, 19: 10,
                21: 9, 22: 25, 23: 11, 24: 8, 26: 7, 27: 0, 28: 1, 29: 5, 31: 6, 32: 12, 33: 13, 35: 19,
                36: 16, 37: 26, 38: 20, 40: 21}
FIX = 'use a BCM GPIO number from 0 to 27 such as 17, or a name such as "GPIO17" or "BOARD11"'


def pin_problem(pin: Any) -> str | None:
    """What is wrong with a pin spec, with the fix; None when it names a GPIO."""
    if isinstance(pin, bool) or not isinstance(pin, (int, str)):
        return f"must be a pin: {FIX}, got {show(pin)}"
    if bcm(pin) is None:
        m = re.fullmatch(r"(?:BOARD|J8:)(\d+)", pin.strip().upper()) if isinstance(pin, str) else None
        if m and 1 <= int(m.group(1)) <= 40:
            return f"header pin {m.group(1)} is a power or ground pin, not a GPIO; {FIX}"
        return f"{show(pin)} is not a GPIO pin; {FIX}"
    return None


def bcm(pin: int | str) -> int | None:
    """The BCM number a pin spec names, or None when it names no GPIO on the 40-pin header."""
    if isinstance(pin, int) and not isinstance(pin, bool):
        return pin if 0 <= pin <= 27 else None
    m = re.fullmatch(r"(GPIO|BCM|BOARD|J8:)(\d+)", str(pin).strip().upper())
    if not m:
        return None
    num = int(m.group(2))
    if m.group(1) in ("GPIO", "BCM"):
        return num if 0 <= num <= 27 else None
    return BOARD_TO_BCM.get(num)
