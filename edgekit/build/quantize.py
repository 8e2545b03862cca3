"""Full-integer post-training quantisation of a Keras model with the TFLite converter.

Weights: int8, symmetric, per output channel (the converter's default for conv). Activations:
int8, asymmetric, ranges from the representative data. ``int8`` gives int8 input and output;
``int8-float-io`` keeps a float boundary (QUANTIZE in, DEQUANTIZE out) around the same body.
"""

from __future__ import annotations

import warnings

import numpy as np


def convert(model, representative: np.ndarray, quant: str = "int8") -> bytes:
    """``representative``: [N, *model input shape] float32 samples in the model's input units."""
    from edgekit.build import QUANT_MODES, native_stderr_held, quiet_stdout, require_tensorflow

    if quant not in QUANT_MODES:
        raise ValueError(f"quant must be one of {QUANT_MODES}, not {quant!r}")
    tf, _ = require_tensorflow()
    samples = np.asarray(representative, np.float32)

    def dataset():
        for x in samples:
            yield [x[None]]

    with native_stderr_held(), quiet_stdout(), warnings.catch_warnings():
        # "Statistics for quantized inputs were expected": we ask for int8 inputs on purpose.
        warnings.simplefilter("ignore", UserWarning)
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        io_type = tf.int8 if quant == "int8" else tf.float32
        converter.inference_input_type = io_type
        converter.inference_output_type = io_type
        # Newer converters quantise dense layers per channel; the Edge TPU compiler and the
        # official YAMNet keep them per tensor.
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
        return converter.convert()
