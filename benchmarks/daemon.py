#!/usr/bin/env python3
"""The daemon's cost and reaction time on replayed recordings (a benchmark, not a test).

    .venv/bin/python benchmarks/daemon.py [--data ../shared/data] [--onsets 5] [--json PATH]

1. CPU use of `edgekit run` (the real CLI, in a child process) replaying a recording in real
   time, in % of one core, at hop 0.48 s and 0.1 s, for the fixed and the float front end:
   the child's user+system CPU time (wait4 rusage) over its wall time, start-up excluded by
   subtracting a run on a 1-second clip.
2. Latency from the onset of an alarm in the recording to the GPIO edge, over several onsets:
   a track of speech / smoke-alarm / silence segments replayed in real time through the daemon
   (in process, gpiozero's MockFactory as the chip); a thread polls the pin every millisecond.
   The onset is the first 10 ms frame of each alarm segment above -30 dBFS.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgekit.audio.files import read_audio  # noqa: E402
from edgekit.machine import cpu_model  # noqa: E402

RATE = 16000
CONFIG = """
[model]
model = "{model}"
frontend = "{frontend}"
[audio]
source = "{source}"
speed = "realtime"
hop_seconds = {hop}
min_dbfs = -70
[groups]
alarm = ["Smoke detector, smoke alarm", "Fire alarm", "Alarm", "Siren"]
[[rules]]
name = "smoke_alarm"
labels = ["alarm"]
enter = 0.5
release = 0.3
smoothing = "{smoothing}"
{kn}
hold = 2.0
[rules.gpio]
pin = 17
[gpio]
pin_factory = "mock"
{extra}
"""


def write_config(tmp: Path, model: Path, source: Path, hop: float, frontend: str, smoothing: str,
                 extra: str = "", tag: str = "") -> Path:
    kn = "k = 2\nn = 3" if smoothing == "k_of_n" else ""
    path = tmp / f"cfg-{hop}-{frontend}-{smoothing}{tag}.toml"
    path.write_text(CONFIG.format(model=model, source=source, hop=hop, frontend=frontend, smoothing=smoothing, kn=kn,
                                  extra=extra))
    return path


def clips_section(tmp: Path, on: bool) -> str:
    """An event log in a scratch folder, with event clips (pre/post-roll 2 s) on or off."""
    # The track has speech before each alarm: keep_speech, so that every clip is really written.
    log = tmp / ("clips-on" if on else "clips-off") / "events.jsonl"
    return f'[log]\npath = "{log}"\n[clips]\nenabled = {str(on).lower()}\nkeep_speech = true\n'



def child_cpu(config: Path, source: Path) -> tuple[float, float]:
    """(cpu seconds, wall seconds) of `edgekit run` replaying ``source`` in real time."""
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "edgekit", "run", "--config", str(config), "--source", str(source)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"edgekit run failed on {config}")
    return usage.ru_utime + usage.ru_stime, wall


def alarm_track(data: Path, onsets: int) -> tuple[np.ndarray, list[float]]:
    speech = read_audio(data / "audio" / "speech.wav")
    alarm = read_audio(data / "audio" / "smoke_alarm.wav")[: 4 * RATE]
    silence = np.zeros(5 * RATE, np.int16)
    parts, times, pos = [], [], 0
    frames = alarm[: len(alarm) // 160 * 160].reshape(-1, 160).astype(np.float64)
    level = 20 * np.log10(np.sqrt((frames ** 2).mean(1)) / 32768 + 1e-12)
    first_loud = int(np.argmax(level > -30)) * 160
    for _ in range(onsets):
        for seg in (speech, alarm, silence):
            if seg is alarm:
                times.append((pos + first_loud) / RATE)
            parts.append(seg)
            pos += len(seg)
    return np.concatenate(parts), times


def latency_run(config: Path, onset_times: list[float]) -> list[float]:
    from edgekit.actions.gpio import GpioOutputs
    from edgekit.daemon.service import Service

    svc = Service(str(config))
    edges: list[float] = []
    t_start: list[float] = []

    def watch():
        while svc.source is None or svc.actions is None:
            time.sleep(0.001)
        t_start.append(svc.source._t0)
        pin = next(a for a in svc.actions if isinstance(a, GpioOutputs)).device("smoke_alarm")
        last = 0
        while svc.source is not None and not svc.source.finished:
            v = pin.value
            if v and not last:
                edges.append(time.monotonic())
            last = v
            time.sleep(0.001)

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    svc.run()
    t.join(2)
    t0 = t_start[0]
    latencies = []
    for onset in onset_times:
        after = [e - t0 - onset for e in edges if e - t0 >= onset]
        latencies.append(after[0] if after and after[0] < 4.0 else float("nan"))
    return latencies


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--onsets", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=30.0, help="length of the CPU replay")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--clips-only", action="store_true",
                    help="only onset -> GPIO at hop 0.1 s, clips off/on/off/on (skips the CPU runs)")
    args = ap.parse_args()
    data = Path(args.data)
    model = data / "models" / "yamnet_spectra_in.tflite"
    tmp = Path(tempfile.mkdtemp(prefix="edgekit-bench-"))
    track, onsets = alarm_track(data, args.onsets)
    track_path = tmp / "track.wav"
    sf.write(track_path, track, RATE, subtype="PCM_16")
    replay = tmp / "replay.wav"
    sf.write(replay, np.resize(track, int(args.seconds * RATE)), RATE, subtype="PCM_16")
    short = tmp / "short.wav"
    sf.write(short, track[:RATE], RATE, subtype="PCM_16")

    results = {"machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                           "note": "shared 2-core VM; real time replay of files, not a Pi"},
               "cpu": [], "latency": []}
    print(f"CPU of `edgekit run`, real-time replay of {args.seconds:.0f} s (start-up subtracted):")
    for frontend in (() if args.clips_only else ("fixed", "float")):
        for hop in (0.48, 0.1):
            cfg_long = write_config(tmp, model, replay, hop, frontend, "k_of_n")
            cpu_s, wall_s = child_cpu(cfg_long, replay)
            cpu_0, wall_0 = child_cpu(write_config(tmp, model, short, hop, frontend, "k_of_n"), short)
            pct = 100 * (cpu_s - cpu_0) / (wall_s - wall_0)
            results["cpu"].append({"frontend": frontend, "hop": hop, "cpu_percent_of_one_core": round(pct, 2),
                                   "startup_cpu_seconds": round(cpu_0, 3)})
            print(f"  {frontend:5} front end, hop {hop:4} s: {pct:5.2f} % of one core "
                  f"(start-up {cpu_0:.2f} s CPU)")
    print(f"Onset -> GPIO edge over {len(onsets)} alarm onsets (real-time replay, mock pin polled at 1 ms), "
          "event clips off and on (each event's clip written by the clip writer thread):")
    runs = [(hop, smoothing, clips) for hop in (0.1, 0.48) for smoothing in ("none", "k_of_n") for clips in (False, True)]
    if args.clips_only:
        runs = [(0.1, "none", c) for c in (False, True, False, True)]
    for hop, smoothing, clips in runs:
        cfg = write_config(tmp, model, track_path, hop, "fixed", smoothing, clips_section(tmp, clips),
                           tag="-clips" if clips else "-noclips")
        lat = np.array(latency_run(cfg, onsets))
        ok = lat[np.isfinite(lat)]
        row = {"hop": hop, "smoothing": smoothing, "clips": clips, "latencies": [round(float(x), 3) for x in lat],
               "missed": int(np.sum(~np.isfinite(lat))),
               "p50": round(float(np.percentile(ok, 50)), 3) if len(ok) else None,
               "p95": round(float(np.percentile(ok, 95)), 3) if len(ok) else None}
        results["latency"].append(row)
        print(f"  hop {hop:4} s, smoothing {smoothing:6}, clips {'on ' if clips else 'off'}: p50 {row['p50']} s, p95 {row['p95']} s, "
              f"missed {row['missed']}/{len(onsets)}  {row['latencies']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
