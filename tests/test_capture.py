"""Real PortAudio capture from a real PulseAudio server; device loss and recovery; file replay."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from edgekit.audio.files import read_audio
from edgekit.audio.ring import SampleRing
from edgekit.audio.replay import FileSource
from edgekit.audio.sources import MicSource, resolve_input_device
from edgekit.errors import AudioError
from pulse import pulse, pulse_off  # noqa: F401 - fixtures


def capture_for(src, seconds: float) -> np.ndarray:
    out, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        out.append(src.read(timeout=0.1))
    return np.concatenate(out)


def wait_for_audio(src, limit: float = 5.0) -> None:
    """A fresh PulseAudio connection takes ~2 s to deliver its first block."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if len(src.read(timeout=0.1)):
            return
    raise AssertionError("no audio arrived")


def best_correlation(recorded: np.ndarray, original: np.ndarray) -> float:
    """Peak normalised cross-correlation, whatever the capture latency."""
    r = recorded.astype(np.float64)
    o = original.astype(np.float64)
    n = len(r) + len(o)
    size = 1 << (n - 1).bit_length()
    xc = np.fft.irfft(np.fft.rfft(r, size) * np.conj(np.fft.rfft(o, size)), size)
    lag = int(np.argmax(xc))
    seg = np.roll(np.pad(r, (0, size - len(r))), -lag)[: len(o)]
    return float(np.dot(seg, o) / (np.linalg.norm(seg) * np.linalg.norm(o) + 1e-12))


def test_mic_capture_resamples_what_was_played(pulse, audio_dir):
    src = MicSource("pulse", block_seconds=0.02)
    src.start()
    try:
        assert src.rate in (44100, 48000, 16000)
        wait_for_audio(src)
        player = pulse.play(audio_dir / "speech.wav", wait=False)
        recorded = capture_for(src, 5.5)
        player.wait(timeout=30)
    finally:
        src.stop()
    assert recorded.dtype == np.int16
    original = read_audio(audio_dir / "speech.wav")
    assert best_correlation(recorded, original) > 0.95
    assert src.stats.dropped_blocks == 0


def test_mic_loss_is_noticed_and_recovered(pulse, caplog):
    src = MicSource("pulse", block_seconds=0.02)
    src.start()
    src.BACKOFF = (0.2, 0.5, 1.0)
    try:
        wait_for_audio(src)
        pulse.stop()
        t0 = time.monotonic()
        while not src.stats.lost and time.monotonic() - t0 < 5:
            src.read(timeout=0.1)
        assert src.stats.lost, "the loss was not noticed"
        assert time.monotonic() - t0 < 2.5
        capture_for(src, 1.5)  # several failed reopen attempts while the server is down
        lost_logs = [r for r in caplog.records if "audio input lost" in r.getMessage()]
        assert len(lost_logs) == 1, "logged once, not per attempt"
        pulse.start()
        t1 = time.monotonic()
        while src.stats.lost and time.monotonic() - t1 < 15:
            src.read(timeout=0.1)
        assert not src.stats.lost and src.stats.reopens == 1
        wait_for_audio(src)
    finally:
        src.stop()


# A real capture whose abort() blocks, as PortAudio's did once in a full run: the server died, the
# callback thread deadlocked inside ALSA's pulse plugin and Pa_AbortStream never returned (not
# reproducible on demand, hence the blocking abort). It runs in a child process with its own
# PulseAudio server: a stream left behind cannot be cleaned up safely, and the child must also
# exit without hanging (sounddevice's atexit Pa_Terminate would wait on that stream).
WEDGED_MIC = """
import json, os, sys, threading, time
sys.path.insert(0, {tests!r})
from pulse import pulse_server
ctx = pulse_server()
server = ctx.__enter__()
os.environ.update(XDG_RUNTIME_DIR=str(server.runtime_dir), HOME=str(server.runtime_dir))
import sounddevice as sd
from edgekit.audio import sources
from edgekit.errors import AudioError
terminations = []
real_terminate = sd._terminate
sd._terminate = lambda: (terminations.append(1), real_terminate())
src = sources.MicSource("pulse", block_seconds=0.02)
src.start(wait=10)
src.CLOSE_TIMEOUT, src.BACKOFF, src.GIVE_UP_AFTER = 0.3, {backoff!r}, 1.0
wedged = src._capture.stream
wedged.abort = lambda ignore_errors=True: threading.Event().wait()
out = {{}}
def until(cond, limit):
    t = time.monotonic()
    while not cond() and time.monotonic() - t < limit:
        try:
            src.read(timeout=0.1)
        except AudioError as exc:
            out["error"] = str(exc)
            return
    return time.monotonic() - t
until(lambda: src.stats.overflows or src._capture.ring.available(), 5)
server.stop()
out["noticed_s"] = until(lambda: src.stats.lost, 5)
until(lambda: src.stats.abandoned_streams, 5)
out["abandoned"] = [src.stats.abandoned_streams, len(src._left_behind)]
if {restart!r}:
    server.start()
    out["recovered_s"] = until(lambda: not src.stats.lost, 15)
    got = []
    until(lambda: got.append(len(src.read(timeout=0.1))) or sum(got) > 8000, 5)
    out["samples_after"] = sum(got)
else:
    until(lambda: False, 10)
out.update(lost=src.stats.lost, reopens=src.stats.reopens, terminations=len(terminations))
src.stop()
ctx.__exit__(None, None, None)
print(json.dumps(out), flush=True)
"""


