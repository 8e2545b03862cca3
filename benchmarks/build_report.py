#!/usr/bin/env python3
"""What `edgekit build` produces, measured: MACs against the tables and papers, the transplanted
YAMNet against Google's and Coral's files, and int8 per-channel rebuilds of the legacy uint8
MobileNets (their own weights) against those files: agreement and speed.

    .venv/bin/python benchmarks/build_report.py [--data ../shared/data] [--json PATH] [--rounds 40]

Needs the build extra (TensorFlow). Latency is LiteRT, one thread, interleaved A/B blocks
(A B B A ...) so that drift of the machine falls on both models alike; the ratio is of p50s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgekit.audio.files import read_audio  # noqa: E402
from edgekit.models.architectures import mobilenet_v1_table, table_macs, table_params, yamnet_table  # noqa: E402
from edgekit.models.macs import count_file  # noqa: E402
from edgekit.build import BuildRequest, build  # noqa: E402
from edgekit.build.representative import AUDIO_SUFFIXES, image_crops  # noqa: E402
from edgekit.build.transplant import image_agreement, official_agreement  # noqa: E402
from edgekit.models.model import load_model  # noqa: E402
from edgekit.proof import load_official  # noqa: E402
from edgekit.machine import describe  # noqa: E402
from edgekit.models.runtime import make_interpreter  # noqa: E402

# Published (MACs, params): MobileNets paper Tables 6-7 and the model zoo; MobileNet v2 paper;
# YAMNet's README. The paper's 0.25 figures are rounded to whole millions.
PAPER = {("mobilenet-v1", 1.0, 224): (569e6, 4.2e6), ("mobilenet-v1", 0.5, 160): (77e6, 1.32e6),
         ("mobilenet-v1", 0.25, 128): (14e6, 0.47e6), ("mobilenet-v2", 1.0, 224): (300e6, 3.47e6),
         ("yamnet", 1.0, None): (69.2e6, 3.7e6)}
SPEED_PAIRS = [(("mobilenet-v1", 0.5, 160), "mobilenet_v1_0.5_160_quant.tflite"),
               (("mobilenet-v1", 0.25, 128), "mobilenet_v1_0.25_128_quant.tflite"),
               (("mobilenet-v2", 1.0, 224), "mobilenet_v2_1.0_224_quant.tflite")]


def build_to(folder: Path, req: BuildRequest) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data, arch, _ = build(req)
    kind = req.weights if req.weights in ("random", "official") else "rebuilt"
    path = folder / f"{arch.name}_{kind}.tflite"
    path.write_bytes(data)
    return path


def macs_rows(folder: Path, audio: Path, models: Path) -> list[dict]:
    rows = []
    for key, (paper_macs, paper_params) in PAPER.items():
        family, alpha, res = key
        weights = "official" if family == "yamnet" else "random"
        t = time.perf_counter()
        path = build_to(folder, BuildRequest(family, alpha, res, weights=weights, samples=16,
                                             representative=audio if family == "yamnet" else None,
                                             official_model=str(models / "yamnet.tflite")))
        seconds = time.perf_counter() - t
        body = count_file(path).body
        table = (mobilenet_v1_table(alpha, res) if family == "mobilenet-v1"
                 else yamnet_table(alpha) if family == "yamnet" else None)
        rows.append({"model": path.name, "build_s": round(seconds, 1), "macs": body.macs, "params": body.params,
                     "table_macs": table_macs(table) if table else None,
                     "table_params": table_params(table) if table else None,
                     "paper_macs": paper_macs, "paper_params": paper_params,
                     "macs_vs_paper": round(body.macs / paper_macs - 1, 4),
                     "params_vs_paper": round(body.params / paper_params - 1, 4)})
        print(f"{path.name:34s} {body.macs / 1e6:8.2f} M MACs (paper {paper_macs / 1e6:g}, "
              f"{rows[-1]['macs_vs_paper']:+.1%})  {body.params / 1e6:6.3f} M params (paper "
              f"{paper_params / 1e6:g}, {rows[-1]['params_vs_paper']:+.1%})  table "
              f"{'=' if rows[-1]['table_macs'] in (None, body.macs) else '!='}  build {seconds:.1f} s")
    return rows


def transplant_rows(folder: Path, audio: Path, models: Path) -> dict:
    recordings = {p.name: read_audio(p) for p in sorted(audio.iterdir()) if p.suffix in AUDIO_SUFFIXES}
    official = load_official(models / "yamnet.tflite")
    spectra = load_model(models / "yamnet_spectra_in.tflite")
    held_out = folder / "calibration-speech-applause"
    held_out.mkdir()
    for name in ("speech.wav", "applause.wav"):
        os.symlink((audio / name).resolve(), held_out / name)
    out = {}
    for label, quant, rep in (("int8, calibrated on all recordings", "int8", audio),
                              ("int8-float-io, calibrated on all recordings", "int8-float-io", audio),
                              ("int8, calibrated on speech+applause only", "int8", held_out),
                              ("int8, calibrated on synthetic noise", "int8", None)):
        path = build_to(folder, BuildRequest("yamnet", weights="official", quant=quant, representative=rep,
                                             official_model=str(models / "yamnet.tflite")))
        result = official_agreement(load_model(path), official, spectra, recordings)
        out[label] = {k: {"windows": a.windows, "top1_agree": a.top1_agree, "top1_rate": round(a.top1_rate, 4),
                          "mean_abs_dscore": round(a.mean_abs_delta, 6)} for k, a in result.items()}
        for k, a in result.items():
            print(f"{label:44s} vs {k:25s} top-1 {a.top1_agree}/{a.windows} ({a.top1_rate:.1%})  "
                  f"mean |dscore| {a.mean_abs_delta:.5f}")
    return out


def _interp(path: Path, xnnpack: bool):
    loaded = make_interpreter(path.read_bytes(), "cpu:1", xnnpack=xnnpack, source=str(path))
    it = loaded.interpreter
    d = it.get_input_details()[0]
    info = np.iinfo(d["dtype"]) if np.issubdtype(d["dtype"], np.integer) else None
    x = (np.random.default_rng(0).integers(info.min, info.max + 1, d["shape"]).astype(d["dtype"]) if info
         else np.random.default_rng(0).uniform(-1, 1, d["shape"]).astype(np.float32))
    it.set_tensor(d["index"], x)
    return it, loaded.xnnpack


def ab_latency(a: Path, b: Path, xnnpack: bool, rounds: int, block: int = 25, warmup: int = 30) -> dict:
    ia, xa = _interp(a, xnnpack)
    ib, xb = _interp(b, xnnpack)
    for _ in range(warmup):
        ia.invoke()
        ib.invoke()
    times = {"a": [], "b": []}
    per_round = []
    for r in range(rounds):
        order = (("a", ia), ("b", ib)) if r % 2 == 0 else (("b", ib), ("a", ia))
        medians = {}
        for key, it in order:
            block_ns = []
            for _ in range(block):
                t = time.perf_counter_ns()
                it.invoke()
                block_ns.append(time.perf_counter_ns() - t)
            times[key] += block_ns
            medians[key] = np.median(block_ns)
        per_round.append(medians["a"] / medians["b"])
    p50 = {k: float(np.median(v)) / 1e6 for k, v in times.items()}
    p90 = {k: float(np.percentile(v, 90)) / 1e6 for k, v in times.items()}
    lo, hi = np.percentile(per_round, [10, 90])
    return {"xnnpack": xnnpack, "a_p50_ms": round(p50["a"], 4), "b_p50_ms": round(p50["b"], 4),
            "a_p90_ms": round(p90["a"], 4), "b_p90_ms": round(p90["b"], 4),
            "ratio_p50": round(p50["a"] / p50["b"], 4),
            "ratio_per_round_p10_p90": [round(float(lo), 4), round(float(hi), 4)],
            "a_xnnpack_delegate": xa, "b_xnnpack_delegate": xb, "invokes_each": rounds * block}


def rebuild_rows(folder: Path, models: Path, rounds: int) -> list[dict]:
    """Each legacy uint8 MobileNet rebuilt as int8 per-channel from its own weights (transplanted,
    calibrated on crops of the one real photo in the data), then timed against it and compared
    with it on other crops of that photo."""
    pictures = folder / "pictures"
    pictures.mkdir()
    os.symlink((models / "grace_hopper.bmp").resolve(), pictures / "grace_hopper.bmp")
    rows = []
    for (family, alpha, res), legacy in SPEED_PAIRS:
        theirs = models / legacy
        ours = build_to(folder, BuildRequest(family, alpha, res, weights=str(theirs), representative=pictures))
        crops = image_crops(pictures, res, 200, seed=1)  # seed 0 drew the calibration crops
        agree = image_agreement(load_model(ours), load_model(theirs), crops)
        float_agree = _float_transplant_agreement(family, alpha, res, theirs, crops)
        print(f"{ours.name:34s} vs {legacy:36s} top-1 on {agree.windows} crops: int8 rebuild "
              f"{agree.top1_agree}, its float transplant {float_agree}; mean |dscore| {agree.mean_abs_delta:.5f}")
        for xnnpack in (True, False):
            r = ab_latency(ours, theirs, xnnpack, rounds)
            rows.append({"int8": ours.name, "uint8": legacy, "crops": agree.windows,
                         "top1_agree_int8": agree.top1_agree, "top1_agree_float": float_agree,
                         "mean_abs_dscore": round(agree.mean_abs_delta, 6), **r})
            print(f"{'':34s} XNNPACK {'on ' if xnnpack else 'off'}: p50 {r['a_p50_ms']:.3f} ms vs "
                  f"{r['b_p50_ms']:.3f} ms, int8/uint8 = {r['ratio_p50']:.3f} "
                  f"(rounds p10-p90 {r['ratio_per_round_p10_p90']})")
    return rows


def _float_transplant_agreement(family: str, alpha: float, res: int, legacy: Path, crops) -> int:
    """Top-1 agreement of the float Keras model holding the legacy file's weights: what the
    transplant keeps before any re-quantisation."""
    from edgekit.build.architectures import keras_model
    from edgekit.models.architectures import arch_for
    from edgekit.build.transplant import transplant_tflite

    model = keras_model(arch_for(family, alpha, res))
    transplant_tflite(model, legacy)
    ref = load_model(legacy)
    ours = model.predict(crops, batch_size=1, verbose=0)
    return int(sum(ref.run(x).argmax() == y.argmax() for x, y in zip(crops, ours)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / f"build-{platform.machine()}-{time.strftime('%Y-%m-%d')}.json")
    ap.add_argument("--rounds", type=int, default=40, help="A/B rounds per latency pair (default 40)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["macs", "transplant", "rebuild"])
    args = ap.parse_args()
    models, audio = args.data / "models", args.data / "audio"
    record = {"machine": describe(), "date": time.strftime("%Y-%m-%d")}
    from edgekit.build import require_tensorflow

    tf, keras = require_tensorflow()
    record["tensorflow"], record["keras"] = tf.__version__, keras.__version__
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if "macs" not in args.skip:
            record["macs"] = macs_rows(folder, audio, models)
        if "transplant" not in args.skip:
            record["transplant"] = transplant_rows(folder, audio, models)
        if "speed" not in args.skip:
            record["rebuild"] = rebuild_rows(folder, models, args.rounds)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
