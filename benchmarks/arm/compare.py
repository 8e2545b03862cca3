#!/usr/bin/env python3
"""Compare two check.py documents (the host and an emulated Pi userland) and write a result.

    python benchmarks/arm/compare.py host.json arm.json [--dumps HOST_DIR ARM_DIR]
        [--expect-xnnpack yes|no|any] [--emulator TEXT] [--chroot TEXT] [--install TEXT]
        [--seconds N] [--strict] [--out FILE]

Two views of every clip:

- **same input**: both machines fed the very same int16 samples (where the chroot decoded or
  resampled a file differently, or had no resampler at all, check.py --reference-pcm ran that
  clip on the host's samples). This isolates the front end and the models from the audio
  decoder/resampler.
- **pipeline**: each machine from its own ``read_audio`` (what a device would compute); on
  armv7l without soxr the same as the same-input view, and said so (``arm_pcm_source``).

Which kernels ran on each side comes from the documents (a DELEGATE node in the execution plan:
XNNPACK; none: the runtime's built-in kernels). Scores are compared per **kernel pairing**
(``pairings``: e.g. "x86_64 XNNPACK vs aarch64 XNNPACK", "x86_64 built-in vs armv7l built-in"):
cells identical of all, max |delta|, top-1 agreement.

Required (exit status 1 when any fails): the same edgekit source and model files on both sides;
identical front-end integer tables and golden codes (yamnet_test_audio.bin); **bit-exact
fixed-point codes on the same input, for every clip**; XNNPACK applied where ``--expect-xnnpack
yes`` says it must be (on both sides; the check then fails when cpuinfo could not read the CPU
and the runtime dropped XNNPACK) or absent where ``no`` says so; **identical scores in every
pairing where both sides ran XNNPACK** (the same kernels: integer arithmetic, specified to the
bit); and top-1 labels per window (the pipeline, default kernels) identical or, where not,
differing only in near-ties: windows where on one of the machines the two labels' scores lie
within ``--tie-tolerance`` (one int8 output step, 1/256) of each other. ``--strict`` requires
identical labels. Pairings of different kernels (built-in kernels are each architecture's own
code) are reported with their differences, not required to be identical.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np

LABEL = "qemu-user emulation, timings not meaningful"
TIE_TOLERANCE = 1 / 256 + 1e-6  # one step of a [0, 1] int8 output (scale 1/256)
# (check.py top-1 key, its scores' sha256 key, dump array name) per model/kernel combination.
SCORES = {
    "body": ("top1_body", "body_scores_sha256", "body_scores"),
    "yamnet": ("top1_yamnet", "yamnet_scores_sha256", "e2e_scores"),
    "body_builtin": ("top1_body_builtin", "body_scores_builtin_sha256", "body_scores_builtin"),
    "yamnet_builtin": ("top1_yamnet_builtin", "yamnet_scores_builtin_sha256", "e2e_scores_builtin"),
}
# check.py's model names per key.
MODEL_NAMES = {"body": "yamnet_spectra_in.tflite", "yamnet": "yamnet.tflite",
               "body_builtin": "yamnet_spectra_in.tflite (builtin kernels)",
               "yamnet_builtin": "yamnet.tflite (builtin kernels)"}
VERDICT_MODELS = ("body", "yamnet")  # the deployed configuration: the default kernels


def kernels_of(doc: dict, key: str) -> str | None:
    info = doc["models"].get(MODEL_NAMES[key])
    if info is None:
        return None
    return "XNNPACK" if info["xnnpack"] else "built-in"


def _load(dumps: tuple[Path, Path] | None, clip: str):
    if dumps is None:
        return None, None
    files = [d / f"{clip}.npz" for d in dumps]
    if not all(f.is_file() for f in files):
        return None, None
    return np.load(files[0]), np.load(files[1])


def _diff(a: np.ndarray, b: np.ndarray) -> dict:
    if a.shape != b.shape:
        return {"shape_host": list(a.shape), "shape_arm": list(b.shape)}
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    return {"differing": int(np.count_nonzero(d)), "of": int(d.size), "max_abs": round(float(d.max()), 6) if d.size else 0.0}


def _top1(h_labels, a_labels, h_scores=None, a_scores=None, tie=TIE_TOLERANCE) -> dict:
    n = max(len(h_labels), len(a_labels))
    same = sum(x == y for x, y in zip(h_labels, a_labels))
    out = {"agreement": round(same / n, 6) if n else 1.0, "agree": same, "windows": n}
    off = []
    for w, (x, y) in enumerate(zip(h_labels, a_labels)):
        if x == y:
            continue
        item = {"window": w, "host": x, "arm": y}
        if h_scores is not None and a_scores is not None:
            i, j = int(h_scores[w].argmax()), int(a_scores[w].argmax())
            item["host_scores"] = [round(float(h_scores[w, i]), 6), round(float(h_scores[w, j]), 6)]
            item["arm_scores"] = [round(float(a_scores[w, i]), 6), round(float(a_scores[w, j]), 6)]
            gap = min(abs(h_scores[w, i] - h_scores[w, j]), abs(a_scores[w, i] - a_scores[w, j]))
            item["near_tie"] = bool(gap <= tie)
        else:
            item["near_tie"] = None  # unknown without the arrays
        off.append(item)
    if len(h_labels) != len(a_labels):
        off.append({"window": None, "host": f"{len(h_labels)} windows", "arm": f"{len(a_labels)} windows",
                    "near_tie": False})
    if off:
        out["disagreements"] = off
    out["all_near_ties"] = all(d["near_tie"] for d in off)
    return out


def compare_clip(name: str, h: dict, a: dict, hd, ad, tie: float, kernels: dict) -> dict:
    # The ARM side on the host's samples: its reference_pcm re-run, or its own row if the
    # samples were identical anyway.
    a_same = a.get("reference_pcm", a)
    pre = "ref_" if "reference_pcm" in a else ""
    row = {
        "clip": name,
        "windows": h["windows"],
        # "reference": the ARM side had no resampler (armv7l without soxr) and ran on the host's
        # samples: its pipeline view is the same-input view.
        "arm_pcm_source": a.get("pcm_source", "read_audio"),
        "decoded_identical": h.get("decoded_sha256") == a.get("decoded_sha256"),
        "pcm_identical": h["pcm_sha256"] == a["pcm_sha256"],
        "same_input_available": a_same.get("pcm_sha256", a["pcm_sha256"]) == h["pcm_sha256"],
    }
    same = {
        "fixed_codes_identical": h["fixed_codes_sha256"] == a_same["fixed_codes_sha256"],
        "float_codes_identical": h["float_codes_sha256"] == a_same["float_codes_sha256"],
    }
    pipe = {
        "fixed_codes_identical": h["fixed_codes_sha256"] == a["fixed_codes_sha256"],
        "float_codes_identical": h["float_codes_sha256"] == a["float_codes_sha256"],
    }
    if hd is not None:
        row["pcm_diff"] = _diff(hd["pcm"], ad["pcm"])
        pipe["fixed_codes_diff"] = _diff(hd["fixed_codes"], ad["fixed_codes"])
        pipe["float_codes_diff"] = _diff(hd["float_codes"], ad["float_codes"])
        same["fixed_codes_diff"] = _diff(hd["fixed_codes"], ad[pre + "fixed_codes"])
        same["float_codes_diff"] = _diff(hd["float_codes"], ad[pre + "float_codes"])
    for model, (key, sha, array) in SCORES.items():
        if key not in h or key not in a_same:
            continue
        hs = hd[array] if hd is not None else None
        entry = {"kernels": kernels[model], "scores_identical": h[sha] == a_same[sha]}
        entry["top1"] = _top1(h[key], a_same[key], hs, ad[pre + array] if ad is not None else None, tie)
        if hd is not None:
            entry["scores_diff"] = _diff(hs, ad[pre + array])
        same[model] = entry
        pipe[model] = {"top1": _top1(h[key], a[key], hs, ad[array] if ad is not None else None, tie)}
    row["same_input"], row["pipeline"] = same, pipe
    return row


def compare(host: dict, arm: dict, dumps: tuple[Path, Path] | None = None, tie: float = TIE_TOLERANCE,
            strict: bool = False, expect_xnnpack: str = "any") -> dict:
    hf, af = host["frontend"], arm["frontend"]
    hm, am = host["environment"]["machine"], arm["environment"]["machine"]
    kernels = {m: f"{hm} {kernels_of(host, m)} vs {am} {kernels_of(arm, m)}" for m in SCORES
               if kernels_of(host, m) and kernels_of(arm, m)}
    clips = []
    for name in sorted(set(host["clips"]) | set(arm["clips"])):
        h, a = host["clips"].get(name), arm["clips"].get(name)
        if h is None or a is None:
            clips.append({"clip": name, "missing_on": "host" if h is None else "arm"})
            continue
        hd, ad = _load(dumps, name)
        clips.append(compare_clip(name, h, a, hd, ad, tie, kernels))
    ok = [c for c in clips if "missing_on" not in c]
    scored = [m for m in SCORES if ok and all(m in c["same_input"] for c in ok)]

    def every(pred) -> bool:
        return len(ok) == len(clips) and all(pred(c) for c in ok)

    def rate(view: str, model: str) -> float:
        agree = sum(c[view][model]["top1"]["agree"] for c in ok if model in c[view])
        total = sum(c[view][model]["top1"]["windows"] for c in ok if model in c[view])
        return round(agree / total, 6) if total else float("nan")

    # Per kernel pairing and model, on the same input: how many score cells are identical, how far
    # apart the others are, how many windows keep their top-1 label.
    pairings: dict[str, dict] = {}
    for m in scored:
        entries = [c["same_input"][m] for c in ok]
        diffs = [e.get("scores_diff") for e in entries]
        model = MODEL_NAMES[m.removesuffix("_builtin")]
        item = {
            "scores_identical_clips": sum(e["scores_identical"] for e in entries), "clips": len(entries),
            "top1_agree": sum(e["top1"]["agree"] for e in entries),
            "windows": sum(e["top1"]["windows"] for e in entries),
        }
        if all(d is not None and "of" in d for d in diffs):
            item["cells_identical"] = sum(d["of"] - d["differing"] for d in diffs)
            item["cells"] = sum(d["of"] for d in diffs)
            item["max_abs_diff"] = max(d["max_abs"] for d in diffs)
        pairings.setdefault(kernels[m], {})[model] = item

    hx = {k: v["xnnpack"] for k, v in host["models"].items() if "builtin" not in k}
    ax = {k: v["xnnpack"] for k, v in arm["models"].items() if "builtin" not in k}
    if expect_xnnpack == "yes":
        kernels_ok = all(hx.values()) and all(ax.values()) and bool(ax)
    elif expect_xnnpack == "no":
        kernels_ok = not any(ax.values())
    else:
        kernels_ok = True
    same_kernel_models = [m for m in scored if kernels[m].split(" vs ")[0].split(" ", 1)[1] == "XNNPACK"
                          and kernels[m].split(" vs ")[1].split(" ", 1)[1] == "XNNPACK"]
    checks = {
        "same_edgekit_source": host["environment"]["edgekit"]["source_sha256"]
        == arm["environment"]["edgekit"]["source_sha256"],
        "same_model_files": all(v["file_sha256"] == arm["models"].get(k, {}).get("file_sha256")
                                for k, v in host["models"].items() if k in arm["models"]),
        "frontend_constants_identical": hf["constants_sha256"] == af["constants_sha256"]
        and hf["input_quant"] == af["input_quant"],
        "golden_codes_identical": "golden" in hf and hf.get("golden") == af.get("golden"),
        "same_input_available": every(lambda c: c["same_input_available"]),
        "fixed_codes_bit_exact_same_input": every(lambda c: c["same_input_available"]
                                                  and c["same_input"]["fixed_codes_identical"]),
        "kernels_as_expected": kernels_ok,
        "scores_identical_where_both_xnnpack": every(lambda c: all(c["same_input"][m]["scores_identical"]
                                                                   for m in same_kernel_models)),
        "top1_identical": every(lambda c: all(c["pipeline"][m]["top1"]["agreement"] == 1.0
                                              for m in VERDICT_MODELS if m in c["pipeline"])),
        "top1_differences_are_near_ties": every(lambda c: all(c["pipeline"][m]["top1"]["all_near_ties"]
                                                              for m in VERDICT_MODELS if m in c["pipeline"])),
        # reported only
        "pipeline_run_on_arm": every(lambda c: c["arm_pcm_source"] == "read_audio"),
        "decoded_identical": every(lambda c: c["decoded_identical"]),
        "pcm_identical": every(lambda c: c["pcm_identical"]),
        "fixed_codes_identical_pipeline": every(lambda c: c["pipeline"]["fixed_codes_identical"]),
        "float_codes_identical_same_input": every(lambda c: c["same_input"]["float_codes_identical"]),
        "float_codes_identical_pipeline": every(lambda c: c["pipeline"]["float_codes_identical"]),
        "top1_identical_same_input": {m: every(lambda c, m=m: c["same_input"][m]["top1"]["agreement"] == 1.0)
                                      for m in scored},
        "scores_identical_same_input": {m: every(lambda c, m=m: c["same_input"][m]["scores_identical"])
                                        for m in scored},
        "xnnpack_host": {k: v["xnnpack"] for k, v in host["models"].items()},
        "xnnpack_arm": {k: v["xnnpack"] for k, v in arm["models"].items()},
    }
    required = ["same_edgekit_source", "same_model_files", "frontend_constants_identical",
                "golden_codes_identical", "fixed_codes_bit_exact_same_input", "kernels_as_expected"]
    if scored:
        required += ["scores_identical_where_both_xnnpack",
                     "top1_identical" if strict else "top1_differences_are_near_ties"]
    codes_equal, codes_cells = 0, 0
    for c in ok:  # cells from the dumps; without them, whole clips (96 x 64 codes per window)
        d = c["same_input"].get("fixed_codes_diff")
        if d is not None and "of" in d:
            codes_equal, codes_cells = codes_equal + d["of"] - d["differing"], codes_cells + d["of"]
        else:
            cells = c["windows"] * 96 * 64
            codes_equal += cells if c["same_input_available"] and c["same_input"]["fixed_codes_identical"] else 0
            codes_cells += cells
    return {
        "label": LABEL,
        "what": f"edgekit correctness on {am} (emulated) vs the host, from benchmarks/arm/run.sh",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "passed": all(checks[k] for k in required),
        "required": required,
        "frontend_only": bool(arm.get("frontend_only") or host.get("frontend_only")),
        "expect_xnnpack": expect_xnnpack,
        "tie_tolerance": tie,
        "codes_equal_same_input": {"cells": codes_equal, "of": codes_cells},
        "pairings": pairings,
        "top1_agreement": {view: {m: rate(view, m) for m in scored} for view in ("pipeline", "same_input")},
        "checks": checks,
        "runtime_log": {"host": host.get("runtime_log"), "arm": arm.get("runtime_log")},
        "host": host["environment"],
        "arm": arm["environment"],
        "frontend": {"input_quant": hf["input_quant"],
                     "constants_sha256": {"host": hf["constants_sha256"], "arm": af["constants_sha256"]},
                     "golden_codes_sha256": {"host": (hf.get("golden") or {}).get("codes_sha256"),
                                             "arm": (af.get("golden") or {}).get("codes_sha256")}},
        "clips": clips,
    }


def summary(result: dict) -> str:
    c = result["checks"]
    yes = {True: "yes", False: "NO"}
    eq = {True: "=", False: "≠"}
    arm = result["arm"]
    codes = result["codes_equal_same_input"]
    lines = [
        result["label"],
        f"{result['host']['machine']} host vs {arm['machine']}: {arm['runtime']['name']} {arm['runtime']['version']}, "
        f"numpy {arm['numpy']}, python {arm['python']}, soxr {arm['soxr'] or 'absent (host samples used)'}",
        f"same edgekit source {yes[c['same_edgekit_source']]}, same models {yes[c['same_model_files']]}, "
        f"front-end tables {yes[c['frontend_constants_identical']]}, golden codes {yes[c['golden_codes_identical']]}",
        f"XNNPACK host {c['xnnpack_host']}",
        f"XNNPACK {arm['machine']} {c['xnnpack_arm']} (expected: {result['expect_xnnpack']}) -> "
        f"{'as expected' if c['kernels_as_expected'] else 'NOT AS EXPECTED'}",
        f"runtime log on {arm['machine']}: {' | '.join(result['runtime_log']['arm'] or ['(nothing)'])}",
        "",
        f"{'clip':<17}{'win':>4} {'pcm':>3} | same input: {'fixed':>5} {'float':>5} | pipeline: {'fixed':>5}",
    ]
    for r in result["clips"]:
        if "missing_on" in r:
            lines.append(f"{r['clip']:<17} missing on {r['missing_on']}")
            continue
        s, p = r["same_input"], r["pipeline"]
        pcm = eq[r["pcm_identical"]] if r["arm_pcm_source"] == "read_audio" else "host"
        lines.append(f"{r['clip']:<17}{r['windows']:>4} {pcm:>3} | {'':12}{eq[s['fixed_codes_identical']]:>5} "
                     f"{eq[s['float_codes_identical']]:>5} | {'':10}{eq[p['fixed_codes_identical']]:>5}")
    lines.append(f"fixed-point codes on the same input: {codes['cells']:,} of {codes['of']:,} cells equal")
    for pairing, models in result["pairings"].items():
        for model, it in models.items():
            cells = (f"{it['cells_identical']:,} of {it['cells']:,} score cells identical, max |Δ| {it['max_abs_diff']:g}"
                     if "cells" in it else f"{it['scores_identical_clips']} of {it['clips']} clips identical")
            lines.append(f"{pairing}, {model}: {cells}; top-1 {it['top1_agree']}/{it['windows']}")
    lines += [
        "(=/≠: identical bytes or not; pcm 'host': no resampler on the ARM side, the host's samples were used)",
        f"required: {', '.join(result['required'])} -> {'PASSED' if result['passed'] else 'FAILED'}",
    ]
    if not result["passed"]:
        lines.append("failed: " + ", ".join(k for k in result["required"] if not c[k]))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("host", type=Path)
    ap.add_argument("arm", type=Path)
    ap.add_argument("--dumps", nargs=2, type=Path, metavar=("HOST_DIR", "ARM_DIR"),
                    help="the --dump folders of both runs: sizes of differences, near-tie test")
    ap.add_argument("--tie-tolerance", type=float, default=TIE_TOLERANCE)
    ap.add_argument("--strict", action="store_true", help="require identical top-1 labels")
    ap.add_argument("--expect-xnnpack", choices=("yes", "no", "any"), default="any",
                    help="yes: fail unless XNNPACK ran on both sides; no: fail if it ran on the ARM side")
    ap.add_argument("--emulator", help="e.g. the qemu-aarch64-static version line")
    ap.add_argument("--chroot", help="what the ARM userland was")
    ap.add_argument("--install", help="how edgekit got into the chroot")
    ap.add_argument("--seconds", type=int, help="run.sh's wall time for the whole check (setup included)")
    ap.add_argument("--out", type=Path, help="write the result JSON here")
    args = ap.parse_args(argv)
    host, arm = (json.loads(p.read_text()) for p in (args.host, args.arm))
    result = compare(host, arm, tuple(args.dumps) if args.dumps else None, args.tie_tolerance, args.strict,
                     args.expect_xnnpack)
    for key in ("emulator", "chroot", "install"):
        if getattr(args, key):
            result[key] = getattr(args, key)
    if args.seconds is not None:
        result["wall_seconds"] = args.seconds
    print(summary(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
