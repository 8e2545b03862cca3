"""A custom sound's file read by the one validated loader: every field checked when read, a zip
bomb refused from its directory, deep JSON a clean error; what is accepted fits the model."""

from __future__ import annotations

import io
import json
import os
import tracemalloc
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from edgekit.detect.heads import EmbeddingSpec, Sound, _digest, save_sound
from edgekit.detect.sound_file import MAX_FILE_BYTES, load_sound_file
from edgekit.errors import SoundError, SoundModelMismatchError

SPEC = EmbeddingSpec(model="yamnet.tflite", model_sha256="ab" * 32, hop_seconds=0.48, frontend="in-graph")


def good_sound(name="doorbell", spec=SPEC) -> Sound:
    rng = np.random.default_rng(0)
    return Sound(name=name, weights=rng.standard_normal(spec.width).astype(np.float32) * 0.01, bias=-1.0,
                 threshold=0.5, spec=spec, summary={"examples": 3, "notes": []})


def parts(path: Path) -> tuple[np.ndarray, dict]:
    with np.load(path) as z:
        return z["weights"].copy(), json.loads(str(z["meta"]))


def forge(path: Path, weights, meta: dict | str, *, digest: bool = True) -> Path:
    """A file as an editor with the format in hand would write it: the digest made to match."""
    if isinstance(meta, dict) and digest:
        meta = dict(meta)
        meta["digest"] = _digest(np.asarray(weights, "<f4"), meta)
    text = meta if isinstance(meta, str) else json.dumps(meta)
    np.savez(path, weights=np.asarray(weights), meta=np.array(text))
    return path


@pytest.fixture
def saved(tmp_path) -> tuple[Path, np.ndarray, dict]:
    path = save_sound(good_sound(), tmp_path / "doorbell.sound.npz")
    return (path, *parts(path))


