"""Latency of one model on one device, measured the same way every time.

Only ``invoke()`` is inside the timer (``perf_counter_ns``). The input is set once before the
loop, as pycoral's benchmarks do, so input conversion never counts; it is a real input (a log-mel
patch of a recording, a 0.975 s waveform window, a photo) because XNNPACK's and the Edge TPU's
timings do not depend on values but a model fed zeros proves nothing about the path it took.
The garbage collector is off while timing, as in ``timeit``.
"""

from __future__ import annotations

import gc
import os
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from edgekit.errors import ConfigError, EdgekitError, ExtraNotInstalledError, LabelsError
from edgekit.frontend import reference
from edgekit.quant import InputQuant, quantise
from edgekit.models.tflite import read_graph_file
from edgekit.models.inspection import model_output_kind
from edgekit.models.labels import report_labels
from edgekit.models.model import IMAGE, LOGMEL, WAVEFORM, Model, edgetpu_twin, input_kind
from edgekit.models.paths import resolve_model
from edgekit.models.runtime import make_interpreter, parse_device, probe
from edgekit.models import macs

HOPS = (0.48, 0.1)  # streaming hops for --pipeline: YAMNet's own, and a 10 Hz detector
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus")


@dataclass
class Settings:
    runs: int | None = 100  # None: as many as fit in ``seconds``
    warmup: int = 10
    seconds: float | None = None
    check_overhead: bool = False
    block: int = 10  # runs per interleaved block of the overhead check
    pipeline: bool = False
    pipeline_seconds: float = 30.0
    input: Path | None = None
    data_dir: Path | None = None
    labels: Path | None = None  # --labels: one class map for every model


def default_data_dir(env: dict | None = None) -> Path | None:
    """The shared test data (audio/, models/) named by $EDGEKIT_TEST_DATA; None when unset.

    Only the environment or ``--data`` name it: an installed package has no checkout, and no
    data folder, beside it. Without one the bench measures synthetic inputs and says so.
    """
    value = (os.environ if env is None else env).get("EDGEKIT_TEST_DATA")
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise ConfigError(f"EDGEKIT_TEST_DATA={value}: no such folder; point it at the shared test data "
                          "(with audio/ and models/), or unset it to measure synthetic inputs")
    return path


# --- inputs ----------------------------------------------------------------------------------


@dataclass
class Input:
    value: np.ndarray  # exactly what set_tensor gets
    source: str
    synthetic: bool

    def describe(self) -> dict:
        v = self.value.astype(np.float64)
        return {
            "source": self.source,
            "synthetic": self.synthetic,
            "shape": list(self.value.shape),
            "dtype": str(self.value.dtype),
            "nonzero_fraction": round(float(np.count_nonzero(self.value)) / self.value.size, 4),
            "mean": round(float(v.mean()), 4),
            "std": round(float(v.std()), 4),
        }


