"""``edgekit models build ARCH --weights official|PATH|random [--alpha A] [--resolution R]
[--quant int8|int8-float-io] [--representative DIR] -o OUT.tflite``: a full-integer MobileNet
or YAMNet .tflite, built with TensorFlow (the optional ``build`` extra).

Arguments are checked before TensorFlow is imported, so a mistake costs no start-up time and
the checks work where TensorFlow is not installed.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from edgekit.errors import ConfigError

HELP = "build a full-integer MobileNet v1/v2 or YAMNet .tflite (official, Keras or .tflite weights; random = untrained)"


def add_arguments(p) -> None:
    from edgekit.build import QUANT_MODES
    from edgekit.models.architectures import ALPHAS, FAMILIES, RESOLUTIONS

    p.add_argument("arch", choices=sorted(FAMILIES), help="architecture")
    p.add_argument("--alpha", type=float, default=1.0, choices=ALPHAS,
                   help="width multiplier (default 1.0; thinner YAMNets suit a Pi Zero)")
    p.add_argument("--resolution", type=int, choices=RESOLUTIONS,
                   help="input side in pixels, image models only (default 224)")
    p.add_argument("--weights", metavar="official|FILE|random",
                   help="required: official (yamnet only: transplanted from yamnet.tflite), a .keras / "
                        ".weights.h5 / quantised .tflite (int8 or uint8) file of the same architecture (e.g. "
                        "a legacy uint8 MobileNet to rebuild as int8 per-channel), or random: UNTRAINED, for "
                        "timing and Edge TPU mapping only")
    p.add_argument("--quant", choices=QUANT_MODES, default="int8",
                   help="int8: int8 input and output; int8-float-io: int8 body, float input/output")
    p.add_argument("--representative", type=Path, metavar="DIR",
                   help="calibration folder: recordings for yamnet, pictures for MobileNets "
                        "(default: synthetic audio / random images)")
    p.add_argument("--samples", type=int, default=200, help="calibration samples (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed for random weights and sampling (default 0)")
    p.add_argument("--official-model", default="yamnet", metavar="MODEL",
                   help="where --weights official reads from: zoo name or .tflite path (default yamnet)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT.tflite", help="file to write")
    p.add_argument("--embedding", action="store_true",
                   help="also output the 1024-d embedding (the pooled features the classifier reads), so that "
                        "the Edge TPU model compiled from it serves custom sounds (edgekit sounds)")
    p.add_argument("--json", action="store_true", help="print a JSON summary instead of text")


def request_from(args):
    from edgekit.build import BuildRequest, check_request

    out = args.output
    if not args.weights:
        # Never an untrained model by default: it loads, runs, and detects nothing.
        raise ConfigError("say which weights: --weights official (yamnet: Google's trained YAMNet), --weights "
                          "FILE (.keras, .weights.h5 or a quantised .tflite), or --weights random for an "
                          "untrained model (timing and Edge TPU mapping only: it recognises nothing)")
    if out.suffix != ".tflite":
        raise ConfigError(f"-o {out}: the output must be a .tflite file")
    if not out.parent.resolve().is_dir():
        raise ConfigError(f"-o {out}: folder {out.parent} does not exist")
    req = BuildRequest(args.arch, args.alpha, args.resolution, args.weights, args.quant,
                       args.representative, args.samples, args.seed, args.official_model)
    check_request(req)
    return req


def _write(path: Path, data: bytes) -> None:
    # Whole file or nothing: a daemon may be watching this path.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def summary(path: Path, arch, data: bytes, labels_path: Path | None, weights: str = "random") -> dict:
    from edgekit.models.macs import count_graph
    from edgekit.models.edgetpu_compat import check_graph
    from edgekit.models.tflite import read_graph

    graph = read_graph(data, str(path))
    cost = count_graph(graph, str(path))
    compat = check_graph(graph)
    io = {}
    for key, t in (("input", graph.input_tensors()[0]), ("output", graph.output_tensors()[0])):
        io[key] = {"shape": list(t.shape), "dtype": t.dtype,
                   "scale": t.scales[0] if t.scales else None,
                   "zero_point": t.zero_points[0] if t.zero_points else None}
    if len(graph.outputs) > 1:
        t = graph.output_tensors()[1]
        io["embedding"] = {"shape": list(t.shape), "dtype": t.dtype}
    return {"model": str(path), "arch": arch.name, "bytes": len(data), **io, "weights": weights,
            "trained": weights != "random",
            "macs": cost.body.macs, "params": cost.body.params,
            "spec_macs": arch.macs, "spec_params": arch.params,
            "ops": graph.op_histogram(), "labels": str(labels_path) if labels_path else None,
            "edgetpu": {"verdict": compat.verdict,
                        "cpu_ops": [f"{v.index} {v.op}: {'; '.join(v.reasons)}" for v in compat.unsupported]}}


def run(args) -> int:
    from edgekit.build import build

    req = request_from(args)
    data, arch, labels = build(req)
    if getattr(args, "embedding", False):
        from edgekit.models.embedding import with_embedding_output

        # The same in-place rewrite `load_model(embedding=True)` does, before edgetpu_compiler sees it:
        # the compiled op then returns both tensors.
        data = with_embedding_output(data, str(args.output))
    _write(args.output, data)
    labels_path = None
    if labels:
        # The name edgekit.models.labels.find_sidecar_labels looks for beside a model.
        labels_path = args.output.with_name(f"{args.output.stem}_labels.txt")
        _write(labels_path, ("\n".join(labels) + "\n").encode())
    info = summary(args.output, arch, data, labels_path, req.weights)
    untrained = ("UNTRAINED (random weights): for timing and Edge TPU mapping only, it recognises nothing"
                 if req.weights == "random" else None)
    if untrained:
        print(f"edgekit: warning: {args.output}: {untrained}", file=sys.stderr)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"{info['model']}: {arch.name}, {req.quant}, {info['bytes']:,} bytes, "
          + (untrained or f"weights: {req.weights}"))
    for key in ("input", "output", "embedding"):
        if key not in info:
            continue
        t = info[key]
        quant = f" scale {t['scale']:.6g} zero point {t['zero_point']}" if t.get("scale") else ""
        print(f"  {key:6s} {t['shape']} {t['dtype']}{quant}")
    print(f"  {info['macs'] / 1e6:.1f} M MACs, {info['params'] / 1e6:.2f} M params (counted in the graph)")
    print("  ops: " + ", ".join(f"{k} {v}" for k, v in info["ops"].items()))
    if labels_path:
        print(f"  labels: {labels_path}")
    print(f"  Edge TPU: {info['edgetpu']['verdict']}"
          + "".join(f"\n    {line}" for line in info["edgetpu"]["cpu_ops"]))
    if info["edgetpu"]["verdict"] == "fully mappable":
        print(f"  next: edgetpu_compiler {args.output} (or: edgekit models compile {args.output})")
    return 0
