"""edgekit as a service under a real systemd: a Debian bookworm root booted with systemd as PID 1
(systemd-nspawn, cgroup v2, bpf() allowed so that the device and IP filters are enforced; see
tests/nspawn.py), edgekit installed in it with `scripts/install --wheels ... --model ...`, a
PulseAudio null sink as its microphone and a Mosquitto inside the container as its broker.

The tests run in order against one booted container (~3-5 min with the cached root; building
the root and the wheels the first time adds a few minutes). They skip with the reason where a
container cannot be booted, and fail under CI=true.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

import nspawn
from conftest import AUDIO, MODELS, ROOT, absent, need

# The first run builds the root (debootstrap: minutes, more on a slow mirror) inside the fixture.
pytestmark = pytest.mark.timeout(1800)

PULSE_DIR = "/run/edgekit-pulse"
PULSE = f"PULSE_SERVER=unix:{PULSE_DIR}/native"
PA_CONFIG = f"""\
load-module module-native-protocol-unix auth-anonymous=1 socket={PULSE_DIR}/native
load-module module-null-sink sink_name=virt rate=16000 channels=1
set-default-sink virt
set-default-source virt.monitor
"""
EVENTS = "/var/lib/edgekit/events.jsonl"
MQTT_LOG = "/run/edgekit-test-mqtt.log"
OUTSIDE = "198.51.100.7"  # TEST-NET-2: a "public" address, put on the container's loopback
OUTSIDE_PORT = 8883
# [Service] keys of the unit that are about running edgekit, not its sandbox: left out of the probe.
NOT_SANDBOX = {"Type", "NotifyAccess", "ExecStart", "ExecReload", "KillSignal", "TimeoutStartSec",
               "TimeoutStopSec", "WatchdogSec", "Restart", "RestartSec", "RestartPreventExitStatus"}


def service_config() -> str:
    """The example config, with GPIO on gpiozero's mock pins (no GPIO chip in a container) and
    events to the broker inside the container."""
    text = (ROOT / "systemd" / "edgekit.toml").read_text()
    text = text.replace('# pin_factory = "lgpio"', 'pin_factory = "mock"  #')
    assert 'pin_factory = "mock"' in text
    return text + '\n[mqtt]\nhost = "127.0.0.1"\ndevice_id = "nspawn"\n'


class Box:
    """The booted container and the test's helpers around it."""

    def __init__(self, c: nspawn.Container):
        self.c = c
        self.install_output = ""

    def sh(self, command: str, **kw):
        return self.c.run(command, **kw)

    def show(self, *props: str) -> dict[str, str]:
        out = self.sh(f"systemctl show edgekit.service -p {','.join(props)}").stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def journal(self) -> list[str]:
        return self.sh("journalctl -u edgekit.service -o cat --no-pager", check=False).stdout.splitlines()

    def journal_tail(self, n: int = 40) -> str:
        return "\n".join(self.journal()[-n:])

    def events(self) -> list[dict]:
        out = self.sh(f"cat {EVENTS} 2>/dev/null || true").stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def alarm_starts(self) -> int:
        return sum(1 for e in self.events() if e.get("rule") == "smoke_alarm" and e.get("kind") == "start")

    def wait(self, what: str, check, timeout: float, every: float = 1.0):
        deadline = time.monotonic() + timeout
        while True:
            got = check()
            if got:
                return got
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout:.0f} s; the service's journal ends:\n"
                                     f"{self.journal_tail()}")
            time.sleep(every)

    def wait_active(self, timeout: float = 90) -> dict[str, str]:
        return self.wait("edgekit.service active", lambda: (lambda s: s if s["ActiveState"] == "active" else None)(
            self.show("ActiveState", "SubState", "MainPID", "NRestarts", "StatusText")), timeout)

    def start_pulse(self) -> None:
        self.sh("systemd-run --quiet --unit=test-pulse -p DynamicUser=yes -p UMask=0000 "
                f"-p RuntimeDirectory=edgekit-pulse -p RuntimeDirectoryMode=0755 "
                f"--setenv=HOME={PULSE_DIR} --setenv=XDG_RUNTIME_DIR={PULSE_DIR} "
                "pulseaudio -n -F /etc/edgekit-test/pa.pa --daemonize=no --exit-idle-time=-1 --disallow-exit "
                "--log-target=stderr")
        self.wait("PulseAudio up", lambda: self.sh(f"{PULSE} pactl info", check=False).returncode == 0, 20, 0.3)
        # Without a stream into it the null sink suspends and its monitor delivers nothing.
        self.sh(f"systemd-run --quiet --unit=test-keepalive -p Restart=always -p RestartSec=1 --setenv={PULSE} "
                "pacat --playback --raw --format=s16le --rate=16000 --channels=1 --latency-msec=20 -d virt /dev/zero")

    def stop_pulse(self) -> None:
        self.sh("systemctl stop test-keepalive.service test-pulse.service; "
                "systemctl reset-failed test-keepalive.service test-pulse.service 2>/dev/null; true")

    def play_alarm(self) -> None:
        self.sh(f"{PULSE} paplay -d virt /srv/data/audio/smoke_alarm.wav", timeout=120)

    def alarm_open(self) -> bool:
        kinds = [e.get("kind") for e in self.events() if e.get("rule") == "smoke_alarm"]
        return kinds.count("start") > kinds.count("end")

    def hears_an_alarm(self, timeout: float = 45) -> None:
        # An alarm event still open (held through gaps) would swallow the new one.
        self.wait("the last smoke_alarm event to end", lambda: not self.alarm_open(), 60)
        before = self.alarm_starts()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.play_alarm()
            try:
                self.wait("a smoke_alarm start in the event log", lambda: self.alarm_starts() > before, 8)
                return
            except AssertionError:
                continue
        raise AssertionError(f"no new smoke_alarm event in {timeout:.0f} s of playing the alarm:\n{self.journal_tail()}")


