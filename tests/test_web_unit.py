"""The status page's systemd unit, its install beside the daemon's, and the daemon keeping no socket
anyone could connect to (its live feed only sends)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_systemd_unit import parse_unit, run_install, systemd_analyze, value, values

ROOT = Path(__file__).resolve().parents[1]
WEB_UNIT = ROOT / "systemd" / "edgekit-web.service"
DAEMON_UNIT = ROOT / "systemd" / "edgekit.service"


def test_web_unit_exposure_at_most_2():
    r = subprocess.run([systemd_analyze(), "security", "--offline=true", "--no-pager", str(WEB_UNIT)],
                       capture_output=True, text=True, timeout=120)
    if "--offline" in r.stderr and ("unrecognized" in r.stderr or "unknown" in r.stderr.lower()):
        pytest.skip(f"this systemd-analyze has no --offline (systemd >= 250 needed): {r.stderr.strip()}")
    m = re.search(r"Overall exposure level for \S+:\s*([0-9]+(?:\.[0-9]+)?)", r.stdout)
    assert m and float(m.group(1)) <= 2.0, r.stdout


def test_web_unit_shares_the_daemons_user_and_state_and_stays_local():
    web, daemon = parse_unit(WEB_UNIT.read_text()), parse_unit(DAEMON_UNIT.read_text())
    assert value(web, "Service", "DynamicUser") == "yes" and value(web, "Service", "User") == "edgekit"
    assert value(daemon, "Service", "DynamicUser") == "yes" and value(daemon, "Service", "User") in (None, "edgekit")
    assert value(web, "Service", "StateDirectory") == value(daemon, "Service", "StateDirectory") == "edgekit"
    assert value(web, "Service", "IPAddressDeny") == "any" and value(web, "Service", "IPAddressAllow") == "localhost"
    assert value(web, "Service", "RestartPreventExitStatus") == "78"
    assert "web --config" in value(web, "Service", "ExecStart")


def test_the_daemons_unit_has_no_listening_socket():
    for section in parse_unit(DAEMON_UNIT.read_text()).values():
        assert not [k for k, _ in section if k.startswith("Listen")]
    assert not (ROOT / "systemd" / "edgekit.socket").exists()


def test_service_install_writes_the_web_unit_beside_the_daemons(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("edgekit.service", "edgekit-web.service", "60-edgetpu.rules"):
        (src / name).write_bytes((ROOT / "systemd" / name).read_bytes())
    (src / "edgekit.toml").write_text('[model]\nmodel = "yamnet"\n')
    exe = Path(shutil.which("true") or "/bin/true").resolve()  # one the unit can see: not under /tmp
    prefix = tmp_path / "root"
    assert run_install("install", "--prefix", str(prefix), "--source", str(src), "--exec", str(exe)) == 0
    unit = (prefix / "etc/systemd/system/edgekit-web.service").read_text()
    assert f"ExecStart={exe} web --config /etc/edgekit/edgekit.toml" in unit
    assert "edgekit-web" in capsys.readouterr().out


def _socket_inodes(pid: int) -> set[str]:
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        m = re.match(r"socket:\[(\d+)\]", target)
        if m:
            out.add(m.group(1))
    return out


def test_the_running_daemon_keeps_no_listening_or_bound_socket(tmp_path, models_dir, audio_dir):
    """Clips and the live feed on, a companion bound to the feed: the daemon's sockets are all
    unbound senders (no TCP/UDP socket at all, no Unix socket with a name)."""
    from edgekit.web.live import LiveReceiver

    state = tmp_path / "state"
    state.mkdir()
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"""
[model]
model = "{models_dir / 'yamnet_spectra_in.tflite'}"
[audio]
source = "{audio_dir / 'smoke_alarm.wav'}"
speed = "realtime"
[[rules]]
name = "smoke"
labels = ["Smoke detector, smoke alarm"]
[log]
path = "{state / 'events.jsonl'}"
""")
    receiver = LiveReceiver(state / "live.sock")
    env = {k: v for k, v in os.environ.items() if k not in ("INVOCATION_ID", "STATE_DIRECTORY", "NOTIFY_SOCKET")}
    proc = subprocess.Popen([sys.executable, "-m", "edgekit", "run", "--config", str(cfg)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while receiver.latest is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert receiver.latest is not None, "no live message from the daemon"
        inodes = _socket_inodes(proc.pid)
        assert inodes, "the daemon should hold its (sending) live-feed socket"
        net = Path(f"/proc/{proc.pid}/net")
        for table in ("tcp", "tcp6", "udp", "udp6"):
            lines = (net / table).read_text().splitlines()[1:]
            assert not [ln for ln in lines if ln.split()[9] in inodes], f"the daemon has a {table} socket"
        for ln in (net / "unix").read_text().splitlines()[1:]:
            parts = ln.split()
            if parts[6] in inodes:
                assert len(parts) < 8, f"the daemon has a bound (named) Unix socket: {ln}"
                assert int(parts[3], 16) & 0x10000 == 0  # __SO_ACCEPTCON: listening
    finally:
        proc.terminate()
        proc.wait(20)
        receiver.close()
