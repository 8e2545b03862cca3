"""``edgekit models list|pull|verify|path|inspect|compile|build``: the model zoo, model reports,
and new full-integer models."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from edgekit.models import zoo
from edgekit.models.paths import resolve_model
from edgekit.commands import add_model_arguments, build as build_cmd
from edgekit.errors import EdgekitError, EdgeTPUCompilerError, ModelNotFoundError

HELP = ("the model zoo: list, pull (download/import, checksum-checked), verify, path, inspect, compile, "
        "build")


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION")
    sub.required = True

    p = sub.add_parser("list", help="zoo models: kind, input, size, cached or not, Edge TPU twin")
    p.add_argument("--dir", help="look only in this model directory")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(_models=_list)

    p = sub.add_parser("pull", help="download a zoo model (resumable, SHA-256 checked) or import a copy")
    p.add_argument("name", help="zoo name (see `edgekit models list`)")
    p.add_argument("--from", dest="source", metavar="FILE|URL",
                   help="import a local file, or download from this URL instead of upstream")
    p.add_argument("--dir", help="model directory to write to (default: $EDGEKIT_MODEL_DIR, the "
                                 "service's state directory, or the user cache)")
    p.add_argument("--force", action="store_true", help="fetch again even if a good copy is cached")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(_models=_pull)

    p = sub.add_parser("verify", help="re-check the SHA-256 of every cached zoo model")
    p.add_argument("names", nargs="*", help="only these (default: every zoo entry)")
    p.add_argument("--dir", help="check only this model directory")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(_models=_verify)

    p = sub.add_parser("path", help="print the path of a cached zoo model")
    p.add_argument("name", help="zoo name (see `edgekit models list`)")
    p.add_argument("--dir", help="look only in this model directory")
    p.set_defaults(_models=_path)

    p = sub.add_parser("inspect", help="inputs/outputs, ops, MACs, labels, and Edge TPU mappability")
    add_model_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(_models=_inspect)

    p = sub.add_parser("compile", help="compile a model for the Edge TPU with edgetpu_compiler")
    p.add_argument("model", help="a .tflite path or a model name (e.g. yamnet)")
    p.add_argument("-o", "--out-dir", help="output directory (default: beside the model)")
    p.set_defaults(_models=_compile)

    p = sub.add_parser("build", help=build_cmd.HELP, description=build_cmd.HELP)
    build_cmd.add_arguments(p)
    p.set_defaults(_models=build_cmd.run)


def run(args) -> int:
    return int(args._models(args) or 0)


# --- list ------------------------------------------------------------------------------------


def _human(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def _input(e: zoo.Entry) -> str:
    if e.input_shape is None:
        return "-"
    return "x".join(str(d) for d in e.input_shape) + f" {e.input_dtype or ''}".rstrip()


def _list(args) -> int:
    dirs = zoo.search_dirs(args.dir)
    rows = []
    for e in zoo.manifest().values():
        cached = zoo.cached_path(e, dirs)
        rows.append({"name": e.name, "kind": e.kind, "input": _input(e), "size": e.size,
                     "cached": str(cached) if cached else None, "edgetpu": e.edgetpu,
                     "compiled_from": e.compiled_from, "verified": e.verified,
                     "license": e.license, "description": e.description})
    if args.json:
        print(json.dumps({"write_dir": str(zoo.cache_dir(args.dir)), "models": rows}, indent=2))
        return 0
    cols = ("NAME", "KIND", "INPUT", "SIZE", "CACHED", "EDGE TPU TWIN")
    table = [(r["name"] + ("" if r["verified"] else " *"), r["kind"], r["input"], _human(r["size"]),
              "yes" if r["cached"] else "-",
              r["edgetpu"] or (f"(of {r['compiled_from']})" if r["compiled_from"] else "-"))
             for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in table)) for i, c in enumerate(cols)]
    for line in (cols, *table):
        print("  ".join(f"{c:<{w}}" for c, w in zip(line, widths)).rstrip())
    print(f"\npull writes to {zoo.cache_dir(args.dir)}")
    if any(not r["verified"] for r in rows):
        print("* upstream URL known, checksum not pinned yet")
    return 0


# --- pull ------------------------------------------------------------------------------------


def _pull(args) -> int:
    entry = zoo.get(args.name)
    result = zoo.pull(args.name, args.source, args.dir, progress=not args.quiet, force=args.force)
    verb = {"cached": "already cached", "downloaded": "downloaded", "imported": "imported"}[result.action]
    print(f"{entry.name}: {verb}: {result.path}")
    if not entry.verified:
        print(f"  not pinned in the manifest: sha256 {result.sha256}, {result.path.stat().st_size} "
              "bytes; add them to edgekit/models/manifest.toml once you trust this file")
    # What the model needs beside it: its class map (labels), and for an _edgetpu model the CPU
    # twin that --fallback cpu runs.
    for need, why in ((None if entry.labels in (None, "embedded") else entry.labels, "its labels"),
                      (entry.compiled_from, "its CPU twin, for --fallback cpu")):
        if not need:
            continue
        dep = zoo.get(need)
        if (result.path.parent / dep.file).is_file():
            continue
        if args.source is None:
            try:
                sub = zoo.pull(need, None, result.path.parent, progress=not args.quiet)
            except EdgekitError as exc:  # the model asked for is in place; say what is missing
                print(f"edgekit: warning: {need} ({why}) was not fetched: {exc}", file=sys.stderr)
                continue
            print(f"{need}: {sub.action} ({why}): {sub.path}")
        else:
            print(f"  also pull {need} ({why}): edgekit models pull {need}")
    if args.dir and Path(args.dir).expanduser() not in zoo.search_dirs():
        print(f"  note: --model {entry.name} looks only in {', '.join(map(str, zoo.search_dirs()))}; "
              f"set EDGEKIT_MODEL_DIR={args.dir} or pass the path")
    return 0


# --- verify / path ---------------------------------------------------------------------------


def _verify(args) -> int:
    checks = zoo.verify(zoo.search_dirs(args.dir), args.names or None)
    if args.json:
        print(json.dumps([{"name": c.name, "status": c.status, "path": str(c.path) if c.path else None,
                           "expected": c.expected, "actual": c.actual,
                           "partial_bytes": c.partial_bytes} for c in checks], indent=2))
    else:
        width = max((len(c.name) for c in checks), default=4)
        for c in checks:
            if c.status == "missing":
                extra = f"  ({c.partial_bytes:,} bytes of a partial download)" if c.partial_bytes else ""
                print(f"{c.name:<{width}}  missing{extra}")
            elif c.status == "mismatch":
                print(f"{c.name:<{width}}  MISMATCH  {c.path}: sha256 {c.actual}, expected {c.expected}; "
                      f"pull it again with --force")
            elif c.status == "unpinned":
                print(f"{c.name:<{width}}  unpinned  {c.path}: sha256 {c.actual}")
            else:
                print(f"{c.name:<{width}}  ok        {c.path}")
    bad = [c for c in checks if c.status == "mismatch"]
    if bad:
        print(f"edgekit: {len(bad)} cached model file(s) do not match the manifest", file=sys.stderr)
    return 1 if bad else 0


def _path(args) -> int:
    entry = zoo.get(args.name)
    dirs = zoo.search_dirs(args.dir)
    found = zoo.cached_path(entry, dirs)
    if found is None:
        raise ModelNotFoundError(f"{entry.name} is not cached; looked in {', '.join(map(str, dirs))}. "
                                 f"Get it with `edgekit models pull {entry.name}`")
    print(found)
    return 0


# --- inspect / compile -----------------------------------------------------------------------


def _inspect(args) -> int:
    from edgekit.models.inspection import inspect_file, text_report

    report = inspect_file(resolve_model(args.model), args.labels)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print("\n".join(text_report(report)))
    return 0


def _compile(args) -> int:
    from edgekit.models.edgetpu_compiler import run_compiler
    from edgekit.models.tflite import read_graph_file

    model = resolve_model(args.model)
    graph, _ = read_graph_file(model)  # a bad file fails here with the usual one-line error
    if graph.is_edgetpu:
        raise EdgeTPUCompilerError(f"{model} is already compiled for the Edge TPU; compile the CPU model")
    result = run_compiler(model, Path(args.out_dir) if args.out_dir else model.parent)
    print(f"compiled with edgetpu_compiler {result.version or '?'}: {result.output}")
    if result.mapped_ops is not None:
        total = result.total_ops if result.total_ops is not None else result.mapped_ops + (result.cpu_ops or 0)
        print(f"  {result.mapped_ops} of {total} ops mapped to the Edge TPU, {result.cpu_ops or 0} on the CPU"
              + (f", {result.subgraphs} Edge TPU subgraph(s)" if result.subgraphs else ""))
    return 0