@pytest.fixture(scope="module")
def box():
    why = nspawn.cannot_boot()
    if why:
        absent(f"cannot boot a systemd container here: {why}")
    model = need(MODELS / "yamnet_spectra_in.tflite")
    need(AUDIO / "smoke_alarm.wav")
    try:
        root = nspawn.build_root()
        wheels = nspawn.build_wheels()
    except Exception as exc:  # noqa: BLE001 - any failure to build is "cannot boot here"
        absent(f"cannot build the container's root or wheels: {exc}")
    log = Path(f"/tmp/edgekit-nspawn-{time.time_ns()}.log")
    c = nspawn.Container(root, {"/srv/edgekit": ROOT, "/srv/wheels": wheels, "/srv/data": model.parents[1]}, log)
    try:
        try:
            c.boot()
        except RuntimeError as exc:
            absent(f"cannot boot a systemd container here: {exc}")
        b = Box(c)
        r = b.sh("/srv/edgekit/scripts/install --wheels /srv/wheels --model /srv/data/models/yamnet_spectra_in.tflite",
                 timeout=600)
        b.install_output = r.stdout + r.stderr
        b.sh("mkdir -p /etc/edgekit-test /etc/systemd/system/edgekit.service.d /home/someone && "
             "touch /home/someone/secret")
        b.sh("cat > /etc/edgekit-test/pa.pa", input=PA_CONFIG)
        b.sh("cat > /etc/edgekit/edgekit.toml", input=service_config())
        b.sh("cat > /etc/systemd/system/edgekit.service.d/test.conf",
             input=f"[Service]\nEnvironment={PULSE}\n")
        b.start_pulse()
        b.sh(f"systemd-run --quiet --unit=test-sub -p StandardOutput=file:{MQTT_LOG} "
             "mosquitto_sub -h 127.0.0.1 -v -t 'edgekit/#'")
        b.sh("systemctl daemon-reload && systemctl enable --now edgekit.service", timeout=120)
        yield b
    finally:
        c.close()
        log.unlink(missing_ok=True)


def test_install_says_what_to_do_next(box):
    out = box.install_output
    assert "copied yamnet_spectra_in.tflite and yamnet_class_map.csv into /var/lib/edgekit/models" in out
    assert "ExecStart=/opt/edgekit/bin/edgekit run --config /etc/edgekit/edgekit.toml" in out
    assert "udevd is not running" in out  # a warning, and the install went on
    assert "sudo systemctl enable --now edgekit" in out and "journalctl -u edgekit -f" in out
    assert "models pull yamnet\n" not in out + "\n"
    # Root's venv, outside /home, not editable.
    r = box.sh("stat -c '%U %a' /opt/edgekit /opt/edgekit/bin/edgekit; "
               "/opt/edgekit/bin/python -m pip show -f edgekit | grep -ci 'editable' || true")
    owner_lines = r.stdout.splitlines()
    assert owner_lines[0].startswith("root ") and owner_lines[1].startswith("root ")
    assert owner_lines[-1].strip() == "0"


