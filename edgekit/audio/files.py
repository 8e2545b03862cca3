"""Read any audio file soundfile can (WAV incl. 24/32-bit and EXTENSIBLE, FLAC, Ogg) as 16 kHz int16 mono.

Files are read in blocks and resampled with soxr's streaming resampler, so a 3-hour recording
costs the memory of a 5-minute one: :func:`iter_audio` is the one reader, and
:func:`read_audio` (a whole clip in memory, for short clips) is built on it.
"""

from __future__ import annotations

import logging
import struct
import stat
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf
import soxr

from edgekit.errors import AudioFileError

log = logging.getLogger("edgekit.audio")

TARGET_RATE = 16000
MIN_RATE, MAX_RATE = 1000, 384000  # outside this a header is lying, not describing a recording
BLOCK_SECONDS = 5.0  # decoded per read: bounded memory, few Python round trips


def to_int16(x: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] -> int16, rounded and clipped."""
    return np.clip(np.round(np.asarray(x, np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def _wav_declared_frames(path: Path, block_align: int) -> int | None:
    """Frames a RIFF/WAVE header's data chunk promises, or None when it is not a plain WAV.

    libsndfile quietly trims a truncated file's frame count to what is there; the header still
    says what the recorder meant to write, which is how a cut-off file can be told apart.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return None
            while True:
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"data":
                    # 0 and 0xFFFFFFFF mark a stream whose recorder never wrote the size back.
                    return None if size in (0, 0xFFFFFFFF) or not block_align else size // block_align
                f.seek(size + (size & 1), 1)
    except OSError:
        return None


def _open(p: Path) -> sf.SoundFile:
    if not p.exists():
        raise AudioFileError(f"{p}: no such file")
    if p.is_dir():
        raise AudioFileError(f"{p}: is a directory, not an audio file")
    try:
        regular = stat.S_ISREG(p.stat().st_mode)
    except OSError as exc:
        raise AudioFileError(f"{p}: {exc.strerror or exc}") from None
    if not regular:  # opening a FIFO blocks until someone writes to it; a device never ends
        raise AudioFileError(f"{p}: not a regular file (a FIFO, device or socket); give a recording saved on "
                             "disk (to listen live, use the microphone: source = \"mic\")")
    try:
        f = sf.SoundFile(str(p))
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioFileError(
            f"{p}: cannot read it as audio ({str(exc).strip() or type(exc).__name__}); "
            "WAV, FLAC and Ogg Vorbis/Opus are supported"
        ) from None
    except OSError as exc:
        raise AudioFileError(f"{p}: {exc.strerror or exc}") from None
    if not MIN_RATE <= f.samplerate <= MAX_RATE:
        f.close()
        raise AudioFileError(f"{p}: the header claims a sample rate of {f.samplerate} Hz; recordings are "
                             f"{MIN_RATE // 1000} kHz to {MAX_RATE // 1000} kHz, so the header is wrong: "
                             "re-export the file (e.g. sox in.wav -r 16000 out.wav)")
    return f


def iter_audio(path: str | Path, target_rate: int = TARGET_RATE,
               block_seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """A file -> int16 mono blocks at ``target_rate``, read and resampled a block at a time.

    Every failure is an AudioFileError; odd but usable files (a truncated WAV, float samples
    beyond full scale) are read with one warning each that says what was wrong.
    """
    p = Path(path)
    with _open(p) as f:
        rate, channels = f.samplerate, f.channels
        if f.format == "WAV" and f.subtype in ("PCM_16", "PCM_24", "PCM_32", "PCM_U8", "FLOAT", "DOUBLE"):
            width = {"PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "PCM_U8": 1, "FLOAT": 4, "DOUBLE": 8}[f.subtype]
            declared = _wav_declared_frames(p, width * channels)
            if declared is not None and declared > f.frames:
                log.warning("%s: the header promises %.2f s but the file holds %.2f s (truncated?); "
                            "reading what is there", p, declared / rate, f.frames / rate)
        resampler = None if rate == target_rate else soxr.ResampleStream(rate, target_rate, 1, dtype="float32",
                                                                          quality="HQ")
        block = max(1, int(block_seconds * rate))
        warned_range = False
        try:
            for data in f.blocks(blocksize=block, dtype="float32", always_2d=True):
                finite = np.isfinite(data).all(axis=1)
                if not finite.all():  # where the first bad sample is, not where the block ends
                    bad = int(np.count_nonzero(~np.isfinite(data)))
                    at = (f.tell() - len(data) + int(np.argmin(finite))) / rate
                    raise AudioFileError(f"{p}: {bad} samples from {at:.2f} s on are NaN or infinite; "
                                         "the recording is corrupt")
                mono = data.mean(axis=1, dtype=np.float32) if channels > 1 else data[:, 0]
                if not warned_range:
                    peak = float(np.max(np.abs(mono), initial=0.0))
                    if peak > 1.001:  # a float file a little over full scale is common and harmless
                        log.warning("%s: float samples reach %.3g, far outside [-1, 1]; clipping them to full "
                                    "scale (normalise the recording for meaningful scores)", p, peak)
                        warned_range = True
                out = mono if resampler is None else resampler.resample_chunk(mono)
                if len(out):
                    yield to_int16(out)
            if resampler is not None:
                tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
                if len(tail):
                    yield to_int16(tail)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioFileError(f"{p}: the file is damaged near {f.tell() / rate:.1f} s ({exc})") from None


def audio_seconds(path: str | Path) -> float:
    """Duration from the header (no decoding)."""
    with _open(Path(path)) as f:
        return f.frames / f.samplerate


def read_audio(path: str | Path, target_rate: int = TARGET_RATE, allow_silence: bool = False) -> np.ndarray:
    """A whole (short) file -> int16 mono samples at ``target_rate``. Every failure is an AudioFileError.

    Long recordings should go through :func:`iter_audio` (or :func:`edgekit.listen.listen_file`).
    """
    blocks = list(iter_audio(path, target_rate))
    pcm = np.concatenate(blocks) if blocks else np.zeros(0, np.int16)
    if pcm.size == 0:
        raise AudioFileError(f"{path}: the file holds no samples")
    if not allow_silence and not np.any(pcm):
        raise AudioFileError(f"{path}: the recording is digital silence (all samples zero); nothing to classify")
    return pcm
