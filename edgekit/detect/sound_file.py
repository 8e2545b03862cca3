"""Reading a custom sound's file: bounded, and checked completely before anything uses it.

A sound file is the one thing in the sounds directory that anyone with write access there (or a
bad copy, a full disk, an editor) can put in front of the daemon. Everything in it is checked
here, when it is read, so that what is accepted cannot fail later at the first window or at a
reload: the zip's directory (two members, sizes declared and capped *before* anything is
decompressed: a zip bomb costs nothing), each ``.npy`` header (dtype and shape, checked against
the bytes really there before an array exists), the JSON (size, nesting depth, no
duplicate keys) and every field's type, range and finiteness. Its fit to a model (embedding size,
class indices, file hash) is :meth:`edgekit.detect.heads.Sound.check_model`.

Every failure is a :class:`~edgekit.errors.SoundError` with a one-line message.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import stat
import zipfile
import zlib
from pathlib import Path

import numpy as np

from edgekit.errors import SoundError

from .heads import (CLASSES, FEATURES, FORMAT, MAX_CONTEXT_SECONDS, SUFFIX, VERSION, EmbeddingSpec, Sound, _digest,
                    check_name)

# What a sound file may hold. A real one is ~5 KB (1024 weights and a few KB of JSON); the caps
# leave room for a head on a bigger embedding plus YAMNet's scores, and keep the worst case a few
# MB of memory on a Pi Zero.
MAX_FILE_BYTES = 4 << 20
MAX_DIMS = 8192
MAX_WEIGHTS = MAX_DIMS + CLASSES + 1
MAX_META_CHARS = 64 << 10  # numpy stores the JSON as UTF-32: 4 bytes a character
MAX_DEPTH = 16  # the format nests 3 deep; a summary a little more
MAX_MAGNITUDE = 1e4  # |weight| and |bias|: a logit beyond this saturates the sigmoid for any input
FRONTENDS = ("fixed", "float", "in-graph")
_MEMBERS = {"weights.npy": 4 * MAX_WEIGHTS + 1024, "meta.npy": 4 * MAX_META_CHARS + 1024}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_KEYS = {"format", "version", "name", "bias", "threshold", "spec", "summary", "digest"}
_SPEC_KEYS = {"model", "model_sha256", "hop_seconds", "frontend", "dims", "stock_labels", "stock_indices", "features"}


class _Bad(Exception):
    """Internal: why the file is refused (turned into a SoundError naming the file)."""


def load_sound_file(path: str | os.PathLike) -> Sound:
    """The sound in ``path``, or a SoundError saying why not; ``NAME.sound.npz`` must hold ``NAME``."""
    path = Path(path)
    try:
        # O_NONBLOCK: a FIFO put in place of the file cannot block the open; fstat then sees what was opened.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise SoundError(f"{path}: no such sound file") from None
    except OSError as exc:
        raise SoundError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise SoundError(f"{path}: not a regular file; a sound is a .sound.npz file written by `edgekit sounds learn`")
    with os.fdopen(fd, "rb") as f:
        if st.st_size > MAX_FILE_BYTES:
            raise _refuse(path, f"{st.st_size} bytes is more than a sound file holds (at most {MAX_FILE_BYTES})")
        try:
            data = f.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise SoundError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    try:
        if len(data) > MAX_FILE_BYTES:
            raise _Bad(f"more than {MAX_FILE_BYTES} bytes")
        members = _members(data)
        weights = _weights(members["weights.npy"])
        meta = _json(_text(members["meta.npy"]))
        sound = _sound(meta, weights, path)
    except _Bad as exc:
        raise _refuse(path, str(exc)) from None
    return sound


def _refuse(path: Path, why: str) -> SoundError:
    return SoundError(f"{path}: {why}; learn the sound again with `edgekit sounds learn`")


def _members(data: bytes) -> dict[str, bytes]:
    """The two members, each read only after the directory says it is of a size a sound can have."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
            names = sorted(i.filename for i in infos)
            if names != sorted(_MEMBERS):
                raise _Bad(f"not a sound file (it holds {', '.join(map(repr, names[:4])) or 'nothing'}"
                           f"{' …' if len(names) > 4 else ''}, not weights and meta)")
            for info in infos:  # all declared sizes first: nothing is decompressed for a bomb
                limit = _MEMBERS[info.filename]
                if info.file_size > limit or info.compress_size > MAX_FILE_BYTES:
                    raise _Bad(f"its {info.filename} declares {info.file_size} bytes, more than a sound holds "
                               f"(at most {limit})")
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or info.flag_bits & 0x1:
                    raise _Bad(f"its {info.filename} is encrypted or compressed in a way sound files never are")
            out = {}
            for info in infos:
                with z.open(info) as f:
                    raw = f.read(info.file_size + 1)  # the reader stops at the declared size; never more
                if len(raw) != info.file_size:
                    raise _Bad(f"its {info.filename} is not the size its directory says")
                out[info.filename] = raw
            return out
    except _Bad:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError, OSError, RuntimeError,
            OverflowError, IndexError, KeyError) as exc:  # what zipfile raises for damaged archives
        raise _Bad(f"not a readable sound file (damaged zip: {type(exc).__name__})") from None