def test_the_container_runs_systemd_as_pid_1_on_cgroup_v2(box):
    r = box.sh("cat /proc/1/comm; stat -fc %T /sys/fs/cgroup")
    assert r.stdout.split() == ["systemd", "cgroup2fs"]


def test_service_becomes_active(box):
    state = box.wait_active()
    assert state["SubState"] == "running" and state["NRestarts"] == "0"


def test_smoke_alarm_reaches_the_event_log_and_mqtt(box):
    box.wait_active()
    box.hears_an_alarm()
    ev = next(e for e in box.events() if e.get("rule") == "smoke_alarm")
    assert ev["kind"] == "start" and ev.get("id")
    box.wait("the event on MQTT", lambda: ev["id"] in box.sh(f"cat {MQTT_LOG}").stdout, 30)


def test_reload_applies_a_good_config_and_keeps_the_old_on_a_bad_one(box):
    pid = box.wait_active()["MainPID"]
    good = service_config().replace("hold = 10.0", "hold = 9.0")
    n = len(box.journal())
    box.sh("cat > /etc/edgekit/edgekit.toml", input=good)
    box.sh("systemctl reload edgekit.service")
    box.wait("config reloaded", lambda: any("config reloaded" in line for line in box.journal()[n:]), 30)
    n = len(box.journal())
    box.sh("cat > /etc/edgekit/edgekit.toml", input=good.replace("[[rules]]", "[[rules]\n", 1))
    box.sh("systemctl reload edgekit.service")
    box.wait("bad config rejected", lambda: any("reload rejected, keeping the running config" in line
                                                for line in box.journal()[n:]), 30)
    state = box.show("ActiveState", "MainPID", "NRestarts")
    assert state == {"ActiveState": "active", "MainPID": pid, "NRestarts": "0"}
    box.sh("cat > /etc/edgekit/edgekit.toml", input=service_config())
    box.sh("systemctl reload edgekit.service")
    box.hears_an_alarm()  # still listening, on the old (then the restored) config


def unit_sandbox(box) -> list[str]:
    """The installed unit's [Service] sandbox settings, as they are written there."""
    text = box.sh("cat /etc/systemd/system/edgekit.service").stdout
    section = text.split("[Service]", 1)[1].split("\n[", 1)[0]
    lines = [line.strip() for line in section.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#") and "=" in line
             and line.split("=", 1)[0] not in NOT_SANDBOX]
    assert any(line.startswith("DevicePolicy=") for line in lines)
    assert any(line.startswith("IPAddressDeny=") for line in lines)
    return lines


def probe(box, name: str, sandbox: list[str]) -> dict:
    """sandbox_probe.py's findings, run as a oneshot unit with these [Service] settings (a unit
    file, so that they are read exactly as in edgekit.service)."""
    out = f"/run/{name}.json"
    unit = "\n".join(["[Service]", "Type=oneshot", *sandbox, f"StandardOutput=truncate:{out}",
                      "ExecStart=/usr/bin/python3 /srv/edgekit/tests/sandbox_probe.py "
                      f"127.0.0.1:1883 {OUTSIDE}:{OUTSIDE_PORT}"]) + "\n"
    box.sh(f"cat > /etc/systemd/system/{name}.service", input=unit)
    box.sh(f"systemctl daemon-reload && systemctl start {name}.service", timeout=60)
    return json.loads(box.sh(f"cat {out}").stdout)


def test_the_sandbox_denies_what_it_promises(box):
    box.c.host_net("ip", "addr", "add", f"{OUTSIDE}/32", "dev", "lo")
    box.sh(f"systemd-run --quiet --unit=test-outside /usr/bin/python3 -c \"import socket, time; "
           f"s = socket.create_server(('{OUTSIDE}', {OUTSIDE_PORT})); time.sleep(3600)\"")
    box.wait("the outside listener", lambda: f"{OUTSIDE}:{OUTSIDE_PORT}" in box.sh("ss -ltn").stdout, 10, 0.3)
    # The control: without the sandbox everything is reachable, so a denial below is the sandbox's.
    free = probe(box, "edgekit-probe-free", [])
    assert free["/dev/net/tun"] == "open" and "someone" in free["/home"]
    assert free[f"{OUTSIDE}:{OUTSIDE_PORT}"] == "connected" and free["127.0.0.1:1883"] == "connected"
    jailed = probe(box, "edgekit-probe", unit_sandbox(box))
    assert jailed["/dev/null"] == "open"
    assert jailed["/dev/net/tun"] != "open"  # DevicePolicy=closed: no device beyond audio, GPIO, Edge TPU
    assert "someone" not in jailed["/home"]  # ProtectHome=yes
    assert jailed["127.0.0.1:1883"] == "connected"  # the configured broker
    assert jailed[f"{OUTSIDE}:{OUTSIDE_PORT}"] != "connected"  # IPAddressDeny=any


