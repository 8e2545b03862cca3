"""Install the systemd unit, the Coral udev rules and the example config (``edgekit service install``).

The files have one source of truth, the repository's ``systemd/`` folder. They are found:

1. in ``$EDGEKIT_SYSTEMD_DIR`` when set;
2. beside the package (``<repo>/systemd``): a source checkout or an editable install;
3. in ``<prefix>/share/edgekit/systemd`` of the running Python, where a wheel puts them
   (``[tool.setuptools.data-files]`` in pyproject.toml), then /usr/local/share and /usr/share.

Everything is written under ``prefix`` (``/`` for a real install, a scratch folder for tests or for
building an SD-card image), and nothing outside it. The system commands that follow (groupadd, udevadm,
systemctl) are run only for a real install by root on a machine booted with systemd; otherwise they are
printed for the user to run.
"""

from __future__ import annotations

import grp
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.errors import ConfigError, EdgekitError
from edgekit.daemon.exec_checks import SAFE_PLACE, config_secret_warning, exec_problems

UNIT_NAME = "edgekit.service"
WEB_UNIT_NAME = "edgekit-web.service"  # the status page (`edgekit web`), beside the daemon
RULES_NAME = "60-edgetpu.rules"
CONFIG_NAME = "edgekit.toml"

UNIT_DIR = Path("etc/systemd/system")
RULES_DIR = Path("etc/udev/rules.d")
CONFIG_DIR = Path("etc/edgekit")
CONFIG_PATH = Path("/") / CONFIG_DIR / CONFIG_NAME
SERVICE_MODELS = Path("var/lib/edgekit/models")  # StateDirectory=edgekit's models/
# udevd's control socket: without it (a container, a minimal image) `udevadm control` fails, which
# only delays the Coral rules; the service itself does not need them.
UDEV_CONTROL = Path("/run/udev/control")



class ServiceInstallError(EdgekitError):
    """The service files cannot be found or installed."""


@dataclass
class FileAction:
    kind: str  # "unit", "udev rules", "config"
    source: Path | None
    dest: Path  # under the prefix
    action: str  # "create", "replace", "unchanged", "keep", "missing"
    note: str = ""
    content: bytes | None = None  # what gets written (None: nothing)


@dataclass
class InstallPlan:
    prefix: Path
    exec_start: str
    files: list[FileAction] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # any of these: refuse, write nothing

    @property
    def live(self) -> bool:
        return self.prefix == Path("/")


# -- finding the files -------------------------------------------------------------------------------
def candidate_dirs() -> list[Path]:
    dirs = []
    env = os.environ.get("EDGEKIT_SYSTEMD_DIR")
    if env:
        dirs.append(Path(env))
    # Package data: the same files in a checkout (systemd/ links to them), an editable install
    # and a wheel, read with importlib.resources.
    from importlib.resources import files

    dirs.append(Path(str(files("edgekit.daemon") / "systemd")))
    return dirs


def find_source_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The folder holding edgekit.service (and 60-edgetpu.rules, edgekit.toml)."""
    if explicit is not None:
        d = Path(explicit)
        if not (d / UNIT_NAME).is_file():
            raise ConfigError(f"--source {d}: has no {UNIT_NAME}")
        return d
    searched = candidate_dirs()
    for d in searched:
        if (d / UNIT_NAME).is_file():
            return d
    raise ServiceInstallError(
        f"cannot find {UNIT_NAME}; looked in: {', '.join(map(str, searched))}. "
        "Reinstall edgekit, or pass --source DIR (a folder with the unit, rules and example config)"
    )


# -- the executable ----------------------------------------------------------------------------------
def _is_edgekit_script(p: Path) -> bool:
    return p.name == "edgekit" and p.is_file() and os.access(p, os.X_OK)


def find_exec_command(explicit: str | None = None) -> list[str]:
    """The command that starts edgekit, as argv: this edgekit's script where there is one."""
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_absolute():
            raise ConfigError(f"--exec {explicit}: give an absolute path (systemd needs one)")
        return [str(p)]
    candidates = []
    if sys.argv and sys.argv[0]:
        candidates.append(Path(os.path.abspath(sys.argv[0])))  # the script that is running now
    candidates.append(Path(sys.executable).parent / "edgekit")  # the venv's bin/ beside its python
    found = shutil.which("edgekit")
    if found:
        candidates.append(Path(os.path.abspath(found)))
    for c in candidates:
        if _is_edgekit_script(c):
            return [str(c)]
    # Run as `python -m edgekit` with no script anywhere: use this interpreter.
    return [sys.executable, "-m", "edgekit"]


