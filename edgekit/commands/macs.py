"""``edgekit macs MODEL [--layers] [--json]``: MACs and parameters read from the .tflite graph.

The counting rules live in :mod:`edgekit.models.macs`; this module only formats. Tables fit a
100-column terminal and use ASCII ``x`` for ×, since a Pi's console may not be UTF-8.
"""

from __future__ import annotations

import json
import textwrap
from dataclasses import asdict
from pathlib import Path

from edgekit.commands import add_model_arguments
from edgekit.models.macs import LayerCost, ModelCost, SeparablePair, Total, count_graph

HELP = "count multiply-accumulates (MACs) and parameters in a .tflite model's graph"


def add_arguments(parser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--layers", action="store_true",
                        help="per-layer table (MobileNet paper style) and dw/pw pairs")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def run(args) -> int:
    from edgekit.models.inspection import model_output_kind
    from edgekit.models.labels import output_classes, report_labels
    from edgekit.models.paths import resolve_model
    from edgekit.models.tflite import read_graph_file

    path = resolve_model(args.model)
    graph, data = read_graph_file(path)
    cost = count_graph(graph, str(path))
    names, source = report_labels(path, graph, data, args.labels)
    classes = {"count": output_classes(graph), "output_kind": model_output_kind(graph, path), "labels": source if names else None,
               "first": list(names[:5]) if names else None}
    if args.json:
        print(json.dumps({**to_json(cost, layers=args.layers), "classes": classes}, indent=2))
    else:
        print("\n".join(text_report(cost, layers=args.layers) + [_classes_line(classes)]))
    return 0


def _classes_line(c: dict) -> str:
    where = ("labels " + c["labels"] if c["labels"].startswith("embedded") else f"labels from {c['labels']}") \
        if c["labels"] else "no labels found: pass --labels FILE"
    return f"outputs: {c['count']:,} classes ({c['output_kind']}); {where}"


def compiled_statement(cost: ModelCost) -> str | None:
    if not cost.compiled:
        return None
    ops = ", ".join(str(i) for i in cost.compiled_ops)
    source = Path(cost.source)
    cpu_model = source.with_name(source.name.replace("_edgetpu", ""))
    if cpu_model != source and cpu_model.exists():
        instead = f"count the CPU model it was compiled from instead ({cpu_model.name})"
    else:
        instead = "count the CPU .tflite it was compiled from instead"
    return (f"The body is compiled for the Edge TPU (edgetpu-custom-op, op {ops}): its layers are "
            f"inside the compiled blob, not in the graph, so its MACs and parameters cannot be "
            f"counted here; {instead}.")


# --- JSON ------------------------------------------------------------------------------------


def _total_json(t: Total | None) -> dict | None:
    return None if t is None else {**asdict(t), "params": t.params}


def to_json(cost: ModelCost, layers: bool = False) -> dict:
    out = {
        "model": cost.source,
        "front_end": _total_json(cost.front_end),
        "body": _total_json(cost.body),
        "total": _total_json(cost.total),
        "compiled": None if not cost.compiled else {
            "ops": list(cost.compiled_ops), "statement": compiled_statement(cost)},
        "uncounted_ops": list(cost.uncounted),
    }
    if layers:
        out["layers"] = [{**asdict(r), "type": r.kind, "params": r.params} for r in cost.layers]
        out["separable_pairs"] = [
            {**asdict(p), "ratio": p.ratio, "analytic_ratio": p.analytic_ratio} for p in cost.pairs]
    return out


# --- text ------------------------------------------------------------------------------------


def _m(n: int) -> str:
    """12,345,678 (12.3 M): exact, and readable at a glance."""
    if n >= 1_000_000_000:
        return f"{n:,} ({n / 1e9:.3g} G)"
    if n >= 1_000_000:
        return f"{n:,} ({n / 1e6:.3g} M)"
    if n >= 1_000:
        return f"{n:,} ({n / 1e3:.3g} k)"
    return f"{n:,}"


def _dims(shape) -> str:
    return "x".join(str(d) for d in shape)


def _size(shape) -> str:
    # Drop the batch of an NHWC tensor, as the paper's "Input Size" column does.
    return _dims(shape[1:] if len(shape) == 4 and shape[0] == 1 else shape)


def _type(r: LayerCost) -> str:
    if not r.stride:
        return r.kind
    sh, sw = r.stride
    return f"{r.kind} / s{sh}" if sh == sw else f"{r.kind} / s{sh}x{sw}"


