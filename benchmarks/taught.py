"""Sounds taught from a few clips, judged as alarms on the evaluate benchmark's held-out soundscape.

For the issue's four (knock, crying baby, glass break, smoke alarm): `edgekit sounds learn`'s own
``learn`` on k clips of the calibration split (ESC-50 folds 1-3; for smoke alarm its two
calibration recordings, all the data has outside the test) and the calibration background (the
45 min `benchmarks/evaluate.py` calibrates on, so the same false-alarm budget), then the test
soundscape (folds 4-5 mixed into other background at 0-20 dB SNR) and its background alone go
through the daemon's path with the sound in a rule, at the sound's calibrated threshold (what a
config without ``enter`` gets), scored by `evaluate`'s headline. Variants: the head alone, and the
head with the stock label's score as a feature (``--like``). Beside them: the calibrated YAMNet
label on the same scores. Several draws of the clips (the soundscapes are fixed by the seed).

Usage: python benchmarks/taught.py [--k 5] [--draws 3] [--cache DIR] [--out JSON] [--bank NPZ]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import evaluate as bench  # noqa: E402  (benchmarks/evaluate.py: its splits, soundscapes and measures)
from bankswap import use_bank  # noqa: E402
from edgekit.audio.files import read_audio  # noqa: E402
from edgekit.detect.pipeline import labels_with_sounds  # noqa: E402
from edgekit.detect.rules import Rule  # noqa: E402
from edgekit.evaluate.annotations import Annotation  # noqa: E402
from edgekit.evaluate.calibrate import background_hours, fit_rule  # noqa: E402
from edgekit.evaluate.replay import score_file  # noqa: E402
from edgekit.models.model import load_model  # noqa: E402
from edgekit.params import FeatureParams  # noqa: E402
from edgekit.sounds.embed import Embedder  # noqa: E402
from edgekit.sounds.train import TrainOptions, learn  # noqa: E402

LABELS = ("door_wood_knock", "crying_baby", "glass_breaking", "smoke_alarm")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("EDGEKIT_TEST_DATA", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--cache", default=str(Path(tempfile.gettempdir()) / "edgekit-evaluate-bench"))
    ap.add_argument("--out", default=None, help="write the JSON record (and .md beside it) here")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--seed", type=int, default=2026, help="the soundscapes' seed (benchmarks/evaluate.py's)")
    ap.add_argument("--bank", default=None, help="a candidate negatives bank (scripts/make_sounds_bank.py --out)")
    args = ap.parse_args()
    bank = use_bank(args.bank)
    data, cache = Path(args.data), Path(args.cache)
    events = data / "events"
    cache.mkdir(parents=True, exist_ok=True)
    built = bench.soundscapes(events, cache, args.seed)
    _, t_cal = bench.split_targets(events)
    model_path = data / "models" / "yamnet_spectra_in.tflite"
    params = FeatureParams().with_hop(bench.HOP)
    plain = load_model(model_path, params=params)
    sc = {k: bench.scored(plain, Path(b.path), cache) for k, b in built.items()}
    ref = [Annotation("test", e.onset, e.offset, e.label) for e in built["test"].events]
    ref_cal = [Annotation("examples", e.onset, e.offset, e.label) for e in built["cal_examples"].events]
    hours = background_hours([sc["cal_background"]])
    target = float(np.ceil(100 / hours) / 100)
    room = [("cal_background", read_audio(built["cal_background"].path))]
    embedder = Embedder(model_path, params=FeatureParams())
    model = load_model(model_path, params=params, embedding=True)

    results: dict = {label: {} for label in LABELS}
    for label in LABELS:  # the baseline: the calibrated stock label, on the same scores
        fit = fit_rule(Rule(label, bench.TARGETS[label]), plain.labels, [sc["cal_background"]], target,
                       sc["cal_examples"], [a for a in ref_cal if a.label == label])
        results[label]["label-calibrated"] = [bench.measure(fit.rule, plain.labels, sc["test"], sc["test_background"],
                                                            [a for a in ref if a.label == label])]
    rng = np.random.default_rng(0)
    for draw in range(args.draws):
        for variant, like in (("taught", False), ("taught-like", True)):
            sounds, meta = [], {}
            for label in LABELS:
                pool = sorted(t_cal[label])
                clips = pool if len(pool) <= args.k else [pool[i] for i in sorted(rng.permutation(len(pool))[:args.k])]
                if label == "smoke_alarm" and draw > 0:
                    continue  # two recordings only: every draw would be the same
                t0 = time.perf_counter()
                snd = learn(f"{label}_{variant}_{draw}".replace("-", "_"), [(p.name, read_audio(p)) for p in clips], room,
                            embedder, TrainOptions(target_fa_per_hour=target),
                            like=bench.TARGETS[label] if like else ())
                meta[snd.name] = (label, [p.name for p in clips], time.perf_counter() - t0)
                sounds.append(snd)
            names = labels_with_sounds(model.labels, sounds)
            scored_with = {k: score_file(model, built[k].path, (), "fixed", -70.0, sounds)[0] for k in ("test", "test_background")}
            for snd in sounds:
                label, clips, seconds = meta[snd.name]
                rule = Rule(label, (), enter=snd.threshold, release=min(snd.release, snd.threshold), sounds=(snd.name,))
                m = bench.measure(rule, names, scored_with["test"], scored_with["test_background"],
                                  [a for a in ref if a.label == label])
                m.update(draw=draw, clips=clips, learn_seconds=seconds, threshold=snd.threshold)
                results[label].setdefault(variant, []).append(m)
                print(f"{label:16} {variant:12} draw {draw}: recall {m['recall']:.2f} FA/h bg "
                      f"{m['fa_per_hour_background_alone']:.1f} latency {m['latency_p50']}", flush=True)
    record = {
        "what": "sounds taught from k clips (edgekit sounds learn), as alarm rules on benchmarks/evaluate.py's held-out "
                "soundscape, beside the calibrated YAMNet label on the same scores",
        "model": "yamnet_spectra_in.tflite (fixed-point front end), hop 0.1 s, volume gate -70 dBFS",
        "k": args.k, "draws": args.draws, "seed": args.seed, "target_fa_per_hour": target,
        "calibration_background_minutes": hours * 60, "results": results,
        "bank": args.bank or "shipped", "bank_windows": len(bank) if bank else 0,
    }
    text = markdown(record)
    print(text)
    if args.out:
        Path(args.out).write_text(json.dumps(record, indent=1))
        Path(args.out).with_suffix(".md").write_text(text)
    return 0


def markdown(rec: dict) -> str:
    lines = [f"# Sounds taught from {rec['k']} clips, judged as alarms (target {rec['target_fa_per_hour']:g} FA/h, "
             f"{rec['calibration_background_minutes']:.1f} min of room)", "",
             "Mean over draws of recall (alerting) / FA per hour on the test background alone / latency p50 s:", "",
             "| label | calibrated YAMNet label | taught | taught + label (--like) |", "|---|---|---|---|"]
    for label, row in rec["results"].items():
        cells = []
        for v in ("label-calibrated", "taught", "taught-like"):
            ms = row.get(v, [])
            lat = [m["latency_p50"] for m in ms if m["latency_p50"] is not None]
            cells.append(f"{np.mean([m['recall'] or 0 for m in ms]):.2f} / "
                         f"{np.mean([m['fa_per_hour_background_alone'] for m in ms]):.1f} / "
                         f"{np.median(lat) if lat else float('nan'):.2f} ({len(ms)})" if ms else "–")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
