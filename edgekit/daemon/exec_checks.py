"""Can the service run this ExecStart= safely? What the unit's sandbox hides, who could change the
program, and a secret in a world-readable config. Used by ``edgekit service install``."""

from __future__ import annotations

import grp
import os
import pwd
import re
import shutil
import stat
from pathlib import Path

# What the unit's sandbox hides from the service: an executable (or its interpreter, or its code)
# there fails at start with status 203/EXEC, or at import. PrivateTmp= gives the service its own
# empty /tmp and /var/tmp; ProtectHome=yes (or tmpfs) makes the home directories inaccessible.
HIDDEN_BY_PRIVATE_TMP = (Path("/tmp"), Path("/var/tmp"))
HIDDEN_BY_PROTECT_HOME = (Path("/home"), Path("/root"), Path("/run/user"))
# The remedy, said once however many problems there are: from a checkout, scripts/install makes
# exactly such a venv (/opt/edgekit, root's, not editable) and installs the service from it.
SAFE_PLACE = ("install edgekit where only root can write and the service can see it: from the checkout, "
              "`sudo scripts/install` (a root-owned venv in /opt/edgekit, then the service); by hand, "
              "`sudo python3 -m venv /opt/edgekit && sudo /opt/edgekit/bin/pip install /path/to/checkout` "
              "(not -e), then `sudo /opt/edgekit/bin/edgekit service install`")


def _interpreter(path: Path) -> Path | None:
    """The #! interpreter of a script, or None."""
    try:
        with open(path, "rb") as f:
            first = f.readline(512)
    except OSError:
        return None
    if not first.startswith(b"#!"):
        return None
    words = first[2:].decode(errors="replace").split()
    if not words:
        return None
    if Path(words[0]).name == "env" and len(words) > 1:  # #!/usr/bin/env python3
        found = shutil.which(words[1])
        return Path(found) if found else None
    return Path(words[0])


def exec_chain(argv0: str, extra: tuple[Path, ...] = ()) -> list[Path]:
    """What ExecStart= runs: the program, its #! interpreter, each also with symlinks resolved."""
    p = Path(argv0)
    chain = [p, Path(os.path.realpath(p))]
    interp = _interpreter(p)
    if interp is not None:
        chain += [interp, Path(os.path.realpath(interp))]
    for e in (*extra, *venv_code(p, interp)):
        chain += [e, Path(os.path.realpath(e))]
    return list(dict.fromkeys(chain))


def venv_code(program: Path, interp: Path | None) -> list[Path]:
    """The site-packages of the virtual environment ``program`` runs in: the service imports its
    code from there, so whoever can write it (a .pth file, a package) runs code as the service."""
    out = []
    for exe in (program, interp):
        if exe is None:
            continue
        venv = exe.parent.parent  # VENV/bin/edgekit, VENV/bin/python
        if (venv / "pyvenv.cfg").is_file():
            out += sorted(venv.glob("lib/python3*/site-packages"))
    return list(dict.fromkeys(out))


def _unit_value(unit_text: str, key: str) -> str | None:
    value = None
    for line in unit_text.splitlines():
        if line.startswith(f"{key}="):
            value = line.split("=", 1)[1].strip().lower()
    return value


def hidden_roots(unit_text: str | None = None) -> dict[Path, str]:
    """{folder: the setting that hides it from the service}, read from the unit (default: both)."""
    if unit_text is None:
        private_tmp, protect_home = True, True
    else:
        yes = ("yes", "true", "on", "1")
        # DynamicUser=yes implies PrivateTmp=yes (and only ProtectHome=read-only, which hides nothing).
        private_tmp = _unit_value(unit_text, "PrivateTmp") in yes or (
            _unit_value(unit_text, "PrivateTmp") is None and _unit_value(unit_text, "DynamicUser") in yes)
        protect_home = _unit_value(unit_text, "ProtectHome") in (*yes, "tmpfs")
    roots = {}
    if private_tmp:
        roots.update({r: "PrivateTmp=yes" for r in HIDDEN_BY_PRIVATE_TMP})
    if protect_home:
        roots.update({r: "ProtectHome=yes" for r in HIDDEN_BY_PROTECT_HOME})
    return roots


