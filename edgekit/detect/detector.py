"""Scores per window -> start/end events per rule: smoothing, hysteresis, min_duration and hold.

Every duration is measured on ``stream_time`` (seconds of audio), never in windows and never on
the wall clock, so a rule behaves the same at a 0.1 s hop as at 0.48 s, and a file replayed at
full speed gives the same events as the live microphone. Each window counts for one hop of
time: a condition seen in one window has lasted one hop, so ``min_duration`` or ``hold`` no
longer than the hop act at once.

``hold`` keeps an event open through short dips: the end waits until the smoothed score has
stayed below ``release`` for ``hold`` seconds, and a return within that time continues the same
event. A beeping smoke alarm is therefore one event, and no new start can follow within
``hold`` seconds of the sound stopping.

A config reload builds a new detector; :meth:`Detector.carry_over` hands it the state of every
rule that did not change, so a sounding alarm stays one event across the reload, and
``stream_offset`` keeps the clock counting when the audio stream itself had to be rebuilt.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Sequence

import numpy as np

from edgekit.errors import ConfigError
from edgekit.detect.events import Event
from edgekit.detect.rules import Rule, rule_indices

_EPS = 1e-6  # stream times are sums of float hops; 0.1 * 10 must count as 1.0 s


class _Track:
    """One rule's state; plain Python floats, because n is small and this runs every hop."""

    __slots__ = ("rule", "index", "buf", "pos", "active", "since", "below_since", "start_time",
                 "label", "best", "peak", "event_id", "last")

    def __init__(self, rule: Rule, index: list[int]):
        self.rule = rule
        self.index = index
        self.buf = [0.0] * (rule.n if rule.smoothing != "none" else 1)
        self.reset()

    def take_state(self, other: _Track) -> None:
        self.buf[:] = other.buf
        self.pos, self.active, self.since, self.below_since = other.pos, other.active, other.since, other.below_since
        self.start_time, self.label, self.best, self.peak = other.start_time, other.label, other.best, other.peak
        self.event_id = other.event_id

    def reset(self) -> None:
        # A fresh track assumes silence before it: a moving average starts from zeros.
        self.buf[:] = [0.0] * len(self.buf)
        self.pos = 0
        self.active = False
        self.since = None  # stream_time the start condition first held (pending start)
        self.below_since = None  # stream_time the score first fell below release (pending end)
        self.start_time = 0.0
        self.label = ""
        self.best = -1.0
        self.peak = 0.0
        self.event_id = ""
        self.last = 0.0  # the smoothed score after the latest window (shown live, never decides)

    def smooth(self, score: float) -> tuple[float, bool, bool]:
        """(smoothed score, start condition, end condition) after one more window."""
        r, buf = self.rule, self.buf
        buf[self.pos] = score
        self.pos = (self.pos + 1) % len(buf)
        if r.smoothing == "none":
            return score, score >= r.enter, score < r.release
        if r.smoothing == "mean":
            mean = sum(buf) / len(buf)
            return mean, mean >= r.enter, mean < r.release
        hits = total = held = 0
        for v in buf:
            if v >= r.enter:
                hits += 1
                total += v
            if v >= r.release:
                held += 1
        return (total / hits if hits else 0.0), hits >= r.k, held < r.k

    def note_label(self, scores: np.ndarray | None, labels: Sequence[str]) -> None:
        if scores is None:
            return
        for i in self.index:
            if scores[i] > self.best:
                self.best = float(scores[i])
                self.label = labels[i]


