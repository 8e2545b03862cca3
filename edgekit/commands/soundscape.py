"""edgekit soundscape: mix target clips into background recordings, with a DCASE TSV of what is where."""

from __future__ import annotations

HELP = "build an annotated test soundscape (Scaper-style) from target clips and background recordings"


def add_arguments(p) -> None:
    p.add_argument("--targets", required=True, help="folder of <label>/ subfolders of clips")
    p.add_argument("--background", required=True, nargs="+", metavar="AUDIO|DIR", help="background recordings")
    p.add_argument("-o", "--output", required=True, help="soundscape audio to write (.flac or .wav)")
    p.add_argument("--tsv", help="annotations to write (default: OUTPUT with .tsv)")
    p.add_argument("--labels", help="comma-separated labels to use (default: every subfolder)")
    p.add_argument("--minutes", type=float, help="length (default: every background file once)")
    p.add_argument("--snr", default="0,20", help="SNR range in dB relative to the background (default 0,20)")
    p.add_argument("--gap", default="4,16", help="seconds of background between events (default 4,16)")
    p.add_argument("--seed", type=int, default=0, help="same seed, same soundscape")
    p.add_argument("--background-only", action="store_true",
                   help="write the same background without the events (for false alarms on background alone)")


def run(args) -> int:
    from pathlib import Path

    from edgekit.evaluate.soundscape import MixSpec, build
    from .calibrate import _pair

    spec = MixSpec(seconds=args.minutes * 60 if args.minutes else None, snr=_pair(args.snr, "--snr"),
                   gap=_pair(args.gap, "--gap"), seed=args.seed)
    tsv = args.tsv or str(Path(args.output).with_suffix(".tsv"))
    labels = [s.strip() for s in args.labels.split(",")] if args.labels else None
    s = build(args.targets, args.background, args.output, spec, labels, not args.background_only, tsv)
    counts: dict[str, int] = {}
    for e in s.events:
        counts[e.label] = counts.get(e.label, 0) + 1
    print(f"wrote {s.path} ({s.seconds / 60:.1f} min, {len(s.events)} events"
          + (f", scaled by {s.scale:.2f} to avoid clipping" if s.scale < 1 else "") + f") and {tsv}")
    for lab, n in sorted(counts.items()):
        print(f"  {lab}: {n}")
    return 0
