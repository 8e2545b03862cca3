"""How much of a recording is the room's background, and the false-alarm budget it supports.

One rule, used by ``edgekit calibrate`` and ``edgekit sounds learn`` alike:

- **Silence is never background.** A stretch whose RMS level is below :data:`SILENCE_DBFS` (one
  16-bit step, -90.3 dBFS: digital silence, with or without ±1 dither) is a muted input or zero
  padding, not a room; no detector fires on it, so counting it would make any threshold look
  safe. Only audible seconds count.
- **To claim at most R false alarms per hour, at least 1/R hours of audible background**, and
  never less than :data:`MIN_SECONDS` whatever R: with less, a single false alarm already
  breaks the claim, so the rate cannot be estimated.
- **The fit may keep k = floor(R x hours) - 1 false alarms on it.** A threshold set just above the
  (k+1)-th highest of the n peaks in h hours of a room meets, on new audio of that room, a new
  peak above it with chance (k+1)/(n+1): about (k+1)/h false alarms an hour, not k/h (order statistics;
  measured by benchmarks/room.py before this rule: fits allowed k landed on (k+1)/h). With one
  less, the expected rate on new audio, floor(R x h)/h, is at most R. At the minimum length no
  false alarm is kept: the threshold clears every peak of the recording.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from edgekit.errors import BackgroundError

SILENCE_DBFS = -90.0  # RMS below one int16 step (20 log10(1/32768) = -90.3 dBFS)
FRAME_SECONDS = 0.1  # level frames for raw samples
MIN_SECONDS = 30.0  # half a minute of the room at the least, however high the target: a few windows are not a room
RATE = 16000


def levels(pcm: np.ndarray, rate: int = RATE, frame_seconds: float = FRAME_SECONDS) -> np.ndarray:
    """dBFS of each whole ``frame_seconds`` frame of int16 samples (-inf where all zero)."""
    n = int(round(frame_seconds * rate))
    x = np.asarray(pcm, np.int64)
    whole = len(x) - len(x) % n
    energy = np.sum((x[:whole] * x[:whole]).reshape(-1, n), axis=1) / n
    with np.errstate(divide="ignore"):
        return 20 * np.log10(np.sqrt(energy) / 32768.0)


def audible_seconds(level_dbfs: Sequence[float] | np.ndarray, seconds_each: float) -> float:
    """Seconds of a level series (one level per ``seconds_each``) that are not digital silence."""
    lv = np.asarray(level_dbfs, np.float64)
    return float(np.count_nonzero(lv > SILENCE_DBFS)) * seconds_each


class AudibleCounter:
    """Audible seconds of int16 blocks fed one at a time (memory does not grow with the stream)."""

    def __init__(self, rate: int = RATE):
        self.rate = rate
        self.frame = int(round(FRAME_SECONDS * rate))
        self.carry = np.zeros(0, np.int16)
        self.seconds = 0.0

    def add(self, block: np.ndarray) -> None:
        x = np.concatenate([self.carry, np.asarray(block, np.int16)])
        whole = len(x) - len(x) % self.frame
        self.seconds += audible_seconds(levels(x[:whole], self.rate), FRAME_SECONDS)
        self.carry = x[whole:]


def audible_seconds_of(blocks: Iterable[np.ndarray], rate: int = RATE) -> float:
    """Audible seconds of a stream of int16 blocks (block by block: memory does not grow with it)."""
    counter = AudibleCounter(rate)
    for block in blocks:
        counter.add(block)
    return counter.seconds


def needed_seconds(target_fa_per_hour: float) -> float:
    return max(3600.0 / target_fa_per_hour, MIN_SECONDS)


def false_alarm_budget(seconds: float, target_fa_per_hour: float, flag: str = "--target-fa-per-hour",
                       where: str = "") -> int:
    """The false alarms a fit may keep on ``seconds`` of audible background (so that the rate it can
    expect on new audio of the room is at most the target); refuses too little of it.

    ``flag`` is the option that sets the target in the command at hand, for the message.
    """
    if not (target_fa_per_hour > 0 and math.isfinite(target_fa_per_hour)):
        raise BackgroundError(f"{flag} must be a positive number of false alarms per hour")
    need = needed_seconds(target_fa_per_hour)
    if seconds < need - 1e-6:
        have = f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.3g} s"
        what = (f"{have} of audible background{where}" if seconds > 0
                else f"no audible background{where} (digital silence is not a room)")
        fix = f"Record more of the room (edgekit record --seconds {math.ceil(need)})"
        if seconds >= MIN_SECONDS:
            fix += f" or ask for {flag} {math.ceil(360000 / seconds) / 100:g} or more"
        raise BackgroundError(
            f"{what} cannot show at most {target_fa_per_hour:g} false alarms per hour: that needs at least "
            f"{_duration(need)} (1/target hours: a threshold above every peak of it can then expect the target rate on "
            f"new audio; never under "
            f"{MIN_SECONDS:g} s; digital silence does not count). {fix}"
        )
    return max(0, int(math.floor(target_fa_per_hour * seconds / 3600.0 + 1e-9)) - 1)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def audible_seconds_of_files(paths: Sequence[str | Path]) -> float:
    from edgekit.audio.files import iter_audio

    return sum(audible_seconds_of(iter_audio(p)) for p in paths)
