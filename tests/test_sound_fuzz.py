"""Fuzzing the sound-file loader: mutated files in, only SoundError (one line) or a sound that then
runs out; memory bounded. ``EDGEKIT_FUZZ_N`` sets the count (default 300; the slow test 5000)."""

from __future__ import annotations

import io
import json
import math
import os
import resource
import struct
import tracemalloc
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from edgekit.detect.heads import EmbeddingSpec, Sound, _digest, save_sound
from edgekit.detect.sound_file import MAX_FILE_BYTES, load_sound_file
from edgekit.errors import EdgekitError, SoundError

SHA = "ab" * 32
KINDS = ("flip", "truncate", "field", "swap", "drop", "spec", "weights", "nest", "declared", "npy-header", "junk")
ODD = [float("nan"), float("inf"), -float("inf"), 1e308, -1e308, 10 ** 400, -1, 0, 1, 0.5, 2.0, True, False, None,
       "", "x" * 10_000, "doorbell", [], [1, 2], {}, {"a": {"b": [1]}}, 1024, 521, 99999, -600, 0.48, "fixed"]


@dataclass
class Host:
    path: Path
    sha256: str = SHA
    embedding_dims: int = 1024
    num_classes: int = 521


def seeds(tmp: Path) -> list[tuple[np.ndarray, dict]]:
    """Valid files of each kind the format allows: plain, --like, scores features."""
    rng = np.random.default_rng(0)
    out = []
    for spec in (EmbeddingSpec("yamnet.tflite", SHA, 0.48, "in-graph"),
                 EmbeddingSpec("yamnet.tflite", SHA, 0.1, "fixed", stock_labels=("Doorbell",), stock_indices=(349,)),
                 EmbeddingSpec("yamnet.tflite", SHA, 0.48, "float", features="embedding+scores")):
        snd = Sound("doorbell", (rng.standard_normal(spec.width) * 0.05).astype(np.float32), -2.0, 0.5, spec,
                    {"examples": 3, "notes": ["a note"], "options": {"augment": 2}})
        p = save_sound(snd, tmp / "doorbell.sound.npz")
        with np.load(p) as z:
            out.append((z["weights"].copy(), json.loads(str(z["meta"]))))
    return out


def write(weights, meta, *, digest=True) -> bytes:
    if isinstance(meta, dict) and digest and np.asarray(weights).dtype.kind == "f":
        meta = {**meta, "digest": _digest(np.asarray(weights, "<f4").reshape(-1), meta)}
    buf = io.BytesIO()
    np.savez(buf, weights=weights, meta=np.array(meta if isinstance(meta, str) else json.dumps(meta)))
    return buf.getvalue()


