"""Example recordings: checks, the active part of each, and augmented copies.

A user records a doorbell with a second of room before and after it; the windows that hold the
ring are the positives, the rest is room. Activity is found from 10 ms frame energies relative to
the clip's own floor and peak, so it needs no absolute level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ExamplesError
from ..params import FeatureParams

FRAME = 160  # 10 ms at 16 kHz
SILENT_DBFS = -60.0  # peak frame level below which a recording holds nothing usable
STEADY_DB = 10.0  # peak minus floor below which the whole clip is taken as the sound (hum, motor)


@dataclass(frozen=True)
class Example:
    name: str
    pcm: np.ndarray  # int16
    active: np.ndarray  # [samples] bool: where the sound is

    @property
    def active_seconds(self) -> float:
        return float(self.active.sum()) / 16000


def frame_db(pcm: np.ndarray) -> np.ndarray:
    n = len(pcm) // FRAME
    x = pcm[: n * FRAME].astype(np.float64).reshape(n, FRAME) / 32768.0
    return 10 * np.log10(np.mean(x * x, axis=1) + 1e-12)


def activity(pcm: np.ndarray) -> np.ndarray:
    """[samples] bool: frames within 30 dB of the peak and 10 dB above the floor, widened by 50 ms."""
    db = frame_db(pcm)
    mask = np.ones(len(pcm), bool)
    if not len(db):
        return mask
    floor, peak = np.percentile(db, 10), db.max()
    if peak - floor < STEADY_DB:
        return mask
    on = db >= max(peak - 30.0, floor + STEADY_DB)
    on = np.convolve(on.astype(float), np.ones(11), mode="same") > 0  # widen by 5 frames each side
    mask[:] = False
    mask[: len(on) * FRAME] = np.repeat(on, FRAME)
    return mask


def check_examples(recordings: list[tuple[str, np.ndarray]], params: FeatureParams = FeatureParams()) -> list[Example]:
    """Examples with their active parts; every unusable file is named, with what to record instead."""
    if not recordings:
        raise ExamplesError("no example recordings: pass --examples with a few clips of the sound (WAV/FLAC/Ogg)")
    problems, examples = [], []
    for name, pcm in recordings:
        pcm = np.asarray(pcm, np.int16)
        seconds = len(pcm) / params.sample_rate_hz
        if len(pcm) < params.patch_samples:
            problems.append(f"{name}: {seconds:.2f} s is shorter than one {params.patch_samples / params.sample_rate_hz:.3f} s "
                            "window; record at least 2 s: the sound with a little of the room before and after")
            continue
        db = frame_db(pcm)
        if not len(db) or db.max() < SILENT_DBFS:
            level = db.max() if len(db) else -math.inf
            problems.append(f"{name}: silent (loudest 10 ms at {level:.0f} dBFS); check the microphone and its gain, "
                            "and record the sound itself, close enough to be clearly heard")
            continue
        examples.append(Example(name, pcm, activity(pcm)))
    if problems:
        raise ExamplesError("unusable examples:\n  " + "\n  ".join(problems))
    return examples


def positive_windows(active: np.ndarray, starts: np.ndarray, params: FeatureParams = FeatureParams(),
                     min_fraction: float = 0.5) -> np.ndarray:
    """[n] bool: windows that hold at least ``min_fraction`` of the sound (or of a window, if longer).

    A sound spread thinly over a long clip (a clock's ticks) fills no window that much: then the
    windows holding nearly as much of it as the best one are taken.
    """
    rate, length = params.sample_rate_hz, params.patch_samples
    cum = np.concatenate([[0], np.cumsum(active)])
    total = cum[-1]
    lo = np.clip(np.round(starts * rate).astype(int), 0, len(active))
    hi = np.clip(lo + length, 0, len(active))
    inside = cum[hi] - cum[lo]
    if not len(inside) or inside.max() <= 0:
        return np.zeros(len(inside), bool)
    need = min(min_fraction * min(length, total), 0.8 * inside.max())
    return inside >= need


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x.astype(np.float64))))) if len(x) else 0.0


def augment(example: Example, background: list[np.ndarray], rng: np.random.Generator, *,
            snr_db=(0.0, 20.0), gain_db=(-12.0, 6.0), max_shift: float = 0.5) -> tuple[np.ndarray, np.ndarray, int]:
    """One copy of the example: shifted in time, mixed into the room at a random SNR, at a random gain.

    The SNR is measured on the example's active part, so a short knock in a long clip is mixed at
    the level it is heard at. Returns the int16 mix, its activity mask and which background
    recording went into it (-1 for none).
    """
    shift = int(rng.uniform(0, max_shift) * 16000)
    n = len(example.pcm) + shift
    sig = np.zeros(n)
    sig[shift:] = example.pcm
    active = np.zeros(n, bool)
    active[shift:] = example.active
    which = -1
    if background:
        which = int(rng.integers(len(background)))
        bg = background[which].astype(np.float64)
        if len(bg) < n:
            bg = np.tile(bg, n // max(len(bg), 1) + 1)
        start = int(rng.integers(0, len(bg) - n + 1))
        bg = bg[start: start + n]
        s_rms, b_rms = rms(sig[active]), rms(bg)
        if b_rms > 0 and s_rms > 0:
            snr = rng.uniform(*snr_db)
            sig = sig + bg * (s_rms / b_rms) / (10 ** (snr / 20))
    sig *= 10 ** (rng.uniform(*gain_db) / 20)
    peak = np.max(np.abs(sig)) if n else 0.0
    if peak > 32767:
        sig *= 32767 / peak  # never clip: a clipped ring is not the ring
    return np.round(sig).astype(np.int16), active, which
