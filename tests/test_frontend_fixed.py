"""The integer log-mel front end against the float path and a float64 oracle, on real recordings
and edge cases; its exactness (the same bytes for any batching, on any machine)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

import logmel_oracle as oracle
from edgekit.frontend import reference, spectrum, tables
from edgekit.frontend.fixed import FixedFrontend
from edgekit.quant import InputQuant, dequantise, quantise
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
    """The float64 oracle's log-mel, quantised as TFLite would."""
    return quantise(oracle.log_mel_frames(frames, PARAMS), quant)


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
    for name, log_mel in (("float path", reference.waveform_to_patches(pcm, PARAMS)),
                          ("oracle", oracle.waveform_to_patches(pcm, PARAMS))):
        ref = quantise(log_mel, quant)
        assert fixed.shape == ref.shape and fixed.dtype == np.int8
        exact, within_one, worst = agreement(fixed, ref)
        print(f"{clip.name} vs {name}: {fixed.size} codes, ={exact:.5f} <=1: {within_one:.5f} max |d| {worst}")
        # The module's error budget is under a fifth of a step, so never two steps apart.
        assert worst <= 1, f"{clip.name}: {within_one:.4%} within 1 LSB of the {name} (max |d| {worst})"
        assert exact >= 0.999


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


def _dft_extremes() -> np.ndarray:
    """Full-scale frames whose folded sums attain the 2**53 bound's worst case for a bin: the
    samples follow the signs of that bin's cosine (and sine)."""
    n = np.arange(PARAMS.window_samples)
    rows = []
    for k in (5, 64, 128, 200, 239):
        for f in (np.cos, np.sin):
            rows.append(np.where(f(2 * np.pi * k * (n - 200) / PARAMS.fft_length) >= 0, 32767, -32768))
    return np.array(rows, np.int16)


EXTREMES = [
    ("dc -32768", np.full((2, 400), -32768, np.int16)),
    ("dc 32767", np.full((2, 400), 32767, np.int16)),
    ("nyquist", np.tile(np.array([32767, -32768], np.int16), (2, 200))),
    ("impulses", np.eye(400, dtype=np.int16)[::7] * np.int16(-32768)),
    ("noise", np.random.default_rng(3).integers(-32768, 32768, (64, 400)).astype(np.int16)),
    ("1 LSB noise", np.random.default_rng(4).integers(-1, 2, (64, 400)).astype(np.int16)),
    ("bin-matched signs", _dft_extremes()),
]


@pytest.mark.parametrize("name, frames", EXTREMES, ids=[e[0] for e in EXTREMES])
def test_extreme_frames_stay_exact_and_in_range(frontend, quant, name, frames):
    stages = frontend.stages(frames)
    dft = stages["dft"]
    # The BLAS product in float64 equals the exact integer product (int64, no BLAS): every
    # partial sum stayed an integer below 2**53, whatever order the library summed in.
    t = frontend._spectrum.tables
    x = frames.astype(np.int64)
    c = PARAMS.window_samples // 2
    u = x[:, c:] + x[:, c:0:-1]
    d = x[:, c:] - x[:, c:0:-1]
    exact = np.stack([u @ t["fold_cos"], d @ t["fold_sin"]])  # [2, F, K], bins k' = columns
    half = PARAMS.fft_length // 2
    for j, k in enumerate(t["bin_order"]):
        col = int(np.flatnonzero(t["columns"] == min(k, half - k))[0])
        even = (np.arange(c) % 2 == 0)
        e_part = np.stack([u[:, even] @ t["fold_cos"][even, col], d[:, even] @ t["fold_sin"][even, col]])
        o_part = exact[:, :, col] - e_part
        want = e_part + o_part if k <= half - k else e_part - o_part
        np.testing.assert_array_equal(dft[:, :, j], want.astype(np.float64))
    assert np.abs(dft).max() < 2**53
    assert np.abs(stages["block"]).max() <= 2**29
    assert stages["magnitude"].max() <= round(2**29.5)
    _, within_one, worst = agreement(stages["codes"], reference_codes(frames, quant))
    assert within_one == 1.0, f"{name}: max |d| {worst}"


def test_fold_bound_is_attained_below_2_53():
    # The docstring's bound, from the tables: sum_m 2**16 |C[m, k]| for the worst column.
    t = tables.dft_tables(PARAMS, spectrum.COEF_BITS, spectrum.WEIGHT_BITS)
    for name in ("fold_cos", "fold_sin"):
        worst = 2**16 * np.abs(t[name]).sum(axis=0).max()
        assert worst < 2**53, name
        assert worst > 2**51  # and the check is not vacuous: within a factor 4 of the limit


