"""Make YAMNet's embedding a second output of its .tflite file, in pure Python.

A custom sound is a small head on YAMNet's 1024-d embedding: the global average pool that feeds
the final fully connected layer. The runtime frees that tensor's memory once the classifier has
read it, so it cannot be read after ``invoke()`` (except with ``experimental_preserve_all_tensors``,
a debugging switch that turns memory planning off). A graph *output* is never freed, so we list the
tensor as the subgraph's second output; nothing else in the model changes, and the scores stay
bit-for-bit what they were.

The rewrite edits the flatbuffer in place: a new outputs vector ``[scores, embedding]`` goes right
after the flatbuffer (before any metadata zip appended to it) and the subgraph's outputs field is
pointed at it. Flatbuffer offsets only point forward, so a vector placed after everything else can
be referenced from anywhere; every other byte keeps its position, and the zipped labels (whose
readers locate the archive from its end) stay readable.
"""

from __future__ import annotations

import io
import struct
import zipfile

import tflite

from ..errors import ModelFileError, UnsupportedModelError
from .tflite import Graph, read_graph

# Ops between the classifier layer and the model's output that do not change which tensor is
# the classifier's: activation, (de)quantisation, reshaping.
_PASS_THROUGH = {"DEQUANTIZE", "QUANTIZE", "LOGISTIC", "SOFTMAX", "RESHAPE", "SQUEEZE"}
_SUBGRAPH_OUTPUTS_FIELD = 8  # vtable offset of SubGraph.outputs (field 2) in the TFLite schema


def classifier_op(graph: Graph):
    """The final classifier layer (FULLY_CONNECTED, or a 1x1 CONV_2D) that feeds the scores."""
    if graph.is_edgetpu:
        raise UnsupportedModelError(
            "this model is compiled for the Edge TPU: its embedding is inside the edgetpu-custom-op "
            "and cannot be made an output; run custom sounds with its CPU model (e.g. "
            "yamnet_spectra_in.tflite)"
        )
    producer = {t: op for op in graph.operators for t in op.outputs}
    tensor = graph.outputs[0]
    seen = set()
    while tensor in producer and tensor not in seen:
        seen.add(tensor)
        op = producer[tensor]
        if op.opcode == "FULLY_CONNECTED":
            return op
        if op.opcode == "CONV_2D" and len(op.inputs) > 1 and graph.tensors[op.inputs[1]].shape[1:3] == (1, 1):
            return op
        if op.opcode not in _PASS_THROUGH or not op.inputs:
            break
        tensor = op.inputs[0]
    raise UnsupportedModelError(
        "no embedding found: the model's output does not come from a final FULLY_CONNECTED or 1x1 "
        "CONV_2D layer (through activation, quantise or reshape ops only); custom sounds need a "
        "YAMNet-like classifier such as yamnet.tflite or yamnet_spectra_in.tflite"
    )


def embedding_tensor(graph: Graph) -> int:
    """Index of the tensor that feeds the final classifier layer (YAMNet: the global average pool)."""
    op = classifier_op(graph)
    index = op.inputs[0]
    t = graph.tensors[index]
    if index < 0 or t.is_constant or t.elements < 2:
        raise UnsupportedModelError(
            f"the final {op.opcode} layer's input ({t.name!r}) is not an activation tensor; "
            "this model has no embedding to expose"
        )
    return index


def embedding_output(graph: Graph) -> int | None:
    """Position of the embedding among the model's outputs (1 after the rewrite), else None."""
    try:
        index = embedding_tensor(graph)
    except UnsupportedModelError:
        return None
    return graph.outputs.index(index) if index in graph.outputs else None


def with_embedding_output(data: bytes, source: str = "model") -> bytes:
    """The model with outputs [scores, embedding]; a model already rewritten comes back unchanged."""
    graph = read_graph(data, source)
    index = embedding_tensor(graph)
    if graph.outputs == (graph.outputs[0], index):
        return data  # already rewritten: idempotent
    if len(graph.outputs) != 1:
        raise UnsupportedModelError(
            f"{source}: the model has {len(graph.outputs)} outputs; the embedding can be added only to "
            "a single-output classifier"
        )
    if graph.subgraphs != 1:
        raise UnsupportedModelError(f"{source}: {graph.subgraphs} subgraphs; only single-subgraph models are rewritten")
    model = tflite.Model.GetRootAs(data, 0)
    for i in range(model.BuffersLength()):
        if model.Buffers(i).Offset() > 1:
            # Weights stored after the flatbuffer by absolute offset: inserting bytes would move them.
            raise UnsupportedModelError(f"{source}: weights stored outside the flatbuffer (a model over 2 GB) are not supported")
    sub = model.Subgraphs(0)
    field = sub._tab.Offset(_SUBGRAPH_OUTPUTS_FIELD)
    if field == 0:
        raise ModelFileError(f"{source}: corrupt .tflite file: the subgraph has no outputs field")
    field_pos = sub._tab.Pos + field

    end = _flatbuffer_end(data)
    pad = (-end) % 4  # the vector's length prefix must be 4-byte aligned
    vec_pos = end + pad
    outputs = (graph.outputs[0], index)
    vector = struct.pack(f"<I{len(outputs)}i", len(outputs), *outputs)
    out = bytearray(data[:end]) + bytes(pad) + vector + data[end:]
    struct.pack_into("<I", out, field_pos, vec_pos - field_pos)
    rewritten = bytes(out)
    check = read_graph(rewritten, source)  # the rewrite must read back as intended
    if check.outputs != outputs or check.associated_files != graph.associated_files:
        raise ModelFileError(f"{source}: rewriting the outputs did not read back as written; the file is unusual")
    return rewritten


def _flatbuffer_end(data: bytes) -> int:
    """Where the flatbuffer stops: the start of an appended metadata zip, else the file's end."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            starts = [info.header_offset for info in zf.infolist()]
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return len(data)
    return min(starts) if starts else len(data)


def classifier_weights(data: bytes, source: str = "model"):
    """The final layer's weights [classes, features] and bias [classes] in real units (float64).

    ``scores ≈ activation(embedding @ weights.T + bias)``: lets a head start from, or be checked
    against, what YAMNet's own classifier does with the same embedding.
    """
    import numpy as np

    graph = read_graph(data, source)
    op = classifier_op(graph)
    model = tflite.Model.GetRootAs(data, 0)
    sub = model.Subgraphs(0)

    def const(index: int) -> np.ndarray:
        info = graph.tensors[index]
        raw = model.Buffers(sub.Tensors(index).Buffer()).DataAsNumpy()
        return np.frombuffer(raw.tobytes(), np.dtype(info.dtype)).reshape(info.shape)

    w_info = graph.tensors[op.inputs[1]]
    w = const(op.inputs[1]).astype(np.float64).reshape(w_info.shape[0], -1)
    if w_info.quantized:
        scales = np.asarray(w_info.scales, np.float64).reshape(-1, 1)
        zps = np.asarray(w_info.zero_points or (0,), np.float64).reshape(-1, 1)
        w = (w - zps) * scales
    bias = np.zeros(w.shape[0])
    if len(op.inputs) > 2 and op.inputs[2] >= 0:
        b_info = graph.tensors[op.inputs[2]]
        bias = const(op.inputs[2]).astype(np.float64).reshape(-1)
        if b_info.quantized:
            bias = bias * np.asarray(b_info.scales, np.float64)
    return w, bias
