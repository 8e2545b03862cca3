"""`edgekit classify` on real recordings in the formats users have, and on broken ones."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from edgekit.audio.files import read_audio
from edgekit.cli import main
from edgekit.errors import AudioFileError


@pytest.fixture(scope="module")
def speech_48k_stereo(audio_dir):
    x, rate = sf.read(audio_dir / "speech.wav", dtype="float64")
    assert rate == 16000
    import soxr

    y = soxr.resample(x, 16000, 48000)
    return np.stack([y, 0.5 * y], axis=1), 48000


@pytest.mark.parametrize(
    "fmt,subtype,ext",
    [("WAV", "PCM_24", "wav"), ("WAV", "PCM_32", "wav"), ("WAV", "FLOAT", "wav"),
     ("WAVEX", "PCM_16", "wav"), ("FLAC", "PCM_16", "flac"), ("OGG", "VORBIS", "ogg")],
)
def test_formats_all_read_as_16k_int16(tmp_path, speech_48k_stereo, fmt, subtype, ext):
    data, rate = speech_48k_stereo
    path = tmp_path / f"speech.{ext}"
    sf.write(path, data, rate, format=fmt, subtype=subtype)
    pcm = read_audio(path)
    assert pcm.dtype == np.int16
    assert abs(len(pcm) - 4.27 * 16000) < 200


def test_waveform_and_logmel_models_give_the_same_windows(models_dir, audio_dir, capsys):
    outs = []
    for model in ("yamnet.tflite", "yamnet_spectra_in.tflite"):
        assert main(["classify", "--model", str(models_dir / model), str(audio_dir / "speech.wav"), "--json"]) == 0
        outs.append(json.loads(capsys.readouterr().out))
    a, b = outs
    assert [(w["start"], w["end"]) for w in a["windows"]] == [(w["start"], w["end"]) for w in b["windows"]]
    assert a["windows"][1] == {"start": 0.48, "end": 1.455, "top": a["windows"][1]["top"]}
    assert all(w["top"][0]["label"] == "Speech" for w in a["windows"] + b["windows"])
    assert a["kind"] == "waveform" and b["kind"] == "log-mel" and b["frontend"] == "float"
    assert a["runtime"].startswith("ai-edge-litert") and a["device"] == "cpu"


def test_text_timeline_and_hop(models_dir, audio_dir, capsys):
    assert main(["classify", "--model", str(models_dir / "yamnet.tflite"), "--hop", "0.1", "--top", "2",
                 str(audio_dir / "smoke_alarm.wav")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "smoke_alarm.wav" in out[0] and "yamnet.tflite on cpu" in out[0]
    rows = out[1:]
    # 11.2 s at a 0.1 s hop: ceil((n - 15600) / 1600) + 1 windows.
    n = len(read_audio(audio_dir / "smoke_alarm.wav"))
    assert len(rows) == -(-(n - 15600) // 1600) + 1
    assert sum("Smoke detector" in r for r in rows) > len(rows) / 2


def test_short_clip_is_padded_not_rejected(models_dir, audio_dir, capsys):
    assert main(["classify", "--model", str(models_dir / "yamnet.tflite"), "--json",
                 str(audio_dir / "glass_break.ogg")]) == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["windows"]) == 1
    assert result["windows"][0]["top"][0]["label"] in ("Glass", "Breaking", "Shatter")


def test_bad_files_are_reported_and_the_rest_still_processed(tmp_path, models_dir, audio_dir, capsys):
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0,), np.int16), 16000, subtype="PCM_16")
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, np.int16), 16000, subtype="PCM_16")
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.array([0.1, np.nan, 0.2] * 8000, np.float32), 16000, subtype="FLOAT")
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunk")
    rc = main(["classify", "--model", str(models_dir / "yamnet.tflite"), str(empty), str(silent), str(nan),
               str(tmp_path / "missing.wav"), str(garbage), str(tmp_path), str(audio_dir / "speech.wav")])
    captured = capsys.readouterr()
    assert rc == 1
    err = captured.err.splitlines()
    assert len(err) == 6 and all(line.startswith("edgekit: error: ") for line in err)
    for needle in ("no samples", "digital silence", "NaN", "no such file", "cannot read it as audio", "directory"):
        assert any(needle in line for line in err), needle
    assert "speech.wav" in captured.out and "Speech" in captured.out
    assert "Traceback" not in captured.err


def test_frontend_does_not_apply_to_waveform_models(models_dir, audio_dir, capsys):
    rc = main(["classify", "--model", str(models_dir / "yamnet.tflite"), "--frontend", "fixed",
               str(audio_dir / "speech.wav")])
    assert rc == 2
    assert "computes its own features" in capsys.readouterr().err


def test_image_model_is_refused_for_audio(models_dir, audio_dir, capsys):
    rc = main(["classify", "--model", str(models_dir / "mobilenet_v1_0.25_128_quant.tflite"),
               str(audio_dir / "speech.wav")])
    assert rc == 1
    assert "image model" in capsys.readouterr().err


YAMNET = "yamnet.tflite"


@pytest.mark.parametrize("argv,says", [
    (["classify", "--model", YAMNET, "--hop", "0.015", "x.wav"], "multiple of 0.01"),
    (["classify", "--model", YAMNET, "--top", "0", "x.wav"], "--top"),
    (["classify", "--model", YAMNET, "--device", "gpu", "x.wav"], "gpu"),
    (["classify", "--model", YAMNET, "--frontend", "fixed", "SPEECH"], "computes its own features"),
    (["bench", YAMNET, "--runs", "0", "-q"], "--runs"),
    (["bench", YAMNET, "--device", "tpu9", "-q"], "tpu9"),
    (["bench", YAMNET, "--labels", "no_such_labels.txt", "-q"], "argument --labels: no such file"),
    (["macs", YAMNET, "--labels", "no_such_labels.txt"], "argument --labels: no such file"),
    (["models", "inspect", YAMNET, "--labels", "no_such_labels.txt"], "argument --labels: no such file"),
    (["models", "build", "yamnet", "--weights", "random", "-o", "out.txt"], "must be a .tflite"),
    (["models", "build", "yamnet", "-o", "out.tflite"], "say which weights"),
    (["classify", "--no-such-option", "x.wav"], "unrecognized arguments"),  # argparse's own
])
def test_option_errors_exit_2_in_every_command(argv, says, models_dir, audio_dir, capsys):
    argv = [str(models_dir / a) if a == YAMNET else str(audio_dir / "speech.wav") if a == "SPEECH" else a
            for a in argv]
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse exits by itself
        rc = exc.code
    assert rc == 2
    assert says in capsys.readouterr().err


def test_failures_that_are_not_option_errors_exit_1(tmp_path, models_dir, capsys):
    assert main(["classify", "--model", str(tmp_path / "none.tflite"), "x.wav"]) == 1
    assert "no such model file" in capsys.readouterr().err
    assert main(["macs", str(tmp_path / "none.tflite")]) == 1


def test_read_audio_errors_are_audio_file_errors(tmp_path):
    with pytest.raises(AudioFileError):
        read_audio(tmp_path / "none.wav")


def test_doctor_reports_runtime_and_edgetpu(capsys):
    assert main(["doctor", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["runtime"].startswith("ai-edge-litert")
    assert info["numpy"] and info["python"] and info["cpu"]
    assert isinstance(info["edgetpu"]["usable"], bool) and info["edgetpu"]["reason"]
    assert main(["version"]) == 0
    assert "edgetpu:" in capsys.readouterr().out
