"""Reading files in blocks: odd headers and samples get one clear message, and reading goes on."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import soundfile as sf

from edgekit.audio.files import iter_audio, read_audio
from edgekit.errors import AudioFileError


def _tone(seconds: float, rate: int = 16000, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.mark.parametrize("rate", [1, 999, 400_000])
def test_absurd_sample_rates_are_refused(tmp_path, rate):
    path = tmp_path / f"r{rate}.wav"
    sf.write(path, _tone(0.01, 16000), rate, subtype="PCM_16")
    with pytest.raises(AudioFileError, match=f"{rate} Hz.*header is wrong"):
        read_audio(path)


def test_truncated_wav_is_read_with_a_warning(tmp_path, caplog):
    full = tmp_path / "full.wav"
    sf.write(full, _tone(3.0), 16000, subtype="PCM_16")
    cut = tmp_path / "cut.wav"
    cut.write_bytes(full.read_bytes()[: 44 + 2 * 16000])  # header + 1 s of the promised 3 s
    with caplog.at_level(logging.WARNING, logger="edgekit.audio"):
        pcm = read_audio(cut)
    assert len(pcm) == 16000
    assert np.abs(pcm).max() > 10000  # the tone, not silence
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "promises 3.00 s" in warnings[0] and "holds 1.00 s" in warnings[0]


def test_intact_wav_gives_no_warning(tmp_path, caplog):
    path = tmp_path / "ok.wav"
    sf.write(path, _tone(1.0), 16000, subtype="PCM_16")
    with caplog.at_level(logging.WARNING, logger="edgekit.audio"):
        read_audio(path)
    assert not caplog.records


def test_float_samples_beyond_full_scale_are_clipped_with_one_warning(tmp_path, caplog):
    path = tmp_path / "hot.wav"
    sf.write(path, np.tile(_tone(1.0, amp=25.0), 12), 16000, subtype="FLOAT")  # 12 s: several blocks
    with caplog.at_level(logging.WARNING, logger="edgekit.audio"):
        blocks = list(iter_audio(path, block_seconds=1.0))
    pcm = np.concatenate(blocks)
    assert pcm.max() == 32767 and pcm.min() == -32768  # clipped, not silence
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "25" in warnings[0] and "outside [-1, 1]" in warnings[0]


def test_blocks_equal_a_whole_read(audio_dir):
    """Block size changes nothing for a file at 16 kHz, and at most 1 LSB through the resampler."""
    for name in ("speech.wav", "smoke_alarm.wav", "dog.wav", "glass_break.ogg"):
        a = np.concatenate(list(iter_audio(audio_dir / name, block_seconds=0.25)))
        b = np.concatenate(list(iter_audio(audio_dir / name, block_seconds=30.0)))
        assert len(a) == len(b)
        assert np.abs(a.astype(np.int32) - b).max() <= 1, name