def _npy(raw: bytes, what: str) -> tuple[np.dtype, tuple, memoryview]:
    """(dtype, shape, data) from a .npy member, the header checked against the bytes that follow."""
    f = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f, max_header_size=1024)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f, max_header_size=1024)
        else:
            raise _Bad(f"its {what} is in .npy version {version}, which sound files never use")
    except _Bad:
        raise
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError, OverflowError, UnicodeError) as exc:
        raise _Bad(f"its {what} is not a readable array ({type(exc).__name__})") from None
    if fortran or dtype.hasobject or any(not isinstance(d, int) or d < 0 for d in shape):
        raise _Bad(f"its {what} is not a plain array")
    return dtype, tuple(shape), memoryview(raw)[f.tell():]


def _weights(raw: bytes) -> np.ndarray:
    dtype, shape, body = _npy(raw, "weights")
    if dtype != np.dtype("<f4") or len(shape) != 1 or shape[0] > MAX_WEIGHTS:
        raise _Bad(f"its weights are {dtype.str} of shape {shape}, not up to {MAX_WEIGHTS} float32 values")
    if len(body) != 4 * shape[0]:
        raise _Bad(f"its weights declare {shape[0]} values but hold {len(body)} bytes")
    return np.frombuffer(body, "<f4").astype(np.float32)  # a copy: the buffer goes


def _text(raw: bytes) -> str:
    dtype, shape, body = _npy(raw, "meta")
    if dtype.kind != "U" or dtype.byteorder == ">" or shape != () or dtype.itemsize > 4 * MAX_META_CHARS:
        raise _Bad(f"its meta is {dtype.str} of shape {shape}, not one text of up to {MAX_META_CHARS} characters")
    if len(body) != dtype.itemsize:
        raise _Bad(f"its meta declares {dtype.itemsize} bytes but holds {len(body)}")
    codes = np.frombuffer(body, "<u4")
    if codes.size and (int(codes.max()) > 0x10FFFF or np.any((codes >= 0xD800) & (codes <= 0xDFFF))):
        raise _Bad("its meta is not valid text")
    return str(np.frombuffer(body, dtype)[0])


def _json(text: str):
    """JSON with a bounded depth (checked before parsing: no RecursionError) and no duplicate keys."""
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", text)  # strings cannot nest
    moves = np.frombuffer(re.sub(r"[^\[\]{}]", "", bare).encode("ascii"), np.uint8)
    if moves.size:
        depth = np.cumsum(np.where((moves == ord("[")) | (moves == ord("{")), 1, -1))
        if int(depth.max()) > MAX_DEPTH:
            raise _Bad(f"its meta nests {int(depth.max())} deep, more than a sound file does (at most {MAX_DEPTH})")

    def unique(pairs):
        keys = [k for k, _ in pairs]
        if len(set(keys)) != len(keys):
            raise _Bad("its meta repeats a key")
        return dict(pairs)

    try:
        # NaN parses (a summary may hold one: "n/a" for a rate without background); every field
        # that is used is checked to be finite below.
        return json.loads(text, object_pairs_hook=unique)
    except _Bad:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, an integer of too many digits
        raise _Bad(f"its meta is not readable JSON ({type(exc).__name__})") from None