def _filter(r: LayerCost) -> str:
    if r.op == "DEPTHWISE_CONV_2D":
        return f"{_dims(r.filter_shape)} dw"
    if r.op in ("AVERAGE_POOL_2D", "MEAN"):
        return f"Pool {_dims(r.filter_shape)}" if r.filter_shape else "Pool"
    return _dims(r.filter_shape)


_LAYER_COLS = (("#", 4, ">"), ("Type / stride", 15, "<"), ("Filter shape", 16, "<"),
               ("Input size", 14, "<"), ("MACs", 13, ">"), ("Params", 11, ">"),
               ("Elem ops", 10, ">"))


def _line(cells, cols) -> str:
    return "  ".join(f"{c:{align}{width}}" for c, (_, width, align) in zip(cells, cols)).rstrip()


def _layer_table(cost: ModelCost) -> list[str]:
    lines = [_line([c[0] for c in _LAYER_COLS], _LAYER_COLS)]
    part = None
    for r in cost.layers:
        if r.part != part and (cost.front_end is not None):
            lines.append(f"-- {r.part} --")
        part = r.part
        is_mac = r.op not in ("ADD", "SUB", "MUL", "AVERAGE_POOL_2D", "MEAN")
        lines.append(_line([
            r.index, _type(r), _filter(r), _size(r.input_shape),
            f"{r.macs:,}" if is_mac else "-", f"{r.params:,}" if is_mac else "-",
            f"{r.element_ops:,}" if r.element_ops else "",
        ], _LAYER_COLS))
    return lines


_PAIR_COLS = (("dw", 4, ">"), ("pw", 4, ">"), ("M", 5, ">"), ("N", 5, ">"), ("D_K", 4, ">"),
              ("D_F", 7, ">"), ("separable", 12, ">"), ("standard", 13, ">"),
              ("ratio", 7, ">"), ("1/N+1/D_K^2", 11, ">"))


def _pair_table(pairs: tuple[SeparablePair, ...]) -> list[str]:
    lines = [
        "Depthwise separable pairs vs the standard convolution they replace (D_K^2*M*N*D_F^2):",
        _line([c[0] for c in _PAIR_COLS], _PAIR_COLS),
    ]
    for p in pairs:
        lines.append(_line([
            p.dw_index, p.pw_index, p.m, p.n, _dims(p.kernel), _dims(p.out_hw),
            f"{p.separable_macs:,}", f"{p.standard_macs:,}", f"{p.ratio:.4f}",
            f"{p.analytic_ratio:.4f}",
        ], _PAIR_COLS))
    sep = sum(p.separable_macs for p in pairs)
    std = sum(p.standard_macs for p in pairs)
    lines.append(f"all pairs: {_m(sep)} MACs instead of {_m(std)}, {std / sep:.1f}x fewer")
    return lines


_WIDTH = 99
_TOTAL_COLS = (("", 10, "<"), ("ops", 7, "<"), ("MACs", 22, ">"), ("params", 20, ">"),
               ("elem ops", 10, ">"))


def text_report(cost: ModelCost, layers: bool = False) -> list[str]:
    lines = [cost.source]
    if layers and cost.layers:
        lines += _layer_table(cost) + [""]
    parts = [(name, t) for name, t in (("front end", cost.front_end), ("body", cost.body)) if t]
    if cost.front_end is not None and cost.body is not None:
        parts.append(("total", cost.total))
    if parts:
        lines.append(_line([c[0] for c in _TOTAL_COLS], _TOTAL_COLS))
    for name, t in parts:
        ops = f"{t.ops[0]}-{t.ops[1]}"
        lines.append(_line([name, ops, _m(t.macs), _m(t.params), f"{t.element_ops:,}"],
                           _TOTAL_COLS))
    statement = compiled_statement(cost)
    if statement:
        lines += textwrap.wrap(statement, width=_WIDTH)
        cpu = [r for r in cost.rows("body") if r.macs]
        if cpu:
            lines.append(f"Ops left on the CPU: {_m(sum(r.macs for r in cpu))} MACs, "
                         f"{_m(sum(r.params for r in cpu))} params (a lower bound).")
    if cost.body is not None:
        b = cost.body
        lines.append(f"params = weights + biases ({b.weights:,} + {b.biases:,} in the body); "
                     "elem ops are not in MACs")
    if cost.uncounted:
        lines += textwrap.wrap("not counted: " + ", ".join(cost.uncounted), width=_WIDTH)
    if layers and cost.pairs:
        lines += [""] + _pair_table(cost.pairs)
    return lines