@pytest.mark.parametrize("field, value, match", [
    ("bias", float("nan"), "bias nan is outside"),
    ("bias", float("inf"), "bias inf is outside"),
    ("bias", 1e300, "bias 1e\\+300 is outside"),
    ("bias", "1.0", "bias is str, not a number"),
    ("threshold", float("nan"), "threshold nan is outside"),
    ("threshold", 1.5, "threshold 1.5 is outside \\(0, 1\\)"),
    ("threshold", 0.0, "threshold 0.0 is outside"),
    ("threshold", -0.2, "threshold -0.2 is outside"),
    ("threshold", True, "threshold is bool"),
    ("version", True, "version True is not supported"),
    ("name", 7, "name 7 is not a sound name"),
    ("summary", [1, 2], "summary is not a table"),
    ("extra", 1, "fields extra missing or unknown"),
])
def test_every_field_is_checked(saved, field, value, match):
    path, weights, meta = saved
    forge(path, weights, {**meta, field: value})
    with pytest.raises(SoundError, match=match) as info:
        load_sound_file(path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("key, value, match", [
    ("dims", 0, "dims 0 is not a whole number"),
    ("dims", 10 ** 9, "dims 1000000000 is not a whole number"),
    ("dims", 1024.0, "dims 1024.0 is not a whole number"),
    ("hop_seconds", float("nan"), "hop_seconds nan is outside"),
    ("hop_seconds", -1, "hop_seconds -1 is outside"),
    ("stock_indices", [99999], "stock_labels and stock_indices are not two lists of the same length"),
    ("features", "everything", "features 'everything' is not one of"),
    ("frontend", "magic", "front end 'magic'"),
    ("model_sha256", "xyz", "model_sha256 is not 64"),
])
def test_every_spec_field_is_checked(saved, key, value, match):
    path, weights, meta = saved
    forge(path, weights, {**meta, "spec": {**meta["spec"], key: value}})
    with pytest.raises(SoundError, match=match):
        load_sound_file(path)


def test_label_indices_are_checked_when_read(saved):
    path, weights, meta = saved
    for idx in (99999, -600):
        spec = {**meta["spec"], "stock_labels": ["Doorbell"], "stock_indices": [idx]}
        forge(path, np.append(weights, 0.1).astype("<f4"), {**meta, "spec": spec})
        with pytest.raises(SoundError, match=f"stock label index {idx} is not a whole number from 0 to 520"):
            load_sound_file(path)


def test_nan_weights_are_named_as_such(saved):
    """Before: "weights of shape (1024,) do not fit a 1024-d embedding" for NaN weights."""
    path, weights, meta = saved
    weights[3] = np.nan
    forge(path, weights, meta)
    with pytest.raises(SoundError, match="weights hold NaN, infinite or out-of-range values") as info:
        load_sound_file(path)
    assert "do not fit" not in str(info.value)
    forge(path, weights[:512], meta)
    with pytest.raises(SoundError, match="512 weights do not fit its spec .*1024 weights"):
        load_sound_file(path)


def test_deeply_nested_json_is_a_clean_error(saved):
    """Before: RecursionError out of json.loads (config check, run and sounds list all died of it)."""
    path, weights, meta = saved
    deep = json.dumps({**meta, "summary": {}})[:-1] + ', "x": ' + "[" * 5000 + "]" * 5000 + "}"
    forge(path, weights, deep)
    with pytest.raises(SoundError, match="nests 5001 deep"):
        load_sound_file(path)


def test_name_must_match_the_file_name(saved):
    path, weights, meta = saved
    other = path.with_name("bell.sound.npz")
    path.rename(other)
    with pytest.raises(SoundError, match="holds the sound 'doorbell'.*rename it to doorbell.sound.npz"):
        load_sound_file(other)


def _bomb(path: Path, member: str, size: int, meta_text: str = "{}") -> Path:
    """A .npz whose member inflates to ``size`` bytes of zeros (compressed a thousand-fold)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open(member, "w", force_zip64=True) as f:
            chunk = bytes(1 << 20)
            for _ in range(size >> 20):
                f.write(chunk)
        other = "meta.npy" if member == "weights.npy" else "weights.npy"
        buf = io.BytesIO()
        np.save(buf, np.array(meta_text) if other == "meta.npy" else np.zeros(4, "<f4"))
        z.writestr(other, buf.getvalue())
    return path


@pytest.mark.parametrize("member", ["weights.npy", "meta.npy"])
def test_zip_bomb_is_refused_before_decompressing(tmp_path, member):
    """Before: a 2.9 MB bomb took config check, sounds list and run to 8.6 GB of memory."""
    path = _bomb(tmp_path / "doorbell.sound.npz", member, 64 << 20)
    assert path.stat().st_size < MAX_FILE_BYTES
    tracemalloc.start()
    try:
        with pytest.raises(SoundError, match=f"its {member} declares {64 << 20} bytes, more than a sound holds"):
            load_sound_file(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2 * MAX_FILE_BYTES, peak  # the file itself and little more, never the 64 MB


def test_a_huge_declared_array_allocates_nothing(saved):
    """An .npy header that claims 10**12 values in a small member."""
    path, weights, meta = saved
    buf = io.BytesIO()
    np.save(buf, weights)
    raw = buf.getvalue().replace(b"(1024,)", b"(10**12,)".replace(b"10**12", b"%d" % 10 ** 12), 1)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("weights.npy", raw)
        b2 = io.BytesIO()
        np.save(b2, np.array(json.dumps(meta)))
        z.writestr("meta.npy", b2.getvalue())
    with pytest.raises(SoundError, match="weights are <f4 of shape \\(1000000000000,\\)"):
        load_sound_file(path)


def test_oversized_and_odd_files(tmp_path):
    big = tmp_path / "big.sound.npz"
    big.write_bytes(b"PK" + bytes(MAX_FILE_BYTES))
    with pytest.raises(SoundError, match="more than a sound file holds"):
        load_sound_file(big)
    with pytest.raises(SoundError, match="not a regular file"):
        load_sound_file(tmp_path)
    fifo = tmp_path / "fifo.sound.npz"
    os.mkfifo(fifo)  # opened without blocking, then refused
    with pytest.raises(SoundError, match="not a regular file"):
        load_sound_file(fifo)
    pickled = tmp_path / "p.sound.npz"
    np.savez(pickled, weights=np.array([{"a": 1}], dtype=object), meta=np.array("{}"))
    with pytest.raises(SoundError, match="weights is not a plain array"):
        load_sound_file(pickled)


@dataclass
class Host:
    path: Path
    sha256: str
    embedding_dims: int | None = 1024
    num_classes: int | None = 521


def test_a_sound_must_fit_the_models_embedding_and_classes(tmp_path):
    """Before: dims other than the model's passed every check and the daemon died at its first window
    ("takes a 512-d embedding", exit 1); an index past the classes was an IndexError traceback."""
    small = EmbeddingSpec(model="yamnet.tflite", model_sha256="ab" * 32, hop_seconds=0.48, frontend="in-graph", dims=512)
    snd = load_sound_file(save_sound(good_sound(spec=small), tmp_path / "doorbell.sound.npz"))
    with pytest.raises(SoundModelMismatchError, match="takes a 512-d embedding, but yamnet.tflite gives a 1024-d one"):
        snd.check_model(Host(Path("yamnet.tflite"), "ab" * 32))
    like = EmbeddingSpec(model="yamnet.tflite", model_sha256="ab" * 32, hop_seconds=0.48, frontend="in-graph",
                         stock_labels=("Doorbell",), stock_indices=(500,))
    snd = load_sound_file(save_sound(good_sound(spec=like), tmp_path / "doorbell.sound.npz"))
    snd.check_model(Host(Path("yamnet.tflite"), "ab" * 32))
    with pytest.raises(SoundModelMismatchError, match=r"names class indices \[500\], but m.tflite has 10 classes"):
        snd.check_model(Host(Path("m.tflite"), "ab" * 32, num_classes=10))


def test_sounds_list_survives_bad_files_beside_good_ones(tmp_path, monkeypatch, capsys):
    """Before: one file of deeply nested JSON made `sounds list` fail for every sound (RecursionError),
    and a bomb took it to gigabytes."""
    from edgekit.cli import main as cli

    d = tmp_path / "sounds"
    d.mkdir()
    monkeypatch.setenv("EDGEKIT_SOUNDS_DIR", str(d))
    save_sound(good_sound("good"), d / "good.sound.npz")
    path = save_sound(good_sound("deep"), d / "deep.sound.npz")
    weights, meta = parts(path)
    forge(path, weights, json.dumps({**meta, "summary": {}})[:-1] + ', "x": ' + "[" * 5000 + "]" * 5000 + "}")
    _bomb(d / "bomb.sound.npz", "meta.npy", 64 << 20)
    assert cli(["sounds", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["bomb", "deep", "good"]
    assert "BROKEN" in out[0] and "BROKEN" in out[1] and "BROKEN" not in out[2]
    assert cli(["sounds", "show", "deep"]) == 1
    err = capsys.readouterr().err
    assert "nests 5001 deep" in err and "Traceback" not in err
