#!/usr/bin/env python3
"""Peak memory against recording length (a benchmark, not a test).

    .venv/bin/python benchmarks/memory.py [--data ../shared/data] [--lengths 300,1200,10800] [--json PATH]

Writes 16 kHz mono PCM16 WAV files of each length (real speech, music and street background from
``events/background`` laid end to end, so the model sees real audio), then measures the peak RSS
(``ru_maxrss`` of the child, via wait4) of the real CLI:

- ``edgekit classify --json`` with ``yamnet.tflite`` (waveform), ``yamnet_spectra_in.tflite``
  with the float and with the fixed-point front end;
- ``edgekit run --source FILE --speed max`` (the daemon replaying the file) with the fixed path.

The goal (issue 9): the peak on a 3-hour file within 50 MB of the peak on a 5-minute file, for
each. The "before" column is the figures measured on HEAD 958a339 and quoted in the issue.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
RATE = 16000
# Peak RSS in MB measured before this change (issue 9's table); None where it was not measured.
BEFORE = {
    ("classify", "yamnet", None): {300: 187, 1200: 525, 10800: 4120},
    ("classify", "yamnet_spectra_in", "float"): {1200: 1250},
    ("classify", "yamnet_spectra_in", "fixed"): {300: 1270, 1200: 4850},
    ("run", "yamnet_spectra_in", "fixed"): {7200: 2830},
}
CONFIG = """
[model]
model = "{model}"
frontend = "fixed"
[audio]
hop_seconds = 0.48
[[rules]]
name = "smoke_alarm"
labels = ["Smoke detector, smoke alarm"]
[log]
path = "{log}"
"""


def make_recording(path: Path, seconds: int, data: Path) -> None:
    """Real background audio end to end, written block by block (this script stays small too)."""
    bg = sorted((data / "events" / "background").rglob("*.flac"))
    rng = np.random.default_rng(0)
    order = rng.permutation(len(bg))
    need = seconds * RATE
    with sf.SoundFile(path, "w", RATE, 1, subtype="PCM_16") as out:
        i = 0
        while need > 0:
            x, rate = sf.read(bg[order[i % len(bg)]], dtype="int16")
            i += 1
            assert rate == RATE
            x = x[:need]
            out.write(x)
            need -= len(x)


def peak_mb(cmd: list[str], env: dict) -> tuple[float, float, int]:
    """(peak RSS MB, wall seconds, exit code) of a child process."""
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    if proc.returncode:
        print(err[-2000:], file=sys.stderr)
    return usage.ru_maxrss / 1024, time.monotonic() - t0, proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--lengths", default="300,1200,10800", help="seconds, comma-separated")
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args()
    data = Path(args.data)
    models = data / "models"
    lengths = [int(x) for x in args.lengths.split(",")]
    env = {**os.environ, "EDGEKIT_MODEL_DIR": str(models), "OPENBLAS_NUM_THREADS": "1"}
    exe = [sys.executable, "-m", "edgekit"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for seconds in lengths:
            wav = tmp / f"rec_{seconds}.wav"
            make_recording(wav, seconds, data)
            cases = [
                (("classify", "yamnet", None), exe + ["classify", "--json", "--model", "yamnet", str(wav)]),
                (("classify", "yamnet_spectra_in", "float"),
                 exe + ["classify", "--json", "--model", "yamnet_spectra_in", "--frontend", "float", str(wav)]),
                (("classify", "yamnet_spectra_in", "fixed"),
                 exe + ["classify", "--json", "--model", "yamnet_spectra_in", "--frontend", "fixed", str(wav)]),
            ]
            cfg = tmp / "edgekit.toml"
            cfg.write_text(CONFIG.format(model=models / "yamnet_spectra_in.tflite", log=tmp / "events.jsonl"))
            cases.append((("run", "yamnet_spectra_in", "fixed"),
                          exe + ["run", "--config", str(cfg), "--source", str(wav), "--speed", "max"]))
            for key, cmd in cases:
                mb, wall, rc = peak_mb(cmd, env)
                rows.append({"command": key[0], "model": key[1], "frontend": key[2], "seconds": seconds,
                             "peak_rss_mb": round(mb, 1), "wall_s": round(wall, 1), "exit": rc,
                             "before_mb": BEFORE.get(key, {}).get(seconds)})
                print(f"{key[0]:<9}{key[1]:<19}{key[2] or 'in-graph':<9}{seconds:>6} s  peak {mb:7.1f} MB  "
                      f"(before: {rows[-1]['before_mb'] or '-'} MB)  {wall:6.1f} s  exit {rc}", flush=True)
            wav.unlink()
    print("\nGoal: peak at the longest length within 50 MB of the peak at the shortest")
    for key in BEFORE:
        mine = {r["seconds"]: r["peak_rss_mb"] for r in rows if (r["command"], r["model"], r["frontend"]) == key}
        if len(mine) >= 2:
            lo, hi = mine[min(mine)], mine[max(mine)]
            print(f"  {' '.join(k or 'in-graph' for k in key):<40} {min(mine)} s: {lo:.1f} MB, {max(mine)} s: "
                  f"{hi:.1f} MB, growth {hi - lo:+.1f} MB -> {'met' if hi - lo <= 50 else 'MISSED'}")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "python": sys.version.split()[0]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
