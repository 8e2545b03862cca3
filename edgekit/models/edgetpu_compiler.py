"""``edgetpu_compiler``: the command, its per-op log, and a wrapper that says why it failed.

The compiler itself has the last word on what maps to the Edge TPU; its log is parsed into the
same counts :mod:`edgekit.models.edgetpu_compat` predicts from the graph.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import EdgeTPUCompilerError

COMPILER = "edgetpu_compiler"
INSTALL_HINT = (
    "edgetpu_compiler comes only from Coral's apt repository and only for x86_64 Debian/Ubuntu: "
    "add `deb https://packages.cloud.google.com/apt coral-edgetpu-stable main` to "
    "/etc/apt/sources.list.d/coral-edgetpu.list (with Google's apt key), then "
    "`sudo apt-get update && sudo apt-get install edgetpu-compiler` "
    "(https://coral.ai/docs/edgetpu/compiler/); there is no build for ARM, so compile on an "
    "x86_64 machine and copy the _edgetpu.tflite to the Pi"
)


def compiler_command(model: str | Path, out_dir: str | Path, compiler: str = COMPILER) -> list[str]:
    # -s prints the per-op table that parse_log reads.
    return [compiler, "-s", "-o", str(out_dir), str(model)]


@dataclass(frozen=True)
class CompileResult:
    command: tuple[str, ...]
    output: Path | None
    version: str | None
    total_ops: int | None
    mapped_ops: int | None
    cpu_ops: int | None
    subgraphs: int | None
    log: str


def parse_log(text: str) -> dict:
    def num(pattern):
        m = re.search(pattern, text, re.IGNORECASE | re.MULTILINE)
        return int(m.group(1)) if m else None

    version = re.search(r"Edge TPU Compiler version\s+(\S+)", text)
    output = re.search(r"^Output model:\s*(.+?)\s*$", text, re.MULTILINE)
    total = num(r"Total number of operations:\s*(\d+)")
    mapped = num(r"Operations successfully mapped[^\d]*(\d+)") or \
        num(r"Number of operations that will run on Edge TPU:\s*(\d+)")
    cpu = num(r"Number of operations that will run on CPU:\s*(\d+)")
    rows = re.findall(r"^([A-Z][A-Z0-9_]+)\s+(\d+)\s+(\S.*?)\s*$", text, re.MULTILINE)
    if rows and mapped is None:
        mapped = sum(int(n) for _, n, status in rows if status.startswith("Mapped to Edge TPU"))
        cpu = sum(int(n) for _, n, status in rows if not status.startswith("Mapped to Edge TPU"))
    if mapped is None and total is not None and "not all operations are supported" not in text:
        mapped, cpu = total, 0  # compiler 16 prints no counts when everything was mapped
    if cpu is None and mapped is not None and total is not None:
        cpu = total - mapped
    return {"version": version.group(1) if version else None,
            "output": output.group(1) if output else None,
            "total_ops": total, "mapped_ops": mapped, "cpu_ops": cpu,
            "subgraphs": num(r"Number of Edge TPU subgraphs:\s*(\d+)")}


def run_compiler(model: str | Path, out_dir: str | Path, timeout_s: float = 600) -> CompileResult:
    model, out_dir = Path(model), Path(out_dir)
    exe = shutil.which(COMPILER)
    if exe is None:
        cmd = " ".join(compiler_command(model, out_dir))
        raise EdgeTPUCompilerError(f"{COMPILER} is not installed (not on PATH). {INSTALL_HINT}. "
                                   f"The command would be: {cmd}")
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = compiler_command(model, out_dir, exe)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise EdgeTPUCompilerError(f"{COMPILER} did not finish within {timeout_s:.0f} s on {model}") from None
    except OSError as exc:
        raise EdgeTPUCompilerError(f"cannot run {exe}: {exc.strerror or exc}") from None
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        tail = " / ".join(line.strip() for line in log.strip().splitlines()[-3:]) or "no output"
        raise EdgeTPUCompilerError(f"{COMPILER} failed on {model} (exit {proc.returncode}): {tail}")
    info = parse_log(log)
    produced = out_dir / f"{model.stem}_edgetpu.tflite"
    output = produced if produced.is_file() else (Path(info["output"]) if info["output"] else None)
    return CompileResult(tuple(cmd), output, info["version"], info["total_ops"],
                         info["mapped_ops"], info["cpu_ops"], info["subgraphs"], log)
