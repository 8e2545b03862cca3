"""Event clips: a pre-roll, the event and a post-roll of 16 kHz audio, kept as FLAC.

The detection thread only copies samples: a ring of the last few seconds, and per open event
the blocks that follow. A finished clip goes through a bounded queue to a writer thread, which
encodes it to a temporary name and renames it into place, so a file named ``<event id>.flac``
is always whole; leftovers of a stop mid-write (``.part``) are removed at the next start.
Nothing here can delay or stop an event: a full queue, a full disk or an unwritable directory
costs that clip, says so once in a warning, and is recorded in ``withheld.jsonl`` beside the
clips (the event log is never rewritten). Retention runs after each write: clips older than
``max_days`` go, then the oldest until the folder is within ``max_megabytes``.

Speech privacy (:mod:`edgekit.daemon.privacy`): the clip's windows' speech scores are looked at
once the last window that overlaps the clip has been scored; a clip with speech is never
written unless ``keep_speech`` is set, and a rule that listens for speech records none.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgekit.daemon.privacy import SPEECH_THRESHOLD, listens_for_speech, speech_indices
from edgekit.detect.events import Event

log = logging.getLogger(__name__)

RATE = 16000
WINDOW_SECONDS = 0.975  # a window ends at the event's stream time; the sound began up to this much earlier
WITHHELD = "withheld.jsonl"
QUEUE_SIZE = 4  # clips waiting for the writer; more means the disk is far too slow, and they are dropped


@dataclass
class _Capture:
    event_id: str
    rule: str
    start_t: float  # stream time of the clip's first sample
    begin: int  # recorder sample index of the clip's first sample
    chunks: list = field(default_factory=list)
    samples: int = 0
    end_sample: int | None = None  # recorder sample index where the post-roll ends
    end_t: float | None = None


class ClipRecorder:
    """``directory``: the clips folder; ``labels``: the pipeline's labels (for the speech classes)."""

    def __init__(self, settings, directory: str | os.PathLike, labels, rules, hop_seconds: float):
        self.settings = settings
        self.dir = Path(directory)
        self._speech_idx = np.asarray(speech_indices(labels), dtype=np.intp)
        self._speech_labels = [labels[i] for i in self._speech_idx]
        self._speech_rules = {r.name for r in rules if listens_for_speech(r)}
        self._ring = np.zeros(int((settings.pre_seconds + WINDOW_SECONDS + 3.0) * RATE), np.int16)
        self._pos = 0  # samples pushed since start
        self._max = int((settings.pre_seconds + WINDOW_SECONDS + settings.max_seconds + settings.post_seconds) * RATE)
        self._open: dict[str, _Capture] = {}  # by event id
        span = settings.pre_seconds + settings.max_seconds + settings.post_seconds + 2 * WINDOW_SECONDS + 5
        self._speech: deque = deque(maxlen=int(span / hop_seconds) + 2)  # (start, end, score, label)
        self._queue: queue.Queue = queue.Queue(QUEUE_SIZE)
        self._warned: set[str] = set()
        self.written = self.withheld = self.failed = 0
        self._writer = threading.Thread(target=self._write_loop, name="edgekit-clips", daemon=True)
        self._prepare()
        self._writer.start()

    def _prepare(self) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            for part in self.dir.glob(".*.part"):  # a stop mid-write: never a clip
                part.unlink(missing_ok=True)
        except OSError as exc:
            self._warn("write", f"clips: cannot use the folder {self.dir} ({exc.strerror or exc}); events are kept, "
                                "their clips are not")
        self._retain()

    # -- the detection thread: copies only -----------------------------------------------------
    def push(self, block: np.ndarray) -> None:
        n = len(block)
        ring = self._ring
        if n >= len(ring):
            ring[:] = block[-len(ring):]
        else:
            i = self._pos % len(ring)
            first = min(n, len(ring) - i)
            ring[i:i + first] = block[:first]
            ring[:n - first] = block[first:]
        self._pos += n
        for cap in list(self._open.values()):
            if cap.samples < self._max:
                take = block[: self._max - cap.samples]
                cap.chunks.append(take.copy())
                cap.samples += len(take)
            wait = int((WINDOW_SECONDS + 0.1) * RATE)  # every window over the clip has been scored
            if cap.end_sample is not None and self._pos >= cap.end_sample + wait:
                self._finish(cap)

    def window(self, start: float, end: float, scores) -> None:
        """One window's result, times in the detector's stream time (reload offset included)."""
        if scores is None or not len(self._speech_idx):
            score, label = 0.0, ""
        else:
            flat = scores.reshape(-1)[self._speech_idx]
            j = int(np.argmax(flat))
            score, label = float(flat[j]), self._speech_labels[j]
        self._speech.append((start, end, score, label))

    def on_event(self, ev: Event, now: float) -> Event:
        """``now``: the stream time of the last sample pushed. Returns the event to act on
        (an end carries its clip's name or why there is none)."""
        s = self.settings
        if ev.kind == "start":
            if ev.rule in self._speech_rules and not s.keep_speech:
                return ev
            begin = self._sample_at(ev.stream_time - WINDOW_SECONDS - s.pre_seconds, now)
            begin = max(begin, self._pos - len(self._ring), 0)
            cap = _Capture(ev.id, ev.rule, start_t=now - (self._pos - begin) / RATE, begin=begin)
            if self._pos > begin:
                cap.chunks.append(self._ring_copy(begin, self._pos))
                cap.samples = self._pos - begin
            self._open[ev.id] = cap
            return ev
        if ev.rule in self._speech_rules and not s.keep_speech:
            return replace(ev, clip_withheld="the rule listens for speech; set [clips] keep_speech = true to keep "
                                             "its clips")
        cap = self._open.get(ev.id)
        if cap is None:  # started before this recorder (a reload)
            return replace(ev, clip_withheld="the event began before clips were being recorded")
        cap.end_t = ev.stream_time + s.post_seconds
        cap.end_sample = self._sample_at(cap.end_t, now)
        heard = self._speech_in(cap)
        if heard is not None:
            del self._open[ev.id]
            self.withheld += 1
            return replace(ev, clip_withheld=heard)
        return replace(ev, clip=f"{ev.id}.flac")

    def _sample_at(self, t: float, now: float) -> int:
        return self._pos - int(round((now - t) * RATE))

    def _ring_copy(self, begin: int, end: int) -> np.ndarray:
        ring, n = self._ring, len(self._ring)
        idx = np.arange(begin, end) % n
        return ring[idx]

    def _speech_in(self, cap: _Capture) -> str | None:
        if self.settings.keep_speech:
            return None
        end = cap.end_t if cap.end_t is not None else float("inf")
        best = max(((sc, lab) for s0, s1, sc, lab in self._speech if s0 < end and s1 > cap.start_t),
                   default=(0.0, ""))
        if best[0] >= SPEECH_THRESHOLD:
            return (f"speech heard ({best[1]} {best[0]:.2f}); set [clips] keep_speech = true to keep clips "
                    f"with speech")
        return None

    def _finish(self, cap: _Capture) -> None:
        self._open.pop(cap.event_id, None)
        heard = self._speech_in(cap)
        if heard is not None:
            self.withheld += 1
            self._record_withheld(cap.event_id, heard)
            return
        audio = np.concatenate(cap.chunks) if cap.chunks else np.zeros(0, np.int16)
        if cap.end_sample is not None:
            audio = audio[: max(0, cap.end_sample - cap.begin)]
        try:
            self._queue.put_nowait((cap.event_id, audio))
        except queue.Full:
            self.failed += 1
            self._warn("queue", "the clip writer is behind (a slow disk?); clips are being dropped, events are not")
            self._record_withheld(cap.event_id, "dropped: the clip writer was behind")

    def close(self, timeout: float = 5.0) -> None:
        """Finish the open clips with what they have, then let the writer finish (bounded)."""
        for cap in list(self._open.values()):
            if cap.end_sample is not None:
                cap.end_sample = min(cap.end_sample, self._pos)
                self._finish(cap)
        self._open.clear()
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._writer.join(timeout)
        if self._writer.is_alive():
            log.warning("clips: the writer did not finish within %.0f s; the clip being written is dropped", timeout)

    # -- the writer thread ---------------------------------------------------------------------
    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            event_id, audio = item
            try:
                self._write(event_id, audio)
            except Exception as exc:  # a clip must never take the daemon down
                self.failed += 1
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
                self._warn("write", f"clips: cannot write to {self.dir} ({reason}); events are kept, their "
                                    "clips are not")
                self._record_withheld(event_id, f"not written: {reason}")
            else:
                self.written += 1
                self._warned.discard("write")
            self._retain()

    def _write(self, event_id: str, audio: np.ndarray) -> None:
        import soundfile as sf

        final = self.dir / f"{event_id}.flac"
        part = self.dir / f".{event_id}.flac.part"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            with open(part, "wb") as f:
                sf.write(f, audio, RATE, format="FLAC", subtype="PCM_16")
                f.flush()
                os.fsync(f.fileno())
            os.replace(part, final)
        except BaseException:
            try:
                part.unlink(missing_ok=True)
            except OSError:
                pass
            raise

    def _record_withheld(self, event_id: str, reason: str) -> None:
        line = json.dumps({"id": event_id, "reason": reason, "time": time.time()}) + "\n"
        try:
            with open(self.dir / WITHHELD, "a", encoding="utf-8") as f:
                f.write(line)
        except OSError:
            pass  # the folder is the problem; the warning has said so

    def _retain(self) -> None:
        s = self.settings
        try:
            clips = sorted(((p.stat().st_mtime, p.stat().st_size, p) for p in self.dir.glob("*.flac")),
                           key=lambda c: c[0])
        except OSError:
            return
        cutoff = time.time() - s.max_days * 86400
        total = sum(c[1] for c in clips)
        cap = s.max_megabytes * 1e6
        for mtime, size, path in clips:
            if mtime >= cutoff and total <= cap:
                break
            try:
                path.unlink()
                total -= size
            except OSError:
                pass

    def _warn(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s", message)

    def status(self) -> str:
        text = f"clips {self.written} kept, {self.withheld} withheld"
        return text + (f", {self.failed} failed" if self.failed else "")
