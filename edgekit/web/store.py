"""What the page lists: events from the daemon's event log, their clips, and the user's reviews.

The event log is only read (new lines are picked up as it grows; a rotation is noticed by its
inode), a start and its end are joined by their id, and at most :data:`KEEP` events are held.
Reviews are appended to ``reviews.jsonl`` in the state directory; the latest line per event wins.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections import OrderedDict
from datetime import datetime, timezone
from pathlib import Path

from edgekit.errors import ConfigError

KEEP = 5000
ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
VERDICTS = ("correct", "false_alarm")
NOTE_MAX = 1000


def valid_id(text: str) -> bool:
    return bool(ID.match(text))


class EventStore:
    def __init__(self, log_path: Path | None, state: Path):
        self.log_path = log_path
        self.clips = state / "clips"
        self.reviews_path = state / "reviews.jsonl"
        self._lock = threading.Lock()
        self._events: OrderedDict[str, dict] = OrderedDict()
        self._where: tuple | None = None  # (inode, offset) read so far
        self._reviews: dict[str, dict] = {}
        self._reviews_at: tuple | None = None
        self._withheld: dict[str, str] = {}
        self._withheld_at: tuple | None = None

    # -- reading -------------------------------------------------------------------------------
    def _refresh(self) -> None:
        if self.log_path is None:
            return
        try:
            st = os.stat(self.log_path)
        except OSError:
            return
        if self._where is None or self._where[0] != st.st_ino or st.st_size < self._where[1]:
            self._events.clear()
            older = [self.log_path.with_name(f"{self.log_path.name}.{i}") for i in (3, 2, 1)]
            for p in older:  # rotated files first, oldest first (only the last three are read)
                self._read(p, 0)
            offset = 0
        else:
            offset = self._where[1]
        self._where = (st.st_ino, self._read(self.log_path, offset))

    def _read(self, path: Path, offset: int) -> int:
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except OSError:
            return offset
        end = data.rfind(b"\n") + 1  # a line being written is read next time
        for line in data[:end].splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("id"), str):
                self._add(rec)
        return offset + end

    def _add(self, rec: dict) -> None:
        ev = self._events.get(rec["id"])
        if ev is None:
            ev = self._events[rec["id"]] = {}
            while len(self._events) > KEEP:
                self._events.popitem(last=False)
        ev[rec.get("kind", "start")] = rec

    def _jsonl(self, path: Path, stamp):
        try:
            st = os.stat(path)
        except OSError:
            return None, stamp
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        if key == stamp:
            return None, stamp
        out = []
        with open(path, "rb") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if isinstance(rec, dict) and isinstance(rec.get("id"), str):
                    out.append(rec)
        return out, key

    def _side_files(self) -> None:
        recs, self._reviews_at = self._jsonl(self.reviews_path, self._reviews_at)
        if recs is not None:
            self._reviews = {r["id"]: {k: r.get(k) for k in ("verdict", "note", "time")} for r in recs}
        recs, self._withheld_at = self._jsonl(self.clips / "withheld.jsonl", self._withheld_at)
        if recs is not None:
            self._withheld = {r["id"]: str(r.get("reason")) for r in recs}

    def events(self, limit: int = 200) -> list[dict]:
        with self._lock:
            self._refresh()
            self._side_files()
            items = list(self._events.items())[-limit:][::-1]
            return [self._public(i, ev) for i, ev in items]

    def event(self, event_id: str) -> dict | None:
        with self._lock:
            self._refresh()
            self._side_files()
            ev = self._events.get(event_id)
            return self._public(event_id, ev) if ev is not None else None

    def counts(self) -> dict[str, int]:
        with self._lock:
            self._refresh()
            out: dict[str, int] = {}
            for ev in self._events.values():
                rec = ev.get("start") or ev.get("end")
                out[rec.get("rule", "?")] = out.get(rec.get("rule", "?"), 0) + 1
            return out

    def clip_path(self, event_id: str) -> Path | None:
        """The clip's file, only ever inside the clips folder (ids are checked, paths resolved)."""
        if not valid_id(event_id):
            return None
        root = self.clips.resolve()
        path = (root / f"{event_id}.flac").resolve()
        if path.parent != root or not path.is_file():
            return None
        return path

    def _public(self, event_id: str, ev: dict) -> dict:
        start, end = ev.get("start"), ev.get("end")
        first = start or end
        clip = withheld = None
        if self.clip_path(event_id) is not None:
            clip = f"/api/events/{event_id}/clip"
        elif event_id in self._withheld:
            withheld = self._withheld[event_id]
        elif end is None:
            withheld = "the event has not ended yet"
        elif end.get("clip_withheld"):
            withheld = end["clip_withheld"]
        elif end.get("clip"):
            age = time.time() - float(end.get("t_wall") or 0)
            withheld = "being written" if age < 60 else "removed (clip retention)"
        else:
            withheld = "clips were off"
        wall = lambda rec: rec.get("time") or datetime.fromtimestamp(rec["t_wall"], timezone.utc).isoformat()  # noqa: E731
        return {
            "id": event_id, "rule": first.get("rule"), "label": first.get("label"),
            "start": wall(start) if start else None, "stream_time": (start or {}).get("stream_time"),
            "end": wall(end) if end else None, "duration": end.get("duration") if end else None,
            "score": (end or start).get("peak", first.get("score")), "clip": clip, "clip_withheld": withheld,
            "review": self._reviews.get(event_id),
        }

    # -- writing -------------------------------------------------------------------------------
    def review(self, event_id: str, body) -> dict:
        """Validate and append one review; raises ConfigError with what is wrong."""
        if not isinstance(body, dict):
            raise ConfigError('the body must be a JSON object: {"verdict": "correct"|"false_alarm", "note": "..."}')
        verdict, note = body.get("verdict"), body.get("note", "")
        if verdict not in VERDICTS:
            raise ConfigError(f'verdict must be "correct" or "false_alarm", got {json.dumps(verdict)}')
        if not isinstance(note, str) or len(note) > NOTE_MAX:
            raise ConfigError(f"note must be a string of at most {NOTE_MAX} characters")
        unknown = set(body) - {"verdict", "note"}
        if unknown:
            raise ConfigError(f"unknown keys {sorted(unknown)}; send verdict and note")
        rec = {"id": event_id, "verdict": verdict, "note": note, "time": time.time()}
        with self._lock:
            with open(self.reviews_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec) + "\n")
                f.flush()
                os.fsync(f.fileno())
            self._reviews[event_id] = {k: rec[k] for k in ("verdict", "note", "time")}
        return self._reviews[event_id]
