"""Where models live, and the one resolver that turns a model name or path into a file.

Every command that takes a model (classify, run, bench, macs, models inspect/compile, config
check) goes through :func:`resolve_model`, so a name means the same thing everywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from edgekit.errors import ModelNotFoundError

SERVICE_MODEL_DIR = Path("/var/lib/edgekit/models")
SUFFIX = ".tflite"


def model_dirs() -> list[Path]:
    dirs = []
    env = os.environ.get("EDGEKIT_MODEL_DIR")
    if env:
        dirs.extend(Path(p) for p in env.split(os.pathsep) if p)
    # Under systemd (StateDirectory= sets $STATE_DIRECTORY) the service's own directory comes
    # first, so a stale copy in the dynamic user's cache cannot shadow what `pull` put there.
    if os.environ.get("STATE_DIRECTORY"):
        dirs.append(Path(os.environ["STATE_DIRECTORY"].split(":")[0]) / "models")
    dirs.append(Path(platformdirs.user_cache_dir("edgekit")) / "models")
    if SERVICE_MODEL_DIR not in dirs:
        dirs.append(SERVICE_MODEL_DIR)
    return list(dict.fromkeys(dirs))


def _has_folder(text: str) -> bool:
    # A folder part makes it a path and nothing else: "./m.tflite" must not pick up a cached m.
    return os.sep in text or bool(os.altsep and os.altsep in text) or text.startswith("~")


def _pull_hint(name: str) -> str:
    from edgekit.errors import EdgekitError
    from edgekit.models import zoo  # zoo builds on this module: imported only when needed

    try:
        zoo.get(name)
    except EdgekitError:
        return "it is not a zoo model either (`edgekit models list`); pass the path of a .tflite file"
    return f"get it with `edgekit models pull {name}`, or pass the path of a .tflite file"


def resolve_model(spec: str | os.PathLike) -> Path:
    """A file as given, else a name looked up in :func:`model_dirs`.

    ``yamnet`` and ``yamnet.tflite`` are the same name: a bare file name that is not in the
    current directory is searched for in the model directories too. Anything with a folder part
    is a path only. The error says every place that was looked at.
    """
    text = os.fspath(spec)
    if not text.strip():
        raise ModelNotFoundError("no model given: pass a zoo name such as yamnet, or a .tflite path")
    p = Path(text).expanduser()
    if p.exists():  # a folder or a device: the reader says what is wrong with it
        return p
    if _has_folder(text):
        raise ModelNotFoundError(f"{text}: no such model file (looked for {p.absolute()})")
    name = text.removesuffix(SUFFIX)
    files = list(dict.fromkeys([name + SUFFIX, text]))
    searched = model_dirs()
    unreadable = []
    for d in searched:
        for f in files:
            try:
                if (d / f).is_file():
                    return d / f
            except PermissionError:  # is_file() answers False only for a missing file
                unreadable.append(d)
    places = ([f"the current folder ({Path.cwd()})"] if text.endswith(SUFFIX) else []) + [str(d) for d in searched]
    if unreadable:
        # /var/lib/edgekit is private (0700) to the service once systemd has started it.
        raise ModelNotFoundError(f"model {text!r}: {unreadable[0]} cannot be read by this user (the service's "
                                 "state directory is private once the service has run); run this with sudo")
    raise ModelNotFoundError(f"model {text!r} not found; looked in {', '.join(places)}; {_pull_hint(name)}")
