"""Multiply-accumulates (MACs) and parameters of a .tflite graph, and the separable-conv cost formulas.

The MobileNet v1 and YAMNet tables these are checked against are the architecture specs' rows
(:func:`edgekit.models.architectures.mobilenet_v1_table`).

What counts as a MAC
    Only products of activations with learned weights, as in the MobileNet paper's "Mult-Adds":
    CONV_2D (out_h·out_w·out_c · k_h·k_w·in_c), DEPTHWISE_CONV_2D (out_h·out_w·out_c · k_h·k_w),
    FULLY_CONNECTED (rows · in · out) and TRANSPOSE_CONV (in_h·in_w·in_c · k_h·k_w·out_c: each
    input pixel is scattered through the whole kernel).

Element ops, reported separately
    ADD, SUB, MUL (one per output element), AVERAGE_POOL_2D (output elements · window) and MEAN
    (one add per input element). They are not products with weights, the published figures leave
    them out, and they are small (MobileNet v2's ten residual ADDs are 0.1 % of its MACs); folding
    them in would make every total disagree with the tables it is checked against.

Not counted
    FFTs (RFFT2D), activations (LOGISTIC, SOFTMAX, LOG, COMPLEX_ABS), (de)quantisation and data
    movement (RESHAPE, PAD, GATHER, ...). All but the data movement are named in
    ``ModelCost.uncounted``, so a total says what it leaves out.

Parameters are the elements of the constant weight and bias tensors of the MAC ops, each tensor
once. Batch norm is folded into those biases by the converter, so a graph's count is weights plus
one bias per output channel; the sum equals ``Graph.parameter_count``.

Front end and body
    YAMNet's waveform model computes its log-mel features in the graph (RFFT2D, and a
    FULLY_CONNECTED applying the 257×64 mel matrix). When ops before the first convolution do
    such arithmetic they are the front end; the body starts at the QUANTIZE that feeds the
    convolutions if there is one (so ``yamnet.tflite``'s body lines up op for op with
    ``yamnet_spectra_in.tflite``), else at the first convolution. A body compiled for the Edge
    TPU is one opaque custom op: its cost is unknown (``None``), never zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import UnsupportedModelError
from edgekit.models.tflite import Graph, OperatorInfo, read_graph_file

MAC_OPS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"})
ELEMENT_OPS = frozenset({"ADD", "SUB", "MUL", "AVERAGE_POOL_2D", "MEAN"})
COMPILED_OPS = frozenset({"edgetpu-custom-op"})
_CONVS = frozenset({"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV"})
_FEATURE_OPS = frozenset({"RFFT2D", "FULLY_CONNECTED", "BATCH_MATMUL"})
_MOVES = frozenset({
    "RESHAPE", "SQUEEZE", "EXPAND_DIMS", "SPLIT", "SPLIT_V", "STRIDED_SLICE", "SLICE", "GATHER",
    "GATHER_ND", "PAD", "PADV2", "CONCATENATION", "TRANSPOSE", "PACK", "UNPACK", "SHAPE",
    "BROADCAST_TO", "TILE",
})
_TYPE_NAMES = {
    "CONV_2D": "Conv", "DEPTHWISE_CONV_2D": "Conv dw", "FULLY_CONNECTED": "FC",
    "TRANSPOSE_CONV": "Conv T", "AVERAGE_POOL_2D": "Avg Pool", "MEAN": "Avg Pool",
    "ADD": "Add", "SUB": "Sub", "MUL": "Mul",
}


@dataclass(frozen=True)
class LayerCost:
    """One row of a MobileNet-style body table; shapes are tensor shapes (batch first)."""

    index: int  # operator index in the graph (row number in an analytic table)
    op: str
    stride: tuple[int, int] | None
    filter_shape: tuple[int, ...]  # conv (k_h, k_w, in, out); dw (k_h, k_w, in); FC (in, out)
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    macs: int = 0
    weights: int = 0
    biases: int = 0
    element_ops: int = 0
    part: str = "body"  # or "front end"

    @property
    def params(self) -> int:
        return self.weights + self.biases

    @property
    def kind(self) -> str:
        return _TYPE_NAMES.get(self.op, self.op)


@dataclass(frozen=True)
class Total:
    macs: int
    weights: int
    biases: int
    element_ops: int
    layers: int  # rows with MACs
    ops: tuple[int, int]  # first and last operator index of this part

    @property
    def params(self) -> int:
        return self.weights + self.biases


@dataclass(frozen=True)
class SeparablePair:
    """A depthwise conv plus the 1×1 conv consuming it, vs the standard conv they replace."""

    dw_index: int
    pw_index: int
    m: int  # input channels
    n: int  # output channels of the pointwise conv
    kernel: tuple[int, int]  # D_K × D_K
    out_hw: tuple[int, int]  # D_F × D_F, the output's spatial size
    separable_macs: int
    standard_macs: int  # D_K²·M·N·D_F²

    @property
    def ratio(self) -> float:
        return self.separable_macs / self.standard_macs

    @property
    def analytic_ratio(self) -> float:
        return 1 / self.n + 1 / (self.kernel[0] * self.kernel[1])


@dataclass(frozen=True)
class ModelCost:
    source: str
    layers: tuple[LayerCost, ...]  # MAC and element ops, in graph order
    front_end: Total | None  # None: the graph has no feature front end
    body: Total | None  # None: compiled for the Edge TPU, so it cannot be counted
    compiled_ops: tuple[int, ...]  # indices of edgetpu-custom-op operators
    uncounted: tuple[str, ...]  # ops that compute but are outside MACs and element ops
    pairs: tuple[SeparablePair, ...]

    @property
    def compiled(self) -> bool:
        return bool(self.compiled_ops)

    @property
    def total(self) -> Total | None:
        if self.body is None:
            return None
        return _sum([self.front_end, self.body])

    def rows(self, part: str) -> tuple[LayerCost, ...]:
        return tuple(r for r in self.layers if r.part == part)


# --- counting a graph ------------------------------------------------------------------------


def count_file(path: str | Path) -> ModelCost:
    graph, _ = read_graph_file(path)
    return count_graph(graph, str(path))


def count_graph(graph: Graph, source: str = "model") -> ModelCost:
    producers = {t: op for op in graph.operators for t in op.outputs}
    seen: set[int] = set()  # weight tensors shared between ops are counted once
    start = _body_start(graph)
    rows = []
    for op in graph.operators:
        part = "front end" if op.index < start else "body"
        if op.opcode in MAC_OPS:
            rows.append(_mac_row(graph, op, part, producers, seen, source))
        elif op.opcode in ELEMENT_OPS:
            rows.append(_element_row(graph, op, part))
    compiled = tuple(op.index for op in graph.operators if op.opcode in COMPILED_OPS)
    n_ops = len(graph.operators)
    front = _total([r for r in rows if r.part == "front end"], (0, start - 1)) if start else None
    body = None if compiled else _total([r for r in rows if r.part == "body"], (start, n_ops - 1))
    uncounted = sorted({
        op.opcode for op in graph.operators
        if op.opcode not in MAC_OPS | ELEMENT_OPS | COMPILED_OPS | _MOVES
    })
    return ModelCost(source, tuple(rows), front, body, compiled, tuple(uncounted),
                     _pairs(graph, rows))


def _body_start(graph: Graph) -> int:
    ops = graph.operators
    first = next((op.index for op in ops if op.opcode in _CONVS | COMPILED_OPS), 0)
    if not any(op.opcode in _FEATURE_OPS for op in ops[:first]):
        return 0
    quantize = [op.index for op in ops[:first] if op.opcode == "QUANTIZE"]
    return quantize[-1] if quantize else first


def _shape(graph: Graph, op: OperatorInfo, t: int, source: str, rank: int | None = None):
    shape = graph.tensors[t].shape
    if not shape or any(d <= 0 for d in shape) or (rank and len(shape) != rank):
        raise UnsupportedModelError(
            f"{source}: op {op.index} ({op.opcode}) has tensor {t} of shape {list(shape)}; "
            f"MACs need fixed shapes{f' of rank {rank}' if rank else ''}"
        )
    return shape


def _const(graph: Graph, t: int, producers: dict) -> int | None:
    """The constant behind input ``t``: itself, or the source of a DEQUANTIZE (fp16 weights)."""
    if t < 0:
        return None
    if graph.tensors[t].is_constant:
        return t
    op = producers.get(t)
    if op is not None and op.opcode == "DEQUANTIZE" and graph.tensors[op.inputs[0]].is_constant:
        return op.inputs[0]
    return None


def _mac_row(graph, op, part, producers, seen, source) -> LayerCost:
    # TRANSPOSE_CONV's inputs are (output shape, weights, input[, bias]);
    # the others' (input, weights[, bias]).
    x_at, w_at, b_at = (2, 1, 3) if op.opcode == "TRANSPOSE_CONV" else (0, 1, 2)
    if len(op.inputs) <= max(x_at, w_at):
        raise UnsupportedModelError(
            f"{source}: op {op.index} ({op.opcode}) lacks its weights input")
    x = _shape(graph, op, op.inputs[x_at], source)
    w = _shape(graph, op, op.inputs[w_at], source)
    y = _shape(graph, op, op.outputs[0], source)
    stride = op.options.get("stride")
    if op.opcode == "FULLY_CONNECTED":
        n_out, n_in = w
        rows = _elements(x) // n_in
        macs, filt = rows * n_in * n_out, (n_in, n_out)
    else:
        x = _shape(graph, op, op.inputs[x_at], source, rank=4)
        y = _shape(graph, op, op.outputs[0], source, rank=4)
        _, oh, ow, oc = y
        if op.opcode == "CONV_2D":
            _, kh, kw, ic = w  # ic is in/groups for a grouped conv, which is what each MAC sees
            macs, filt = oh * ow * oc * kh * kw * ic, (kh, kw, ic, oc)
        elif op.opcode == "DEPTHWISE_CONV_2D":
            _, kh, kw, _ = w
            macs, filt = oh * ow * oc * kh * kw, (kh, kw, x[3])
        else:  # TRANSPOSE_CONV
            oc, kh, kw, ic = w
            macs, filt = x[1] * x[2] * ic * kh * kw * oc, (kh, kw, ic, oc)
    weights = biases = 0
    for at in (w_at, b_at):
        c = _const(graph, op.inputs[at], producers) if at < len(op.inputs) else None
        if c is not None and c not in seen:
            seen.add(c)
            n = graph.tensors[c].elements
            weights, biases = (weights + n, biases) if at == w_at else (weights, biases + n)
    return LayerCost(op.index, op.opcode, stride, filt, x, y, macs, weights, biases, 0, part)


def _element_row(graph, op, part) -> LayerCost:
    x = graph.tensors[op.inputs[0]].shape
    y = graph.tensors[op.outputs[0]].shape
    stride, filt = op.options.get("stride"), op.options.get("filter", ())
    if op.opcode == "MEAN":
        # The axes tensor's values are not in the Graph; reduced axes are 1 in a keep-dims output.
        if len(x) == len(y):
            filt = tuple(a for a, b in zip(x, y) if b == 1 and a > 1)
        n = graph.tensors[op.inputs[0]].elements
    else:
        n = graph.tensors[op.outputs[0]].elements * max(1, _elements(filt))
    return LayerCost(op.index, op.opcode, stride, tuple(filt), x, y, element_ops=n, part=part)


def _pairs(graph: Graph, rows: list[LayerCost]) -> tuple[SeparablePair, ...]:
    by_index = {r.index: r for r in rows}
    consumers: dict[int, list[OperatorInfo]] = {}
    for op in graph.operators:
        for t in op.inputs:
            consumers.setdefault(t, []).append(op)
    pairs = []
    for dw in rows:
        if dw.op != "DEPTHWISE_CONV_2D":
            continue
        users = consumers.get(graph.operators[dw.index].outputs[0], [])
        pw = by_index.get(users[0].index) if len(users) == 1 else None
        if pw is None or pw.op != "CONV_2D" or pw.filter_shape[:2] != (1, 1):
            continue
        _, oh, ow, _ = dw.output_shape
        kh, kw, m = dw.filter_shape
        n = pw.filter_shape[3]
        pairs.append(SeparablePair(dw.index, pw.index, m, n, (kh, kw), (oh, ow),
                                   dw.macs + pw.macs, standard_conv_macs((kh, kw), m, n, (oh, ow))))
    return tuple(pairs)


def _elements(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _total(rows, ops: tuple[int, int]) -> Total:
    return Total(sum(r.macs for r in rows), sum(r.weights for r in rows),
                 sum(r.biases for r in rows), sum(r.element_ops for r in rows),
                 sum(1 for r in rows if r.macs), ops)


def _sum(parts) -> Total:
    parts = [p for p in parts if p is not None]
    return Total(*(sum(getattr(p, f) for p in parts)
                   for f in ("macs", "weights", "biases", "element_ops", "layers")),
                 (parts[0].ops[0], parts[-1].ops[1]))


# --- the analytic cost model -----------------------------------------------------------------


def _area(d) -> int:
    return d * d if isinstance(d, int) else d[0] * d[1]


def standard_conv_macs(d_k, m: int, n: int, d_f) -> int:
    """D_K²·M·N·D_F²; ``d_k`` and ``d_f`` are a side or an (h, w) pair."""
    return _area(d_k) * m * n * _area(d_f)


def separable_conv_macs(d_k, m: int, n: int, d_f) -> int:
    """D_K²·M·D_F² (depthwise) + M·N·D_F² (pointwise)."""
    return _area(d_k) * m * _area(d_f) + m * n * _area(d_f)