def mutate(rng, weights, meta, kind: str) -> bytes:
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    if kind in ("flip", "truncate", "declared", "npy-header", "junk"):
        data = bytearray(write(weights, meta))
        if kind == "flip":
            for _ in range(int(rng.integers(1, 8))):
                pos = int(rng.integers(len(data)))
                data[pos] ^= 1 << int(rng.integers(8))
        elif kind == "truncate":
            data = data[: int(rng.integers(0, len(data)))]
        elif kind == "declared":  # the zip's own size fields: local headers and central directory
            for sig, off in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24), (b"PK\x03\x04", 18), (b"PK\x01\x02", 20)):
                at = data.find(sig, int(rng.integers(0, 2)) * (len(data) // 2))
                if at >= 0 and rng.random() < 0.6:
                    data[at + off: at + off + 4] = struct.pack("<I", int(pick([0xFFFFFFFF, 1 << 31, 1 << 28, 0, 7,
                                                                                   int(rng.integers(1 << 32))])))
        elif kind == "npy-header":
            at = data.find(b"'shape': (")
            if at >= 0:
                end = data.find(b")", at)
                data[at + 10: end] = pick([b"1099511627776,", b"-1,", b"1024, 1024", b"", b"2**40,", b"1e9,",
                                           b"((((((1,),),),),)", b"1024,"])
            at = data.find(b"'descr': '")
            if at >= 0 and rng.random() < 0.5:
                data[at + 10: at + 13] = pick([b"|O8", b">f4", b"<f8", b"<i4", b"<U1", b"|V4"])
        else:
            pos = int(rng.integers(len(data)))
            data[pos: pos + 64] = rng.bytes(64)
        return bytes(data)
    meta = json.loads(json.dumps(meta))
    if kind == "field":
        meta[pick(sorted(meta))] = pick(ODD)
    elif kind == "swap":
        a, b = pick(sorted(meta)), pick(sorted(meta))
        meta[a], meta[b] = meta[b], meta[a]
    elif kind == "drop":
        meta.pop(pick(sorted(meta)))
        if rng.random() < 0.5:
            meta[pick(["extra", "weights", "spec2"])] = pick(ODD)
    elif kind == "spec":
        spec = meta["spec"]
        key = pick(sorted(spec))
        spec[key] = pick(ODD) if rng.random() < 0.7 else spec[pick(sorted(spec))]
        if rng.random() < 0.3:
            spec["stock_indices"], spec["stock_labels"] = [int(pick([99999, -600, 520, 521, 0]))], ["x"]
    elif kind == "weights":
        w = pick([np.full(weights.size, np.nan, "<f4"), weights[: int(rng.integers(0, weights.size))],
                  np.append(weights, weights), weights.astype("<f8"), weights.astype(">f4"), weights.reshape(1, -1),
                  np.full(weights.size, 3e38, "<f4"), np.zeros((0,), "<f4"), weights.astype("<i4"),
                  np.array(["a"] * 4)])
        return write(w, meta)
    elif kind == "nest":
        depth = int(pick([17, 100, 1000, 5000, 20_000]))
        meta["summary"] = {}
        text = json.dumps(meta)[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
        return write(weights, text)
    return write(weights, meta, digest=rng.random() < 0.9)


def run_fuzz(tmp: Path, count: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    base = seeds(tmp)
    path = tmp / "doorbell.sound.npz"
    outcomes: Counter = Counter()
    emb = np.random.default_rng(1).uniform(0, 3, 1024).astype(np.float32)
    window = SimpleNamespace(embedding=emb, scores=np.random.default_rng(2).uniform(0, 1, 521).astype(np.float32))
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    try:
        for i in range(count):
            kind = KINDS[i % len(KINDS)]
            weights, meta = base[int(rng.integers(len(base)))]
            path.write_bytes(mutate(rng, weights, meta, kind))
            try:
                snd = load_sound_file(path)
                snd.check_model(Host(Path("yamnet.tflite")))
            except EdgekitError as exc:
                assert isinstance(exc, SoundError), (kind, type(exc), exc)
                msg = str(exc)
                assert msg and "\n" not in msg and "Traceback" not in msg, (kind, msg)
                outcomes["refused"] += 1
                outcomes[f"refused:{kind}"] += 1
            else:  # accepted: it must run, and score like a sound
                s = snd.score(window)
                assert math.isfinite(s) and 0.0 <= s <= 1.0, (kind, s)
                outcomes["accepted"] += 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    outcomes["peak_traced_bytes"] = peak
    outcomes["rss_growth_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0
    return dict(outcomes)


def check(out: dict, count: int) -> None:
    assert out["refused"] + out.get("accepted", 0) == count
    # Both outcomes occur for the mutations that keep the digest right, or nothing was exercised.
    assert out.get("accepted", 0) > 0 and out["refused"] > 0, out
    assert out["peak_traced_bytes"] < 4 * MAX_FILE_BYTES, out  # one file's worth, never what a header declares
    print(f"\nsound-file fuzz: {count} files, {out}")


def test_fuzzed_sound_files_are_refused_cleanly(tmp_path):
    count = int(os.environ.get("EDGEKIT_FUZZ_N", "300"))
    check(run_fuzz(tmp_path, count, seed=17), count)


@pytest.mark.slow
@pytest.mark.timeout(0)
def test_fuzzed_sound_files_are_refused_cleanly_at_scale(tmp_path):
    count = int(os.environ.get("EDGEKIT_FUZZ_N", "5000"))
    check(run_fuzz(tmp_path, count, seed=1717), count)
