#!/usr/bin/env python3
"""Correctness fingerprint of edgekit on this machine, as JSON on stdout (no timings).

    python benchmarks/arm/check.py [--data ../shared/data] [--dump DIR] [--reference-pcm DIR]
                                   [--frontend-only] [--out FILE]

Run it on two machines (x86-64 and a Pi, or a Pi's userland under qemu-user: see run.sh) and
compare the two documents with compare.py. For every recording in ``<data>/audio`` it reports:

- ``decoded_sha256`` / ``pcm_sha256``: soundfile's float samples, and the 16 kHz int16 samples
  ``read_audio`` makes of them (mono mix + soxr);
- ``fixed_codes_sha256``: ``FixedFrontend(model.input_quant).waveform_to_codes(pcm)``, the
  integer-only front end; the same samples must give these same bytes on every machine;
- ``float_codes_sha256``: the float64 reference patches rounded to int8 by ``quantise``; may
  differ by +-1 LSB across platforms (libm, FFT), so it is reported, not required;
- ``top1_body``: the top-1 label per window of ``yamnet_spectra_in.tflite`` fed the fixed codes;
- ``top1_yamnet``: the top-1 label per window of ``yamnet.tflite`` fed the waveform (end to end,
  float front end inside the graph);
- the same two with the runtime's built-in kernels instead of XNNPACK (``*_builtin``), and the
  sha256 of every score array, which says whether the kernels were bit-identical.

Which kernels ran is recorded per model (``models``): whether the XNNPACK delegate took the graph
(a DELEGATE node in the interpreter's execution plan, which is what it runs) and how many nodes
the plan has, and ``runtime_log``: what the runtime printed when the first interpreter was built
("Created TensorFlow Lite XNNPACK delegate for CPU.", cpuinfo's complaints when it cannot read
the processor), which the runtime prints once per process.

``--frontend-only``: the front end only (tables, golden codes, codes per clip), no models.

Where soxr cannot be imported (32-bit Pi OS has no soxr but from piwheels), ``read_audio`` is not
available: the clips are decoded with soundfile only (``decoded_sha256``) and everything else is
computed on the samples of ``--reference-pcm`` (required then); ``pcm_source`` says which.

Plus the sha256 of the fixed front end's integer tables (``FixedFrontend.constants()``, each
as little-endian int64) and of the codes of ``yamnet_test_audio.bin`` (raw int16, so
independent of any decoder or resampler).

``--dump DIR`` also writes ``<clip>.npz`` (pcm, codes, scores) so that compare.py can say by
how much two machines differ, not only whether they do. ``--reference-pcm DIR`` takes another
machine's dump: for every clip whose samples came out differently here, everything is computed
once more on that machine's samples (key ``reference_pcm``), so that the front end and the
models can be compared on identical input.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# Run from the source tree: use that tree's edgekit. Copied elsewhere (the ARM chroots): use
# the installed wheel.
if (REPO / "edgekit" / "__init__.py").is_file():
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

import edgekit  # noqa: E402
from edgekit.frontend import reference  # noqa: E402
from edgekit.frontend.fixed import FixedFrontend  # noqa: E402
from edgekit.quant import quantise  # noqa: E402
from edgekit.models.model import load_model  # noqa: E402
from edgekit.params import FeatureParams  # noqa: E402
from edgekit.models.runtime import runtime_info  # noqa: E402

try:  # edgekit.audio imports soxr, which 32-bit Pi OS gets from piwheels only: absent in the chroot
    from edgekit.audio.files import read_audio  # noqa: E402
    NO_READ_AUDIO = None
except ImportError as exc:  # pragma: no cover - only where soxr is absent
    read_audio = None
    NO_READ_AUDIO = f"edgekit.audio cannot be imported ({exc})"

SCHEMA = "edgekit-arm-check/2"
AUDIO_SUFFIXES = (".wav", ".ogg", ".flac")
BODY_MODEL = "yamnet_spectra_in.tflite"
E2E_MODEL = "yamnet.tflite"
GOLDEN_AUDIO = "yamnet_test_audio.bin"


def sha256(data: bytes | np.ndarray) -> str:
    if isinstance(data, np.ndarray):
        data = np.ascontiguousarray(data).tobytes()
    return hashlib.sha256(data).hexdigest()


def default_data() -> Path:
    env = os.environ.get("EDGEKIT_TEST_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def source_sha256() -> str:
    """Digest of the edgekit package's .py files (relative path + bytes): proves both machines
    ran the same code, whichever way it was installed."""
    pkg = Path(edgekit.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(pkg.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(pkg).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def constants_sha256(frontend: FixedFrontend) -> tuple[str, dict[str, str]]:
    """Combined digest over the tables in name order, each as little-endian int64 (as
    tests/test_arm64_script.py recomputes it), and one digest per table."""
    tables = frontend.constants()
    digest = hashlib.sha256()
    per_table = {}
    for name in sorted(tables):
        raw = np.ascontiguousarray(tables[name], dtype="<i8").tobytes()
        digest.update(raw)
        per_table[name] = hashlib.sha256(raw).hexdigest()
    return digest.hexdigest(), per_table


def cpu_features() -> dict | None:
    """The aarch64 HWCAP bits that decide which int8 kernels XNNPACK/ruy pick (None elsewhere)."""
    if platform.machine() != "aarch64" or platform.system() != "Linux":
        return None
    import ctypes

    getauxval = ctypes.CDLL(None).getauxval
    getauxval.restype, getauxval.argtypes = ctypes.c_ulong, [ctypes.c_ulong]
    hwcap, hwcap2 = getauxval(16), getauxval(26)  # AT_HWCAP, AT_HWCAP2
    bits = {"asimd": (hwcap, 1), "asimdhp": (hwcap, 10), "asimddp": (hwcap, 20), "sve": (hwcap, 22),
            "i8mm": (hwcap2, 13), "bf16": (hwcap2, 14)}
    return {name: bool(word >> bit & 1) for name, (word, bit) in bits.items()}


def environment() -> dict:
    import soundfile

    try:
        import soxr
    except ImportError:
        soxr = None
    rt = runtime_info()
    return {
        "machine": platform.machine(),
        "system": platform.system(),
        "platform": platform.platform(),
        "byteorder": sys.byteorder,
        "cpu_features": cpu_features(),
        "python": platform.python_version(),
        "runtime": {"name": rt.name, "version": rt.version},
        "numpy": np.__version__,
        "soundfile": getattr(soundfile, "__version__", version("soundfile")),
        "libsndfile": getattr(soundfile, "__libsndfile_version__", None),
        "soxr": getattr(soxr, "__version__", version("soxr")) if soxr else None,
        "read_audio": NO_READ_AUDIO or "available",
        "tflite": version("tflite"),
        "edgekit": {"version": edgekit.__version__, "source_sha256": source_sha256()},
    }


def model_info(model) -> dict:
    ops = [d["op_name"] for d in model.loaded.interpreter._get_ops_details()]
    return {
        "file_sha256": sha256(Path(model.path).read_bytes()),
        # What the interpreter executes: with XNNPACK the delegated nodes are replaced by DELEGATE.
        "xnnpack": bool(model.loaded.xnnpack),
        "plan_nodes": len(ops),
        "plan_delegate_nodes": ops.count("DELEGATE"),
        "device": str(model.device),
    }


def runtime_log(model_path: Path) -> list[str]:
    """The runtime's own stderr lines when the process's first interpreter is built with the
    default delegates ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.", or cpuinfo's
    "Error in cpuinfo: ..." where it cannot read the processor): both come once per process,
    so this runs before any other interpreter."""
    import tempfile

    rt = runtime_info()
    with tempfile.TemporaryFile() as held:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(held.fileno(), 2)
        try:
            interp = rt.module.Interpreter(model_content=model_path.read_bytes())
            interp.allocate_tensors()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        held.seek(0)
        text = held.read().decode("utf-8", "replace")
    return [line.strip() for line in text.splitlines() if line.strip()]


def top1(scores: np.ndarray, labels: tuple[str, ...]) -> list[str]:
    return [labels[int(i)] for i in scores.argmax(axis=1)]


def analyse(pcm: np.ndarray, models: dict, fixed: FixedFrontend, params: FeatureParams,
            quant) -> tuple[dict, dict]:
    """Everything check.py reports about one int16 clip, and the arrays behind it (``models``
    empty: the front end only)."""
    codes = fixed.waveform_to_codes(pcm)  # [windows, 96, 64] int8
    float_codes = quantise(reference.waveform_to_patches(pcm, params), quant)
    arrays = {"fixed_codes": codes, "float_codes": float_codes}
    row = {
        "windows": int(len(codes)),
        "fixed_codes_sha256": sha256(codes),
        "float_codes_sha256": sha256(float_codes),
        # On the same machine: how far the float reference is from the integer path.
        "fixed_vs_float_max_lsb": int(np.abs(codes.astype(np.int16) - float_codes).max()),
        "fixed_vs_float_equal_fraction": round(float(np.mean(codes == float_codes)), 6),
    }
    if not models:
        return row, arrays
    padded = reference.to_float(reference.pad_waveform(pcm, params)).astype(np.float32)
    windows = reference.frame(padded, params.patch_samples, params.patch_hop_samples)
    if len(windows) != len(codes):
        raise AssertionError(f"{len(windows)} waveform windows but {len(codes)} patches")
    # The default kernels (XNNPACK where the runtime applies it) and the runtime's built-in kernels
    # (no default delegate); which ones really ran is in the document's "models".
    for suffix, kernels in (("", ""), ("_builtin", "_builtin")):
        b, y = models["body" + kernels], models["yamnet" + kernels]
        body_scores = np.stack([b.run_codes(c) for c in codes]).astype("<f4")
        e2e_scores = np.stack([y.run(w) for w in windows]).astype("<f4")
        arrays["body_scores" + suffix], arrays["e2e_scores" + suffix] = body_scores, e2e_scores
        row["top1_body" + suffix] = top1(body_scores, b.labels)
        row["top1_yamnet" + suffix] = top1(e2e_scores, y.labels)
        row["body_scores" + suffix + "_sha256"] = sha256(body_scores)
        row["yamnet_scores" + suffix + "_sha256"] = sha256(e2e_scores)
    return row, arrays


def check_clip(path: Path, models: dict, fixed: FixedFrontend, params: FeatureParams, quant,
               dump: Path | None, reference_pcm: Path | None) -> dict:
    import soundfile

    # The decoder's output before mixing/resampling: tells a decoder difference from a soxr one.
    decoded, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    ref_file = reference_pcm / f"{path.name}.npz" if reference_pcm is not None else None
    ref = np.load(ref_file)["pcm"].astype(np.int16) if ref_file is not None and ref_file.is_file() else None
    if read_audio is not None:
        pcm, source = read_audio(path), "read_audio"
    elif ref is not None:
        pcm, source = ref, "reference"  # no resampler here: the other machine's samples
    else:
        raise FileNotFoundError(f"{NO_READ_AUDIO}, and --reference-pcm has no {path.name}.npz: "
                                "give another machine's --dump")
    row, arrays = analyse(pcm, models, fixed, params, quant)
    row = {"rate": int(rate), "channels": int(decoded.shape[1]), "decoded_sha256": sha256(decoded.astype("<f4")),
           "samples": int(len(pcm)), "pcm_source": source, "pcm_sha256": sha256(pcm.astype("<i2")), **row}
    if ref is not None and sha256(ref.astype("<i2")) != row["pcm_sha256"]:
        # This machine decoded/resampled the file differently: run everything once more on the
        # other machine's samples, so that the front end and models are compared on identical input.
        ref_row, ref_arrays = analyse(ref, models, fixed, params, quant)
        row["reference_pcm"] = {"pcm_sha256": sha256(ref.astype("<i2")), **ref_row}
        arrays.update({"ref_" + k: v for k, v in ref_arrays.items()})
    if dump is not None:
        np.savez(dump / f"{path.name}.npz", pcm=pcm, **arrays)
    return row


def run(data: Path, device: str = "cpu:1", dump: Path | None = None, reference_pcm: Path | None = None,
        frontend_only: bool = False) -> dict:
    models, audio = data / "models", data / "audio"
    for needed in (models / BODY_MODEL, models / E2E_MODEL, audio):
        if not needed.exists():
            raise FileNotFoundError(f"{needed} is absent (point --data or EDGEKIT_TEST_DATA at shared/data)")
    params = FeatureParams()
    log = runtime_log(models / BODY_MODEL)  # first: the runtime says these once per process
    loaded = {"body": load_model(models / BODY_MODEL, device)}
    if not frontend_only:
        loaded.update({
            "yamnet": load_model(models / E2E_MODEL, device),
            "body_builtin": load_model(models / BODY_MODEL, device, xnnpack=False),
            "yamnet_builtin": load_model(models / E2E_MODEL, device, xnnpack=False),
        })
    quant = loaded["body"].input_quant
    if quant is None:
        raise AssertionError(f"{BODY_MODEL} has no int8 log-mel input quantisation")
    fixed = FixedFrontend(quant, params)
    combined, per_table = constants_sha256(fixed)

    frontend = {
        "input_quant": {"scale": quant.scale, "zero_point": quant.zero_point},
        "constants_sha256": combined,
        "constants": per_table,
    }
    golden = models / GOLDEN_AUDIO
    if golden.exists():
        pcm = np.fromfile(golden, dtype="<i2").astype(np.int16)
        frontend["golden"] = {"file": GOLDEN_AUDIO, "codes_sha256": sha256(fixed.waveform_to_codes(pcm))}

    if dump is not None:
        dump.mkdir(parents=True, exist_ok=True)
    scoring = {} if frontend_only else loaded
    clips = {}
    for path in sorted(p for p in audio.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES):
        clips[path.name] = check_clip(path, scoring, fixed, params, quant, dump, reference_pcm)
    names = {"body": BODY_MODEL, "yamnet": E2E_MODEL, "body_builtin": BODY_MODEL + " (builtin kernels)",
             "yamnet_builtin": E2E_MODEL + " (builtin kernels)"}
    return {
        "schema": SCHEMA,
        "frontend_only": frontend_only,
        "environment": environment(),
        "runtime_log": log,
        "models": {names[k]: model_info(m) for k, m in loaded.items()},
        "frontend": frontend,
        "clips": clips,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=default_data(), help="the shared data folder (models/, audio/)")
    ap.add_argument("--device", default="cpu:1", help="edgekit device string (default cpu:1)")
    ap.add_argument("--dump", type=Path, help="also write <clip>.npz arrays here, for compare.py")
    ap.add_argument("--reference-pcm", type=Path, metavar="DIR",
                    help="another machine's --dump: where this machine's decoded samples differ from "
                         "those, also run every check on them (key reference_pcm)")
    ap.add_argument("--frontend-only", action="store_true", help="the fixed front end only: no models run")
    ap.add_argument("--out", type=Path, help="write the JSON here instead of stdout")
    args = ap.parse_args(argv)
    try:
        doc = run(args.data, args.device, args.dump, args.reference_pcm, args.frontend_only)
    except FileNotFoundError as exc:
        print(f"check.py: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
    if args.out:
        args.out.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