def test_round_sqrt_is_exact_near_half_integers():
    rng = np.random.default_rng(1)
    k = rng.integers(0, 2**30, 20000)
    n = np.concatenate([k * k - k, k * k - k + 1, k * k + k, k * k + k + 1, k * k,
                        rng.integers(0, 2**59, 20000), np.arange(100), [2**59, 2**60]]).astype(np.int64)
    ws = spectrum._Workspace.__new__(spectrum._Workspace)
    ws.scratch, ws.magnitude = np.empty((2, len(n))), np.empty(len(n))
    got = spectrum._round_sqrt(n.copy(), ws).astype(np.int64)
    want = np.array([s + (4 * m >= (2 * s + 1) ** 2) for m in n.tolist() for s in [math.isqrt(m)]])
    np.testing.assert_array_equal(got, want)


def test_codes_are_the_exact_quantisation_of_the_q32_value(frontend, quant):
    # y * 2**-32 on both sides of every threshold: the code switches exactly there.
    t = frontend._thresholds[1:-1]  # codes -127..127
    y = np.concatenate([t, t - 1])
    y = y[(y >= 2**22) & (y < 2**45)]
    codes = frontend._codes(y.reshape(1, -1)).reshape(-1).astype(int)
    ref = quantise(np.log(y.astype(np.float64)) - 32 * np.log(2.0), quant).astype(int)
    # At a threshold the float64 log and float32 division of `quantise` may fall either side.
    assert np.abs(codes - ref).max() <= 1
    k = len(y) // 2
    assert np.all(codes[:k] - codes[k:] == 1)  # T[c] quantises to c, T[c] - 1 to c - 1


def test_per_frame_path_is_exact(frontend, monkeypatch):
    def no_float_fft(*args, **kwargs):
        raise AssertionError("the fixed-point path called np.fft")

    for name in ("fft", "rfft", "irfft", "ifft"):
        monkeypatch.setattr(np.fft, name, no_float_fft)
    frames = np.random.default_rng(5).integers(-20000, 20000, (8, 400)).astype(np.int16)
    with np.errstate(all="raise"):
        stages = frontend.stages(frames)
    for name, value in stages.items():
        if np.issubdtype(value.dtype, np.floating):  # float64 may only carry exact integers
            assert np.all(value == np.round(value)) and np.abs(value).max() < 2**53, name
        else:
            assert np.issubdtype(value.dtype, np.integer), f"{name} is {value.dtype}"
    assert stages["codes"].dtype == np.int8
    for name, table in frontend.constants().items():
        assert np.issubdtype(table.dtype, np.integer), f"constant {name} is {table.dtype}"


def test_constant_tables_do_not_come_from_libm(monkeypatch):
    # The tables must be the same bytes everywhere, so they are computed in decimal, never with
    # the platform's cos/log (whose last bits differ between x86 numpy and ARM glibc).
    def no_libm(*args, **kwargs):
        raise AssertionError("a constant table was computed with libm")

    for name in ("cos", "sin", "log", "log1p", "log2", "exp"):
        monkeypatch.setattr(np, name, no_libm)
        monkeypatch.setattr(math, name, no_libm)
    for cached in ("_dft_tables", "_mel_table"):  # built afresh, not taken from the cache
        monkeypatch.setattr(tables, cached, getattr(tables, cached).__wrapped__)
    t = tables.dft_tables(PARAMS, spectrum.COEF_BITS, spectrum.WEIGHT_BITS)
    thresholds = tables.code_thresholds.__wrapped__(YAMNET_QUANT.scale, YAMNET_QUANT.zero_point, 32)
    assert t["fold_cos"].shape == (200, len(t["columns"])) and len(thresholds) == 255


def test_constant_tables_match_float_computation():
    # Correctly rounded: libm's float64 values round to the same integers but for near-ties.
    t = tables.dft_tables(PARAMS, spectrum.COEF_BITS, spectrum.WEIGHT_BITS)
    w = reference.periodic_hann(PARAMS.window_samples)[200:].copy()
    w[0] /= 2
    angle = 2 * np.pi * np.outer(np.arange(200), t["columns"]) / PARAMS.fft_length
    for name, f in (("fold_cos", np.cos), ("fold_sin", np.sin)):
        approx = np.round(w[:, None] * f(angle) * 2**spectrum.COEF_BITS)
        assert np.abs(approx - t[name]).max() <= 1 and np.mean(approx != t[name]) < 1e-3
    mel = np.round(reference.mel_matrix(PARAMS)[t["bin_order"]] * 2**spectrum.WEIGHT_BITS)
    assert np.abs(mel - t["mel"]).max() <= 1
    np.testing.assert_array_equal(t["bin_order"], np.flatnonzero(reference.mel_matrix(PARAMS).any(axis=1)))


