"""The live feed: each window's result, sent to the status page companion (`edgekit web`).

A Unix datagram socket, and the daemon only ever sends: the companion binds ``live.sock`` in
the state directory, the daemon ``sendto``s it without blocking. No reader (no socket file,
nobody bound), or a reader too slow to empty its queue: the datagram is dropped, never waited
for. So the daemon keeps no listening socket of any kind, and a missing or stuck page costs it
one failed system call per second (it stops building messages for a second after a miss).
"""

from __future__ import annotations

import json
import logging
import math
import socket
import time

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0  # after "nobody there", how long before trying again
TOP = 5


class LiveFeed:
    def __init__(self, path):
        self.path = str(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)
        self._retry_at = 0.0
        self.sent = self.dropped = 0

    def wanted(self) -> bool:
        """Whether a message may be sent now (builds nothing for an absent reader)."""
        return time.monotonic() >= self._retry_at

    def send(self, message: dict) -> None:
        data = json.dumps(message, separators=(",", ":"), allow_nan=False).encode()
        try:
            self._sock.sendto(data, self.path)
        except BlockingIOError:  # the reader's queue is full: it is slow; drop, never wait
            self.dropped += 1
        except OSError:  # no reader (ENOENT, ECONNREFUSED) or anything else: try again later
            self.dropped += 1
            self._retry_at = time.monotonic() + RETRY_SECONDS
        else:
            self.sent += 1

    def close(self) -> None:
        self._sock.close()


def _num(x: float, digits: int = 3):
    return round(float(x), digits) if math.isfinite(x) else None


def window_message(r, svc) -> dict:
    """One window as the companion shows it; ``svc``: the running :class:`Service`."""
    pipeline, cfg, src = svc.pipeline, svc.config, svc.source
    labels = pipeline.labels
    offset = pipeline.detector.stream_offset
    scores = r.scores.reshape(-1) if r.scores is not None else None
    top = []
    if scores is not None:
        for i in scores.argsort()[::-1][:TOP]:
            top.append([labels[i], _num(scores[i])])
    st = pipeline.stats
    mic = "lost" if src is not None and src.stats.lost else "silent" if svc.silent else "heard"
    return {
        "v": 1, "time": round(time.time(), 3), "stream_time": round(r.end + offset, 3), "dbfs": _num(r.dbfs, 1),
        "gated": scores is None, "top": top,
        "rules": [{"name": rule.name, "score": _num(score), "enter": rule.enter, "release": rule.release,
                   "active": active} for rule, score, active in pipeline.detector.rule_scores()],
        "model": pipeline.model.path.name, "device": str(pipeline.model.device), "frontend": cfg.model.frontend,
        "hop": cfg.audio.hop_seconds, "uptime": round(time.monotonic() - svc.started, 1),
        "source": src.describe() if src is not None else "", "mic": mic,
        "windows": st.windows, "gated_windows": st.gated,
        "inference_ms": _num(1000 * st.inference_seconds / max(1, st.windows - st.gated)),
        "dropped_blocks": src.stats.dropped_blocks if src is not None else 0,
        "overflows": src.stats.overflows if src is not None else 0,
        "events": dict(svc.starts_per_rule),
    }
