#!/usr/bin/env python3
"""The log-mel front end's cost against the one inside yamnet.tflite, before and after, in one run.

    python benchmarks/frontend_speed.py [--rounds 300] [--before 958a339] [--blas-threads 1]
                                        [--data ../shared/data] [--json FILE] [--markdown FILE]

Rows (one process, interleaved: every round calls every case once, in a shuffled order; medians):

- **in-graph front end**: ``yamnet.tflite`` (waveform in) minus ``yamnet_spectra_in.tflite``
  (log-mel in, the same int8 body), both loaded with ``edgekit.models.model.load_model(path, "cpu:1")``:
  the difference of their median ``invoke`` times. It recomputes the whole 0.975 s window on every
  call, so its cost per streaming hop is its cost per window.
- **float** / **fixed point**, per patch: ``reference.waveform_to_patches`` and
  ``FixedFrontend.waveform_to_codes`` on one 0.975 s window (15,600 int16 samples: framing,
  96 frames, the patch).
- the same per **0.1 s streaming hop**: ``StreamingFrontend.float`` / ``.fixed`` with a 0.1 s
  hop, fed 1,600-sample blocks; each push makes 10 frames and one patch.
- **before**: the same calls on the front end of commit ``--before`` (default: the commit this
  work started from), read with ``git show`` into a throw-away package at run time.

Input: a window of ``speech.wav`` (the loudest) from the shared data. BLAS runs on one thread
(``OPENBLAS_NUM_THREADS`` etc., set before numpy loads) as in a daemon that runs the model on its
own threads, unless ``--blas-threads`` says otherwise.
"""

from __future__ import annotations

import argparse
import os
import sys


def _blas_threads_from_argv() -> str:
    for i, arg in enumerate(sys.argv):
        if arg == "--blas-threads" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if arg.startswith("--blas-threads="):
            return arg.split("=", 1)[1]
    return "1"


_THREADS = _blas_threads_from_argv()
if _THREADS != "default":
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = _THREADS

import importlib  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from edgekit.audio.files import read_audio  # noqa: E402
from edgekit.frontend import reference  # noqa: E402
from edgekit.frontend.fixed import FixedFrontend  # noqa: E402
from edgekit.frontend.stream import StreamingFrontend  # noqa: E402
from edgekit.models.model import load_model  # noqa: E402
from edgekit.params import FeatureParams  # noqa: E402

BEFORE = "958a339"  # the front end before the exact-BLAS rewrite (radix-2 int64 FFT, einsum mel)
OLD_FILES = ("edgekit/errors.py", "edgekit/params.py", "edgekit/frontend/__init__.py",
             "edgekit/frontend/reference.py", "edgekit/frontend/fixed.py", "edgekit/frontend/stream.py")
GOALS = {"float_vs_graph_patch": 2.0, "fixed_over_float_patch": 1.5, "float_vs_graph_hop": 10.0,
         "fixed_vs_graph_hop": 6.0}


def load_before(rev: str, into: Path):
    """The front end at ``rev`` as the package ``edgekit_before`` (its own params and errors)."""
    pkg = into / "edgekit_before"
    for name in OLD_FILES:
        text = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:{name}"], check=True,
                              capture_output=True, text=True).stdout
        target = pkg / Path(name).relative_to("edgekit")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    (pkg / "__init__.py").write_text("")
    sys.path.insert(0, str(into))
    return (importlib.import_module("edgekit_before.frontend.reference"),
            importlib.import_module("edgekit_before.frontend.fixed"),
            importlib.import_module("edgekit_before.frontend.stream"))


def loudest_window(pcm: np.ndarray, params: FeatureParams) -> np.ndarray:
    n, hop = params.patch_samples, params.patch_hop_samples
    starts = range(0, max(len(pcm) - n, 0) + 1, hop)
    best = max(starts, key=lambda s: float(np.mean(pcm[s:s + n].astype(np.float64) ** 2)))
    return np.ascontiguousarray(pcm[best:best + n])