class Detector:
    """Feed it one window of scores per hop; it returns the events that window caused."""

    def __init__(self, rules: Sequence[Rule], labels: Sequence[str], hop_seconds: float,
                 stream_offset: float = 0.0):
        if not hop_seconds > 0:
            raise ConfigError(f"hop_seconds must be positive, got {hop_seconds}")
        self.hop = float(hop_seconds)
        # Added to every stream_time passed in: a reload that had to start a new audio stream
        # (at 0 s) sets it to where the old one had got to, so event times never go backwards.
        self.stream_offset = float(stream_offset)
        self.labels = tuple(labels)
        self._tracks: list[_Track] = []
        gather: list[int] = []
        offsets: list[int] = []
        for rule in rules:
            index, missing = rule_indices(rule, self.labels)
            if missing:
                raise ConfigError(f'rule "{rule.name}": "{missing[0]}" is not one of the model\'s labels or the '
                                  'learned sounds loaded')
            if not index:
                raise ConfigError(f'rule "{rule.name}" has no labels')
            offsets.append(len(gather))
            gather.extend(index)
            self._tracks.append(_Track(rule, index))
        # One gather and one reduceat give every rule's max in two small numpy calls per hop.
        self._gather = np.asarray(gather, dtype=np.intp)
        self._offsets = np.asarray(offsets, dtype=np.intp)
        self._silence = [0.0] * len(self._tracks)

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(t.rule for t in self._tracks)

    def rule_scores(self) -> list[tuple]:
        """(rule, smoothed score after the latest window, event open) per rule, for a live view."""
        return [(t.rule, t.last, t.active) for t in self._tracks]

    def active(self) -> list[str]:
        """Names of the rules with an open event."""
        return [t.rule.name for t in self._tracks if t.active]

    def carry_over(self, old: Detector, names: Collection[str] | None = None) -> tuple[str, ...]:
        """Take over ``old``'s state for every rule that is unchanged; returns their names.

        Unchanged means an equal :class:`Rule` watching the same label names at the same hop:
        its open event simply continues here. ``names`` narrows it further (the daemon passes
        the rules whose actions did not change either). ``old`` is not modified; end what was
        not carried with ``old.close(..., keep=carried)``.
        """
        if old.hop != self.hop:
            return ()
        previous = {t.rule: t for t in old._tracks}
        carried = []
        for t in self._tracks:
            o = previous.get(t.rule) if names is None or t.rule.name in names else None
            if o is None or [old.labels[i] for i in o.index] != [self.labels[i] for i in t.index]:
                continue
            t.take_state(o)
            carried.append(t.rule.name)
        return tuple(carried)

    def update(self, scores: np.ndarray | None, t_mono: float, t_wall: float, stream_time: float,
               dbfs: float | None = None) -> list[Event]:
        """One window. ``scores=None``: the volume gate skipped it, which counts as silence.

        ``dbfs`` is accepted so callers can pass what they have; the rules do not use it.
        """
        stream_time += self.stream_offset
        if not self._tracks:
            return []
        if scores is None:
            rule_scores = self._silence
        else:
            if scores.shape[-1] != len(self.labels):
                raise ValueError(f"{scores.shape[-1]} scores for {len(self.labels)} labels")
            flat = scores.reshape(-1)
            rule_scores = np.maximum.reduceat(flat[self._gather], self._offsets).tolist()
        events: list[Event] = []
        for track, score in zip(self._tracks, rule_scores):
            event = self._step(track, score, scores, t_mono, t_wall, stream_time)
            if event is not None:
                events.append(event)
        return events

    def close(self, t_mono: float, t_wall: float, stream_time: float, keep: Sequence[str] = ()) -> list[Event]:
        """End every open event (shutdown, end of a file) and forget all state.

        Rules named in ``keep`` are left as they are (a reload carried them over).
        """
        stream_time += self.stream_offset
        keep = set(keep)
        events = []
        for t in self._tracks:
            if t.rule.name in keep:
                continue
            if t.active:
                events.append(self._end(t, t_mono, t_wall, stream_time))
            t.reset()
        return events

    def _step(self, t: _Track, score: float, scores, t_mono, t_wall, now) -> Event | None:
        smoothed, on, off = t.smooth(score)
        t.last = smoothed
        r = t.rule
        if t.active:
            t.peak = max(t.peak, smoothed)
            if not off:
                t.below_since = None
                return None
            if t.below_since is None:
                t.below_since = now
            if now - t.below_since + self.hop >= r.hold - _EPS:
                return self._end(t, t_mono, t_wall, now)
            return None
        if not on:
            t.since, t.best, t.peak = None, -1.0, 0.0
            return None
        if t.since is None:
            t.since = now
        t.note_label(scores, self.labels)
        t.peak = max(t.peak, smoothed)
        if now - t.since + self.hop < r.min_duration - _EPS:
            return None
        t.active, t.start_time, t.below_since = True, now, None
        if not t.label:  # only gated windows so far (cannot happen with enter > 0)
            t.label = self.labels[t.index[0]]
        event = Event("start", r.name, t.label, smoothed, t.peak, t_mono, t_wall, now)
        t.event_id = event.id  # the end carries the start's id
        return event

    @staticmethod
    def _end(t: _Track, t_mono: float, t_wall: float, now: float) -> Event:
        event = Event("end", t.rule.name, t.label, t.peak, t.peak, t_mono, t_wall, now,
                      duration=max(0.0, now - t.start_time), id=t.event_id)
        t.active, t.since, t.below_since, t.best, t.label, t.peak = False, None, None, -1.0, "", 0.0
        return event
