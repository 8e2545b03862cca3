"""edgekit classify: score recordings with a YAMNet-style model."""

from __future__ import annotations

import json
import sys

import numpy as np

from edgekit.errors import AudioError, AudioFileError, ConfigError
from edgekit.params import FeatureParams

HELP = "classify audio files with a YAMNet-style model (timeline of top labels, or JSON)"


def add_arguments(p) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="WAV/FLAC/Ogg files, any rate and channel count")
    p.add_argument("--model", default="yamnet", help="zoo name or .tflite path (default: yamnet)")
    p.add_argument("--device", default="cpu", help="cpu, cpu:N, usb, usb:N, pci, pci:N (default: cpu)")
    p.add_argument("--fallback", choices=["cpu"], help="if the Edge TPU is unusable, warn and use the CPU model")
    p.add_argument("--labels", help="class map CSV or labels .txt (default: the model's own)")
    p.add_argument("--frontend", choices=["float", "fixed"],
                   help="log-mel models: float reference or integer fixed-point front end (default: float)")
    p.add_argument("--hop", type=float, default=0.48, help="seconds between windows, a multiple of 0.01 (default 0.48)")
    p.add_argument("--top", type=int, default=3, help="labels shown per window (default 3)")
    p.add_argument("--sounds", action="append", default=[], metavar="NAME[,NAME...]",
                   type=lambda text: [n for n in text.split(",") if n],
                   help="custom sounds (edgekit sounds learn) to score beside the model's labels; repeatable")
    p.add_argument("--json", action="store_true", help="one JSON object per file on stdout")


def run(args) -> int:
    from edgekit.listen import Listener
    from edgekit.models.model import WAVEFORM, load_model

    if args.top < 1:
        raise ConfigError("--top must be at least 1")
    params = FeatureParams().with_hop(args.hop)
    model = load_model(args.model, args.device, labels=args.labels, fallback=args.fallback, params=params,
                       embedding=any(args.sounds))
    args.sounds = [n for names in args.sounds for n in names]
    args.loaded_sounds = _sounds(args.sounds, model)
    if model.kind == WAVEFORM and args.frontend is not None:
        print(f"edgekit: error: {model.path.name} computes its own features from the waveform; --frontend "
              "applies to log-mel models such as yamnet_spectra_in.tflite", file=sys.stderr)
        return 2
    Listener(model, args.frontend, embedding=bool(args.sounds))  # refuses a model that is not an audio model before any file is read
    failures = 0
    for path in args.files:
        out = None
        try:
            blocks = _audible_blocks(path, model.params.sample_rate_hz)  # refuses silence before any output
            out = _JsonOut(path, model, args) if args.json else _TextOut(path, model, args.top, args.loaded_sounds)
            for window in _windows(model, blocks, args.frontend, bool(args.sounds)):
                out.window(window)
            out.close()
        except AudioError as exc:
            if out is not None:  # damaged part-way: what was printed stays, marked as cut short
                out.close(error=str(exc))
            failures += 1
            print(f"edgekit: error: {exc}", file=sys.stderr)
            continue
        sys.stdout.flush()
    return 1 if failures else 0


def _windows(model, blocks, frontend, embedding: bool):
    from edgekit.listen import Listener

    listener = Listener(model, frontend, embedding=embedding)
    for block in blocks:
        yield from listener.push(block)
    yield from listener.flush()


def _sounds(names, model) -> list:
    """The custom sounds asked for, checked against the model they were learned on."""
    from edgekit.detect.sound_store import load_sounds

    return list(load_sounds(names, model))


def _audible_blocks(path, rate: int):
    """The file's blocks, decoded once (so each warning about it is printed once); an empty or
    all-zero file is refused before anything is printed for it.

    Decoding stops at the first non-zero block; the silence before it is kept as a count, not as
    samples, so a long quiet lead-in costs no memory.
    """
    from edgekit.audio.files import iter_audio

    blocks = iter_audio(path, rate)
    quiet, first = 0, None
    for block in blocks:
        if block.any():
            first = block
            break
        quiet += len(block)
    if first is None:
        if not quiet:
            raise AudioFileError(f"{path}: the file holds no samples")
        raise AudioFileError(f"{path}: the recording is digital silence (all samples zero); nothing to classify")

    def replay():
        step = 10 * rate
        for at in range(0, quiet, step):
            yield np.zeros(min(step, quiet - at), np.int16)
        yield first
        yield from blocks

    return replay()


class _TextOut:
    """A timeline printed as windows arrive: a 3-hour file never sits in memory."""

    def __init__(self, path, model, k: int, sounds=()):
        from edgekit.audio.files import audio_seconds

        from edgekit.detect.context import SoundScorer

        self.model, self.k, self.sounds, self.scorer = model, k, sounds, SoundScorer(sounds)
        print(f"{path}  ({audio_seconds(path):.2f} s, {model.path.name} on {model.device})")

    def window(self, w) -> None:
        tops = "  ".join(f"{self.model.labels[i]} {s:.2f}" for i, s in w.top(self.k))
        mine = "".join(f"  | {snd.name} {x:.2f}" for snd, x in zip(self.sounds, self.scorer(w)))
        print(f"  {w.start:7.2f}-{w.end:7.2f} s  {tops}{mine}")

    def close(self, error: str | None = None) -> None:
        if error:
            print(f"  (stopped: {error})")


class _JsonOut:
    """One JSON object per file, one line, written window by window (same document as a whole dump)."""

    def __init__(self, path, model, args):
        head = {"file": str(path), **model.describe(),
                "frontend": (args.frontend or "float") if model.kind == "log-mel" else None, "hop": args.hop}
        from edgekit.detect.context import SoundScorer

        self.model, self.k, self.first, self.sounds = model, args.top, True, args.loaded_sounds
        self.scorer = SoundScorer(self.sounds)
        sys.stdout.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "windows": [')

    def window(self, w) -> None:
        item = {"start": round(w.start, 3), "end": round(w.end, 3),
                "top": [{"index": i, "label": self.model.labels[i], "score": round(s, 6)} for i, s in w.top(self.k)]}
        if self.sounds:
            item["sounds"] = {snd.name: round(float(x), 6) for snd, x in zip(self.sounds, self.scorer(w))}
        sys.stdout.write(("" if self.first else ", ") + json.dumps(item, ensure_ascii=False))
        self.first = False

    def close(self, error: str | None = None) -> None:
        tail = f', "error": {json.dumps(error, ensure_ascii=False)}' if error else ""
        sys.stdout.write("]" + tail + "}\n")
