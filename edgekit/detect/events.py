"""What the detector emits and every action consumes."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Event:
    kind: str  # "start" or "end"
    rule: str  # the rule's name from the config
    label: str  # the AudioSet display name that scored highest within the rule
    score: float  # the (smoothed) score that triggered a start; the peak so far at an end
    peak: float  # highest smoothed score over the event so far
    t_mono: float  # time.monotonic() of the window that caused it, seconds
    t_wall: float  # time.time() at the same moment, seconds since the epoch
    stream_time: float  # seconds of audio since the source started (start of the window's end)
    duration: float = 0.0  # seconds since the start, for "end" events

    def as_dict(self) -> dict:
        return asdict(self)
