"""edgekit record: background for calibration, captured through a real PulseAudio source."""

from __future__ import annotations

import soundfile as sf

from edgekit.cli import main
from pulse import pulse  # noqa: F401 - fixture


def test_record_writes_the_asked_seconds_at_16k(pulse, tmp_path):
    out = tmp_path / "room.flac"
    assert main(["record", "--seconds", "1.5", "-o", str(out), "--device", "pulse"]) == 0
    info = sf.info(out)
    assert info.samplerate == 16000 and info.channels == 1
    assert info.frames == 24000


def test_record_without_a_device_is_one_clear_error(tmp_path, capsys):
    assert main(["record", "--seconds", "1", "-o", str(tmp_path / "x.wav"), "--device", "no-such-mic"]) == 1
    assert "no input device matches 'no-such-mic'" in capsys.readouterr().err
