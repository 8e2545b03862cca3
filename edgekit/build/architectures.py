"""The Keras models built from the architecture specs of :mod:`edgekit.models.architectures`.

:func:`keras_model` is the only place that imports Keras: it turns each spec row into exactly
one Keras layer, and so into one op of the converted graph.

Convolutions carry a bias and no batch norm: a converted graph has batch norm folded into conv
weights and biases anyway, so this is the form an official ``.tflite``'s weights can be loaded
into (:mod:`edgekit.build.transplant`), and it trains fine from scratch for small models too.
Activations are ReLU6 everywhere: the published int8/uint8 graphs clamp at 6 (their activation
scale is 6/255), whatever the float model used.
"""

from __future__ import annotations

from edgekit.models.architectures import Arch


def keras_model(arch: Arch, seed: int = 0):
    """An untrained Keras model of ``arch``: one Keras layer per spec row, batch fixed at 1
    (the Edge TPU compiler needs static shapes).

    Random weights are He-normal; the depthwise kernels get stddev sqrt(2/9) (fan-in 9), since
    Keras's default initialiser makes an untrained MobileNet's activations vanish.
    """
    from edgekit.build import require_tensorflow

    _, keras = require_tensorflow()
    keras.utils.set_random_seed(seed)
    L = keras.layers
    x = inputs = keras.Input(shape=arch.input_shape, batch_size=1, name="input")
    first = arch.layers[0]
    if len(arch.input_shape) == 2:  # a log-mel patch gets its one channel here
        x = L.Reshape((*first.in_hw, first.cin), name="add_channel")(x)
    outputs = []
    for i, r in enumerate(arch.layers):
        act = "relu6" if r.relu6 else None
        if r.op == "conv":
            x = L.Conv2D(r.cout, r.kernel, strides=r.stride, padding="same", activation=act,
                         kernel_initializer="he_normal", name=f"conv_{i}")(x)
        elif r.op == "dw":
            x = L.DepthwiseConv2D(r.kernel, strides=r.stride, padding="same", activation=act,
                                  depthwise_initializer=keras.initializers.RandomNormal(stddev=(2 / 9) ** 0.5),
                                  name=f"dw_{i}")(x)
        elif r.op == "avgpool":
            x = L.AveragePooling2D(pool_size=r.in_hw, name=f"pool_{i}")(x)
            x = L.Flatten(name="flatten")(x)
        elif r.op == "mean":
            x = L.GlobalAveragePooling2D(name=f"mean_{i}")(x)
        elif r.op == "fc":
            # A non-zero random bias: the converter drops an all-zero one, and the graph would
            # then count fewer parameters than the spec.
            x = L.Dense(r.cout, bias_initializer="random_normal", name=f"fc_{i}")(x)
        if r.residual_from is not None:
            x = L.Add(name=f"add_{i}")([outputs[r.residual_from], x])
        outputs.append(x)
    x = L.Activation(arch.output, name=arch.output)(x)
    return keras.Model(inputs, x, name=arch.name.replace(".", "_"))


def weighted_layers(model) -> list:
    """The layers holding weights, in spec order (= the converted graph's MAC ops)."""
    return [layer for layer in model.layers if layer.weights]
