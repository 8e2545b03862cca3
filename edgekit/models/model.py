"""A loaded model: what it takes (waveform, log-mel patch, image), what it gives, its labels.

Loading checks the file in Python first (:mod:`edgekit.models.tflite`), then builds a throw-away
interpreter in a forked child (:func:`edgekit.models.runtime.probe`), and only then loads it in this
process: no model file, however broken, can take the process down.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np

from edgekit.errors import (
    EdgekitError,
    EdgeTPUError,
    ModelFileError,
    FallbackWarning,
    EdgekitWarning,
    LabelsError,
    UnsupportedModelError,
)
from edgekit.quant import InputQuant
from edgekit.models.tflite import Graph, read_graph_file
from edgekit.models.labels import model_labels
from edgekit.params import FeatureParams
from edgekit.models.paths import resolve_model
from edgekit.models.runtime import Device, LoadedInterpreter, make_interpreter, parse_device, probe

WAVEFORM, LOGMEL, IMAGE = "waveform", "log-mel", "image"


def input_kind(graph: Graph, params: FeatureParams = FeatureParams()) -> str:
    """Classify the model's input, or raise UnsupportedModelError saying what was expected."""
    if len(graph.inputs) != 1:
        raise UnsupportedModelError(f"the model has {len(graph.inputs)} inputs; edgekit drives single-input models")
    t = graph.input_tensors()[0]
    shape = tuple(d for d in t.shape)
    squeezed = tuple(d for d in shape if d != 1)
    if t.dtype == "float32" and len(squeezed) == 1 and squeezed[0] == params.patch_samples:
        return WAVEFORM
    if squeezed == (params.patch_frames, params.mel_bands) and t.dtype in ("float32", "int8", "uint8"):
        return LOGMEL
    if len(shape) == 4 and shape[0] == 1 and shape[3] == 3 and t.dtype in ("uint8", "int8", "float32"):
        return IMAGE
    raise UnsupportedModelError(
        f"unsupported input {list(shape)} {t.dtype}: edgekit drives waveform models "
        f"([{params.patch_samples}] float32), log-mel models ([1, {params.patch_frames}, "
        f"{params.mel_bands}]) and image models ([1, H, W, 3])"
    )


def logmel_quant(graph: Graph) -> InputQuant | None:
    """The quantisation the model's body applies to its log-mel input.

    An int8 input carries it directly; a float input followed by a QUANTIZE op (Coral's
    yamnet_spectra_in) carries it on that op's output.
    """
    t = graph.input_tensors()[0]
    if t.dtype in ("int8", "uint8") and t.quantized:
        return InputQuant(t.scales[0], t.zero_points[0])
    for op in graph.operators:
        if op.opcode == "QUANTIZE" and op.inputs and op.inputs[0] == t.index:
            q = graph.tensors[op.outputs[0]]
            if q.quantized and q.dtype == "int8":
                return InputQuant(q.scales[0], q.zero_points[0])
    return None


