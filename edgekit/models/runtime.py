"""One place that imports the TFLite runtime and builds interpreters for a device string.

Device strings (as pycoral's ``make_interpreter``):

=========  ==========================================================
``cpu``    the ARM/x86 CPU, the runtime's default thread count
``cpu:N``  the CPU with N threads
``usb``    the first Coral USB Accelerator;   ``usb:N`` the N-th one
``pci``    the first Coral PCIe/M.2 module;  ``pci:N`` the N-th one
=========  ==========================================================

LiteRT (``ai-edge-litert``) is preferred; ``tflite-runtime`` is the fallback where LiteRT has no
wheel (armv7l). Which one was picked, and its version, is in :func:`runtime_info`.
"""

from __future__ import annotations

import gc
import os
import re
import sys
import warnings
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from types import ModuleType

from edgekit.errors import DeviceError, EdgeTPUError, ModelFileError, RuntimeNotFoundError


@dataclass(frozen=True)
class RuntimeInfo:
    name: str  # the distribution: 'ai-edge-litert' or 'tflite-runtime'
    version: str
    module: ModuleType

    def __str__(self) -> str:
        return f"{self.name} {self.version}"


@lru_cache(maxsize=1)
def runtime_info() -> RuntimeInfo:
    errors = []
    for dist, modname in (("ai-edge-litert", "ai_edge_litert.interpreter"),
                          ("tflite-runtime", "tflite_runtime.interpreter")):
        try:
            module = __import__(modname, fromlist=["Interpreter"])
        except ImportError as exc:  # includes "compiled using NumPy 1.x" failures
            errors.append(f"{dist}: {exc}")
            continue
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            version = "unknown"
        return RuntimeInfo(dist, version, module)
    raise RuntimeNotFoundError(
        "no TFLite runtime could be imported ("
        + "; ".join(errors)
        + "). Install one: `pip install ai-edge-litert` (x86_64/aarch64), or on 32-bit Pi OS "
        "`pip install tflite-runtime==2.14.0 'numpy<2'`"
    )


@dataclass(frozen=True)
class Device:
    kind: str  # 'cpu' | 'usb' | 'pci'
    index: int | None = None  # Edge TPU index, or CPU thread count for 'cpu:N'

    @property
    def is_edgetpu(self) -> bool:
        return self.kind in ("usb", "pci")

    @property
    def threads(self) -> int | None:
        return self.index if self.kind == "cpu" else None

    def delegate_options(self) -> dict:
        # libedgetpu's own option: "usb", "usb:0", "pci:1", ...
        return {"device": self.kind if self.index is None else f"{self.kind}:{self.index}"}

    def __str__(self) -> str:
        return self.kind if self.index is None else f"{self.kind}:{self.index}"


_DEVICE_RE = re.compile(r"^(cpu|usb|pci)(?::(\d+))?$")


def parse_device(text: str) -> Device:
    m = _DEVICE_RE.match(text.strip().lower())
    if not m:
        raise DeviceError(
            f"unknown device {text!r}: use cpu, cpu:N (N threads), usb, usb:N, pci or pci:N"
        )
    kind, num = m.group(1), m.group(2)
    index = int(num) if num is not None else None
    if kind == "cpu" and index is not None and not 1 <= index <= 64:
        raise DeviceError(f"cpu:{index}: the thread count must be between 1 and 64")
    return Device(kind, index)


EDGETPU_LIBRARY = {"linux": "libedgetpu.so.1", "darwin": "libedgetpu.1.dylib", "win32": "edgetpu.dll"}.get(
    sys.platform, "libedgetpu.so.1"
)


@dataclass(frozen=True)
class LoadedInterpreter:
    interpreter: object
    device: Device
    runtime: RuntimeInfo
    xnnpack: bool  # whether XNNPACK took (part of) the graph
    edgetpu: bool  # whether the Edge TPU delegate is in use


def load_edgetpu_delegate(device: Device):
    """Load libedgetpu for one device, or raise EdgeTPUError saying what to install or fix."""
    rt = runtime_info()
    error = None
    # A failed load_delegate leaves a half-built Delegate whose __del__ raises AttributeError
    # ("Exception ignored in Delegate.__del__") on stderr; that noise is not for the user.
    previous_hook = sys.unraisablehook
    sys.unraisablehook = _quiet_delegate_del(previous_hook)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return rt.module.load_delegate(EDGETPU_LIBRARY, device.delegate_options())
            except (OSError, ValueError, RuntimeError) as exc:
                error = str(exc)
        gc.collect()
    finally:
        sys.unraisablehook = previous_hook
    from edgekit.models.edgetpu import explain_delegate_failure

    raise EdgeTPUError(explain_delegate_failure(device, error))


def _quiet_delegate_del(previous):
    def hook(unraisable):
        if isinstance(unraisable.exc_value, AttributeError) and "_library" in str(unraisable.exc_value):
            return
        previous(unraisable)

    return hook


