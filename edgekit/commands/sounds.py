"""``edgekit sounds learn|list|show|test|remove``: sounds taught from a few example clips."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import AudioError, ExamplesError, SoundError

HELP = "custom sounds: learn one from a few clips, list, show, test on recordings, remove"
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus"}


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="sounds_command", metavar="ACTION")
    sub.required = True

    p = sub.add_parser("learn", help="learn a sound from example clips (and a recording of the room)")
    p.add_argument("name", help="the sound's name, used in rules' sounds = [...] (e.g. doorbell)")
    p.add_argument("--from-reviews", metavar="CONFIG",
                   help="also use the status page's reviews of this daemon config: clips of --rule (default: "
                        "NAME) reviewed correct are examples, every false-alarm clip is background")
    p.add_argument("--rule", help="with --from-reviews: the rule whose confirmed clips are examples (default: NAME)")
    p.add_argument("--examples", nargs="+", default=[], metavar="FILE|DIR",
                   help="clips of the sound, each with a little of the room before and after it")
    p.add_argument("--background", nargs="+", default=[], metavar="FILE|DIR",
                   help="recordings of the room without the sound: negatives, and what the threshold is "
                        "calibrated on (1/N hours of audible room for --fa-per-hour N)")
    p.add_argument("--model", default="yamnet_spectra_in",
                   help="the model the daemon runs (a sound only works with the model it was learned on): zoo "
                        "name or .tflite path (default: yamnet_spectra_in, as in the example config)")
    p.add_argument("--like", nargs="+", default=[], metavar="LABEL",
                   help="YAMNet label(s) the sound resembles (e.g. \"Doorbell\"): their score becomes a feature")
    p.add_argument("--fa-per-hour", type=float, default=1.0,
                   help="false alarms per hour the threshold allows on the background (default 1)")
    p.add_argument("--context", default="0", metavar="SECONDS|auto",
                   help="seconds of windows pooled (mean and max of the embeddings) into each feature, for "
                        "sounds that are patterns over seconds (beeps, knocks): 0 = one window (default), "
                        "up to 6, or 'auto': cross-validation on your clips and room picks 0 or 2")
    p.add_argument("--no-bank", action="store_true", help="do not use the shipped negatives (everyday sounds)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--dir", help="write the sound here (default: $EDGEKIT_SOUNDS_DIR, the service's "
                                     "state directory, or the user's data directory)")
    _service_flag(where, "write it where the service reads sounds (/var/lib/edgekit/sounds; run with sudo)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(_sounds=_learn)

    p = sub.add_parser("list", help="the sounds found, with their model and threshold")
    _service_flag(p, "the service's sounds only (/var/lib/edgekit/sounds)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(_sounds=_list)

    p = sub.add_parser("show", help="a sound's model, threshold and training summary")
    p.add_argument("name", help="a learned sound (see `edgekit sounds list`)")
    _service_flag(p, "the service's sound of that name")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(_sounds=_show)

    p = sub.add_parser("test", help="score recordings with a sound: best score and where it is heard")
    p.add_argument("name", help="a learned sound (see `edgekit sounds list`)")
    p.add_argument("files", nargs="+", metavar="FILE|DIR", help="recordings, or folders of them, to score")
    p.add_argument("--model", help="the model the sound was learned on (default: its zoo name)")
    _service_flag(p, "the service's sound of that name")
    p.add_argument("--json", action="store_true", help="one JSON object per file")
    p.set_defaults(_sounds=_test)

    p = sub.add_parser("remove", help="delete a sound")
    p.add_argument("name", help="the learned sound to delete")
    _service_flag(p, "remove the service's sound of that name (run with sudo)")
    p.set_defaults(_sounds=_remove)


def _service_flag(p, text: str) -> None:
    p.add_argument("--service", action="store_true", help=text)


def _dirs(args) -> list[Path] | None:
    """Only the service's folder with --service; else None (every folder, in order)."""
    from ..detect import sound_store

    return [sound_store.SERVICE_SOUNDS_DIR] if getattr(args, "service", False) else None


def run(args) -> int:
    return int(args._sounds(args) or 0)


def audio_files(items: list[str]) -> list[Path]:
    """Files as given; folders searched (recursively) for audio files, in name order."""
    out: list[Path] = []
    for item in items:
        p = Path(item).expanduser()
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_SUFFIXES and f.is_file())
            if not found:
                raise ExamplesError(f"{p}: no audio files (WAV, FLAC, Ogg) in this folder")
            out += found
        elif p.exists():
            out.append(p)
        else:
            raise ExamplesError(f"{p}: no such file or folder")
    return out


