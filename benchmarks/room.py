"""The user's room, simulated: do rules calibrated on the room's own recording generalise better?

A SIMULATION. There is no recording of one real room in ../shared/data; a "room" here is a fixed,
disjoint set of background recordings that share a place and character (a home: the same
household's voices, its music, dishes and tap; a street-side flat: traffic, street music,
children, planes, trains, air conditioning; a garden room: rain, wind, birds, thunder, a fire,
animals). Each room's recordings are put in a seeded order, whole recordings kept together (an
ESC-50 or UrbanSound8K source recording, a speaker, a music track never lands on both sides),
and cut in time: the earlier part is "what the user records with ``edgekit record``", the later
part (>= TEST_MINUTES) is the test; ``--splits`` seeded orders give that many cuts per room. Target clips from held-out folds (benchmarks/evaluate.py's
split: ESC-50 folds 4-5, UrbanSound8K fold 2, one smoke alarm recording) are mixed into the test
part at 0-20 dB SNR, as evaluate.py does, in ``RENDERS`` seeded renders (more events, the same
background); false alarms are counted on the test part without events.

On the same test part, each label's stock rule is calibrated with
``edgekit.evaluate.calibrate.fit_rule`` (the path of ``edgekit calibrate``: the calibration clips
of the other folds mixed into the calibration background at 0-20 dB, gap 2-6 s) on:

- ``generic-L``: evaluate.py's calibration background with every recording of this room removed
  (anyone else's audio), its first L minutes, L = the room's earlier part;
- ``generic-all``: all of it (about 30 min, at the lower target it supports);
- ``room-L``: the room's earlier part, its first L minutes, for several L (the curve).

A length of L minutes supports a target of R = 60/L false alarms/h at best (the background rule,
edgekit/audio/background.py); each fit asks for that R (rounded up to 0.01), as evaluate.py does.

Usage: python benchmarks/room.py [--data ../shared/data] [--cache /var/tmp/edgekit-room-cache] [--splits 3]
       [--out benchmarks/results] [--name room-DATE]
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))

from evaluate import HOP, TARGETS, arguments, run_rule, scored, split_background, split_targets, start  # noqa: E402

from edgekit.audio.background import false_alarm_budget  # noqa: E402
from edgekit.audio.files import read_audio  # noqa: E402
from edgekit.detect.rules import Rule  # noqa: E402
from edgekit.errors import CalibrationError  # noqa: E402
from edgekit.evaluate.annotations import Annotation  # noqa: E402
from edgekit.evaluate.calibrate import background_hours, fit_rule  # noqa: E402
from edgekit.evaluate.metrics import rule_metrics  # noqa: E402
from edgekit.evaluate.soundscape import MixSpec, build  # noqa: E402
from edgekit.models.model import load_model  # noqa: E402
from edgekit.params import FeatureParams  # noqa: E402

RATE = 16000
TEST_MINUTES = 8.0  # each room's later part: at least this much, whole recordings
LENGTHS = (2.5, 5.0, 10.0)  # minutes of the room's earlier part on the curve (and all of it)
RENDERS = 3  # seeded renders of events into each test part
# Music tracks of the home (the rest of the music stays "anyone else's").
HOME_MUSIC = ("Karissa_Hobbs", "Tchaikovsky", "ragtime", "sweet-waltz")


def room_of(f: Path) -> str | None:
    """Which simulated room a background file belongs to (None: no room; only in others' audio)."""
    cat, n = f.parent.name, f.name
    if cat == "speech":  # a household's voices: every other speaker, in name order
        m = re.search(r"(\d+)-\d+-\d+\.", n)
        return "home" if m and int(m.group(1)) % 2 == 0 else None
    if cat == "music":
        return "home" if any(k in n for k in HOME_MUSIC) else None
    if cat in ("doing_the_dishes", "running_tap"):
        return "home"
    if cat in ("street_music", "engine", "engine_idling", "children_playing", "airplane", "train", "air_conditioner"):
        return "street"
    if cat in ("rain", "wind", "chirping_birds", "thunderstorm", "crackling_fire", "animal", "dude_miaowing"):
        return "garden"
    return None


ROOMS = ("home", "street", "garden")


def recording(f: Path) -> str:
    """The source recording a file was cut from: clips of one recording share it."""
    n = f.name
    if m := re.search(r"esc50_16k_londonreturns__.*_(\d-\d+)-[A-Z]-\d+", n):
        return "esc50:" + m.group(1)
    if m := re.search(r"urbansound8k_acii__fold\d_\w+?_(\d+)-", n):
        return "us8k:" + m.group(1)
    if m := re.search(r"train-clean-100_(\d+)-", n):
        return "speaker:" + m.group(1)
    return "file:" + n


def concat(files: list[Path], fade: float = 0.02) -> np.ndarray:
    """Files end to end as float samples, each faded in and out (a join is not a click)."""
    parts = []
    k = int(fade * RATE)
    for f in files:
        x = read_audio(f, allow_silence=True).astype(np.float32) / 32768.0
        kk = min(k, len(x) // 2)
        if kk:
            w = np.linspace(0, 1, kk, dtype=np.float32)
            x[:kk] *= w
            x[-kk:] *= w[::-1]
        parts.append(x)
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def write(x: np.ndarray, path: Path) -> Path:
    # Always rewritten (a second or two): another seed gives other audio of the same length.
    sf.write(str(path), np.clip(x, -1.0, 32767 / 32768), RATE, subtype="PCM_16", format="FLAC")
    return path


def split_room(files: list[Path], seed: int) -> tuple[list[Path], list[Path]]:
    """(earlier, later): whole recordings in a seeded order, the last >= TEST_MINUTES the test."""
    groups: dict[str, list[Path]] = {}
    for f in files:
        groups.setdefault(recording(f), []).append(f)
    keys = sorted(groups)
    order = [keys[i] for i in np.random.default_rng(seed).permutation(len(keys))]
    secs = {k: sum(sf.info(str(f)).duration for f in groups[k]) for k in keys}
    later: list[str] = []
    while sum(secs[k] for k in later) < TEST_MINUTES * 60:
        later.insert(0, order.pop())
    return [f for k in order for f in groups[k]], [f for k in later for f in groups[k]]


def target_for(minutes: float) -> float:
    return float(math.ceil(100 * 60 / minutes) / 100)  # the lowest rate that much background supports


def calibrate(model, bg_path: Path, t_cal: dict, cache: Path, seed: int) -> dict:
    """Each label's rule fitted as `edgekit calibrate` fits it: examples mixed into this background."""
    labels = model.labels
    bg = scored(model, bg_path, cache)
    ex = build(t_cal, [bg_path], cache / f"{bg_path.stem}-examples.flac", MixSpec(seed=seed, gap=(2.0, 6.0)))
    ex_s = scored(model, Path(ex.path), cache)
    ref = [Annotation("examples", e.onset, e.offset, e.label) for e in ex.events]
    minutes = background_hours([bg]) * 60  # audible windows: what the budget counts
    target = target_for(minutes)
    fits = {}
    for label, names in TARGETS.items():
        try:
            fits[label] = fit_rule(Rule(label, names), labels, [bg], target, ex_s,
                                   [a for a in ref if a.label == label])
        except CalibrationError as e:  # the CLI would stop; here the rule is left out (no alarms)
            fits[label] = str(e)
    return {"minutes": minutes, "recording_minutes": bg.duration / 60, "target": target, "examples": len(ref), "fits": fits}


def measure(model, fitted: dict, tests: list, test_bg, room: str, where=lambda t: "") -> dict:
    """Per label: alerts on the room's event renders, false alarms on its test part without events
    (and what kind of recording each fell in: ``where(seconds)``)."""
    out = {}
    for label in TARGETS:
        f = fitted["fits"][label]
        if isinstance(f, str):
            out[label] = {"refused": f}
            continue
        dets, ref, durations = [], [], {}
        for i, (s, events) in enumerate(tests):
            name = f"{room}-test{i}"
            dets += run_rule(s, f.rule, model.labels, name)
            ref += [Annotation(name, e.onset, e.offset, e.label) for e in events if e.label == label]
            durations[name] = s.duration
        m = rule_metrics(ref, dets, durations, collars=False)
        bg_dets = run_rule(test_bg, f.rule, model.labels, "bg")
        bg_fa = len(bg_dets)
        lat = [a[3] - a[1] for a in m.alerts if a[3] is not None]
        out[label] = {
            "events": m.events, "detected": m.detected, "latencies": lat,
            "fa_background": bg_fa, "background_hours": test_bg.duration / 3600,
            "fa_background_in": [where(d.at) for d in bg_dets],
            "fa_soundscape": m.false_alarms, "soundscape_background_hours": m.background_hours,
            "calibration": f.as_dict(),
        }
    return out


def pooled(rooms: dict, cond: str) -> dict:
    """One condition over the rooms that have it: per label and the mean over labels."""
    per = {}
    for label in TARGETS:
        ev = det = fa = 0
        hours = 0.0
        lat: list[float] = []
        refused = 0
        for r in rooms.values():
            if cond not in r["conditions"]:
                continue
            m = r["conditions"][cond]["labels"][label]
            if "refused" in m:
                refused += 1
                ev += sum(1 for x in r["test_events"] if x == label)
                hours += r["test_background_minutes"] / 60
                continue
            ev, det, fa, hours = ev + m["events"], det + m["detected"], fa + m["fa_background"], hours + m["background_hours"]
            lat += m["latencies"]
        per[label] = {"events": ev, "detected": det, "recall": det / ev if ev else None,
                      "fa": fa, "fa_per_hour": fa / hours if hours else None,
                      "latency_p50": float(np.median(lat)) if lat else None, "refused": refused}
    rec = [p["recall"] or 0.0 for p in per.values()]
    fah = [p["fa_per_hour"] or 0.0 for p in per.values()]
    lats = [p["latency_p50"] for p in per.values() if p["latency_p50"] is not None]
    return {"labels": per, "mean_recall": float(np.mean(rec)), "mean_fa_per_hour": float(np.mean(fah)),
            "latency_p50": float(np.median(lats)) if lats else None}


def run_unit(model, room: str, j: int, seed: int, every_bg: list[Path], b_cal: list[Path], t_test: dict,
             t_cal: dict, cache: Path, base_seed: int) -> dict:
    """One room, cut in time by one seeded order of its recordings: every condition fitted and measured."""
    tag0 = f"{room}{j}"
    files = [f for f in every_bg if room_of(f) == room]
    recs = {recording(f) for f in files}
    earlier, later = split_room(files, seed)
    assert not {recording(f) for f in earlier} & {recording(f) for f in later}
    early = concat(earlier)
    later_path = write(concat(later), cache / f"{tag0}-later.flac")
    ends = np.cumsum([sf.info(str(f)).frames for f in later]) / RATE  # concat() keeps every sample

    def where(t: float) -> str:
        return later[min(int(np.searchsorted(ends, t)), len(later) - 1)].parent.name

    test_bg = scored(model, later_path, cache)
    tests = []
    for i in range(RENDERS):
        sc = build(t_test, [later_path], cache / f"{tag0}-test{i}.flac",
                   MixSpec(snr=(0.0, 20.0), gap=(4.0, 16.0), seed=seed * 100 + i))
        tests.append((scored(model, Path(sc.path), cache), sc.events))
    others = [f for f in b_cal if recording(f) not in recs]  # anyone else's audio
    gen_path = cache / f"{room}-generic.flac"  # as evaluate.py's calibration background, less this room
    if j == 0 or not gen_path.is_file():  # once per room and run: the same for every cut
        build(t_cal, others, gen_path, MixSpec(seed=base_seed + 1), with_events=False)
    gen = sf.read(str(gen_path), dtype="float32")[0]
    early_min = len(early) / RATE / 60
    conds = {}
    for L in sorted({*(L for L in LENGTHS if L < early_min - 0.05), early_min}):
        tag = "all" if L == early_min else f"{L:g}"
        p = write(early[: int(L * 60 * RATE)], cache / f"{tag0}-room-{tag}.flac")
        conds[f"room-{tag}"] = calibrate(model, p, t_cal, cache, base_seed + 1)
    p = write(gen[: int(early_min * 60 * RATE)], cache / f"{tag0}-generic-L.flac")
    conds["generic-L"] = calibrate(model, p, t_cal, cache, base_seed + 1)
    conds["generic-all"] = calibrate(model, gen_path, t_cal, cache, base_seed + 1)
    out = {
        "room": room, "split": j, "categories": sorted({f.parent.name for f in files}),
        "recordings": len(recs), "files": len(files),
        "earlier_minutes": early_min, "earlier_files": len(earlier),
        "test_background_minutes": test_bg.duration / 60, "test_files": len(later),
        "test_renders": RENDERS, "test_events": [e.label for _, evs in tests for e in evs],
        "generic_files": len(others), "generic_minutes": len(gen) / RATE / 60,
        "conditions": {},
    }
    for name, fitted in conds.items():
        out["conditions"][name] = {
            "minutes": fitted["minutes"], "target": fitted["target"], "examples": fitted["examples"],
            "labels": measure(model, fitted, tests, test_bg, tag0, where)}
        pr = pooled({tag0: out}, name)
        print(f"{room}#{j:<3} {name:12} {fitted['minutes']:5.1f} min target {fitted['target']:5.2f}/h: "
              f"recall {pr['mean_recall']:.2f} FA/h {pr['mean_fa_per_hour']:.2f} latency {_f(pr['latency_p50'])}",
              flush=True)
    return out


def paired(rooms: dict, a: str, b: str) -> dict:
    """Condition a against b on the same (room, split, label): summed differences and who wins."""
    d_det = d_fa = better = worse = 0
    for r in rooms.values():
        if a not in r["conditions"] or b not in r["conditions"]:
            continue
        for label in TARGETS:
            x, y = r["conditions"][a]["labels"][label], r["conditions"][b]["labels"][label]
            dx, dy = x.get("detected", 0), y.get("detected", 0)
            fx, fy = x.get("fa_background", 0), y.get("fa_background", 0)
            d_det += dx - dy
            d_fa += fx - fy
            better += (dx >= dy and fx <= fy) and (dx > dy or fx < fy)
            worse += (dx <= dy and fx >= fy) and (dx < dy or fx > fy)
    return {"detected_minus": d_det, "false_alarms_minus": d_fa, "better": better, "worse": worse}


def main() -> int:
    ap = arguments(__doc__, "/var/tmp/edgekit-room-cache")
    ap.add_argument("--splits", type=int, default=3, help="seeded orders of each room's recordings (cuts in time)")
    ap.add_argument("--name", default="room", help="record name: OUT/NAME.json and .md")
    args = ap.parse_args()
    paths = start(ap, args, markdown)
    if paths is None:
        return 0
    events, cache = paths
    data = events.parent
    t0 = time.perf_counter()

    t_test, t_cal = split_targets(events)
    _, b_cal = split_background(events)
    every_bg = sorted((events / "background").rglob("*.flac"))
    model = load_model(data / "models" / "yamnet_spectra_in.tflite", params=FeatureParams().with_hop(HOP))

    rooms: dict = {}  # one unit per (room, split): "home#0", ...
    for j in range(args.splits):
        for ri, room in enumerate(ROOMS):
            unit = f"{room}#{j}"
            rooms[unit] = run_unit(model, room, j, args.seed + 10 * j + ri, every_bg, b_cal, t_test, t_cal, cache, args.seed)

    names = sorted({c for r in rooms.values() for c in r["conditions"]},
                   key=lambda c: (c.startswith("generic"), float(c.split("-")[1]) if c.split("-")[1][0].isdigit() else 1e9, c))
    record = {
        "what": "SIMULATED household rooms: label rules calibrated on the room's own earlier recording vs on "
                "anyone else's audio, tested on the room's later part (benchmarks/room.py)",
        "model": "yamnet_spectra_in.tflite (fixed-point front end), hop 0.1 s, volume gate -70 dBFS",
        "metrics": "alerting: an event is detected when its rule starts within [onset - 0.5 s, offset + 2 s]; "
                   "FA/h on the room's test part without events; latency p50 = median over labels of the "
                   "median (first start - onset) pooled over rooms",
        "seed": args.seed, "splits": args.splits, "renders": RENDERS, "test_minutes_min": TEST_MINUTES,
        "rooms": rooms,
        "pooled": {c: pooled(rooms, c) for c in names},
        "paired": {f"{a} vs {b}": paired(rooms, a, b) for a, b in (("room-all", "generic-L"), ("room-all", "generic-all"),
                                                                    ("generic-all", "generic-L"))},
        "seconds": time.perf_counter() - t0,
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(record, indent=1, default=float))
    (out / f"{args.name}.md").write_text(markdown(record))
    print(markdown(record))
    return 0


def _f(x, spec=".2f"):
    return "–" if x is None else format(x, spec)


def markdown(rec: dict) -> str:
    units = rec["rooms"]
    by_room: dict[str, dict] = {}
    for u, r in units.items():
        by_room.setdefault(r["room"], {})[u] = r
    lines = [
        "# The user's room, simulated (benchmarks/room.py)", "",
        "**A simulation**: no recording of one real room exists in ../shared/data. A room is a fixed, disjoint "
        "set of background recordings of one character, cut in time at whole recordings (no source recording, "
        "speaker or track on both sides): the earlier part stands for `edgekit record`, the later part is the "
        f"test. Each room is cut {rec['splits']} times (seeded orders of its recordings; the splits' test parts "
        f"overlap, so they are not independent), and {rec['renders']} seeded renders of held-out target clips "
        "(ESC-50 folds 4-5, UrbanSound8K fold 2, one smoke alarm recording) are mixed into each test part at "
        "0-20 dB SNR. " + rec["model"] + ". " + rec["metrics"] + ". Calibration: `fit_rule` (the path of "
        "`edgekit calibrate`) at the lowest target the length supports, about 60/L FA/h for L minutes; "
        "examples from the other folds mixed into that same background. `generic-*`: benchmarks/evaluate.py's "
        "calibration background without any recording of the room (anyone else's audio); `generic-L`: its first "
        "L minutes, L = the room's earlier part.", "",
        "| room | what | recordings | earlier part (min, per split) | test part (min, per split) | test events "
        "(all splits) | anyone else's (min) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, us in by_room.items():
        r0 = next(iter(us.values()))
        lines.append(f"| {name} | {', '.join(r0['categories'])} | {r0['recordings']} | "
                     f"{', '.join(format(r['earlier_minutes'], '.1f') for r in us.values())} | "
                     f"{', '.join(format(r['test_background_minutes'], '.1f') for r in us.values())} | "
                     f"{sum(len(r['test_events']) for r in us.values())} | {r0['generic_minutes']:.1f} |")
    lines += ["", "Mean over the 7 labels, per room (splits pooled): recall / FA per hour on the test part without "
              "events / latency p50 s; in brackets the fit's background minutes and target FA/h (mean over splits)", "",
              "| condition | " + " | ".join(by_room) + " | all rooms (pooled) |", "|---" * (len(by_room) + 2) + "|"]
    for c, p in rec["pooled"].items():
        cells = []
        for us in by_room.values():
            have = {u: r for u, r in us.items() if c in r["conditions"]}
            if not have:
                cells.append("–")
                continue
            one = pooled(have, c)
            mins = np.mean([r["conditions"][c]["minutes"] for r in have.values()])
            tgt = np.mean([r["conditions"][c]["target"] for r in have.values()])
            cells.append(f"{one['mean_recall']:.2f} / {one['mean_fa_per_hour']:.1f} / {_f(one['latency_p50'])} "
                         f"({mins:.1f} min, {tgt:.1f}/h)")
        lines.append(f"| {c} | " + " | ".join(cells) + f" | **{p['mean_recall']:.2f} / {p['mean_fa_per_hour']:.1f} / "
                     f"{_f(p['latency_p50'])}** |")
    lines += ["", "Per label, pooled over rooms and splits: recall (detected/events) / FA per hour on the test parts "
              "without events (refused: fits where no threshold met the budget; the rule is left out there)", "",
              "| condition | " + " | ".join(TARGETS) + " |", "|---" * (len(TARGETS) + 1) + "|"]
    for c, p in rec["pooled"].items():
        cells = []
        for label in TARGETS:
            x = p["labels"][label]
            cells.append(f"{_f(x['recall'])} ({x['detected']}/{x['events']}) / {_f(x['fa_per_hour'], '.1f')}"
                         + (f", refused {x['refused']}" if x["refused"] else ""))
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines += ["", "Paired, on the same room, split and label (summed over all): events detected and false alarms "
              "of the first minus the second; pairs where the first is better (no fewer detections, no more false "
              "alarms, one of them strictly) / worse:", ""]
    for k, v in rec["paired"].items():
        lines.append(f"- {k}: detected {v['detected_minus']:+d}, false alarms {v['false_alarms_minus']:+d}; "
                     f"better in {v['better']}, worse in {v['worse']} of {7 * len(units)}")
    lines += ["", "Does the fit keep its promise? False alarms per hour (mean over rules) on the background it was "
              "fitted on, against the test parts without events; beside them (k+1)/hours, k the false alarms its "
              "budget allowed (edgekit.audio.background.false_alarm_budget: floor(target x hours) - 1): what a "
              "threshold set just above the (k+1)-th highest peak of a sample is expected to give on new audio of "
              "the same kind (order statistics: a new peak is equally likely to fall at any rank), at most the "
              "target; and the kinds of recording the test false alarms fell in:", ""]
    for c in rec["pooled"]:
        fit_fa = fit_h = test_fa = test_h = 0.0
        expect: list[float] = []  # (k + 1) / hours per fit, k = the false alarms its budget allowed
        kinds: dict[str, int] = {}
        for r in units.values():
            for m in r["conditions"].get(c, {}).get("labels", {}).values():
                if "refused" in m:
                    continue
                fit_fa += m["calibration"]["false_alarms"]
                fit_h += m["calibration"]["background_hours"]
                h = m["calibration"]["background_hours"]
                expect.append((false_alarm_budget(h * 3600, r["conditions"][c]["target"]) + 1) / h)
                test_fa += m["fa_background"]
                test_h += m["background_hours"]
                for k in m.get("fa_background_in", []):
                    kinds[k] = kinds.get(k, 0) + 1
        top = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1])[:6])
        lines.append(f"- {c}: {fit_fa / fit_h if fit_h else 0:.1f}/h fitted, {test_fa / test_h if test_h else 0:.1f}/h "
                     f"on test, (k+1)/hours {np.mean(expect) if expect else 0:.1f}/h "
                     f"({int(test_fa)} false alarms: {top or 'none'})")
    lines += ["", "Budget rule: L minutes of background support at best 60/L false alarms/h: "
              + ", ".join(f"{L:g} min -> {60 / L:.1f}/h" for L in (2.5, 5, 10, 15, 30, 40, 60))
              + ". The issue's goal (<= 1.5 FA/h) needs 40 min; no room here has more than "
              f"{max(r['earlier_minutes'] for r in units.values()):.1f} min before its test part, so no fit here "
              "could promise it, and what an hour of room buys could not be measured."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
