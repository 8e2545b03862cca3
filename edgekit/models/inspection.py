"""``edgekit models inspect``: what a .tflite file holds, and how it fares on the Edge TPU.

Everything comes from the pure-Python reader (:mod:`edgekit.models.tflite`), so a corrupt file gives the
same one-line error as everywhere else and no interpreter is ever built here.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import tflite

from edgekit.models import edgetpu_compat as etc
from edgekit.errors import EdgekitError
from edgekit.models.tflite import Graph, TensorInfo, read_graph_file
from edgekit.models.labels import report_labels

FIRST_LABELS = 5
_WIDTH = 99


def _macs(graph: Graph, source: str) -> dict:
    try:
        from edgekit.models.macs import count_graph
    except ImportError:  # the counting module is optional to this report
        return {"macs": None, "params": None, "note": "MAC counting is not available"}
    try:
        cost = count_graph(graph, source)
    except EdgekitError as exc:
        return {"macs": None, "params": None, "note": str(exc)}
    if cost.total is None:
        return {"macs": None, "params": None,
                "note": "inside the edgetpu-custom-op, which cannot be counted; "
                        "inspect the CPU model it was compiled from"}
    t = cost.total
    return {"macs": t.macs, "params": t.params, "element_ops": t.element_ops,
            "front_end_macs": cost.front_end.macs if cost.front_end else None,
            "note": ("not counted: " + ", ".join(cost.uncounted)) if cost.uncounted else ""}


def _min_runtime(data: bytes, graph: Graph) -> str | None:
    # The converter stores the oldest TFLite runtime able to run the model as a metadata buffer.
    if "min_runtime_version" not in graph.metadata_names:
        return None
    try:
        model = tflite.Model.GetRootAs(data, 0)
        for i in range(model.MetadataLength()):
            m = model.Metadata(i)
            if m.Name() == b"min_runtime_version":
                raw = model.Buffers(m.Buffer()).DataAsNumpy()
                return bytes(raw).split(b"\0", 1)[0].decode("ascii", "replace") or None
    except Exception:  # an odd buffer only loses this one line of the report
        return None
    return None


def _labels(graph: Graph, data: bytes, path: Path, explicit: str | Path | None = None) -> dict | None:
    # What load_model would use: --labels, embedded, beside the model, or a known class map in
    # the model directories.
    names, source = report_labels(path, graph, data, explicit)
    if names is None:
        return None
    source = "embedded" if source.startswith("embedded") else source  # the report names the model already
    return {"source": source, "count": len(names), "first": list(names[:FIRST_LABELS])}


# Ops that carry values through unchanged in meaning (shape, type, quantisation).
_CARRY = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "QUANTIZE", "DEQUANTIZE", "CAST", "IDENTITY"}


def output_kind(graph: Graph) -> str:
    """What the first output holds: "probability" (a SOFTMAX or LOGISTIC ends the graph), "logit"
    (any other op does), or "unknown" (it comes out of an Edge TPU custom op or from no op)."""
    producers = {t: op for op in graph.operators for t in op.outputs}
    t = graph.outputs[0] if graph.outputs else None
    for _ in range(len(graph.operators) + 1):
        op = producers.get(t)
        if op is None or op.custom:
            return "unknown"
        if op.opcode in ("SOFTMAX", "LOGISTIC"):
            return "probability"
        if op.opcode in _CARRY and op.inputs:
            t = op.inputs[0]
            continue
        return "logit"
    return "unknown"


def model_output_kind(graph: Graph, path: Path) -> str:
    """:func:`output_kind`, looking through a compiled Edge TPU op at the CPU model it came from."""
    kind = output_kind(graph)
    if kind == "unknown" and graph.is_edgetpu:
        twin = _find_twin(Path(path))
        if twin is not None:
            try:
                kind = output_kind(read_graph_file(twin)[0])
            except EdgekitError:
                pass
    return kind


def _tensor(t: TensorInfo) -> dict:
    q = None
    if t.quantized:
        q = {"scale": list(t.scales), "zero_point": list(t.zero_points)}
        if len(t.scales) > 1:
            q["axis"] = t.quantized_dimension
    return {"name": t.name, "shape": list(t.shape), "dtype": t.dtype, "quantization": q}


def _verdict_json(v: etc.OpVerdict) -> dict:
    return {"index": v.index, "op": v.op, "reasons": list(v.reasons), "boundary": v.boundary or None}


def _find_twin(path: Path) -> Path | None:
    from edgekit.models.model import edgetpu_twin

    twin = edgetpu_twin(path)
    if twin is None and path.stem.endswith("_edgetpu"):
        from edgekit.models import zoo

        try:
            entry = zoo.get(path.stem)
            cpu = zoo.get(entry.compiled_from) if entry.compiled_from else None
            twin = zoo.cached_path(cpu) if cpu else None
        except EdgekitError:
            twin = None
    return twin


def edgetpu_section(graph: Graph, path: Path) -> dict:
    if graph.is_edgetpu:
        twin = _find_twin(path)
        twin_graph = None
        if twin is not None:
            try:
                twin_graph, _ = read_graph_file(twin)
            except EdgekitError:
                twin, twin_graph = None, None
        r = etc.compiled_report(graph, twin_graph, twin)
        return {
            "compiled": True,
            "verdict": "compiled for the Edge TPU",
            "fully_mappable": None,
            "custom_ops": list(r.custom_ops),
            "cpu_ops": [_verdict_json(v) for v in r.cpu_ops],
            "cpu_twin": str(twin) if twin else None,
            "ops_inside_custom_op": r.ops_inside,
            "twin_prediction": None if r.twin_prediction is None else len(r.twin_prediction.mapped),
        }
    c = etc.check_graph(graph)
    return {
        "compiled": False,
        "verdict": c.verdict,
        "fully_mappable": c.fully_mappable,
        "mapped_ops": len(c.mapped),
        "mapped_range": [c.mapped[0], c.mapped[-1]] if c.mapped else None,
        "cpu_ops": len(c.cpu_ops),
        "cut_at": c.cut,
        "first_unsupported": _verdict_json(c.ops[c.cut]) if c.cut is not None else None,
        "unsupported": [_verdict_json(v) for v in c.unsupported],
        "boundary": [_verdict_json(v) for v in c.ops if v.boundary],
        "mappable_from": c.mappable_from,
        "model_reasons": list(c.model_reasons),
    }


def inspect_file(path: str | Path, labels: str | Path | None = None) -> dict:
    """The whole report as plain data (what ``--json`` prints); ``labels``: a --labels file."""
    p = Path(path)
    graph, data = read_graph_file(p)
    try:
        from edgekit.models.model import input_kind

        kind = input_kind(graph)
    except EdgekitError:
        kind = None
    return {
        "model": str(p),
        "file_size": graph.size_bytes,
        "tflite_schema_version": graph.version,
        "min_runtime_version": _min_runtime(data, graph),
        "description": graph.description,
        "subgraphs": graph.subgraphs,
        "input_kind": kind,
        "inputs": [_tensor(t) for t in graph.input_tensors()],
        "outputs": [_tensor(t) for t in graph.output_tensors()],
        "operators": len(graph.operators),
        "op_histogram": graph.op_histogram(),
        "custom_ops": list(graph.custom_ops),
        "cost": _macs(graph, str(p)),
        "metadata": list(graph.metadata_names),
        "associated_files": list(graph.associated_files),
        "output_kind": model_output_kind(graph, p),
        "labels": _labels(graph, data, p, labels),
        "edgetpu": edgetpu_section(graph, p),
    }


# --- text ------------------------------------------------------------------------------------


def _q(q: dict | None) -> str:
    if not q:
        return "not quantised"
    if len(q["scale"]) > 1:
        return f"per-channel ({len(q['scale'])} scales, axis {q.get('axis', 0)})"
    return f"scale {q['scale'][0]:.6g}, zero point {q['zero_point'][0] if q['zero_point'] else 0}"


def _size(n: int) -> str:
    return f"{n:,} bytes ({n / 1e6:.2f} MB)" if n >= 1e5 else f"{n:,} bytes"


def _num(n: int) -> str:
    return f"{n / 1e6:.3g} M ({n:,})" if n >= 1e6 else f"{n:,}"


def _wrap(text: str, indent: str = "  ") -> list[str]:
    return textwrap.wrap(text, width=_WIDTH, initial_indent=indent, subsequent_indent=indent + "  ")


def _ops(items: list[dict]) -> str:
    return ", ".join(f"{v['op']} (op {v['index']})" for v in items)


_OUTPUT_KINDS = {"probability": "scores in [0, 1] (the graph ends in SOFTMAX or LOGISTIC)",
                 "logit": "logits (no SOFTMAX or LOGISTIC at the end): not scores in [0, 1]",
                 "unknown": "values of unknown scale (they come out of a compiled Edge TPU op, and its CPU "
                            "model is not beside it)"}


def text_report(r: dict) -> list[str]:
    lines = [r["model"]]
    lines.append(f"  file: {_size(r['file_size'])}, TFLite schema v{r['tflite_schema_version']}"
                 + (f", needs runtime >= {r['min_runtime_version']}" if r["min_runtime_version"] else "")
                 + (f", {r['subgraphs']} subgraphs" if r["subgraphs"] > 1 else ""))
    if r["description"]:
        lines.append(f"  description: {r['description']}")
    if r["input_kind"]:
        lines.append(f"  edgekit input kind: {r['input_kind']}")
    for title, key in (("inputs", "inputs"), ("outputs", "outputs")):
        lines.append(f"  {title}:")
        for t in r[key]:
            shape = "x".join(str(d) for d in t["shape"]) or "scalar"
            lines.append(f"    {t['name']}  {shape} {t['dtype']}  {_q(t['quantization'])}")
    lines.append("    the output holds " + _OUTPUT_KINDS[r["output_kind"]])
    hist = ", ".join(f"{op} x{n}" for op, n in r["op_histogram"].items())
    lines += _wrap(f"operators ({r['operators']}): {hist}")
    c = r["cost"]
    if c["macs"] is not None:
        front = f", front end {c['front_end_macs'] / 1e6:.3g} M" if c.get("front_end_macs") else ""
        lines.append(f"  MACs: {_num(c['macs'])}{front}; params: {_num(c['params'])}")
        if c["note"]:
            lines += _wrap(c["note"], "    ")
    else:
        lines += _wrap(f"MACs/params: unknown ({c['note']})")
    if r["metadata"] or r["associated_files"]:
        lines.append("  metadata: " + (", ".join(r["metadata"]) or "-")
                     + (f"; files: {', '.join(r['associated_files'])}" if r["associated_files"] else ""))
    if r["labels"]:
        # Class names hold commas ("Child speech, kid speaking"): separate them unambiguously.
        first = " | ".join(r["labels"]["first"])
        src = r["labels"]["source"]
        if src != "embedded":
            beside = Path(src).parent.absolute() == Path(r["model"]).parent.absolute()
            src = f"from {Path(src).name} beside the model" if beside else f"from {src}"
        lines += _wrap(f"labels ({src}): {r['labels']['count']}: {first} | ...")
    else:
        lines.append("  labels: none embedded, beside the model or in the model directories (pass --labels FILE)")
    lines += _edgetpu_text(r["edgetpu"])
    return lines


def _edgetpu_text(e: dict) -> list[str]:
    counts = "" if e["compiled"] else \
        f" ({e['mapped_ops']} of {e['mapped_ops'] + e['cpu_ops']} ops on the Edge TPU)"
    lines = [f"  Edge TPU: {e['verdict']}{counts}"]
    if e["compiled"]:
        n = len(e["custom_ops"])
        cpu = e["cpu_ops"]
        lines += _wrap(f"{n} edgetpu-custom-op{'s' if n > 1 else ''} (op {', '.join(map(str, e['custom_ops']))}) "
                       f"hold{'' if n > 1 else 's'} the subgraph the compiler mapped; {len(cpu)} op{'s' if len(cpu) != 1 else ''} "
                       f"run on the CPU" + (f": {_ops(cpu)}" if cpu else "") + ".", "    ")
        edges = [v for v in cpu if v["boundary"]]
        if edges:
            lines += _wrap(f"{_ops(edges)}: float <-> int8 conversion at the model's "
                           f"{'/'.join(sorted({v['boundary'] for v in edges}))}, left outside by the compiler.", "    ")
        if e["ops_inside_custom_op"] is not None:
            lines += _wrap(f"The custom op stands for {e['ops_inside_custom_op']} ops of the CPU model "
                           f"{e['cpu_twin']} (predicted mappable there: {e['twin_prediction']}).", "    ")
        else:
            lines += _wrap("How many ops it holds: inspect the CPU model it was compiled from "
                           "(not found beside this file).", "    ")
        return lines
    if e["fully_mappable"]:
        lines += _wrap(f"all {e['mapped_ops']} ops (op {e['mapped_range'][0]}-{e['mapped_range'][1]}) "
                       "would run in one edgetpu-custom-op.", "    ")
    else:
        for why in e["model_reasons"]:
            lines += _wrap(why, "    ")
        f = e["first_unsupported"]
        if f is not None:
            lines += _wrap(f"the compiler would stop at op {f['index']} ({f['op']}: {'; '.join(f['reasons'])}); "
                           f"that op and everything after it ({e['cpu_ops']} ops in all) would run on the CPU, "
                           f"{e['mapped_ops']} on the Edge TPU.", "    ")
        if e["unsupported"]:
            lines.append("    ops that cannot run on the Edge TPU:")
            for v in e["unsupported"]:
                lines += _wrap(f"op {v['index']} {v['op']}: {'; '.join(v['reasons'])}", "      ")
        if e["mappable_from"] is not None:
            lines += _wrap(f"from op {e['mappable_from']} on the graph is mappable: split the model there "
                           "and compile that part.", "    ")
    edges = e["boundary"]
    if edges:
        lines += _wrap(f"{_ops(edges)}: float <-> int8 conversion at the model's edge; the compiler "
                       "leaves it on the CPU around the custom op.", "    ")
    return lines
