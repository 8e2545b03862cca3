#!/usr/bin/env python3
"""The status page's costs (a benchmark, not a test).

    .venv/bin/python benchmarks/web.py [--data ../shared/data] [--seconds 60] [--json PATH]

1. `edgekit web` CPU in % of one core (utime+stime from /proc over --seconds): idle (no daemon,
   no client); fed by a daemon at hop 0.1 s with no page open; with one page's worth of load
   (a Server-Sent Events stream read as it comes, /api/events every 5 s, as app.js does).
2. The daemon's added cost for the live feed: `edgekit run` at hop 0.1 s replaying in real time,
   live feed on (a companion bound) against off, interleaved, start-up subtracted (as
   benchmarks/daemon.py measures CPU).
3. The page's first load in bytes (gzip as a browser asks): the page, its script and style,
   /api/session, /api/status with 5 minutes of history at hop 0.1 s, /api/events with 100 events.
4. Clip storage: FLAC bytes per second of real room sound (events/background, 16 kHz mono), and
   a week of a typical rule set against the default cap ([clips] max_megabytes = 200).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
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
sys.path.insert(0, str(ROOT / "benchmarks"))

from daemon import alarm_track, child_cpu  # noqa: E402
from edgekit.audio.files import read_audio  # noqa: E402
from edgekit.machine import cpu_model  # noqa: E402

RATE = 16000
TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def cpu_over(pid: int, seconds: float) -> float:
    c0, t0 = proc_cpu(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (proc_cpu(pid) - c0) / (time.monotonic() - t0)


def config(tmp: Path, model: Path, source: Path, live: bool) -> Path:
    path = tmp / f"web-{'live' if live else 'nolive'}.toml"
    path.write_text(f"""
