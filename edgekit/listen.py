"""The one path: 16 kHz int16 samples in, one result per window out.

Everything that turns audio into model outputs goes through :class:`Listener`: the daemon (via
:class:`edgekit.detect.pipeline.Pipeline`), ``classify``, ``evaluate``, ``calibrate``,
``sounds``, the benchmarks and the proofs. So what a benchmark measures is what the daemon runs.

For every model kind the windows are the same: 0.975 s windows starting at 0, hop, 2·hop, ...
over the stream, with the tail zero-padded at :meth:`Listener.flush` as YAMNet pads a whole
clip. A waveform model (``yamnet.tflite``) gets the window's samples; a log-mel model
(``yamnet_spectra_in.tflite``) gets edgekit's patch, from the float or the fixed-point front end.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from edgekit.audio.files import BLOCK_SECONDS, iter_audio
from edgekit.errors import ConfigError, UnsupportedModelError
from edgekit.frontend.stream import StreamingFrontend, StreamingWindows
from edgekit.models.model import LOGMEL, WAVEFORM, Model
from edgekit.params import FeatureParams

FRONTENDS = ("float", "fixed")
IN_GRAPH = "in-graph"  # a waveform model computes its own features


@dataclass(frozen=True)
class WindowResult:
    index: int  # window number since the stream started
    start: float  # seconds of audio at the window's first sample
    end: float  # seconds at its end (start + 0.975)
    scores: np.ndarray | None  # [classes] float32; None when the volume gate skipped the window
    embedding: np.ndarray | None  # [1024] float32 when asked for
    dbfs: float  # RMS level of the window (its zero-padded part counts as silence)

    def top(self, k: int) -> list[tuple[int, float]]:
        if self.scores is None:
            return []
        idx = np.argsort(-self.scores, kind="stable")[:k]
        return [(int(i), float(self.scores[i])) for i in idx]


def dbfs(samples: np.ndarray) -> float:
    """RMS level of int16 samples relative to full scale; -inf for digital silence."""
    if len(samples) == 0:
        return -math.inf
    x = samples.astype(np.int64)
    return _level(int(np.sum(x * x)), len(x))


def _level(energy: int, n: int) -> float:
    # Exact int64 sums, never np.dot: a BLAS dot woke OpenBLAS's spinning threads and cost 11 ms
    # per window (measured), a fifth of a core at a 0.48 s hop.
    rms = math.sqrt(energy / n) if n else 0.0
    return 20 * math.log10(rms / 32768.0) if rms > 0 else -math.inf


class _Energy:
    """Window energies from per-chunk sums of squares, so the gate costs O(hop), not O(window).

    Chunks are 80 samples (5 ms): the window (15,600) and every hop (a multiple of 160) are whole
    numbers of chunks. Sums are exact integers, so the level equals :func:`dbfs` of the window.
    """

    CHUNK = 80

    def __init__(self, window: int):
        if window % self.CHUNK:
            raise ValueError(f"window of {window} samples is not a whole number of {self.CHUNK}-sample chunks")
        self._window_chunks = window // self.CHUNK
        self._carry = np.zeros(0, np.int64)
        self._cum = np.zeros(1, np.int64)  # cumulative chunk energies; _cum[i] covers chunks < _base + i
        self._base = 0

    def push(self, block: np.ndarray) -> None:
        x = np.concatenate([self._carry, block.astype(np.int64)]) if len(self._carry) else block.astype(np.int64)
        whole = len(x) - len(x) % self.CHUNK
        self._carry = x[whole:]
        if whole:
            e = np.sum((x[:whole] * x[:whole]).reshape(-1, self.CHUNK), axis=1)
            self._cum = np.concatenate([self._cum, self._cum[-1] + np.cumsum(e)])

    def window(self, start_sample: int) -> float:
        """Level of the window starting at ``start_sample``; samples not pushed yet count as zeros."""
        lo = start_sample // self.CHUNK - self._base
        hi = min(lo + self._window_chunks, len(self._cum) - 1)
        energy = int(self._cum[hi] - self._cum[lo]) if hi > lo else 0
        if hi - lo < self._window_chunks and len(self._carry):  # the tail's partial chunk
            energy += int(np.sum(self._carry * self._carry))
        # Chunks before this window are never needed again: windows start in order.
        if lo > 0:
            self._cum = self._cum[lo:]
            self._base += lo
        return _level(energy, self._window_chunks * self.CHUNK)


class Listener:
    """Feed int16 blocks of any size; get a :class:`WindowResult` for every window completed.

    ``frontend``: for log-mel models, ``"float"`` (the reference) or ``"fixed"`` (integer-only,
    the model's int8 codes); default float. Waveform models compute their own features and take
    none. ``min_dbfs``: the volume gate; quieter windows are not run (``scores=None``).
    ``embedding``: also return YAMNet's 1024-d embedding (load the model with
    ``embedding=True``). ``params`` (the hop): the model's own unless given.
    """

    def __init__(self, model: Model, frontend: str | None = None, min_dbfs: float | None = None,
                 embedding: bool = False, params: FeatureParams | None = None):
        params = params or model.params
        if frontend is not None and frontend not in FRONTENDS:
            raise ConfigError(f"unknown front end {frontend!r}: use float or fixed")
        if model.kind == WAVEFORM:
            self.frontend = IN_GRAPH
            self._stream = StreamingWindows(params)
        elif model.kind == LOGMEL:
            self.frontend = frontend or "float"
            if self.frontend == "fixed":
                if model.input_quant is None:
                    raise ConfigError(f'{model.path.name} takes no quantised log-mel input, so the fixed-point '
                                      'front end has no codes to produce; use frontend = "float"')
                self._stream = StreamingFrontend.fixed(model.input_quant, params)
            else:
                self._stream = StreamingFrontend.float(params)
        else:
            raise UnsupportedModelError(f"{model.path.name} is an {model.kind} model, not an audio model "
                                        "(YAMNet waveform or log-mel)")
        if embedding and not model.has_embedding:
            raise UnsupportedModelError(f"{model.path.name} was loaded without its embedding output; "
                                        "load it with embedding=True")
        self.model = model
        self.params = params
        self.min_dbfs = min_dbfs
        self.embedding = embedding
        self._energy = _Energy(self.params.patch_samples)
        self.windows = 0  # windows emitted
        self.gated = 0  # of which the volume gate skipped
        self.inference_seconds = 0.0  # wall time spent in the model (front end excluded)
        self.inference_cpu_seconds = 0.0  # CPU time of this process meanwhile (all its threads)

    @property
    def samples_seen(self) -> int:
        return self._stream.samples_seen

    @property
    def seconds(self) -> float:
        return self._stream.samples_seen / self.params.sample_rate_hz

    def samples_wanted(self) -> int:
        """Samples still to come before the next window is complete: a caller that waits for
        them wakes once per window instead of once per audio block, and loses no time."""
        end = self.windows * self.params.patch_hop_samples + self.params.patch_samples
        return max(1, end - self.samples_seen)

    def push(self, block: np.ndarray) -> list[WindowResult]:
        patches = self._stream.push(block)  # checks the dtype
        self._energy.push(np.asarray(block).reshape(-1))
        return self._run(patches)

    def flush(self) -> list[WindowResult]:
        """End of stream: zero-pad the tail like a whole clip and return the last windows."""
        return self._run(self._stream.flush())

    def _run(self, patches) -> list[WindowResult]:
        out = []
        rate = self.params.sample_rate_hz
        length = self.params.patch_samples
        model = self.model
        for patch in patches:
            level = self._energy.window(patch.start_sample)
            scores = emb = None
            if self.min_dbfs is None or level >= self.min_dbfs:
                t0, c0 = time.perf_counter(), time.process_time()
                if self.frontend == IN_GRAPH:
                    scores = model.run(patch.features.astype(np.float32) / np.float32(32768.0))
                elif self.frontend == "fixed":
                    scores = model.run_codes(patch.features)
                else:
                    scores = model.run(patch.features)
                if self.embedding:
                    emb = model.embedding()
                self.inference_seconds += time.perf_counter() - t0
                self.inference_cpu_seconds += time.process_time() - c0
            else:
                self.gated += 1
            self.windows += 1
            start = patch.start_sample / rate
            out.append(WindowResult(patch.index, start, start + length / rate, scores, emb, level))
        return out


def listen_pcm(model: Model, pcm16: np.ndarray, **listener_kw) -> list[WindowResult]:
    """A whole clip already in memory -> its windows (the tail padded as YAMNet pads a clip)."""
    listener = Listener(model, **listener_kw)
    return listener.push(np.asarray(pcm16, np.int16)) + listener.flush()


def listen_file(model: Model, path: str | Path, block_seconds: float = BLOCK_SECONDS,
                **listener_kw) -> Iterator[WindowResult]:
    """A recording -> its windows, read in blocks: memory does not grow with the file's length."""
    listener = Listener(model, **listener_kw)
    for block in iter_audio(path, listener.params.sample_rate_hz, block_seconds):
        yield from listener.push(block)
    yield from listener.flush()
