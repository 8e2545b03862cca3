"""Weights out of a quantised .tflite into the matching Keras model.

The official ``yamnet.tflite`` carries its body as int8 per-channel weights and int32 biases
with batch norm already folded in; the zoo's legacy MobileNets carry uint8 per-tensor weights
with a zero point, and a 1×1 conv on the pooled map where the Keras model has a dense layer. Read through the interpreter, dequantised with the file's
own scales and zero points, and transposed to Keras's layouts, they give the float weights of a
conv + bias + ReLU6 network (:func:`edgekit.build.architectures.keras_model`) that computes what
the int8 graph computes, up to its rounding.

Layers are matched by order: the n-th CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED with int8 or
uint8 weights is the n-th Keras layer that holds weights, and every shape must agree. (The float
FULLY_CONNECTED in yamnet.tflite's front end, the mel matrix, is not quantised, so it is passed over.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.errors import LabelsError, UnsupportedModelError
from edgekit.models.tflite import Graph, read_graph_file

_WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


def dequantise(values: np.ndarray, scales, zero_points, axis: int) -> np.ndarray:
    """(q - zero_point) * scale, per channel along ``axis`` (or one scale for the tensor)."""
    q = values.astype(np.int64)
    shape = [1] * q.ndim
    if len(scales) > 1:
        shape[axis] = len(scales)
    scale = np.asarray(scales, np.float64).reshape(shape)
    zp = np.asarray(zero_points or [0], np.int64)
    zp = zp.reshape(shape) if zp.size == scale.size else zp.reshape(-1)[0]
    return ((q - zp) * scale).astype(np.float32)


def quantised_layers(graph: Graph, get_tensor) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(opcode, weights, bias) per quantised weighted op in graph order, float, in TFLite layout:
    conv [out, kh, kw, in], depthwise [1, kh, kw, channels], fully connected [out, in]."""
    layers = []
    for op in graph.operators:
        if op.opcode not in _WEIGHTED or len(op.inputs) < 2:
            continue
        w = graph.tensors[op.inputs[1]]
        if w.dtype not in ("int8", "uint8") or not w.is_constant:
            continue
        weights = dequantise(get_tensor(w.index), w.scales, w.zero_points, w.quantized_dimension)
        if len(op.inputs) > 2 and op.inputs[2] >= 0:
            b = graph.tensors[op.inputs[2]]
            bias = dequantise(get_tensor(b.index), b.scales, b.zero_points, 0)
        else:
            bias = np.zeros(weights.shape[0] if op.opcode != "DEPTHWISE_CONV_2D" else weights.shape[3], np.float32)
        layers.append((op.opcode, weights, bias))
    return layers


def to_keras_layout(opcode: str, weights: np.ndarray) -> np.ndarray:
    if opcode in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        return weights.transpose(1, 2, 3, 0)  # -> [kh, kw, in, out] / [kh, kw, channels, 1]
    return weights.T  # [out, in] -> [in, out]


def read_tflite_layers(path) -> tuple[Graph, bytes, list]:
    from edgekit.models.runtime import make_interpreter

    graph, data = read_graph_file(path)
    if graph.is_edgetpu:
        raise UnsupportedModelError(f"{path}: compiled for the Edge TPU, its weights are inside the "
                                    "compiled blob; transplant from the CPU model it came from")
    # The built-in kernels leave every constant readable; XNNPACK may pack them away.
    it = make_interpreter(data, "cpu", xnnpack=False, source=str(path)).interpreter
    return graph, data, quantised_layers(graph, it.get_tensor)


def load_layers(model, layers, source: str = "model") -> None:
    """Set the Keras model's weights from ``layers``: (kind, kernel, bias) in Keras layout, one
    per weighted layer in order; any disagreement in count or shape is an error naming both."""
    from edgekit.build.architectures import weighted_layers

    targets = weighted_layers(model)
    if len(targets) != len(layers):
        raise UnsupportedModelError(
            f"{source}: {len(layers)} weighted layers, but {model.name} has {len(targets)}; "
            "it is not the same architecture")
    for i, (layer, (kind, kernel, bias)) in enumerate(zip(targets, layers)):
        want = [tuple(v.shape) for v in layer.weights]
        if len(want[0]) == 2 and kernel.ndim == 4 and kernel.shape[:2] == (1, 1):
            kernel = kernel[0, 0]  # a 1x1 conv on the pooled 1x1 map is the dense layer
        if want != [kernel.shape, bias.shape]:
            raise UnsupportedModelError(
                f"{source}: weighted layer {i} ({kind}) has weights {list(kernel.shape)} and bias "
                f"{list(bias.shape)}, but {layer.name} wants {[list(w) for w in want]}; "
                "not the same architecture (check --alpha / --resolution)")
        layer.set_weights([kernel, bias])


def load_tflite_layers(model, path) -> tuple[Graph, bytes]:
    graph, data, layers = read_tflite_layers(path)
    load_layers(model, [(op, to_keras_layout(op, w), b) for op, w, b in layers], str(path))
    return graph, data


