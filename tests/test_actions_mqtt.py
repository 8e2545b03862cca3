"""MQTT action against a real Mosquitto broker, checked with a real paho subscriber."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from mosquitto import Mosquitto, make_broker, mosquitto  # noqa: F401 (fixtures)
from paho.mqtt.enums import CallbackAPIVersion

from edgekit.actions import build_actions
from edgekit.actions.mqtt import MqttPublisher
from edgekit.errors import EdgekitError, MqttError
from edgekit.detect.events import Event
from edgekit.daemon.settings import Config, MqttSettings, Rule

ROOT = Path(__file__).resolve().parents[1]
SMOKE = Rule("smoke", ("Smoke detector, smoke alarm",))
GLASS = Rule("glass", ("Glass", "Shatter"))
FAST = {"reconnect_delay": (0.1, 0.5), "flush_seconds": 1.0}


def event(kind: str = "start", rule: str = "smoke", i: int = 0) -> Event:
    return Event(kind, rule, "Smoke detector, smoke alarm", 0.8, 0.9, 10.0 + i, 1.7e9 + i, float(i), 0.0)


def settings(broker: Mosquitto, **kw) -> MqttSettings:
    return MqttSettings(host=broker.host, port=broker.port, **kw)


def wait_until(cond, timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.01)
    return cond()


class Subscriber:
    """A paho client that records what arrives; ``clean=False`` keeps its session across broker restarts."""

    def __init__(self, broker: Mosquitto, *topics: str, client_id: str = "", clean: bool = True, auth=None):
        self.messages: list[mqtt.MQTTMessage] = []
        self.cond = threading.Condition()
        self.subscribed = threading.Event()
        self.topics = topics
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean)
        if auth:
            self.client.username_pw_set(*auth)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self.subscribed.wait(5), "the test subscriber could not subscribe"

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if not reason_code.is_failure:
            client.subscribe([(t, 1) for t in self.topics])

    def _on_message(self, client, userdata, msg):
        with self.cond:
            self.messages.append(msg)
            self.cond.notify_all()

    def on(self, topic: str) -> list[str]:
        with self.cond:
            return [m.payload.decode() for m in self.messages if m.topic == topic]

    def wait(self, topic: str, n: int = 1, timeout: float = 5.0) -> list[str]:
        with self.cond:
            self.cond.wait_for(lambda: len([m for m in self.messages if m.topic == topic]) >= n, timeout)
        return self.on(topic)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def retained(broker: Mosquitto, topic: str, timeout: float = 2.0) -> str | None:
    sub = Subscriber(broker, topic)
    try:
        got = sub.wait(topic, 1, timeout)
        return got[-1] if got else None
    finally:
        sub.close()


@pytest.fixture
def publishers():
    made: list[MqttPublisher] = []

    def make(*args, **kw) -> MqttPublisher:
        made.append(MqttPublisher(*args, **{**FAST, **kw}))
        return made[-1]

    yield make
    for p in made:
        p.close()


def test_event_messages_arrive_as_json_with_retained_state(mosquitto, publishers):
    sub = Subscriber(mosquitto, "edgekit/dev1/#")
    pub = publishers(settings(mosquitto, device_id="dev1"), [SMOKE, GLASS])
    assert pub.wait_connected(5)
    pub.handle(event("start"))
    pub.handle(Event("end", "smoke", "Smoke detector, smoke alarm", 0.8, 0.95, 12.0, 1.7e9 + 2, 2.0, 2.0))
    got = [json.loads(p) for p in sub.wait("edgekit/dev1/event/smoke", 2)]
    assert [g["kind"] for g in got] == ["start", "end"]
    start, end = got
    assert set(start) == {*event().as_dict(), "time"}
    assert start["label"] == "Smoke detector, smoke alarm" and start["score"] == 0.8
    assert datetime.fromisoformat(start["time"]).timestamp() == pytest.approx(1.7e9)
    assert end["duration"] == 2.0 and end["peak"] == 0.95
    assert sub.wait("edgekit/dev1/state/smoke", 3)[-1] == "OFF"  # OFF on connect, ON, OFF
    assert "ON" in sub.on("edgekit/dev1/state/smoke")
    assert retained(mosquitto, "edgekit/dev1/state/glass") == "OFF"
    assert wait_until(lambda: pub.sent == 2)
    assert pub.status() == f"mqtt 127.0.0.1:{mosquitto.port} connected, 2 sent, 0 queued, 0 dropped"
    pub.handle(event("start", rule="not-published"))  # rules without mqtt are ignored
    sub.close()


def test_rules_with_mqtt_off_are_not_published(mosquitto, publishers):
    sub = Subscriber(mosquitto, "edgekit/dev2/event/#")
    pub = publishers(settings(mosquitto, device_id="dev2"), [SMOKE, Rule("quiet", ("Speech",), mqtt=False)])
    assert pub.wait_connected(5)
    pub.handle(event("start", "quiet"))
    pub.handle(event("start", "smoke"))
    sub.wait("edgekit/dev2/event/smoke")
    assert not sub.on("edgekit/dev2/event/quiet")
    sub.close()


def test_availability_online_then_offline_after_close(mosquitto, publishers):
    pub = publishers(settings(mosquitto, device_id="dev3", topic_prefix="home/sound"), [SMOKE])
    assert pub.wait_connected(5)
    assert wait_until(lambda: retained(mosquitto, "home/sound/dev3/availability", 0.5) == "online")
    pub.close()
    assert retained(mosquitto, "home/sound/dev3/availability") == "offline"
    assert pub.status().startswith(f"mqtt 127.0.0.1:{mosquitto.port} closed")
    pub.close()  # idempotent
    pub.handle(event())  # ignored once closed


VICTIM = """
import sys, time
from edgekit.actions.mqtt import MqttPublisher
from edgekit.daemon.settings import MqttSettings, Rule
p = MqttPublisher(MqttSettings(host="127.0.0.1", port=int(sys.argv[1]), device_id="victim"), [Rule("smoke", ())])
assert p.wait_connected(10)
print("ready", flush=True)
time.sleep(60)
"""


def test_last_will_says_offline_when_the_process_dies(mosquitto):
    sub = Subscriber(mosquitto, "edgekit/victim/availability")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", VICTIM, str(mosquitto.port)], stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout.readline().strip() == b"ready"
        assert sub.wait("edgekit/victim/availability", 1) == ["online"]
        os.kill(proc.pid, signal.SIGKILL)  # no DISCONNECT, no close(): only the broker's last will remains
        proc.wait(5)
        assert sub.wait("edgekit/victim/availability", 2) == ["online", "offline"]
        assert retained(mosquitto, "edgekit/victim/availability") == "offline"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sub.close()


def test_homeassistant_discovery(mosquitto, publishers):
    sub = Subscriber(mosquitto, "homeassistant/binary_sensor/#")
    s = settings(mosquitto, device_id="kitchen pi", homeassistant_discovery=True)
    pub = publishers(s, [SMOKE, GLASS])
    topic = "homeassistant/binary_sensor/kitchen_pi/smoke/config"
    config = json.loads(sub.wait(topic)[0])
    assert config["unique_id"] == "edgekit_kitchen_pi_smoke"
    assert config["state_topic"] == "edgekit/kitchen pi/state/smoke"
    assert config["availability_topic"] == "edgekit/kitchen pi/availability"
    assert (config["payload_on"], config["payload_off"]) == ("ON", "OFF")
    assert (config["payload_available"], config["payload_not_available"]) == ("online", "offline")
    assert config["device_class"] == "smoke"
    assert config["device"]["identifiers"] == ["edgekit_kitchen_pi"] and config["device"]["name"] == "kitchen pi"
    glass = json.loads(sub.wait("homeassistant/binary_sensor/kitchen_pi/glass/config")[0])
    assert glass["device_class"] == "sound" and glass["device"] == config["device"]
    assert sub.messages[0].retain is False  # live delivery; retained copy checked next
    assert json.loads(retained(mosquitto, topic)) == config
    # Home Assistant restarted (its birth message): the configs are sent again.
    sub.client.publish("homeassistant/status", "online", qos=1)
    assert len(sub.wait(topic, 2)) == 2
    sub.close()
    pub.close()


def test_broker_down_then_up_delivers_everything_in_order(make_broker, publishers):
    broker = make_broker(persistence=True)  # keeps the subscriber's session over the restart
    sub = Subscriber(broker, "edgekit/dev4/event/smoke", client_id="watcher", clean=False)
    pub = publishers(settings(broker, device_id="dev4"), [SMOKE])
    assert pub.wait_connected(5)
    pub.handle(event(i=0))
    assert sub.wait("edgekit/dev4/event/smoke", 1)
    broker.stop()
    assert wait_until(lambda: not pub.connected)
    slowest = 0.0
    for i in range(1, 60):
        t = time.perf_counter()
        pub.handle(event(i=i))
        slowest = max(slowest, time.perf_counter() - t)
    assert slowest < 0.05  # handle() never waits for the network
    assert pub.queued == 59
    assert "down (" in pub.status() and "59 queued" in pub.status()
    broker.start()
    assert pub.flush(10), pub.status()
    got = [json.loads(p)["stream_time"] for p in sub.wait("edgekit/dev4/event/smoke", 60, 10)]
    assert got == [float(i) for i in range(60)]
    assert (pub.sent, pub.queued, pub.dropped) == (60, 0, 0)
    sub.close()


def test_full_queue_drops_the_oldest(make_broker, publishers, caplog):
    broker = make_broker(persistence=True)
    sub = Subscriber(broker, "edgekit/dev5/event/smoke", client_id="watcher5", clean=False)
    broker.stop()
    # Started while the broker is away: construction and handle() return at once.
    t = time.perf_counter()
    pub = publishers(settings(broker, device_id="dev5", queue_size=5), [SMOKE])
    for i in range(8):
        pub.handle(event(i=i))
    assert time.perf_counter() - t < 0.5
    assert (pub.queued, pub.dropped) == (5, 3)
    assert wait_until(lambda: "cannot reach the broker" in pub.status())
    assert "dropping the oldest" in caplog.text
    broker.start()
    assert pub.flush(10), pub.status()
    got = [json.loads(p)["stream_time"] for p in sub.wait("edgekit/dev5/event/smoke", 5, 10)]
    assert got == [3.0, 4.0, 5.0, 6.0, 7.0]
    assert pub.status().endswith("5 sent, 0 queued, 3 dropped")
    sub.close()


def test_username_and_password(make_broker, publishers):
    broker = make_broker(users={"edge": "s3cret", "watcher": "w"})
    sub = Subscriber(broker, "edgekit/dev6/event/#", auth=("watcher", "w"))
    pub = publishers(settings(broker, device_id="dev6", username="edge", password="s3cret"), [SMOKE])
    assert pub.wait_connected(5)
    pub.handle(event())
    assert json.loads(sub.wait("edgekit/dev6/event/smoke")[0])["kind"] == "start"
    sub.close()


def test_wrong_password_is_a_status_and_one_log_line(make_broker, publishers, caplog):
    broker = make_broker(users={"edge": "s3cret"})
    pub = publishers(settings(broker, device_id="dev7", username="edge", password="wrong"), [SMOKE])
    assert wait_until(lambda: "refused" in pub.status())
    pub.handle(event())  # no exception: queued for when the credentials are fixed
    assert not pub.connected and pub.queued == 1
    status = pub.status()
    assert "the broker refused the connection: Not authorized; check [mqtt] username/password" in status
    time.sleep(1.0)  # several retries
    refusals = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1 and refusals[0].levelno == logging.ERROR


def make_certs(tmp_path, name: str = "127.0.0.1", san: str = "IP:127.0.0.1"):
    """A CA and a server certificate it signed, for ``name``; made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed; needed to make test certificates")
    ca_key, ca, key, csr, cert = (tmp_path / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))

    def ssl_cmd(*args):
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)

    new_key = ("-newkey", "rsa:2048", "-nodes")
    ssl_cmd("req", "-x509", *new_key, "-days", "1", "-subj", "/CN=edgekit test CA", "-keyout", ca_key, "-out", ca)
    ssl_cmd("req", *new_key, "-subj", f"/CN={name}", "-keyout", key, "-out", csr)
    ext = tmp_path / "san.ext"
    ext.write_text(f"subjectAltName={san}\n")  # paho checks the host name against the certificate
    sign = ("-CA", ca, "-CAkey", ca_key, "-set_serial", "1", "-days", "1", "-extfile", ext)
    ssl_cmd("x509", "-req", "-in", csr, *sign, "-out", cert)
    return ca, cert, key


