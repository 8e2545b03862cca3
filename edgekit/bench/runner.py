"""Latency of one model on one device, measured the same way every time.

Only ``invoke()`` is inside the timer (``perf_counter_ns``). The input is set once before the
loop, as pycoral's benchmarks do, so input conversion never counts; it is a real input (a log-mel
patch of a recording, a 0.975 s waveform window, a photo) because XNNPACK's and the Edge TPU's
timings do not depend on values but a model fed zeros proves nothing about the path it took.
The garbage collector is off while timing, as in ``timeit``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.models.tflite import read_graph_file
from edgekit.models.inspection import model_output_kind
from edgekit.models.labels import report_labels
from edgekit.models.model import LOGMEL, WAVEFORM, Model, edgetpu_twin, input_kind, open_model
from edgekit.models.paths import resolve_model
from edgekit.models.runtime import parse_device
from edgekit.models import macs
from edgekit.bench.inputs import load_audio, make_input
from edgekit.bench.timing import latency_stats, measure, peak_rss_mib, rss_mib

HOPS = (0.48, 0.1)  # streaming hops for --pipeline: YAMNet's own, and a 10 Hz detector


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
        timings: dict = {}
        model = open_model(path, graph, data, dev, report_labels(path, graph, data, settings.labels)[0],
                           xnnpack=bool(xnnpack), timings=timings)
        row["init_ms"] = timings["init_ms"]
        loaded = model.loaded
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
        pcm, name, synthetic = load_audio(settings, model.path)
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
    worker); the model's share is the CPU time the listener measured around it, the rest is the
    front end and the path's own overhead.
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
                                      listener.inference_cpu_seconds, wall() - w0))
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