def keras_file_layers(path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(kind, kernel, bias) of a saved Keras model's conv / depthwise / dense layers, in order,
    with each BatchNormalization folded into the layer before it, so a MobileNet trained the
    usual way (conv without bias + BN + ReLU6) loads into the bias-only form built here."""
    from edgekit.build import require_tensorflow

    _, keras = require_tensorflow()
    try:
        saved = keras.models.load_model(path, compile=False)
    except (ValueError, TypeError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UnsupportedModelError(f"{path}: Keras cannot load it ({first})") from None
    out: list[list] = []
    previous = None  # the kind of the layer just before, which a BatchNormalization folds into
    for layer in saved.layers:
        kind = type(layer).__name__
        if kind in ("Conv2D", "DepthwiseConv2D", "Dense"):
            kernel = layer.get_weights()[0].astype(np.float64)
            channels = kernel.shape[2] if kind == "DepthwiseConv2D" else kernel.shape[-1]
            bias = layer.get_weights()[1] if layer.use_bias else np.zeros(channels)
            out.append([kind, kernel, bias.astype(np.float64)])
        elif kind == "BatchNormalization":
            if previous not in ("Conv2D", "DepthwiseConv2D", "Dense"):
                raise UnsupportedModelError(f"{path}: {layer.name} does not follow a conv or dense layer, "
                                            "so it cannot be folded into one")
            value = lambda w, default: default if w is None else np.asarray(w.numpy(), np.float64)  # noqa: E731
            gain = value(layer.gamma, 1.0) / np.sqrt(value(layer.moving_variance, 1.0) + layer.epsilon)
            prev = out[-1]
            # depthwise kernels are [kh, kw, channels, 1]: the channel axis is 2, not the last
            prev[1] = prev[1] * (gain[:, None] if prev[0] == "DepthwiseConv2D" else gain)
            prev[2] = (prev[2] - value(layer.moving_mean, 0.0)) * gain + value(layer.beta, 0.0)
        previous = kind
    return [(k, w.astype(np.float32), b.astype(np.float32)) for k, w, b in out]


def load_weights_file(model, path) -> None:
    """--weights PATH: a whole .keras model (matched layer by layer), or a .weights.h5 of the
    very same Keras architecture."""
    import warnings

    if str(path).endswith(".keras"):
        load_layers(model, keras_file_layers(path), str(path))
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras warns per layer before it raises
        try:
            model.load_weights(path)
        except (ValueError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UnsupportedModelError(f"{path} does not fit {model.name}: {first}") from None


def transplant_tflite(model, path) -> tuple[str, ...] | None:
    """Load a quantised .tflite's weights into ``model``; returns the labels it carries (embedded,
    or a labels file beside it), so the rebuilt model names its classes the same way."""
    from edgekit.models.labels import model_labels

    graph, data = load_tflite_layers(model, path)
    try:
        return model_labels(Path(path), graph, data)[0]
    except LabelsError:
        return None  # labels are a convenience here; the weights are what was asked for


def transplant_official(model, official: str = "yamnet") -> tuple[str, ...] | None:
    """Load the official YAMNet's weights into ``model``; returns the file's embedded labels."""
    from edgekit.models.paths import resolve_model

    return transplant_tflite(model, resolve_model(official))


# --- proof --------------------------------------------------------------------------------------


def official_agreement(rebuilt, official, spectra, recordings: dict, params=None) -> dict:
    """Window by window, over ``recordings`` ({name: 16 kHz int16}), three comparisons of a rebuilt
    log-mel model (fed edgekit's float front end) with :class:`edgekit.proof.Agreement` figures:

    ``yamnet.tflite``: against the official waveform model end to end (its own front end);
    ``yamnet_spectra_in.tflite``: against Coral's int8 body fed the very same patches;
    ``official log-mel in``: the rebuilt body fed the official graph's own log-mel tensor, so
    only the two int8 bodies differ.
    ``official`` is loaded with :func:`edgekit.proof.load_official`; ``spectra`` may be None.
    """
    from edgekit.listen import listen_pcm
    from edgekit.params import FeatureParams
    from edgekit.proof import Agreement, compare, official_logmel

    params = params or FeatureParams()
    sums: dict[str, list] = {}

    def scores(model, pcm):  # edgekit's side: the one path the daemon runs
        return np.stack([w.scores for w in listen_pcm(model, pcm, frontend="float", params=params)])

    for pcm in recordings.values():
        feats, official_scores = official_logmel(official, pcm, params)
        ours = scores(rebuilt, pcm)
        pairs = {"yamnet.tflite": (official_scores, ours),
                 "official log-mel in": (official_scores, np.stack([rebuilt.run(f) for f in feats]))}
        if spectra is not None:
            pairs["yamnet_spectra_in.tflite"] = (scores(spectra, pcm), ours)
        for key, (a, b) in pairs.items():
            agree, delta = compare(a, b)
            s = sums.setdefault(key, [0, 0, 0.0])
            s[0], s[1], s[2] = s[0] + len(a), s[1] + agree, s[2] + delta * len(a)
    return {k: Agreement(n, agree, total / n) for k, (n, agree, total) in sums.items()}


def image_agreement(rebuilt, original, images) -> "Agreement":
    """Top-1 agreement and mean |Δscore| of two image models (:class:`edgekit.models.model.Model`) over
    ``images`` ([N, H, W, 3] in [-1, 1]), e.g. an int8 rebuild of a uint8 MobileNet against it."""
    from edgekit.proof import Agreement, compare

    a = np.stack([original.run(x) for x in images])
    b = np.stack([rebuilt.run(x) for x in images])
    agree, delta = compare(a, b)
    return Agreement(len(images), agree, delta)
