"""`edgekit service install` says what matters first: whether anything is installed, each problem
once and the fix once, the config's own model in its next steps; no udevd is a warning."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgekit.daemon import install as si

ROOT = Path(__file__).resolve().parents[1]
SYSTEMD = ROOT / "systemd"


@pytest.fixture
def source(tmp_path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("edgekit.service", "60-edgetpu.rules", "edgekit.toml"):
        shutil.copy(SYSTEMD / name, src / name)
    return src


def run(**kw) -> tuple[int, list[tuple[str, str]]]:
    """install()'s return code and every line, in order, tagged out/err."""
    lines: list[tuple[str, str]] = []
    rc = si.install(out=lambda line: lines.append(("out", line)), err=lambda line: lines.append(("err", line)), **kw)
    return rc, lines


def test_a_refused_dry_run_says_so_first_and_the_fix_once(tmp_path, source):
    # A venv under /tmp whose Python lives under /home: two hidden paths, one fix.
    exe = tmp_path / "venv" / "bin" / "edgekit"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/home/pi/.pyenv/versions/3.11.7/bin/python3.11\n")
    exe.chmod(0o755)
    rc, lines = run(prefix="/", exec_path=str(exe), dry_run=True, source=source)
    assert rc == 1
    text = [line for _, line in lines]
    assert text[0].startswith("edgekit: error: nothing would be installed: ") and "problems" in text[0]
    problems = [line for line in text if line.startswith("  - ")]
    assert len(problems) >= 2
    fixes = [line for line in text if "sudo scripts/install" in line]
    assert len(fixes) == 1, "the remedy is said once, not once per problem"
    plan_start = text.index(next(line for line in text if line.startswith("edgekit service install")))
    assert all(text.index(p) < plan_start for p in problems + fixes)


def test_next_step_pulls_the_example_configs_own_model(tmp_path, source):
    rc, lines = run(prefix=tmp_path / "root", exec_path="/opt/edgekit/bin/edgekit", dry_run=True, source=source)
    assert rc == 0
    text = "\n".join(line for _, line in lines)
    assert "models pull yamnet\n" not in text + "\n"
    assert "EDGEKIT_MODEL_DIR=/var/lib/edgekit/models /opt/edgekit/bin/edgekit models pull yamnet_spectra_in" in text


def test_next_step_names_a_kept_configs_model_and_skips_one_in_place(tmp_path, source):
    prefix = tmp_path / "root"
    conf = prefix / "etc/edgekit/edgekit.toml"
    conf.parent.mkdir(parents=True)
    conf.write_text('[model]\nmodel = "yamnet_spectra_in_edgetpu"\ndevice = "usb"\n')
    _, lines = run(prefix=prefix, exec_path="/opt/edgekit/bin/edgekit", dry_run=True, source=source)
    text = "\n".join(line for _, line in lines)
    assert "models pull yamnet_spectra_in_edgetpu" in text
    models = prefix / "var/lib/edgekit/models"
    models.mkdir(parents=True)
    (models / "yamnet_spectra_in_edgetpu.tflite").write_bytes(b"x")
    _, lines = run(prefix=prefix, exec_path="/opt/edgekit/bin/edgekit", dry_run=True, source=source)
    assert "models pull" not in "\n".join(line for _, line in lines)


def fake_udevadm(tmp_path, monkeypatch, status: int) -> None:
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    exe = bin_dir / "udevadm"
    exe.write_text(f"#!/bin/sh\nexit {status}\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")


def udev_plan(tmp_path) -> si.InstallPlan:
    plan = si.InstallPlan(prefix=Path("/"), exec_start="/opt/edgekit/bin/edgekit run")
    plan.commands = [["udevadm", "control", "--reload-rules"], ["udevadm", "trigger", "--subsystem-match=usb"]]
    return plan


def test_no_udevd_is_a_warning_not_a_failure(tmp_path, monkeypatch):
    fake_udevadm(tmp_path, monkeypatch, 1)
    monkeypatch.setattr(si, "UDEV_CONTROL", tmp_path / "no-such-socket")
    lines: list[str] = []
    assert si.run_commands(udev_plan(tmp_path), lines.append) == 0
    assert any("warning" in line and "udevd is not running" in line for line in lines)


def test_a_failing_udevadm_is_a_warning(tmp_path, monkeypatch):
    fake_udevadm(tmp_path, monkeypatch, 1)
    control = tmp_path / "control"
    control.touch()
    monkeypatch.setattr(si, "UDEV_CONTROL", control)
    lines: list[str] = []
    assert si.run_commands(udev_plan(tmp_path), lines.append) == 0
    assert any("warning: exit status 1" in line for line in lines)


def test_other_failing_commands_still_fail(tmp_path, monkeypatch):
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    (bin_dir / "systemctl").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "systemctl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    plan = udev_plan(tmp_path)
    plan.commands = [["systemctl", "daemon-reload"]]
    assert si.run_commands(plan, lambda _: None) == 1


def test_a_model_in_the_services_private_directory_is_a_clear_error(tmp_path, monkeypatch):
    """After the service's first start /var/lib/edgekit is 0700 (DynamicUser=): a user's
    `edgekit config check` then met a PermissionError traceback."""
    from pathlib import Path as P

    from edgekit.errors import ModelNotFoundError
    from edgekit.models import paths

    private = tmp_path / "private" / "models"
    monkeypatch.setenv("EDGEKIT_MODEL_DIR", str(private))
    real_is_file = P.is_file

    def is_file(self):
        if private in self.parents:
            raise PermissionError(13, "Permission denied", str(self))
        return real_is_file(self)

    monkeypatch.setattr(P, "is_file", is_file)
    with pytest.raises(ModelNotFoundError, match="cannot be read by this user.*sudo"):
        paths.resolve_model("yamnet_spectra_in")