def make_interpreter(
    model_content: bytes,
    device: Device | str = "cpu",
    *,
    xnnpack: bool = True,
    preserve_all_tensors: bool = False,
    source: str = "model",
) -> LoadedInterpreter:
    """An interpreter with tensors allocated, on ``device``.

    Pass the bytes of a file that :func:`edgekit.models.tflite.read_graph` accepted (and, for files of
    unknown origin, :func:`probe` too): the runtime itself is not safe against every corrupt file.
    """
    dev = parse_device(device) if isinstance(device, str) else device
    rt = runtime_info()
    kwargs: dict = {"model_content": model_content}
    if dev.is_edgetpu:
        kwargs["experimental_delegates"] = [load_edgetpu_delegate(dev)]
    if dev.threads:
        kwargs["num_threads"] = dev.threads
    if not xnnpack:
        kwargs["experimental_op_resolver_type"] = rt.module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    if preserve_all_tensors:
        kwargs["experimental_preserve_all_tensors"] = True
    with warnings.catch_warnings(), _CapturedStderr() as native_log:
        warnings.simplefilter("ignore")  # LiteRT's debug-mode warning for preserve_all_tensors
        try:
            interpreter = rt.module.Interpreter(**kwargs)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            detail = [ln for ln in native_log.text().splitlines() if ln.strip() and not ln.startswith("INFO:")]
            if detail:
                msg = f"{msg} ({detail[0].strip()})"
            if "edgetpu-custom-op" in str(exc):
                raise EdgeTPUError(
                    "this model is compiled for the Edge TPU (edgetpu-custom-op) and cannot run on "
                    "the CPU: use --device usb or pci with a Coral attached, or the model's CPU twin"
                    " (e.g. --fallback cpu with a CPU model)"
                ) from None
            raise ModelFileError(f"{source}: the TFLite runtime rejected the model: {_short(msg)}") from None
    try:
        ops = {d["op_name"] for d in interpreter._get_ops_details()}
    except (ValueError, RuntimeError, UnicodeDecodeError, IndexError) as exc:
        raise ModelFileError(f"{source}: the runtime cannot describe this model's operators ({exc}); the file is corrupt") from None
    return LoadedInterpreter(
        interpreter=interpreter,
        device=dev,
        runtime=rt,
        xnnpack=xnnpack and "DELEGATE" in ops and not dev.is_edgetpu,
        edgetpu=dev.is_edgetpu,
    )


class _CapturedStderr:
    """Hold the C++ runtime's stderr chatter ("INFO: Created TensorFlow Lite XNNPACK delegate")
    while an interpreter is built; its error lines are folded into our message instead."""

    def __enter__(self):
        import tempfile

        self._file = tempfile.TemporaryFile()
        try:
            sys.stderr.flush()
            self._saved = os.dup(2)
            os.dup2(self._file.fileno(), 2)
        except (OSError, ValueError):
            self._saved = None
        return self

    def text(self) -> str:
        self._file.seek(0)
        return self._file.read().decode("utf-8", "replace")

    def __exit__(self, *exc):
        if self._saved is not None:
            os.dup2(self._saved, 2)
            os.close(self._saved)
        return False


def _short(message: str, limit: int = 240) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"


def probe(model_content: bytes, source: str, allocate: bool = True, xnnpack: bool = True) -> None:
    """Build, allocate and invoke the model once in a forked child, so a runtime crash cannot kill us.

    tflite-runtime 2.14 segfaults on some corrupt files that pass every check we can make in
    Python. The child inherits the already-imported runtime, so this costs milliseconds.
    """
    if not hasattr(os, "fork"):
        return
    rt = runtime_info()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into the caller's stack
        code = 0
        try:
            os.close(read_fd)
            fd = os.open(os.devnull, os.O_WRONLY)
            os.dup2(fd, 2)  # the runtime's own chatter is not for the user
            # The same resolver the real load will use: XNNPACK rejects (or trips on) other things.
            resolver = rt.module.OpResolverType.AUTO if xnnpack else rt.module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            interp = rt.module.Interpreter(model_content=model_content, experimental_op_resolver_type=resolver)
            if allocate:
                interp.allocate_tensors()
                interp.invoke()  # zero inputs: a corrupt graph may pass allocation and crash here
        except BaseException as exc:  # noqa: BLE001 - reported to the parent verbatim
            code = 3
            os.write(write_fd, (str(exc).strip().splitlines() or [type(exc).__name__])[0].encode()[:500])
        finally:
            os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        message = pipe.read().decode("utf-8", "replace")
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        import signal

        name = signal.Signals(os.WTERMSIG(status)).name
        raise ModelFileError(
            f"{source}: the TFLite runtime crashed ({name}) reading this file: it is corrupt; "
            "download it again or verify it with `edgekit models verify`"
        )
    if os.WEXITSTATUS(status) != 0:
        if "edgetpu-custom-op" in message:
            return  # expected without the delegate; the caller decides what to do
        raise ModelFileError(f"{source}: the TFLite runtime rejected the model: {_short(message)}")
