"""Timing loops: only ``invoke()`` inside the timer, the garbage collector off, and the harness's
own cost checked against a bare loop in interleaved blocks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import gc
import os
import resource
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

if TYPE_CHECKING:
    from edgekit.bench.runner import Settings


def latency_stats(ns: list[int]) -> dict:
    ms = np.asarray(ns, dtype=np.float64) / 1e6
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    r = lambda x: round(float(x), 5)  # 10 ns: finer than the clock's jitter  # noqa: E731
    return {"n": int(ms.size), "min": r(ms.min()), "p50": r(p50), "p90": r(p90), "p99": r(p99),
            "max": r(ms.max()), "mean": r(ms.mean()), "std": r(ms.std())}


def timer_cost_ns(n: int = 2000) -> int:
    """p50 of two back-to-back clock reads: what the instrument itself adds to every sample."""
    clock = time.perf_counter_ns
    d = []
    for _ in range(n):
        t0 = clock()
        d.append(clock() - t0)
    return int(np.median(d))


def _harness_block(invoke, n: int, out: list, deadline: int | None) -> None:
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        invoke()
        t1 = clock()
        out.append(t1 - t0)
        if deadline is not None and t1 >= deadline:
            return


def _bare_block(invoke, n: int, out: list) -> None:
    # The least a per-call latency can be measured with: two clock reads around invoke().
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        invoke()
        out.append(clock() - t0)


def measure(invoke: Callable[[], None], settings: Settings,
            progress: Callable[[int], None] = lambda n: None) -> tuple[list[int], list[int]]:
    """Harness samples, and bare-loop samples taken in alternating blocks when checking overhead.

    Blocks alternate AB, BA, AB, ... so a drift of the machine's speed (another tenant, thermal
    throttling) lands on both loops alike instead of on whichever ran second.
    """
    samples: list[int] = []
    bare: list[int] = []
    deadline = None if settings.seconds is None else time.perf_counter_ns() + int(settings.seconds * 1e9)
    runs = settings.runs
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        pair = 0
        while True:
            n = settings.block if runs is None else min(settings.block, runs - len(samples))
            if n <= 0:
                break
            before = len(samples)
            if settings.check_overhead and pair % 2:
                _bare_block(invoke, n, bare)
            _harness_block(invoke, n, samples, deadline)
            if settings.check_overhead and not pair % 2:
                _bare_block(invoke, n, bare)
            pair += 1
            progress(len(samples) - before)
            if deadline is not None and time.perf_counter_ns() >= deadline:
                break
    finally:
        if was_enabled:
            gc.enable()
    return samples, bare


def peak_rss_mib() -> float:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kib / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)  # macOS: bytes


def rss_mib() -> float | None:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return None
