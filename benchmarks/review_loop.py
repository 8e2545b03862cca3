#!/usr/bin/env python3
"""The review loop, end to end through the real commands (a benchmark, not a test).

    .venv/bin/python benchmarks/review_loop.py [--data ../shared/data] [--target dog] [--json PATH]

1. `sounds learn v1`: a custom sound from 5 ESC-50 clips (fold 1) and 5 min of "room"
   (background files of set A).
2. `edgekit run --source A.flac --speed max`: soundscape A (targets from folds 2-3 mixed at
   0-20 dB SNR into set A's backgrounds), clips on (keep_speech: the backgrounds talk).
3. Each event is reviewed as a user would, here from A's annotations: overlapping a target
   occurrence -> "correct", else "false alarm" (through the same EventStore the page uses).
4. `sounds learn v2 ... --from-reviews`: the same examples and room, plus the reviewed clips.
5. `edgekit evaluate` of v1 and v2 on soundscape B (targets from folds 4-5, set B's backgrounds,
   none of it seen before): recall, false alarms per hour.
Backgrounds are split by file (even/odd) into sets A and B; targets by ESC-50 fold.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgekit.evaluate.soundscape import MixSpec, build  # noqa: E402
from edgekit.web.store import EventStore  # noqa: E402


def edgekit(*args, env, check=True) -> str:
    r = subprocess.run([sys.executable, "-m", "edgekit", *args], capture_output=True, text=True, env=env)
    if r.returncode and not check:
        return "FAILED: " + (r.stdout + r.stderr).strip().splitlines()[-1]
    if r.returncode:
        raise SystemExit(f"edgekit {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")
    return r.stdout + r.stderr


def fold(p: Path) -> int:
    m = re.search(r"_(\d)-\d+-[A-Z]-\d+", p.name)
    return int(m.group(1)) if m else 0


def config(path: Path, model: Path, sound: str, log: Path, source: Path | None = None) -> Path:
    path.write_text(f"""
[model]
model = "{model}"
[audio]
source = "{source or 'mic'}"
speed = "max"
hop_seconds = 0.48
[[rules]]
name = "target"
labels = ["{sound}"]
smoothing = "none"
hold = 2.0
[log]
path = "{log}"
[clips]
keep_speech = true
""")
    return path


def evaluate(cfg: Path, audio: Path, tsv: Path, label: str, env) -> dict:
    out = cfg.with_suffix(".eval.json")
    edgekit("evaluate", "--config", str(cfg), "--annotations", str(tsv), "--map", f"target={label}",
            "--json", str(out), str(audio), env=env)
    data = json.loads(out.read_text())
    return data["rules"]["target"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--target", default="dog")
    ap.add_argument("--minutes", type=float, default=20.0, help="of each soundscape")
    ap.add_argument("--json")
    args = ap.parse_args()
    data = Path(args.data)
    ev = data / "events"
    model = data / "models" / "yamnet_spectra_in.tflite"
    tmp = Path(tempfile.mkdtemp(prefix="edgekit-review-loop-"))
    env = {**os.environ, "EDGEKIT_SOUNDS_DIR": str(tmp / "sounds"), "EDGEKIT_MODEL_DIR": str(data / "models")}
    env.pop("INVOCATION_ID", None)
    env.pop("STATE_DIRECTORY", None)

    clips = sorted((ev / "target" / args.target).glob("*.flac"))
    examples = tmp / "examples"
    examples.mkdir()
    for p in [c for c in clips if fold(c) == 1][:5]:
        os.symlink(p, examples / p.name)
    bgs = sorted(p for p in (ev / "background").glob("*/*.flac"))
    set_a, set_b = bgs[0::2], bgs[1::2]
    room = tmp / "room"
    room.mkdir()
    secs = 0.0
    import soundfile as sf

    for p in set_a[::-1]:  # the room: the last files of set A (the soundscape takes them from the start)
        if secs >= 300:
            break
        os.symlink(p, room / p.name)
        secs += sf.info(p).duration
    spec = dict(snr=(0.0, 20.0), gap=(8.0, 30.0), seconds=args.minutes * 60)
    a = build({args.target: [c for c in clips if fold(c) in (2, 3)]}, set_a, tmp / "A.flac",
              MixSpec(seed=1, **spec), tsv=tmp / "A.tsv")
    b = build({args.target: [c for c in clips if fold(c) in (4, 5)]}, set_b, tmp / "B.flac",
              MixSpec(seed=2, **spec), tsv=tmp / "B.tsv")
    print(f"soundscape A {a.seconds / 60:.1f} min, {len(a.events)} {args.target}; "
          f"B {b.seconds / 60:.1f} min, {len(b.events)} {args.target}")

    edgekit("sounds", "learn", "v1", "--examples", str(examples), "--background", str(room), env=env)
    state = tmp / "state"
    cfg_a = config(tmp / "run-a.toml", model, "v1", state / "events.jsonl", tmp / "A.flac")
    edgekit("run", "--config", str(cfg_a), env=env)

    store = EventStore(state / "events.jsonl", state)
    truth = [(e.onset, e.offset) for e in a.events]
    verdicts = {"correct": 0, "false_alarm": 0}
    for e in store.events(limit=5000):
        if not e["clip"]:
            continue
        rec = next(r for r in [json.loads(x) for x in (state / "events.jsonl").read_text().splitlines()]
                   if r["id"] == e["id"] and r["kind"] == "end")
        start = e["stream_time"] - 0.975
        end = rec["stream_time"]
        hit = any(on < end and off > start for on, off in truth)
        verdict = "correct" if hit else "false_alarm"
        store.review(e["id"], {"verdict": verdict, "note": "from A's annotations"})
        verdicts[verdict] += 1
    print(f"reviewed A's events: {verdicts}")

    results = {"target": args.target, "reviews": verdicts, "A_minutes": round(a.seconds / 60, 1),
               "B_minutes": round(b.seconds / 60, 1), "B_events": len(b.events), "learn": {}}
    # v2: confirmed clips as examples and false alarms as background (the whole loop);
    # v2n: the false alarms alone (the rule named matches no reviewed events' rule).
    variants = ["v1"]
    for name, rule in (("v2", "target"), ("v2n", "no-such-rule")):
        out = edgekit("sounds", "learn", name, "--examples", str(examples), "--background", str(room),
                      "--from-reviews", str(cfg_a), "--rule", rule, env=env, check=False)
        results["learn"][name] = out.strip().splitlines()[-1] if out.strip() else ""
        print(f"  learn {name}: {results['learn'][name][:300]}")
        if not out.startswith("FAILED"):
            variants.append(name)
    for name in variants:
        cfg = config(tmp / f"eval-{name}.toml", model, name, tmp / f"eval-{name}" / "events.jsonl")
        m = evaluate(cfg, tmp / "B.flac", tmp / "B.tsv", args.target, env)
        results[name] = m
        print(f"  {name}: on B {json.dumps(m)[:400]}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
