import pytest

from edgekit.errors import ConfigError
from edgekit.params import FeatureParams


def test_yamnet_sizes_derive_from_seconds():
    p = FeatureParams()
    assert (p.window_samples, p.hop_samples, p.spectrum_bins) == (400, 160, 257)
    assert (p.patch_frames, p.patch_hop_frames) == (96, 48)
    # 0.96 s of frames + one window - one hop: the input length of yamnet.tflite.
    assert p.patch_samples == 15600
    assert p.patch_hop_samples == 7680


def test_params_are_frozen():
    with pytest.raises(Exception):
        FeatureParams().mel_bands = 32


@pytest.mark.parametrize("hop,frames", [(0.1, 10), (0.48, 48), (0.01, 1), (0.96, 96)])
def test_with_hop_takes_whole_frames(hop, frames):
    assert FeatureParams().with_hop(hop).patch_hop_frames == frames


@pytest.mark.parametrize("hop", [0.0, -0.1, 0.105, 0.003])
def test_with_hop_rejects_fractions_of_a_frame(hop):
    with pytest.raises(ConfigError, match="multiple of 0.01"):
        FeatureParams().with_hop(hop)