[model]
model = "{model}"
[audio]
source = "{source}"
speed = "realtime"
hop_seconds = 0.1
[groups]
alarm = ["Smoke detector, smoke alarm", "Fire alarm", "Alarm", "Siren"]
[[rules]]
name = "smoke_alarm"
labels = ["alarm"]
k = 2
n = 3
hold = 2.0
[[rules]]
name = "glass_break"
labels = ["Glass", "Shatter"]
enter = 0.4
smoothing = "none"
[log]
path = "{tmp / 'state' / 'events.jsonl'}"
[clips]
enabled = false
[web]
live = {str(live).lower()}
listen = "127.0.0.1:{free_port()}"
""")
    return path


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_web(cfg: Path) -> tuple[subprocess.Popen, int]:
    import re

    port = int(re.search(r'listen = "127.0.0.1:(\d+)"', cfg.read_text()).group(1))
    proc = subprocess.Popen([sys.executable, "-m", "edgekit", "web", "--config", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/api/session")
            c.getresponse().read()
            return proc, port
        except OSError:
            time.sleep(0.2)
    raise SystemExit("edgekit web did not start")


def page_client(port: int, stop: threading.Event) -> None:
    """What one open page asks for: the live stream, read as it comes, and the events every 5 s."""
    def stream():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", "/api/live", headers={"Accept": "text/event-stream"})
        r = c.getresponse()
        while not stop.is_set():
            if not r.fp.readline():
                break
        c.close()

    threading.Thread(target=stream, daemon=True).start()
    while not stop.wait(5.0):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/api/events?limit=100", headers={"Accept-Encoding": "gzip"})
        c.getresponse().read()
        c.close()


def first_load(port: int) -> dict:
    sizes = {}
    for path in ("/", "/static/app.js", "/static/style.css", "/api/session", "/api/status", "/api/events?limit=100"):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", path, headers={"Accept-Encoding": "gzip"})
        r = c.getresponse()
        sizes[path] = len(r.read()) + sum(len(k) + len(v) + 4 for k, v in r.getheaders())
        c.close()
    return sizes


def fake_history(state: Path, n_events: int = 100) -> None:
    """An event log with n events (start and end), so /api/events has a realistic page to send."""
    from edgekit.detect.events import Event
    from edgekit.actions import event_json

    with open(state / "events.jsonl", "a") as f:
        for i in range(n_events):
            s = Event("start", "smoke_alarm", "Smoke detector, smoke alarm", 0.9, 0.9, 0.0, time.time(), 10.0 * i)
            e = Event("end", "smoke_alarm", s.label, 0.95, 0.95, 0.0, time.time(), 10.0 * i + 8, duration=8.0, id=s.id,
                      clip=f"{s.id}.flac")
            f.write(event_json(s) + "\n" + event_json(e) + "\n")


class _Skip(Exception):
    pass


def feed_cost(tmp: Path, n: int = 20000) -> dict:
    """CPU microseconds per window the live feed costs the daemon: json + sendto of a message like
    window_message's (two rules, five labels), to a bound reader and to nobody."""
    from edgekit.daemon.live import LiveFeed
    from edgekit.web.live import LiveReceiver

    msg = {"v": 1, "time": time.time(), "stream_time": 123.4, "dbfs": -31.2, "gated": False,
           "top": [["Smoke detector, smoke alarm", 0.97], ["Alarm", 0.9], ["Beep, bleep", 0.5], ["Buzzer", 0.18],
                   ["Fire alarm", 0.08]],
           "rules": [{"name": n, "score": 0.5, "enter": 0.5, "release": 0.3, "active": False} for n in ("a", "b")],
           "model": "yamnet_spectra_in.tflite", "device": "cpu", "frontend": "fixed", "hop": 0.1, "uptime": 1.0,
           "source": "mic", "mic": "heard", "windows": 1, "gated_windows": 0, "inference_ms": 1.2,
           "dropped_blocks": 0, "overflows": 0, "events": {"a": 1}}
    out = {}
    receiver = LiveReceiver(tmp / "feed.sock")
    try:
        feed = LiveFeed(tmp / "feed.sock")
        t0 = time.process_time()
        for _ in range(n):
            if feed.wanted():
                feed.send(msg)
        out["bound"] = (time.process_time() - t0) / n * 1e6  # includes the receiver thread's share
    finally:
        receiver.close()
    feed = LiveFeed(tmp / "nobody.sock")
    t0 = time.process_time()
    for _ in range(n):
        if feed.wanted():
            feed.send(msg)
    out["absent"] = (time.process_time() - t0) / n * 1e6
    return {k: round(v, 2) for k, v in out.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--json")
    ap.add_argument("--parts", default="web,daemon,feed,storage", help="which measurements (comma-separated)")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    data = Path(args.data)
    model = data / "models" / "yamnet_spectra_in.tflite"
    tmp = Path(tempfile.mkdtemp(prefix="edgekit-web-bench-"))
    (tmp / "state").mkdir()
    track, _ = alarm_track(data, 4)
    long = tmp / "long.wav"
    sf.write(long, np.resize(track, int((2 * args.seconds + 400) * RATE)), RATE, subtype="PCM_16")
    res: dict = {"machine": {"cpu": cpu_model(), "cores": os.cpu_count(), "note": "shared 2-core VM, not a Pi"}}

    # 1. the companion
    cfg = config(tmp, model, long, live=True)
    web, port = start_web(cfg) if "web" in parts else (None, 0)
    try:
        if web is None:
            raise _Skip
        time.sleep(3)
        res["web_idle_percent"] = round(cpu_over(web.pid, args.seconds), 3)
        print(f"edgekit web, idle (no daemon, no page): {res['web_idle_percent']:.3f} % of one core")
        daemon = subprocess.Popen([sys.executable, "-m", "edgekit", "run", "--config", str(cfg)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(8)
            res["web_fed_no_page_percent"] = round(cpu_over(web.pid, args.seconds), 3)
            print(f"edgekit web, fed at hop 0.1 s, no page: {res['web_fed_no_page_percent']:.3f} %")
            fake_history(tmp / "state")
            stop = threading.Event()
            threading.Thread(target=page_client, args=(port, stop), daemon=True).start()
            time.sleep(2)
            res["web_one_page_percent"] = round(cpu_over(web.pid, args.seconds), 3)
            stop.set()
            print(f"edgekit web, fed at hop 0.1 s, one page streaming: {res['web_one_page_percent']:.3f} %")
            time.sleep(max(0.0, 300 * 0.1 / 10))
            res["first_load_bytes"] = first_load(port)
            total = sum(res["first_load_bytes"].values())
            res["first_load_total_bytes"] = total
            print(f"first load (gzip): {total} bytes  {res['first_load_bytes']}")
        finally:
            daemon.terminate()
            daemon.wait(20)
    except _Skip:
        pass
    finally:
        if web is not None:
            web.terminate()
            web.wait(10)

    # 2. the daemon's cost for the live feed: on (with a reader) against off, interleaved
    from edgekit.web.live import LiveReceiver

    short = tmp / "short.wav"
    sf.write(short, track[:RATE], RATE, subtype="PCM_16")
    replay = tmp / "replay.wav"
    sf.write(replay, np.resize(track, int(args.seconds * RATE)), RATE, subtype="PCM_16")
    pct = {True: [], False: []}
    receiver = LiveReceiver(tmp / "state" / "live.sock")
    try:
        for _ in range(2 if "daemon" in parts else 0):
            for live in (False, True):
                c = config(tmp, model, replay, live)
                cpu_s, wall_s = child_cpu(c, replay)
                cpu_0, wall_0 = child_cpu(config(tmp, model, short, live), short)
                pct[live].append(100 * (cpu_s - cpu_0) / (wall_s - wall_0))
    finally:
        receiver.close()
    res["daemon_percent"] = {"live_off": [round(x, 3) for x in pct[False]], "live_on": [round(x, 3) for x in pct[True]]}
    if pct[True]:
        added = float(np.mean(pct[True]) - np.mean(pct[False]))
        res["daemon_live_added_percent"] = round(added, 3)
        print(f"edgekit run at hop 0.1 s: live feed off {pct[False]}, on {pct[True]} % -> added {added:.3f} % of one core")
    if "feed" in parts:
        res["feed_message_microseconds"] = feed_cost(tmp)
        us = res["feed_message_microseconds"]
        print(f"live feed, per window in the daemon (a typical message built and sent, reader bound): "
              f"{us['bound']:.1f} us; no reader: {us['absent']:.2f} us -> at hop 0.1 s "
              f"{us['bound'] * 10 / 1e4:.3f} % / {us['absent'] * 10 / 1e4:.4f} % of one core")

    # 4. clip storage
    if "storage" in parts:
        import io

        files = sorted((data / "events" / "background").glob("*/*.flac"))[::5]
        seconds = sum(sf.info(f).frames for f in files) / RATE
        packed = 0
        for f in files:
            buf = io.BytesIO()
            sf.write(buf, read_audio(f), RATE, format="FLAC", subtype="PCM_16")
            packed += len(buf.getvalue())
        bps = packed / seconds
        res["flac_bytes_per_second"] = round(bps)
        # A typical rule set: the example config's two rules; say 5 true events a day, plus 1 false
        # alarm an hour (the worst calibrated rule's rate), each clip 2 + 10 + 2 s.
        per_week = 7 * (5 + 24) * 14 * bps
        res["week_megabytes"] = round(per_week / 1e6, 1)
        print(f"clips: FLAC {bps / 1000:.1f} kB/s of room sound ({len(files)} background clips, {seconds / 60:.0f} min); "
              f"a week of 5 events/day + 1 false alarm/h at 14 s each: {per_week / 1e6:.1f} MB (default cap 200 MB)")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
