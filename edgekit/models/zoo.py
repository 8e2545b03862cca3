"""The model zoo: ``edgekit/models/manifest.toml`` plus pulling, importing and verifying cached copies.

A file is trusted for its SHA-256, never for where it came from: every download and every
``--from`` import lands in a temporary file beside its destination, is hashed, and only a match
is moved into place with ``os.replace`` (atomic on one filesystem), so a half-written or wrong
file never sits under a name that ``--model NAME`` would pick up.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


from edgekit.errors import ChecksumError, ConfigError, DownloadError, ModelNotFoundError
from edgekit.models.download import fetch_all
from edgekit.models.paths import model_dirs

KINDS = ("waveform", "log-mel", "image", "labels")


@dataclass(frozen=True)
class Entry:
    name: str
    description: str
    file: str
    urls: tuple[str, ...]
    sha256: str | None
    size: int | None
    kind: str
    input_shape: tuple[int, ...] | None = None
    input_dtype: str | None = None
    labels: str | None = None
    license: str = ""
    edgetpu: str | None = None
    compiled_from: str | None = None
    verified: bool = True
    pages: tuple[str, ...] = ()

    @property
    def is_model(self) -> bool:
        return self.kind != "labels"


# --- the manifest ----------------------------------------------------------------------------


def manifest_path() -> Path:
    env = os.environ.get("EDGEKIT_MANIFEST")
    if env:
        return Path(env)
    # Package data: the same file in a checkout, an editable install and a wheel.
    from importlib.resources import files

    p = Path(str(files("edgekit.models") / "manifest.toml"))
    if p.is_file():
        return p
    raise ConfigError("the model zoo manifest (edgekit/models/manifest.toml) is missing from this "
                      "installation; set EDGEKIT_MANIFEST to its path")


@lru_cache(maxsize=4)
def _load(path: Path, stamp: tuple[int, int]) -> dict[str, Entry]:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the model zoo manifest ({exc})") from None
    entries = {}
    for name, raw in (doc.get("models") or {}).items():
        entries[name] = _entry(path, name, raw)
    for e in entries.values():
        for ref in (e.edgetpu, e.compiled_from, None if e.labels == "embedded" else e.labels):
            if ref and ref not in entries:
                raise ConfigError(f"{path}: [{e.name}] refers to {ref!r}, which has no entry")
    return entries


def _entry(path: Path, name: str, raw: dict) -> Entry:
    def bad(why: str) -> ConfigError:
        return ConfigError(f"{path}: [models.{name!r}] {why}")

    verified = bool(raw.get("verified", True))
    sha = raw.get("sha256")
    if sha is not None and not re.fullmatch(r"[0-9a-f]{64}", str(sha)):
        raise bad(f"sha256 {sha!r} is not 64 lowercase hex digits")
    if verified and (sha is None or raw.get("size") is None):
        raise bad("needs sha256 and size (or verified = false)")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise bad(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    urls = raw.get("urls") or []
    if not urls or not raw.get("file"):
        raise bad("needs file and at least one url")
    inp = raw.get("input") or {}
    return Entry(
        name=name, description=raw.get("description", ""), file=raw["file"], urls=tuple(urls),
        sha256=sha, size=raw.get("size"), kind=kind,
        input_shape=tuple(inp["shape"]) if "shape" in inp else None,
        input_dtype=inp.get("dtype"), labels=raw.get("labels"), license=raw.get("license", ""),
        edgetpu=raw.get("edgetpu"), compiled_from=raw.get("compiled_from"), verified=verified,
        pages=tuple(raw.get("pages") or ()),
    )


def manifest() -> dict[str, Entry]:
    p = manifest_path()
    try:
        st = p.stat()
        stamp = (st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = (0, 0)
    return _load(p, stamp)


def get(name: str) -> Entry:
    entries = manifest()
    key = name.removesuffix(".tflite")
    if key in entries:
        return entries[key]
    close = difflib.get_close_matches(key, entries, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else "; `edgekit models list` shows them"
    raise ModelNotFoundError(f"no model {name!r} in the zoo{hint}")


# --- where cached models live ----------------------------------------------------------------


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Where ``pull`` writes: --dir, else the first of the directories ``--model NAME`` searches
    ($EDGEKIT_MODEL_DIR, the service's state dir, the user cache), so what was pulled is found."""
    return Path(override).expanduser() if override else model_dirs()[0]


def search_dirs(override: str | os.PathLike | None = None) -> list[Path]:
    return [Path(override).expanduser()] if override else model_dirs()


def cached_path(entry: Entry, dirs: list[Path] | None = None) -> Path | None:
    for d in dirs if dirs is not None else search_dirs():
        if (d / entry.file).is_file():
            return d / entry.file
    return None


def part_path(final: Path) -> Path:
    return final.with_name(final.name + ".part")


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --- pull ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pulled:
    entry: Entry
    path: Path
    action: str  # "cached" | "downloaded" | "imported"
    sha256: str


