"""The daemon with real parts: PulseAudio capture, the real model, a real Mosquitto broker, a real
NOTIFY_SOCKET, and gpiozero's MockFactory as the GPIO chip.

The service runs in the test's main thread (so its signal handlers are real); a scenario thread
plays recordings into the virtual microphone, watches the pin and the broker, and sends signals.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edgekit.daemon.service import Service
from mosquitto import make_broker, mosquitto  # noqa: F401 - fixtures
from pulse import pulse, pulse_off  # noqa: F401 - fixtures

ALARM_GROUP = '["Smoke detector, smoke alarm", "Fire alarm", "Alarm", "Siren"]'


def write_config(path: Path, models_dir: Path, *, source: str = "mic", hop: float = 0.1, broker=None,
                 rule_name: str = "smoke_alarm", enter: float = 0.5, extra: str = "") -> Path:
    mqtt_section = (f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\ndevice_id = "testpi"\n'
                    "homeassistant_discovery = true\n") if broker else ""
    path.write_text(f"""
[model]
model = "{models_dir / 'yamnet_spectra_in.tflite'}"
frontend = "fixed"

[audio]
source = "{source}"
{'device = "pulse"' if source == "mic" else 'speed = "realtime"'}
hop_seconds = {hop}
min_dbfs = -70
silence_warning_seconds = 3

[groups]
alarm = {ALARM_GROUP}

[[rules]]
name = "{rule_name}"
labels = ["alarm"]
enter = {enter}
release = 0.3
smoothing = "k_of_n"
k = 2
n = 3
hold = 2.0

[rules.gpio]
pin = 17
mode = "level"

[gpio]
pin_factory = "mock"

[log]
path = "{path.parent / 'events.jsonl'}"

