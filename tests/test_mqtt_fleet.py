"""A fleet on one broker: 20 real `edgekit run` daemons with their own device_ids, one real Mosquitto.

During the run the broker is restarted twice, one daemon's config is reloaded (SIGHUP, with a
changed [mqtt], so its queue is handed to a new publisher), one is stopped (SIGTERM) while the
broker is away, one is killed -9, and two get commands (a test button, a bad command). Afterwards, for every device: each event its event log
holds arrived on the broker exactly once by (id, kind) once redelivery duplicates are dropped, in
the log's order; its availability read "online" while it ran (announced again after each
restart) and reads "offline" after it stopped (a clean "offline") or was killed (the last will).

Each daemon replays a short recording (cut at test time from the shared recordings into a temp
folder) in real time, so the restarts happen while they listen. Loopback only.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import paho.mqtt.client as mqtt
from mosquitto import make_broker  # noqa: F401 (fixture)
from paho.mqtt.enums import CallbackAPIVersion

DEVICES = int(os.environ.get("EDGEKIT_FLEET_DEVICES", "20"))
PREFIX = "fleet"
RELOADED, KILLED, TESTED, BAD, STOPPED = 3, 5, 7, 8, 9


def make_recording(audio_dir: Path, out: Path) -> float:
    """Smoke alarm, glass, dog with gaps of silence, twice: about 57 s at 16 kHz; its length in seconds."""
    import soundfile as sf

    from edgekit.audio.files import read_audio

    gap = np.zeros(2 * 16000, dtype=np.int16)
    once = []
    for name in ("smoke_alarm.wav", "glass_break.wav", "dog.wav"):
        once += [read_audio(audio_dir / name), gap]
    samples = np.concatenate(once * 2)
    sf.write(out, samples, 16000, subtype="PCM_16")
    return len(samples) / 16000


def write_config(folder: Path, models_dir: Path, broker, device: str, keepalive: int = 30) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "edgekit.toml"
    path.write_text(f"""
[model]
model = "{models_dir / 'yamnet_spectra_in.tflite'}"
frontend = "fixed"

[audio]
hop_seconds = 0.48
speed = "realtime"

[groups]
alarm = ["Smoke detector, smoke alarm", "Fire alarm", "Alarm", "Siren"]

[[rules]]
name = "smoke_alarm"
labels = ["alarm"]
enter = 0.5
release = 0.3
hold = 1.0

[[rules]]
name = "glass"
labels = ["Glass", "Shatter", "Smash, crash"]
enter = 0.3
release = 0.2

[[rules]]
name = "dog"
labels = ["Dog", "Bark", "Animal"]
enter = 0.3
release = 0.2
hold = 0.5

[log]
path = "{folder / 'events.jsonl'}"