def test_test_audio_codes(frontend, quant):
    """yamnet_test_audio.bin (raw int16: no decoder or resampler in the way) through every path
    that makes codes: batch, frame by frame, streaming; and against the oracle."""
    audio = DATA / "models" / "yamnet_test_audio.bin"
    if not audio.exists():
        pytest.skip(NO_DATA)
    from edgekit.frontend.stream import StreamingFrontend

    pcm = np.fromfile(audio, dtype="<i2").astype(np.int16)  # 15600 samples: one patch
    codes = frontend.waveform_to_codes(pcm)
    frames = reference.frame(reference.pad_waveform(pcm, PARAMS), PARAMS.window_samples, PARAMS.hop_samples)
    one_by_one = np.stack([frontend.frames_to_codes(f[None])[0] for f in frames])
    np.testing.assert_array_equal(one_by_one, codes[0])
    stream = StreamingFrontend.fixed(quant, PARAMS)
    streamed = [p.features for i in range(0, len(pcm), 1234) for p in stream.push(pcm[i:i + 1234])] + \
        [p.features for p in stream.flush()]
    np.testing.assert_array_equal(np.stack(streamed), codes)
    _, within_one, worst = agreement(codes, quantise(oracle.waveform_to_patches(pcm, PARAMS), quant))
    assert within_one == 1.0 and worst <= 1


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


def _armv7l_ldexp(real):
    """numpy's ldexp as it resolves on armv7l (32-bit Pi OS), where a C long is 32 bits: only
    int32-or-narrower exponents find a loop; an int64 exponent raises the TypeError seen there."""

    def ldexp(x, e, *args, **kwargs):
        e = np.asarray(e)
        if e.dtype.kind in "iu" and e.dtype.itemsize > 4:
            raise TypeError(f"ufunc 'ldexp' not supported for the input types ({e.dtype} exponent, "
                            f"as on armv7l where a C long is 32 bits)")
        return real(x, e, *args, **kwargs)

    return ldexp


@pytest.mark.parametrize("exponent_dtype", [np.int8, np.int16, np.int32, np.int64, np.uint8])
def test_pow2_takes_every_integer_dtype_where_long_is_32_bits(monkeypatch, exponent_dtype):
    monkeypatch.setattr(np, "ldexp", _armv7l_ldexp(np.ldexp))
    e = np.arange(0, 60 if exponent_dtype != np.int8 else 40, dtype=exponent_dtype)
    got = spectrum.pow2(e)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, [2.0**int(k) for k in e])
    np.testing.assert_array_equal(spectrum.pow2(-e.astype(np.int64)), [2.0**-int(k) for k in e])
    with pytest.raises(TypeError):
        spectrum.pow2(np.array([1.5]))


def test_fixed_front_end_runs_where_long_is_32_bits(frontend, quant, monkeypatch):
    """The armv7l crash (issue 19), without emulation: the fixed path, batch and streaming (what
    ``Listener(frontend="fixed")`` runs), under armv7l's ldexp loop table gives the same codes."""
    from edgekit.frontend.stream import StreamingFrontend

    x = np.random.default_rng(19).integers(-20000, 20000, 16000 * 2).astype(np.int16)
    want = frontend.waveform_to_codes(x)
    monkeypatch.setattr(np, "ldexp", _armv7l_ldexp(np.ldexp))
    np.testing.assert_array_equal(frontend.waveform_to_codes(x), want)
    stream = StreamingFrontend.fixed(quant)
    patches = stream.push(x[:7000]) + stream.push(x[7000:]) + stream.flush()
    assert patches and all(p.features.dtype == np.int8 for p in patches)


def test_every_ldexp_goes_through_pow2():
    """A lint: an ``np.ldexp`` written elsewhere would bring the armv7l crash back."""
    root = Path(spectrum.__file__).resolve().parents[1]
    offenders = [f"{p.relative_to(root)}:{i}" for p in root.rglob("*.py")
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if "ldexp(" in line and not line.lstrip().startswith(("#", "numpy", "``"))
                 and p.name != "spectrum.py"]
    assert offenders == [], f"call spectrum.pow2 instead of np.ldexp: {offenders}"