class Model:
    """A model ready to run: feed it one window, get float scores per class."""

    def __init__(self, path: Path, graph: Graph, loaded: LoadedInterpreter, labels: tuple[str, ...] | None,
                 params: FeatureParams = FeatureParams()):
        self.path = path
        self.graph = graph
        self.loaded = loaded
        self.params = params
        self.kind = input_kind(graph, params)
        self.input_quant = logmel_quant(graph) if self.kind == LOGMEL else None
        it = loaded.interpreter
        self._in = it.get_input_details()[0]
        outputs = it.get_output_details()
        self._out = outputs[0]
        # A model rewritten by :func:`edgekit.models.embedding.with_embedding_output` has YAMNet's
        # embedding as its second output.
        self._emb = outputs[1] if len(outputs) > 1 else None
        self.num_classes = int(np.prod(self._out["shape"]))
        if labels is not None and len(labels) != self.num_classes:
            raise LabelsError(
                f"{len(labels)} labels for a model with {self.num_classes} outputs; "
                "pass the labels file that belongs to this model (--labels)"
            )
        self.labels = labels or tuple(f"class {i}" for i in range(self.num_classes))

    @property
    def interpreter(self):
        return self.loaded.interpreter

    @property
    def device(self) -> Device:
        return self.loaded.device

    def _set_input(self, x: np.ndarray) -> None:
        self.interpreter.set_tensor(self._in["index"], x.reshape(self._in["shape"]))

    @property
    def has_embedding(self) -> bool:
        return self._emb is not None

    @property
    def embedding_dims(self) -> int | None:
        """The embedding's size (YAMNet: 1024), for a model loaded with ``embedding=True``; else None."""
        return int(np.prod(self._emb["shape"])) if self._emb is not None else None

    def embedding(self) -> np.ndarray:
        """The embedding of the window last run (float32), for a model loaded with ``embedding=True``."""
        if self._emb is None:
            raise UnsupportedModelError(f"{self.path.name} was loaded without its embedding output")
        return self._read(self._emb)

    def _scores(self) -> np.ndarray:
        return self._read(self._out)

    def _read(self, detail) -> np.ndarray:
        raw = self.interpreter.get_tensor(detail["index"]).reshape(-1)
        scale, zp = detail["quantization"]
        if raw.dtype in (np.int8, np.uint8) and scale:
            # Dequantise in int64 so uint8 - zero_point cannot wrap (pycoral does the same).
            return ((raw.astype(np.int64) - zp) * scale).astype(np.float32)
        return raw.astype(np.float32, copy=True)

    def run(self, x: np.ndarray) -> np.ndarray:
        """One window in real units (waveform in [-1, 1], log-mel, or image pixels) -> scores."""
        dtype = self._in["dtype"]
        if dtype in (np.int8, np.uint8):
            scale, zp = self._in["quantization"]
            info = np.iinfo(dtype)
            x = np.clip(np.round(np.asarray(x, np.float64) / scale) + zp, info.min, info.max).astype(dtype) \
                if np.asarray(x).dtype.kind == "f" else np.asarray(x, dtype)
        else:
            x = np.asarray(x, dtype=np.float32)
        self._set_input(x)
        self.interpreter.invoke()
        return self._scores()

    def run_codes(self, codes: np.ndarray) -> np.ndarray:
        """One log-mel patch as int8 codes in :attr:`input_quant` -> scores.

        An int8-input model takes the codes as they are; a float-input model gets them
        dequantised once here, and its QUANTIZE op maps them back to the very same codes.
        """
        if self.input_quant is None:
            raise UnsupportedModelError("this model takes no quantised log-mel input")
        if self._in["dtype"] == np.int8:
            self._set_input(np.asarray(codes, np.int8))
        else:
            q = self.input_quant
            self._set_input(((codes.astype(np.int32) - q.zero_point) * np.float32(q.scale)).astype(np.float32))
        self.interpreter.invoke()
        return self._scores()

    def describe(self) -> dict:
        return {
            "model": str(self.path),
            "kind": self.kind,
            "device": str(self.device),
            "runtime": str(self.loaded.runtime),
            "xnnpack": self.loaded.xnnpack,
            "edgetpu": self.loaded.edgetpu,
        }


def edgetpu_twin(path: Path) -> Path | None:
    """The CPU model that an ``_edgetpu.tflite`` file was compiled from, if it sits beside it."""
    if not path.stem.endswith("_edgetpu"):
        return None
    twin = path.with_name(path.stem.removesuffix("_edgetpu") + path.suffix)
    return twin if twin.is_file() else None


