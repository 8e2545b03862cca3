"""A Debian bookworm root booted with systemd as PID 1 under systemd-nspawn, for the systemd tests.

The root is built once with debootstrap from the machine's own Debian mirror and cached (with the
wheels edgekit needs, built on the host for the same Python 3.11) under $EDGEKIT_NSPAWN_CACHE
(default /var/tmp/edgekit-nspawn); each boot lays a tmpfs over it (--volatile=overlay), so the
cached root is never changed and nothing is left behind.

Why these options:
- ``--system-call-filter=bpf``: nspawn's default seccomp policy refuses bpf(), and systemd then
  silently drops DevicePolicy=/DeviceAllow= and IPAddressDeny= (a sandbox test would prove nothing);
- ``SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1``: cgroup v2 inside, as on Raspberry Pi OS bookworm, even
  where the host mounts the v1 hierarchies;
- ``--register=no --keep-unit``: no machined or systemd on the host's bus is needed (the host's
  PID 1 need not be systemd);
- ``--private-network``: only a loopback inside; nothing the test starts is reachable from outside.

    python3 tests/nspawn.py build      build (or check) the cached root and wheels, print their paths
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("EDGEKIT_NSPAWN_CACHE", "/var/tmp/edgekit-nspawn"))
SUITE = "bookworm"
# What a Pi running the service has (python3-venv, PortAudio, udev), and the test's own parts: a
# sound server with a null sink (pulseaudio, ALSA's pulse plugin), a broker (mosquitto), iproute2.
PACKAGES = ["systemd", "systemd-sysv", "dbus", "udev", "python3", "python3-venv", "libportaudio2",
            "libsndfile1", "pulseaudio", "pulseaudio-utils", "libasound2-plugins", "alsa-utils",
            "mosquitto", "mosquitto-clients", "iproute2", "procps", "ca-certificates"]
# The Python the root runs (bookworm's) must be the one the wheels are built for.
ROOT_PYTHON = (3, 11)


def _say(msg: str) -> None:
    print(f"nspawn: {msg}", file=sys.stderr, flush=True)


def mirror() -> str:
    """The machine's configured Debian mirror (deb822 .sources or one-line lists)."""
    texts = []
    for p in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if p.is_file() and p.suffix in (".list", ".sources", ""):
            try:
                texts.append(p.read_text())
            except OSError:
                pass
    for text in texts:
        for m in re.finditer(r"^(?:deb\s+(?:\[[^\]]*\]\s+)?|URIs:\s*)(\S+)", text, re.M):
            uri = m.group(1).rstrip("/")
            if "debian" in uri and "security" not in uri:
                return uri
    return "http://deb.debian.org/debian"


def cannot_boot() -> str | None:
    """Why a container cannot be booted here, or None."""
    if os.geteuid() != 0:
        return "booting a container needs root (systemd-nspawn)"
    missing = [b for b in ("systemd-nspawn", "debootstrap", "nsenter") if shutil.which(b) is None]
    if missing:
        return f"{', '.join(missing)} missing: run scripts/setup as root (it installs systemd-container and debootstrap)"
    if sys.version_info[:2] != ROOT_PYTHON:
        return (f"the wheels are built with this Python ({sys.version.split()[0]}), but bookworm's is "
                f"{'.'.join(map(str, ROOT_PYTHON))}")
    if not Path("/sys/fs/cgroup").is_dir():
        return "no /sys/fs/cgroup"
    return None


