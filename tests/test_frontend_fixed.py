"""The integer log-mel front end against the float64 reference, on real recordings and edge cases."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from edgekit.frontend import reference
from edgekit.frontend.fixed import FixedFrontend, InputQuant, dequantise, quantise
from edgekit.params import FeatureParams

DATA = Path(os.environ.get("EDGEKIT_TEST_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
NO_DATA = f"shared test data not found at {DATA} (set EDGEKIT_TEST_DATA to the shared/data folder)"
CLIPS = sorted(DATA.glob("audio/*.wav"))
PARAMS = FeatureParams()

# yamnet_spectra_in.tflite's input quantisation, for the tests that must run without the shared
# data; test_quant_matches_model checks it against the model itself whenever the model is there.
YAMNET_QUANT = InputQuant(scale=0.04778895899653435, zero_point=17)


def model_input_quant(path: Path) -> InputQuant:
    """The output quantisation of the graph's first QUANTIZE op: what the int8 body expects."""
    interpreter = pytest.importorskip("ai_edge_litert.interpreter").Interpreter(model_path=str(path))
    op = next(o for o in interpreter._get_ops_details() if o["op_name"] == "QUANTIZE")
    tensor = next(t for t in interpreter.get_tensor_details() if t["index"] == op["outputs"][0])
    scale, zero_point = tensor["quantization"]
    return InputQuant(float(scale), int(zero_point))


@pytest.fixture(scope="module")
def quant() -> InputQuant:
    model = DATA / "models" / "yamnet_spectra_in.tflite"
    return model_input_quant(model) if model.exists() else YAMNET_QUANT


@pytest.fixture(scope="module")
def frontend(quant) -> FixedFrontend:
    return FixedFrontend(quant)


def load_pcm16(path: Path) -> np.ndarray:
    soundfile = pytest.importorskip("soundfile")
    soxr = pytest.importorskip("soxr")
    x, rate = soundfile.read(str(path), dtype="float64", always_2d=True)
    x = x.mean(axis=1)
    if rate != PARAMS.sample_rate_hz:
        x = soxr.resample(x, rate, PARAMS.sample_rate_hz)
    return np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)


def reference_codes(frames: np.ndarray, quant: InputQuant) -> np.ndarray:
    return quantise(reference.log_mel_frames(frames, PARAMS), quant)


def agreement(fixed: np.ndarray, ref: np.ndarray) -> tuple[float, float, int]:
    delta = np.abs(fixed.astype(np.int32) - ref.astype(np.int32))
    return float(np.mean(delta == 0)), float(np.mean(delta <= 1)), int(delta.max())


def test_quant_matches_model():
    model = DATA / "models" / "yamnet_spectra_in.tflite"
    if not model.exists():
        pytest.skip(NO_DATA)
    assert model_input_quant(model) == YAMNET_QUANT


@pytest.mark.parametrize("clip", CLIPS or [None], ids=[c.name for c in CLIPS] or ["no-data"])
def test_recording_within_one_lsb(clip, frontend, quant):
    if clip is None:
        pytest.skip(NO_DATA)
    pcm = load_pcm16(clip)
    fixed = frontend.waveform_to_codes(pcm)  # [patches, 96, 64]
    ref = quantise(reference.waveform_to_patches(pcm, PARAMS), quant)
    assert fixed.shape == ref.shape and fixed.dtype == np.int8
    exact, within_one, worst = agreement(fixed, ref)
    print(f"{clip.name}: {fixed.size} codes, ={exact:.5f} <=1: {within_one:.5f} max |d| {worst}")
    assert within_one >= 0.99, f"{clip.name}: only {within_one:.4%} within 1 LSB (max |d| {worst})"


def test_batching_does_not_change_codes(frontend):
    rng = np.random.default_rng(7)
    # Frames of very different loudness, so per-frame exponents differ within one batch.
    gains = np.array([0, 1, 30, 1000, 32767])[rng.integers(0, 5, 40)]
    frames = np.clip(rng.normal(size=(40, 400)) * gains[:, None], -32768, 32767).astype(np.int16)
    together = frontend.frames_to_codes(frames)
    one_by_one = np.concatenate([frontend.frames_to_codes(frames[i : i + 1]) for i in range(40)])
    in_blocks = np.concatenate([frontend.frames_to_codes(b) for b in np.array_split(frames, [3, 4, 17])])
    np.testing.assert_array_equal(one_by_one, together)
    np.testing.assert_array_equal(in_blocks, together)
    assert frontend.frames_to_codes(frames[:0]).shape == (0, PARAMS.mel_bands)


def test_silence_is_log_offset(frontend, quant):
    expected = int(quantise(np.log(PARAMS.log_offset), quant))  # -128 for YAMNet: clamped
    codes = frontend.waveform_to_codes(np.zeros(PARAMS.patch_samples, np.int16))
    assert codes.shape == (1, PARAMS.patch_frames, PARAMS.mel_bands)
    assert np.all(np.abs(codes.astype(int) - expected) <= 1)


