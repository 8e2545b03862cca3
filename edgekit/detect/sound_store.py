"""Where custom sounds live.

Looked up in order: ``$EDGEKIT_SOUNDS_DIR`` (a path list, when set), the service's state
directory (``$STATE_DIRECTORY/sounds`` under systemd), the user's data directory, and
``/var/lib/edgekit/sounds``. ``learn`` writes into the first of them: the environment variable's
first entry, the service's directory under systemd, else the user's data directory.

``edgekit sounds … --service`` works on the service's directory alone (:data:`SERVICE_SOUNDS_DIR`,
the unit's ``StateDirectory=edgekit``; with ``DynamicUser=yes`` systemd keeps it in
/var/lib/private/edgekit behind a 0700 directory and links /var/lib/edgekit to it). Sounds are
written there by root, mode 0644 in a 0755 folder: the daemon can read them and cannot change them.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from ..errors import SoundError, SoundNotFoundError
from .heads import SUFFIX, Sound, check_name
from .sound_file import load_sound_file

SERVICE_SOUNDS_DIR = Path("/var/lib/edgekit/sounds")  # $STATE_DIRECTORY/sounds of edgekit.service


def sound_dirs() -> list[Path]:
    dirs: list[Path] = []
    env = os.environ.get("EDGEKIT_SOUNDS_DIR")
    if env:
        dirs.extend(Path(p).expanduser() for p in env.split(os.pathsep) if p)
    if os.environ.get("STATE_DIRECTORY"):
        dirs.append(Path(os.environ["STATE_DIRECTORY"].split(":")[0]) / "sounds")
    dirs.append(Path(platformdirs.user_data_dir("edgekit")) / "sounds")
    if SERVICE_SOUNDS_DIR not in dirs:
        dirs.append(SERVICE_SOUNDS_DIR)
    return dirs


def write_dir() -> Path:
    return sound_dirs()[0]


def sound_path(name: str, directory: Path | None = None) -> Path:
    return (directory or write_dir()) / f"{check_name(name)}{SUFFIX}"


def find_sound(name: str, dirs: list[Path] | None = None) -> Path:
    """The first file for ``name`` along ``dirs`` (:func:`sound_dirs`), or a SoundNotFoundError naming them."""
    check_name(name)
    searched = sound_dirs() if dirs is None else dirs
    for d in searched:
        p = d / f"{name}{SUFFIX}"
        if p.is_file():
            return p
    raise SoundNotFoundError(
        f"no custom sound {name!r}; looked in: " + ", ".join(map(str, searched))
        + f". Teach it with `edgekit sounds learn {name} --examples CLIPS`, or set EDGEKIT_SOUNDS_DIR"
    )


def load_sound(name_or_path: str | os.PathLike, dirs: list[Path] | None = None) -> Sound:
    """A sound by name (searched along ``dirs``, :func:`sound_dirs`) or by the path of its file."""
    text = os.fspath(name_or_path)
    if text.endswith(SUFFIX) or os.sep in text:
        return load_sound_file(Path(text))
    return load_sound_file(find_sound(text, dirs))


def load_sounds(names, model) -> tuple[Sound, ...]:
    """The named sounds, each read and checked completely and then against ``model`` (its hash,
    embedding size and classes): the one loader behind ``config check``, ``run``, a reload,
    ``evaluate`` and ``classify``, so what one accepts the others accept, and nothing accepted
    can fail at the first window. A SoundError names the sound."""
    out = []
    for name in names:
        try:
            snd = load_sound(name)
            snd.check_model(model)
        except SoundError as exc:
            raise type(exc)(f"custom sound {name!r}: {exc}") from None
        out.append(snd)
    return tuple(out)


def list_sounds(dirs: list[Path] | None = None) -> list[tuple[str, Path]]:
    """(name, path) of every sound, the first directory's copy winning, sorted by name."""
    found: dict[str, Path] = {}
    for d in sound_dirs() if dirs is None else dirs:
        try:
            files = sorted(d.glob(f"*{SUFFIX}"))
        except OSError:
            continue
        for p in files:
            found.setdefault(p.name[: -len(SUFFIX)], p)
    return sorted(found.items())


def remove_sound(name: str, dirs: list[Path] | None = None) -> Path:
    path = find_sound(name, dirs)
    try:
        path.unlink()
    except OSError as exc:
        raise SoundError(f"{path}: cannot remove it ({exc.strerror or exc})") from None
    return path


def prepare_service_dir() -> Path:
    """The service's sounds folder, made (0755) if need be; a SoundError with the fix if this user may not write it."""
    d = SERVICE_SOUNDS_DIR
    try:
        d.mkdir(parents=True, exist_ok=True)
        if d.stat().st_uid == os.geteuid():
            d.chmod(0o755)  # the daemon's user (DynamicUser) must read it
    except PermissionError:
        pass
    except OSError as exc:
        raise SoundError(f"{d}: cannot create the service's sounds folder ({exc.strerror or exc})") from None
    if not os.access(d, os.W_OK):
        raise SoundError(f"{d} is the service's and this user may not write there; run the command with sudo")
    return d