class _Lock:
    """One builder at a time (other test runs may share the cache)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.f = open(path, "w")

    def __enter__(self):
        fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


def root_dir() -> Path:
    key = hashlib.sha256(" ".join([SUITE, *PACKAGES]).encode()).hexdigest()[:12]
    return CACHE / f"{SUITE}-{key}"


def build_root() -> Path:
    """The cached root, built with debootstrap if it is not there (a few minutes, once)."""
    root = root_dir()
    with _Lock(CACHE / ".lock"):
        if (root / ".complete").exists():
            return root
        tmp = root.with_name(root.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        _say(f"building the {SUITE} root with debootstrap from {mirror()} (a few minutes, cached in {root})")
        t0 = time.monotonic()
        r = subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE,
                            str(tmp), mirror()], capture_output=True, text=True)
        if r.returncode != 0:
            log = tmp / "debootstrap" / "debootstrap.log"
            detail = log.read_text()[-2000:] if log.exists() else r.stdout[-2000:] + r.stderr[-2000:]
            shutil.rmtree(tmp, ignore_errors=True)
            raise RuntimeError(f"debootstrap failed (exit {r.returncode}): {detail}")
        (tmp / "etc/hostname").write_text("edgekit-test\n")
        # No getty on the container's console (the test has no terminal to give it).
        for unit in ("console-getty.service", "getty@.service"):
            link = tmp / "etc/systemd/system" / unit
            link.unlink(missing_ok=True)
            link.symlink_to("/dev/null")
        (tmp / ".complete").write_text(f"built in {time.monotonic() - t0:.0f} s\n")
        tmp.rename(root)
        return root


def build_wheels(python: str = sys.executable) -> Path:
    """Wheels of edgekit's dependencies (and setuptools/wheel, to build edgekit offline), for the
    Python running this: the input of `scripts/install --wheels`. Cached per pyproject.toml."""
    key = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()[:12]
    out = CACHE / f"wheels-{key}"
    with _Lock(CACHE / ".lock"):
        if (out / ".complete").exists():
            return out
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        _say(f"building wheels for the container in {out}")
        pip = [python, "-m", "pip", "--disable-pip-version-check", "--quiet"]
        src = Path(tempfile.mkdtemp(prefix="edgekit-wheel-src-"))
        try:
            # From a copy: a build in the worktree would leave build/ and *.egg-info behind.
            subprocess.run(f"tar -C {REPO} --exclude=./.venv --exclude=./.git --exclude=./build "
                           f"--exclude='*.egg-info' --exclude=__pycache__ -cf - . | tar -C {src} -xf -",
                           shell=True, check=True)
            subprocess.run([*pip, "wheel", "--wheel-dir", str(tmp), str(src)], check=True)
            subprocess.run([*pip, "download", "--dest", str(tmp), "setuptools>=68", "wheel"], check=True)
        finally:
            shutil.rmtree(src, ignore_errors=True)
        for whl in tmp.glob("edgekit-*.whl"):
            whl.unlink()  # scripts/install builds edgekit from the checkout itself
        (tmp / ".complete").touch()
        tmp.rename(out)
        return out


def disk_usage(path: Path) -> int:
    r = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True)
    return int(r.stdout.split()[0]) if r.returncode == 0 and r.stdout else 0


class Container:
    """A booted container: ``run`` executes a shell command inside it (as root, in all its
    namespaces); ``close`` powers it off, and kills it if it does not go."""

    def __init__(self, root: Path, binds: dict[str, Path], log: Path, private: bool = True):
        """``private``: a tmpfs over the root and a network of its own (loopback only); False
        (a throw-away root that may reach the network) is for trying things by hand."""
        self.root, self.binds, self.log, self.private = root, binds, log, private
        self.proc: subprocess.Popen | None = None
        self.leader: int | None = None

    def boot(self, timeout: float = 90) -> None:
        args = ["systemd-nspawn", "--quiet", "-D", str(self.root), "--boot", "--register=no", "--keep-unit",
                "--system-call-filter=bpf", f"--machine=edgekit-test-{os.getpid()}"]
        args += ["--volatile=overlay", "--private-network"] if self.private else []
        args += [f"--bind-ro={src}:{dest}" for dest, src in self.binds.items()]
        env = {**os.environ, "SYSTEMD_NSPAWN_UNIFIED_HIERARCHY": "1"}
        with open(self.log, "wb") as logf:
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                         env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited ({self.proc.returncode}): {self.log.read_text()[-3000:]}")
            if self.leader is None:
                self.leader = self._find_leader()
            if self.leader is not None:
                r = self.run("systemctl is-system-running", check=False, timeout=10)
                state = r.stdout.strip()
                if state in ("running", "degraded"):
                    if state == "degraded":
                        _say("booted degraded: " + self.run("systemctl --failed --no-legend", check=False).stdout)
                    return
            time.sleep(0.5)
        raise RuntimeError(f"the container did not finish booting in {timeout:.0f} s: {self.log.read_text()[-3000:]}")

    def _find_leader(self) -> int | None:
        """The container's PID 1 on the host: nspawn's child that runs systemd."""
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        except OSError:
            return None
        for c in children:
            try:
                if Path(f"/proc/{c}/comm").read_text().strip() == "systemd":
                    return int(c)
            except OSError:
                continue
        return None

    def run(self, command: str, check: bool = True, timeout: float = 120,
            input: str | None = None) -> subprocess.CompletedProcess:
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
               "HOME": "/root", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"}
        r = subprocess.run(["nsenter", f"--target={self.leader}", "--mount", "--uts", "--ipc", "--net", "--pid",
                            "--cgroup", "--root", f"--wd=/proc/{self.leader}/root", "/bin/sh", "-c", command],
                           capture_output=True, text=True, timeout=timeout, env=env, input=input, cwd="/")
        if check and r.returncode != 0:
            raise AssertionError(f"in the container, `{command}` exited {r.returncode}:\n{r.stdout[-3000:]}\n"
                                 f"{r.stderr[-3000:]}")
        return r

    def host_net(self, *argv: str) -> subprocess.CompletedProcess:
        """A host binary run in the container's network namespace only (e.g. the host's `ip`)."""
        return subprocess.run(["nsenter", f"--target={self.leader}", "--net", *argv], capture_output=True,
                              text=True, check=True)

    def close(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None and self.leader is not None:
            try:
                self.run("systemctl poweroff --no-block", check=False, timeout=10)
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


if __name__ == "__main__":
    if sys.argv[1:] == ["build"]:
        why = cannot_boot()
        if why:
            sys.exit(f"nspawn: {why}")
        t0 = time.monotonic()
        print(build_root())
        print(build_wheels())
        print(f"{time.monotonic() - t0:.0f} s")
    else:
        sys.exit(__doc__)
