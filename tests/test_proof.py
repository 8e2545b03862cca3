"""Proof against Google's and Coral's real models, window by window, on every shared recording.

Every path sees the same samples: each recording is read once, mixed to mono, resampled to
16 kHz and rounded to int16 (the `recordings` fixture).
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import MODELS, need
from edgekit.frontend import reference
from edgekit.proof import compare, official_logmel


@pytest.fixture(scope="module")
def official_run(recordings, official_model):
    """Per recording: the official graph's own log-mel patches and its end-to-end scores."""
    return {name: official_logmel(official_model, pcm) for name, pcm in recordings.items()}


def edgekit_scores(model, pcm, frontend):
    """edgekit's side through the one path the daemon runs."""
    from edgekit.listen import listen_pcm

    return np.stack([w.scores for w in listen_pcm(model, pcm, frontend=frontend)])


@pytest.mark.parametrize("frontend,target", [("float", 0.99), ("fixed", 0.98)])
def test_front_end_isolated_through_the_same_body(recordings, official_run, spectra_model, frontend, target):
    """Official log-mel vs edgekit's patches, both through Coral's yamnet_spectra_in body."""
    agree = total = 0
    deltas = []
    for name, pcm in recordings.items():
        official_feats, _ = official_run[name]
        theirs = np.stack([spectra_model.run(p) for p in official_feats])
        ours = edgekit_scores(spectra_model, pcm, frontend)
        assert ours.shape == theirs.shape, name
        a, d = compare(theirs, ours)
        agree, total = agree + a, total + len(ours)
        deltas.append(d)
        assert d <= 0.002, (name, d)
    print(f"{frontend}: top-1 agreement {agree}/{total}, mean |dscore| per clip {np.round(deltas, 5)}")
    assert agree / total >= target


def test_end_to_end_against_googles_yamnet(recordings, official_run, spectra_model):
    """Google's yamnet.tflite vs edgekit float front end + Coral's int8 body.

    The two int8 bodies are quantised independently (they agree on ~95 % of windows even when fed
    the very same log-mel), so the target is 93 %.
    """
    agree = total = 0
    for name, pcm in recordings.items():
        _, official_scores = official_run[name]
        ours = edgekit_scores(spectra_model, pcm, "float")
        a, d = compare(official_scores, ours)
        agree, total = agree + a, total + len(ours)
        assert d <= 0.01, (name, d)
    assert agree / total >= 0.93


def test_coral_test_audio_is_speech(spectra_model):
    pcm = np.fromfile(need(MODELS / "yamnet_test_audio.bin"), "<i2")
    assert len(pcm) == 15600
    scores = spectra_model.run(reference.waveform_to_patches(pcm)[0])
    assert spectra_model.labels[int(scores.argmax())] == "Speech"


def test_coral_test_spectra_is_speech(spectra_model):
    path = need(MODELS / "yamnet_test_spectra.bin")
    patch = np.fromfile(path, "<f4").reshape(96, 64)
    scores = spectra_model.run(patch)
    assert spectra_model.labels[int(scores.argmax())] == "Speech"
    assert scores.max() == pytest.approx(0.94, abs=0.03)


def test_readme_figures_for_the_official_model(recordings, official_run):
    """shared/data/README's per-clip figures: mean official score over the clip's windows."""
    expected = {"speech.wav": ("Speech", 0.98), "smoke_alarm.wav": ("Smoke detector, smoke alarm", 0.84),
                "applause.wav": ("Applause", 0.94)}
    from edgekit.models.labels import load_labels

    labels = load_labels(MODELS / "yamnet_class_map.csv")
    for name, (label, score) in expected.items():
        _, scores = official_run[name]
        assert scores.mean(0)[labels.index(label)] == pytest.approx(score, abs=0.03), name