def test_tls_with_username(make_broker, publishers, tmp_path):
    ca, cert, key = make_certs(tmp_path)
    broker = make_broker(users={"edge": "pw"}, extra=(f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"))
    tls = {"tls": True, "username": "edge", "password": "pw"}
    pub = publishers(settings(broker, device_id="dev8", ca_certs=str(ca), **tls), [SMOKE])
    assert pub.wait_connected(5), pub.status()
    pub.handle(event())
    assert pub.flush(5)


def test_a_certificate_that_fails_verification_is_reported_as_that(make_broker, publishers, tmp_path, caplog):
    ca, cert, key = make_certs(tmp_path)
    broker = make_broker(users={"edge": "pw"}, extra=(f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"))
    tls = {"tls": True, "username": "edge", "password": "pw"}
    # The wrong CA (the server's own certificate, not the CA that signed it): the handshake fails,
    # which is a status and one log line, not an exception, and it is not called "cannot reach".
    other = publishers(settings(broker, device_id="dev9", ca_certs=str(cert), **tls), [SMOKE])
    assert wait_until(lambda: "certificate verify failed" in other.status()), other.status()
    assert "cannot reach" not in other.status() and "ca_certs" in other.status()

    def errors():
        return [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]

    # The status changes on paho's thread a moment before its log line is written: wait for it.
    assert wait_until(lambda: errors()), "no error logged"
    assert len(errors()) == 1 and "TLS: certificate verify failed: " in errors()[0], errors()


def test_a_certificate_for_another_host_is_reported_as_that(make_broker, publishers, tmp_path):
    ca, cert, key = make_certs(tmp_path, name="broker.example", san="DNS:broker.example")
    broker = make_broker(extra=(f"cafile {ca}", f"certfile {cert}", f"keyfile {key}"))
    pub = publishers(settings(broker, device_id="dev11", tls=True, ca_certs=str(ca)), [SMOKE])
    assert wait_until(lambda: "certificate verify failed" in pub.status()), pub.status()
    assert "mismatch" in pub.status() and "'127.0.0.1'" in pub.status()


def test_tls_to_a_plain_listener_and_a_closed_port_say_so(make_broker, publishers, tmp_path):
    ca, _, _ = make_certs(tmp_path)
    plain = make_broker()
    pub = publishers(settings(plain, device_id="dev12", tls=True, ca_certs=str(ca)), [SMOKE])
    assert wait_until(lambda: "TLS handshake failed" in pub.status() or "cannot reach" in pub.status()), pub.status()
    assert "certificate verify failed" not in pub.status()
    plain.stop()
    down = publishers(settings(plain, device_id="dev13"), [SMOKE])
    assert wait_until(lambda: "connection refused" in down.status()), down.status()
    assert f"nothing listens on 127.0.0.1:{plain.port}" in down.status()


def test_unusable_settings_fail_at_start_up(tmp_path):
    with pytest.raises(MqttError, match="TLS files unusable") as info:
        MqttPublisher(MqttSettings(host="127.0.0.1", tls=True, ca_certs=str(tmp_path / "missing.pem")), [SMOKE])
    assert isinstance(info.value, EdgekitError)
    with pytest.raises(MqttError, match="rule name 'a/b'"):
        MqttPublisher(MqttSettings(host="127.0.0.1"), [Rule("a/b", ())])
    with pytest.raises(MqttError, match="port 70000"):
        MqttPublisher(MqttSettings(host="127.0.0.1", port=70000), [SMOKE])
    with pytest.raises(MqttError, match="device_id 'x/#'"):
        build_actions(Config(rules=(SMOKE,), mqtt=MqttSettings(host="127.0.0.1", device_id="x/#")))


def test_build_actions_wires_mqtt(mosquitto):
    config = Config(rules=(SMOKE,), mqtt=settings(mosquitto, device_id="dev10"))
    sub = Subscriber(mosquitto, "edgekit/dev10/event/smoke")
    with build_actions(config) as actions:
        (pub,) = actions.actions
        assert pub.wait_connected(5)
        actions.handle(event())
        assert sub.wait("edgekit/dev10/event/smoke")
        assert "connected, 1 sent" in actions.status() or wait_until(lambda: "1 sent" in actions.status())
    assert retained(mosquitto, "edgekit/dev10/availability") == "offline"
    sub.close()


# --- reloads ----------------------------------------------------------------------------------

def test_a_reload_with_the_same_mqtt_keeps_the_connection_and_the_state(mosquitto):
    config = Config(rules=(SMOKE,), mqtt=settings(mosquitto, device_id="dev20", homeassistant_discovery=True))
    sub = Subscriber(mosquitto, "edgekit/dev20/#", "homeassistant/binary_sensor/dev20/#")
    actions = build_actions(config)
    (pub,) = actions.actions
    assert pub.wait_connected(5)
    actions.handle(event("start"))
    assert sub.wait("edgekit/dev20/state/smoke", 2) == ["OFF", "ON"]
    connects = []
    pub._client.on_connect = lambda *a: connects.append(a)  # a new connection would call it
    reloaded = build_actions(Config(rules=(SMOKE, GLASS), mqtt=config.mqtt), previous=actions)
    assert reloaded.actions == [pub] and pub.connected
    # The new rule is announced; the sounding alarm stays ON: no OFF, no second start.
    assert sub.wait("homeassistant/binary_sensor/dev20/glass/config")
    assert sub.wait("edgekit/dev20/state/glass") == ["OFF"]
    reloaded.handle(event("end"))
    assert wait_until(lambda: sub.on("edgekit/dev20/state/smoke")[-1] == "OFF")
    # The state may be re-published with the announcement, but never as OFF before the end.
    assert sub.on("edgekit/dev20/state/smoke") in (["OFF", "ON", "OFF"], ["OFF", "ON", "ON", "OFF"])
    assert not connects
    reloaded.close()
    sub.close()


def test_a_reload_that_changes_mqtt_while_the_broker_is_down_loses_nothing(make_broker, caplog):
    broker = make_broker(persistence=True)
    sub = Subscriber(broker, "edgekit/#", client_id="watcher21", clean=False)
    old = Config(rules=(SMOKE,), mqtt=settings(broker, device_id="dev21"))
    actions = build_actions(old)
    (pub,) = actions.actions
    assert pub.wait_connected(5)
    actions.handle(event("start", i=0))
    assert sub.wait("edgekit/dev21/event/smoke")
    broker.stop()
    assert wait_until(lambda: not pub.connected)
    for i in (1, 2):
        actions.handle(event("end" if i == 1 else "start", i=i))
    assert pub.queued == 2
    new = Config(rules=(SMOKE,), mqtt=settings(broker, device_id="dev21", keepalive=20))
    reloaded = build_actions(new, previous=actions)
    (pub2,) = reloaded.actions
    assert pub2 is not pub and pub2.queued == 2
    broker.start()
    assert pub2.flush(10), pub2.status()
    assert wait_until(lambda: len(set(sub.on("edgekit/dev21/event/smoke"))) == 3, 10)
    got = [json.loads(p)["stream_time"] for p in sub.on("edgekit/dev21/event/smoke")]
    assert list(dict.fromkeys(got)) == [0.0, 1.0, 2.0]  # QoS 1: the broker may repeat one to us
    assert sub.wait("edgekit/dev21/state/smoke", 2)[-1] == "ON"  # the carried state, not OFF
    assert "not delivered" not in caplog.text
    reloaded.close()
    sub.close()
