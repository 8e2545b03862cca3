"""Annotated soundscapes, as Scaper builds them: target clips mixed into background recordings.

The background runs end to end (files in a seeded order, each faded in and out over 20 ms so a
join is not a click); each target clip is trimmed to its active part (frames within ``trim_db``
of its loudest), placed after a random gap and mixed at a signal-to-noise ratio drawn from
``snr``, relative to the background's RMS over the event's own span. Labels come round in a
shuffled order each round, so every label gets nearly the same number of events. The same seed
gives the same audio and annotations, sample for sample.

Memory is bounded by a 10 s block and the trimmed clips, however long the background: the mix
is planned from a 10 ms energy profile of the background, then rendered block by block.
If the loudest sums could clip, everything is scaled down by one factor (SNRs unchanged).
"""

from __future__ import annotations

import csv
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import soundfile as sf

from edgekit.audio.files import iter_audio, read_audio
from edgekit.errors import AudioFileError, EvaluationError

RATE = 16000
FRAME = 160  # 10 ms energy frames for the plan
BLOCK_SECONDS = 10.0  # background read and written this much at a time
AUDIO_EXT = (".wav", ".flac", ".ogg", ".mp3")


@dataclass(frozen=True)
class MixSpec:
    seconds: float | None = None  # None: every background file once
    snr: tuple[float, float] = (0.0, 20.0)  # dB, drawn uniformly
    gap: tuple[float, float] = (4.0, 16.0)  # seconds of background before each event
    seed: int = 0
    trim_db: float = 25.0
    fade: float = 0.02


@dataclass(frozen=True)
class MixedEvent:
    onset: float
    offset: float
    label: str
    snr_db: float
    source: str


@dataclass(frozen=True)
class Soundscape:
    path: str
    seconds: float
    events: tuple[MixedEvent, ...]
    scale: float  # the anti-clipping factor applied to the whole mix (1.0: none needed)


def audio_files(folder: str | Path) -> list[Path]:
    p = Path(folder)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise EvaluationError(f"{p}: no such file or folder")
    return sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_EXT and f.is_file())


def target_clips(folder: str | Path, labels: Sequence[str] | None = None) -> dict[str, list[Path]]:
    """``folder/<label>/*.flac`` -> {label: clips}; ``labels`` picks some."""
    root = Path(folder)
    if not root.is_dir():
        raise EvaluationError(f"{root}: no such folder of target clips (expected {root}/<label>/*.wav)")
    found = {d.name: audio_files(d) for d in sorted(root.iterdir()) if d.is_dir()}
    found = {k: v for k, v in found.items() if v}
    if labels:
        missing = [lab for lab in labels if lab not in found]
        if missing:
            raise EvaluationError(f"{root}: no clips for {', '.join(missing)} (folders: {', '.join(found)})")
        found = {lab: found[lab] for lab in labels}
    if not found:
        raise EvaluationError(f"{root}: no audio in any <label>/ subfolder")
    return found


