"""Building int8 MobileNet / YAMNet .tflite models: architecture, weights, post-training quantisation.

TensorFlow is an optional extra (``pip install 'edgekit[build]'``): nothing here imports it at
module level, so the rest of the kit (and the pure-Python architecture specs) work without it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgekit.errors import ConfigError, EdgekitError

if TYPE_CHECKING:
    from edgekit.models.architectures import Arch

INSTALL_HINT = "install the build extra: pip install 'edgekit[build]'"
QUANT_MODES = ("int8", "int8-float-io")


class BuildDependencyError(EdgekitError, ImportError):
    """TensorFlow (the build extra) is not installed."""


def require_tensorflow():
    """(tensorflow, keras), or a one-line BuildDependencyError saying how to get them."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        with native_stderr_held():
            import tensorflow as tf
            import keras
    except ImportError as exc:
        raise BuildDependencyError(f"building models needs TensorFlow ({exc}); {INSTALL_HINT}") from None
    if not keras.__version__.startswith("3."):
        raise BuildDependencyError(f"building models needs Keras 3, not {keras.__version__}; {INSTALL_HINT}")
    return tf, keras


@contextlib.contextmanager
def native_stderr_held():
    """Hold what C++ writes on fd 2 (absl, oneDNN and MLIR converter chatter, which
    TF_CPP_MIN_LOG_LEVEL does not silence) and replay it only if the block fails or -v is on."""
    if logging.getLogger().isEnabledFor(logging.DEBUG):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        failed = True
        try:
            yield
            failed = False
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            if failed:
                held.seek(0)
                sys.stderr.write(held.read().decode("utf-8", "replace"))


@contextlib.contextmanager
def quiet_stdout():
    # Keras's export prints a summary of the saved artifact on stdout; a CLI's stdout is its result.
    with contextlib.redirect_stdout(io.StringIO()):
        yield


@dataclass(frozen=True)
class BuildRequest:
    family: str  # mobilenet-v1 | mobilenet-v2 | yamnet
    alpha: float = 1.0
    resolution: int | None = None  # image models only
    weights: str = "random"  # random | official | path to a .keras / .weights.h5 / quantised .tflite
    quant: str = "int8"
    representative: Path | None = None
    samples: int = 200
    seed: int = 0
    official_model: str = "yamnet"  # where --weights official reads from


def check_request(req: BuildRequest) -> None:
    """Everything that can be checked without TensorFlow; each message says what to do."""
    from edgekit.models.architectures import FAMILIES

    if req.family not in FAMILIES:
        raise ConfigError(f"unknown architecture {req.family!r}; choose from {', '.join(FAMILIES)}")
    if req.quant not in QUANT_MODES:
        raise ConfigError(f"--quant must be one of {', '.join(QUANT_MODES)}, not {req.quant!r}")
    if not req.alpha > 0:
        raise ConfigError(f"--alpha must be positive, not {req.alpha}")
    if req.family == "yamnet" and req.resolution is not None:
        raise ConfigError("yamnet takes a fixed 96x64 log-mel patch: drop --resolution")
    if req.weights == "official":
        if req.family != "yamnet":
            raise ConfigError("--weights official exists for yamnet only (transplanted from yamnet.tflite); "
                              "use random or a .keras file for MobileNets")
        if req.alpha != 1.0:
            raise ConfigError(f"--weights official needs --alpha 1.0 (the official YAMNet's width), not {req.alpha:g}")
    elif req.weights != "random":
        p = Path(req.weights)
        if not p.name.endswith((".keras", ".weights.h5", ".tflite")):
            raise ConfigError(f"--weights {req.weights}: expected random, official, or a .keras / "
                              ".weights.h5 / quantised .tflite file")
        if not p.is_file():
            raise ConfigError(f"--weights {req.weights}: no such file")
    if req.representative is not None and not Path(req.representative).is_dir():
        raise ConfigError(f"--representative {req.representative}: not a folder")
    if req.samples < 1:
        raise ConfigError("--samples must be at least 1")


def build(req: BuildRequest) -> tuple[bytes, Arch, tuple[str, ...] | None]:
    """(the .tflite bytes, the architecture, class labels when the weights bring them)."""
    from edgekit.build.architectures import keras_model
    from edgekit.models.architectures import arch_for
    from edgekit.build.quantize import convert
    from edgekit.build.representative import representative_for

    check_request(req)
    require_tensorflow()
    arch = arch_for(req.family, req.alpha, req.resolution)
    model = keras_model(arch, req.seed)
    labels = None
    if req.weights == "official":
        from edgekit.build.transplant import transplant_official

        labels = transplant_official(model, req.official_model)
    elif req.weights.endswith(".tflite"):
        from edgekit.build.transplant import transplant_tflite

        labels = transplant_tflite(model, req.weights)
    elif req.weights != "random":
        from edgekit.build.transplant import load_weights_file

        load_weights_file(model, req.weights)
    data = representative_for(arch, req.representative, req.samples, req.seed)
    return convert(model, data, req.quant), arch, labels
