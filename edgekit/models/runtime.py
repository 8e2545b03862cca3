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


# The runtime's own log lines ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
# "ERROR: ..."): TFLite's minimal logger writes "<SEVERITY>: <message>" straight to fd 2.
_RUNTIME_LINE = re.compile(r"^(INFO|WARNING|ERROR|VERBOSE): ")


class _CapturedStderr:
    """Hold the C++ runtime's stderr chatter ("INFO: Created TensorFlow Lite XNNPACK delegate")
    while an interpreter is built; its error lines are folded into our message instead.

    fd 2 belongs to the whole process: whatever another thread (paho, PortAudio, our logging)
    writes meanwhile lands here too. It is written back to the real stderr on exit, so nothing
    but the runtime's own lines is held back.
    """

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
        if self._file.closed:
            return self._text
        self._file.seek(0)
        return self._file.read().decode("utf-8", "replace")

    def __exit__(self, *exc):
        self._text = self.text()
        self._file.close()
        if self._saved is None:
            return False
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self._saved, 2)
        os.close(self._saved)
        others = [ln for ln in self._text.splitlines(keepends=True) if not _RUNTIME_LINE.match(ln)]
        if others:
            try:
                os.write(2, "".join(others).encode("utf-8", "replace"))
            except OSError:
                pass
        return False


def _short(message: str, limit: int = 240) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"


PROBE_TIMEOUT = 120.0  # seconds; a healthy model loads and runs once in well under one on a Pi

# Run in a fresh interpreter (``python -c``): read the model from stdin, build, allocate and invoke
# it once; print the runtime's complaint on stdout and exit 3 if it refuses the file.
_PROBE_CHILD = r"""
import os, sys
module, resolver, allocate = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
data = sys.stdin.buffer.read()
try:
    rt = __import__(module, fromlist=["Interpreter"])
    interp = rt.Interpreter(model_content=data, experimental_op_resolver_type=getattr(rt.OpResolverType, resolver))
    if allocate:
        interp.allocate_tensors()
        interp.invoke()
except BaseException as exc:
    sys.stdout.write((str(exc).strip().splitlines() or [type(exc).__name__])[0][:500])
    sys.stdout.flush()
    os._exit(3)
os._exit(0)
"""


def probe(model_content: bytes, source: str, allocate: bool = True, xnnpack: bool = True,
          timeout: float = PROBE_TIMEOUT) -> None:
    """Build, allocate and invoke the model once in a separate process, so a runtime crash cannot kill us.

    tflite-runtime 2.14 segfaults on some corrupt files that pass every check we can make in
    Python. The test process is a fresh Python started with fork+exec (``subprocess``), never a
    bare fork of this one: the daemon probes a reloaded model while paho's, PortAudio's and
    gpiozero's threads run, and a forked copy of a threaded process can deadlock on a lock one
    of them held. It costs the start of a Python with the runtime imported (~0.3 s here), and a
    child that hangs is killed after ``timeout`` seconds.
    """
    rt = runtime_info()
    if not sys.executable or getattr(sys, "frozen", False):
        return  # embedded or frozen: no Python to start for the test; the real load is all there is
    resolver = "AUTO" if xnnpack else "BUILTIN_WITHOUT_DEFAULT_DELEGATES"  # as the real load will use
    import subprocess

    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE_CHILD, rt.module.__name__, resolver, "1" if allocate else "0"],
            input=model_content, capture_output=True, timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        raise ModelFileError(
            f"{source}: the TFLite runtime did not finish reading this model within {timeout:.0f} s "
            "(in a test process, now stopped); the file is likely corrupt"
        ) from None
    except OSError as exc:
        raise ModelFileError(f"{source}: cannot start a process to test the model ({exc})") from None
    if done.returncode < 0:
        import signal

        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        raise ModelFileError(
            f"{source}: the TFLite runtime crashed ({name}) reading this file: it is corrupt; "
            "download it again or verify it with `edgekit models verify`"
        )
    if done.returncode != 0:
        message = done.stdout.decode("utf-8", "replace").strip()
        if "edgetpu-custom-op" in message:
            return  # expected without the delegate; the caller decides what to do
        if not message:  # not the runtime's refusal: the child itself failed (its last line says why)
            lines = done.stderr.decode("utf-8", "replace").strip().splitlines()
            message = lines[-1] if lines else f"the test process exited with {done.returncode}"
        raise ModelFileError(f"{source}: the TFLite runtime rejected the model: {_short(message)}")
