"""Context longer than one window for custom sounds: embeddings pooled over the last few seconds.

A smoke alarm's beeps, a knock's raps, a baby's cry are patterns over seconds; one 0.975 s window
sees a piece of them. A head with ``context_seconds = C`` > 0 takes, at each window, the mean and
the max of the embeddings of the windows that started within the last C seconds (that window
included): a 2 x dims feature. C is in seconds, not windows, so one head works at any hop
(training embeds examples at 0.2 s and the room at 0.48 s; the daemon may run at 0.1 s).

At run time (:class:`ContextRing`) the state is bounded: at most :data:`MAX_WINDOWS` embeddings,
and only those younger than C. A window the volume gate skipped has no embedding: it empties the
ring, as silence ends a pattern.
"""

from __future__ import annotations

import math

import numpy as np

MAX_WINDOWS = 64  # C = 6 s at a 0.1 s hop needs 60; more is never kept
EPS = 1e-6  # start times are sums of float hops: a window exactly C s back is out, whatever the rounding


def pool(embeddings: np.ndarray) -> np.ndarray:
    """[n, dims] -> [2 dims]: mean then max over the windows."""
    e = np.asarray(embeddings, np.float32)
    return np.concatenate([e.mean(axis=0), e.max(axis=0)]).astype(np.float32)


def pooled_series(embeddings: np.ndarray, starts: np.ndarray, context_seconds: float) -> np.ndarray:
    """Each window's pooled context over one recording: [n, dims] at start times ``starts`` -> [n, 2 dims]."""
    e = np.asarray(embeddings, np.float32)
    t = np.asarray(starts, np.float64)
    out = np.empty((len(e), 2 * e.shape[1]), np.float32)
    lo = 0
    for i in range(len(e)):
        while t[lo] <= t[i] - context_seconds + EPS or i - lo >= MAX_WINDOWS:
            lo += 1
        out[i] = pool(e[lo:i + 1])
    return out


class ContextRing:
    """The live path's state for one sound: the embeddings of the last ``context_seconds``.

    A fixed [MAX_WINDOWS, dims] array written round and round (no allocation per window), and
    the start time of each row; pooling reads the rows younger than the context.
    """

    def __init__(self, context_seconds: float):
        self.context_seconds = float(context_seconds)
        self._rows: np.ndarray | None = None
        self._starts = np.full(MAX_WINDOWS, -np.inf)
        self._next = 0
        self._last = -np.inf

    def push(self, start: float, embedding: np.ndarray) -> np.ndarray:
        """Add a window (its start time, seconds) and return the pooled context ending with it."""
        e = np.asarray(embedding, np.float32).reshape(-1)
        if self._rows is None or self._rows.shape[1] != len(e):
            self._rows = np.zeros((MAX_WINDOWS, len(e)), np.float32)
        self._rows[self._next] = e
        self._starts[self._next] = start
        self._next = (self._next + 1) % MAX_WINDOWS
        self._last = start
        live = self._starts > start - self.context_seconds + EPS
        rows = self._rows[live]
        return np.concatenate([rows.mean(axis=0), rows.max(axis=0)])

    def clear(self) -> None:
        self._starts[:] = -np.inf

    def __len__(self) -> int:
        """Windows in the current context."""
        return int(np.count_nonzero(self._starts > self._last - self.context_seconds + EPS))


class SoundScorer:
    """Scores the custom sounds on each window as the daemon does: a ring per sound with context."""

    def __init__(self, sounds):
        self.sounds = tuple(sounds)
        self._rings = [ContextRing(s.spec.context_seconds) if s.spec.context_seconds > 0 else None
                       for s in self.sounds]

    def __call__(self, result) -> np.ndarray:
        """[sounds] scores for one window result (``.embedding``, ``.scores``, ``.end``)."""
        emb = getattr(result, "embedding", None)
        out = np.zeros(len(self.sounds), np.float32)
        for i, (snd, ring) in enumerate(zip(self.sounds, self._rings)):
            if ring is None:
                out[i] = snd.score(result)
            elif emb is None:
                ring.clear()  # a gated (silent) window ends the pattern
            else:
                pooled = ring.push(float(result.end), emb)
                spec = snd.spec
                if spec.features == "embedding" and not spec.stock_indices:  # the common case: one dot
                    z = float(np.dot(pooled, snd.weights)) + snd.bias
                    out[i] = 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0
                else:
                    scores = getattr(result, "scores", None)
                    out[i] = snd.score_arrays(pooled[None], None if scores is None else np.atleast_2d(scores))[0]
        return out