def synthetic_audio(seconds: float = 4.0, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A log chirp 150 Hz -> 6 kHz every second plus noise: energy in every mel band, never zeros."""
    t = np.arange(int(seconds * rate)) / rate
    f0, f1 = 150.0, 6000.0
    k = np.log(f1 / f0)
    phase = 2 * np.pi * f0 * (np.exp(k * (t % 1.0)) - 1) / k
    noise = np.random.default_rng(seed).standard_normal(len(t))
    x = 0.3 * np.sin(phase) + 0.03 * noise
    return np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)


def synthetic_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth colour fields, a disc and noise: edges and texture, as a photo has."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    r = 0.5 + 0.5 * np.sin(6 * xx + 1)
    g = yy
    b = 0.5 + 0.5 * np.cos(9 * (xx + yy))
    img = np.stack([r, g, b], axis=-1)
    disc = (xx - 0.5) ** 2 + (yy - 0.45) ** 2 < 0.04
    img[disc] = (0.9, 0.8, 0.2)
    img += 0.05 * np.random.default_rng(seed).standard_normal(img.shape)
    return np.clip(img * 255, 0, 255).astype(np.uint8)


def load_image(path: Path, h: int, w: int) -> tuple[np.ndarray, str]:
    """A picture as [h, w, 3] uint8 RGB, resized bilinearly (Pillow, from the bench extra)."""
    try:
        from PIL import Image
    except ImportError:
        raise ExtraNotInstalledError(f"{path.name}: reading a picture needs Pillow; install the bench extra: "
                                     "pip install 'edgekit[bench]'") from None
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").resize((w, h), Image.BILINEAR)), "Pillow bilinear"


def load_audio(settings: Settings) -> tuple[np.ndarray, str, bool]:
    """int16 16 kHz samples, where they came from, and whether they are synthetic."""
    from edgekit.audio.files import read_audio

    if settings.input is not None and settings.input.suffix.lower() in AUDIO_SUFFIXES:
        return read_audio(settings.input), settings.input.name, False
    speech = settings.data_dir / "audio" / "speech.wav" if settings.data_dir else None
    if speech is not None and speech.is_file():
        return read_audio(speech), speech.name, False
    return synthetic_audio(), "synthetic log chirp 150 Hz-6 kHz + noise (speech.wav absent)", True


def make_input(model: Model, settings: Settings) -> Input:
    detail = model.interpreter.get_input_details()[0]
    shape, dtype = tuple(detail["shape"]), detail["dtype"]
    p = model.params
    if model.kind == IMAGE:
        _, h, w, _ = shape
        picture = None
        if settings.input is not None and settings.input.suffix.lower() not in AUDIO_SUFFIXES:
            picture = settings.input
        elif settings.data_dir and (settings.data_dir / "models" / "grace_hopper.bmp").is_file():
            picture = settings.data_dir / "models" / "grace_hopper.bmp"
        if picture is not None:
            pixels, how = load_image(picture, h, w)
            source, synthetic = f"{picture.name} resized to {h}x{w} ({how})", False
        else:
            pixels = synthetic_image(h, w)
            source, synthetic = f"synthetic {h}x{w} colour fields + noise (grace_hopper.bmp absent)", True
        if dtype == np.uint8:
            value = pixels
        elif dtype == np.int8:
            value = (pixels.astype(np.int16) - 128).astype(np.int8)
        else:
            value = (pixels.astype(np.float32) / 127.5 - 1.0).astype(np.float32)
        return Input(value.reshape(shape), source, synthetic)

    pcm, name, synthetic = load_audio(settings)
    if model.kind == WAVEFORM:
        padded = reference.pad_waveform(pcm, p)
        windows = reference.frame(padded, p.patch_samples, p.patch_hop_samples)
        rms = np.sqrt((windows.astype(np.float64) ** 2).mean(axis=1))
        i = int(rms.argmax())  # the loudest window: speech, not the silence around it
        start = i * p.patch_hop_samples / p.sample_rate_hz
        value = (windows[i].astype(np.float32) / 32768.0).reshape(shape)
        window_s = p.patch_samples / p.sample_rate_hz
        return Input(value, f"{name}, {window_s:.3f} s window at {start:.2f} s", synthetic)

    patches = reference.waveform_to_patches(pcm, p)
    i = int(patches.mean(axis=(1, 2)).argmax())
    start = i * p.patch_hop_samples / p.sample_rate_hz
    end = start + p.patch_samples / p.sample_rate_hz
    source = f"{name}, log-mel patch {i} ({start:.2f}-{end:.2f} s), float front end"
    patch = patches[i]
    if dtype == np.int8:
        scale, zp = detail["quantization"]
        value = quantise(patch, InputQuant(float(scale), int(zp)))
    else:
        value = patch.astype(np.float32)
    return Input(value.reshape(shape), source, synthetic)


# --- timing ----------------------------------------------------------------------------------


def latency_stats(ns: list[int]) -> dict:
    ms = np.asarray(ns, dtype=np.float64) / 1e6
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    r = lambda x: round(float(x), 5)  # 10 ns: finer than the clock's jitter  # noqa: E731
    return {"n": int(ms.size), "min": r(ms.min()), "p50": r(p50), "p90": r(p90), "p99": r(p99),
            "max": r(ms.max()), "mean": r(ms.mean()), "std": r(ms.std())}


def timer_cost_ns(n: int = 2000) -> int:
    """p50 of two back-to-back clock reads: what the instrument itself adds to every sample."""
    clock = time.perf_counter_ns
    d = []
    for _ in range(n):
        t0 = clock()
        d.append(clock() - t0)
    return int(np.median(d))


def _harness_block(invoke, n: int, out: list, deadline: int | None) -> None:
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        invoke()
        t1 = clock()
        out.append(t1 - t0)
        if deadline is not None and t1 >= deadline:
            return


def _bare_block(invoke, n: int, out: list) -> None:
    # The least a per-call latency can be measured with: two clock reads around invoke().
    clock = time.perf_counter_ns
    for _ in range(n):
        t0 = clock()
        invoke()
        out.append(clock() - t0)


def measure(invoke: Callable[[], None], settings: Settings,
            progress: Callable[[int], None] = lambda n: None) -> tuple[list[int], list[int]]:
    """Harness samples, and bare-loop samples taken in alternating blocks when checking overhead.

    Blocks alternate AB, BA, AB, ... so a drift of the machine's speed (another tenant, thermal
    throttling) lands on both loops alike instead of on whichever ran second.
    """
    samples: list[int] = []
    bare: list[int] = []
    deadline = None if settings.seconds is None else time.perf_counter_ns() + int(settings.seconds * 1e9)
    runs = settings.runs
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        pair = 0
        while True:
            n = settings.block if runs is None else min(settings.block, runs - len(samples))
            if n <= 0:
                break
            before = len(samples)
            if settings.check_overhead and pair % 2:
                _bare_block(invoke, n, bare)
            _harness_block(invoke, n, samples, deadline)
            if settings.check_overhead and not pair % 2:
                _bare_block(invoke, n, bare)
            pair += 1
            progress(len(samples) - before)
            if deadline is not None and time.perf_counter_ns() >= deadline:
                break
    finally:
        if was_enabled:
            gc.enable()
    return samples, bare


def peak_rss_mib() -> float:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kib / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)  # macOS: bytes


def rss_mib() -> float | None:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return None


# --- one row ---------------------------------------------------------------------------------


def _cost(graph, path: Path) -> dict:
    try:
        cost = macs.count_graph(graph, str(path))
    except EdgekitError as exc:
        return {"macs": None, "params": None, "macs_note": f"not counted: {exc}"}
    if cost.total is not None:
        note = None
        if cost.front_end is not None:
            note = f"front end {cost.front_end.macs:,} + body {cost.body.macs:,} MACs"
        return {"macs": cost.total.macs, "params": cost.total.params, "macs_note": note}
    note = "compiled for the Edge TPU: the body is one edgetpu-custom-op, not countable from the graph"
    twin = edgetpu_twin(path)
    if twin is not None:
        try:
            t = macs.count_file(twin).total
            note += f"; its CPU twin {twin.name} has {t.macs:,} MACs, {t.params:,} params"
        except EdgekitError:
            pass
    return {"macs": None, "params": None, "macs_note": note}


def empty_row(spec: str, device: str, xnnpack: bool | None) -> dict:
    """Every key a row can have, so a row that could not run still has the same schema."""
    return {
        "model": Path(spec).name, "path": str(spec), "kind": None, "device": device,
        "threads": None, "xnnpack_requested": xnnpack, "status": "ok",
        "runtime": None, "xnnpack": None, "edgetpu": None,
        "macs": None, "params": None, "macs_note": None, "input": None,
        "init_ms": None, "first_inference_ms": None, "latency_ms": None, "fps": None,
        "overhead": None, "peak_rss_mib": None, "rss_mib": None, "top1": None,
        "samples_ms": None, "pipeline": None,
    }


def bench_model(spec: str, device: str, xnnpack: bool | None, settings: Settings,
                progress_factory=None) -> dict:
    """One (model, device, XNNPACK) row. Never raises for a model or device that cannot run."""
    from edgekit.models.edgetpu import status as edgetpu_status

    row = empty_row(spec, device, xnnpack)
    try:
        dev = parse_device(device)
        path = resolve_model(spec)
        row.update(model=path.name, path=str(path), device=str(dev), threads=dev.threads)
        graph, data = read_graph_file(path)
        row.update(_cost(graph, path))
        row["kind"] = input_kind(graph)
        if dev.is_edgetpu:
            st = edgetpu_status()
            if not st.usable:
                row["status"] = f"no Edge TPU found: {st.reason()}"
                return row
        if graph.is_edgetpu and not dev.is_edgetpu:
            twin = edgetpu_twin(path)
            row["status"] = ("needs an Edge TPU: compiled for it (edgetpu-custom-op); bench it on "
                             "--device usb or pci" + (f", or its CPU twin {twin.name} on the CPU" if twin else ""))
            return row
        probe(data, str(path), allocate=not graph.is_edgetpu, xnnpack=bool(xnnpack))
        t0 = time.perf_counter_ns()
        loaded = make_interpreter(data, dev, xnnpack=bool(xnnpack), source=str(path))
        row["init_ms"] = round((time.perf_counter_ns() - t0) / 1e6, 4)
        labels = report_labels(path, graph, data, settings.labels)[0]
        try:
            model = Model(path, graph, loaded, labels)
        except LabelsError:
            model = Model(path, graph, loaded, None)
    except EdgekitError as exc:
        row["status"] = f"error: {exc}"
        return row

    row.update(runtime={"name": loaded.runtime.name, "version": loaded.runtime.version},
               xnnpack=loaded.xnnpack, edgetpu=loaded.edgetpu)
    inp = make_input(model, settings)
    row["input"] = inp.describe()
    it = model.interpreter
    it.set_tensor(it.get_input_details()[0]["index"], inp.value)
    invoke = it.invoke
    t0 = time.perf_counter_ns()
    invoke()
    row["first_inference_ms"] = round((time.perf_counter_ns() - t0) / 1e6, 4)
    for _ in range(settings.warmup):
        invoke()

    bar = None
    if progress_factory is not None:
        bar = progress_factory(f"{path.name} {dev} {'xnnpack' if xnnpack else 'builtin'}", settings.runs)
    try:
        samples, bare = measure(invoke, settings, (lambda n: None) if bar is None else bar.update)
    finally:
        if bar is not None:
            bar.close()
    stats = latency_stats(samples)
    row.update(latency_ms=stats, fps=round(1000.0 / stats["mean"], 3),
               samples_ms=[round(s / 1e6, 5) for s in samples])
    if bare:
        b = latency_stats(bare)
        row["overhead"] = {
            "bare_p50_ms": b["p50"], "bare_mean_ms": b["mean"], "bare_n": b["n"],
            "ratio_p50": round(stats["p50"] / b["p50"], 4), "ratio_mean": round(stats["mean"] / b["mean"], 4),
            "method": f"alternating blocks of {settings.block} (AB, BA, ...)",
        }
    scores = model.run(inp.value)  # the same input once more, untimed, for a sanity check
    top = int(np.argmax(scores))
    # "score" only where the graph makes one (SOFTMAX/LOGISTIC): a logit printed as 0.29 reads as 29 %.
    row["top1"] = {"index": top, "label": model.labels[top], "output": model_output_kind(graph, path),
                   "score": round(float(scores[top]), 4)}
    if settings.pipeline and model.kind in (LOGMEL, WAVEFORM):
        pcm, name, synthetic = load_audio(settings)
        row["pipeline"] = bench_pipeline(model, pcm, name, synthetic, settings.pipeline_seconds)
    row["peak_rss_mib"] = peak_rss_mib()
    row["rss_mib"] = rss_mib()
    return row


# --- front end + model, as the daemon runs them ----------------------------------------------


def _pipeline_row(frontend, hop, audio_s, patches, cpu_s, model_s, wall) -> dict:
    fe_cpu = max(0.0, cpu_s - model_s)

    def r(x, digits=4):
        return None if x is None else round(x, digits)

    return {
        "frontend": frontend, "mode": "stream", "hop_s": hop, "audio_s": round(audio_s, 3),
        "patches": patches, "frontend_cpu_s": r(fe_cpu, 6), "model_cpu_s": r(model_s, 6),
        "wall_s": r(wall, 6),
        "frontend_cpu_ms_per_hop": r(1000 * fe_cpu * hop / audio_s if audio_s else None),
        "model_cpu_ms_per_patch": r(1000 * model_s / patches if patches else None),
        "rtf_cpu": r(audio_s / cpu_s if cpu_s > 0 else None, 1),
        "rtf_wall": r(audio_s / wall if wall > 0 else None, 1),
    }


def bench_pipeline(model: Model, pcm: np.ndarray, source: str, synthetic: bool,
                   seconds: float = 30.0) -> list[dict]:
    """Real-time factors (seconds of audio per CPU second) of the daemon's own path.

    Blocks of one hop go through :class:`edgekit.listen.Listener` (the object the daemon, classify
    and evaluate use): the streaming front end featurises each 10 ms frame once, and the model
    runs once per patch. CPU time is ``time.process_time`` (all threads, so cpu:N counts every
    worker); the model's share is the time the listener spent in it, the rest is the front end
    and the path's own overhead.
    """
    from edgekit.listen import Listener

    p = model.params
    reps = max(1, int(np.ceil(seconds * p.sample_rate_hz / len(pcm))))
    audio = np.tile(pcm, reps)[: max(len(pcm), int(seconds * p.sample_rate_hz))]
    audio_s = len(audio) / p.sample_rate_hz
    if model.kind == WAVEFORM:
        frontends = [None]
    else:
        frontends = ["float"] + (["fixed"] if model.input_quant is not None else [])
    cpu, wall = time.process_time, time.perf_counter
    rows = []
    for fe in frontends:
        for hop in HOPS:
            listener = Listener(model, fe, params=p.with_hop(hop))
            step = listener.params.patch_hop_samples
            patches = 0
            c0, w0 = cpu(), wall()
            for start in range(0, len(audio), step):
                patches += len(listener.push(audio[start:start + step]))
            rows.append(_pipeline_row(listener.frontend, hop, audio_s, patches, cpu() - c0,
                                      listener.inference_seconds, wall() - w0))
    for r in rows:
        r["audio_source"] = f"{source} looped to {audio_s:.1f} s" if reps > 1 else source
        r["synthetic"] = synthetic
    return rows


def expand(models: list[str], devices: list[str],
           xnnpack_modes: list[bool]) -> list[tuple[str, str, bool | None]]:
    """The (model, device, xnnpack) rows to run. An Edge TPU device that is absent, or an
    ``_edgetpu`` model on the CPU, gets one row, not one per XNNPACK setting."""
    from edgekit.models.edgetpu import status as edgetpu_status

    usable = None
    rows = []
    for m in models:
        compiled = Path(m).stem.endswith("_edgetpu")
        for d in devices:
            is_tpu = parse_device(d).is_edgetpu
            if is_tpu and usable is None:
                usable = edgetpu_status().usable
            if (is_tpu and not usable) or (compiled and not is_tpu):
                rows.append((m, d, None))
            else:
                rows.extend((m, d, x) for x in xnnpack_modes)
    return rows
