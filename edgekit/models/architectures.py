"""MobileNet v1, MobileNet v2 and YAMNet as plain layer lists: the one copy of their tables.

Pure Python, so shapes and costs are checked without TensorFlow: the MAC counter's analytic
tables (:func:`edgekit.models.macs.mobilenet_v1_table`) are these specs' rows, checked against
the published .tflite graphs and papers, and :func:`edgekit.build.architectures.keras_model`
turns each row into exactly one Keras layer, and so into one op of the converted graph.

Convolutions carry a bias and no batch norm: a converted graph has batch norm folded into conv
weights and biases anyway, so this is the form an official ``.tflite``'s weights can be loaded
into (:mod:`edgekit.build.transplant`), and it trains fine from scratch for small models too.
Activations are ReLU6 everywhere: the published int8/uint8 graphs clamp at 6 (their activation
scale is 6/255), whatever the float model used.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil

from edgekit.models.macs import LayerCost

ALPHAS = (1.0, 0.75, 0.5, 0.25)
RESOLUTIONS = (224, 192, 160, 128)
IMAGE_CLASSES = 1001  # ImageNet plus a background class, as the model zoo's files
YAMNET_CLASSES = 521
YAMNET_INPUT = (96, 64)  # log-mel frames x bands

# (depthwise stride, pointwise channels): Table 2 of the MobileNet paper. The last depthwise
# is "s2" there, but it maps 7x7 to 7x7; TF-slim, Keras and the .tflite files use stride 1.
V1_SEPARABLE = ((1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512),
                *((1, 512),) * 5, (2, 1024), (1, 1024))

# (expansion t, channels c, repeats n, first stride s): Table 2 of the MobileNet v2 paper.
V2_BOTTLENECKS = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                  (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


@dataclass(frozen=True)
class Layer:
    """One op of the body or head. ``hw`` are (height, width) of the input and output."""

    op: str  # conv | dw | avgpool (pool over the whole map) | mean | fc
    kernel: tuple[int, int]
    stride: int
    cin: int
    cout: int
    in_hw: tuple[int, int]
    out_hw: tuple[int, int]
    relu6: bool = True
    residual_from: int | None = None  # add the output of this earlier row (-1: the input)

    @property
    def macs(self) -> int:
        oh, ow = self.out_hw
        kh, kw = self.kernel
        if self.op == "conv":
            return oh * ow * self.cout * kh * kw * self.cin
        if self.op == "dw":
            return oh * ow * self.cout * kh * kw
        if self.op == "fc":
            return self.cin * self.cout
        return 0

    @property
    def weights(self) -> int:
        kh, kw = self.kernel
        return {"conv": kh * kw * self.cin * self.cout, "dw": kh * kw * self.cin,
                "fc": self.cin * self.cout}.get(self.op, 0)

    @property
    def biases(self) -> int:
        return self.cout if self.weights else 0


@dataclass(frozen=True)
class Arch:
    name: str  # e.g. mobilenet_v1_0.5_160, yamnet_0.25
    family: str  # mobilenet-v1 | mobilenet-v2 | yamnet
    alpha: float
    input_shape: tuple[int, ...]  # what the model takes, without the batch
    layers: tuple[Layer, ...]
    classes: int
    output: str  # softmax | sigmoid

    @property
    def audio(self) -> bool:
        return self.family == "yamnet"

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.layers)

    @property
    def params(self) -> int:
        return sum(r.weights + r.biases for r in self.layers)

    def cost_rows(self) -> tuple[LayerCost, ...]:
        """The spec as :class:`edgekit.models.macs.LayerCost` rows, comparable with its tables."""
        rows = []
        for i, r in enumerate(self.layers):
            op = {"conv": "CONV_2D", "dw": "DEPTHWISE_CONV_2D", "fc": "FULLY_CONNECTED",
                  "avgpool": "AVERAGE_POOL_2D", "mean": "MEAN"}[r.op]
            filt = {"conv": (*r.kernel, r.cin, r.cout), "dw": (*r.kernel, r.cin),
                    "fc": (r.cin, r.cout)}.get(r.op, r.in_hw)
            pooled = r.in_hw[0] * r.in_hw[1] * r.cin if r.op in ("avgpool", "mean") else 0
            out = (1, r.cout) if r.op == "fc" else (1, *r.out_hw, r.cout)
            stride = None if r.op == "fc" else (r.stride, r.stride)  # as a graph's FC: no stride
            rows.append(LayerCost(i, op, stride, filt, (1, *r.in_hw, r.cin), out,
                                  r.macs, r.weights, r.biases, pooled))
        return tuple(rows)


class _Body:
    """Appends rows while tracking the feature map, so every spec states each shape once."""

    def __init__(self, hw: tuple[int, int], channels: int):
        self.hw, self.c, self.rows = hw, channels, []

    def add(self, op: str, k: int, stride: int, cout: int, relu6: bool = True,
            residual_from: int | None = None) -> int:
        # SAME padding: the output side is ceil(input / stride).
        out = (ceil(self.hw[0] / stride), ceil(self.hw[1] / stride))
        self.rows.append(Layer(op, (k, k), stride, self.c, cout, self.hw, out, relu6, residual_from))
        self.hw, self.c = out, cout
        return len(self.rows) - 1

    def head(self, classes: int, pool: str) -> tuple[Layer, ...]:
        self.rows.append(Layer(pool, self.hw, 1, self.c, self.c, self.hw, (1, 1), False))
        self.rows.append(Layer("fc", (1, 1), 1, self.c, classes, (1, 1), (1, 1), False))
        return tuple(self.rows)


def check_alpha(alpha: float) -> float:
    if not alpha > 0:
        raise ValueError(f"width multiplier must be positive, not {alpha}")
    return float(alpha)


def _v1_body(alpha: float, hw: tuple[int, int], channels: int) -> _Body:
    # max(int(c * alpha), 8): TF-slim's rule, which the published files use.
    depth = lambda c: max(int(c * alpha), 8)  # noqa: E731
    b = _Body(hw, channels)
    b.add("conv", 3, 2, depth(32))
    for stride, n in V1_SEPARABLE:
        b.add("dw", 3, stride, b.c)
        b.add("conv", 1, 1, depth(n))
    return b


def mobilenet_v1(alpha: float = 1.0, resolution: int = 224, classes: int = IMAGE_CLASSES) -> Arch:
    """Table 2 of the MobileNet paper on a ``resolution``² RGB image.

    The head is average pool and a fully connected layer, as in the paper; the zoo's files
    compute the same products with a 1×1 conv on the pooled map.
    """
    alpha = check_alpha(alpha)
    body = _v1_body(alpha, (resolution, resolution), 3)
    return Arch(f"mobilenet_v1_{alpha}_{resolution}", "mobilenet-v1", alpha,
                (resolution, resolution, 3), body.head(classes, "avgpool"), classes, "softmax")


def yamnet(alpha: float = 1.0, classes: int = YAMNET_CLASSES) -> Arch:
    """Table 3: the MobileNet v1 body on a 96×64 log-mel patch (one channel), 521 sigmoids.

    The head is a global mean and a dense layer, which convert to the MEAN and
    FULLY_CONNECTED ops of the official yamnet.tflite, so its weights map row for row.
    """
    alpha = check_alpha(alpha)
    body = _v1_body(alpha, YAMNET_INPUT, 1)
    name = "yamnet" if alpha == 1.0 else f"yamnet_{alpha}"
    return Arch(name, "yamnet", alpha, YAMNET_INPUT, body.head(classes, "mean"), classes, "sigmoid")


def make_divisible(value: float, divisor: int = 8) -> int:
    """MobileNet v2's channel rounding (TF-slim and Keras): nearest multiple, at most 10 % down."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def mobilenet_v2(alpha: float = 1.0, resolution: int = 224, classes: int = IMAGE_CLASSES) -> Arch:
    """Inverted residual bottlenecks (expansion 6) after a 3×3 stem; a 1×1 conv to 1280 before
    the head. The last conv stays 1280 wide for α < 1 (Keras and the published checkpoints)."""
    alpha = check_alpha(alpha)
    b = _Body((resolution, resolution), 3)
    b.add("conv", 3, 2, make_divisible(32 * alpha))
    for t, c, n, s in V2_BOTTLENECKS:
        out = make_divisible(c * alpha)
        for i in range(n):
            stride = s if i == 0 else 1
            block_input = len(b.rows) - 1  # the row whose output enters the block
            skip = block_input if stride == 1 and b.c == out else None
            if t != 1:
                b.add("conv", 1, 1, b.c * t)
            b.add("dw", 3, stride, b.c)
            b.add("conv", 1, 1, out, relu6=False, residual_from=skip)  # linear bottleneck
    b.add("conv", 1, 1, make_divisible(1280 * alpha) if alpha > 1.0 else 1280)
    return Arch(f"mobilenet_v2_{alpha}_{resolution}", "mobilenet-v2", alpha,
                (resolution, resolution, 3), b.head(classes, "avgpool"), classes, "softmax")