{mqtt_section}
{extra}
""")
    return path


class NotifySocket:
    def __init__(self, path: Path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.messages: list[dict] = []
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self):
        while True:
            try:
                data = self.sock.recv(4096).decode()
            except OSError:
                return
            self.messages.append(dict(line.split("=", 1) for line in data.splitlines() if "=" in line))

    def wait_for(self, key: str, timeout: float, after: int = 0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in self.messages[after:]:
                if key in m:
                    return m
            time.sleep(0.02)
        raise AssertionError(f"no {key} notification within {timeout} s; got {self.messages[after:]}")

    def close(self):
        self.sock.close()


@pytest.fixture
def notify(tmp_path, monkeypatch):
    path = tmp_path / "notify.sock"
    ns = NotifySocket(path)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    yield ns
    ns.close()


def run_with_scenario(service: Service, scenario, timeout: float = 120.0) -> dict:
    """Run the service in this (main) thread while ``scenario(service, result)`` runs beside it."""
    result: dict = {}

    def drive():
        try:
            scenario(service, result)
        except BaseException as exc:  # noqa: BLE001 - reported after the service stops
            result["error"] = exc
        finally:
            os.kill(os.getpid(), signal.SIGTERM)

    watchdog = threading.Timer(timeout, lambda: os.kill(os.getpid(), signal.SIGTERM))
    watchdog.start()
    t = threading.Thread(target=drive, daemon=True)
    t.start()
    try:
        result["rc"] = service.run()
    finally:
        watchdog.cancel()
        t.join(10)
    if "error" in result:
        raise result["error"]
    return result


def gpio_device(service: Service, rule: str):
    from edgekit.actions.gpio import GpioOutputs

    outputs = next(a for a in service.actions if isinstance(a, GpioOutputs))
    return outputs.device(rule)


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


class Subscriber:
    def __init__(self, broker, topic: str):
        self.messages: list[tuple[str, bytes, bool]] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-{os.getpid()}")
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload, m.retain))
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()

    def events(self, kind=None):
        out = [json.loads(p) for t, p, _ in self.messages if "/event/" in t]
        return [e for e in out if kind is None or e["kind"] == kind]

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def test_smoke_alarm_drives_gpio_and_mqtt_and_speech_stays_quiet(tmp_path, pulse, mosquitto, notify, models_dir,
                                                                   audio_dir):
    config = write_config(tmp_path / "edgekit.toml", models_dir, broker=mosquitto)
    sub = Subscriber(mosquitto, "edgekit/testpi/#")
    service = Service(str(config))

    def scenario(svc, result):
        ready = notify.wait_for("READY", 30)
        result["ready"] = ready
        pin = gpio_device(svc, "smoke_alarm")
        assert pin.value == 0
        pulse.play(audio_dir / "smoke_alarm.wav", wait=False)
        wait_until(lambda: pin.value == 1, 15, "the GPIO pin to go active")
        wait_until(lambda: sub.events("start"), 10, "the MQTT start event")
        wait_until(lambda: pin.value == 0, 25, "the pin to go inactive after the alarm")
        wait_until(lambda: sub.events("end"), 10, "the MQTT end event")
        result["alarm_events"] = list(svc.events)
        pulse.play(audio_dir / "speech.wav", wait=True)
        time.sleep(2.0)
        result["after_speech"] = list(svc.events)
        result["watchdog"] = notify.wait_for("WATCHDOG", 5, after=len(notify.messages) - 20)
        result["pin"] = pin

    result = run_with_scenario(service, scenario)
    sub.close()
    assert result["rc"] == 0
    starts = [e for e in result["alarm_events"] if e.kind == "start"]
    assert len(starts) == 1 and starts[0].rule == "smoke_alarm"
    assert "Smoke detector" in starts[0].label or starts[0].label in ("Fire alarm", "Alarm", "Siren")
    assert result["after_speech"] == result["alarm_events"], "speech must not trigger the alarm rule"
    assert result["pin"].closed or result["pin"].value == 0
    # MQTT: the start and end events, and the retained availability.
    start = sub.events("start")[0]
    assert start["rule"] == "smoke_alarm" and start["peak"] >= 0.5
    assert any(t == "edgekit/testpi/availability" and p == b"online" for t, p, _ in sub.messages)
    # Event log: one JSON line per event.
    lines = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [x["kind"] for x in lines] == ["start", "end"]
    assert "listening" in result["ready"].get("STATUS", "")


def test_sigterm_mid_alarm_leaves_the_pin_inactive(tmp_path, pulse, notify, models_dir, audio_dir):
    config = write_config(tmp_path / "edgekit.toml", models_dir)
    service = Service(str(config))

    def scenario(svc, result):
        notify.wait_for("READY", 30)
        pin = gpio_device(svc, "smoke_alarm")
        result["pin_pin"] = pin.pin
        pulse.play(audio_dir / "smoke_alarm.wav", wait=False)
        wait_until(lambda: pin.value == 1, 15, "the GPIO pin to go active")
        result["active"] = True  # SIGTERM follows from run_with_scenario while the alarm sounds

    result = run_with_scenario(service, scenario)
    assert result["rc"] == 0 and result["active"]
    assert result["pin_pin"].state is False  # the mock pin itself: driven low (inactive) on exit
    kinds = [e.kind for e in service.events]
    assert kinds == ["start", "end"], "the open event is ended on shutdown"
    assert notify.wait_for("STOPPING", 2)


def test_microphone_lost_and_back(tmp_path, pulse, notify, models_dir, audio_dir, caplog):
    config = write_config(tmp_path / "edgekit.toml", models_dir)
    service = Service(str(config))

    def scenario(svc, result):
        notify.wait_for("READY", 30)
        svc.source.BACKOFF = (0.2, 0.5, 1.0)
        pulse.stop()
        wait_until(lambda: svc.source.stats.lost, 5, "the loss to be noticed")
        n = len(notify.messages)
        time.sleep(2.5)
        # The loop goes on (watchdog keeps coming) while the microphone is gone.
        notify.wait_for("WATCHDOG", 3, after=n)
        pulse.start()
        wait_until(lambda: not svc.source.stats.lost, 20, "the microphone to come back")
        pin = gpio_device(svc, "smoke_alarm")
        pulse.play(audio_dir / "smoke_alarm.wav", wait=False)
        wait_until(lambda: pin.value == 1, 20, "detection after recovery")

    result = run_with_scenario(service, scenario)
    assert result["rc"] == 0
    assert service.source.stats.reopens >= 1
    assert sum("audio input lost" in r.getMessage() for r in caplog.records) == 1


def test_sighup_reload_good_and_bad(tmp_path, notify, models_dir, audio_dir, caplog):
    config = write_config(tmp_path / "edgekit.toml", models_dir, source=str(audio_dir / "dog.wav"), hop=0.48)
    service = Service(str(config))

    def scenario(svc, result):
        notify.wait_for("READY", 30)
        good = config.read_text()
        config.write_text(good.replace("enter = 0.5", "enter = 1.5"))  # invalid
        n = len(notify.messages)
        os.kill(os.getpid(), signal.SIGHUP)
        notify.wait_for("RELOADING", 5, after=n)
        wait_until(lambda: any("reload rejected" in r.getMessage() for r in caplog.records), 5, "rejection")
        result["after_bad"] = svc.config.rules[0].enter
        config.write_text(good.replace('name = "smoke_alarm"', 'name = "fire"').replace("enter = 0.5", "enter = 0.6"))
        os.kill(os.getpid(), signal.SIGHUP)
        wait_until(lambda: svc.config.rules[0].name == "fire", 5, "the good reload")
        result["after_good"] = svc.config.rules[0]

    result = run_with_scenario(service, scenario)
    assert result["rc"] == 0
    assert result["after_bad"] == 0.5
    assert result["after_good"].enter == 0.6
    rejected = [r.getMessage() for r in caplog.records if "reload rejected" in r.getMessage()]
    assert len(rejected) == 1 and "rules[0].enter" in rejected[0]


def test_run_command_replays_a_file_and_exits(tmp_path, models_dir, audio_dir):
    config = write_config(tmp_path / "edgekit.toml", models_dir, source="mic", hop=0.48)
    proc = subprocess.run(
        [sys.executable, "-m", "edgekit", "run", "--config", str(config),
         "--source", str(audio_dir / "smoke_alarm.wav"), "--speed", "max"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [x["kind"] for x in lines] == ["start", "end"]
    assert "Traceback" not in proc.stderr


def test_bad_config_exits_cleanly_before_starting(tmp_path, models_dir):
    config = tmp_path / "bad.toml"
    config.write_text('[audio]\nhop_seconds = 0.333\n[[rules]]\nname = "x"\nlabels = ["Smoke alarm"]\n')
    proc = subprocess.run([sys.executable, "-m", "edgekit", "run", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 78  # EX_CONFIG: systemd does not restart a bad config
    assert "hop_seconds" in proc.stderr and "Traceback" not in proc.stderr


def test_all_zero_input_is_warned_about_once(tmp_path, notify, models_dir, caplog):
    import numpy as np
    import soundfile as sf

    silent = tmp_path / "muted.wav"
    sf.write(silent, np.zeros(16000 * 5, np.int16), 16000, subtype="PCM_16")
    config = write_config(tmp_path / "edgekit.toml", models_dir, source=str(silent), hop=0.48)
    service = Service(str(config))
    assert service.run() == 0  # the file ends after 5 s of real time
    warnings = [r.getMessage() for r in caplog.records if "all zeros" in r.getMessage()]
    assert len(warnings) == 1 and "muted or the wrong device" in warnings[0]
    assert service.pipeline.stats.gated == service.pipeline.stats.windows  # silence costs no inference


def test_gpio_without_a_chip_is_one_clear_line(tmp_path, models_dir, audio_dir):
    config = write_config(tmp_path / "edgekit.toml", models_dir, source=str(audio_dir / "speech.wav"))
    config.write_text(config.read_text().replace('pin_factory = "mock"', ""))
    env = {k: v for k, v in os.environ.items() if k != "GPIOZERO_PIN_FACTORY"}
    proc = subprocess.run([sys.executable, "-m", "edgekit", "run", "--config", str(config)],
                          capture_output=True, text=True, timeout=60, env=env)
    if Path("/dev/gpiochip0").exists():
        pytest.skip("this machine has a GPIO chip")
    assert proc.returncode == 78  # EX_CONFIG: a restart cannot conjure a GPIO chip
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("edgekit: error:")]
    assert len(errors) == 1 and "no GPIO chip found" in errors[0] and 'pin_factory = "mock"' in errors[0]
    assert "Traceback" not in proc.stderr


def test_devices_lists_the_pulse_input(pulse, capsys):
    from edgekit.cli import main

    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert "pulse" in out and "Hz" in out


# --- reloads that keep what did not change --------------------------------------------------------

def pin_levels(pin) -> list[bool]:
    out: list[bool] = []
    for s in pin.states:
        if not out or out[-1] != s.state:
            out.append(s.state)
    return out


DOG_RULE = '\n[[rules]]\nname = "dog"\nlabels = ["Dog"]\nenter = 0.5\nrelease = 0.3\n'


@pytest.mark.parametrize("change,expect", [
    ("add_rule", ["start", "end"]),  # the sounding alarm stays one event
    ("frontend", ["start", "end"]),  # a new stream (fixed -> float front end): still one event
    ("enter", ["start", "end", "start", "end"]),  # the rule itself changed: ended, then fresh
    ("pin", ["start", "end", "start", "end"]),  # its action changed: ended on pin 17, fresh on 22
])
def test_sighup_keeps_what_did_not_change(tmp_path, mosquitto, notify, models_dir, audio_dir, caplog, change,
                                          expect):
    # (mosquitto before notify: a broker started with $NOTIFY_SOCKET set sends its own READY=1)
    config = write_config(tmp_path / "edgekit.toml", models_dir, source=str(audio_dir / "smoke_alarm.wav"),
                          broker=mosquitto)
    sub = Subscriber(mosquitto, "edgekit/testpi/#")
    service = Service(str(config))
    edits = {"add_rule": lambda t: t + DOG_RULE,
             "frontend": lambda t: t.replace('frontend = "fixed"', 'frontend = "float"'),
             "enter": lambda t: t.replace("enter = 0.5", "enter = 0.45"),
             "pin": lambda t: t.replace("pin = 17", "pin = 22")}

    def scenario(svc, result):
        notify.wait_for("READY", 30)
        pin = gpio_device(svc, "smoke_alarm")
        wait_until(lambda: pin.value == 1, 15, "the alarm to start")
        result["t_before"] = svc.stream_time
        result["old_pin"] = pin.pin
        config.write_text(edits[change](config.read_text()))
        os.kill(os.getpid(), signal.SIGHUP)
        wait_until(lambda: any("config reloaded" in r.getMessage() for r in caplog.records), 15, "the reload")
        result["t_after"] = svc.stream_time
        result["pin"] = gpio_device(svc, "smoke_alarm").pin  # the mock pin: it records every level
        wait_until(lambda: len(svc.events) >= len(expect), 30, "the alarm's events")
        wait_until(lambda: sub.events("end"), 10, "the MQTT end event")

    result = run_with_scenario(service, scenario)
    sub.close()
    assert result["rc"] == 0
    assert [e.kind for e in service.events if e.rule == "smoke_alarm"] == expect
    # The clock never goes backwards, in the daemon or in its event log.
    assert result["t_after"] >= result["t_before"] > 1.0
    times = [e.stream_time for e in service.events]
    assert times == sorted(times) and times[-1] > result["t_before"]
    logged = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [x["kind"] for x in logged] == expect and [x["stream_time"] for x in logged] == times
    levels = pin_levels(result["pin"])
    states = [p.decode() for t, p, _ in sub.messages if t == "edgekit/testpi/state/smoke_alarm"]
    if len(expect) == 2:  # the level output never dropped, the MQTT state never flapped
        assert levels == [False, True, False]
        assert "OFF" not in states[states.index("ON"):-1]
    elif change == "pin":
        assert pin_levels(result["old_pin"]) == [False, True, False] and levels == [False, True, False]
    else:
        assert levels == [False, True, False, True, False]


def run_daemon(config, *args, env=None, signals_at=(), timeout=60):
    """`edgekit run` in a child process; ``signals_at``: (seconds after start, signal) to send."""
    proc = subprocess.Popen([sys.executable, "-m", "edgekit", *args, "run", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    t0 = time.monotonic()
    for at, sig in signals_at:
        time.sleep(max(0.0, t0 + at - time.monotonic()))
        proc.send_signal(sig)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def test_sighup_in_the_first_moment_reloads_instead_of_killing(tmp_path, models_dir, audio_dir):
    config = write_config(tmp_path / "edgekit.toml", models_dir, source=str(audio_dir / "dog.wav"), hop=0.48)
    rc, err = run_daemon(config, signals_at=[(0.3, signal.SIGHUP), (6.0, signal.SIGINT)])
    assert rc == 0, err  # today: killed by SIGHUP (129), which systemd takes as a clean exit
    assert err.count("config reloaded") == 1 and "Traceback" not in err
    assert "SIGINT received: stopping" in err and "replay finished" not in err  # stopped before the end


def test_sigterm_during_start_up_exits_cleanly(tmp_path, models_dir, audio_dir):
    config = write_config(tmp_path / "edgekit.toml", models_dir, source=str(audio_dir / "speech.wav"), hop=0.48)
    rc, err = run_daemon(config, signals_at=[(0.3, signal.SIGTERM)])
    assert rc == 0, err  # not 143
    assert "SIGTERM received: stopping" in err and "Traceback" not in err


def test_replay_says_where_events_go_and_sums_up(tmp_path, models_dir, audio_dir):
    config = write_config(tmp_path / "edgekit.toml", models_dir, source=str(audio_dir / "smoke_alarm.wav"),
                          hop=0.48)
    config.write_text(config.read_text().replace('speed = "realtime"', 'speed = "max"'))
    rc, err = run_daemon(config, "-v")
    assert rc == 0, err
    log_path = tmp_path / "events.jsonl"
    assert f"events go to: event log {log_path}; GPIO 17 (smoke_alarm, level)" in err
    summary = [ln for ln in err.splitlines() if "replay finished" in ln]
    assert len(summary) == 1
    assert "23 windows" in summary[0] and "2 events (1 start, 1 end)" in summary[0] and str(log_path) in summary[0]
    # -v: each window's top scores.
    windows = [ln for ln in err.splitlines() if "edgekit.service: t=" in ln]
    assert len(windows) == 23 and any("Smoke detector, smoke alarm 0." in ln for ln in windows)


def test_an_interactive_run_writes_events_where_the_user_can(tmp_path, models_dir, audio_dir):
    config = write_config(tmp_path / "edgekit.toml", models_dir, source=str(audio_dir / "smoke_alarm.wav"),
                          hop=0.48)
    blocker = tmp_path / "var_lib"
    blocker.write_text("")  # unwritable for everyone, root included: a file where a directory should be
    text = config.read_text().replace('speed = "realtime"', 'speed = "max"')
    config.write_text(text.replace(f'path = "{tmp_path / "events.jsonl"}"', f'path = "{blocker / "events.jsonl"}"'))
    env = {"XDG_STATE_HOME": str(tmp_path / "state"), "INVOCATION_ID": ""}
    rc, err = run_daemon(config, env=env)
    assert rc == 0, err
    fallback = tmp_path / "state" / "edgekit" / "events.jsonl"
    assert [json.loads(x)["kind"] for x in fallback.read_text().splitlines()] == ["start", "end"]
    assert f"events go to {fallback} instead" in err and f"event log {fallback}" in err
    # Under systemd, the configured path is the contract: no silent fallback.
    rc, err = run_daemon(config, env={**env, "INVOCATION_ID": "0123"})
    assert rc != 0 and "choose a writable [log] path" in err


def test_listening_state_is_published_to_listeners(tmp_path, pulse_off, notify, models_dir):
    """Service.listening_state and Service.state_listeners: what MQTT availability is built on."""
    from edgekit.audio.opener import ListeningState

    config = write_config(tmp_path / "edgekit.toml", models_dir, hop=0.48)
    service = Service(str(config))
    seen = []
    service.state_listeners.append(lambda state, why: seen.append((state, why)))

    def scenario(svc, result):
        ready = notify.wait_for("READY", 60)
        assert "waiting for microphone 'pulse'" in ready["STATUS"]
        wait_until(lambda: svc.listening_state is ListeningState.WAITING, 5, "waiting")
        pulse_off.start()
        wait_until(lambda: svc.listening_state is ListeningState.LISTENING, 15, "listening")

    result = run_with_scenario(service, scenario)
    assert result["rc"] == 0
    states = [s for s, _ in seen]
    assert states[-2:] == [ListeningState.WAITING, ListeningState.LISTENING]
    assert "sound server running?" in dict(seen)[ListeningState.WAITING]
