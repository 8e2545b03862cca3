"""The float reference against the log-mel Google's yamnet.tflite computes inside its graph."""

import numpy as np
import pytest

from conftest import audio_files
from edgekit.frontend import reference as R
from edgekit.params import FeatureParams
from edgekit.proof import official_logmel

P = FeatureParams()


def test_mel_matrix_equals_the_official_graph_constant(official_model):
    # The FULLY_CONNECTED that applies the mel matrix in yamnet.tflite: its weights are [64, 257].
    it = official_model.interpreter
    fc = next(op for op in it._get_ops_details() if op["op_name"] == "FULLY_CONNECTED")
    weights = it.get_tensor(fc["inputs"][1])
    assert weights.shape == (64, 257)
    np.testing.assert_allclose(R.mel_matrix(P).T, weights, atol=1e-6)


def test_periodic_hann():
    w = R.periodic_hann(400)
    assert w[0] == 0 and w[200] == pytest.approx(1.0)
    assert w[1] == pytest.approx(w[399])  # periodic: symmetric about n = N/2, not (N-1)/2


@pytest.mark.parametrize("name", [p.name for p in audio_files()])
def test_log_mel_matches_official_graph(name, recordings, official_model):
    pcm = recordings[name]
    official, _ = official_logmel(official_model, pcm)
    mine = R.waveform_to_patches(pcm)
    assert mine.shape == official.shape
    diff = np.abs(official - mine)
    assert diff.mean() < 1e-4
    # The graph runs in float32; where mel < 0.001 the log magnifies its rounding (an FFT error
    # of ~4e-6 on a frame peaking at 57). Elsewhere the match is far inside 1e-3.
    loud = np.exp(mine) > 2 * P.log_offset
    assert diff[loud].max() <= 1e-3
    assert diff.max() <= 2e-3


def test_short_input_is_padded_to_one_window():
    x = np.ones(1000, np.int16)
    patches = R.waveform_to_patches(x)
    assert patches.shape == (1, 96, 64)
    # 15600 samples make exactly one window; one more sample needs a second patch.
    assert len(R.waveform_to_patches(np.ones(15600, np.int16))) == 1
    assert len(R.waveform_to_patches(np.ones(15601, np.int16))) == 2


def test_int16_and_float_inputs_agree():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(16000) * 3000).astype(np.int16)
    np.testing.assert_array_equal(R.log_mel(x), R.log_mel(x.astype(np.float64) / 32768))


@pytest.mark.parametrize("name", [p.name for p in audio_files()])
def test_float_path_matches_the_textbook_computation(name, recordings):
    import logmel_oracle

    pcm = recordings[name]
    mine, textbook = R.waveform_to_patches(pcm), logmel_oracle.waveform_to_patches(pcm)
    # Magnitudes rounded to 29 bits and Q20 mel weights: far inside the model's int8 step (0.048).
    assert np.abs(mine - textbook).max() < 2e-4


def test_float_frames_are_independent_of_the_batch():
    rng = np.random.default_rng(2)
    gains = np.array([0, 1, 30, 1000, 32767])[rng.integers(0, 5, 50)]
    frames = np.clip(rng.normal(size=(50, 400)) * gains[:, None], -32768, 32767).astype(np.int16)
    together = R.log_mel_frames(frames)
    for parts in ([1] * 50, [3, 4, 17, 26], [49, 1]):
        pieces = np.split(frames, np.cumsum(parts)[:-1])
        np.testing.assert_array_equal(np.concatenate([R.log_mel_frames(p) for p in pieces]), together)
