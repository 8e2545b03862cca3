"""Bad model files: one clear line and a non-zero exit, never a traceback or a crash."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tflite

from edgekit.cli import main
from edgekit.errors import EdgekitError, ModelFileError, ModelNotFoundError, UnsupportedModelError
from edgekit.models.tflite import read_graph
from edgekit.models.model import load_model


def write(tmp_path, name, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


LFS_POINTER = (
    b"version https://git-lfs.github.com/spec/v1\n"
    b"oid sha256:10c95ea3eb9a7bb4cb8bddf6feb023250381008177ac162ce169694d05c317de\nsize 4126810\n"
)
HTML_PAGE = b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>Not Found</body></html>\n"


@pytest.mark.parametrize(
    "name,make,expect",
    [
        ("empty.tflite", lambda d: b"", "empty"),
        ("lfs.tflite", lambda d: LFS_POINTER, "Git LFS pointer, not the model"),
        ("page.tflite", lambda d: HTML_PAGE, "HTML"),
        ("random.tflite", lambda d: np.random.default_rng(0).bytes(50_000), "no 'TFL3' identifier"),
        ("header.tflite", lambda d: d[:16], "too short"),
        ("third.tflite", lambda d: d[: len(d) // 3], "truncated"),
        ("cut.tflite", lambda d: d[:3000], "truncated"),
        ("zip.tflite", lambda d: b"PK\x03\x04" + b"\0" * 100, "zip archive"),
    ],
)
def test_bad_files_give_one_clear_error(tmp_path, models_dir, name, make, expect, capsys):
    real = (models_dir / "yamnet_spectra_in.tflite").read_bytes()
    path = write(tmp_path, name, make(real))
    with pytest.raises(ModelFileError, match=expect):
        load_model(path)
    wav = tmp_path / "x.wav"
    rc = main(["classify", "--model", str(path), str(wav)])
    err = capsys.readouterr().err
    assert rc == 1
    assert err.count("\n") == 1 and err.startswith("edgekit: error:") and expect in err
    assert "Traceback" not in err


def patched_input_shape(data: bytes, new_shape: tuple[int, ...]) -> bytes:
    """Rewrite the dimensions of input tensor 0 in place (same rank), as a converter bug would."""
    model = tflite.Model.GetRootAs(data, 0)
    sg = model.Subgraphs(0)
    tensor = sg.Tensors(sg.Inputs(0))
    start = tensor._tab.Vector(tensor._tab.Offset(4))  # the shape vector's first int32
    assert tensor.ShapeLength() == len(new_shape)
    out = bytearray(data)
    out[start:start + 4 * len(new_shape)] = np.asarray(new_shape, "<i4").tobytes()
    return bytes(out)


def test_unsupported_input_shape_is_refused_before_any_interpreter(tmp_path, models_dir, capsys):
    data = patched_input_shape((models_dir / "yamnet_spectra_in.tflite").read_bytes(), (1, 80, 64))
    assert read_graph(data).input_tensors()[0].shape == (1, 80, 64)
    path = write(tmp_path, "odd.tflite", data)
    with pytest.raises(UnsupportedModelError, match=r"unsupported input \[1, 80, 64\]"):
        load_model(path)
    assert main(["classify", "--model", str(path), "x.wav"]) == 1
    assert "unsupported input" in capsys.readouterr().err


def test_missing_model_says_where_it_looked(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("EDGEKIT_MODEL_DIR", str(tmp_path))
    with pytest.raises(ModelNotFoundError) as info:
        load_model("no_such_model")
    msg = str(info.value)
    assert str(tmp_path) in msg and "looked in" in msg and "not a zoo model" in msg
    with pytest.raises(ModelNotFoundError, match="no such model file"):
        load_model(tmp_path / "missing.tflite")


def test_bare_name_resolves_through_the_model_dir(tmp_path, monkeypatch, models_dir):
    (tmp_path / "yamnet.tflite").symlink_to(models_dir / "yamnet.tflite")
    monkeypatch.setenv("EDGEKIT_MODEL_DIR", str(tmp_path))
    assert load_model("yamnet").kind == "waveform"


def test_directory_as_model(tmp_path):
    with pytest.raises(ModelFileError, match="directory"):
        load_model(tmp_path)


def test_cli_process_prints_no_traceback(tmp_path):
    path = write(tmp_path, "lfs.tflite", LFS_POINTER)
    proc = subprocess.run(
        [sys.executable, "-m", "edgekit", "classify", "--model", str(path), "x.wav"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"edgekit: error: {path}: this is a Git LFS pointer, not the model; run `git lfs pull` in its "
        "repository or get the model with `edgekit models pull`"
    ]


# --- fuzzing: mutated and truncated copies of the real models --------------------------------

FUZZ_MODELS = ["yamnet_spectra_in.tflite", "mobilenet_v1_0.25_128_quant.tflite", "yamnet.tflite"]


def mutants(data: bytes, count: int, seed: int):
    """Truncations, byte flips, zeroed and shuffled runs: what disks, downloads and tools do."""
    rng = np.random.default_rng(seed)
    n = len(data)
    for i in range(count):
        kind = i % 4
        if kind == 0:
            yield "truncate", data[: int(rng.integers(8, n))]
        elif kind == 1:
            buf = bytearray(data)
            # Bias flips towards the flatbuffer's tables (the first and last KBs), where they matter.
            for _ in range(int(rng.integers(1, 16))):
                pos = int(rng.integers(0, min(n, 4096))) if rng.random() < 0.5 else int(rng.integers(max(0, n - 65536), n))
                buf[pos] ^= 1 << int(rng.integers(0, 8))
            yield "flip", bytes(buf)
        elif kind == 2:
            buf = bytearray(data)
            start = int(rng.integers(0, n))
            end = min(n, start + int(rng.integers(1, 512)))
            buf[start:end] = bytes(end - start)
            yield "zero", bytes(buf)
        else:
            buf = bytearray(data)
            pos = int(rng.integers(0, n - 64))
            buf[pos:pos + 64] = rng.bytes(64)
            yield "random-run", bytes(buf)


def run_fuzz(tmp_path, models_dir, per_model: int, seed: int):
    outcomes = {"loaded": 0, "refused": 0}
    for m, name in enumerate(FUZZ_MODELS):
        data = (models_dir / name).read_bytes()
        for k, (kind, mutant) in enumerate(mutants(data, per_model, seed + m)):
            path = tmp_path / f"m{m}_{k}.tflite"
            path.write_bytes(mutant)
            try:
                model = load_model(path)
            except EdgekitError as exc:
                msg = str(exc)
                assert msg and "\n" not in msg, (kind, msg)
                outcomes["refused"] += 1
            else:
                shape = model.interpreter.get_input_details()[0]["shape"]
                model.run(np.zeros(shape, np.float32))
                outcomes["loaded"] += 1
            path.unlink()
    return outcomes


def test_fuzzed_models_never_crash(tmp_path, models_dir):
    per_model = int(os.environ.get("EDGEKIT_FUZZ_N", "100"))
    outcomes = run_fuzz(tmp_path, models_dir, per_model, seed=1234)
    # Both outcomes must occur, or the mutations are not exercising anything.
    assert outcomes["loaded"] > 0 and outcomes["refused"] > 0, outcomes


@pytest.mark.slow
@pytest.mark.timeout(0)  # minutes to hours, by design
def test_fuzzed_models_never_crash_at_scale(tmp_path, models_dir):
    run_fuzz(tmp_path, models_dir, int(os.environ.get("EDGEKIT_FUZZ_N", "1000")), seed=99)