def _read_all(paths: list[Path]) -> list[tuple[str, object]]:
    from ..audio.files import read_audio

    out = []
    for p in paths:
        try:
            out.append((str(p), read_audio(p, allow_silence=True)))
        except AudioError as exc:
            raise ExamplesError(str(exc)) from None
    return out


AUTO_CONTEXTS = (0.0, 2.0)  # what --context auto chooses among (benchmarks/README.md: why these)


def _contexts(text: str) -> tuple[float, ...]:
    from ..detect.heads import MAX_CONTEXT_SECONDS

    if text.strip().lower() == "auto":
        return AUTO_CONTEXTS
    try:
        c = float(text)
    except ValueError:
        c = -1.0
    if not 0 <= c <= MAX_CONTEXT_SECONDS:
        raise SoundError(f"--context {text!r}: give seconds from 0 to {MAX_CONTEXT_SECONDS:g}, or auto")
    return (c,)


def _learn(args) -> int:
    from ..sounds.embed import Embedder
    from ..detect.heads import check_name, save_sound
    from ..detect.sound_store import sound_path
    from ..sounds.train import TrainOptions, learn

    check_name(args.name)
    if not args.fa_per_hour > 0:
        raise SoundError("--fa-per-hour must be positive")
    example_files = audio_files(args.examples)
    background_files = audio_files(args.background) if args.background else []
    if args.from_reviews:
        from ..daemon.config import load_config
        from ..web.reviews import reviewed_clips

        reviewed = reviewed_clips(load_config(args.from_reviews))
        print(reviewed.describe(), file=sys.stderr)
        confirmed = reviewed.confirmed.get(args.rule or args.name, [])
        background_files += reviewed.all_false_alarms()
    else:
        reviewed, confirmed = None, []
    if not example_files and not confirmed:
        raise ExamplesError("no examples: give --examples FILE|DIR, or --from-reviews CONFIG with clips of the rule "
                            "reviewed correct on the status page")
    examples = _read_all(example_files)
    for path, pcm in _read_all(confirmed):  # the event's own part of each clip, without its pre- and post-roll
        part = reviewed.parts.get(Path(path))
        if part is not None:
            pcm = pcm[int(part.start * 16000): None if part.end is None else int(part.end * 16000)]
        examples.append((path, pcm))
    background = _read_all(background_files)
    embedder = Embedder(args.model)
    if embedder.note:
        print(f"edgekit: note: {embedder.note}", file=sys.stderr)
    options = TrainOptions(target_fa_per_hour=args.fa_per_hour, contexts=_contexts(args.context))
    sound = learn(args.name, examples, background, embedder, options, like=tuple(args.like), use_bank=not args.no_bank)
    if args.service:
        from ..detect.sound_store import prepare_service_dir

        path = save_sound(sound, sound_path(args.name, prepare_service_dir()))
        path.chmod(0o644)  # read by the service's own (dynamic) user; changed only by root
    else:
        path = save_sound(sound, sound_path(args.name, Path(args.dir).expanduser() if args.dir else None))
    s = sound.summary
    if args.json:
        print(json.dumps({"name": sound.name, "path": str(path), "threshold": sound.threshold, "summary": s}))
        return 0
    print(f"learned {sound.name!r} from {s['examples']} example(s) ({s['positive_windows']} windows with augmentation), "
          f"{s['background_minutes']} min of background and {s['bank_windows']} shipped negatives in {s['fit_seconds']} s")
    fa = s["held_out_fa_per_hour"]
    print(f"  threshold {sound.threshold:.2f} (score), set for <= {s['target_fa_per_hour']:g} false alarm(s)/hour; "
          f"held-out background: {'n/a' if fa != fa else f'{fa:.2f}/hour'}; examples detected: "
          f"{s['examples_detected']}/{s['examples']}")
    if s.get("context_cv"):
        tried = ", ".join(f"{r['context_seconds']:g} s: {r['heard']:.2f}" for r in s["context_cv"])
        print(f"  context {sound.spec.context_seconds:g} s, chosen by cross-validation (held-out clips heard: {tried})")
    elif sound.spec.context_seconds:
        print(f"  context {sound.spec.context_seconds:g} s (embeddings pooled over that long)")
    for note in s.get("notes", []):
        print(f"  note: {note}")
    print(f"  saved to {path}; use it in a rule: sounds = [\"{sound.name}\"]"
          + ("; then: sudo systemctl reload edgekit" if args.service else ""))
    if not args.service and not args.dir:
        print(f"  for the service (it cannot read this folder): sudo edgekit sounds learn {sound.name} --service "
              "--examples ... (the same clips)")
    return 0


