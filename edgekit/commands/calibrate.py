"""edgekit calibrate: thresholds for the config's rules from the room's own background audio."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

HELP = "choose each rule's enter/release/smoothing/hold for a false-alarm budget on your own background audio"


def add_arguments(p) -> None:
    p.add_argument("--config", required=True, help="the daemon's TOML config")
    p.add_argument("--background", required=True, nargs="+", metavar="AUDIO|DIR",
                   help="recordings of the room with none of the rules' sounds (minutes to hours)")
    p.add_argument("--examples", action="extend", nargs="+", default=[], metavar="RULE=DIR",
                   help="clips of a rule's sound, mixed into the background at --snr to measure recall")
    p.add_argument("--from-reviews", action="store_true",
                   help="also use the status page's reviews: false-alarm clips join the background, clips "
                        "reviewed correct join their rule's examples")
    p.add_argument("--target-fa-per-hour", type=float, default=1.0,
                   help="false alarms per hour allowed per rule (default 1); needs >= 1/N hours of background")
    p.add_argument("-o", "--output", metavar="NEW.toml", help="write a copy of the config with the new values "
                   "(comments kept); default: print the TOML to paste")
    p.add_argument("--snr", default="0,20", help="SNR range in dB for the examples (default 0,20)")
    p.add_argument("--seed", type=int, default=0, help="seed for mixing the examples")
    p.add_argument("--hop", type=float, help="window hop in seconds (default: the config's hop_seconds)")
    p.add_argument("--json", metavar="OUT", help="write the fitted values and their measures as JSON")
    p.add_argument("--cache", metavar="DIR", help="keep each file's scores here and reuse them")


def _pair(text: str, what: str) -> tuple[float, float]:
    from edgekit.errors import ConfigError

    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        raise ConfigError(f"{what} {text!r}: write LOW,HIGH (e.g. 0,20)") from None
    return min(a, b), max(a, b)


def run(args) -> int:
    from edgekit.daemon.config import load_config
    from edgekit.errors import CalibrationError, EvaluationError
    from edgekit.evaluate.calibrate import check_background, fit_rule, toml_snippet, write_config
    from edgekit.evaluate.runner import labels_for, model_for, parse_map, scores_for
    from edgekit.evaluate.soundscape import MixSpec, audio_files, build

    examples = parse_map(args.examples)
    config = load_config(args.config)
    names = {r.name for r in config.rules}
    if not names:
        raise EvaluationError("the config has no [[rules]] to calibrate")
    unknown = sorted(set(examples) - names)
    if unknown:
        raise EvaluationError(f"--examples for rules the config does not have: {', '.join(unknown)}")
    files = [str(f) for b in args.background for f in audio_files(b)]
    if not files:
        raise CalibrationError("no background audio found in " + ", ".join(args.background))
    confirmed: dict = {}
    if args.from_reviews:
        from edgekit.web.reviews import reviewed_clips

        reviewed = reviewed_clips(config)
        print(reviewed.describe())
        files += [str(p) for p in reviewed.all_false_alarms()]
        confirmed = {rule: paths for rule, paths in reviewed.confirmed.items() if rule in names}
    from edgekit.audio.background import audible_seconds_of_files

    # Before any model time is spent; digital silence does not count (edgekit.audio.background).
    hours = audible_seconds_of_files(files) / 3600
    check_background(hours, args.target_fa_per_hour)
    model = model_for(config, args.hop)
    config = load_config(args.config, labels=model.labels)
    background = [scores_for(f, model, config, args.cache)[0] for f in files]
    ex_scores, reference, clips = None, [], {}
    with tempfile.TemporaryDirectory() as tmp:
        if examples or confirmed:
            from edgekit.evaluate.annotations import Annotation

            clips = {rule: [Path(p) for p in audio_files(d)] for rule, d in examples.items()}
            for rule, paths in confirmed.items():
                clips.setdefault(rule, []).extend(paths)
            empty = [r for r, c in clips.items() if not c]
            if empty:
                raise EvaluationError(f"no audio clips for {', '.join(empty)}")
            mix = build(clips, files, Path(tmp) / "examples.wav",
                        MixSpec(snr=_pair(args.snr, "--snr"), gap=(2.0, 6.0), seed=args.seed))
            ex_scores = scores_for(mix.path, model, config)[0]
            reference = [Annotation("examples", e.onset, e.offset, e.label) for e in mix.events]
    fitted = {}
    for rule in config.rules:
        ref = [e for e in reference if e.label == rule.name]
        fitted[rule.name] = fit_rule(rule, labels_for(config, model), background, args.target_fa_per_hour,
                                     ex_scores if ref else None, ref)
    print(f"{'rule':<18} {'enter':>5} {'release':>7} {'smoothing':>10} {'hold':>5} {'FA':>3} {'new/h':>5} "
          f"{'recall':>6} {'mixtures':>8}")
    for name, f in fitted.items():
        r, m = f.rule, f.examples
        rec = "-" if m is None or m.recall is None else f"{m.recall:.2f}"
        sm = r.smoothing if r.smoothing != "k_of_n" else f"{r.k}of{r.n}"
        sm = sm if r.smoothing != "mean" else f"mean{r.n}"
        print(f"{name[:18]:<18} {r.enter:>5.2f} {r.release:>7.3f} {sm:>10} {r.hold:>5g} {f.false_alarms:>3} "
              f"{f.expected_per_hour:>5.2f} {rec:>6} {m.events if m else 0:>8}")
    print(f"fitted on {hours * 60:.1f} min of audible background; FA: false alarms kept on it; new/h: about what to "
          f"expect an hour on new audio of the room, (FA + 1)/hours; recall on the example clips mixed into it at "
          f"{args.snr} dB SNR (each clip several times)")
    note = (f"thresholds calibrated by edgekit calibrate: target {args.target_fa_per_hour:g} false alarms per hour per "
            f"rule,\non {hours * 60:.1f} min of audible background ({len(files)} files). Expected:")
    for name, f in fitted.items():
        m = f.examples
        n_clips = len(clips.get(name, ())) if examples else 0
        note += (f"\n  {name}: about {f.expected_per_hour:.2f} false alarms/h on new audio of that room "
                 f"({f.false_alarms} on it)"
                 + (f", recall {m.recall:.2f} on {m.events} mixtures of {n_clips} clip{'s' if n_clips != 1 else ''} "
                    f"at {args.snr} dB SNR"
                    if m is not None and m.recall is not None else ", recall not measured (no --examples)"))
    if args.output:
        text = Path(args.config).read_text()
        Path(args.output).write_text(write_config(text, fitted, note))
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        print("\n# paste into the config's [[rules]] (other keys unchanged):\n" + toml_snippet(fitted))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"target_fa_per_hour": args.target_fa_per_hour, "background_hours": hours,
                       "rules": {n: f.as_dict() for n, f in fitted.items()}}, fh, indent=2)
    return 0
