"""Read any audio file soundfile can (WAV incl. 24/32-bit and EXTENSIBLE, FLAC, Ogg) as 16 kHz int16 mono."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from edgekit.errors import AudioFileError

TARGET_RATE = 16000


def to_int16(x: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] -> int16, rounded and clipped."""
    return np.clip(np.round(np.asarray(x, np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def to_mono_16k(samples: np.ndarray, rate: int, target_rate: int = TARGET_RATE) -> np.ndarray:
    """[n] or [n, channels] float -> [m] float32 mono at ``target_rate`` (soxr, high quality)."""
    x = np.asarray(samples, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(axis=1, dtype=np.float32)
    if rate != target_rate:
        x = soxr.resample(x, rate, target_rate, quality="HQ").astype(np.float32, copy=False)
    return x


def read_audio(path: str | Path, target_rate: int = TARGET_RATE, allow_silence: bool = False) -> np.ndarray:
    """A file -> int16 mono samples at ``target_rate``. Every failure is an AudioFileError."""
    p = Path(path)
    if not p.exists():
        raise AudioFileError(f"{p}: no such file")
    if p.is_dir():
        raise AudioFileError(f"{p}: is a directory, not an audio file")
    try:
        data, rate = sf.read(str(p), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise AudioFileError(
            f"{p}: cannot read it as audio ({str(exc).strip() or type(exc).__name__}); "
            "WAV, FLAC and Ogg Vorbis/Opus are supported"
        ) from None
    except OSError as exc:
        raise AudioFileError(f"{p}: {exc.strerror or exc}") from None
    if data.size == 0:
        raise AudioFileError(f"{p}: the file holds no samples")
    if not np.all(np.isfinite(data)):
        bad = int(np.count_nonzero(~np.isfinite(data)))
        raise AudioFileError(f"{p}: {bad} samples are NaN or infinite; the recording is corrupt")
    pcm = to_int16(to_mono_16k(data, rate, target_rate))
    if not allow_silence and not np.any(pcm):
        raise AudioFileError(f"{p}: the recording is digital silence (all samples zero); nothing to classify")
    return pcm
