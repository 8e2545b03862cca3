"""How well edgekit hears, beside the peers' decision logic, on the same YAMNet scores.

Builds (seeded) a >= 30 min test soundscape from ../shared/data/events and a disjoint calibration
set, scores every recording once through the daemon's path (cached as .npz in a temp folder, not
the repository), then replays the scores through each detector:

- ``edgekit-defaults``: a Rule with the settings' defaults (enter 0.5, release 0.3, no smoothing, no hold)
- ``edgekit-example``: the example config's style (enter 0.5, release 0.3, 2 of 3 windows, hold 5 s)
- ``edgekit-calibrated``: `edgekit calibrate`'s fit on the calibration background and examples
- ``edgekit-calibrated-wide``: the same, with each target's neighbouring YAMNet labels in its rule
- ``frigate``: 0.975 s windows without overlap, threshold 0.8, an event ends after 30 s unheard
- ``frigate-calibrated``: the same logic with its threshold fitted to the same false-alarm budget
- ``mediapipe-0.5`` / ``mediapipe-0.3``: a score threshold per window, consecutive windows one event

Usage: python benchmarks/evaluate.py [--data ../shared/data] [--cache DIR] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgekit.evaluate.annotations import Annotation  # noqa: E402
from edgekit.evaluate.calibrate import background_hours, fit_rule, needed_hours  # noqa: E402
from edgekit.evaluate.metrics import rule_metrics  # noqa: E402
from edgekit.evaluate.replay import Scores, detections, replay, score_file  # noqa: E402
from edgekit.evaluate.soundscape import MixSpec, build  # noqa: E402
from edgekit.models.model import load_model  # noqa: E402
from edgekit.params import FeatureParams  # noqa: E402
from edgekit.detect.rules import Rule, rule_indices  # noqa: E402
from edgekit.evaluate.metrics import WINDOW_SECONDS  # noqa: E402
from edgekit.evaluate.psds import score_psds  # noqa: E402

HOP = 0.1
TARGETS = {  # label -> YAMNet display names (../shared/data/events/README.md's baseline mapping)
    "smoke_alarm": ("Smoke detector, smoke alarm",),
    "siren": ("Siren",),
    "glass_breaking": ("Glass", "Shatter"),
    "dog": ("Dog", "Bark"),
    "crying_baby": ("Baby cry, infant cry",),
    "coughing": ("Cough",),
    "door_wood_knock": ("Knock",),
}
# The second lever short of teaching new sounds: each target's neighbours in YAMNet's ontology (a
# smoke alarm is often heard as "Beep, bleep" or "Alarm", a siren as "Police car (siren)").
WIDE = {
    "smoke_alarm": ("Smoke detector, smoke alarm", "Fire alarm", "Alarm", "Beep, bleep", "Buzzer"),
    "siren": ("Siren", "Civil defense siren", "Police car (siren)", "Ambulance (siren)",
              "Fire engine, fire truck (siren)", "Emergency vehicle"),
    "glass_breaking": ("Glass", "Shatter", "Breaking", "Smash, crash", "Chink, clink"),
    "dog": ("Dog", "Bark", "Yip", "Howl", "Bow-wow", "Growling", "Whimper (dog)"),
    "crying_baby": ("Baby cry, infant cry", "Crying, sobbing", "Whimper"),
    "coughing": ("Cough", "Throat clearing"),
    "door_wood_knock": ("Knock", "Door", "Tap", "Wood"),
}
GOAL_RECALL = {"smoke_alarm": 0.9, "siren": 0.9}  # others 0.8
TEST_FOLDS = {"esc50": {4, 5}, "us8k": {2}}  # target clips; the rest calibrate
BG_TEST_FOLDS = {"esc50": {5}}  # background files; the rest alternate by recording, speaker or file
SMOKE_TEST = "ID_1153"  # three smoke alarm recordings only: one for the test, two for calibration


def group(path: Path) -> tuple[str, str]:
    """(source, split key) of a file: ESC-50/US8K by fold, LibriSpeech by speaker, others by file."""
    n = path.name
    if m := re.search(r"esc50_16k_londonreturns__.*_(\d)-\d+-[A-Z]-\d+", n):
        return "esc50", m.group(1)
    if m := re.search(r"urbansound8k_acii__fold(\d)_\w+?_(\d+)-", n):
        return "us8k", m.group(1) if "target" in path.parts else m.group(2)  # clips of one recording together
    if m := re.search(r"train-clean-100_(\d+)-", n):
        return "speaker", m.group(1)
    return "file", n


def split_targets(events: Path) -> tuple[dict, dict]:
    test, cal = {}, {}
    for label in TARGETS:
        files = sorted((events / "target" / label).glob("*.flac"))
        t, c = [], []
        for f in files:
            src, key = group(f)
            if label == "smoke_alarm":
                (t if SMOKE_TEST in f.name else c).append(f)
            else:
                (t if int(key) in TEST_FOLDS.get(src, set()) else c).append(f)
        test[label], cal[label] = t, c
    return test, cal


def split_background(events: Path) -> tuple[list[Path], list[Path]]:
    test, cal = [], []
    keys: dict[str, list[str]] = {}
    for f in sorted((events / "background").rglob("*.flac")):
        src, key = group(f)
        if src in BG_TEST_FOLDS:
            (test if int(key) in BG_TEST_FOLDS[src] else cal).append(f)
        else:  # speakers and single files alternate per category, calibration first (it needs more)
            seen = keys.setdefault(src if src == "file" else f.parent.name + "|" + src, [])
            if key not in seen:
                seen.append(key)
            (cal if seen.index(key) % 2 == 0 else test).append(f)
    return test, cal


def soundscapes(events: Path, cache: Path, seed: int, test_minutes: float | None = None) -> dict:
    """The seeded soundscapes (written to ``cache``; the same seed gives the same audio): the test soundscape, its background
    rendered without events, and a disjoint calibration background and examples."""
    t_test, t_cal = split_targets(events)
    b_test, b_cal = split_background(events)
    assert not set(b_test) & set(b_cal) and not any(set(t_test[k]) & set(t_cal[k]) for k in TARGETS)
    spec = MixSpec(seconds=test_minutes * 60 if test_minutes else None, snr=(0.0, 20.0), gap=(4.0, 16.0), seed=seed)
    built = {}
    for name, targets, bgs, sp, with_events in (
        ("test", t_test, b_test, spec, True),
        ("test_background", t_test, b_test, spec, False),
        ("cal_background", t_cal, b_cal, MixSpec(seed=seed + 1), False),
        ("cal_examples", t_cal, b_cal, MixSpec(seed=seed + 1, gap=(2.0, 6.0)), True),
    ):
        path = cache / f"{name}.flac"
        built[name] = build(targets, bgs, path, sp, with_events=with_events, tsv=cache / f"{name}.tsv")
        print(f"{name}: {built[name].seconds / 60:.1f} min, {len(built[name].events)} events", flush=True)
    return built


def scored(model, path: Path, cache: Path) -> Scores:
    # Keyed by the audio's content and edgekit's front end/model code: a rebuilt (same seed)
    # soundscape reuses its scores, a changed path does not.
    h = hashlib.sha256(path.read_bytes())
    for mod in ("listen.py", "frontend/fixed.py", "frontend/stream.py", "models/model.py", "evaluate/replay.py"):
        h.update((ROOT / "edgekit" / mod).read_bytes())
    npz = cache / f"{path.stem}-{h.hexdigest()[:16]}.npz"
    if npz.is_file():
        return Scores.load(npz)
    t0 = time.perf_counter()
    s, _ = score_file(model, path, (), "fixed", -70.0)
    print(f"  scored {path.name}: {s.duration / 60:.1f} min in {time.perf_counter() - t0:.0f} s", flush=True)
    s.save(npz)
    return s


def frigate_view(s: Scores) -> Scores:
    """The windows nearest to 0.975 s steps: Frigate's back-to-back windows, from the same scores."""
    want = np.arange(s.end[0], s.end[-1] + 1e-9, 0.975)
    idx = np.unique(np.clip(np.round((want - s.end[0]) / s.hop).astype(int), 0, len(s.end) - 1))
    return replace(s, end=s.end[idx], scores=s.scores[idx], gated=s.gated[idx], dbfs=s.dbfs[idx], hop=0.975)


