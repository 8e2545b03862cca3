"""One device among many on a broker: its default id, its sensors, its commands, its warnings, and
what it keeps on disk when it stops while the broker is away. Against a real Mosquitto."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from mosquitto import Mosquitto, make_broker, mosquitto  # noqa: F401 (fixtures)
from test_actions_mqtt import FAST, GLASS, SMOKE, Subscriber, event, make_certs, retained, settings, wait_until
from test_service import notify  # noqa: F401 (fixture)

from edgekit.actions import build_actions
from edgekit.actions.device_id import host_device_id
from edgekit.actions.mqtt import MqttPublisher
from edgekit.actions.mqtt_connect import likely_cause
from edgekit.actions.mqtt_sensors import LevelLimiter
from edgekit.actions.mqtt_store import OutboxStore, store_path
from edgekit.actions.mute import MAX_MUTE_SECONDS, Mutes
from edgekit.daemon.config import parse_config
from edgekit.daemon.remote import Remote, parse_command
from edgekit.daemon.settings import Config, EventLogSettings, MqttSettings
from edgekit.detect.events import Event
from edgekit.errors import CommandError



# -- a unique device id by default ------------------------------------------------------------------

def test_device_id_defaults_to_this_hosts_name_cleaned_for_topics(tmp_path):
    assert MqttSettings(host="h").device_id == host_device_id() != "edgekit"
    rules = [{"name": "smoke", "labels": ["Smoke detector, smoke alarm"]}]
    assert parse_config({"rules": rules, "mqtt": {"host": "h"}}).mqtt.device_id == host_device_id()
    assert host_device_id("Kitchen Pi.local") == "kitchen_pi"
    assert host_device_id("hall+#/pi") == "hall_pi"
    machine_id = tmp_path / "machine-id"
    machine_id.write_text("0123abcdef4567\n")
    # Raspberry Pi OS's stock name says nothing about which Pi it is: the machine id tells them apart.
    assert host_device_id("raspberrypi", machine_id) == "raspberrypi_0123ab"
    assert host_device_id("", tmp_path / "none") == "edgekit"


def test_config_check_shows_the_device_id(tmp_path, models_dir):
    config = tmp_path / "edgekit.toml"
    config.write_text(f'[model]\nmodel = "{models_dir / "yamnet_spectra_in.tflite"}"\n'
                      '[[rules]]\nname = "smoke"\nlabels = ["Smoke detector, smoke alarm"]\n'
                      '[mqtt]\nhost = "127.0.0.1"\n')
    out = subprocess.run([sys.executable, "-m", "edgekit", "config", "check", str(config)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"as device_id {host_device_id()!r} (this host's name" in out.stdout


# -- event ids -----------------------------------------------------------------------------------------

def test_every_event_message_carries_its_id_shared_by_start_and_end(mosquitto):
    sub = Subscriber(mosquitto, "edgekit/dev30/event/#")
    pub = MqttPublisher(settings(mosquitto, device_id="dev30"), [SMOKE], **FAST)
    try:
        start = event("start")
        pub.handle(start)
        pub.handle(Event("end", "smoke", start.label, 0.2, 0.9, 12.0, 1.7e9 + 2, 2.0, 2.0, id=start.id))
        pub.handle(event("start", i=5))
        got = [json.loads(p) for p in sub.wait("edgekit/dev30/event/smoke", 3)]
    finally:
        pub.close()
        sub.close()
    assert [(m["id"], m["kind"]) for m in got][:2] == [(start.id, "start"), (start.id, "end")]
    assert got[2]["id"] != start.id and len({(m["id"], m["kind"]) for m in got}) == 3


# -- sensors -------------------------------------------------------------------------------------------

def test_level_limiter_publishes_at_most_every_5_s_and_only_on_a_1_db_change():
    lim = LevelLimiter()
    assert lim.due(-40.04, 0.0) == -40.0
    assert lim.due(-20.0, 4.9) is None  # too soon, however large the change
    assert lim.due(-40.5, 10.0) is None  # late enough, but less than 1 dB from the last
    assert lim.due(-41.0, 10.1) == -41.0
    assert lim.due(float("-inf"), 20.0) == -120.0  # digital silence: a number JSON and HA take
    assert lim.due(float("nan"), 40.0) is None


def test_device_sensors_with_home_assistant_discovery(mosquitto):
    base = "edgekit/dev31"
    sub = Subscriber(mosquitto, f"{base}/#", "homeassistant/#")
    pub = MqttPublisher(settings(mosquitto, device_id="dev31", homeassistant_discovery=True), [SMOKE], **FAST)
    try:
        assert pub.wait_connected(5)
        pub.level(-43.2)
        pub.handle(event("start"))
        status = json.loads(sub.wait(f"{base}/status")[-1])
        assert status["state"] == "listening" and status["queued"] in (0, 1)
        pub.set_state("waiting_for_microphone")
        assert wait_until(lambda: json.loads(sub.on(f"{base}/status")[-1])["state"] == "waiting_for_microphone")
        last = json.loads(sub.wait(f"{base}/last")[-1])
        assert (last["label"], last["score"], last["rule"]) == ("Smoke detector, smoke alarm", 0.8, "smoke")
        assert len(last["id"]) == 36
        assert sub.wait(f"{base}/level") == ["-43.2"]
        configs = {m.topic: json.loads(m.payload) for m in sub.messages if m.topic.startswith("homeassistant/")}
    finally:
        pub.close()
        sub.close()
    level = configs["homeassistant/sensor/dev31/level/config"]
    assert level["state_topic"] == f"{base}/level" and level["unit_of_measurement"] == "dBFS"
    state = configs["homeassistant/sensor/dev31/state/config"]
    assert state["options"] == ["listening", "waiting_for_microphone", "error"]
    assert state["availability_topic"] == f"{base}/availability"
    assert configs["homeassistant/sensor/dev31/last_label/config"]["value_template"] == "{{ value_json.label }}"
    assert configs["homeassistant/sensor/dev31/last_score/config"]["state_topic"] == f"{base}/last"
    button = configs["homeassistant/button/dev31/smoke_test/config"]
    assert button["command_topic"] == f"{base}/command"
    assert json.loads(button["payload_press"]) == {"command": "test", "rule": "smoke"}
    # After a stop the state is retained as last set, and availability says the rest.
    assert retained(mosquitto, f"{base}/availability") == "offline"


def test_the_queue_length_is_on_the_status_topic_and_in_the_status_line(make_broker):
    broker = make_broker()
    pub = MqttPublisher(settings(broker, device_id="dev32"), [SMOKE], **FAST)
    try:
        assert pub.wait_connected(5)
        broker.stop()
        assert wait_until(lambda: not pub.connected)
        for i in range(3):
            pub.handle(event("start", i=i))
        assert "3 queued" in pub.status()
        broker.start()
        sub = Subscriber(broker, "edgekit/dev32/status")
        try:
            assert pub.wait_connected(10)
            queued = [json.loads(p)["queued"] for p in sub.wait("edgekit/dev32/status")]
            assert queued[0] == 3  # what was waiting when the broker came back
            assert wait_until(lambda: pub.queued == 0)
            pub.refresh_status()  # the daemon calls it every 5 s
            assert wait_until(lambda: [json.loads(p)["queued"] for p in sub.on("edgekit/dev32/status")][-1] == 0)
        finally:
            sub.close()
    finally:
        pub.close()


# -- warnings ------------------------------------------------------------------------------------------

def test_plain_mqtt_to_a_tls_port_is_a_warning_that_says_so(make_broker, tmp_path, caplog):
    ca, cert, key = make_certs(tmp_path)
    broker = make_broker(extra=(f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"))
    caplog.set_level(logging.INFO)
    pub = MqttPublisher(settings(broker, device_id="dev33"), [SMOKE], reconnect_delay=(0.1, 0.2), flush_seconds=0.2)
    try:
        pub.handle(event())
        assert wait_until(lambda: "tls = true" in pub.status(), 10), pub.status()
        time.sleep(0.5)  # more failures: still one line
    finally:
        pub.close()
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "twice" in r.getMessage()]
    assert len(warned) == 1 and "closed the connection before answering" in warned[0], warned
    assert "1 queued" in pub.status() or "not delivered" in caplog.text
    assert "8883 is MQTT over TLS; set [mqtt] tls = true" in likely_cause(8883, False)


# -- commands ------------------------------------------------------------------------------------------

RULES = ("smoke", "glass")


@pytest.mark.parametrize("payload, why", [
    (b"not json", "not JSON"),
    (b"[1, 2]", "a JSON object"),
    (b'{"rule": "smoke"}', "command must be one of mute, unmute, test"),
    (b'{"command": "mute", "rule": "cat", "seconds": 60}', "rule must be one of this device's rules (smoke, glass)"),
    (b'{"command": "mute", "rule": "smoke"}', "seconds must be a number above 0 and at most 3600"),
    (b'{"command": "mute", "rule": "smoke", "seconds": 0}', "at most 3600, got 0"),
    (b'{"command": "mute", "rule": "smoke", "seconds": 3601}', "got 3601"),
    (b'{"command": "mute", "rule": "smoke", "seconds": "600"}', 'got "600"'),
    (b'{"command": "mute", "rule": "smoke", "seconds": true}', "got true"),
    (b'{"command": "mute", "rule": "smoke", "seconds": NaN}', "got NaN"),
    (b'{"command": "test", "rule": "smoke", "seconds": 31}', "at most 30"),
    (b'{"command": "unmute", "rule": "smoke", "seconds": 5}', "unknown key 'seconds'"),
    (b'{"command": "test", "rule": "smoke", "id": 5}', "id must be a string"),
    (b"[" * 1000, "not JSON"),  # deep nesting: refused, no RecursionError
])
def test_commands_are_checked_like_config(payload, why):
    with pytest.raises(CommandError) as info:
        parse_command(payload, len(payload), False, RULES)
    assert why in str(info.value)


def test_oversized_and_retained_commands_are_refused():
    with pytest.raises(CommandError, match="at most 1024 bytes"):
        parse_command(None, 5000, False, RULES)
    with pytest.raises(CommandError, match="retained"):
        parse_command(b'{"command": "test", "rule": "smoke"}', 36, True, RULES)
    ok = parse_command(b'{"command": "mute", "rule": "smoke", "seconds": 600, "id": "a"}', 60, False, RULES)
    assert (ok.command, ok.rule, ok.seconds, ok.id) == ("mute", "smoke", 600.0, "a")
    assert parse_command(b'{"command": "test", "rule": "glass"}', 40, False, RULES).seconds == 2.0


def test_mutes_hold_whole_occurrences_and_always_end():
    now = [0.0]
    mutes = Mutes(clock=lambda: now[0], wall=lambda: 1000 + now[0])
    before = Event("start", "smoke", "x", 0.9, 0.9, 0, 0, 0)
    assert not mutes.holds(before) and mutes.sounding("smoke")
    assert mutes.mute("smoke", 600) == 1600
    with pytest.raises(ValueError):
        mutes.mute("smoke", MAX_MUTE_SECONDS + 1)
    assert not mutes.holds(Event("end", "smoke", "x", 0.1, 0.9, 1, 1, 1, 1.0, id=before.id))  # its end still goes out
    during = Event("start", "smoke", "x", 0.9, 0.9, 2, 2, 2)
    assert mutes.holds(during) and not mutes.sounding("smoke")
    assert not mutes.holds(Event("start", "glass", "x", 0.9, 0.9, 2, 2, 2))  # another rule is not muted
    now[0] = 601.0
    assert mutes.expire() == ["smoke"] and not mutes.muted("smoke")
    assert mutes.holds(Event("end", "smoke", "x", 0.1, 0.9, 3, 3, 3, 1.0, id=during.id))  # silent to its end
    assert not mutes.holds(Event("start", "smoke", "x", 0.9, 0.9, 4, 4, 4))


class Commander:
    """A paho client that sends commands to a device and collects its acks."""

    def __init__(self, broker: Mosquitto, base: str):
        self.base = base
        self.sub = Subscriber(broker, f"{base}/ack", f"{base}/event/#")

    def send(self, payload, retain: bool = False):
        data = payload if isinstance(payload, (bytes, str)) else json.dumps(payload)
        self.sub.client.publish(f"{self.base}/command", data, qos=1, retain=retain).wait_for_publish(5)

    def acks(self) -> list[dict]:
        return [json.loads(p) for p in self.sub.on(f"{self.base}/ack")]

    def events(self, rule: str) -> list[dict]:
        return [json.loads(p) for p in self.sub.on(f"{self.base}/event/{rule}")]


def test_commands_are_carried_out_by_the_main_loop_and_acknowledged(mosquitto, tmp_path, caplog):
    config = Config(rules=(SMOKE, GLASS), mqtt=settings(mosquitto, device_id="dev34"),
                    log=EventLogSettings(path=str(tmp_path / "events.jsonl")))
    actions = build_actions(config)
    svc = SimpleNamespace(config=config, actions=actions, pipeline=None, source=None, stream_time=0.0)
    threads = []

    def dispatch(events):
        threads.append(threading.current_thread())
        for ev in events:
            actions.handle(ev)

    remote = Remote(svc, dispatch)
    actions.mutes = remote.mutes
    pub = next(a for a in actions if a.kind == "mqtt")
    cmd = Commander(mosquitto, "edgekit/dev34")
    try:
        assert pub.wait_connected(5)
        cmd.send({"command": "mute", "rule": "smoke", "seconds": 600, "id": "m1"})
        time.sleep(0.5)
        assert cmd.acks() == [] and not remote.mutes.muted("smoke")  # nothing happens on paho's thread
        assert wait_until(lambda: (remote.tick(), cmd.acks())[1])
        ack = cmd.acks()[0]
        assert ack["ok"] and ack["id"] == "m1" and ack["command"] == "mute" and ack["until"].endswith("+00:00")
        assert remote.mutes.muted("smoke")
        # A muted rule's detection: in the event log, not on the broker.
        heard = event("start")
        assert actions.handle(heard) is False
        # Refused, each with a reason and nothing changed: bad JSON, unknown rule, a mute past the cap,
        # a test of a muted rule, an oversized payload, a retained command.
        cmd.send(b"{bad")
        cmd.send({"command": "mute", "rule": "cat", "seconds": 5})
        cmd.send({"command": "mute", "rule": "glass", "seconds": 99999, "id": "m2"})
        cmd.send({"command": "test", "rule": "smoke"})
        cmd.send(b"{" + b" " * 2000 + b"}")
        assert wait_until(lambda: (remote.tick(), len(cmd.acks()) == 6)[1])
        refused = cmd.acks()[1:]
        assert [a["ok"] for a in refused] == [False] * 5 and refused[2]["id"] == "m2"
        assert "not JSON" in refused[0]["error"] and "cat" in refused[1]["error"] and "3600" in refused[2]["error"]
        assert "muted" in refused[3]["error"] and "1024" in refused[4]["error"]
        assert not remote.mutes.muted("glass")
        assert len([r for r in caplog.records if "MQTT command refused" in r.getMessage()]) == 5
        # Unmute, then press the test button: a start now and an end 0.5 s later, through every action.
        cmd.send({"command": "unmute", "rule": "smoke"})
        cmd.send({"command": "test", "rule": "smoke", "seconds": 0.5, "id": "t1"})
        cmd.send({"command": "test", "rule": "smoke", "seconds": 0.5, "id": "t1"})  # a redelivery: not run twice
        assert wait_until(lambda: (remote.tick(), len(cmd.events("smoke")) >= 2)[1], 10)
        acks = cmd.acks()[6:]
        assert acks[0]["ok"] and acks[0]["was_muted"] and acks[1]["ok"] and acks[2].get("repeat")
        got = cmd.events("smoke")
        assert [(e["kind"], e["label"]) for e in got] == [("start", "test"), ("end", "test")]
        assert got[0]["id"] == got[1]["id"] == acks[1]["event"] and got[1]["duration"] == 0.5
    finally:
        remote.close()
        actions.close()
        cmd.sub.close()
    assert set(threads) == {threading.main_thread()}
    logged = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [(e["id"], e["label"]) for e in logged] == [(heard.id, heard.label), (got[0]["id"], "test"),
                                                       (got[0]["id"], "test")]


def test_a_retained_command_is_refused_not_run_at_every_connect(mosquitto):
    setter = Subscriber(mosquitto, "edgekit/dev39/ack")
    setter.client.publish("edgekit/dev39/command", json.dumps({"command": "test", "rule": "smoke"}), qos=1,
                          retain=True).wait_for_publish(5)
    config = Config(rules=(SMOKE,), mqtt=settings(mosquitto, device_id="dev39"))
    actions = build_actions(config)
    svc = SimpleNamespace(config=config, actions=actions, pipeline=None, source=None, stream_time=0.0)
    remote = Remote(svc, lambda events: [actions.handle(e) for e in events])
    try:
        assert wait_until(lambda: (remote.tick(), setter.on("edgekit/dev39/ack"))[1])
        ack = json.loads(setter.on("edgekit/dev39/ack")[0])
        assert not ack["ok"] and "retained" in ack["error"] and not remote.mutes.sounding("smoke")
    finally:
        setter.client.publish("edgekit/dev39/command", b"", retain=True).wait_for_publish(5)  # clear it
        actions.close()
        setter.close()


# -- a stop while the broker is away -----------------------------------------------------------------

def test_a_close_waits_a_while_for_a_restarting_broker(make_broker):
    broker = make_broker()
    pub = MqttPublisher(settings(broker, device_id="dev35", close_seconds=8), [SMOKE], reconnect_delay=(0.1, 0.3))
    assert pub.wait_connected(5)
    broker.stop()
    assert wait_until(lambda: not pub.connected)
    pub.handle(event())
    threading.Timer(1.0, broker.start).start()
    pub.close()  # returns once the broker took the event and "offline"
    assert pub.sent == 1 and "0 queued" in pub.status()
    assert retained(broker, "edgekit/dev35/availability") == "offline"


def test_undelivered_events_are_kept_on_disk_and_delivered_once_at_the_next_start(make_broker, tmp_path, caplog):
    broker = make_broker(start=False)
    path = store_path(tmp_path, "dev36")
    s = settings(broker, device_id="dev36", close_seconds=0.3)
    first = MqttPublisher(s, [SMOKE], store=OutboxStore(path), **FAST)
    sent = [event("start", i=i) for i in range(3)]
    for ev in sent:
        first.handle(ev)
    first.close()
    assert "3 queued events were not delivered before close; kept in" in caplog.text
    kept = json.loads(path.read_text())
    assert [json.loads(e["payload"])["id"] for e in kept["events"]] == [ev.id for ev in sent]
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no temporary file left

    broker.start()
    sub = Subscriber(broker, "edgekit/dev36/event/#")
    again = MqttPublisher(s, [SMOKE], store=OutboxStore(path), start=False, **FAST)
    try:
        assert again.restore() == 3
        again.handle(event("start", i=9))  # a new event goes after the kept ones
        again.start()
        got = [json.loads(p)["id"] for p in sub.wait("edgekit/dev36/event/smoke", 4)]
        assert got == [ev.id for ev in sent] + [got[3]]
        assert wait_until(lambda: not path.exists())  # delivered: the file is gone, so never sent again
    finally:
        again.close()
        sub.close()
    third = MqttPublisher(s, [SMOKE], store=OutboxStore(path), start=False, **FAST)
    assert third.restore() == 0
    third.close()


def test_an_unreadable_kept_file_is_moved_aside_not_fatal(tmp_path, caplog):
    path = store_path(tmp_path, "dev37")
    path.write_text('{"format": "edgekit-mqtt-outbox", "events": [' * 5000)
    assert OutboxStore(path).load(10) == []
    assert not path.exists() and path.with_name(path.name + ".bad").exists()
    assert "unreadable" in caplog.text


def test_the_daemon_keeps_what_it_could_not_send_beside_its_event_log(make_broker, tmp_path, models_dir, audio_dir):
    broker = make_broker(start=False)
    config = tmp_path / "edgekit.toml"
    config.write_text(f"""
