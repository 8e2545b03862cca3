"""Read a .tflite file's graph in pure Python, before any C++ interpreter sees it.

tflite-runtime 2.14 segfaults on some truncated models; a Python walk of the flatbuffer raises
an exception instead. So every file is first sniffed (empty, Git LFS pointer, HTML page, wrong
magic) and then walked here with bounds checks; what comes out is a small frozen description of
the graph that ``model``, ``macs`` and ``inspect`` share.
"""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tflite

from edgekit.errors import ModelFileError

_TYPE_NAMES = {
    getattr(tflite.TensorType, n): n.lower() for n in dir(tflite.TensorType) if n.isupper()
}
_OP_NAMES = {
    getattr(tflite.BuiltinOperator, n): n for n in dir(tflite.BuiltinOperator) if n.isupper()
}
_ITEMSIZE = {
    "float32": 4, "float16": 2, "float64": 8, "int32": 4, "uint32": 4, "int16": 2, "uint16": 2,
    "int8": 1, "uint8": 1, "int64": 8, "uint64": 8, "bool": 1, "complex64": 8, "complex128": 16,
    "bfloat16": 2,
}
_MIN_SIZE = 32  # a flatbuffer root offset, the TFL3 identifier and a minimal table


@dataclass(frozen=True)
class TensorInfo:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    scales: tuple[float, ...] = ()
    zero_points: tuple[int, ...] = ()
    quantized_dimension: int = 0
    const_bytes: int = 0  # size of the weight data this tensor carries, 0 for activations

    @property
    def is_constant(self) -> bool:
        return self.const_bytes > 0

    @property
    def elements(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1

    @property
    def quantized(self) -> bool:
        return bool(self.scales) and any(s != 0 for s in self.scales)


@dataclass(frozen=True)
class OperatorInfo:
    index: int
    opcode: str  # builtin name ('CONV_2D') or the custom code ('edgetpu-custom-op')
    custom: bool
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Graph:
    """The first subgraph of a model, plus what the file carries around it."""

    version: int
    description: str
    tensors: tuple[TensorInfo, ...]
    operators: tuple[OperatorInfo, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    subgraphs: int
    metadata_names: tuple[str, ...]
    associated_files: tuple[str, ...]  # files zipped onto the model by TFLite metadata
    size_bytes: int

    def input_tensors(self) -> list[TensorInfo]:
        return [self.tensors[i] for i in self.inputs]

    def output_tensors(self) -> list[TensorInfo]:
        return [self.tensors[i] for i in self.outputs]

    def op_histogram(self) -> dict[str, int]:
        hist: dict[str, int] = {}
        for op in self.operators:
            hist[op.opcode] = hist.get(op.opcode, 0) + 1
        return dict(sorted(hist.items(), key=lambda kv: (-kv[1], kv[0])))

    @property
    def custom_ops(self) -> tuple[str, ...]:
        return tuple(sorted({op.opcode for op in self.operators if op.custom}))

    @property
    def is_edgetpu(self) -> bool:
        return "edgetpu-custom-op" in self.custom_ops

    @property
    def parameter_count(self) -> int:
        """Weights and biases: elements of the constant tensors that feed arithmetic ops.

        Shape constants (RESHAPE targets, axes, paddings) and the front end's tables are not
        parameters; counting only inputs of ops with learned weights matches how the MobileNet
        papers count.
        """
        seen: set[int] = set()
        for op in self.operators:
            if op.opcode in _WEIGHTED_OPS:
                for i in op.inputs[1:]:
                    if i >= 0 and self.tensors[i].is_constant:
                        seen.add(i)
        return sum(self.tensors[i].elements for i in seen)


_WEIGHTED_OPS = {
    "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "CONV_3D",
}


def sniff(data: bytes, source: str = "model") -> None:
    """Reject what is plainly not a .tflite file, naming what it looks like instead."""
    if len(data) == 0:
        raise ModelFileError(f"{source}: the file is empty (0 bytes); download the model again")
    head = data[:512]
    if head.startswith(b"version https://git-lfs.github.com/spec"):
        raise ModelFileError(
            f"{source}: this is a Git LFS pointer, not the model; run `git lfs pull` in its "
            "repository or get the model with `edgekit models pull`"
        )
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head")):
        raise ModelFileError(
            f"{source}: this is an HTML/XML page (probably a download error page saved as .tflite), "
            "not a model; download it again from the model's real URL"
        )
    if len(data) < _MIN_SIZE:
        raise ModelFileError(f"{source}: only {len(data)} bytes, too short to be a .tflite model")
    if data[4:8] != b"TFL3":
        if data[:2] == b"PK":
            what = "a zip archive"
        elif data[:4] == b"\x89HDF":
            what = "a Keras/HDF5 file"
        elif data[:1] in (b"{", b"["):
            what = "a JSON file"
        else:
            what = "not a TensorFlow Lite flatbuffer"
        raise ModelFileError(
            f"{source}: {what} (no 'TFL3' identifier); a .tflite model is needed "
            "(convert it with the TFLite converter, or pull one with `edgekit models pull`)"
        )


class _Bounds:
    """Bounds checks the generated flatbuffer accessors do not make."""

    def __init__(self, size: int):
        self.size = size

    def count(self, n: int, what: str) -> int:
        # Each element takes at least 4 bytes, so a larger count means a corrupt length field
        # (and would otherwise make us loop for minutes over garbage).
        if n < 0 or n * 4 > self.size:
            raise ValueError(f"{what} count {n} does not fit in a {self.size}-byte file")
        return n


def read_graph(data: bytes, source: str = "model") -> Graph:
    """Walk the flatbuffer; any inconsistency becomes a ModelFileError naming the file."""
    sniff(data, source)
    try:
        return _walk(data)
    except ModelFileError:
        raise
    except struct.error:
        raise ModelFileError(
            f"{source}: truncated or corrupt .tflite file: its tables point past its end "
            f"({len(data)} bytes); download it again or verify it with `edgekit models verify`"
        ) from None
    except UnicodeDecodeError:
        raise ModelFileError(
            f"{source}: corrupt .tflite file: a tensor name is not valid UTF-8; download it again "
            "or verify it with `edgekit models verify`"
        ) from None
    except (ValueError, IndexError, KeyError, TypeError, OverflowError, AttributeError) as exc:
        raise ModelFileError(
            f"{source}: corrupt or truncated .tflite file ({exc}); download it again "
            "or verify it with `edgekit models verify`"
        ) from None


def read_graph_file(path: str | Path) -> tuple[Graph, bytes]:
    p = Path(path)
    try:
        data = p.read_bytes()
    except IsADirectoryError:
        raise ModelFileError(f"{p}: is a directory, not a .tflite file") from None
    except PermissionError:
        raise ModelFileError(f"{p}: permission denied; check the file's owner and mode") from None
    except FileNotFoundError:
        from edgekit.errors import ModelNotFoundError

        raise ModelNotFoundError(f"{p}: no such model file") from None
    return read_graph(data, str(p)), data


def _walk(data: bytes) -> Graph:
    b = _Bounds(len(data))
    model = tflite.Model.GetRootAs(data, 0)
    version = model.Version()
    n_codes = b.count(model.OperatorCodesLength(), "operator code")
    codes: list[tuple[str, bool]] = []
    for i in range(n_codes):
        oc = model.OperatorCodes(i)
        builtin = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        if builtin == tflite.BuiltinOperator.CUSTOM:
            raw = oc.CustomCode()
            codes.append(((raw or b"?").decode("utf-8", "replace"), True))
        elif builtin in _OP_NAMES:
            codes.append((_OP_NAMES[builtin], False))
        else:
            codes.append((f"BUILTIN_{builtin}", False))

    n_buffers = b.count(model.BuffersLength(), "buffer")
    buffer_sizes: list[int] = []
    for i in range(n_buffers):
        buf = model.Buffers(i)
        offset, size = buf.Offset(), buf.Size()
        if offset > 1:  # data stored after the flatbuffer (models over 2 GB)
            if offset + size > len(data):
                raise ValueError(f"buffer {i} ends past the end of the file")
            buffer_sizes.append(size)
        else:
            n = buf.DataLength()
            if n:
                # Touch the last byte so a truncated file fails here, not in C++.
                start = buf._tab.Vector(buf._tab.Offset(4))
                if start + n > len(data):
                    raise ValueError(f"buffer {i} ({n} bytes) ends past the end of the file")
            buffer_sizes.append(n)

    n_sub = b.count(model.SubgraphsLength(), "subgraph")
    if n_sub < 1:
        raise ValueError("the model has no subgraph")
    sg = model.Subgraphs(0)
    tensors: list[TensorInfo] = []
    for t in range(b.count(sg.TensorsLength(), "tensor")):
        ten = sg.Tensors(t)
        shape = tuple(int(ten.Shape(k)) for k in range(b.count(ten.ShapeLength(), "dimension")))
        dtype = _TYPE_NAMES.get(ten.Type(), f"type{ten.Type()}")
        buf_index = ten.Buffer()
        if not 0 <= buf_index < max(n_buffers, 1):
            raise ValueError(f"tensor {t} points at buffer {buf_index} of {n_buffers}")
        const = buffer_sizes[buf_index] if n_buffers else 0
        scales: tuple[float, ...] = ()
        zps: tuple[int, ...] = ()
        qdim = 0
        q = ten.Quantization()
        if q is not None:
            # AsNumpy reads the whole vector at once (per-channel scales run to thousands) and
            # raises ValueError when it would read past the end of the file.
            if b.count(q.ScaleLength(), "scale"):
                scales = tuple(float(v) for v in q.ScaleAsNumpy())
            if b.count(q.ZeroPointLength(), "zero point"):
                zps = tuple(int(v) for v in q.ZeroPointAsNumpy())
            qdim = q.QuantizedDimension()
        if const and dtype in _ITEMSIZE and all(d >= 0 for d in shape):
            expected = int(np.prod(shape, dtype=np.int64)) * _ITEMSIZE[dtype] if shape else _ITEMSIZE[dtype]
            if expected != const:
                raise ValueError(
                    f"tensor {t} holds {const} bytes of data but its shape {list(shape)} "
                    f"needs {expected}"
                )
        name = ten.Name()
        tensors.append(
            TensorInfo(
                index=t,
                # strict: LiteRT's Python API itself fails on a name that is not UTF-8
                name=(name or b"").decode("utf-8"),
                shape=shape,
                dtype=dtype,
                scales=scales,
                zero_points=zps,
                quantized_dimension=qdim,
                const_bytes=const,
            )
        )
    n_t = len(tensors)

    def check_indices(idx, what):
        for i in idx:
            if not -1 <= i < n_t:
                raise ValueError(f"{what} refers to tensor {i} of {n_t}")
        return tuple(int(i) for i in idx)

    ops: list[OperatorInfo] = []
    for k in range(b.count(sg.OperatorsLength(), "operator")):
        op = sg.Operators(k)
        ci = op.OpcodeIndex()
        if not 0 <= ci < n_codes:
            raise ValueError(f"operator {k} uses opcode {ci} of {n_codes}")
        name, custom = codes[ci]
        ins = check_indices([op.Inputs(j) for j in range(b.count(op.InputsLength(), "input"))], f"operator {k}")
        outs = check_indices([op.Outputs(j) for j in range(b.count(op.OutputsLength(), "output"))], f"operator {k}")
        ops.append(OperatorInfo(k, name, custom, ins, outs, _options(op, name)))

    inputs = check_indices([sg.Inputs(j) for j in range(b.count(sg.InputsLength(), "input"))], "subgraph inputs")
    outputs = check_indices([sg.Outputs(j) for j in range(b.count(sg.OutputsLength(), "output"))], "subgraph outputs")
    if not inputs or not outputs:
        raise ValueError("the model's graph declares no inputs or no outputs")

    meta = []
    for i in range(b.count(model.MetadataLength(), "metadata")):
        m = model.Metadata(i)
        meta.append((m.Name() or b"").decode("utf-8", "replace"))
    desc = (model.Description() or b"").decode("utf-8", "replace")
    return Graph(
        version=version,
        description=desc,
        tensors=tuple(tensors),
        operators=tuple(ops),
        inputs=inputs,
        outputs=outputs,
        subgraphs=n_sub,
        metadata_names=tuple(meta),
        associated_files=tuple(_zipped_names(data)),
        size_bytes=len(data),
    )


def _options(op, name: str) -> dict:
    """The few builtin options cost models and reports need."""
    table = op.BuiltinOptions()
    if table is None:
        return {}
    if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        cls = tflite.Conv2DOptions if name == "CONV_2D" else tflite.DepthwiseConv2DOptions
        o = cls()
        o.Init(table.Bytes, table.Pos)
        opts = {"stride": (o.StrideH(), o.StrideW()), "padding": "SAME" if o.Padding() == 0 else "VALID"}
        if name == "DEPTHWISE_CONV_2D":
            opts["depth_multiplier"] = o.DepthMultiplier()
        return opts
    if name in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
        o = tflite.Pool2DOptions()
        o.Init(table.Bytes, table.Pos)
        return {"stride": (o.StrideH(), o.StrideW()), "filter": (o.FilterHeight(), o.FilterWidth())}
    return {}


def _zipped_names(data: bytes) -> list[str]:
    # TFLite metadata appends its associated files (labels) as a zip archive to the flatbuffer.
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return zf.namelist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError):
        return []


def read_associated_file(data: bytes, name: str) -> bytes | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return zf.read(name)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError, zipfile.LargeZipFile):
        return None
