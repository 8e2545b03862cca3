"""PortAudio calls off the caller's thread: a microphone is opened, probed and closed where a stuck
call cannot stop the daemon's loop.

PortAudio calls block for as long as a sound server is frozen (measured with PulseAudio stopped
by SIGSTOP: Pa_OpenStream, Pa_AbortStream and Pa_Initialize all wait until SIGCONT), and one can
block forever (a callback thread deadlocked inside ALSA's pulse plugin leaves Pa_AbortStream
waiting on it). So each call runs on a daemon thread of its own (:class:`Call`); the caller
looks at it without waiting, and a call that never returns is simply left behind: a daemon
thread does not hold up the process's exit.

PortAudio's state is global, so two rules keep the calls apart:

- The device list is rescanned (Pa_Terminate + Pa_Initialize, the only way PortAudio sees a
  sound server or USB microphone that came back) only when no other PortAudio call is in flight
  anywhere in the process: terminating under a running call is undefined.
- While any call is in flight or was left behind, sounddevice's exit handler (which stops a
  stream and calls Pa_Terminate) is unregistered, or the process would hang at exit waiting on it.
"""

from __future__ import annotations

import atexit
import enum
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from edgekit.errors import AudioError

NO_INPUT = "no audio input device: is a microphone plugged in, or a sound server running?"


class ListeningState(str, enum.Enum):
    """Where a source stands; the service publishes it (``Service.listening_state``)."""

    STARTING = "starting"  # the first open has not answered yet
    LISTENING = "listening"
    WAITING = "waiting_for_microphone"  # no device, a frozen or absent sound server: retrying
    ERROR = "error"  # given up: the process exits so that systemd starts a fresh one


_lock = threading.Lock()
_in_flight: set[Call] = set()
_exit_handler_removed = False


class Call:
    """One PortAudio call on its own daemon thread. ``done`` never blocks; ``result`` raises the
    call's error."""

    def __init__(self, kind: str, fn: Callable[[], Any]):
        self.kind = kind
        self.started = time.monotonic()
        self._fn = fn
        self._done = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None
        try:  # fd 2 as it is now, for keep_stderr: a stuck call may have pointed it at /dev/null
            self._stderr: int | None = os.dup(2)
        except OSError:
            self._stderr = None
        self._stderr_kept = False
        with _lock:
            _in_flight.add(self)
        self._thread = threading.Thread(target=self._run, name=f"edgekit-audio-{kind}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._fn()
        except BaseException as exc:  # noqa: BLE001 - handed to whoever reads the result
            self._error = exc
        finally:
            with _lock:
                _in_flight.discard(self)
                if self._stderr is not None:
                    os.close(self._stderr)
                    self._stderr = None
            self._done.set()

    def keep_stderr(self) -> None:
        """Point fd 2 back where it was when this call began, once. For a call that overstays
        while fd 2 is hushed (ours around a retry, or sounddevice's own around the Pa_Initialize
        of its import): the daemon's log (stderr: the journal) must not vanish meanwhile."""
        global _saved_stderr
        with _lock:
            if self._stderr_kept or self._stderr is None:
                return
            self._stderr_kept = True
            if _saved_stderr is not None:
                os.close(_saved_stderr)
                _saved_stderr = None
            os.dup2(self._stderr, 2)

    def age(self) -> float:
        return time.monotonic() - self.started

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float) -> bool:
        return self._done.wait(timeout)

    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._value


def others_in_flight(me: Call | None = None) -> int:
    """PortAudio calls running now, other than ``me``."""
    with _lock:
        return len(_in_flight - {me})


def keep_exit_clear() -> None:
    """Unregister sounddevice's exit handler: its Pa_Terminate would wait on a call in flight."""
    global _exit_handler_removed
    # Not `import sounddevice`: its import runs Pa_Initialize, which a frozen sound server blocks,
    # and this thread would wait on the import lock. Its exit handler is registered before that.
    sd = sys.modules.get("sounddevice")
    handler = getattr(sd, "_exit_handler", None)
    if handler is not None and not _exit_handler_removed:
        atexit.unregister(handler)
        _exit_handler_removed = True


# --- rescanning the device list ---------------------------------------------------------------
# sounddevice's own _initialize points fd 2 at /dev/null around Pa_Initialize (ALSA prints a
# screenful of probe noise there, and PortAudio three "Expression ... failed" lines for each open
# that fails: every few seconds while a microphone is away, the journal would fill with them).
# Under a frozen sound server those calls wait for minutes, and the daemon's own log (stderr:
# the journal) would vanish meanwhile. So the same hush here, but the caller's thread takes fd 2
# back when a call overstays (Call.keep_stderr); the price is a log line from another thread
# lost in those few milliseconds of a retry, while no audio flows.

_saved_stderr: int | None = None


def hush_stderr() -> bool:
    """Point fd 2 at /dev/null; False when it was already hushed (then the first hush's
    give_stderr_back undoes it, not this one's)."""
    global _saved_stderr
    with _lock:
        if _saved_stderr is not None:
            return False
        try:
            saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
        except OSError:
            return False
        os.dup2(devnull, 2)
        os.close(devnull)
        _saved_stderr = saved
        return True


def give_stderr_back() -> None:
    global _saved_stderr
    with _lock:
        if _saved_stderr is not None:
            os.dup2(_saved_stderr, 2)
            os.close(_saved_stderr)
            _saved_stderr = None


def rescan() -> None:
    """Re-initialise PortAudio so it lists the devices there now. Only with nothing else in flight."""
    import sounddevice as sd

    if sd._initialized:
        sd._terminate()
    hushed = hush_stderr()
    try:
        err = sd._lib.Pa_Initialize()
    finally:
        if hushed:
            give_stderr_back()
    sd._check(err, "Error initializing PortAudio")
    sd._initialized += 1


def plain_reason(exc: BaseException) -> str:
    """PortAudio's raw text in words a user can act on ("Error querying device -1" is the
    default device of a machine that has none)."""
    text = str(exc)
    if "querying device -1" in text or "No input device matching" in text:
        return NO_INPUT
    if "Device unavailable" in text or "-9985" in text:
        return f"the input device is busy or unavailable ({text})"
    return text
