"""The microphone through PortAudio (a replayed file is :mod:`edgekit.audio.replay`).

A source yields 16 kHz int16 mono blocks from :meth:`read`. The microphone source captures at a
rate the device supports (many USB microphones only do 44.1/48 kHz: asking them for 16 kHz is
PortAudio error -9997) and resamples in the stream with soxr; it notices a lost device within a
second, logs it once, and reopens with back-off, every PortAudio call off the reader's thread.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import numpy as np
import soxr

from edgekit.errors import AudioError
from edgekit.audio import opener
from edgekit.audio.files import TARGET_RATE
from edgekit.audio.opener import NO_INPUT, Call, ListeningState, plain_reason
from edgekit.audio.ring import SampleRing

log = logging.getLogger("edgekit.audio")


@dataclass
class SourceStats:
    overflows: int = 0  # PortAudio input overflows reported to the callback
    dropped_blocks: int = 0  # blocks the ring had no room for
    reopens: int = 0  # times the device was lost and opened again
    lost: bool = False  # the device is currently gone
    abandoned_streams: int = 0  # streams PortAudio did not close in time (left behind, see MicSource._tend)
    stuck_streams: int = 0  # of those, the ones whose close has still not returned


def list_devices() -> list[dict]:
    import sounddevice as sd

    out = []
    for i, d in enumerate(sd.query_devices()):
        if d["max_input_channels"] > 0:
            out.append({"index": i, "name": d["name"], "channels": d["max_input_channels"],
                        "default_rate": int(d["default_samplerate"]),
                        "hostapi": sd.query_hostapis(d["hostapi"])["name"]})
    return out


def resolve_input_device(spec: str | int | None) -> int | None:
    """A device index from an index or a case-insensitive name substring; None = the default."""
    if spec is None or spec == "":
        return None
    devices = list_devices()
    if isinstance(spec, int) or str(spec).isdigit():
        idx = int(spec)
        if any(d["index"] == idx for d in devices):
            return idx
        raise AudioError(f"no input device with index {idx}; `edgekit devices` lists them")
    matches = [d for d in devices if str(spec).lower() in d["name"].lower()]
    exact = [d for d in matches if d["name"].lower() == str(spec).lower()]
    if exact:
        return exact[0]["index"]
    if not devices:
        raise AudioError(f"no input device matches {spec!r}: {NO_INPUT}")
    if not matches:
        names = ", ".join(repr(d["name"]) for d in devices)
        raise AudioError(f"no input device matches {spec!r}; input devices: {names}")
    return matches[0]["index"]


class _Capture:
    """One open stream and what its callback fills: a new one for every open, so a late callback
    of a stream being given up can never write into its successor's ring."""

    def __init__(self, rate: int, ring_seconds: float, grace: float, stats: SourceStats):
        self.rate = rate
        self.ring = SampleRing(int(ring_seconds * rate))
        self.resampler = None if rate == TARGET_RATE else soxr.ResampleStream(rate, TARGET_RATE, 1, dtype="int16",
                                                                              quality="HQ")
        self.last_callback = time.monotonic() + grace
        self.finished = False
        self.stream = None
        self.name = "?"
        self._stats = stats

    # -- PortAudio's real-time thread: copy and count, nothing else --------------------------------
    def callback(self, indata, frames, time_info, status) -> None:
        if status.input_overflow:
            self._stats.overflows += 1
        self.ring.write(indata[:, 0])
        self.last_callback = time.monotonic()

    def on_finished(self) -> None:
        self.finished = True