# -- the unit text -----------------------------------------------------------------------------------
def systemd_quote(word: str) -> str:
    """One ExecStart= word: %, $ and whitespace/quotes escaped the way systemd reads them."""
    word = word.replace("%", "%%").replace("$", "$$")
    if word and not re.search(r"[\s\"'\\;]", word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rewrite_exec_start(unit_text: str, argv: list[str]) -> str:
    """Replace the program of the (first, uncommented) ExecStart= line; keep its arguments."""
    out, done = [], False
    for line in unit_text.splitlines(keepends=True):
        m = re.match(r"^(ExecStart=[-@:+!]*)(\S+)(.*?)(\r?\n)?$", line)
        if m and not done:
            end = m.group(4) or ""
            line = m.group(1) + " ".join(systemd_quote(w) for w in argv) + m.group(3) + end
            done = True
        out.append(line)
    if not done:
        raise ServiceInstallError(f"{UNIT_NAME} has no ExecStart= line")
    return "".join(out)


def exec_start_line(unit_text: str) -> str:
    for line in unit_text.splitlines():
        if line.startswith("ExecStart="):
            return line[len("ExecStart="):]
    return ""


def supplementary_groups(unit_text: str) -> list[str]:
    groups: list[str] = []
    for line in unit_text.splitlines():
        if line.startswith("SupplementaryGroups="):
            value = line.split("=", 1)[1].split()
            groups = [] if not value else groups + [g for g in value if g not in groups]
    return groups


# -- planning and doing ------------------------------------------------------------------------------
def _under(prefix: Path, rel: Path) -> Path:
    return prefix / rel


def _file_action(kind: str, source: Path | None, dest: Path, content: bytes | None) -> FileAction:
    if content is None:
        return FileAction(kind, source, dest, "missing", f"no {source.name if source else kind} to install")
    if dest.exists():
        try:
            same = dest.read_bytes() == content
        except OSError:
            same = False
        if same:
            return FileAction(kind, source, dest, "unchanged", content=content)
        return FileAction(kind, source, dest, "replace",
                          f"the old one is kept as {dest.name}.bak", content=content)
    return FileAction(kind, source, dest, "create", content=content)


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def plan_install(prefix: str | os.PathLike = "/", exec_path: str | None = None,
                 source: str | os.PathLike | None = None) -> InstallPlan:
    prefix = Path(os.path.abspath(prefix))
    src = find_source_dir(source)
    argv = find_exec_command(exec_path)
    unit_text = rewrite_exec_start((src / UNIT_NAME).read_text(), argv)
    plan = InstallPlan(prefix=prefix, exec_start=exec_start_line(unit_text))

    # Run as this edgekit: its code is on the line too (an editable install under /home fails at import).
    extra = () if exec_path else (Path(__file__).resolve().parents[1],)
    plan.problems += exec_problems(argv, unit_text, plan.live, extra)
    if exec_path and not Path(exec_path).exists() and not (prefix / Path(exec_path).relative_to("/")).exists():
        plan.warnings.append(f"{exec_path} does not exist (yet); the service will not start without it")

    plan.files.append(_file_action("unit", src / UNIT_NAME, _under(prefix, UNIT_DIR / UNIT_NAME),
                                   unit_text.encode()))
    web = src / WEB_UNIT_NAME
    if web.is_file():
        plan.files.append(_file_action("web unit", web, _under(prefix, UNIT_DIR / WEB_UNIT_NAME),
                                       rewrite_exec_start(web.read_text(), argv).encode()))
    rules = src / RULES_NAME
    plan.files.append(_file_action("udev rules", rules, _under(prefix, RULES_DIR / RULES_NAME),
                                   rules.read_bytes() if rules.is_file() else None))

    config_dest = _under(prefix, CONFIG_DIR / CONFIG_NAME)
    example = src / CONFIG_NAME
    if config_dest.exists():
        plan.files.append(FileAction("config", example, config_dest, "keep",
                                     "it exists; a config is never overwritten"))
        secret = config_secret_warning(config_dest, target=CONFIG_PATH)
        if secret:
            plan.warnings.append(secret)
    elif example.is_file():
        plan.files.append(FileAction("config", example, config_dest, "create",
                                     "the example: edit it before starting the service",
                                     content=example.read_bytes()))
        secret = config_secret_warning(config_dest, plan.files[-1].content, CONFIG_PATH)
        if secret:
            plan.warnings.append(secret)
    else:
        plan.files.append(FileAction("config", None, config_dest, "missing",
                                     f"no example {CONFIG_NAME} was found in {src}: write one yourself"))

    # Every SupplementaryGroups= group must exist or the unit fails (216/GROUP), and udev ignores a
    # GROUP= it cannot resolve: create them first, before udev reloads its rules.
    groups = supplementary_groups(unit_text)
    missing = [g for g in groups if not plan.live or not _group_exists(g)]
    plan.commands += [["groupadd", "--system", "--force", g] for g in missing]
    plan.commands += [
        ["udevadm", "control", "--reload-rules"],
        ["udevadm", "trigger", "--subsystem-match=usb", "--subsystem-match=apex"],
        ["systemctl", "daemon-reload"],
    ]

    config_new = plan.files[-1].action in ("create", "missing")
    if config_new:
        plan.next_steps.append(f"edit {CONFIG_PATH} (check it: edgekit config check {CONFIG_PATH})")
    model_step = _model_step(plan, argv)
    if model_step:
        plan.next_steps.append(model_step)
    plan.next_steps += [
        "systemctl enable --now edgekit   (already running: systemctl restart edgekit)",
        "systemctl enable --now edgekit-web   (the status page on http://127.0.0.1:8470/)",
        "journalctl -u edgekit -f",
    ]
    return plan


def config_model(plan: InstallPlan) -> str | None:
    """The [model] model of the config the service will read (the kept one, or the example)."""
    import tomllib

    f = next(f for f in plan.files if f.kind == "config")
    try:
        text = f.content if f.action == "create" else f.dest.read_bytes()
        model = tomllib.loads(text.decode("utf-8")).get("model", {}).get("model")
    except (OSError, AttributeError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    return model if isinstance(model, str) and model else None


def _model_step(plan: InstallPlan, argv: list[str]) -> str | None:
    """The step that puts the config's own model where the service finds it (nothing when it is
    there already)."""
    model = config_model(plan)
    if model is None:
        return None
    if "/" in model or model.endswith(".tflite"):  # a path, relative to the config's folder
        path = (Path("/") / CONFIG_DIR / model) if not Path(model).is_absolute() else Path(model)
        return None if (plan.prefix / path.relative_to("/")).exists() else f"put the config's model at {path}"
    if (plan.prefix / SERVICE_MODELS / f"{model}.tflite").exists():
        return None
    return f"env EDGEKIT_MODEL_DIR=/{SERVICE_MODELS} {shlex.join(argv)} models pull {model}"


def booted_with_systemd() -> bool:
    return Path("/run/systemd/system").is_dir()  # sd_booted(3)


def write_files(plan: InstallPlan) -> None:
    for f in plan.files:
        if f.content is None or f.action in ("unchanged", "keep", "missing"):
            continue
        missing = [d for d in (f.dest.parent, *f.dest.parent.parents) if not d.exists()]
        f.dest.parent.mkdir(parents=True, exist_ok=True)
        for d in missing:  # 755 whatever sudo's umask: the service's dynamic user must reach /etc/edgekit
            os.chmod(d, 0o755)
        if f.action == "replace":
            shutil.copy2(f.dest, f.dest.with_name(f.dest.name + ".bak"))
        tmp = f.dest.with_name(f".{f.dest.name}.tmp")
        tmp.write_bytes(f.content)
        # World-readable: the service's dynamic user must read the config, udev and systemd the rest.
        os.chmod(tmp, 0o644)
        os.replace(tmp, f.dest)


def run_commands(plan: InstallPlan, out=print) -> int:
    """Run the plan's commands; returns how many failed. udevadm's are only warned about: the
    Coral rules are loaded at the next boot anyway, and the service runs without them."""
    failed = 0
    for cmd in plan.commands:
        if shutil.which(cmd[0]) is None:
            out(f"  skipped (no {cmd[0]} here): {shlex.join(cmd)}")
            continue
        udev = cmd[0] == "udevadm"
        if udev and not UDEV_CONTROL.exists():
            out(f"  warning: skipped (udevd is not running here, e.g. a container): {shlex.join(cmd)}; "
                "the Coral rules take effect once udev runs")
            continue
        out(f"  $ {shlex.join(cmd)}")
        r = subprocess.run(cmd, check=False)
        if r.returncode != 0 and udev:
            out(f"    warning: exit status {r.returncode}; the Coral rules take effect at the next boot")
        elif r.returncode != 0:
            out(f"    failed with exit status {r.returncode}")
            failed += 1
    return failed


def can_run_commands(plan: InstallPlan) -> bool:
    return plan.live and os.geteuid() == 0 and booted_with_systemd()


def install(prefix: str | os.PathLike = "/", exec_path: str | None = None, dry_run: bool = False,
            source: str | os.PathLike | None = None, out=print, err=None) -> int:
    """Say first whether anything is installed, then the problems (each once, the fix once), then
    the plan; write and run it unless it is a dry run or there were problems. Returns 1 when there
    were problems or a command failed."""
    err = err or (lambda line: print(line, file=sys.stderr))
    plan = plan_install(prefix, exec_path, source)
    refused = bool(plan.problems)
    acting = not dry_run and not refused
    if refused:
        n = len(plan.problems)
        err(f"edgekit: error: nothing {'would be' if dry_run else 'was'} installed: {n} problem{'s' if n > 1 else ''} "
            f"with ExecStart={plan.exec_start.split()[0]}:")
        for p in plan.problems:
            err(f"  - {p}")
        err(f"  fix: {SAFE_PLACE}")
    mode = "" if acting else (" (dry run: nothing is written)" if dry_run else " (refused: nothing was written)")
    out(f"edgekit service install{mode}")
    out(f"  ExecStart={plan.exec_start}")
    for f in plan.files:
        verb = {"create": "wrote" if acting else "would write",
                "replace": "replaced" if acting else "would replace",
                "unchanged": "unchanged", "keep": "kept", "missing": "skipped"}[f.action]
        out(f"  {f.kind:<10} {verb:<13} {f.dest}" + (f"  ({f.note})" if f.note else ""))
    for w in plan.warnings:
        out(f"  warning: {w}")
    if acting:
        write_files(plan)

    failed = 0
    if acting and can_run_commands(plan):
        out("running:")
        failed = run_commands(plan, out)
    else:
        why = ("dry run" if dry_run else "refused" if refused else
               f"installed under {plan.prefix}, not /" if not plan.live else
               "not root" if os.geteuid() != 0 else "systemd is not running (not PID 1)")
        out(f"then, as root ({why}, so they were not run):")
        for cmd in plan.commands:
            out(f"  {shlex.join(cmd)}")
    out("next:")
    for step in plan.next_steps:
        out(f"  {step}")
    return 1 if refused or failed else 0
