#!/usr/bin/env python3
"""Compare two check.py documents (the host and the emulated aarch64 chroot) and write a result.

    python benchmarks/arm64/compare.py host.json arm64.json [--dumps HOST_DIR ARM_DIR]
        [--emulator TEXT] [--chroot TEXT] [--install TEXT] [--strict] [--out FILE]

Two views of every clip:

- **same input**: both machines fed the very same int16 samples (where the chroot decoded or
  resampled a file differently, check.py --reference-pcm re-ran that clip on the host's
  samples). This isolates the front end and the models from the audio decoder/resampler.
- **pipeline**: each machine from its own ``read_audio`` (what a device would compute).

Required (exit status 1 when any fails): the same edgekit source and model files on both sides;
identical front-end integer tables and golden codes (yamnet_test_audio.bin); **bit-exact
fixed-point codes on the same input, for every clip**; and top-1 labels per window (the
pipeline, XNNPACK, for yamnet_spectra_in.tflite fed the fixed codes and yamnet.tflite end to end)
that are identical or, where not, differ only in near-ties: windows where on one of the machines
the two labels' scores lie within ``--tie-tolerance`` (one int8 output step, 1/256) of each
other. int8 kernels differ by a step here and there between the x86 and the ARM builds, and a
tie goes to the lower class index. ``--strict`` requires identical labels. The agreement
fraction per clip is reported either way, and so is everything else (decoded samples, PCM, the
float reference's codes, raw scores, built-in kernels), with the size of each difference when
the --dumps of both runs are given.
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
VERDICT_MODELS = ("body", "yamnet")  # the deployed configuration: XNNPACK


def _load(dumps: tuple[Path, Path] | None, clip: str):
    if dumps is None:
        return None, None
    files = [d / f"{clip}.npz" for d in dumps]
    if not all(f.is_file() for f in files):
        return None, None
    return np.load(files[0]), np.load(files[1])


def _diff(a: np.ndarray, b: np.ndarray) -> dict:
    if a.shape != b.shape:
        return {"shape_host": list(a.shape), "shape_arm64": list(b.shape)}
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
        item = {"window": w, "host": x, "arm64": y}
        if h_scores is not None and a_scores is not None:
            i, j = int(h_scores[w].argmax()), int(a_scores[w].argmax())
            item["host_scores"] = [round(float(h_scores[w, i]), 6), round(float(h_scores[w, j]), 6)]
            item["arm64_scores"] = [round(float(a_scores[w, i]), 6), round(float(a_scores[w, j]), 6)]
            gap = min(abs(h_scores[w, i] - h_scores[w, j]), abs(a_scores[w, i] - a_scores[w, j]))
            item["near_tie"] = bool(gap <= tie)
        else:
            item["near_tie"] = None  # unknown without the arrays
        off.append(item)
    if len(h_labels) != len(a_labels):
        off.append({"window": None, "host": f"{len(h_labels)} windows", "arm64": f"{len(a_labels)} windows",
                    "near_tie": False})
    if off:
        out["disagreements"] = off
    out["all_near_ties"] = all(d["near_tie"] for d in off)
    return out


def compare_clip(name: str, h: dict, a: dict, hd, ad, tie: float) -> dict:
    # The arm64 side on the host's samples: its reference_pcm re-run, or its own row if the
    # samples were identical anyway.
    a_same = a.get("reference_pcm", a)
    pre = "ref_" if "reference_pcm" in a else ""
    row = {
        "clip": name,
        "windows": h["windows"],
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
        same["float_codes_diff"] = _diff(hd["float_codes"], ad[pre + "float_codes"])
    for model, (key, sha, array) in SCORES.items():
        if key not in h or key not in a_same:
            continue
        hs = hd[array] if hd is not None else None
        entry = {"scores_identical": h[sha] == a_same[sha]}
        entry["top1"] = _top1(h[key], a_same[key], hs, ad[pre + array] if ad is not None else None, tie)
        if hd is not None:
            entry["scores_diff"] = _diff(hs, ad[pre + array])
        same[model] = entry
        pipe[model] = {"top1": _top1(h[key], a[key], hs, ad[array] if ad is not None else None, tie)}
    row["same_input"], row["pipeline"] = same, pipe
    return row


def compare(host: dict, arm: dict, dumps: tuple[Path, Path] | None = None, tie: float = TIE_TOLERANCE,
            strict: bool = False) -> dict:
    hf, af = host["frontend"], arm["frontend"]
    clips = []
    for name in sorted(set(host["clips"]) | set(arm["clips"])):
        h, a = host["clips"].get(name), arm["clips"].get(name)
        if h is None or a is None:
            clips.append({"clip": name, "missing_on": "host" if h is None else "arm64"})
            continue
        hd, ad = _load(dumps, name)
        clips.append(compare_clip(name, h, a, hd, ad, tie))
    ok = [c for c in clips if "missing_on" not in c]

    def every(pred) -> bool:
        return len(ok) == len(clips) and all(pred(c) for c in ok)

    def rate(view: str, model: str) -> float:
        agree = sum(c[view][model]["top1"]["agree"] for c in ok if model in c[view])
        total = sum(c[view][model]["top1"]["windows"] for c in ok if model in c[view])
        return round(agree / total, 6) if total else float("nan")

    checks = {
        "same_edgekit_source": host["environment"]["edgekit"]["source_sha256"]
        == arm["environment"]["edgekit"]["source_sha256"],
        "same_model_files": all(v["file_sha256"] == arm["models"].get(k, {}).get("file_sha256")
                                for k, v in host["models"].items()),
        "frontend_constants_identical": hf["constants_sha256"] == af["constants_sha256"]
        and hf["input_quant"] == af["input_quant"],
        "golden_codes_identical": "golden" in hf and hf.get("golden") == af.get("golden"),
        "same_input_available": every(lambda c: c["same_input_available"]),
        "fixed_codes_bit_exact_same_input": every(lambda c: c["same_input_available"]
                                                  and c["same_input"]["fixed_codes_identical"]),
        "top1_identical": every(lambda c: all(c["pipeline"][m]["top1"]["agreement"] == 1.0 for m in VERDICT_MODELS)),
        "top1_differences_are_near_ties": every(lambda c: all(c["pipeline"][m]["top1"]["all_near_ties"]
                                                              for m in VERDICT_MODELS)),
        # reported only
        "decoded_identical": every(lambda c: c["decoded_identical"]),
        "pcm_identical": every(lambda c: c["pcm_identical"]),
        "fixed_codes_identical_pipeline": every(lambda c: c["pipeline"]["fixed_codes_identical"]),
        "float_codes_identical_same_input": every(lambda c: c["same_input"]["float_codes_identical"]),
        "float_codes_identical_pipeline": every(lambda c: c["pipeline"]["float_codes_identical"]),
        "top1_identical_same_input": {m: every(lambda c, m=m: c["same_input"][m]["top1"]["agreement"] == 1.0)
                                      for m in SCORES},
        "scores_identical_same_input": {m: every(lambda c, m=m: c["same_input"][m]["scores_identical"])
                                        for m in SCORES},
        "xnnpack_host": {k: v["xnnpack"] for k, v in host["models"].items()},
        "xnnpack_arm64": {k: v["xnnpack"] for k, v in arm["models"].items()},
    }
    required = ["same_edgekit_source", "same_model_files", "frontend_constants_identical",
                "golden_codes_identical", "fixed_codes_bit_exact_same_input",
                "top1_identical" if strict else "top1_differences_are_near_ties"]
    return {
        "label": LABEL,
        "what": "edgekit correctness on aarch64 (emulated) vs the host, from benchmarks/arm64/run.sh",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "passed": all(checks[k] for k in required),
        "required": required,
        "tie_tolerance": tie,
        "top1_agreement": {view: {m: rate(view, m) for m in SCORES} for view in ("pipeline", "same_input")},
        "checks": checks,
        "host": host["environment"],
        "arm64": arm["environment"],
        "frontend": {"input_quant": hf["input_quant"],
                     "constants_sha256": {"host": hf["constants_sha256"], "arm64": af["constants_sha256"]},
                     "golden_codes_sha256": {"host": (hf.get("golden") or {}).get("codes_sha256"),
                                             "arm64": (af.get("golden") or {}).get("codes_sha256")}},
        "clips": clips,
    }


def summary(result: dict) -> str:
    c = result["checks"]
    yes = {True: "yes", False: "NO"}
    eq = {True: "=", False: "≠"}
    arm = result["arm64"]
    lines = [
        result["label"],
        f"{result['host']['machine']} host vs {arm['machine']}: {arm['runtime']['name']} {arm['runtime']['version']}, "
        f"numpy {arm['numpy']}, python {arm['python']}",
        f"same edgekit source {yes[c['same_edgekit_source']]}, same models {yes[c['same_model_files']]}, "
        f"front-end tables {yes[c['frontend_constants_identical']]}, golden codes {yes[c['golden_codes_identical']]}",
        "",
        "                       | same input (host's samples)              | pipeline (own read_audio)",
        f"{'clip':<17}{'win':>4} {'pcm':>3} | {'fixed':>5} {'float':>5} {'body':>6} {'yamnet':>6} {'b/y builtin':>11} "
        f"| {'fixed':>5} {'body':>6} {'yamnet':>6}",
    ]
    for r in result["clips"]:
        if "missing_on" in r:
            lines.append(f"{r['clip']:<17} missing on {r['missing_on']}")
            continue
        s, p = r["same_input"], r["pipeline"]
        t = lambda view, m: f"{view[m]['top1']['agreement']:.3f}" if m in view else "-"  # noqa: E731
        lines.append(
            f"{r['clip']:<17}{r['windows']:>4} {eq[r['pcm_identical']]:>3} | {eq[s['fixed_codes_identical']]:>5} "
            f"{eq[s['float_codes_identical']]:>5} {t(s, 'body'):>6} {t(s, 'yamnet'):>6} "
            f"{t(s, 'body_builtin') + '/' + t(s, 'yamnet_builtin'):>11} | {eq[p['fixed_codes_identical']]:>5} "
            f"{t(p, 'body'):>6} {t(p, 'yamnet'):>6}"
        )
    agree = result["top1_agreement"]["pipeline"]
    lines += [
        "(=/≠: identical bytes or not; numbers: fraction of windows with the same top-1 label)",
        f"fixed-point codes bit-exact on the same input: {yes[c['fixed_codes_bit_exact_same_input']]}; "
        f"decoder output identical: {yes[c['decoded_identical']]}; read_audio PCM identical: {yes[c['pcm_identical']]}",
        f"top-1 (pipeline, XNNPACK): body {agree['body']:.3f}, yamnet {agree['yamnet']:.3f}; identical "
        f"{yes[c['top1_identical']]}, differences only near-ties {yes[c['top1_differences_are_near_ties']]}",
        f"required: {', '.join(result['required'])} -> {'PASSED' if result['passed'] else 'FAILED'}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("host", type=Path)
    ap.add_argument("arm64", type=Path)
    ap.add_argument("--dumps", nargs=2, type=Path, metavar=("HOST_DIR", "ARM_DIR"),
                    help="the --dump folders of both runs: sizes of differences, near-tie test")
    ap.add_argument("--tie-tolerance", type=float, default=TIE_TOLERANCE)
    ap.add_argument("--strict", action="store_true", help="require identical top-1 labels")
    ap.add_argument("--emulator", help="e.g. the qemu-aarch64-static version line")
    ap.add_argument("--chroot", help="what the aarch64 userland was")
    ap.add_argument("--install", help="how edgekit got into the chroot")
    ap.add_argument("--out", type=Path, help="write the result JSON here")
    args = ap.parse_args(argv)
    host, arm = (json.loads(p.read_text()) for p in (args.host, args.arm64))
    result = compare(host, arm, tuple(args.dumps) if args.dumps else None, args.tie_tolerance, args.strict)
    for key in ("emulator", "chroot", "install"):
        if getattr(args, key):
            result[key] = getattr(args, key)
    print(summary(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