def _describe(name: str, path: Path) -> dict:
    from ..detect.sound_file import load_sound_file

    try:
        s = load_sound_file(path)
    except SoundError as exc:
        return {"name": name, "path": str(path), "error": str(exc)}
    return {"name": name, "path": str(path), "model": s.spec.model, "model_sha256": s.spec.model_sha256,
            "threshold": s.threshold, "features": s.spec.features, "like": list(s.spec.stock_labels),
            "hop_seconds": s.spec.hop_seconds, "frontend": s.spec.frontend, "context_seconds": s.spec.context_seconds,
            "summary": s.summary}


def _list(args) -> int:
    from ..detect.sound_store import list_sounds, sound_dirs

    dirs = _dirs(args) or sound_dirs()
    items = [_describe(n, p) for n, p in list_sounds(dirs)]
    if args.json:
        print(json.dumps({"sounds": items, "dirs": [str(d) for d in dirs]}))
        return 0
    if not items:
        print("no custom sounds; looked in: " + ", ".join(map(str, dirs)))
        return 0
    for it in items:
        if "error" in it:
            print(f"{it['name']:20s} BROKEN: {it['error']}")
        else:
            print(f"{it['name']:20s} {it['model']:28s} threshold {it['threshold']:.2f}  {it['path']}")
    return 0


def _show(args) -> int:
    from ..detect.sound_store import find_sound

    info = _describe(args.name, find_sound(args.name, _dirs(args)))
    if "error" in info:
        raise SoundError(info["error"])
    if args.json:
        print(json.dumps(info))
        return 0
    s = info["summary"]
    print(f"{info['name']}  ({info['path']})")
    print(f"  model      {info['model']} (sha256 {info['model_sha256'][:16]}…), {info['frontend']} front end, "
          f"features: {info['features']}" + (f" + {info['like']}" if info["like"] else "")
          + (f", pooled over {info['context_seconds']:g} s" if info["context_seconds"] else ""))
    print(f"  threshold  {info['threshold']:.2f} (calibrated for <= {s.get('target_fa_per_hour', '?')} false alarm(s)/hour "
          f"at a {info['hop_seconds']} s hop)")
    print(f"  trained    {s.get('created', '?')}: {s.get('examples')} examples, {s.get('positive_windows')} positive "
          f"windows, {s.get('background_minutes')} min background, {s.get('bank_windows')} shipped negatives")
    for note in s.get("notes", []):
        print(f"  note       {note}")
    return 0


def _test(args) -> int:
    from ..sounds.embed import Embedder
    from ..detect.sound_store import load_sound

    sound = load_sound(args.name, _dirs(args))
    embedder = Embedder(args.model or Path(sound.spec.model).stem)
    sound.check_model(embedder.model)
    failures = 0
    for path in audio_files(args.files):
        try:
            pcm = _read_all([path])[0][1]
        except ExamplesError as exc:
            failures += 1
            print(f"edgekit: error: {exc}", file=sys.stderr)
            continue
        e = embedder.embed(pcm, sound.spec.hop_seconds)
        scores = sound.score_arrays(e.embeddings, e.scores, e.starts)
        hits = [float(t) for t, s in zip(e.starts, scores) if s >= sound.threshold]
        best = float(scores.max()) if len(scores) else 0.0
        if args.json:
            print(json.dumps({"file": str(path), "sound": sound.name, "best": best, "threshold": sound.threshold,
                              "detected": bool(hits), "windows": [{"start": round(float(t), 3), "score": round(float(s), 4)}
                                                                  for t, s in zip(e.starts, scores)]}))
        else:
            where = ", ".join(f"{t:.2f}" for t in hits[:8]) + (" …" if len(hits) > 8 else "")
            verdict = f"HEARD at {where} s" if hits else "not heard"
            print(f"{path}: best {best:.2f} (threshold {sound.threshold:.2f}) {verdict}")
    return 1 if failures else 0


def _remove(args) -> int:
    from ..detect.sound_store import remove_sound

    print(f"removed {remove_sound(args.name, _dirs(args))}")
    return 0
