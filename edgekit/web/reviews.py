"""The review loop: reviewed events' clips for `sounds learn` and `calibrate` (``--from-reviews``).

A clip reviewed "correct" is an example of its rule's sound; one marked "false alarm" is the
room's background (a negative for every rule). Events without a clip (withheld for speech,
removed by retention) cannot be used and are counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgekit.daemon.clips import WINDOW_SECONDS
from edgekit.daemon.state import state_dir
from edgekit.web.store import KEEP, EventStore


@dataclass(frozen=True)
class Part:
    """Where the event is inside its clip: the pre- and post-roll around it are the room, not the sound."""

    path: Path
    start: float  # seconds into the clip
    end: float | None  # None: to the end


@dataclass
class Reviewed:
    confirmed: dict[str, list[Path]] = field(default_factory=dict)  # rule -> its clips reviewed "correct"
    parts: dict[Path, Part] = field(default_factory=dict)  # a confirmed clip -> where its event is
    false_alarms: dict[str, list[Path]] = field(default_factory=dict)  # rule -> its clips reviewed "false alarm"
    without_clip: int = 0
    state: Path | None = None

    def all_false_alarms(self) -> list[Path]:
        return [p for paths in self.false_alarms.values() for p in paths]

    def describe(self) -> str:
        n_ok = sum(map(len, self.confirmed.values()))
        n_fa = sum(map(len, self.false_alarms.values()))
        return (f"reviews in {self.state}: {n_ok} confirmed clip(s), {n_fa} false-alarm clip(s)"
                + (f", {self.without_clip} reviewed event(s) without a clip" if self.without_clip else ""))


def reviewed_clips(config) -> Reviewed:
    state = state_dir(config)
    store = EventStore(Path(config.log.path) if config.log else None, state)
    out = Reviewed(state=state)
    for ev in store.events(limit=KEEP):
        review = ev.get("review")
        if not review:
            continue
        path = store.clip_path(ev["id"])
        if path is None:
            out.without_clip += 1
            continue
        side = out.confirmed if review["verdict"] == "correct" else out.false_alarms
        side.setdefault(ev["rule"], []).append(path)
        if review["verdict"] == "correct" and ev.get("stream_time") is not None:
            # The clip starts pre_seconds before the window that started the event (0.975 s before
            # its stream time), or at the stream's start; the event lasts its duration after that.
            begin = max(0.0, ev["stream_time"] - WINDOW_SECONDS - config.clips.pre_seconds)
            start = ev["stream_time"] - WINDOW_SECONDS - begin
            end = start + WINDOW_SECONDS + ev["duration"] if ev.get("duration") is not None else None
            out.parts[path] = Part(path, max(0.0, start), end)
    return out
