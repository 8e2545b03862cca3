"""The systemd unit, the Coral udev rules and `edgekit service install`.

systemd need not be running: `systemd-analyze verify` and `security --offline=true` read the file.
Both are skipped, with the reason, where systemd-analyze is absent (or too old for --offline).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from edgekit.daemon import install as si
from edgekit.daemon.exec_checks import hidden_paths
from edgekit.errors import ConfigError

from conftest import absent

ROOT = Path(__file__).resolve().parents[1]
SYSTEMD = ROOT / "systemd"
UNIT = SYSTEMD / "edgekit.service"
RULES = SYSTEMD / "60-edgetpu.rules"
MAX_EXPOSURE = 2.0
PLACEHOLDER_CONFIG = "# placeholder example config written by the test\n[model]\nmodel = \"yamnet\"\n"


# -- helpers ----------------------------------------------------------------------------------------
def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """{section: [(key, value), ...]} in file order, comments dropped, continuation lines joined."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            sections.setdefault(current, [])
            continue
        key, _, value = line.partition("=")
        assert current is not None, f"key outside a section: {line}"
        sections[current].append((key.strip(), value.strip()))
    return sections


def values(unit: dict, section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def value(unit: dict, section: str, key: str) -> str | None:
    vs = values(unit, section, key)
    return vs[-1] if vs else None


def systemd_analyze() -> str:
    exe = shutil.which("systemd-analyze")
    if not exe:
        absent("systemd-analyze is not installed (install systemd to check the unit)")
    return exe


def verify(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([systemd_analyze(), "verify", str(path)], capture_output=True, text=True,
                          timeout=120)


def stderr_lines(result: subprocess.CompletedProcess) -> list[str]:
    return [ln for ln in result.stderr.splitlines() if ln.strip()]


def existing_executable(tmp_path: Path) -> Path:
    """A stand-in edgekit that exists, so `verify` has nothing to say about ExecStart=."""
    exe = tmp_path / "bin" / "edgekit"
    exe.parent.mkdir(parents=True, exist_ok=True)
    exe.write_text("#!/bin/sh\nexit 0\n")
    exe.chmod(0o755)
    return exe


@pytest.fixture(scope="module")
def unit() -> dict:
    return parse_unit(UNIT.read_text())


@pytest.fixture
def source(tmp_path) -> Path:
    """The repo's unit and rules, and a placeholder example config (the real one is someone else's)."""
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(UNIT, src / "edgekit.service")
    shutil.copy(RULES, src / "60-edgetpu.rules")
    (src / "edgekit.toml").write_text(PLACEHOLDER_CONFIG)
    return src


def run_install(*argv: str) -> int:
    from edgekit.commands import service

    p = argparse.ArgumentParser(prog="edgekit service")
    service.add_arguments(p)
    return service.run(p.parse_args(list(argv)))


# -- systemd-analyze ---------------------------------------------------------------------------------
def test_security_exposure_at_most_2():
    exe = systemd_analyze()
    r = subprocess.run([exe, "security", "--offline=true", "--no-pager", str(UNIT)], capture_output=True,
                       text=True, timeout=120)
    if "--offline" in r.stderr and ("unrecognized" in r.stderr or "unknown" in r.stderr.lower()):
        pytest.skip(f"this systemd-analyze has no --offline (systemd >= 250 needed): {r.stderr.strip()}")
    m = re.search(r"Overall exposure level for \S+:\s*([0-9]+(?:\.[0-9]+)?)", r.stdout)
    assert m, f"no 'Overall exposure level' line in:\n{r.stdout}\n{r.stderr}"
    score = float(m.group(1))
    assert score <= MAX_EXPOSURE, f"exposure {score} > {MAX_EXPOSURE}:\n" + "\n".join(
        ln for ln in r.stdout.splitlines() if ln.startswith("✗"))


def test_verify_repo_unit_complains_only_about_the_absent_executable():
    r = verify(UNIT)
    exec_path = value(parse_unit(UNIT.read_text()), "Service", "ExecStart").split()[0]
    other = [ln for ln in stderr_lines(r)
             if not (exec_path in ln and "is not executable" in ln and not Path(exec_path).exists())]
    # `verify` exits 0 on unknown keys and bad values: what it prints is the verdict.
    assert other == [], "systemd-analyze verify complained:\n" + "\n".join(other)


def test_verify_is_silent_when_the_executable_exists(tmp_path):
    exe = existing_executable(tmp_path)
    copy = tmp_path / "edgekit.service"
    copy.write_text(si.rewrite_exec_start(UNIT.read_text(), [str(exe)]))
    r = verify(copy)
    assert stderr_lines(r) == [], r.stderr


def test_verify_does_catch_a_bad_key(tmp_path):
    """The control for the two tests above: a mistake in the unit does show on stderr."""
    exe = existing_executable(tmp_path)
    copy = tmp_path / "edgekit.service"
    text = si.rewrite_exec_start(UNIT.read_text(), [str(exe)])
    copy.write_text(text.replace("[Service]\n", "[Service]\nWatchdogSecs=30\nRestrictRealtime=maybe\n", 1))
    r = verify(copy)
    lines = stderr_lines(r)
    assert len(lines) == 2 and "WatchdogSecs" in lines[0] and "maybe" in lines[1], r.stderr


# -- the unit's contents -----------------------------------------------------------------------------
def test_unit_is_notify_with_watchdog_and_reload(unit):
    assert value(unit, "Service", "Type") == "notify"
    assert value(unit, "Service", "NotifyAccess") == "main"
    assert value(unit, "Service", "WatchdogSec") == "30"
    assert value(unit, "Service", "ExecStart") == "/usr/local/bin/edgekit run --config /etc/edgekit/edgekit.toml"
    assert value(unit, "Service", "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert value(unit, "Service", "KillSignal") == "SIGTERM"
    assert value(unit, "Service", "TimeoutStopSec")
    assert value(unit, "Service", "Restart") == "on-failure"
    assert value(unit, "Service", "RestartSec")
    # Start-rate limits live in [Unit]; in [Service] systemd ignores them (with a warning).
    assert int(value(unit, "Unit", "StartLimitBurst")) >= 1
    assert value(unit, "Unit", "StartLimitIntervalSec")
    assert value(unit, "Install", "WantedBy") == "multi-user.target"


def test_unit_device_allow_list(unit):
    assert value(unit, "Service", "DevicePolicy") == "closed"
    allow = values(unit, "Service", "DeviceAllow")
    specs = [a.split()[0] for a in allow]
    assert all(a.split()[-1] in ("rw", "r") for a in allow), allow

    def has(*names):
        return any(s == n or s.startswith(n) for s in specs for n in names)

    assert has("char-alsa", "/dev/snd"), f"no audio in {allow}"
    assert has("char-gpiochip", "/dev/gpiochip"), f"no GPIO in {allow}"
    assert has("char-usb_device", "/dev/bus/usb"), f"no Coral USB in {allow}"
    assert has("char-apex", "/dev/apex"), f"no Coral PCIe in {allow}"


def test_unit_identity_and_hardening(unit):
    s = "Service"
    assert value(unit, s, "DynamicUser") == "yes"
    groups = " ".join(values(unit, s, "SupplementaryGroups")).split()
    assert {"audio", "gpio", "plugdev", "apex"} <= set(groups)
    assert value(unit, s, "StateDirectory") == "edgekit"
    assert value(unit, s, "ConfigurationDirectory") == "edgekit"
    assert value(unit, s, "CapabilityBoundingSet") == ""
    assert value(unit, s, "AmbientCapabilities") == ""
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "ProtectKernelTunables", "ProtectKernelModules",
                "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock", "ProtectHostname",
                "RestrictNamespaces", "RestrictSUIDSGID", "LockPersonality", "RestrictRealtime"):
        assert value(unit, s, key) == "yes", key
    assert value(unit, s, "ProtectSystem") == "strict"
    assert value(unit, s, "SystemCallArchitectures") == "native"
    assert value(unit, s, "UMask") == "0077"
    filters = values(unit, s, "SystemCallFilter")
    assert "@system-service" in filters
    denied = " ".join(f[1:] for f in filters if f.startswith("~")).split()
    assert {"@privileged", "@resources"} <= set(denied)
    # numpy (OpenBLAS mbind) and PortAudio (libjack's sched_setscheduler) hit @resources at import:
    # with the default action the kernel would kill the daemon.
    assert value(unit, s, "SystemCallErrorNumber") == "EPERM"
    # cffi's ffi.callback (sounddevice's capture callback) needs W+X memory; device groups need the
    # host's user namespace.
    assert value(unit, s, "MemoryDenyWriteExecute") in (None, "no")
    assert value(unit, s, "PrivateUsers") in (None, "no")
    families = set(" ".join(values(unit, s, "RestrictAddressFamilies")).split())
    assert families == {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}
    assert value(unit, s, "IPAddressDeny") == "any"
    allow = " ".join(values(unit, s, "IPAddressAllow")).split()
    assert {"localhost", "192.168.0.0/16", "10.0.0.0/8", "172.16.0.0/12"} <= set(allow)


# -- udev rules --------------------------------------------------------------------------------------
RULE_TOKEN = re.compile(r'^\s*([A-Z_]+)(\{[^}]*\})?\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*$')
KNOWN_KEYS = {"ACTION", "DEVPATH", "KERNEL", "KERNELS", "NAME", "SYMLINK", "SUBSYSTEM", "SUBSYSTEMS", "DRIVER",
              "DRIVERS", "ATTR", "ATTRS", "ENV", "TAG", "TAGS", "TEST", "PROGRAM", "RESULT", "OWNER", "GROUP",
              "MODE", "RUN", "IMPORT", "GOTO", "LABEL", "OPTIONS", "SYSCTL", "CONST"}


def rule_lines() -> list[str]:
    return [ln for ln in RULES.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def test_udev_rules_parse():
    for line in rule_lines():
        for token in line.split(","):
            m = RULE_TOKEN.match(token)
            assert m, f"not KEY{{attr}}OP\"value\": {token!r} in {line!r}"
            assert m.group(1) in KNOWN_KEYS, f"unknown key {m.group(1)} in {line!r}"


def test_udev_rules_cover_both_usb_ids_and_apex():
    lines = rule_lines()

    def rule_for(*needles):
        found = [ln for ln in lines if all(n in ln for n in needles)]
        assert found, f"no rule with {needles}"
        return found[0]

    for vendor, product in (("1a6e", "089a"), ("18d1", "9302")):
        r = rule_for(f'ATTRS{{idVendor}}=="{vendor}"', f'ATTRS{{idProduct}}=="{product}"')
        assert 'MODE="0664"' in r and 'GROUP="plugdev"' in r and 'TAG+="uaccess"' in r, r
    r = rule_for('SUBSYSTEM=="apex"')
    assert 'MODE="0660"' in r and 'GROUP="apex"' in r, r


def test_udevadm_verify_rules():
    exe = shutil.which("udevadm")
    if not exe:
        absent("udevadm is not installed (package udev; scripts/setup installs it)")
    probe = subprocess.run([exe, "verify", "--help"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("this udevadm has no `verify` (systemd >= 254 needed); syntax checked by test_udev_rules_parse")
    r = subprocess.run([exe, "verify", "--resolve-names=never", str(RULES)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


# -- edgekit service install -------------------------------------------------------------------------
def test_source_dir_is_the_package_data_the_repository_links_to(monkeypatch):
    monkeypatch.delenv("EDGEKIT_SYSTEMD_DIR", raising=False)
    found = si.find_source_dir()
    assert found == Path(si.__file__).parent / "systemd"  # importlib.resources: a wheel has it too
    for name in ("edgekit.service", "60-edgetpu.rules", "edgekit.toml"):
        assert (SYSTEMD / name).resolve() == (found / name).resolve()


def test_source_dir_from_environment(monkeypatch, source):
    monkeypatch.setenv("EDGEKIT_SYSTEMD_DIR", str(source))
    assert si.find_source_dir() == source


def test_dry_run_writes_nothing(tmp_path, source, capsys):
    prefix = tmp_path / "root"
    rc = run_install("install", "--prefix", str(prefix), "--dry-run", "--exec", "/opt/edgekit/bin/edgekit",
                     "--source", str(source))
    out = capsys.readouterr().out
    assert rc == 0
    assert not prefix.exists()
    assert "dry run" in out
    assert "ExecStart=/opt/edgekit/bin/edgekit run --config /etc/edgekit/edgekit.toml" in out
    for rel in ("etc/systemd/system/edgekit.service", "etc/udev/rules.d/60-edgetpu.rules",
                "etc/edgekit/edgekit.toml"):
        assert str(prefix / rel) in out
    for cmd in ("systemctl daemon-reload", "udevadm control --reload-rules", "groupadd --system --force apex",
                "systemctl enable --now edgekit"):
        assert cmd in out
    # Groups before udev: udev ignores a GROUP= it cannot resolve when it loads the rules.
    assert out.index("groupadd") < out.index("udevadm control")


def test_install_into_prefix(tmp_path, source, capsys, monkeypatch):
    monkeypatch.setattr(si, "run_commands", lambda *a, **k: pytest.fail("ran system commands for a --prefix install"))
    exe = Path(shutil.which("true") or "/bin/true").resolve()  # one the unit can see: not under /tmp
    prefix = tmp_path / "root"
    assert run_install("install", "--prefix", str(prefix), "--exec", str(exe), "--source", str(source)) == 0
    out = capsys.readouterr().out
    assert "not run" in out and "systemctl daemon-reload" in out

    unit_dest = prefix / "etc/systemd/system/edgekit.service"
    rules_dest = prefix / "etc/udev/rules.d/60-edgetpu.rules"
    config_dest = prefix / "etc/edgekit/edgekit.toml"
    for f in (unit_dest, rules_dest, config_dest):
        assert f.is_file(), f
        assert stat.S_IMODE(f.stat().st_mode) == 0o644, f
    assert rules_dest.read_bytes() == RULES.read_bytes()
    assert config_dest.read_text() == PLACEHOLDER_CONFIG

    installed = unit_dest.read_text().splitlines()
    original = UNIT.read_text().splitlines()
    assert len(installed) == len(original)
    changed = [(a, b) for a, b in zip(original, installed) if a != b]
    assert changed == [("ExecStart=/usr/local/bin/edgekit run --config /etc/edgekit/edgekit.toml",
                        f"ExecStart={exe} run --config /etc/edgekit/edgekit.toml")]
    if shutil.which("systemd-analyze"):
        r = verify(unit_dest)
        assert stderr_lines(r) == [], r.stderr


def test_new_directories_are_world_searchable_whatever_the_umask(tmp_path, source):
    prefix = tmp_path / "root"
    old = os.umask(0o077)
    try:
        assert si.install(prefix, "/opt/edgekit/bin/edgekit", source=source, out=lambda *_: None) == 0
    finally:
        os.umask(old)
    for d in ("etc", "etc/edgekit", "etc/systemd/system", "etc/udev/rules.d"):
        assert stat.S_IMODE((prefix / d).stat().st_mode) == 0o755, d
    assert stat.S_IMODE((prefix / "etc/edgekit/edgekit.toml").stat().st_mode) == 0o644


def test_existing_config_is_never_overwritten(tmp_path, source, capsys):
    prefix = tmp_path / "root"
    config = prefix / "etc/edgekit/edgekit.toml"
    config.parent.mkdir(parents=True)
    config.write_text("# mine\n")
    config.chmod(0o640)
    assert run_install("install", "--prefix", str(prefix), "--exec", "/opt/edgekit/bin/edgekit",
                       "--source", str(source)) == 0
    out = capsys.readouterr().out
    assert config.read_text() == "# mine\n"
    assert stat.S_IMODE(config.stat().st_mode) == 0o640
    assert "never overwritten" in out
    assert (prefix / "etc/systemd/system/edgekit.service").is_file()


def test_reinstall_is_idempotent_and_keeps_a_changed_unit(tmp_path, source, capsys):
    prefix = tmp_path / "root"
    args = ("install", "--prefix", str(prefix), "--exec", "/opt/edgekit/bin/edgekit", "--source", str(source))
    assert run_install(*args) == 0
    capsys.readouterr()
    assert run_install(*args) == 0
    out = capsys.readouterr().out
    assert re.search(r"unit\s+unchanged", out) and re.search(r"config\s+kept", out)

    unit_dest = prefix / "etc/systemd/system/edgekit.service"
    unit_dest.write_text(unit_dest.read_text() + "# local edit\n")
    assert run_install(*args) == 0
    backup = unit_dest.with_name("edgekit.service.bak")
    assert backup.read_text().endswith("# local edit\n")
    assert not unit_dest.read_text().endswith("# local edit\n")


def test_missing_example_config_is_reported_not_fatal(tmp_path, source, capsys):
    (source / "edgekit.toml").unlink()
    prefix = tmp_path / "root"
    assert run_install("install", "--prefix", str(prefix), "--exec", "/opt/edgekit/bin/edgekit",
                       "--source", str(source)) == 0
    assert "write one yourself" in capsys.readouterr().out
    assert not (prefix / "etc/edgekit/edgekit.toml").exists()
    assert (prefix / "etc/systemd/system/edgekit.service").is_file()


def test_exec_path_is_rewritten_with_systemd_quoting():
    text = "[Service]\nExecStart=/usr/local/bin/edgekit run --config /etc/edgekit/edgekit.toml\n"
    out = si.rewrite_exec_start(text, ["/opt/my apps/100%/edgekit"])
    assert out == '[Service]\nExecStart="/opt/my apps/100%%/edgekit" run --config /etc/edgekit/edgekit.toml\n'
    out = si.rewrite_exec_start(text, ["/usr/bin/python3", "-m", "edgekit"])
    assert "ExecStart=/usr/bin/python3 -m edgekit run --config" in out


def test_default_exec_is_the_running_edgekit(tmp_path, monkeypatch):
    exe = existing_executable(tmp_path)
    monkeypatch.setattr("sys.argv", [str(exe), "service", "install"])
    assert si.find_exec_command() == [str(exe)]
    monkeypatch.setattr("sys.argv", ["/nowhere/__main__.py"])
    monkeypatch.setattr("sys.executable", str(tmp_path / "nobin" / "python3"))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert si.find_exec_command() == [str(tmp_path / "nobin" / "python3"), "-m", "edgekit"]


def test_exec_under_home_is_refused_for_a_real_install(tmp_path):
    assert hidden_paths("/home/pi/.local/bin/edgekit")
    assert hidden_paths("/root/.local/bin/edgekit")
    assert not hidden_paths("/opt/edgekit/bin/edgekit")
    # A script whose #! interpreter lives in a home directory (pyenv, uv) is refused too.
    script = tmp_path / "edgekit"
    script.write_text("#!/home/pi/.pyenv/versions/3.11.7/bin/python3.11\n")
    assert Path("/home/pi/.pyenv/versions/3.11.7/bin/python3.11") in hidden_paths(str(script))
    lines = []
    assert si.install(prefix="/", exec_path="/home/pi/.local/bin/edgekit", dry_run=True, out=lambda *_: None,
                      err=lines.append) == 1
    assert "ProtectHome=yes" in "\n".join(lines)


def test_relative_exec_is_refused():
    with pytest.raises(ConfigError, match="absolute"):
        si.find_exec_command("bin/edgekit")


# -- an ExecStart= the service cannot see, or that others could change ------------------------------
@pytest.mark.parametrize("exe,setting", [
    ("/tmp/venv/bin/edgekit", "PrivateTmp=yes"),
    ("/var/tmp/edgekit", "PrivateTmp=yes"),
    ("/home/pi/edgekit/.venv/bin/edgekit", "ProtectHome=yes"),
    ("/run/user/1000/edgekit", "ProtectHome=yes"),
])
@pytest.mark.parametrize("dry_run", [True, False])
def test_an_exec_the_unit_cannot_see_is_refused_with_the_fix(exe, setting, dry_run, tmp_path, source, capsys):
    prefix = tmp_path / "root"
    argv = ["install", "--prefix", str(prefix), "--exec", exe, "--source", str(source)]
    assert run_install(*argv, *(["--dry-run"] if dry_run else [])) == 1
    out, err = capsys.readouterr()
    assert not prefix.exists()  # nothing written, dry run or not
    assert f"ExecStart={exe} run --config" in out and "systemctl daemon-reload" in out and "next:" in out
    assert err.startswith("edgekit: error: nothing ") and setting in err and exe in err
    assert "sudo scripts/install" in err  # the fix


def test_what_is_hidden_comes_from_the_unit(source):
    unit = (source / "edgekit.service").read_text()
    assert hidden_paths("/tmp/edgekit", unit) == [Path("/tmp/edgekit")]
    unit = unit.replace("PrivateTmp=yes", "PrivateTmp=no").replace("ProtectHome=yes", "ProtectHome=read-only")
    assert hidden_paths("/tmp/edgekit", unit) == [] and hidden_paths("/home/pi/edgekit", unit) == []
    # DynamicUser=yes alone implies PrivateTmp=yes
    assert hidden_paths("/tmp/edgekit", "[Service]\nDynamicUser=yes\n") == [Path("/tmp/edgekit")]


@pytest.fixture
def visible_tmp(source):
    """The unit with PrivateTmp=no, so that an executable under tmp_path is visible to it."""
    unit = source / "edgekit.service"
    unit.write_text(unit.read_text().replace("PrivateTmp=yes", "PrivateTmp=no"))
    return source


@pytest.mark.skipif(os.geteuid() != 0, reason="the files a test makes are root's only when it runs as root")
def test_an_exec_others_could_change_is_refused(tmp_path, visible_tmp, capsys):
    import grp
    import pwd

    exe = existing_executable(tmp_path)
    argv = ("install", "--prefix", "/", "--dry-run", "--exec", str(exe), "--source", str(visible_tmp))
    assert run_install(*argv) == 0, capsys.readouterr().err
    capsys.readouterr()
    checks = [
        (lambda: exe.parent.chmod(0o777), f"{exe.parent} is writable by everyone"),
        (lambda: os.chown(exe, pwd.getpwnam("nobody").pw_uid, -1), f"{exe} is owned by nobody"),
        (lambda: (os.chown(tmp_path, -1, grp.getgrnam("nogroup").gr_gid), tmp_path.chmod(0o775)),
         f"{tmp_path} is writable by group nogroup"),
    ]
    for change, why in checks:
        change()
        assert run_install(*argv) == 1
        out, err = capsys.readouterr()
        assert "next:" in out and f"  - {why}: whoever can change it runs code as the service" in err
    assert err.startswith("edgekit: error: nothing would be installed: 3 problems with ExecStart=")
    # The #! interpreter of a script counts as much as the script.
    os.chown(exe, 0, -1), exe.parent.chmod(0o755), os.chown(tmp_path, -1, 0), tmp_path.chmod(0o755)
    python = tmp_path / "py" / "python3"
    python.parent.mkdir()
    python.symlink_to(Path(sys.executable).resolve())
    python.parent.chmod(0o777)
    exe.write_text(f"#!{python}\n")
    assert run_install(*argv) == 1
    assert f"{python.parent} is writable by everyone" in capsys.readouterr().err


@pytest.mark.parametrize("mode,warns", [(0o644, True), (0o640, False)])
def test_a_world_readable_mqtt_password_is_warned_about(mode, warns, tmp_path, source, capsys):
    prefix = tmp_path / "root"
    config = prefix / "etc/edgekit/edgekit.toml"
    config.parent.mkdir(parents=True)
    config.write_text('[mqtt]\nhost = "broker"\nusername = "pi"\npassword = "s3cret"\n')
    config.chmod(mode)
    assert run_install("install", "--prefix", str(prefix), "--dry-run", "--exec", "/opt/edgekit/bin/edgekit",
                       "--source", str(source)) == 0
    out = capsys.readouterr().out
    assert ("holds an MQTT password and every local user can read it" in out) == warns
    assert "s3cret" not in out
    if warns:
        assert "chmod 640 /etc/edgekit/edgekit.toml" in out and "SupplementaryGroups=edgekit-conf" in out


def test_supplementary_groups_parsed():
    assert si.supplementary_groups(UNIT.read_text()) == ["audio", "gpio", "plugdev", "apex"]
    assert si.supplementary_groups("SupplementaryGroups=a b\nSupplementaryGroups=\nSupplementaryGroups=c\n") == ["c"]


def test_cli_registration(tmp_path, source, capsys):
    from edgekit import cli

    if "service" not in cli.COMMANDS:
        pytest.skip('`service` is not registered in edgekit.cli.COMMANDS yet ("service": "service")')
    rc = cli.main(["service", "install", "--prefix", str(tmp_path / "root"), "--dry-run",
                   "--exec", "/opt/edgekit/bin/edgekit", "--source", str(source)])
    assert rc == 0
    assert "dry run" in capsys.readouterr().out
    assert cli.main(["service", "install", "--prefix", "/", "--dry-run",
                     "--exec", "/home/pi/.local/bin/edgekit", "--source", str(source)]) == 1
    assert "ProtectHome" in capsys.readouterr().err


def test_no_action_prints_help(capsys):
    assert run_install() == 2
    assert "install" in capsys.readouterr().out


@pytest.mark.skipif(os.geteuid() == 0 and Path("/run/systemd/system").is_dir(),
                    reason="on a machine booted with systemd a root install to / would act on it")
def test_live_install_would_not_run_commands_here(source, capsys):
    # Not booted with systemd (or not root): even for prefix / the commands are printed, not run.
    plan = si.plan_install("/", "/opt/edgekit/bin/edgekit", source)
    assert plan.live and not si.can_run_commands(plan)