[mqtt]
host = "{broker.host}"
port = {broker.port}
device_id = "{device}"
topic_prefix = "{PREFIX}"
keepalive = {keepalive}
""")
    return path


class Watcher:
    """A persistent-session subscriber (its queue survives the broker's restarts) to the fleet's topics."""

    def __init__(self, broker):
        self.cond = threading.Condition()
        self.events: dict[str, list[dict]] = defaultdict(list)  # device -> event payloads, as they arrived
        self.availability: dict[str, list[str]] = defaultdict(list)
        self.acks: dict[str, list[dict]] = defaultdict(list)
        self.status: dict[str, list[dict]] = defaultdict(list)
        self.levels: dict[str, list[float]] = defaultdict(list)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fleet-watcher", clean_session=False)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(
            [(f"{PREFIX}/+/{t}", 1) for t in ("event/+", "availability", "ack", "status", "level")])
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg):
        device, kind = msg.topic.split("/")[1:3]
        with self.cond:
            if kind == "event":
                self.events[device].append(json.loads(msg.payload))
            elif kind == "availability":
                if not msg.retain:  # a live message: a retained copy (on resubscribing) proves nothing
                    self.availability[device].append(msg.payload.decode())
            elif kind == "status":
                self.status[device].append(json.loads(msg.payload))
            elif kind == "level":
                self.levels[device].append(float(msg.payload))
            else:
                self.acks[device].append(json.loads(msg.payload))
            self.cond.notify_all()

    def wait(self, predicate, timeout: float, what: str):
        with self.cond:
            assert self.cond.wait_for(predicate, timeout), f"timed out waiting for {what}"

    def online_count(self, device: str) -> int:
        return self.availability[device].count("online")

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def logged(folder: Path) -> list[dict]:
    path = folder / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_twenty_daemons_one_broker_restarts_reload_and_kill(make_broker, models_dir, audio_dir, tmp_path):
    broker = make_broker(persistence=True)
    recording = tmp_path / "fleet.wav"
    seconds = make_recording(audio_dir, recording)
    names = [f"dev{i:02d}" for i in range(DEVICES)]
    folders = {name: tmp_path / name for name in names}
    watcher = Watcher(broker)
    procs: dict[str, subprocess.Popen] = {}
    t0 = time.monotonic()
    try:
        for name in names:
            config = write_config(folders[name], models_dir, broker, name)
            with open(folders[name] / "daemon.log", "wb") as out:
                procs[name] = subprocess.Popen(
                    [sys.executable, "-m", "edgekit", "run", "--config", str(config), "--source", str(recording)],
                    stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        running = lambda: [n for n in names if procs[n].poll() is None]  # noqa: E731

        def all_online(before: dict[str, int]):
            return lambda: all(watcher.online_count(n) > before.get(n, 0) for n in running())

        watcher.wait(all_online({}), 90, "every daemon to announce itself online")
        started = time.monotonic() - t0
        assert len(running()) == DEVICES, "a daemon exited early"

        restarts = 0
        for _ in range(2):  # the broker goes away and comes back while they listen
            before = {n: watcher.online_count(n) for n in names}
            broker.stop()
            if restarts == 1:  # a stop while the broker is away: it waits for it, then says "offline"
                procs[names[STOPPED]].send_signal(signal.SIGTERM)
            time.sleep(1.5)
            broker.start()
            restarts += 1
            if restarts == 2:
                assert procs[names[STOPPED]].wait(timeout=30) == 0
            watcher.wait(all_online(before), 30, f"every daemon to come back online after restart {restarts}")
            if restarts == 1:
                # A reload that changes [mqtt]: a new publisher takes over the old one's queue.
                write_config(folders[names[RELOADED]], models_dir, broker, names[RELOADED], keepalive=20)
                procs[names[RELOADED]].send_signal(signal.SIGHUP)
                # The test button, and a command that is refused (unknown rule): acknowledged both ways.
                watcher.client.publish(f"{PREFIX}/{names[TESTED]}/command",
                                       json.dumps({"command": "test", "rule": "glass", "id": "t1"}), qos=1)
                watcher.client.publish(f"{PREFIX}/{names[BAD]}/command",
                                       json.dumps({"command": "mute", "rule": "cat", "seconds": 60}), qos=1)
                watcher.wait(lambda: watcher.acks[names[TESTED]] and watcher.acks[names[BAD]], 20, "the commands' acks")
        survived = {n for n in running()}

        # kill -9 once everything it logged has arrived, just after an event (the recording's next is seconds away).
        victim = names[KILLED]
        def victim_quiet():
            got = {(e["id"], e["kind"]) for e in watcher.events[victim]}
            mine = logged(folders[victim])
            return len(mine) >= 2 and {(e["id"], e["kind"]) for e in mine} <= got
        watcher.wait(victim_quiet, 60, "the victim's events to arrive")
        procs[victim].kill()
        procs[victim].wait()

        deadline = time.monotonic() + seconds + 90
        for name, proc in procs.items():
            proc.wait(timeout=max(1, deadline - time.monotonic()))
        # Clean stops say "offline"; the killed one's last will says it for it.
        watcher.wait(lambda: all(watcher.availability[n][-1:] == ["offline"] for n in names), 30,
                     "every device to read offline")
        time.sleep(0.5)  # stragglers: redelivered duplicates, if any
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        watcher.close()

    sent = received = duplicates = 0
    for name in names:
        mine = [(e["id"], e["kind"]) for e in logged(folders[name])]
        arrived = [(e["id"], e["kind"]) for e in watcher.events[name]]
        first = list(dict.fromkeys(arrived))  # redelivery duplicates dropped by (id, kind)
        log_text = (folders[name] / "daemon.log").read_text()
        assert mine, f"{name} logged no events:\n{log_text[-3000:]}"
        assert len(set(mine)) == len(mine), f"{name}: an (id, kind) twice in its own event log"
        assert first == mine, f"{name}: events on the broker differ from its event log:\n{log_text[-3000:]}"
        if name != victim:  # each occurrence's start and end share its id; a stop ends what is open
            assert set(Counter(i for i, _ in mine).values()) == {2}, f"{name}: {mine}"
        sent += len(mine)
        received += len(first)
        duplicates += len(arrived) - len(first)
        if name != victim:
            assert procs[name].returncode == 0, f"{name} exited {procs[name].returncode}:\n{log_text[-3000:]}"
            assert "Traceback" not in log_text
        assert watcher.availability[name][0] == "online" and watcher.availability[name][-1] == "offline"
        # The device's sensors: its state while it listened, and its microphone level.
        assert watcher.status[name] and {s["state"] for s in watcher.status[name]} == {"listening"}
        assert all(-120 <= v <= 0 for v in watcher.levels[name])
        if name != names[STOPPED]:  # (stopped within seconds of its start)
            assert watcher.levels[name], name
    assert "config reloaded" in (folders[names[RELOADED]] / "daemon.log").read_text()
    tested = logged(folders[names[TESTED]])
    assert [e["kind"] for e in tested if e["label"] == "test"] == ["start", "end"]
    assert watcher.acks[names[TESTED]] and all(a["ok"] for a in watcher.acks[names[TESTED]])  # run once (above)
    bad = watcher.acks[names[BAD]]
    # QoS 1 is at least once: across a broker restart the command or its answer may come twice.
    assert bad and all(not a["ok"] and "cat" in a["error"] for a in bad), bad
    assert survived == set(names) - {names[STOPPED]}  # the others lived through both restarts
    print(f"\nfleet: {DEVICES} daemons, {restarts} broker restarts survived by {len(survived)}, {sent} events sent "
          f"(event logs), {received} received once by (id, kind), {duplicates} redelivery duplicates dropped; "
          f"all online after {started:.1f} s, run {time.monotonic() - t0:.1f} s")