[model]
model = "{models_dir / 'yamnet_spectra_in.tflite'}"
[audio]
hop_seconds = 0.48
[groups]
alarm = ["Smoke detector, smoke alarm", "Fire alarm", "Alarm", "Siren"]
[[rules]]
name = "smoke_alarm"
labels = ["alarm"]
[log]
path = "{tmp_path / 'events.jsonl'}"
[mqtt]
host = "{broker.host}"
port = {broker.port}
device_id = "dev38"
close_seconds = 0.5
""")
    run = [sys.executable, "-m", "edgekit", "run", "--config", str(config), "--source",
           str(audio_dir / "smoke_alarm.wav"), "--speed", "max"]
    out = subprocess.run(run, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    kept = tmp_path / "mqtt-outbox.dev38.json"
    assert kept.exists() and "kept in" in out.stderr
    n = len((tmp_path / "events.jsonl").read_text().splitlines())
    assert n >= 2
    broker.start()
    sub = Subscriber(broker, "edgekit/dev38/event/#")
    try:
        out = subprocess.run(run, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert f"{n} undelivered events from the last stop" in out.stderr
        got = [(e["id"], e["kind"]) for e in map(json.loads, sub.wait("edgekit/dev38/event/smoke_alarm", 2 * n))]
    finally:
        sub.close()
    logged = [(e["id"], e["kind"]) for e in map(json.loads, (tmp_path / "events.jsonl").read_text().splitlines())]
    assert got == logged and len(logged) == 2 * n  # the first run's, once, then the second run's
    assert not kept.exists()


# -- in the daemon ---------------------------------------------------------------------------------------

def test_a_muted_rule_in_the_daemon_drives_no_gpio_and_no_mqtt_but_is_logged(tmp_path, mosquitto, notify, models_dir,
                                                                            audio_dir, recordings):
    """The real service: a mute command over MQTT, then a smoke alarm: only the event log has it; STATUS
    (sd_notify) and the status topic carry the queue length and the mute."""
    import soundfile as sf
    import numpy as np
    from test_service import gpio_device, run_with_scenario, write_config

    from edgekit.daemon.service import Service

    source = tmp_path / "quiet-then-alarm.wav"  # 4 s of silence first: time to mute before the alarm
    sf.write(source, np.concatenate([np.zeros(4 * 16000, np.int16), recordings["smoke_alarm.wav"]]), 16000)
    config = write_config(tmp_path / "edgekit.toml", models_dir, source=str(source), hop=0.48, broker=mosquitto)
    cmd = Commander(mosquitto, "edgekit/testpi")
    status = Subscriber(mosquitto, "edgekit/testpi/status")
    service = Service(str(config))

    def scenario(svc, result):
        notify.wait_for("READY", 30)
        cmd.send({"command": "mute", "rule": "smoke_alarm", "seconds": 120})
        assert wait_until(lambda: cmd.acks(), 5)
        pin, high = gpio_device(svc, "smoke_alarm"), False
        deadline = time.monotonic() + 40
        while not any(e.kind == "end" for e in svc.events) and time.monotonic() < deadline:
            high |= bool(pin.value)
            time.sleep(0.02)
        result["high"] = high

    result = run_with_scenario(service, scenario)
    cmd.sub.close()
    status.close()
    assert result["rc"] == 0 and cmd.acks()[0]["ok"]
    assert not result["high"], "a muted rule must not drive its pin"
    logged = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [x["kind"] for x in logged] == ["start", "end"]
    assert cmd.events("smoke_alarm") == []
    muted = [json.loads(p) for p in status.on("edgekit/testpi/status")]
    assert any("smoke_alarm" in s.get("muted", {}) for s in muted) and all("queued" in s for s in muted)
    assert any("queued" in m.get("STATUS", "") for m in notify.messages)
