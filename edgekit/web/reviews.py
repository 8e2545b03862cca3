"""The review loop: reviewed events' clips for `sounds learn` and `calibrate` (``--from-reviews``).

A clip reviewed "correct" is an example of its rule's sound; one marked "false alarm" is the
room's background (a negative for every rule). Events without a clip (withheld for speech,
removed by retention) cannot be used and are counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgekit.daemon.state import state_dir
from edgekit.web.store import KEEP, EventStore


@dataclass
class Reviewed:
    confirmed: dict[str, list[Path]] = field(default_factory=dict)  # rule -> its clips reviewed "correct"
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
    return out