def test_security_exposure_live_at_most_2(box):
    out = box.sh("systemd-analyze security edgekit.service --no-pager").stdout
    m = re.search(r"Overall exposure level for edgekit\.service:\s*([\d.]+)", out)
    assert m, out[-2000:]
    assert float(m.group(1)) <= 2.0, out[-3000:]


def test_a_frozen_sound_server_does_not_kill_the_service(box):
    """Needs the daemon to open and probe devices off its main loop (issue 15, part 3)."""
    before = box.wait_active()
    box.sh("systemctl kill -s SIGSTOP test-pulse.service")
    try:
        time.sleep(60)
        during = box.show("ActiveState", "MainPID", "NRestarts")
    finally:
        box.sh("systemctl kill -s SIGCONT test-pulse.service")
    assert not any("Watchdog timeout" in line for line in box.journal()), box.journal_tail()
    assert during == {"ActiveState": "active", "MainPID": before["MainPID"], "NRestarts": before["NRestarts"]}, \
        box.journal_tail()
    box.hears_an_alarm(timeout=60)  # listening resumes by itself


def test_no_microphone_at_start_waits_for_one(box):
    """Needs the daemon to wait for a microphone instead of exiting (issue 15, part 3)."""
    box.sh("systemctl stop edgekit.service")
    box.stop_pulse()
    try:
        box.sh("systemctl reset-failed edgekit.service 2>/dev/null; systemctl start --no-block edgekit.service")
        time.sleep(20)
        state = box.show("ActiveState", "NRestarts", "StatusText")
        assert state["ActiveState"] == "active" and state["NRestarts"] == "0", (state, box.journal_tail())
    finally:
        box.start_pulse()
    box.hears_an_alarm(timeout=60)  # it starts hearing once the microphone appears


def test_stop_ends_with_result_success(box):
    if box.show("ActiveState")["ActiveState"] != "active":  # an earlier test left it failed
        box.sh("systemctl reset-failed edgekit.service; systemctl restart edgekit.service", check=False)
    box.wait_active()
    box.sh("systemctl stop edgekit.service", timeout=60)
    state = box.show("ActiveState", "Result", "ExecMainStatus")
    assert state == {"ActiveState": "inactive", "Result": "success", "ExecMainStatus": "0"}, box.journal_tail()


def test_install_again_upgrades_in_place_and_uninstall_keeps_the_data(box):
    box.sh("systemctl reset-failed edgekit.service; systemctl start edgekit.service", timeout=120, check=False)
    pid = box.wait_active()["MainPID"]
    box.sh("echo '# mine' >> /etc/edgekit/edgekit.toml && mkdir -p /var/lib/edgekit/sounds && "
           "echo kept > /var/lib/edgekit/sounds/marker")
    events = box.sh(f"cat {EVENTS}").stdout
    r = box.sh("/srv/edgekit/scripts/install --wheels /srv/wheels", timeout=600)
    assert "The running service was restarted onto it" in r.stdout
    after = box.wait_active()
    assert after["MainPID"] != pid
    kept = box.sh(f"tail -1 /etc/edgekit/edgekit.toml; cat /var/lib/edgekit/sounds/marker; "
                  f"ls /var/lib/edgekit/models; cat {EVENTS}").stdout
    assert kept.startswith("# mine\nkept\n") and "yamnet_spectra_in.tflite" in kept and events in kept

    box.sh("/srv/edgekit/scripts/install --uninstall", timeout=120)
    gone = box.sh("ls /etc/systemd/system/edgekit.service /opt/edgekit /usr/local/bin/edgekit 2>&1; "
                  "systemctl is-active edgekit.service", check=False).stdout
    assert gone.count("No such file or directory") == 3 and gone.strip().endswith("inactive")
    box.sh("test -f /etc/edgekit/edgekit.toml && test -f /var/lib/edgekit/models/yamnet_spectra_in.tflite "
           f"&& test -f /var/lib/edgekit/sounds/marker && test -s {EVENTS}")
    box.sh("/srv/edgekit/scripts/install --uninstall --purge", timeout=120)
    assert box.sh("ls -d /etc/edgekit /var/lib/edgekit /var/lib/private/edgekit 2>&1", check=False
                  ).stdout.count("No such file or directory") == 3
