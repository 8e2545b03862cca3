"""Would a .tflite model compile for the Edge TPU, and what did a compiled one leave on the CPU?

The rules come from Coral's "supported operations" table
(https://coral.ai/docs/edgetpu/models-intro/#supported-operations) and its model requirements:
8-bit quantised tensors, sizes fixed at compile time, and no tensor with more than three
dimensions larger than 1. The compiler maps one contiguous run of ops: it leaves a float→int
QUANTIZE at the input and an int→float DEQUANTIZE at the output on the CPU, and at the first op
it cannot map it stops, so that op *and every op after it* run on the CPU even where they are
supported (unless the experimental multi-subgraph mode is asked for). This module predicts
that cut from the graph alone; only ``edgetpu_compiler`` itself has the last word, because
some limits depend on option values or tensor contents the graph summary does not carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgekit.models.tflite import Graph, OperatorInfo

CUSTOM_OP = "edgetpu-custom-op"
INT8 = ("int8", "uint8")


@dataclass(frozen=True)
class OpRule:
    runtime: int | None  # the first libedgetpu runtime version that maps it; None: all
    limits: str = ""  # Coral's documented limitations, shown to the user as they are


# TFLite builtin name -> rule. Transcribed from the table for compiler 16 / runtime 14; an op
# missing here always stays on the CPU.
SUPPORTED: dict[str, OpRule] = {
    "ADD": OpRule(None),
    "AVERAGE_POOL_2D": OpRule(None, "no fused activation function"),
    "CONCATENATION": OpRule(None, "no fused activation function; a constant input must be all "
                                  "zeros and then there may be only 2 inputs"),
    "CONV_2D": OpRule(None, "same dilation in x and y"),
    "DEPTHWISE_CONV_2D": OpRule(None, "runtime <= 12: no dilation; >= 13: same dilation in x and y"),
    "EXPAND_DIMS": OpRule(13),
    "FULLY_CONNECTED": OpRule(None, "default weights format only; output tensor one-dimensional"),
    "L2_NORMALIZATION": OpRule(None),
    "LOGISTIC": OpRule(None),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": OpRule(14, "unidirectional LSTM only"),
    "MAXIMUM": OpRule(None),
    "MAX_POOL_2D": OpRule(None, "no fused activation function"),
    "MEAN": OpRule(None, "no reduction in the batch dimension; a z reduction needs a depth "
                         "that is a multiple of 4 (runtime >= 13; x/y only before)"),
    "MINIMUM": OpRule(None),
    "MUL": OpRule(None),
    "PACK": OpRule(13, "no packing in the batch dimension"),
    "PAD": OpRule(None, "no padding in the batch dimension (x/y only before runtime 13)"),
    "PRELU": OpRule(13, "alpha must be 1-dimensional"),
    "QUANTIZE": OpRule(13, "8-bit to 8-bit requantisation; a float input stays on the CPU"),
    "REDUCE_MAX": OpRule(14, "not over the batch dimension"),
    "REDUCE_MIN": OpRule(14, "not over the batch dimension"),
    "RELU": OpRule(None),
    "RELU6": OpRule(None),
    "RELU_N1_TO_1": OpRule(None),
    "RESHAPE": OpRule(None, "some reshapes of large tensors are not mapped"),
    "RESIZE_BILINEAR": OpRule(None, "3-D input/output; may stay on the CPU to avoid precision loss"),
    "RESIZE_NEAREST_NEIGHBOR": OpRule(None, "3-D input/output; may stay on the CPU to avoid "
                                            "precision loss"),
    "RSQRT": OpRule(14),
    "SLICE": OpRule(None),
    "SOFTMAX": OpRule(None, "1-D input of at most 16,000 elements"),
    "SPACE_TO_DEPTH": OpRule(None),
    "SPLIT": OpRule(None, "no splitting in the batch dimension"),
    "SQUARED_DIFFERENCE": OpRule(14),
    "SQUEEZE": OpRule(None),
    "STRIDED_SLICE": OpRule(None, "all strides 1, ellipsis and new-axis masks 0"),
    "SUB": OpRule(None),
    "SUM": OpRule(13, "not over the batch dimension"),
    "TANH": OpRule(None),
    "TRANSPOSE": OpRule(14),
    "TRANSPOSE_CONV": OpRule(13),
}

SOFTMAX_MAX = 16_000
# Integer constants that are not data: biases (int32, quantised), shapes, axes, paddings.
_INT_PARAMS = ("int32", "int64")


@dataclass(frozen=True)
class OpVerdict:
    index: int
    op: str
    reasons: tuple[str, ...] = ()  # empty: the Edge TPU can run it
    boundary: str = ""  # "input" / "output": a (de)quantise the compiler leaves outside

    @property
    def ok(self) -> bool:
        return not self.reasons


@dataclass(frozen=True)
class Compat:
    """The prediction for a CPU model."""

    ops: tuple[OpVerdict, ...]
    cut: int | None  # index of the first op the compiler could not map; None: no cut
    mapped: tuple[int, ...]  # op indices that would go into the edgetpu-custom-op
    model_reasons: tuple[str, ...] = ()  # whole-model problems (not quantised, subgraphs)
    mappable_from: int | None = None  # first op of the longest mappable tail, when there is a cut

    @property
    def fully_mappable(self) -> bool:
        return self.cut is None and bool(self.mapped) and not self.model_reasons

    @property
    def verdict(self) -> str:
        if self.fully_mappable:
            return "fully mappable"
        return "partially mappable" if self.mapped else "not mappable"

    @property
    def unsupported(self) -> tuple[OpVerdict, ...]:
        return tuple(v for v in self.ops if not v.ok and not v.boundary)

    @property
    def cpu_ops(self) -> tuple[int, ...]:
        mapped = set(self.mapped)
        return tuple(v.index for v in self.ops if v.index not in mapped)


@dataclass(frozen=True)
class Compiled:
    """What a model compiled for the Edge TPU runs where."""

    custom_ops: tuple[int, ...]
    cpu_ops: tuple[OpVerdict, ...]  # ops outside the custom op(s), boundary marked
    twin: Path | None = None  # the CPU model it came from, when found
    ops_inside: int | None = None  # ops of the twin the custom op stands for
    twin_prediction: Compat | None = field(default=None, compare=False)


# --- checking a CPU model --------------------------------------------------------------------


def _activations(graph: Graph, op: OperatorInfo):
    for i in (*op.inputs, *op.outputs):
        if i >= 0 and not graph.tensors[i].is_constant:
            yield graph.tensors[i]


def _squeezed(shape) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def _quantizes_float(graph: Graph, op: OperatorInfo) -> bool:
    return (op.opcode == "QUANTIZE" and bool(op.inputs) and bool(op.outputs)
            and graph.tensors[op.inputs[0]].dtype not in INT8
            and graph.tensors[op.outputs[0]].dtype in INT8)


def _boundary(graph: Graph, op: OperatorInfo) -> str:
    if not op.inputs or not op.outputs:
        return ""
    src, dst = graph.tensors[op.inputs[0]], graph.tensors[op.outputs[0]]
    if op.opcode == "QUANTIZE" and src.dtype not in INT8 and dst.dtype in INT8 \
            and op.inputs[0] in graph.inputs:
        return "input"
    if op.opcode == "DEQUANTIZE" and src.dtype in INT8 and dst.dtype not in INT8 \
            and op.outputs[0] in graph.outputs:
        return "output"
    return ""


def check_op(graph: Graph, op: OperatorInfo) -> OpVerdict:
    reasons: list[str] = []
    if op.custom:
        reasons.append(f"custom op {op.opcode!r} is not an Edge TPU operation")
        return OpVerdict(op.index, op.opcode, tuple(reasons))
    rule = SUPPORTED.get(op.opcode)
    if rule is None:
        reasons.append("operation not supported by the Edge TPU")
    acts = list(_activations(graph, op))
    bad_types = sorted({t.dtype for t in acts if t.dtype not in INT8})
    if bad_types:
        reasons.append(f"{'/'.join(bad_types)} tensors, not int8/uint8")
    elif any(not t.quantized for t in acts):
        reasons.append("8-bit tensors without quantisation parameters")
    for i in op.inputs:
        t = graph.tensors[i] if i >= 0 else None
        if t is not None and t.is_constant and t.dtype not in INT8 + _INT_PARAMS:
            reasons.append(f"{t.dtype} constant {t.name!r} (weights must be 8-bit)")
            break
    if any(d <= 0 for t in acts for d in t.shape):
        reasons.append("dynamic tensor size (sizes must be fixed at compile time)")
    deep = [t for t in acts if len(t.shape) > 3 and any(d > 1 for d in t.shape[:-3])]
    if deep:
        reasons.append(f"tensor {list(deep[0].shape)} has more than 3 dimensions larger than 1")
    if rule is not None and acts:
        reasons.extend(_op_limits(graph, op))
    boundary = _boundary(graph, op)
    return OpVerdict(op.index, op.opcode, tuple(reasons), boundary if reasons else "")


def _op_limits(graph: Graph, op: OperatorInfo) -> list[str]:
    """The documented per-op limits that the graph summary lets us check."""
    t_in = graph.tensors[op.inputs[0]] if op.inputs and op.inputs[0] >= 0 else None
    t_out = graph.tensors[op.outputs[0]] if op.outputs else None
    if op.opcode == "SOFTMAX" and t_in is not None:
        dims = _squeezed(t_in.shape)
        if len(dims) > 1:
            return [f"softmax input {list(t_in.shape)} is not 1-D"]
        if t_in.elements > SOFTMAX_MAX:
            return [f"softmax over {t_in.elements} elements (at most {SOFTMAX_MAX:,})"]
    if op.opcode == "FULLY_CONNECTED" and t_out is not None and len(_squeezed(t_out.shape)) > 1:
        return [f"fully-connected output {list(t_out.shape)} is not one-dimensional"]
    return []


def check_graph(graph: Graph) -> Compat:
    verdicts = tuple(check_op(graph, op) for op in graph.operators)
    model_reasons = []
    if graph.subgraphs > 1:
        model_reasons.append(f"{graph.subgraphs} subgraphs (control flow); only the first is checked")
    if verdicts and not any(v.ok for v in verdicts):
        model_reasons.append("no op is 8-bit quantised: the model needs full-integer quantisation")

    # Leading input QUANTIZEs stay outside; mapping runs from there to the first failing op.
    start = 0
    while start < len(verdicts) and verdicts[start].boundary == "input":
        start += 1
    end = len(verdicts)
    while end > start and verdicts[end - 1].boundary == "output":
        end -= 1
    cut = next((v.index for v in verdicts[start:end] if not v.ok), None)
    mapped = tuple(v.index for v in verdicts[start:(cut if cut is not None else end)])

    mappable_from = None
    if cut is not None:
        # Where a split would leave a mappable tail: walk back over mappable ops, and take in the
        # float->int QUANTIZE before them, which would be the split-off model's input boundary
        # (yamnet.tflite: its body from the QUANTIZE on, i.e. yamnet_spectra_in).
        k = end
        while k > start and verdicts[k - 1].ok:
            k -= 1
        if k > 0 and _quantizes_float(graph, graph.operators[k - 1]):
            k -= 1
        if cut < k < end:
            mappable_from = k
    return Compat(verdicts, cut, mapped, tuple(model_reasons), mappable_from)


# --- a model already compiled ----------------------------------------------------------------


def compiled_report(graph: Graph, twin_graph: Graph | None = None, twin: Path | None = None) -> Compiled:
    custom = tuple(op.index for op in graph.operators if op.opcode == CUSTOM_OP)
    cpu = tuple(check_op(graph, op) for op in graph.operators if op.opcode != CUSTOM_OP)
    cpu = tuple(OpVerdict(v.index, v.op, v.reasons, v.boundary or _boundary(graph, graph.operators[v.index]))
                for v in cpu)
    inside = prediction = None
    if twin_graph is not None:
        # The compiler copies the ops it leaves on the CPU one for one; the rest went inside.
        inside = len(twin_graph.operators) - len(cpu)
        prediction = check_graph(twin_graph)
    return Compiled(custom, cpu, twin, inside, prediction)
