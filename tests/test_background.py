"""One rule for how much background a false-alarm budget needs (calibrate and sounds learn), and
digital silence never counts as background."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from edgekit.audio.background import (MIN_SECONDS, SILENCE_DBFS, audible_seconds, audible_seconds_of,
                                      false_alarm_budget)
from edgekit.cli import main
from edgekit.errors import BackgroundError

RATE = 16000


def noise(seconds: float, dbfs: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.normal(0, 32768 * 10 ** (dbfs / 20), int(seconds * RATE)), -32768, 32767).astype(np.int16)


def test_digital_silence_and_dither_are_not_background_a_quiet_room_is():
    assert audible_seconds_of([np.zeros(10 * RATE, np.int16)]) == 0.0
    dither = np.random.default_rng(1).choice(np.array([-1, 1], np.int16), 10 * RATE)  # RMS one step: -90.3 dBFS
    assert audible_seconds_of([dither]) == 0.0
    assert audible_seconds_of([noise(10, -70)]) == pytest.approx(10.0)
    # Blocks of any size add up to the whole.
    x = np.concatenate([noise(3, -60), np.zeros(4 * RATE, np.int16), noise(3, -60, 2)])
    assert audible_seconds_of(np.array_split(x, 7)) == pytest.approx(6.0, abs=0.1)
    assert audible_seconds([SILENCE_DBFS - 1, -np.inf, -60.0], 0.5) == 0.5


def test_a_budget_needs_one_over_target_hours_and_a_floor_whatever_the_target():
    # k = floor(R x hours) - 1: a threshold above k + 1 of the room's peaks expects at most R on new audio
    assert false_alarm_budget(3600, 1.0) == 0 and false_alarm_budget(9000, 1.0) == 1
    with pytest.raises(BackgroundError, match=r"30.0 min of audible background .* at least 60 min"):
        false_alarm_budget(1800, 1.0)  # what sounds learn accepted last round
    with pytest.raises(BackgroundError, match=r"0.05 s of audible background .* at least 30 s .*never under 30 s"):
        false_alarm_budget(0.05, 1e6)  # a 0.05 s file with the target raised to fit it
    with pytest.raises(BackgroundError, match="no audible background .*digital silence"):
        false_alarm_budget(0.0, 1e6, "--fa-per-hour")
    with pytest.raises(BackgroundError, match="--fa-per-hour must be a positive"):
        false_alarm_budget(3600, 0, "--fa-per-hour")
    assert MIN_SECONDS >= 30


@pytest.mark.parametrize("kind", ["silence", "short"])
def test_calibrate_and_sounds_learn_refuse_the_same_background_the_same_way(tmp_path, models_dir, monkeypatch,
                                                                           capsys, kind):
    """Digital silence, however long, and 5 min of room for 1 false alarm per hour: both commands
    refuse, with one line saying how much is needed, before any model time."""
    bg = tmp_path / "room.wav"
    if kind == "silence":
        sf.write(bg, np.zeros(70 * 60 * RATE, np.int16), RATE, subtype="PCM_16")
        target, expect = "100", "no audible background"  # 70 min, when 36 s would do for 100/h
    else:
        sf.write(bg, noise(5 * 60, -50), RATE, subtype="PCM_16")
        target, expect = "1", "5.0 min of audible background"
    cfg = tmp_path / "edgekit.toml"
    cfg.write_text(f'[model]\nmodel = "{models_dir / "yamnet_spectra_in.tflite"}"\n'
                   '[[rules]]\nname = "dog"\nlabels = ["Dog"]\n')
    rc = main(["calibrate", "--config", str(cfg), "--background", str(bg), "--target-fa-per-hour", target,
               "-o", str(tmp_path / "new.toml")])
    err_cal = capsys.readouterr().err
    assert rc == 1 and expect in err_cal and len(err_cal.strip().splitlines()) == 1
    assert not (tmp_path / "new.toml").exists()

    monkeypatch.setenv("EDGEKIT_SOUNDS_DIR", str(tmp_path / "sounds"))
    monkeypatch.setenv("EDGEKIT_MODEL_DIR", str(models_dir))
    clip = tmp_path / "ex.wav"
    sf.write(clip, noise(2, -20, 3), RATE, subtype="PCM_16")
    rc = main(["sounds", "learn", "thing", "--examples", str(clip), "--background", str(bg), "--fa-per-hour", target])
    err_learn = capsys.readouterr().err
    assert rc == 1 and expect in err_learn and len(err_learn.strip().splitlines()) == 1
    assert not (tmp_path / "sounds").exists() or not any((tmp_path / "sounds").iterdir())
    # One rule: the same verdict, but for the option's name.
    verdict = err_cal[err_cal.index("cannot show"):].replace("--target-fa-per-hour", "FLAG")
    assert verdict == err_learn[err_learn.index("cannot show"):].replace("--fa-per-hour", "FLAG")
    if kind == "short":
        assert "FLAG 12 or more" in verdict


def test_calibrate_counts_a_recordings_background_as_sounds_learn_does(tmp_path, models_dir):
    """One measure: the seconds calibrate credits a scored recording with are the seconds
    `sounds learn` credits the same audio with. Half a second of sound, half of digital silence
    (as clips padded with zeros are): every 0.975 s window hears some sound, yet half is silence."""
    from edgekit.evaluate.calibrate import background_hours
    from edgekit.evaluate.replay import Scores, score_file
    from edgekit.models.model import load_model
    from edgekit.params import FeatureParams

    half = int(0.5 * RATE)
    x = np.concatenate([np.concatenate([noise(0.5, -40, i), np.zeros(half, np.int16)]) for i in range(60)])
    path = tmp_path / "gappy.wav"
    sf.write(path, x, RATE, subtype="PCM_16")
    model = load_model(models_dir / "yamnet_spectra_in.tflite", params=FeatureParams().with_hop(0.48))
    scores, _ = score_file(model, path)
    learn_seconds = audible_seconds_of([x])
    assert learn_seconds == pytest.approx(30.0, abs=0.2)
    assert background_hours([scores]) * 3600 == pytest.approx(learn_seconds, abs=1e-6)
    scores.save(tmp_path / "s.npz")  # and a cached copy says the same
    assert background_hours([Scores.load(tmp_path / "s.npz")]) * 3600 == pytest.approx(learn_seconds, abs=1e-6)
