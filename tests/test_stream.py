import numpy as np
import pytest

from edgekit.frontend import reference as R
from edgekit.frontend.stream import StreamingFrontend
from edgekit.params import FeatureParams


def feed_randomly(stream, x, seed=0):
    rng = np.random.default_rng(seed)
    out, i = [], 0
    while i < len(x):
        n = int(rng.integers(1, 4000))
        out += stream.push(x[i:i + n])
        i += n
    return out + stream.flush()


@pytest.mark.parametrize("hop", [0.48, 0.1, 0.01, 2.0])
def test_float_stream_equals_batch_exactly(recordings, hop):
    params = FeatureParams().with_hop(hop)
    x = recordings["speech.wav"]
    patches = feed_randomly(StreamingFrontend.float(params), x)
    batch = R.waveform_to_patches(x, params)
    assert len(patches) == len(batch)
    for k, p in enumerate(patches):
        assert p.index == k and p.start_sample == k * params.patch_hop_samples
        np.testing.assert_array_equal(p.features, batch[k])


def test_each_frame_is_computed_once():
    calls = []

    def featurise(frames):
        calls.append(len(frames))
        return R.log_mel_frames(frames)

    s = StreamingFrontend(featurise, FeatureParams().with_hop(0.1))
    x = np.zeros(16000 * 3, np.int16)
    for i in range(0, len(x), 1000):
        s.push(x[i:i + 1000])
    assert sum(calls) == 1 + (len(x) - 400) // 160


def test_stream_rejects_float_samples():
    with pytest.raises(TypeError, match="int16"):
        StreamingFrontend.float().push(np.zeros(10, np.float32))


def test_short_stream_flushes_one_padded_patch():
    s = StreamingFrontend.float()
    assert s.push(np.ones(500, np.int16)) == []
    out = s.flush()
    assert len(out) == 1
    np.testing.assert_array_equal(out[0].features, R.waveform_to_patches(np.ones(500, np.int16))[0])


@pytest.mark.parametrize("hop", [0.48, 0.1])
def test_fixed_stream_equals_batch_exactly(recordings, spectra_model, hop):
    from edgekit.frontend.fixed import FixedFrontend

    params = FeatureParams().with_hop(hop)
    x = recordings["dog.wav"]
    patches = feed_randomly(StreamingFrontend.fixed(spectra_model.input_quant, params), x, seed=3)
    batch = FixedFrontend(spectra_model.input_quant, params).waveform_to_codes(x)
    assert len(patches) == len(batch)
    for k, p in enumerate(patches):
        assert p.features.dtype == np.int8
        np.testing.assert_array_equal(p.features, batch[k])


def test_waveform_windows_match_the_batch_windows(recordings):
    from edgekit.frontend.stream import StreamingWindows

    params = FeatureParams().with_hop(0.1)
    x = recordings["speech.wav"]
    out = feed_randomly(StreamingWindows(params), x, seed=5)
    batch = R.frame(R.pad_waveform(x, params), params.patch_samples, params.patch_hop_samples)
    assert len(out) == len(batch)
    for k, p in enumerate(out):
        np.testing.assert_array_equal(p.features, batch[k])


def test_dbfs_levels():
    import math

    from edgekit.listen import dbfs

    t = np.arange(16000) / 16000
    sine = np.round(32767 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    assert dbfs(sine) == pytest.approx(-3.01, abs=0.01)  # a full-scale sine's RMS is 1/sqrt(2)
    assert dbfs((sine // 100).astype(np.int16)) == pytest.approx(-43.0, abs=0.1)
    assert dbfs(np.zeros(100, np.int16)) == -math.inf and dbfs(np.zeros(0, np.int16)) == -math.inf