def _number(value, what: str, lo: float, hi: float, *, open_lo: bool = False, open_hi: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Bad(f"{what} is {type(value).__name__}, not a number")
    x = float(value) if abs(value) < 1e308 else math.inf
    if not math.isfinite(x) or x < lo or x > hi or (open_lo and x == lo) or (open_hi and x == hi):
        rng = f"{'(' if open_lo else '['}{lo:g}, {hi:g}{')' if open_hi else ']'}"
        raise _Bad(f"{what} {value!r} is outside {rng}")
    return x


def _int(value, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise _Bad(f"{what} {value!r} is not a whole number from {lo} to {hi}")
    return value


def _str(value, what: str, limit: int = 255) -> str:
    if not isinstance(value, str) or not value or len(value) > limit:
        raise _Bad(f"{what} is not a text of 1 to {limit} characters")
    return value


def _sound(meta, weights: np.ndarray, path: Path) -> Sound:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _Bad("not an edgekit sound file")
    version = meta.get("version")
    if isinstance(version, bool) or version != VERSION:
        raise SoundError(f"{path}: sound file version {version!r} is not supported by this edgekit "
                         f"(it reads version {VERSION}); learn the sound again or upgrade edgekit")
    if set(meta) != _KEYS:
        raise _Bad("its meta has fields " + ", ".join(sorted(set(meta) ^ _KEYS)) + " missing or unknown")
    if not isinstance(meta["digest"], str) or meta["digest"] != _digest(weights, meta):
        raise _Bad("the file is corrupted or was edited (its digest does not match its contents)")
    s = meta["spec"]
    # context_seconds is written only above 0, so a one-window file keeps the earlier format.
    if not isinstance(s, dict) or not _SPEC_KEYS <= set(s) <= _SPEC_KEYS | {"context_seconds"}:
        raise _Bad("its spec is not the fields " + ", ".join(sorted(_SPEC_KEYS)) + " (and context_seconds)")
    features = s["features"]
    if features not in FEATURES:
        raise _Bad(f"its features {features!r} is not one of {', '.join(FEATURES)}")
    frontend = s["frontend"]
    if frontend not in FRONTENDS:
        raise _Bad(f"its front end {frontend!r} is not one of {', '.join(FRONTENDS)}")
    if not isinstance(s["model_sha256"], str) or not _SHA256.match(s["model_sha256"]):
        raise _Bad("its model_sha256 is not 64 lower-case hex digits")
    labels, indices = s["stock_labels"], s["stock_indices"]
    if not isinstance(labels, list) or not isinstance(indices, list) or len(labels) != len(indices) \
            or len(indices) > CLASSES:
        raise _Bad("its stock_labels and stock_indices are not two lists of the same length")
    spec = EmbeddingSpec(
        model=_str(s["model"], "its model name"), model_sha256=s["model_sha256"],
        hop_seconds=_number(s["hop_seconds"], "its hop_seconds", 0.01, 10.0), frontend=frontend,
        dims=_int(s["dims"], "its dims", 1, MAX_DIMS),
        stock_labels=tuple(_str(x, "a stock label", 512) for x in labels),
        stock_indices=tuple(_int(i, "a stock label index", 0, CLASSES - 1) for i in indices), features=features,
        context_seconds=_number(s.get("context_seconds", 0.0), "its context_seconds", 0.0, MAX_CONTEXT_SECONDS),
    )
    try:
        name = check_name(meta["name"] if isinstance(meta["name"], str) else "")
    except SoundError:
        raise _Bad(f"its name {meta['name']!r} is not a sound name") from None
    if path.name != f"{name}{SUFFIX}":
        raise SoundError(f"{path}: this file holds the sound {name!r}, but a sound is found by its file name; "
                         f"rename it to {name}{SUFFIX} (or learn it again under the name you want)")
    if not isinstance(meta["summary"], dict):
        raise _Bad("its summary is not a table")
    if weights.shape != (spec.width,):
        raise _Bad(f"its {weights.size} weights do not fit its spec ({spec.features} of a {spec.dims}-d embedding"
                   f"{f' pooled over {spec.context_seconds:g} s' if spec.context_seconds > 0 else ''}"
                   f"{' + 1 stock label feature' if spec.stock_indices else ''}: {spec.width} weights)")
    if not np.all(np.isfinite(weights)) or float(np.max(np.abs(weights), initial=0.0)) > MAX_MAGNITUDE:
        raise _Bad(f"its weights hold NaN, infinite or out-of-range values (each must be within ±{MAX_MAGNITUDE:g})")
    return Sound(name=name, weights=weights, spec=spec, summary=meta["summary"], path=path,
                 bias=_number(meta["bias"], "its bias", -MAX_MAGNITUDE, MAX_MAGNITUDE),
                 threshold=_number(meta["threshold"], "its threshold", 0.0, 1.0, open_lo=True, open_hi=True))