def hidden_paths(argv0: str, unit_text: str | None = None, extra: tuple[Path, ...] = ()) -> list[Path]:
    """Paths ExecStart= depends on that the unit's sandbox hides from the service."""
    roots = hidden_roots(unit_text)
    return [q for q in exec_chain(argv0, extra) if any(q == h or h in q.parents for h in roots)]


def unsafe_writers(path: Path) -> list[str]:
    """Why someone other than root could change what ``path`` runs: it, or a folder above it, is
    owned by another user or writable by a group or everyone (a sticky folder such as /tmp only
    lets each user replace their own entries)."""
    why = []
    parts = [path, *path.parents]
    for i, q in enumerate(parts):
        try:
            st = os.lstat(q)
        except OSError:
            continue  # not there (yet): reported elsewhere
        if stat.S_ISLNK(st.st_mode):
            continue  # a link cannot be changed in place; its folder and its target are checked
        child_is_root_owned = i == 0 or _owner(parts[i - 1]) == 0
        sticky = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX and child_is_root_owned
        if st.st_uid != 0:
            try:
                user = pwd.getpwuid(st.st_uid).pw_name
            except KeyError:
                user = f"uid {st.st_uid}"
            why.append(f"{q} is owned by {user}")
        elif st.st_mode & stat.S_IWOTH and not sticky:
            why.append(f"{q} is writable by everyone")
        elif st.st_mode & stat.S_IWGRP and st.st_gid != 0 and not sticky:
            try:
                group = grp.getgrgid(st.st_gid).gr_name
            except KeyError:
                group = f"gid {st.st_gid}"
            why.append(f"{q} is writable by group {group}")
    return why


def _owner(p: Path) -> int | None:
    try:
        return os.lstat(p).st_uid
    except OSError:
        return None


def exec_problems(argv: list[str], unit_text: str | None, live: bool, extra: tuple[Path, ...] = ()) -> list[str]:
    """Why the service could not run ``argv`` safely; [] when it can. The fix for all of them is
    ``SAFE_PLACE``."""
    problems = []
    roots = hidden_roots(unit_text)
    for q in hidden_paths(argv[0], unit_text, extra):
        root = next(h for h in roots if q == h or h in q.parents)
        problems.append(f"the service cannot see {q}: {roots[root]} in the unit hides {root} from it")
    if live:  # under a --prefix the files belong to another system: their owners here mean nothing
        writers = [w for q in exec_chain(argv[0], extra) for w in unsafe_writers(q)]
        for w in dict.fromkeys(writers):
            problems.append(f"{w}: whoever can change it runs code as the service, with its devices and groups")
    return problems


def config_secret_warning(dest: Path, content: bytes | None = None,
                          target: Path = Path("/etc/edgekit/edgekit.toml")) -> str | None:
    """A warning when the config holds an MQTT password and every local user can read it."""
    import tomllib

    try:
        mode = 0o644 if content is not None else stat.S_IMODE(dest.stat().st_mode)  # written 644
        data = tomllib.loads((content if content is not None else dest.read_bytes()).decode("utf-8"))
    except (OSError, UnicodeDecodeError):
        return None
    except tomllib.TOMLDecodeError:  # broken, yet the password in it is just as readable
        raw = content if content is not None else _read(dest)
        data = {"mqtt": {"password": True}} if raw and re.search(rb"(?m)^\s*password\s*=\s*\S", raw) else {}
    mqtt = data.get("mqtt")
    if not (isinstance(mqtt, dict) and mqtt.get("password")) or not mode & stat.S_IROTH:
        return None
    return (f"{dest} holds an MQTT password and every local user can read it (mode {mode:o}); give it to a "
            f"group only the service has: groupadd --system edgekit-conf; chgrp edgekit-conf {target}; "
            f"chmod 640 {target}; `systemctl edit edgekit` with [Service] SupplementaryGroups=edgekit-conf "
            "(systemd/README.md, \"A broker password\")")


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None
