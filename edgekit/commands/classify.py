"""edgekit classify: score recordings with a YAMNet-style model."""

from __future__ import annotations

import json
import sys

from edgekit.errors import AudioError, ConfigError, EdgekitError
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
    p.add_argument("--json", action="store_true", help="one JSON object per file on stdout")


def run(args) -> int:
    from edgekit.audio.files import read_audio
    from edgekit.classify import classify_pcm
    from edgekit.models.model import load_model

    if args.top < 1:
        raise ConfigError("--top must be at least 1")
    params = FeatureParams().with_hop(args.hop)
    model = load_model(args.model, args.device, labels=args.labels, fallback=args.fallback, params=params)
    failures = 0
    for path in args.files:
        try:
            pcm = read_audio(path)
            windows = classify_pcm(model, pcm, params, args.frontend)
        except (AudioError, ConfigError) as exc:
            failures += 1
            print(f"edgekit: error: {exc}", file=sys.stderr)
            if isinstance(exc, ConfigError):
                return 2
            continue
        if args.json:
            print(json.dumps(_as_json(path, model, windows, args), ensure_ascii=False))
        else:
            _print_timeline(path, model, windows, args.top, len(pcm) / params.sample_rate_hz)
        sys.stdout.flush()
    return 1 if failures else 0


def _as_json(path, model, windows, args) -> dict:
    return {
        "file": str(path),
        **model.describe(),
        "frontend": (args.frontend or "float") if model.kind == "log-mel" else None,
        "hop": args.hop,
        "windows": [
            {
                "start": round(w.start, 3),
                "end": round(w.end, 3),
                "top": [{"index": i, "label": model.labels[i], "score": round(s, 6)} for i, s in w.top(args.top)],
            }
            for w in windows
        ],
    }


def _print_timeline(path, model, windows, k, seconds) -> None:
    print(f"{path}  ({seconds:.2f} s, {len(windows)} windows, {model.path.name} on {model.device})")
    for w in windows:
        tops = "  ".join(f"{model.labels[i]} {s:.2f}" for i, s in w.top(k))
        print(f"  {w.start:7.2f}-{w.end:7.2f} s  {tops}")
