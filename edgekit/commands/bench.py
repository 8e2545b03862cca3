"""``edgekit bench MODEL... [options]``: latency, FPS, init time and memory per model and device;
``edgekit bench compare A.json B.json``: two recorded runs side by side.

The measuring lives in :mod:`edgekit.bench.runner`, the machine description in
:mod:`edgekit.machine`, the tables and plots in :mod:`edgekit.bench.report`.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from edgekit.commands import add_labels_argument
from edgekit.errors import ConfigError

HELP = "measure latency, FPS, init time and memory of models on the CPU or an Edge TPU"

_XNNPACK = {"on": [True], "off": [False], "both": [True, False]}


def add_arguments(p) -> None:
    p.add_argument("models", nargs="+", metavar="MODEL",
                   help=".tflite files or model names; or `compare A.json B.json` to compare two --json records")
    add_labels_argument(p)
    p.add_argument("--device", default="cpu:1",
                   help="comma-separated devices: cpu, cpu:N (N threads), usb, usb:N, pci, pci:N "
                        "(default cpu:1: one thread, the most repeatable)")
    p.add_argument("--runs", type=int, help="timed runs per row after warm-up (default 100, or "
                                            "unlimited with --seconds)")
    p.add_argument("--warmup", type=int, default=10, help="untimed runs before timing (default 10)")
    p.add_argument("--seconds", type=float, help="stop a row's timed runs after this many seconds")
    x = p.add_mutually_exclusive_group()
    x.add_argument("--xnnpack", choices=sorted(_XNNPACK), default="on",
                   help="run with XNNPACK on (default), off (built-in kernels), or both")
    x.add_argument("--no-xnnpack", dest="xnnpack", action="store_const", const="off", default="on",
                   help="same as --xnnpack off")
    p.add_argument("--check-overhead", action="store_true",
                   help="also time a bare invoke() loop in alternating blocks and report harness/bare")
    p.add_argument("--pipeline", action="store_true",
                   help="audio models: real-time factor of front end + model per patch and per "
                        "streaming hop (0.48 s, 0.1 s), float vs fixed front end")
    p.add_argument("--pipeline-seconds", type=float, default=30.0,
                   help="seconds of audio for --pipeline (the recording is looped; default 30)")
    p.add_argument("--input", type=Path, help="audio file for audio models, or a picture for image models "
                                              "(default: the shared speech.wav / grace_hopper.bmp)")
    p.add_argument("--data", type=Path, help="folder with audio/ and models/ test data (default "
                                             "$EDGEKIT_TEST_DATA, else the model's own folder and ../audio/ "
                                             "beside it; without any, synthetic inputs, with a warning)")
    p.add_argument("--json", metavar="PATH|-", help="write the record as JSON ('-': stdout)")
    p.add_argument("--markdown", metavar="PATH", help="write the Markdown report")
    p.add_argument("--plot", metavar="PATH.png", help="write a PNG of the latency distributions")
    p.add_argument("--compare-published", action="store_true",
                   help="check rows against Coral's published figures for the same device class")
    p.add_argument("--published", type=Path, help="published figures JSON (default: the one edgekit ships, edgekit/bench/published.json)")
    p.add_argument("--tolerance", type=float, help="relative tolerance for --compare-published "
                                                   "(default from the file: 0.30, as pycoral)")
    p.add_argument("--label", help="a name for this run in reports (default: the machine)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or per-row lines")


def _progress(quiet: bool):
    if quiet or not sys.stderr.isatty():
        return None, None
    try:
        from tqdm import tqdm
    except ImportError:
        return None, lambda line: print(line, file=sys.stderr)
    tqdm.monitor_interval = 0  # no monitor thread waking up while we time
    factory = lambda desc, total: tqdm(total=total, desc=desc, unit="run", leave=False,  # noqa: E731
                                       file=sys.stderr, mininterval=0.25, dynamic_ncols=True)
    return factory, tqdm.write


def _check(args) -> None:
    if args.runs is not None and args.runs < 1:
        raise ConfigError("--runs must be at least 1")
    if args.warmup < 0:
        raise ConfigError("--warmup cannot be negative")
    if args.seconds is not None and not args.seconds > 0:
        raise ConfigError("--seconds must be positive")
    if args.pipeline_seconds <= 0:
        raise ConfigError("--pipeline-seconds must be positive")
    if args.tolerance is not None and not 0 < args.tolerance < 10:
        raise ConfigError("--tolerance is a fraction, e.g. 0.3 for ±30 %")
    if args.input is not None and not args.input.is_file():
        raise ConfigError(f"--input {args.input}: no such file")


def _compare(args) -> int:
    from edgekit.bench.report import compare_table, load_record

    files = args.models[1:]
    if len(files) != 2:
        raise ConfigError("usage: edgekit bench compare A.json B.json")
    text = compare_table(load_record(files[0]), load_record(files[1]), f"A ({files[0]})", f"B ({files[1]})")
    sys.stdout.write(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    return 0


def run(args) -> int:
    if args.models and args.models[0] == "compare" and not Path("compare").exists():
        return _compare(args)
    from edgekit.bench import report
    from edgekit.machine import describe
    from edgekit.bench.inputs import default_data_dir
    from edgekit.bench.runner import Settings, bench_model, expand
    from edgekit.bench.timing import timer_cost_ns
    from edgekit.models.runtime import parse_device

    _check(args)
    devices = [str(parse_device(d)) for d in args.device.split(",") if d.strip()]
    if not devices:
        raise ConfigError("--device needs at least one device")
    settings = Settings(
        runs=args.runs if args.runs is not None else (None if args.seconds else 100),
        warmup=args.warmup, seconds=args.seconds, check_overhead=args.check_overhead,
        pipeline=args.pipeline, pipeline_seconds=args.pipeline_seconds, input=args.input,
        data_dir=args.data or default_data_dir(), labels=args.labels,
    )
    machine = describe()
    factory, say = _progress(args.quiet)
    if machine["governor_warning"] and not args.quiet:
        print(f"edgekit: warning: {machine['governor_warning']}", file=sys.stderr)

    results = []
    for spec, device, xnnpack in expand(args.models, devices, _XNNPACK[args.xnnpack]):
        row = bench_model(spec, device, xnnpack, settings, factory)
        results.append(row)
        if say:
            lat = row.get("latency_ms")
            what = f"p50 {lat['p50']:.3f} ms, {row['fps']:.1f} FPS" if lat else row["status"]
            say(f"{row['model']} {row['device']} XNNPACK {report.xnnpack_label(row)}: {what}")

    notes = []
    synthetic = [r["model"] for r in results if (r.get("input") or {}).get("synthetic")]
    if synthetic:
        notes.append("some inputs are synthetic (no sample input in --data or beside the model): see each row's input")
        # Loudly: latency barely depends on the input, but top-1 and RSS figures do.
        print(f"edgekit: warning: SYNTHETIC INPUTS for {', '.join(sorted(set(synthetic)))}: no speech.wav / "
              "grace_hopper.bmp in --data or beside the model (its folder, or ../audio/); pass --data DIR "
              "or --input FILE for a real one", file=sys.stderr)
    if machine["governor_warning"]:
        notes.append(machine["governor_warning"])
    settings_record = {
        "runs": settings.runs, "warmup": settings.warmup, "seconds": settings.seconds,
        "devices": devices, "xnnpack": args.xnnpack, "check_overhead": settings.check_overhead,
        "block": settings.block, "pipeline": settings.pipeline,
        "pipeline_seconds": settings.pipeline_seconds if settings.pipeline else None,
        "clock": "time.perf_counter_ns around invoke() only; input set once before the loop; gc off",
        "timer_cost_ns": timer_cost_ns(),
        # relative, so a saved record does not carry this machine's directory layout
        "data_dir": os.path.relpath(settings.data_dir) if settings.data_dir else None,
    }
    record = report.make_record(results, machine, settings_record, args.label, notes)
    if args.compare_published:
        record["published_check"] = report.check_published(record, report.load_published(args.published),
                                                           args.tolerance)
    if args.json:
        report.write_json(record, args.json)
    if args.markdown:
        Path(args.markdown).write_text(report.markdown(record))
    if args.plot:
        report.plot(record, args.plot)
    if args.json != "-":
        sys.stdout.write(report.markdown(record))
    return 1 if any(r["status"].startswith("error") for r in results) else 0