def test_full_scale_sine_peaks_in_its_band(frontend, quant):
    t = np.arange(PARAMS.sample_rate_hz)
    sine = np.round(32767 * np.sin(2 * np.pi * 1000.0 * t / PARAMS.sample_rate_hz)).astype(np.int16)
    frames = reference.frame(sine, PARAMS.window_samples, PARAMS.hop_samples)
    codes = frontend.frames_to_codes(frames)
    # 1 kHz is FFT bin 32 (31.25 Hz per bin); the band that weighs it most must win.
    band = int(np.argmax(reference.mel_matrix(PARAMS)[32]))
    assert np.all(np.argmax(codes, axis=1) == band)
    _, within_one, worst = agreement(codes, reference_codes(frames, quant))
    assert within_one == 1.0, f"max |d| {worst}"


@pytest.mark.parametrize(
    "name, frames",
    [
        ("dc -32768", np.full((2, 400), -32768, np.int16)),
        ("dc 32767", np.full((2, 400), 32767, np.int16)),
        ("nyquist", np.tile(np.array([32767, -32768], np.int16), (2, 200))),
        ("impulses", np.eye(400, dtype=np.int16)[::7] * np.int16(-32768)),
        ("noise", np.random.default_rng(3).integers(-32768, 32768, (64, 400)).astype(np.int16)),
        ("1 LSB noise", np.random.default_rng(4).integers(-1, 2, (64, 400)).astype(np.int16)),
    ],
)
def test_extreme_frames_stay_in_range(frontend, quant, name, frames):
    # Full-scale DC and Nyquist drive the FFT's growth to its maximum: overflow would show here.
    stages = frontend.stages(frames)
    assert max(np.abs(stages["fft_re"]).max(), np.abs(stages["fft_im"]).max()) <= 2**29
    _, within_one, worst = agreement(stages["codes"], reference_codes(frames, quant))
    assert within_one == 1.0, f"{name}: max |d| {worst}"


def test_per_frame_path_is_integer_only(frontend, monkeypatch):
    def no_float_fft(*args, **kwargs):
        raise AssertionError("the fixed-point path called np.fft")

    for name in ("fft", "rfft", "irfft", "ifft"):
        monkeypatch.setattr(np.fft, name, no_float_fft)
    frames = np.random.default_rng(5).integers(-20000, 20000, (8, 400)).astype(np.int16)
    with np.errstate(all="raise"):
        stages = frontend.stages(frames)
    for name, value in stages.items():
        assert np.issubdtype(value.dtype, np.integer), f"{name} is {value.dtype}"
    assert stages["codes"].dtype == np.int8
    for name, table in frontend.constants().items():
        assert np.issubdtype(table.dtype, np.integer), f"constant {name} is {table.dtype}"


def test_constant_tables_are_pinned():
    # The tables are rounded from libm floats once; a platform whose cos/log lands on the other
    # side of a rounding boundary would produce different bytes. Value recorded on x86-64 Linux.
    tables = FixedFrontend(YAMNET_QUANT).constants()
    digest = hashlib.sha256()
    for name in sorted(tables):
        digest.update(np.ascontiguousarray(tables[name], dtype="<i8").tobytes())
    assert digest.hexdigest() == "ee9baf0c85070ffb5ec5e71a229f2a80c515464daa27e4adf72169739ce9523f"


def test_golden_codes(frontend, quant):
    audio = DATA / "models" / "yamnet_test_audio.bin"
    if not audio.exists():
        pytest.skip(NO_DATA)
    pcm = np.fromfile(audio, dtype="<i2").astype(np.int16)  # 15600 samples: one patch
    codes = frontend.waveform_to_codes(pcm)
    # Produced by running this very computation (FixedFrontend(quant from yamnet_spectra_in.tflite)
    # .waveform_to_codes on yamnet_test_audio.bin, sha256 of the int8 bytes) once on x86-64, after
    # checking it against the float reference as below; it pins the integer path bit for bit.
    assert hashlib.sha256(codes.tobytes()).hexdigest() == (
        "1f4c9ef755794eef121ba3963209f824450b8895ddcca742e870fa032a19e9f9"
    )
    _, within_one, worst = agreement(codes, quantise(reference.waveform_to_patches(pcm, PARAMS), quant))
    assert within_one >= 0.99 and worst <= 1


def test_quantise_rounds_half_away_from_zero_and_clamps():
    q = InputQuant(scale=0.5, zero_point=3)
    codes = quantise(np.array([0.25, -0.25, 0.75, -0.75, 1.0, 100.0, -100.0]), q)
    np.testing.assert_array_equal(codes, [4, 2, 5, 1, 5, 127, -128])
    assert codes.dtype == np.int8
    back = dequantise(codes, q)
    assert back.dtype == np.float32
    np.testing.assert_allclose(back[:5], [0.5, -0.5, 1.0, -1.0, 1.0])


def test_rejects_bad_input(frontend):
    with pytest.raises(TypeError, match="int16"):
        frontend.frames_to_codes(np.zeros((1, 400), np.float32))
    with pytest.raises(TypeError, match="int16"):
        frontend.waveform_to_codes([0] * 16000)
    with pytest.raises(ValueError):
        frontend.frames_to_codes(np.zeros((1, 512), np.int16))
    with pytest.raises(ValueError):
        InputQuant(scale=0.0, zero_point=0)
    with pytest.raises(ValueError):
        InputQuant(scale=0.1, zero_point=200)