def active_part(x: np.ndarray, trim_db: float = 25.0) -> np.ndarray:
    """The span from the first to the last 20 ms frame within ``trim_db`` of the loudest frame."""
    n = 320
    frames = len(x) // n
    if frames < 2:
        return x
    e = (x[: frames * n].astype(np.float64).reshape(frames, n) ** 2).mean(axis=1)
    db = 10 * np.log10(e + 1e-12)
    on = np.flatnonzero(db >= db.max() - trim_db)
    a, b = max(0, (on[0] - 1) * n), min(len(x), (on[-1] + 2) * n)
    y = x[a:b].astype(np.float32).copy()
    ramp = min(80, len(y) // 4)  # 5 ms: no click where the clip was cut
    if ramp:
        w = np.linspace(0, 1, ramp, dtype=np.float32)
        y[:ramp] *= w
        y[-ramp:] *= w[::-1]
    return y


def _float(path: Path) -> np.ndarray:
    return read_audio(path, allow_silence=True).astype(np.float32) / 32768.0


def _faded(x: np.ndarray, fade: float) -> np.ndarray:
    k = min(int(fade * RATE), len(x) // 2)
    if k:
        w = np.linspace(0, 1, k, dtype=np.float32)
        x[:k] *= w
        x[-k:] *= w[::-1]
    return x


def _background(path: Path, fade: float, limit: int | None) -> Iterator[np.ndarray]:
    """A background file as float blocks, faded in and out (a join is no click), at most ``limit``
    samples (cut without a fade: that is the soundscape's end). Memory: one block."""
    k = int(fade * RATE)
    ramp = np.linspace(0, 1, k, dtype=np.float32)
    held = np.zeros(0, np.float32)
    pos = 0
    for block in iter_audio(path, block_seconds=BLOCK_SECONDS):
        held = np.concatenate([held, block.astype(np.float32) / np.float32(32768.0)])
        if limit is not None and pos + len(held) >= limit:
            held = held[: limit - pos]
            if pos == 0 and k and len(held) > 2 * k:
                held[:k] *= ramp
            yield held
            return
        if len(held) > 2 * k:  # all but the last k samples, kept back for the fade-out
            out, held = held[: len(held) - k], held[len(held) - k:]
            if pos == 0 and k:
                out[:k] *= ramp
            yield out
            pos += len(out)
    if pos == 0:
        yield _faded(held, fade)
    elif len(held):
        held[-k:] *= ramp[::-1]
        yield held


def build(targets: str | Path | dict[str, list[Path]], background: Sequence[str | Path], out: str | Path, spec: MixSpec = MixSpec(),
          labels: Sequence[str] | None = None, with_events: bool = True, tsv: str | Path | None = None) -> Soundscape:
    """Write the soundscape to ``out`` (.flac or .wav) and its annotations to ``tsv`` (DCASE TSV)."""
    rng = np.random.default_rng(spec.seed)
    clips = dict(targets) if isinstance(targets, dict) else target_clips(targets, labels)
    bg_files = [f for b in background for f in audio_files(b)]
    if not bg_files:
        raise EvaluationError(f"no background audio (.wav, .flac, .ogg, .mp3) in {', '.join(map(str, background))}")
    order = [bg_files[i] for i in rng.permutation(len(bg_files))]

    # Pass 1: the background's order and length, and its energy/peak per 10 ms, block by block.
    plan: list[tuple[Path, int, int | None]] = []  # file, samples (padded to whole frames), read limit
    energy: list[np.ndarray] = []
    peaks: list[np.ndarray] = []
    total = 0
    limit = None if spec.seconds is None else int(spec.seconds * RATE)
    for f in order:
        left = None if limit is None else limit - total
        if left is not None and left <= 0:
            break
        e_parts, p_parts, carry, n = [], [], np.zeros(0, np.float32), 0
        try:
            for x in _background(f, spec.fade, left):
                x = np.concatenate([carry, x])
                whole = len(x) - len(x) % FRAME
                fr = x[:whole].reshape(-1, FRAME).astype(np.float64)
                e_parts.append((fr ** 2).sum(axis=1))
                p_parts.append(np.abs(fr).max(axis=1, initial=0.0))
                carry, n = x[whole:], n + whole
        except AudioFileError:
            continue  # unreadable backgrounds are left out, as if not there
        if len(carry):  # zero-padded to a whole frame: frames never straddle files
            fr = np.concatenate([carry, np.zeros(FRAME - len(carry), np.float32)]).astype(np.float64)
            e_parts.append(np.array([np.sum(fr ** 2)]))
            p_parts.append(np.array([np.max(np.abs(fr))]))
            n += FRAME
        if n:
            plan.append((f, n, left))
            energy += e_parts
            peaks += p_parts
            total += n
    if not plan:
        raise EvaluationError("no readable background audio")
    cum = np.concatenate([[0.0], np.cumsum(np.concatenate(energy))])
    peak = np.concatenate(peaks)

    def bg_power(a: int, b: int) -> float:
        ea, eb = np.interp([a / FRAME, b / FRAME], np.arange(len(cum)), cum)
        return max((eb - ea) / max(b - a, 1), 1e-12)  # digital silence: SNR against -120 dBFS

    # Pass 2: the events.
    decks = {lab: [] for lab in clips}
    round_: list[str] = []
    events: list[tuple[int, np.ndarray, float, MixedEvent]] = []
    t = 0
    while True:
        t += int(rng.uniform(*spec.gap) * RATE)
        if not round_:
            round_ = [list(clips)[i] for i in rng.permutation(len(clips))]
        lab = round_.pop(0)
        if not decks[lab]:
            decks[lab] = [clips[lab][i] for i in rng.permutation(len(clips[lab]))]
        src = decks[lab].pop(0)
        snr = float(rng.uniform(*spec.snr))
        if t >= total:
            break
        try:
            y = active_part(_float(src), spec.trim_db)
        except AudioFileError:
            continue
        if t + len(y) > total or not np.any(y):
            break
        gain = float(np.sqrt(bg_power(t, t + len(y)) * 10 ** (snr / 10) / np.mean(y.astype(np.float64) ** 2)))
        events.append((t, y, gain, MixedEvent(t / RATE, (t + len(y)) / RATE, lab, snr, src.name)))
        t += len(y)

    loudest = float(peak.max())
    for t0, y, gain, _ in events:
        span = peak[t0 // FRAME:(t0 + len(y)) // FRAME + 1]
        loudest = max(loudest, float(span.max()) + gain * float(np.abs(y).max()))
    scale = min(1.0, 0.98 / loudest) if loudest > 0 else 1.0

    # Pass 3: render block by block, in the same order.
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fmt = "WAV" if out.suffix.lower() == ".wav" else "FLAC"
    pos = 0

    def write(w, x: np.ndarray) -> None:
        nonlocal pos
        if with_events:
            for t0, y, gain, _ in events:
                a, b = max(t0, pos), min(t0 + len(y), pos + len(x))
                if a < b:
                    x[a - pos:b - pos] += gain * y[a - t0:b - t0]
        w.write(np.clip(x * scale, -1.0, 32767 / 32768))
        pos += len(x)

    # Written beside the target and renamed into place: a reader (another run sharing a cache, a
    # scorer) never sees half a file, and a failed build leaves the previous one as it was.
    with _replacing(out) as part:
        with sf.SoundFile(str(part), "w", RATE, 1, subtype="PCM_16", format=fmt) as w:
            for f, n, left in plan:
                start = pos
                for x in _background(f, spec.fade, left):
                    write(w, x[: start + n - pos])
                if pos < start + n:
                    write(w, np.zeros(start + n - pos, np.float32))
    mixed = tuple(e for *_, e in events) if with_events else ()
    if tsv is not None:
        write_tsv(tsv, out.name, mixed)
    return Soundscape(str(out), total / RATE, mixed, scale)


@contextmanager
def _replacing(path: Path):
    """A temporary name beside ``path``, renamed over it when the block succeeds, removed otherwise."""
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        yield part
        os.replace(part, path)
    finally:
        part.unlink(missing_ok=True)


def write_tsv(path: str | Path, filename: str, events: Sequence[MixedEvent]) -> None:
    with _replacing(Path(path)) as part, open(part, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["filename", "onset", "offset", "event_label", "snr_db", "source"])
        if not events:
            w.writerow([filename])
        for e in events:
            w.writerow([filename, f"{e.onset:.4f}", f"{e.offset:.4f}", e.label, f"{e.snr_db:.2f}", e.source])
