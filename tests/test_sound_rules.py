"""A custom sound named in a rule like any label: config, config check, the daemon and classify."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import DATA, need
from edgekit.cli import main as cli
from edgekit.daemon.config import load_config
from edgekit.detect.heads import EmbeddingSpec, Sound, save_sound
from edgekit.detect.sound_store import sound_path

RATE = 16000


def _alarms():
    from edgekit.audio.files import read_audio

    folder = need(DATA / "events" / "target" / "smoke_alarm")
    return [read_audio(p) for p in sorted(folder.glob("*.flac"))]


@pytest.fixture(scope="module")
def sounds_dir(tmp_path_factory) -> Path:
    """A sound learned on the example config's model from two alarm recordings; the third is held out."""
    from edgekit.audio.files import read_audio
    from edgekit.sounds.embed import Embedder
    from edgekit.sounds.train import TrainOptions, learn

    models = need(DATA / "models")
    embedder = Embedder(models / "yamnet_spectra_in.tflite", frontend="fixed")
    room = [(p.name, read_audio(p)) for p in sorted((DATA / "events" / "background" / "speech").glob("resemblyzer*"))
            [1::2][:4]]
    alarms = _alarms()
    # 44 s of room: a budget of 100 false alarms/h is the lowest it can show (1/target hours).
    sound = learn("beeper", [(f"a{i}", a[: 4 * RATE]) for i, a in enumerate(alarms[:2])], room, embedder,
                  TrainOptions(augment=1, target_fa_per_hour=100))
    d = tmp_path_factory.mktemp("sounds")
    save_sound(sound, sound_path("beeper", d))
    # The same head, claimed for another model: its hash does not match.
    other = Sound("stranger", sound.weights, sound.bias, sound.threshold,
                  EmbeddingSpec(model="other.tflite", model_sha256="ab" * 32, hop_seconds=0.48, frontend="fixed"))
    save_sound(other, sound_path("stranger", d))
    return d


@pytest.fixture
def env(sounds_dir, monkeypatch):
    monkeypatch.setenv("EDGEKIT_SOUNDS_DIR", str(sounds_dir))
    monkeypatch.setenv("EDGEKIT_MODEL_DIR", str(need(DATA / "models")))
    return sounds_dir


def write_config(path: Path, label: str, *, source: str = "mic", enter: str = "", log: Path | None = None) -> Path:
    path.write_text(f"""
[model]
model = "{DATA / 'models' / 'yamnet_spectra_in.tflite'}"
frontend = "fixed"
[audio]
source = "{source}"
speed = "max"
hop_seconds = 0.2
[[rules]]
name = "alarm"
{'labels' if any(c.isupper() or c in ' ,' for c in label) else 'sounds'} = ["{label}"]
{enter}
hold = 2.0
{f'[log]{chr(10)}path = "{log}"' if log else ''}
""")
    return path


def test_rule_without_enter_takes_the_sounds_threshold(env, tmp_path, spectra_model):
    from edgekit.detect.sound_store import load_sound

    snd = load_sound("beeper")
    cfg = load_config(write_config(tmp_path / "a.toml", "beeper"), labels=spectra_model.labels)
    assert cfg.sounds == ("beeper",)
    rule = cfg.rules[0]
    assert rule.sounds == ("beeper",) and rule.labels == ()
    assert (rule.enter, rule.release) == (snd.threshold, snd.release) and snd.release < snd.threshold
    explicit = load_config(write_config(tmp_path / "b.toml", "beeper", enter="enter = 0.8"), labels=spectra_model.labels)
    assert explicit.rules[0].enter == 0.8
    # A model label of the same letters in another case is still the model's (exact sound names win).
    stock = load_config(write_config(tmp_path / "c.toml", "Smoke detector, smoke alarm"), labels=spectra_model.labels)
    assert stock.sounds == ()


def test_corrupt_sound_is_a_config_problem(env, tmp_path, spectra_model):
    from edgekit.errors import ConfigError

    bad = env / "broken.sound.npz"
    bad.write_bytes(b"PK\x03\x04 not really a sound")
    try:
        with pytest.raises(ConfigError, match=r'rules\[0\].sounds\[0\] \(rule "alarm"\): learned sound "broken" cannot be used: .*learn the sound again'):
            load_config(write_config(tmp_path / "a.toml", "broken"), labels=spectra_model.labels)
    finally:
        bad.unlink()


def test_config_check_and_run_refuse_a_sound_learned_on_another_model(env, tmp_path, capsys):
    config = write_config(tmp_path / "a.toml", "stranger", log=tmp_path / "events.jsonl")
    assert cli(["config", "check", str(config)]) == 1
    err = capsys.readouterr().err
    assert "custom sound 'stranger'" in err and "learned on other.tflite" in err
    assert cli(["run", "--config", str(config), "--source", str(DATA / "audio" / "speech.wav")]) == 78


def test_daemon_hears_the_custom_sound(env, tmp_path, caplog):
    held_out = tmp_path / "held_out.wav"
    alarm = _alarms()[2][: 8 * RATE]
    from edgekit.audio.files import read_audio

    speech = read_audio(DATA / "audio" / "speech.wav")
    sf.write(held_out, np.concatenate([speech, alarm, speech]), RATE, subtype="PCM_16")
    events = tmp_path / "events.jsonl"
    config = write_config(tmp_path / "a.toml", "beeper", source=str(held_out), log=events)
    assert cli(["config", "check", str(config)]) == 0
    with caplog.at_level(logging.INFO):
        assert cli(["run", "--config", str(config)]) == 0
    got = [json.loads(line) for line in events.read_text().splitlines()]
    starts = [e for e in got if e["kind"] == "start"]
    assert len(starts) == 1 and starts[0]["label"] == "beeper"
    onset = len(speech) / RATE
    assert onset - 0.5 <= starts[0]["stream_time"] <= onset + 2.0