def load_model(
    spec: str | Path,
    device: str | Device = "cpu",
    *,
    labels: str | Path | None = None,
    fallback: str | None = None,
    xnnpack: bool = True,
    params: FeatureParams = FeatureParams(),
    embedding: bool = False,
) -> Model:
    """Resolve, check and load a model on a device.

    ``fallback="cpu"``: when the Edge TPU cannot be used, warn once and run the CPU model
    instead (for an ``_edgetpu`` file: its CPU twin beside it). ``embedding=True``: the file is
    rewritten in memory so that YAMNet's 1024-d embedding is a second output
    (:meth:`Model.embedding`).
    """
    dev = parse_device(device) if isinstance(device, str) else device
    if fallback not in (None, "cpu"):
        raise UnsupportedModelError(f"unknown fallback {fallback!r}: the only fallback is 'cpu'")
    path = resolve_model(spec)
    graph, data = read_graph_file(path)
    input_kind(graph, params)  # refuse unsupported inputs before any interpreter is built
    labels_data = data  # the labels metadata is read from the file as published
    if embedding:
        if graph.is_edgetpu:
            # The compiled body's outputs are fixed by the compiler: until a model built with both
            # outputs is compiled, a custom sound runs on the CPU body.
            twin = edgetpu_twin(path)
            if twin is None:
                raise UnsupportedModelError(f"{path.name} is compiled for the Edge TPU without an embedding output, "
                                            "and its CPU twin is not beside it; custom sounds need the CPU model")
            warnings.warn(f"{path.name} has no embedding output; custom sounds run on its CPU twin {twin.name}",
                          FallbackWarning, stacklevel=2)
            return load_model(twin, "cpu", labels=labels, xnnpack=xnnpack, params=params, embedding=True)
        from edgekit.models.embedding import with_embedding_output

        data = with_embedding_output(data)
    if graph.is_edgetpu and not dev.is_edgetpu:
        twin = edgetpu_twin(path)
        if fallback == "cpu" and twin:
            warnings.warn(f"{path.name} needs an Edge TPU; running its CPU twin {twin.name} on {dev}",
                          FallbackWarning, stacklevel=2)
            return load_model(twin, dev, labels=labels, xnnpack=xnnpack, params=params, embedding=embedding)
        raise EdgeTPUError(
            f"{path}: this model is compiled for the Edge TPU; run it with --device usb or pci, or "
            + (f"use its CPU twin {twin}" if twin else "use the CPU model it was compiled from")
        )
    if dev.is_edgetpu and not graph.is_edgetpu:
        warnings.warn(f"{path.name} is not compiled for the Edge TPU; the delegate will leave it on the CPU "
                      "(compile it with edgetpu_compiler)", EdgekitWarning, stacklevel=2)
    names, _ = model_labels(path, graph, labels_data, labels)
    try:
        return open_model(path, graph, data, dev, names, xnnpack=xnnpack, params=params)
    except EdgeTPUError as exc:
        if fallback != "cpu":
            raise
        cpu_model = edgetpu_twin(path) if graph.is_edgetpu else path
        if cpu_model is None:
            raise EdgeTPUError(f"{exc}; and no CPU twin of {path.name} was found beside it for --fallback cpu") from None
        warnings.warn(f"{exc}; falling back to the CPU with {cpu_model.name}", FallbackWarning, stacklevel=2)
        return load_model(cpu_model, "cpu", labels=labels, xnnpack=xnnpack, params=params, embedding=embedding)


def load_configured(settings, hop_seconds: float, embedding: bool = False) -> Model:
    """The model of a config's ``[model]`` section, loaded as the daemon loads it (the daemon, a
    reload, ``evaluate`` and ``calibrate`` all come here, so they score with the same model).

    ``settings``: anything with ``model``, ``device``, ``labels`` and ``fallback``;
    ``embedding``: custom sounds score YAMNet's embedding, so the model gets it as a second output.
    """
    return load_model(settings.model, settings.device, labels=settings.labels, fallback=settings.fallback,
                      params=FeatureParams().with_hop(hop_seconds), embedding=embedding)


def open_model(path: Path, graph: Graph, data: bytes, dev: Device, names: tuple[str, ...] | None, *,
               xnnpack: bool = True, params: FeatureParams = FeatureParams(),
               timings: dict | None = None) -> Model:
    """The steps every loader shares (:func:`load_model`, the benchmark): probe the bytes in a
    child process, build the interpreter (``timings["init_ms"]``: how long that took) and wrap it."""
    probe(data, str(path), allocate=not graph.is_edgetpu, xnnpack=xnnpack)
    t0 = time.perf_counter_ns()
    loaded = make_interpreter(data, dev, xnnpack=xnnpack, source=str(path))
    if timings is not None:
        timings["init_ms"] = round((time.perf_counter_ns() - t0) / 1e6, 4)
    try:
        return Model(path, graph, loaded, names, params)
    except (ValueError, RuntimeError, IndexError, KeyError) as exc:
        if isinstance(exc, EdgekitError):
            raise
        # The runtime's Python layer choking on what its C++ layer accepted: still a bad file.
        raise ModelFileError(f"{path}: the runtime cannot describe this model ({exc}); the file is corrupt") from None