def run_wedged_mic(restart: bool, backoff: tuple, tmp: Path) -> dict:
    import json
    import os
    import subprocess
    import sys

    from conftest import ROOT, absent
    from pulse import pulse_available

    if why := pulse_available():
        absent(why)
    import signal

    code = WEDGED_MIC.format(tests=str(ROOT / "tests"), backoff=backoff, restart=restart)
    # A session of its own: should the child hang, its PulseAudio server goes down with it.
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "TMPDIR": str(tmp)}, start_new_session=True)
    try:
        out, err = child.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        out, err = child.communicate()
        raise AssertionError(f"the child hung:\n{err[-3000:]}") from None
    proc = subprocess.CompletedProcess(child.args, child.returncode, out, err)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "did not release the input stream" in proc.stderr
    assert not list(tmp.glob("edgekit-pa-*")), "the child's PulseAudio folder was left behind"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_stream_portaudio_cannot_close_is_left_behind(tmp_path):
    """The source gives up on the stream, skips Pa_Terminate (which would wait on it too), and
    captures again from the restarted server; the process still exits."""
    out = run_wedged_mic(restart=True, backoff=(0.2, 0.5, 1.0), tmp=tmp_path)
    assert out["noticed_s"] < 2.5 and out["abandoned"] == [1, 1]
    assert out["recovered_s"] is not None and not out["lost"] and out["reopens"] == 1
    assert out["samples_after"] > 8000 and out["terminations"] == 0


def test_stuck_portaudio_and_no_device_ends_in_an_error_for_a_restart(tmp_path):
    """Without Pa_Terminate a replugged USB microphone (new index) stays invisible: once the
    back-off is spent, read() raises, so the daemon exits and systemd starts a fresh process."""
    out = run_wedged_mic(restart=False, backoff=(0.1, 0.1, 0.1), tmp=tmp_path)
    assert "exiting so the process restarts" in out["error"]
    assert out["abandoned"] == [1, 1] and out["lost"]


def test_pulse_folders_are_removed_even_when_the_server_cannot_start(tmp_path, monkeypatch):
    import tempfile

    import pulse as pulse_module

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pulse_module.pulse_server(start=False) as server:
        assert server.runtime_dir.parent == tmp_path
    monkeypatch.setattr(pulse_module, "PA_CONFIG", "load-module no-such-module\n")
    with pytest.raises(RuntimeError):
        with pulse_module.pulse_server():
            pass
    assert not list(tmp_path.glob("edgekit-pa-*"))


def test_no_device_is_said_in_words_not_portaudio_codes():
    """PortAudio's "Error querying device -1" (no default device) never reaches a user."""
    from edgekit.audio.opener import NO_INPUT, plain_reason

    assert plain_reason(Exception("Error querying device -1")) == NO_INPUT
    assert "busy" in plain_reason(Exception("Error opening InputStream: Device unavailable [PaErrorCode -9985]"))


def test_record_without_a_microphone_says_so_in_words(pulse_off, tmp_path, capsys):
    from edgekit.cli import main

    assert main(["record", "--seconds", "1", "-o", str(tmp_path / "bg.wav")]) == 1
    err = capsys.readouterr().err
    assert "is a microphone plugged in, or a sound server running?" in err
    assert "querying device -1" not in err and "retrying" not in err


def test_unknown_device_lists_the_real_ones(pulse):
    with pytest.raises(AudioError, match="no input device matches 'no-such-mic'.*pulse"):
        resolve_input_device("no-such-mic")


def test_ring_drops_whole_blocks_when_full():
    ring = SampleRing(10)
    ring.write(np.arange(6, dtype=np.int16))
    ring.write(np.arange(6, dtype=np.int16))  # no room: dropped whole, counted
    assert ring.dropped_blocks == 1 and ring.available() == 6
    np.testing.assert_array_equal(ring.read(4), [0, 1, 2, 3])
    ring.write(np.array([7, 8, 9, 10, 11, 12], np.int16))  # wraps around
    np.testing.assert_array_equal(ring.read(), [4, 5, 7, 8, 9, 10, 11, 12])


def test_file_source_at_max_speed_replays_every_sample(audio_dir):
    src = FileSource(str(audio_dir / "car_horn.wav"), block_seconds=0.05, speed="max")
    src.start()
    blocks = []
    while (b := src.read()) is not None:
        blocks.append(b)
    np.testing.assert_array_equal(np.concatenate(blocks), read_audio(audio_dir / "car_horn.wav"))
    assert all(len(b) == 800 for b in blocks[:-1])


def test_file_source_rejects_unknown_speed(audio_dir):
    with pytest.raises(AudioError, match="realtime or max"):
        FileSource(str(audio_dir / "speech.wav"), speed="fast")
