"""Where samples come from: a microphone through PortAudio, or a file replayed through the same path.

A source yields 16 kHz int16 mono blocks from :meth:`read`. The microphone source captures at a
rate the device supports (many USB microphones only do 44.1/48 kHz: asking them for 16 kHz is
PortAudio error -9997) and resamples in the stream with soxr; it notices a lost device within a
second, logs it once, and reopens with back-off.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from dataclasses import dataclass

import numpy as np
import soxr

from edgekit.errors import AudioError
from edgekit.audio.files import TARGET_RATE, iter_audio
from edgekit.audio.ring import SampleRing

log = logging.getLogger("edgekit.audio")


@dataclass
class SourceStats:
    overflows: int = 0  # PortAudio input overflows reported to the callback
    dropped_blocks: int = 0  # blocks the ring had no room for
    reopens: int = 0  # times the device was lost and opened again
    lost: bool = False  # the device is currently gone
    abandoned_streams: int = 0  # streams PortAudio could not close (left behind, see MicSource._close)


class FileSource:
    """A recording replayed in real time (``speed="realtime"``) or as fast as possible (``"max"``).

    The file is decoded a few seconds at a time (:func:`iter_audio`): replaying a 2-hour
    recording costs the memory of a short one.
    """

    def __init__(self, path: str, block_seconds: float = 0.05, speed: str = "realtime"):
        if speed not in ("realtime", "max"):
            raise AudioError(f"unknown speed {speed!r}: use realtime or max")
        self.path = path
        self._blocks = iter_audio(path)
        self._pending = next(self._blocks, np.zeros(0, np.int16))  # opens the file now: errors at start
        self.block = max(1, round(block_seconds * TARGET_RATE))
        self.speed = speed
        self.stats = SourceStats()
        self._pos = 0  # samples handed out
        self._done = False
        self._t0: float | None = None

    def start(self) -> None:
        self._t0 = time.monotonic()

    @property
    def finished(self) -> bool:
        return self._done

    def _take(self, n: int) -> np.ndarray:
        while len(self._pending) < n:
            nxt = next(self._blocks, None)
            if nxt is None:
                break
            self._pending = np.concatenate([self._pending, nxt])
        block, self._pending = self._pending[:n], self._pending[n:]
        if not len(block):
            self._done = True
        return block

    def read(self, timeout: float = 0.5, want: int | None = None) -> np.ndarray | None:
        """The next block (``want`` samples when given, else one block); in real time, when
        the clock reaches its end. Empty while it is not due yet; None at the end of the file."""
        if self._done:
            return None
        n = want or self.block
        if self.speed == "realtime":
            # Pace by the wall clock, not by sleeps, so processing time does not add drift.
            due = self._t0 + (self._pos + n) / TARGET_RATE
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(min(wait, timeout))
                if time.monotonic() < due:
                    return np.zeros(0, np.int16)
        block = self._take(n)
        if self._done:
            return None
        self._pos += len(block)
        return block

    def stop(self) -> None:
        self._done = True
        self._blocks.close()

    def describe(self) -> str:
        return f"file {self.path} ({self.speed})"


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
    if not matches:
        names = ", ".join(repr(d["name"]) for d in devices) or "none"
        raise AudioError(f"no input device matches {spec!r}; input devices: {names}")
    return matches[0]["index"]


# Streams PortAudio could not close. Kept referenced so nothing tries to close them again.
_abandoned: list = []


def _abandon(stream) -> None:
    import sounddevice as sd

    if not _abandoned:
        # sounddevice's exit handler stops its last stream and calls Pa_Terminate: both would
        # wait on the deadlocked callback thread and hang the process at exit.
        atexit.unregister(sd._exit_handler)
    _abandoned.append(stream)


class MicSource:
    """Capture from a PortAudio input device, resampled to 16 kHz int16, surviving device loss."""

    RING_SECONDS = 10.0
    LOST_AFTER = 1.0  # seconds without a callback before the device counts as gone
    STARTUP_GRACE = 3.0  # the first callback may take longer: ALSA's pulse plugin measured ~1.9 s
    BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
    CLOSE_TIMEOUT = 2.0  # seconds to wait for PortAudio to let go of a stream

    def __init__(self, device: str | int | None = None, rate: int | None = None, block_seconds: float = 0.05):
        self.device_spec = device
        self.rate_request = rate
        self.block_seconds = block_seconds
        self.stats = SourceStats()
        self._stream = None
        self._ring: SampleRing | None = None
        self._resampler = None
        self._last_callback = 0.0
        self._next_attempt = 0.0
        self._attempt = 0
        self.rate: int | None = None
        self.device_name = "?"

    # -- the real-time callback: copy and count, nothing else ----------------------------------
    def _callback(self, indata, frames, time_info, status) -> None:
        if status.input_overflow:
            self.stats.overflows += 1
        self._ring.write(indata[:, 0])
        self._last_callback = time.monotonic()

    def _open(self) -> None:
        import sounddevice as sd

        index = resolve_input_device(self.device_spec)
        info = sd.query_devices(index if index is not None else sd.default.device[0], "input")
        rate = int(self.rate_request or info["default_samplerate"])
        try:
            sd.check_input_settings(device=index, channels=1, dtype="int16", samplerate=rate)
        except Exception:  # noqa: BLE001 - PortAudio's -9997 and friends; try the usual rates
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
                raise AudioError(f"input device {info['name']!r} takes none of the usual sample rates in mono int16")
        self._ring = SampleRing(int(self.RING_SECONDS * rate))
        self._resampler = None if rate == TARGET_RATE else soxr.ResampleStream(rate, TARGET_RATE, 1, dtype="int16", quality="HQ")
        self._stream = sd.InputStream(device=index, channels=1, dtype="int16", samplerate=rate,
                                      blocksize=max(1, round(self.block_seconds * rate)), callback=self._callback)
        self._stream.start()
        self._last_callback = time.monotonic() + self.STARTUP_GRACE
        self.rate = rate
        self.device_name = info["name"]

    def start(self) -> None:
        """Open the device now; a failure here is an error for the caller (fail fast at start-up)."""
        try:
            self._open()
        except AudioError:
            raise
        except Exception as exc:  # noqa: BLE001 - PortAudioError and OSError from the backend
            raise AudioError(f"cannot open the input device {self.device_spec or '(default)'}: {exc}") from None

    def _close(self) -> None:
        """Abort and close the stream, giving up on it after CLOSE_TIMEOUT.

        When the sound server dies, the callback thread can deadlock inside ALSA's pulse plugin
        (seen here: stuck on pa_mutex_lock in snd_pcm_status), and Pa_AbortStream waits for that
        thread forever. So the close runs on a helper thread; a stream that does not close in
        time is left behind, and the PortAudio calls that would wait on it too (Pa_Terminate on
        re-initialisation and at exit) are skipped from then on. A new stream opens on a new
        server connection, so capture goes on.
        """
        stream, self._stream = self._stream, None
        if stream is None:
            return

        def close() -> None:
            try:
                stream.abort(ignore_errors=True)
                stream.close(ignore_errors=True)
            except Exception:  # noqa: BLE001 - the device may already be gone
                pass

        closer = threading.Thread(target=close, name="edgekit-audio-close", daemon=True)
        closer.start()
        closer.join(self.CLOSE_TIMEOUT)
        if closer.is_alive():
            _abandon(stream)
            self.stats.abandoned_streams += 1
            log.error("PortAudio did not release the input stream within %.0f s (a sound server that "
                      "died can deadlock ALSA's pulse plugin); leaving it behind and opening a new one",
                      self.CLOSE_TIMEOUT)

    def _lose(self, why: str) -> None:
        if not self.stats.lost:
            log.error("audio input lost (%s); reopening with back-off", why)
        self.stats.lost = True
        self._close()
        self._next_attempt = time.monotonic() + self.BACKOFF[min(self._attempt, len(self.BACKOFF) - 1)]

    def _try_reopen(self) -> None:
        import sounddevice as sd

        if time.monotonic() < self._next_attempt:
            return
        self._attempt += 1
        try:
            # PortAudio only enumerates devices at initialisation; a sound server that came back
            # is invisible until it re-initialises. Not with a stream left behind: Pa_Terminate
            # would wait on it forever. ALSA's plugin devices (pulse, default) stay listed anyway.
            if not _abandoned:
                sd._terminate()
                sd._initialize()
            self._open()
        except Exception as exc:  # noqa: BLE001
            log.debug("reopen attempt %d failed: %s", self._attempt, exc)
            if _abandoned and self._attempt >= len(self.BACKOFF):
                # Without Pa_Terminate, PortAudio cannot see a device that came back under a new
                # index (a USB microphone plugged in again); a new process can. Under systemd,
                # exiting with an error is that restart (Restart=on-failure), minutes apart.
                raise AudioError(f"audio input still gone after {self._attempt} attempts, and PortAudio is "
                                 "stuck on a stream it could not close; exiting so the process restarts") from None
            self._next_attempt = time.monotonic() + self.BACKOFF[min(self._attempt, len(self.BACKOFF) - 1)]
            return
        log.warning("audio input back: %s at %d Hz after %d attempt(s)", self.device_name, self.rate, self._attempt)
        self.stats.lost = False
        self.stats.reopens += 1
        self._attempt = 0

    def read(self, timeout: float = 0.5, want: int | None = None) -> np.ndarray | None:
        """The samples captured since the last call, at 16 kHz; empty while the device is lost.

        ``want``: wait (up to ``timeout``) until about that many 16 kHz samples are there, so the
        caller wakes once per window rather than once per PortAudio block.
        """
        deadline = time.monotonic() + timeout
        while True:
            if self.stats.lost:
                self._try_reopen()
                if self.stats.lost:
                    time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
                    return np.zeros(0, np.int16)
            stream = self._stream
            if stream is not None and (not stream.active or time.monotonic() - self._last_callback > self.LOST_AFTER):
                self._lose("the stream stopped" if not stream.active else f"no audio for {self.LOST_AFTER:.0f} s")
                continue
            have = self._ring.available()
            short = (want or 1) - have * TARGET_RATE / self.rate
            if have and (short <= 0 or time.monotonic() >= deadline):
                self.stats.dropped_blocks = self._ring.dropped_blocks
                raw = self._ring.read()
                if self._resampler is None:
                    return raw
                return self._resampler.resample_chunk(raw)
            now = time.monotonic()
            if now >= deadline:
                return np.zeros(0, np.int16)
            # Sleep until the wanted samples should be there (one block at least, so a stalled
            # device is still noticed within LOST_AFTER).
            time.sleep(max(0.002, min(short / TARGET_RATE, deadline - now, self.LOST_AFTER / 2)))

    def stop(self) -> None:
        self._close()

    def describe(self) -> str:
        return f"microphone {self.device_name!r} at {self.rate} Hz"
