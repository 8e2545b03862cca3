"""YAMNet's feature parameters, in one frozen object.

Defaults follow ``research/audioset/yamnet/params.py``. Sizes in samples/frames are derived
properties so they can never disagree with the seconds they come from.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgekit.errors import ConfigError


@dataclass(frozen=True)
class FeatureParams:
    sample_rate_hz: int = 16000
    stft_window_seconds: float = 0.025
    stft_hop_seconds: float = 0.010
    fft_length: int = 512
    mel_bands: int = 64
    mel_min_hz: float = 125.0
    mel_max_hz: float = 7500.0
    log_offset: float = 0.001
    patch_window_seconds: float = 0.96
    patch_hop_seconds: float = 0.48

    def __post_init__(self) -> None:
        if self.window_samples > self.fft_length:
            raise ConfigError(
                f"stft window of {self.window_samples} samples exceeds fft_length {self.fft_length}"
            )
        if not 0 <= self.mel_min_hz < self.mel_max_hz <= self.sample_rate_hz / 2:
            raise ConfigError("mel band edges must satisfy 0 <= mel_min_hz < mel_max_hz <= Nyquist")
        if self.patch_hop_frames < 1:
            raise ConfigError(
                f"patch hop {self.patch_hop_seconds} s is shorter than one {self.stft_hop_seconds} s frame"
            )

    @property
    def window_samples(self) -> int:  # 400
        return round(self.stft_window_seconds * self.sample_rate_hz)

    @property
    def hop_samples(self) -> int:  # 160
        return round(self.stft_hop_seconds * self.sample_rate_hz)

    @property
    def spectrum_bins(self) -> int:  # 257
        return self.fft_length // 2 + 1

    @property
    def patch_frames(self) -> int:  # 96
        return round(self.patch_window_seconds / self.stft_hop_seconds)

    @property
    def patch_hop_frames(self) -> int:  # 48
        return round(self.patch_hop_seconds / self.stft_hop_seconds)

    @property
    def patch_samples(self) -> int:
        """Samples that make one patch: 0.96 + 0.025 - 0.010 s = 15600 at 16 kHz."""
        return (self.patch_frames - 1) * self.hop_samples + self.window_samples

    @property
    def patch_hop_samples(self) -> int:  # 7680
        return self.patch_hop_frames * self.hop_samples

    def with_hop(self, hop_seconds: float) -> "FeatureParams":
        """The same features with another patch hop, which must be a whole number of frames."""
        frames = hop_seconds / self.stft_hop_seconds
        if hop_seconds <= 0 or abs(frames - round(frames)) > 1e-6:
            raise ConfigError(
                f"hop {hop_seconds} s must be a positive multiple of {self.stft_hop_seconds} s "
                f"(e.g. 0.1 or 0.48)"
            )
        from dataclasses import replace

        return replace(self, patch_hop_seconds=round(frames) * self.stft_hop_seconds)
