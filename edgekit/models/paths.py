"""Where models live: ``$EDGEKIT_MODEL_DIR``, then the user's cache directory."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from edgekit.errors import ModelNotFoundError

SERVICE_MODEL_DIR = Path("/var/lib/edgekit/models")


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
    return dirs


def resolve_model(spec: str | os.PathLike) -> Path:
    """A path as given, or a bare name (``yamnet``) looked up in the model directories."""
    text = os.fspath(spec)
    p = Path(text).expanduser()
    looks_like_path = os.sep in text or text.endswith(".tflite") or text.startswith(".")
    if p.is_file() or (looks_like_path and p.exists()):
        return p
    if looks_like_path:
        raise ModelNotFoundError(f"{text}: no such model file")
    searched = model_dirs()
    for d in searched:
        for candidate in (d / f"{text}.tflite", d / text):
            if candidate.is_file():
                return candidate
    raise ModelNotFoundError(
        f"model {text!r} not found; looked in: "
        + ", ".join(str(d) for d in searched)
        + f". Get it with `edgekit models pull {text}`, or pass a .tflite path"
    )
