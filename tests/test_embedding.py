"""YAMNet's embedding as a second output, rewritten in pure Python (edgekit.models.embedding)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from conftest import need
from edgekit.errors import ModelFileError, UnsupportedModelError
from edgekit.frontend import reference
from edgekit.models.tflite import read_graph
from edgekit.models.labels import embedded_labels
from edgekit.models.embedding import (
    classifier_op,
    classifier_weights,
    embedding_output,
    embedding_tensor,
    with_embedding_output,
)
from edgekit.params import FeatureParams
from edgekit.models.runtime import make_interpreter

P = FeatureParams()
BODIES = ["yamnet.tflite", "yamnet_spectra_in.tflite"]


def model_bytes(models_dir, name) -> bytes:
    return need(models_dir / name).read_bytes()


def windows_for(name: str, pcm: np.ndarray) -> np.ndarray:
    """The same windows in each body's input: waveform for yamnet.tflite, log-mel for spectra_in."""
    if name == "yamnet.tflite":
        padded = reference.to_float(reference.pad_waveform(pcm, P)).astype(np.float32)
        return reference.frame(padded, P.patch_samples, P.patch_hop_samples)
    return reference.waveform_to_patches(pcm, P).astype(np.float32)


def run_all(data: bytes, windows: np.ndarray) -> list[list[np.ndarray]]:
    """Every output of the model, per window, as the runtime returns them (XNNPACK on)."""
    it = make_interpreter(data, "cpu").interpreter
    inp = it.get_input_details()[0]
    outs = it.get_output_details()
    result = []
    for w in windows:
        it.set_tensor(inp["index"], w.reshape(inp["shape"]))
        it.invoke()
        result.append([it.get_tensor(o["index"]).copy() for o in outs])
    return result


def dequantised_embeddings(data: bytes, windows) -> tuple[np.ndarray, np.ndarray]:
    it = make_interpreter(data, "cpu").interpreter
    scale, zp = it.get_output_details()[1]["quantization"]
    runs = run_all(data, windows)
    scores = np.stack([r[0].reshape(-1) for r in runs])
    emb = np.stack([r[1].reshape(-1) for r in runs])
    if emb.dtype != np.float32:
        emb = (emb.astype(np.float64) - zp) * scale
    return scores, emb


@pytest.fixture(scope="module")
def clips(recordings):
    return [recordings[n] for n in ("dog.wav", "speech.wav", "smoke_alarm.wav")]


@pytest.mark.parametrize("name", BODIES)
def test_rewritten_model_gives_the_same_scores_and_a_1024_d_embedding(models_dir, clips, name):
    original = model_bytes(models_dir, name)
    rewritten = with_embedding_output(original, name)
    graph = read_graph(rewritten)
    assert len(graph.outputs) == 2 and embedding_output(graph) == 1
    assert graph.tensors[graph.outputs[1]].elements == 1024
    for pcm in clips:
        windows = windows_for(name, pcm)
        before, after = run_all(original, windows), run_all(rewritten, windows)
        for b, a in zip(before, after):
            np.testing.assert_array_equal(b[0], a[0])  # the scores are untouched, bit for bit


@pytest.mark.parametrize("name", BODIES)
def test_embedding_through_the_final_layer_reproduces_the_scores(models_dir, clips, name):
    data = with_embedding_output(model_bytes(models_dir, name), name)
    graph = read_graph(data)
    weights, bias = classifier_weights(data)
    assert weights.shape == (521, 1024)
    # The model requantises the logits (a step of `logit_scale`) and the probabilities (a step of
    # `out_scale`); the logistic's slope is at most 1/4, so half a logit step moves a score by at
    # most logit_scale / 8. Twice that bounds every rounding on the way.
    fc = classifier_op(graph)
    logit_scale = graph.tensors[fc.outputs[0]].scales[0]
    out_scale = 1 / 256
    for pcm in clips:
        scores, emb = dequantised_embeddings(data, windows_for(name, pcm))
        predicted = 1 / (1 + np.exp(-(emb @ weights.T + bias)))
        err = np.abs(predicted - scores)
        assert err.max() <= logit_scale / 4 + out_scale, err.max()
        assert err.mean() < out_scale / 4


def test_both_bodies_give_the_same_embedding(models_dir, clips):
    a = with_embedding_output(model_bytes(models_dir, BODIES[0]))
    b = with_embedding_output(model_bytes(models_dir, BODIES[1]))
    for pcm in clips:
        _, ea = dequantised_embeddings(a, windows_for(BODIES[0], pcm))
        _, eb = dequantised_embeddings(b, windows_for(BODIES[1], pcm))
        cos = np.sum(ea * eb, 1) / (np.linalg.norm(ea, axis=1) * np.linalg.norm(eb, axis=1))
        assert cos.min() > 0.95 and cos.mean() > 0.99, cos


def test_rewriting_twice_is_idempotent_and_keeps_the_labels(models_dir):
    original = model_bytes(models_dir, "yamnet.tflite")
    once = with_embedding_output(original)
    assert with_embedding_output(once) == once
    labels = embedded_labels(read_graph(original), original)
    assert labels and embedded_labels(read_graph(once), once) == labels


def test_edgetpu_model_is_refused_with_its_cpu_twin_named(models_dir):
    data = model_bytes(models_dir, "yamnet_spectra_in_edgetpu.tflite")
    with pytest.raises(UnsupportedModelError, match="Edge TPU.*CPU model"):
        with_embedding_output(data)


def test_a_model_without_a_classifier_layer_is_refused(models_dir):
    # Point the only output at the pooled tensor itself: no classifier layer leads to it.
    data = with_embedding_output(model_bytes(models_dir, "yamnet_spectra_in.tflite"))
    emb = embedding_tensor(read_graph(data))
    no_head = data[:-12] + struct.pack("<Ii", 1, emb) + b"\0\0\0\0"  # the vector sits at the end
    assert read_graph(no_head).outputs == (emb,)
    with pytest.raises(UnsupportedModelError, match="no embedding found"):
        with_embedding_output(no_head)
    assert embedding_output(read_graph(no_head)) is None


@pytest.mark.parametrize("damage", ["truncated", "zeros", "not_tflite"])
def test_corrupt_input_is_refused(models_dir, damage):
    data = model_bytes(models_dir, "yamnet_spectra_in.tflite")
    bad = {"truncated": data[: len(data) // 3], "zeros": bytes(64), "not_tflite": b"PK\x03\x04" + bytes(60)}[damage]
    with pytest.raises(ModelFileError):
        with_embedding_output(bad)
