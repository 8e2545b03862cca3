"""The one path (edgekit.listen): the same windows however the samples arrive, for every model kind."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from conftest import need
from edgekit.errors import ConfigError, UnsupportedModelError
from edgekit.listen import Listener, dbfs, listen_file, listen_pcm
from edgekit.params import FeatureParams


@pytest.fixture(scope="module")
def waveform_model(models_dir):
    from edgekit.models.model import load_model

    return load_model(need(models_dir / "yamnet.tflite"))


def _pushed(model, pcm, sizes, **kw):
    """Push ``pcm`` in blocks whose sizes cycle through ``sizes``."""
    listener = Listener(model, **kw)
    out, pos, i = [], 0, 0
    while pos < len(pcm):
        n = sizes[i % len(sizes)]
        out += listener.push(pcm[pos:pos + n])
        pos, i = pos + n, i + 1
    return out + listener.flush()


@pytest.mark.parametrize("frontend", ["float", "fixed"])
def test_block_sizes_do_not_change_results(spectra_model, recordings, frontend):
    pcm = recordings["smoke_alarm.wav"]
    whole = listen_pcm(spectra_model, pcm, frontend=frontend, params=FeatureParams().with_hop(0.1))
    ragged = _pushed(spectra_model, pcm, [1, 159, 160, 4000, 7, 15600, 333], frontend=frontend,
                     params=FeatureParams().with_hop(0.1))
    assert len(whole) == len(ragged) > 90
    for a, b in zip(whole, ragged):
        assert (a.index, a.start, a.end) == (b.index, b.start, b.end)
        assert a.dbfs == b.dbfs
        np.testing.assert_array_equal(a.scores, b.scores)


def test_waveform_and_logmel_models_share_the_window_clock(spectra_model, waveform_model, recordings):
    pcm = recordings["speech.wav"]
    a = listen_pcm(waveform_model, pcm)
    b = listen_pcm(spectra_model, pcm, frontend="fixed")
    assert [(w.start, w.end) for w in a] == [(w.start, w.end) for w in b]
    assert [w.dbfs for w in a] == [w.dbfs for w in b]
    assert all(w.top(1)[0][0] == 0 for w in a + b)  # Speech, on both paths


def test_window_level_equals_dbfs_of_the_window(spectra_model, recordings):
    """The gate's per-chunk energies give the level of exactly the samples the model sees,
    including the zero-padded tail."""
    from edgekit.frontend import reference

    p = spectra_model.params.with_hop(0.1)
    pcm = recordings["dog.wav"]
    padded = reference.pad_waveform(pcm, p)
    windows = listen_pcm(spectra_model, pcm, params=p)
    assert len(windows) > 50
    for w in windows:
        s = round(w.start * p.sample_rate_hz)
        expect = dbfs(padded[s:s + p.patch_samples])
        assert w.dbfs == pytest.approx(expect, abs=1e-9)


def test_volume_gate_skips_quiet_windows(spectra_model, recordings):
    pcm = recordings["speech.wav"]
    quiet = (pcm // 1000).astype(np.int16)
    loud = Listener(spectra_model, min_dbfs=-40)
    res = loud.push(np.concatenate([pcm, quiet])) + loud.flush()
    gated = [w for w in res if w.scores is None]
    assert gated and all(w.dbfs < -40 for w in gated)
    assert all(w.dbfs >= -40 for w in res if w.scores is not None)
    assert loud.gated == len(gated) and loud.windows == len(res)


def test_silence_level_is_minus_infinity(spectra_model):
    res = listen_pcm(spectra_model, np.zeros(16000, np.int16), min_dbfs=-70)
    assert all(w.dbfs == -math.inf and w.scores is None for w in res)


def test_bad_frontend_and_models(spectra_model, waveform_model, models_dir):
    from edgekit.models.model import load_model

    with pytest.raises(ConfigError, match="float or fixed"):
        Listener(spectra_model, "fast")
    with pytest.raises(UnsupportedModelError, match="image model"):
        Listener(load_model(models_dir / "mobilenet_v1_0.25_128_quant.tflite"))
    with pytest.raises(UnsupportedModelError, match="embedding"):
        Listener(spectra_model, embedding=True)
    assert Listener(waveform_model, "fixed").frontend == "in-graph"  # computes its own features


def test_listen_file_equals_listen_pcm(spectra_model, audio_dir, recordings):
    """A file read in blocks (with soxr's streaming resampler for a 48 kHz file) gives the very
    windows a whole-clip read gives."""
    path = audio_dir / "smoke_alarm.wav"
    whole = listen_pcm(spectra_model, recordings["smoke_alarm.wav"], frontend="fixed")
    for block in (0.3, 5.0):
        streamed = list(listen_file(spectra_model, path, block_seconds=block, frontend="fixed"))
        assert len(streamed) == len(whole)
        agree = sum(int(np.array_equal(a.scores, b.scores)) for a, b in zip(whole, streamed))
        assert agree >= len(whole) - 1, block  # resampler chunking may move one sample by 1 LSB


def test_memory_does_not_grow_with_the_recording(tmp_path, waveform_model, recordings):
    """Ten times the audio, the same peak: nothing holds the whole file."""
    speech = recordings["speech.wav"]

    def write(seconds):
        path = tmp_path / f"{seconds}.wav"
        reps = -(-seconds * 16000 // len(speech))
        sf.write(path, np.tile(speech, reps)[: seconds * 16000], 16000, subtype="PCM_16")
        return path

    def peak(path):
        tracemalloc.start()
        n = sum(1 for _ in listen_file(waveform_model, path, min_dbfs=0))  # gate all: only the path's memory
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return n, top

    n1, p1 = peak(write(60))
    n10, p10 = peak(write(600))
    assert n10 > 9 * n1
    # A whole 600 s file is 19 MB as int16 and 38 MB as float32; the path keeps a few seconds.
    assert p10 - p1 < 2_000_000, (p1, p10)