class Hops:
    """A stream fed 1,600-sample blocks forever (the clip over and over); one call = one push."""

    def __init__(self, stream, pcm: np.ndarray, block: int):
        self.stream, self.block = stream, block
        reps = -(-40 * block // len(pcm)) + 1
        self.pcm = np.tile(pcm, reps)
        self.pos = 0
        for _ in range(20):  # past the first patch: from here on every push makes one
            self()

    def __call__(self):
        if self.pos + self.block > len(self.pcm):
            self.pos = 0
        out = self.stream.push(self.pcm[self.pos:self.pos + self.block])
        self.pos += self.block
        return out


def measure(cases: dict, rounds: int, warmup: int = 20) -> dict[str, list[float]]:
    for _ in range(warmup):
        for fn in cases.values():
            fn()
    times = {name: [] for name in cases}
    clock = time.perf_counter_ns
    order = list(cases.items())
    rng = np.random.default_rng(0)
    for _ in range(rounds):
        # A new order every round: whatever runs right after a model invoke finds the caches
        # cold, and that must not always be the same case.
        for i in rng.permutation(len(order)):
            name, fn = order[i]
            t0 = clock()
            fn()
            times[name].append((clock() - t0) / 1e6)
    return times


def agreement(data: Path, sample: int, quant, old_ref, params: FeatureParams) -> dict:
    """Fixed codes against quantise(float log-mel) for the float path and for the float64
    reference of commit --before (numpy rfft of the whole frame, full mel matrix: the textbook
    computation), on every shared recording, the raw test audio and ``sample`` events clips."""
    from edgekit.quant import quantise

    fixed = FixedFrontend(quant, params)
    clips = sorted(p for p in (data / "audio").iterdir() if p.suffix.lower() in (".wav", ".ogg", ".flac"))
    events = sorted((data / "events").rglob("*.flac"))
    if sample and events:
        pick = np.random.default_rng(0).choice(len(events), size=min(sample, len(events)), replace=False)
        clips += [events[i] for i in sorted(pick)]
    inputs = [(p.name, read_audio(p)) for p in clips]
    raw = data / "models" / "yamnet_test_audio.bin"
    if raw.exists():
        inputs.append((raw.name, np.fromfile(raw, "<i2").astype(np.int16)))
    out = {"clips": len(inputs), "events_clips": min(sample, len(events)), "codes": 0}
    worst_clip = {}
    for name, pcm in inputs:
        codes = fixed.waveform_to_codes(pcm).astype(np.int16)
        out["codes"] += codes.size
        for key, log_mel in (("float_path", reference.waveform_to_patches(pcm, params)),
                             ("float64_before", old_ref.waveform_to_patches(pcm))):
            d = np.abs(codes - quantise(log_mel, quant))
            row = out.setdefault(key, {"equal": 0, "within_1": 0, "max_step": 0})
            row["equal"] += int(np.sum(d == 0))
            row["within_1"] += int(np.sum(d <= 1))
            row["max_step"] = max(row["max_step"], int(d.max()))
            worst_clip[key] = min(worst_clip.get(key, (2.0, "")), (float(np.mean(d <= 1)), name))
    for key in ("float_path", "float64_before"):
        row = out[key]
        row["equal_fraction"] = row.pop("equal") / out["codes"]
        row["within_1_fraction"] = row.pop("within_1") / out["codes"]
        row["worst_clip_within_1"] = worst_clip[key]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=300)
    ap.add_argument("--before", default=BEFORE, help=f"git revision of the old front end (default {BEFORE})")
    ap.add_argument("--blas-threads", default="1", help="BLAS threads ('default': leave the library's choice)")
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("EDGEKIT_TEST_DATA") or REPO.parent / "shared" / "data"))
    ap.add_argument("--agreement", type=int, default=0, metavar="N",
                    help="also check the fixed codes against the float ones on every shared recording "
                         "and N events clips (0: skip)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--markdown", type=Path)
    args = ap.parse_args(argv)

    models = args.data / "models"
    yamnet = load_model(models / "yamnet.tflite", "cpu:1")
    body = load_model(models / "yamnet_spectra_in.tflite", "cpu:1")
    params = FeatureParams()
    hop_params = params.with_hop(0.1)
    pcm = read_audio(args.data / "audio" / "speech.wav")
    window = loudest_window(pcm, params)
    wave = (window.astype(np.float32) / 32768).astype(np.float32)
    patch = reference.waveform_to_patches(window, params)[0]
    quant = body.input_quant
    fixed = FixedFrontend(quant, params)

    with tempfile.TemporaryDirectory() as tmp:
        old_ref, old_fixed, old_stream = load_before(args.before, Path(tmp))
        old_params = importlib.import_module("edgekit_before.params").FeatureParams()
        old_quant = old_fixed.InputQuant(quant.scale, quant.zero_point)
        old_fx = old_fixed.FixedFrontend(old_quant, old_params)
        old_hop = old_params.with_hop(0.1)
        block = hop_params.patch_hop_samples  # 1600
        cases = {
            "yamnet.tflite": lambda: yamnet.run(wave),
            "yamnet_spectra_in.tflite": lambda: body.run(patch),
            "float patch": lambda: reference.waveform_to_patches(window, params),
            "fixed patch": lambda: fixed.waveform_to_codes(window),
            "float patch (before)": lambda: old_ref.waveform_to_patches(window, old_params),
            "fixed patch (before)": lambda: old_fx.waveform_to_codes(window),
            "float hop": Hops(StreamingFrontend.float(hop_params), pcm, block),
            "fixed hop": Hops(StreamingFrontend.fixed(quant, hop_params), pcm, block),
            "float hop (before)": Hops(old_stream.StreamingFrontend.float(old_hop), pcm, block),
            "fixed hop (before)": Hops(old_stream.StreamingFrontend.fixed(old_quant, old_hop), pcm, block),
        }
        # The two implementations must compute the same thing before their times mean anything.
        same = bool(np.array_equal(fixed.waveform_to_codes(window), old_fx.waveform_to_codes(window)))
        lsb = int(np.abs(fixed.waveform_to_codes(window).astype(int) - old_fx.waveform_to_codes(window)).max())
        float_diff = float(np.abs(reference.waveform_to_patches(window) - old_ref.waveform_to_patches(window)).max())
        times = measure(cases, args.rounds)
        agree = agreement(args.data, args.agreement, quant, old_ref, params) if args.agreement else None

    med = {k: float(np.median(v)) for k, v in times.items()}
    graph = med["yamnet.tflite"] - med["yamnet_spectra_in.tflite"]
    rows = [
        ("front end inside yamnet.tflite", graph, graph, "(recomputes the whole window every hop)"),
        ("edgekit float, before", med["float patch (before)"], med["float hop (before)"], ""),
        ("edgekit fixed point, before", med["fixed patch (before)"], med["fixed hop (before)"], ""),
        ("edgekit float", med["float patch"], med["float hop"], ""),
        ("edgekit fixed point", med["fixed patch"], med["fixed hop"], ""),
    ]
    ratios = {
        "float_vs_graph_patch": graph / med["float patch"],
        "fixed_vs_graph_patch": graph / med["fixed patch"],
        "fixed_over_float_patch": med["fixed patch"] / med["float patch"],
        "float_vs_graph_hop": graph / med["float hop"],
        "fixed_vs_graph_hop": graph / med["fixed hop"],
        "float_speedup_patch": med["float patch (before)"] / med["float patch"],
        "fixed_speedup_patch": med["fixed patch (before)"] / med["fixed patch"],
        "float_speedup_hop": med["float hop (before)"] / med["float hop"],
        "fixed_speedup_hop": med["fixed hop (before)"] / med["fixed hop"],
    }
    met = {k: (ratios[k] <= goal if k == "fixed_over_float_patch" else ratios[k] >= goal) for k, goal in GOALS.items()}

    lines = [
        f"| | per 0.975 s patch | per 0.1 s streaming hop | | (median ms, {args.rounds} interleaved rounds, BLAS threads: {args.blas_threads}) |",
        "|---|---|---|---|---|",
    ]
    for name, p, h, note in rows:
        lines.append(f"| {name} | {p:.3f} ms ({graph / p:.2f}x) | {h:.3f} ms ({graph / h:.1f}x) | {note} | |")
    lines += [
        "",
        "(Nx) = the in-graph front end's time divided by this row's: how many times cheaper.",
        "",
        f"- float per patch vs in-graph: {ratios['float_vs_graph_patch']:.2f}x (goal >= 2): {'met' if met['float_vs_graph_patch'] else 'NOT met'}",
        f"- fixed / float per patch: {ratios['fixed_over_float_patch']:.2f} (goal <= 1.5): {'met' if met['fixed_over_float_patch'] else 'NOT met'}"
        f"; fixed vs in-graph {ratios['fixed_vs_graph_patch']:.2f}x",
        f"- float per hop vs in-graph per window: {ratios['float_vs_graph_hop']:.1f}x (goal >= 10): {'met' if met['float_vs_graph_hop'] else 'NOT met'}",
        f"- fixed per hop vs in-graph per window: {ratios['fixed_vs_graph_hop']:.1f}x (goal >= 6): {'met' if met['fixed_vs_graph_hop'] else 'NOT met'}",
        f"- speed-up over before: float {ratios['float_speedup_patch']:.1f}x per patch, {ratios['float_speedup_hop']:.1f}x per hop; "
        f"fixed {ratios['fixed_speedup_patch']:.1f}x per patch, {ratios['fixed_speedup_hop']:.1f}x per hop",
        f"- same window, before vs after: fixed codes {'identical' if same else f'differ (max {lsb} step)'}; "
        f"float log-mel max |diff| {float_diff:.2e}",
    ]
    if agree:
        for key, what in (("float_path", "the float path"), ("float64_before", f"the float64 reference of {args.before}")):
            a = agree[key]
            lines.append(f"- fixed codes vs quantise(log-mel) of {what}: {a['equal_fraction']:.5%} equal, "
                         f"{a['within_1_fraction']:.3%} within 1 step, max {a['max_step']} "
                         f"({agree['codes']:,} codes, {agree['clips']} clips incl. {agree['events_clips']} events clips)")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if args.markdown:
        args.markdown.write_text(text)
    if args.json:
        from edgekit.machine import describe

        record = {
            "label": "front end cost: edgekit float/fixed vs the log-mel inside yamnet.tflite",
            "machine": describe(),
            "settings": {"rounds": args.rounds, "blas_threads": args.blas_threads, "before": args.before,
                         "input": "loudest 0.975 s window of speech.wav", "device": "cpu:1",
                         "statistic": "median ms per call; in-graph = median(yamnet) - median(yamnet_spectra_in)"},
            "median_ms": {k: round(v, 4) for k, v in med.items()},
            "p10_ms": {k: round(float(np.percentile(v, 10)), 4) for k, v in times.items()},
            "in_graph_frontend_ms": round(graph, 4),
            "ratios": {k: round(v, 3) for k, v in ratios.items()},
            "goals": GOALS,
            "goals_met": met,
            "agreement": agree,
            "before_vs_after": {"fixed_codes_identical": same, "fixed_codes_max_step": lsb,
                                "float_logmel_max_abs_diff": float_diff},
        }
        args.json.write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