FAMILIES = {"mobilenet-v1": mobilenet_v1, "mobilenet-v2": mobilenet_v2, "yamnet": yamnet}


def arch_for(family: str, alpha: float = 1.0, resolution: int | None = None) -> Arch:
    if family not in FAMILIES:
        raise ValueError(f"unknown architecture {family!r}; choose from {', '.join(FAMILIES)}")
    if family == "yamnet":
        return yamnet(alpha)
    return FAMILIES[family](alpha, resolution or 224)


# --- as MAC tables (the analytic cost model's rows) ----------------------------------------


def mobilenet_v1_table(alpha: float, resolution: int, classes: int = 1001) -> tuple[LayerCost, ...]:
    """The rows of Table 2 for width ``alpha`` and a ``resolution``² RGB input.

    The rows of :func:`mobilenet_v1`, the one copy of the table, which ``edgekit models build``
    also builds from. Channels are ``max(int(c·alpha), 8)`` as in TF-slim's mobilenet_v1.py,
    the code the published .tflite files come from (Keras uses ``int(c·alpha)``, no floor); for α in {0.25, 0.5, 0.75, 1.0}
    both give the same channels. ``classes=1001`` (a background class) matches the model zoo;
    the paper's table has 1000.
    """
    return mobilenet_v1(alpha, resolution, classes).cost_rows()


def yamnet_table(alpha: float = 1.0) -> tuple[LayerCost, ...]:
    """YAMNet's body (Table 3): MobileNet v1 on a 96×64×1 log-mel patch, 521 classes.

    Table 3 gives the first filter as 3×3×3×32, copied from the image model; on a one-channel
    patch it is 3×3×1×32, as in the graph.
    """
    return yamnet(alpha).cost_rows()


def table_macs(rows) -> int:
    return sum(r.macs for r in rows)


def table_params(rows, biases: bool = True) -> int:
    """Weights, plus one bias per output channel unless ``biases=False`` (the paper's count)."""
    return sum(r.weights + (r.biases if biases else 0) for r in rows)