def run_rule(s: Scores, rule: Rule, labels, name: str):
    return detections(replay(s, [rule], labels), [rule], name, s.hop)[rule.name]


def measure(rule: Rule, labels, test: Scores, bg: Scores, ref: list[Annotation]) -> dict:
    dets = run_rule(test, rule, labels, "test")
    m = rule_metrics(ref, dets, {"test": test.duration})
    bg_dets = run_rule(bg, rule, labels, "bg")
    out = m.as_dict()
    del out["alerts"]
    # Last round's headline was DCASE's collar F1 (onset and offset): kept beside the alerting one.
    out["recall_onset_only"] = m.dcase_onset.recall
    out["f1_onset_only"] = m.dcase_onset.f1
    out["dcase_recall"] = m.dcase_onset_offset.recall
    out["dcase_f1"] = m.dcase_onset_offset.f1
    out["fa_per_hour_background_alone"] = len(bg_dets) / (bg.duration / 3600)
    out["rule"] = {"enter": rule.enter, "release": rule.release, "smoothing": rule.smoothing, "k": rule.k,
                   "n": rule.n, "hold": rule.hold}
    return out


def arguments(doc: str, cache: str) -> argparse.ArgumentParser:
    """The options every benchmark on the events data shares (this one, room.py)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("EDGEKIT_TEST_DATA", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--cache", default=cache)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--markdown-from", metavar="JSON", help="only rewrite the Markdown of an earlier record")
    return ap


def start(ap: argparse.ArgumentParser, args, markdown) -> tuple[Path, Path] | None:
    """(events folder, cache folder) to run with; None when ``--markdown-from`` only rewrote a record."""
    if args.markdown_from:
        rec = json.loads(Path(args.markdown_from).read_text())
        Path(args.markdown_from).with_suffix(".md").write_text(markdown(rec))
        return None
    events, cache = Path(args.data) / "events", Path(args.cache)
    if not events.is_dir():
        ap.error(f"{events}: no such folder; pass --data or set EDGEKIT_TEST_DATA to the shared data folder")
    cache.mkdir(parents=True, exist_ok=True)
    return events, cache


def main() -> int:
    ap = arguments(__doc__, str(Path(tempfile.gettempdir()) / "edgekit-evaluate-bench"))
    ap.add_argument("--test-minutes", type=float, help="default: all of the test background (30.8 min)")
    args = ap.parse_args()
    paths = start(ap, args, markdown)
    if paths is None:
        return 0
    events, cache = paths
    data = events.parent

    t_test, t_cal = split_targets(events)
    b_test, b_cal = split_background(events)
    built = soundscapes(events, cache, args.seed, args.test_minutes)

    model = load_model(data / "models" / "yamnet_spectra_in.tflite", params=FeatureParams().with_hop(HOP))
    labels = model.labels
    t0 = time.perf_counter()
    sc = {name: scored(model, Path(b.path), cache) for name, b in built.items()}
    score_seconds = time.perf_counter() - t0
    ref_test = [Annotation("test", e.onset, e.offset, e.label) for e in built["test"].events]
    ref_cal = [Annotation("examples", e.onset, e.offset, e.label) for e in built["cal_examples"].events]
    cal_hours = background_hours([sc["cal_background"]])  # audible hours: what calibrate counts
    target = float(np.ceil(100 / cal_hours) / 100)  # the lowest rate this much background can support
    assert cal_hours >= needed_hours(target)

    results: dict = {}
    fr_test, fr_bg = frigate_view(sc["test"]), frigate_view(sc["test_background"])
    fr_cal_bg, fr_cal_ex = frigate_view(sc["cal_background"]), frigate_view(sc["cal_examples"])
    for label, names in TARGETS.items():
        ref_l = [a for a in ref_test if a.label == label]
        ref_c = [a for a in ref_cal if a.label == label]
        base = Rule(label, names)
        row = {}
        row["edgekit-defaults"] = measure(base, labels, sc["test"], sc["test_background"], ref_l)
        example = replace(base, smoothing="k_of_n", k=2, n=3, hold=5.0)
        row["edgekit-example"] = measure(example, labels, sc["test"], sc["test_background"], ref_l)
        t1 = time.perf_counter()
        fit = fit_rule(base, labels, [sc["cal_background"]], target, sc["cal_examples"], ref_c)
        row["edgekit-calibrated"] = measure(fit.rule, labels, sc["test"], sc["test_background"], ref_l)
        row["edgekit-calibrated"]["calibration"] = {**fit.as_dict(), "seconds": time.perf_counter() - t1}
        wfit = fit_rule(Rule(label, WIDE[label]), labels, [sc["cal_background"]], target, sc["cal_examples"], ref_c)
        row["edgekit-calibrated-wide"] = measure(wfit.rule, labels, sc["test"], sc["test_background"], ref_l)
        row["edgekit-calibrated-wide"]["calibration"] = wfit.as_dict()
        frig = Rule(label, names, enter=0.8, release=0.8, smoothing="none", hold=30.0)
        row["frigate"] = measure(frig, labels, fr_test, fr_bg, ref_l)
        ffit = fit_rule(frig, labels, [fr_cal_bg], target, fr_cal_ex, ref_c, smoothings=[("none", 1, 1)], holds=[])
        row["frigate-calibrated"] = measure(ffit.rule, labels, fr_test, fr_bg, ref_l)
        for thr in (0.5, 0.3):
            mp = Rule(label, names, enter=thr, release=thr, smoothing="none", hold=0.0)
            row[f"mediapipe-{thr}"] = measure(mp, labels, sc["test"], sc["test_background"], ref_l)
        results[label] = row
        c = row["edgekit-calibrated"]
        w = row["edgekit-calibrated-wide"]
        print(f"{label:16} wide: recall {w['recall']} FA/h bg {w['fa_per_hour_background_alone']:.1f}")
        print(f"{label:16} calibrated enter {fit.rule.enter:.2f} {fit.rule.smoothing} hold {fit.rule.hold:g}: "
              f"recall {c['recall']} (onsets {c['recall_onset_only']}) FA/h bg {c['fa_per_hour_background_alone']:.1f}; "
              f"frigate recall {row['frigate']['recall']}", flush=True)

    counts = {lab: sum(a.label == lab for a in ref_test) for lab in TARGETS}
    psds = psds_of_labels(sc, ref_test, labels)
    record = {
        "what": "edgekit evaluate benchmark: event metrics of each decision logic on the same YAMNet scores",
        "model": "yamnet_spectra_in.tflite (fixed-point front end), hop 0.1 s, volume gate -70 dBFS",
        "metrics": "alerting (headline): an event is detected when its rule starts within [onset - 0.5 s, "
                   "offset + 2 s]; secondary: sed_eval event-based, onset collar 1 s, offset collar max(1 s, 50% "
                   "of the event); FA/h on the test soundscape's own background rendered without events",
        "seed": args.seed,
        "test_minutes": sc["test"].duration / 60,
        "test_background_minutes": sc["test_background"].duration / 60,
        "calibration_background_minutes": cal_hours * 60,
        "calibration_examples": {lab: sum(a.label == lab for a in ref_cal) for lab in TARGETS},
        "calibration_target_fa_per_hour": target,
        "test_events": counts,
        "split": {"test_targets": {k: len(v) for k, v in t_test.items()}, "cal_targets": {k: len(v) for k, v in t_cal.items()},
                  "test_background_files": len(b_test), "cal_background_files": len(b_cal)},
        "scoring_seconds": score_seconds,
        "labels": {k: list(v) for k, v in TARGETS.items()},
        "labels_wide": {k: list(v) for k, v in WIDE.items()},
        "results": results,
        "psds": psds,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluate.json").write_text(json.dumps(record, indent=1))
    (out / "evaluate.md").write_text(markdown(record))
    print(markdown(record))
    return 0


def psds_of_labels(sc: dict, ref_test: list[Annotation], labels) -> dict:
    """Threshold-free PSDS (secondary) of each label set's scores on the test soundscape and its
    background rendered without events (false positives are counted on both)."""
    files = {"test": sc["test"], "test_background": sc["test_background"]}
    durations = {k: s.duration for k, s in files.items()}
    truth = [("test", a.onset, a.offset, a.label) for a in ref_test]
    out = {}
    for kind, table in (("labels", TARGETS), ("labels_wide", WIDE)):
        series = {}
        for label, names in table.items():
            index, missing = rule_indices(Rule(label, names), labels)
            assert not missing, missing
            series[label] = {k: (s.end, s.scores[:, index].max(axis=1), s.hop) for k, s in files.items()}
        res = score_psds(truth, durations, series, {k: k for k in table}, WINDOW_SECONDS)
        out[kind] = {k: {"value": r.value, "per_class": r.per_class} for k, r in res.items()}
    return out


def _f(x, spec=".2f"):
    return "–" if x is None else format(x, spec)


def markdown(rec: dict) -> str:
    dets = ["edgekit-calibrated", "edgekit-calibrated-wide", "edgekit-defaults", "edgekit-example", "frigate", "frigate-calibrated",
            "mediapipe-0.5", "mediapipe-0.3"]
    lines = [f"# How well it hears ({rec['test_minutes']:.1f} min test soundscape, seed {rec['seed']})", "",
             f"{rec['model']}. {rec['metrics']}. Calibration: {rec['calibration_background_minutes']:.1f} min of "
             f"disjoint background, target {rec['calibration_target_fa_per_hour']:g} FA/h "
             f"(the lowest rate that much background supports), examples mixed at 0-20 dB SNR.", "",
             "Recall (alerting) / DCASE recall (onset+offset collars) / DCASE F1 (onset+offset) / FA per hour on "
             "background alone / latency p50 s", ""]
    lines.append("| label (events) | " + " | ".join(dets) + " |")
    lines.append("|---" * (len(dets) + 1) + "|")
    for label, row in rec["results"].items():
        cells = []
        for d in dets:
            m = row[d]
            cells.append(f"{_f(m['recall'])} / {_f(m.get('dcase_recall'))} / {_f(m.get('dcase_f1'))} / "
                         f"{_f(m['fa_per_hour_background_alone'], '.1f')} / {_f(m['latency_p50'])}")
        lines.append(f"| {label} ({rec['test_events'][label]}) | " + " | ".join(cells) + " |")
    lines += ["", "Per detector, over the 7 labels: mean alerting recall; DCASE recall (onset+offset / onset only) "
              "and F1 (onset+offset); false alarms per hour on background alone summed over the rules, and the "
              "rules' mean; median of the labels' p50 latencies (s):", "",
              "| detector | recall | DCASE recall | DCASE recall (onsets) | DCASE F1 | FA/h, all rules | FA/h, mean "
              "| latency p50 |", "|---|---|---|---|---|---|---|---|"]
    for d in dets:
        ms = [row[d] for row in rec["results"].values()]
        mean = lambda k: float(np.mean([m[k] or 0.0 for m in ms]))  # noqa: E731 - undefined counts as 0
        lat = [m["latency_p50"] for m in ms if m["latency_p50"] is not None]
        fa = [m['fa_per_hour_background_alone'] for m in ms]
        lines.append(f"| {d} | {mean('recall'):.2f} | {mean('dcase_recall'):.2f} | {mean('recall_onset_only'):.2f} | "
                     f"{mean('dcase_f1'):.2f} | {sum(fa):.1f} | {np.mean(fa):.2f} | "
                     f"{_f(float(np.median(lat)) if lat else None)} |")
    lines += ["", "Calibrated rules:", ""]
    for label, row in rec["results"].items():
        r = row["edgekit-calibrated"]["rule"]
        c = row["edgekit-calibrated"]["calibration"]
        f = row["frigate-calibrated"]["rule"]
        lines.append(f"- {label}: enter {r['enter']:g}, release {r['release']:g}, {r['smoothing']}"
                     f"{'' if r['smoothing'] == 'none' else ' ' + str(r['k']) + '/' + str(r['n'])}, hold {r['hold']:g} s; "
                     f"{c['false_alarms']} FA on calibration background, recall {_f(c['recall'])} on "
                     f"{c['examples']} calibration examples. Frigate-calibrated threshold {f['enter']:g}.")
    if "psds" in rec:
        lines += ["", "Secondary, threshold-free: PSDS of the scores each label set gives (DCASE scenario 1 / "
                  "scenario 2; it does not depend on a rule's thresholds, smoothing or hold, so it is one figure per "
                  "label set, not per detector; false positives counted on the test soundscape and its background):",
                  "", "| label | labels | wide labels |", "|---|---|---|"]
        p = rec["psds"]
        for label in rec["results"]:
            lines.append(f"| {label} | " + " | ".join(
                f"{p[k]['psds1']['per_class'][label]:.3f} / {p[k]['psds2']['per_class'][label]:.3f}"
                for k in ("labels", "labels_wide")) + " |")
        lines.append("| across labels (alpha_st 1) | " + " | ".join(
            f"{p[k]['psds1']['value']:.3f} / {p[k]['psds2']['value']:.3f}" for k in ("labels", "labels_wide")) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