def pull(name: str, source: str | os.PathLike | None = None, dest: str | os.PathLike | None = None,
         *, progress: bool = True, force: bool = False) -> Pulled:
    """Fetch ``name`` (from its manifest URLs, a URL, or a local file) into the cache."""
    entry = get(name)
    d = cache_dir(dest)
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the model directory {d} ({exc.strerror or exc}); "
                            "pass --dir DIR or set EDGEKIT_MODEL_DIR to a writable place") from None
    final = d / entry.file
    if final.is_file() and not force:
        digest = sha256_file(final)
        if entry.sha256 is None or digest == entry.sha256:
            return Pulled(entry, final, "cached", digest)

    src = os.fspath(source) if source is not None else None
    if src is not None and "://" not in src:
        return Pulled(entry, final, "imported", _import(entry, Path(src).expanduser(), final))

    urls = [src] if src else list(entry.urls)
    errors: list[str] = []
    for url in urls:
        try:
            digest = _download(entry, url, final, progress)
        except (DownloadError, ChecksumError) as exc:  # a mirror may be down, or serve other bytes
            if len(urls) == 1:
                raise
            errors.append(str(exc))
            continue
        return Pulled(entry, final, "downloaded", digest)
    raise DownloadError(f"{entry.name}: every upstream URL failed: " + " | ".join(errors))


def _check(entry: Entry, tmp: Path, origin: str) -> str:
    """Hash ``tmp``; on a mismatch delete it and raise, so nothing wrong is left to resume."""
    digest = sha256_file(tmp)
    if entry.sha256 is None or digest == entry.sha256:
        return digest
    size = tmp.stat().st_size
    with open(tmp, "rb") as f:
        head = f.read(256).lstrip().lower()
    tmp.unlink(missing_ok=True)
    what = ""
    if head.startswith((b"<!doctype html", b"<html")):
        what = " (it is an HTML page, probably an error or login page)"
    elif entry.size and size != entry.size:
        what = f" ({size} bytes instead of {entry.size})"
    raise ChecksumError(
        f"{entry.name}: checksum mismatch for {origin}{what}: expected sha256 {entry.sha256}, "
        f"got {digest}; nothing was installed"
    )


def _install(tmp: Path, final: Path) -> None:
    # fsync before the rename: on a Pi's SD card a power cut could otherwise leave the new name
    # pointing at blocks that were never written.
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, final)
    try:
        fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def _import(entry: Entry, src: Path, final: Path) -> str:
    if not src.is_file():
        raise ModelNotFoundError(f"{src}: no such file to import for {entry.name}")
    tmp = final.with_name(final.name + ".import")
    try:
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            for block in iter(lambda: fin.read(1 << 20), b""):
                fout.write(block)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"cannot copy {src} to {final.parent} ({exc.strerror or exc})") from None
    digest = _check(entry, tmp, str(src))
    _install(tmp, final)
    return digest


def _download(entry: Entry, url: str, final: Path, progress: bool) -> str:
    part = part_path(final)
    have = part.stat().st_size if part.is_file() else 0
    if entry.size is not None and have > entry.size:
        have = 0  # longer than the real file: not a prefix of it
    if entry.size is not None and have == entry.size and entry.sha256:
        # A complete .part from an earlier run: check it before touching the network.
        if sha256_file(part) == entry.sha256:
            _install(part, final)
            return entry.sha256
        have = 0
    fetch_all(entry, url, part, have, progress)
    try:
        digest = _check(entry, part, url)
    except ChecksumError:
        if not have:
            raise
        # The old .part was not a prefix of this file (another version, or corrupt): the check
        # removed it; fetch the whole file once more before giving up.
        fetch_all(entry, url, part, 0, progress)
        digest = _check(entry, part, url)
    _install(part, final)
    return digest


# --- verify ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    name: str
    status: str  # ok | mismatch | missing | unpinned
    path: Path | None
    expected: str | None
    actual: str | None
    partial_bytes: int = 0  # a .part waiting to be resumed


def verify(dirs: list[Path] | None = None, names: list[str] | None = None) -> list[Check]:
    """Re-hash every cached copy of every zoo entry (every copy: a stale one may shadow a good one)."""
    dirs = dirs if dirs is not None else search_dirs()
    entries = [get(n) for n in names] if names else list(manifest().values())
    out: list[Check] = []
    for e in entries:
        copies = [d / e.file for d in dirs if (d / e.file).is_file()]
        if not copies:
            partial = max((part_path(d / e.file).stat().st_size for d in dirs
                           if part_path(d / e.file).is_file()), default=0)
            out.append(Check(e.name, "missing", None, e.sha256, None, partial))
        for p in copies:
            try:
                digest = sha256_file(p)
            except OSError:
                digest = None
            status = "unpinned" if not e.sha256 else ("ok" if digest == e.sha256 else "mismatch")
            out.append(Check(e.name, status, p, e.sha256, digest))
    return out