class MicSource:
    """Capture from a PortAudio input device, resampled to 16 kHz int16, surviving device loss.

    Every PortAudio call (open, probe, close, rescan) runs off the caller's thread
    (:mod:`edgekit.audio.opener`): :meth:`read` never waits on PortAudio, so a daemon's loop goes
    on (and feeds its watchdog) with no microphone, a frozen sound server or one that restarts.
    :attr:`state` says where it stands; it changes are logged once each.
    """

    RING_SECONDS = 10.0
    LOST_AFTER = 1.0  # seconds without a callback before the device counts as gone
    STARTUP_GRACE = 3.0  # the first callback may take longer: ALSA's pulse plugin measured ~1.9 s
    BACKOFF = (0.5, 1.0, 2.0, 3.0)  # between failed opens; capped low, so a returning device is heard soon
    CLOSE_TIMEOUT = 2.0  # seconds to wait for PortAudio to let go of a stream, then leave it behind
    OPEN_TIMEOUT = 3.0  # an open slower than this counts as waiting (the call itself goes on)
    GIVE_UP_AFTER = 60.0  # a stream left behind and no device for this long: exit for a fresh process

    def __init__(self, device: str | int | None = None, rate: int | None = None, block_seconds: float = 0.05):
        self.device_spec = device
        self.rate_request = rate
        self.block_seconds = block_seconds
        self.stats = SourceStats()
        self.state = ListeningState.STARTING
        self.state_detail = "opening"
        self._capture: _Capture | None = None
        self._call: Call | None = None  # the open or close in flight
        self._left_behind: list[Call] = []  # closes that overstayed CLOSE_TIMEOUT
        self._next_attempt = 0.0
        self._attempt = 0
        self._waiting_since: float | None = None
        self._stopped = False
        self._fail_fast = False  # start(wait > 0): no microphone is an error, not a wait
        self._lock = threading.Lock()  # _stopped, against an open finishing on its own thread
        self.rate: int | None = None
        self.device_name = "?"

    @property
    def wanted(self) -> str:
        return repr(self.device_spec) if self.device_spec not in (None, "") else "(default)"

    # -- on the call's own thread ----------------------------------------------------------------
    def _open(self, rescan: bool, quiet: bool) -> _Capture:
        """Runs on its call's thread. ``quiet``: a retry, whose failure PortAudio and ALSA would
        otherwise print to stderr every few seconds (the reason is in our own log, once)."""
        hushed = quiet and opener.hush_stderr()
        try:
            return self._open_device(rescan)
        finally:
            if hushed:
                opener.give_stderr_back()

    def _open_device(self, rescan: bool) -> _Capture:
        import sounddevice as sd

        if rescan:
            # PortAudio only lists devices at initialisation: a sound server or USB microphone
            # that came back is invisible until it re-initialises.
            opener.rescan()
        index = resolve_input_device(self.device_spec)
        if index is None:
            index = sd.default.device[0]
            if index is None or index < 0:
                raise AudioError(NO_INPUT)
        info = sd.query_devices(index, "input")
        rate = int(self.rate_request or info["default_samplerate"])
        try:
            sd.check_input_settings(device=index, channels=1, dtype="int16", samplerate=rate)
        except Exception as first:  # noqa: BLE001 - PortAudio's -9997 and friends; try the usual rates
            for candidate in (48000, 44100, 16000, 32000, 22050, 96000):
                try:
                    sd.check_input_settings(device=index, channels=1, dtype="int16", samplerate=candidate)
                except Exception:  # noqa: BLE001
                    continue
                if self.rate_request:
                    log.warning("input device does not take %d Hz; capturing at %d Hz instead", rate, candidate)
                rate = candidate
                break
            else:
                # PortAudio keeps listing a device whose sound server went away (until a rescan),
                # and then says "Illegal combination of I/O devices": the likely cause is absence.
                raise AudioError(f"input device {info['name']!r} does not open (PortAudio: {first}; tried mono "
                                 f"int16 at the usual rates): {NO_INPUT}") from None
        cap = _Capture(rate, self.RING_SECONDS, self.STARTUP_GRACE, self.stats)
        cap.name = info["name"]
        cap.stream = sd.InputStream(device=index, channels=1, dtype="int16", samplerate=rate,
                                    blocksize=max(1, round(self.block_seconds * rate)), callback=cap.callback,
                                    finished_callback=cap.on_finished)
        cap.stream.start()
        cap.last_callback = time.monotonic() + self.STARTUP_GRACE
        with self._lock:
            if self._stopped:  # stopped while this call ran: nobody will read it
                _close_stream(cap.stream)
                raise AudioError("stopped")
        return cap

    # -- on the caller's thread: look at the calls, never wait on them ----------------------------
    def _set_state(self, state: ListeningState, detail: str) -> None:
        """Move to ``state``; logged once per change of state (a new reason alone is not logged)."""
        before, self.state, self.state_detail = self.state, state, detail
        self.stats.lost = state in (ListeningState.WAITING, ListeningState.ERROR)
        if state is before:
            return
        if state is ListeningState.LISTENING:
            if before is ListeningState.STARTING:
                log.info("audio input: %s at %d Hz", self.device_name, self.rate)
            else:
                log.warning("audio input back: %s at %d Hz after %.0f s", self.device_name, self.rate,
                            time.monotonic() - (self._waiting_since or time.monotonic()))
            self._waiting_since = None
        elif state is ListeningState.WAITING:
            self._waiting_since = time.monotonic()
            if before is ListeningState.STARTING and self._fail_fast:
                return  # start() raises the reason instead
            log.log(logging.ERROR if before is ListeningState.LISTENING else logging.WARNING,
                    "waiting for microphone %s: %s; retrying every few seconds", self.wanted, detail)

    def _start_open(self) -> None:
        # A rescan only with nothing else inside PortAudio (a close left behind, another source's call).
        rescan = self._attempt > 0 and opener.others_in_flight() == 0 and not self._left_behind
        self._call = Call("open", lambda: self._open(rescan, quiet=True))

    def _tend(self) -> None:
        now = time.monotonic()
        call = self._call
        if call is not None:
            if call.done():
                self._call = None
                if call.kind == "open":
                    self._opened(call)
            elif call.kind == "close" and call.age() > self.CLOSE_TIMEOUT:
                self._call = None
                self._left_behind.append(call)
                self.stats.abandoned_streams += 1
                opener.keep_exit_clear()
                log.error("PortAudio did not release the input stream within %.0f s (a frozen or dead sound "
                          "server); leaving it behind and opening a new one", self.CLOSE_TIMEOUT)
            else:
                if call.age() > 0.5:
                    call.keep_stderr()  # hushed by a call that waits on a frozen server: keep the log
                if call.kind == "open" and call.age() > self.OPEN_TIMEOUT:
                    opener.keep_exit_clear()
                    self._set_state(ListeningState.WAITING,
                                    f"PortAudio has not answered for {self.OPEN_TIMEOUT:.0f} s "
                                    "(is the sound server frozen?)")
                return
        self._left_behind = [c for c in self._left_behind if not c.done()]
        self.stats.stuck_streams = len(self._left_behind)
        cap = self._capture
        if cap is not None:
            if cap.finished:
                self._lose("the stream stopped")
            elif now - cap.last_callback > self.LOST_AFTER:
                self._lose(f"no audio for {self.LOST_AFTER:.0f} s")
            return
        if self._call is None and not self._stopped and now >= self._next_attempt:
            self._start_open()

    def _opened(self, call: Call) -> None:
        try:
            cap = call.result()
        except Exception as exc:  # noqa: BLE001 - PortAudioError, OSError, AudioError: all mean "not now"
            self._attempt += 1
            reason = plain_reason(exc)
            log.debug("open attempt %d failed: %s", self._attempt, reason)
            self._set_state(ListeningState.WAITING, reason)
            self._next_attempt = time.monotonic() + self.BACKOFF[min(self._attempt, len(self.BACKOFF)) - 1]
            self._maybe_give_up()
            return
        self._capture = cap
        self.rate, self.device_name = cap.rate, cap.name
        if self.state is not ListeningState.STARTING:
            self.stats.reopens += 1
        self._set_state(ListeningState.LISTENING, "")
        self._attempt = 0

    def _maybe_give_up(self) -> None:
        """A stream left behind and the device still gone: PortAudio cannot rescan (Pa_Terminate
        would wait on that stream), so a USB microphone plugged in again under a new index stays
        invisible to this process. Under systemd, exiting with an error is the way to a fresh
        one (Restart=on-failure); the new process waits for the microphone without giving up."""
        if self._left_behind and self._waiting_since is not None \
                and time.monotonic() - self._waiting_since >= self.GIVE_UP_AFTER:
            self._set_state(ListeningState.ERROR, "PortAudio is stuck on a stream it could not close")
            raise AudioError(f"audio input still gone after {self._attempt} attempts, and PortAudio is "
                             "stuck on a stream it could not close; exiting so the process restarts")

    def _lose(self, why: str) -> None:
        cap, self._capture = self._capture, None
        self._set_state(ListeningState.WAITING, f"audio input lost ({why})")
        self._call = Call("close", lambda: _close_stream(cap.stream))
        self._next_attempt = time.monotonic() + self.BACKOFF[0]

    # -- the source interface ----------------------------------------------------------------------
    def start(self, wait: float = 5.0) -> None:
        """Start opening the device. ``wait`` > 0: wait that long for it and raise the reason if it
        is not there (an interactive command); 0: go on at once, and keep trying (the daemon)."""
        self._fail_fast = wait > 0
        self._call = Call("open", lambda: self._open(False, quiet=False))
        if wait <= 0:
            return
        self._call.wait(wait)
        self._tend()
        if self.state is not ListeningState.LISTENING:
            reason = self.state_detail if self.state is ListeningState.WAITING else "no answer from PortAudio"
            self.stop()
            raise AudioError(f"cannot open the input device {self.wanted}: {reason}")

    def read(self, timeout: float = 0.5, want: int | None = None) -> np.ndarray | None:
        """The samples captured since the last call, at 16 kHz; empty while the device is away.

        ``want``: wait (up to ``timeout``) until about that many 16 kHz samples are there, so the
        caller wakes once per window rather than once per PortAudio block.
        """
        deadline = time.monotonic() + timeout
        while True:
            self._tend()
            cap = self._capture
            now = time.monotonic()
            if cap is None:
                time.sleep(max(0.0, min(0.1, deadline - now)))
                return np.zeros(0, np.int16)
            have = cap.ring.available()
            short = (want or 1) - have * TARGET_RATE / cap.rate
            if have and (short <= 0 or now >= deadline):
                self.stats.dropped_blocks = cap.ring.dropped_blocks
                raw = cap.ring.read()
                return raw if cap.resampler is None else cap.resampler.resample_chunk(raw)
            if now >= deadline:
                return np.zeros(0, np.int16)
            # Sleep until the wanted samples should be there (one block at least, so a stalled
            # device is still noticed within LOST_AFTER).
            time.sleep(max(0.002, min(short / TARGET_RATE, deadline - now, self.LOST_AFTER / 2)))

    def stop(self, wait: float | None = None) -> None:
        """Close the stream, waiting at most ``wait`` (CLOSE_TIMEOUT) for PortAudio."""
        deadline = time.monotonic() + (self.CLOSE_TIMEOUT if wait is None else wait)
        with self._lock:
            self._stopped = True  # from now on an open that finishes closes its own stream
        calls = []
        cap, self._capture = self._capture, None
        if cap is not None:
            calls.append(Call("close", lambda: _close_stream(cap.stream)))
        call, self._call = self._call, None
        if call is not None and call.kind == "open":
            call.wait(max(0.0, deadline - time.monotonic()))
            if call.done():  # finished before it could see _stopped: its stream is ours to close
                try:
                    opened = call.result()
                except Exception:  # noqa: BLE001 - nothing was opened
                    pass
                else:
                    calls.append(Call("close", lambda: _close_stream(opened.stream)))
            else:
                calls.append(call)
        elif call is not None:
            calls.append(call)
        for c in calls:
            if not c.wait(max(0.0, deadline - time.monotonic())):
                opener.keep_exit_clear()  # still inside PortAudio: Pa_Terminate at exit would wait on it

    def describe(self) -> str:
        if self.state is ListeningState.LISTENING:
            return f"microphone {self.device_name!r} at {self.rate} Hz"
        return f"microphone {self.wanted} ({self.state_detail})"

    def status_text(self) -> str:
        """The state in a few words, for sd_notify's STATUS= line."""
        if self.state is ListeningState.WAITING:
            return f"waiting for microphone {self.wanted}: {self.state_detail}"
        return self.state.value


def _close_stream(stream) -> None:
    try:
        stream.abort(ignore_errors=True)
        stream.close(ignore_errors=True)
    except Exception:  # noqa: BLE001 - the device may already be gone
        pass