def test_classify_shows_the_sound_beside_the_labels(env, tmp_path, capsys):
    clip = tmp_path / "alarm.wav"
    sf.write(clip, _alarms()[2][: 6 * RATE], RATE, subtype="PCM_16")
    assert cli(["classify", "--model", "yamnet_spectra_in", "--frontend", "fixed", "--sounds", "beeper", "--json",
                str(clip), str(DATA / "audio" / "speech.wav")]) == 0
    alarm, speech = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert max(w["sounds"]["beeper"] for w in alarm["windows"]) >= 0.5
    assert max(w["sounds"]["beeper"] for w in speech["windows"]) < 0.5
    assert cli(["classify", "--model", "yamnet", "--sounds", "beeper", str(clip)]) == 1  # learned on another model
    assert "learned on yamnet_spectra_in.tflite" in capsys.readouterr().err


def test_evaluate_scores_a_rule_that_names_a_custom_sound(env, tmp_path, capsys):
    from edgekit.audio.files import read_audio

    speech = read_audio(DATA / "audio" / "speech.wav")
    alarm = _alarms()[2][: 6 * RATE]
    clip = tmp_path / "scene.wav"
    sf.write(clip, np.concatenate([speech, alarm, speech]), RATE, subtype="PCM_16")
    onset = len(speech) / RATE
    tsv = tmp_path / "truth.tsv"
    tsv.write_text(f"filename\tonset\toffset\tevent_label\nscene.wav\t{onset:.2f}\t{onset + 6:.2f}\talarm\n")
    config = write_config(tmp_path / "a.toml", "beeper")
    out = tmp_path / "ev.json"
    assert cli(["evaluate", "--config", str(config), "--annotations", str(tsv), "--json", str(out), str(clip)]) == 0
    rule = json.loads(out.read_text())["rules"]["alarm"]
    assert (rule["events"], rule["detected"], rule["false_alarms"]) == (1, 1, 0)


def test_a_sound_with_context_scores_the_same_live_as_offline_with_bounded_state(tmp_path):
    """A head on 2 s of pooled windows: the daemon's path (Pipeline, window by window, a ring per
    sound) gives the scores that pooling the whole recording offline gives, the ring never holds
    more than 2 s of windows, and the file records the context."""
    from edgekit.audio.files import read_audio
    from edgekit.detect.sound_file import load_sound_file
    from edgekit.evaluate.replay import score_file
    from edgekit.models.model import load_model
    from edgekit.params import FeatureParams
    from edgekit.sounds.embed import Embedder
    from edgekit.sounds.train import TrainOptions, learn

    models = need(DATA / "models")
    embedder = Embedder(models / "yamnet_spectra_in.tflite", frontend="fixed")
    room = [(p.name, read_audio(p)) for p in sorted((DATA / "events" / "background" / "speech").glob("resemblyzer*"))
            [1::2][:4]]
    alarms = _alarms()
    sound = learn("beeper2", [(f"a{i}", a[: 4 * RATE]) for i, a in enumerate(alarms[:2])], room, embedder,
                  TrainOptions(augment=1, target_fa_per_hour=100, contexts=(2.0,)))
    assert sound.spec.context_seconds == 2.0 and sound.weights.shape == (2 * 1024,)
    loaded = load_sound_file(save_sound(sound, tmp_path / "beeper2.sound.npz"))
    assert loaded.spec.context_seconds == 2.0

    speech = read_audio(DATA / "audio" / "speech.wav")
    clip = tmp_path / "held_out.wav"
    sf.write(clip, np.concatenate([speech, alarms[2][: 8 * RATE], speech]), RATE, subtype="PCM_16")
    model = load_model(models / "yamnet_spectra_in.tflite", params=FeatureParams().with_hop(0.2), embedding=True)
    live, _ = score_file(model, clip, (), "fixed", None, (loaded,))
    offline = embedder.embed(read_audio(clip), 0.2)
    want = loaded.score_arrays(offline.embeddings, offline.scores, offline.starts)
    n = min(len(want), len(live.scores))
    assert n > 50
    np.testing.assert_allclose(live.scores[:n, -1], want[:n], atol=2e-4)
    onset = len(speech) / RATE
    heard = live.end[live.scores[:, -1] >= loaded.threshold]
    assert len(heard) and onset <= heard.min() <= onset + 3.0


def test_context_ring_is_bounded_and_pools_like_the_offline_series():
    from edgekit.detect.context import MAX_WINDOWS, ContextRing, pooled_series

    rng = np.random.default_rng(0)
    emb = rng.normal(size=(200, 8)).astype(np.float32)
    starts = np.arange(200) * 0.1
    ring = ContextRing(2.0)
    live = np.stack([ring.push(t, e) for t, e in zip(starts, emb)])
    assert len(ring) == 20  # windows started within the last 2 s: (t - 2, t]
    np.testing.assert_allclose(live, pooled_series(emb, starts, 2.0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(live[50, :8], emb[31:51].mean(0), rtol=1e-6)
    np.testing.assert_allclose(live[50, 8:], emb[31:51].max(0))
    wide = ContextRing(100.0)
    for t, e in zip(starts, emb):
        wide.push(t, e)
    assert len(wide) == MAX_WINDOWS
