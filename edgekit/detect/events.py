"""What the detector emits and every action consumes."""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import asdict, dataclass, field


def new_event_id() -> str:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random bits. Unique across
    devices and restarts without coordination, and ids sort by time. (uuid.uuid7 arrives only
    in Python 3.14.)"""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")  # 80 bits; 74 are kept
    value = (ms & (1 << 48) - 1) << 80 | 0x7 << 76 | (rand >> 68 & 0xFFF) << 64 | 0b10 << 62 | rand & (1 << 62) - 1
    return str(uuid.UUID(int=value))


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
    # One id per occurrence: its "start" and its "end" carry the same id, so (id, kind) names one
    # message. A consumer drops a QoS 1 redelivery by (id, kind) and joins a start to its end by id.
    id: str = field(default_factory=new_event_id)
    # On an "end": the clip's file name in the clips directory, or why it was not kept
    # (edgekit.daemon.clips); None on a start, and on both when clips are not recorded.
    clip: str | None = None
    clip_withheld: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)
