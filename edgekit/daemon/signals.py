"""Signals that arrive before the daemon can act on them are kept, not fatal.

SIGHUP's default action kills a process, and Python installs no handler for SIGTERM: a reload
or a stop sent in the first moments after ``edgekit run`` starts (while Python imports and the
model loads) used to end it with 129 or 143. :func:`hold` is called first thing for the ``run``
command; it only records the signals, and the service acts on them (:func:`take`) once it can:
a SIGHUP then reloads, a SIGTERM stops cleanly. Standard library only, so it costs nothing.
"""

from __future__ import annotations

import signal
import threading

HELD = (signal.SIGHUP, signal.SIGTERM)
_pending: list[int] = []


def _record(signum, _frame) -> None:
    _pending.append(signum)


def hold() -> None:
    """Record SIGHUP and SIGTERM from now on instead of dying of them (main thread only)."""
    if threading.current_thread() is threading.main_thread():
        for sig in HELD:
            signal.signal(sig, _record)


def take() -> list[int]:
    """The signals recorded so far, oldest first; forgets them."""
    got = _pending[:]
    del _pending[: len(got)]
    return got
