"""Calibration data for post-training quantisation, in each model's input units.

Audio models: log-mel patches of real recordings through edgekit's float front end (the same
features the model sees at run time), at a 0.24 s hop so short folders still give enough
patches. Image models: random crops of real pictures scaled to [-1, 1] (MobileNet's input
range, which int8 maps to pixel - 128), or uniform noise when no folder is given.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from edgekit.errors import AudioFileError, ConfigError, EdgekitWarning
from edgekit.params import FeatureParams

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff")
IMAGE_SUFFIXES = (".bmp", ".png", ".jpg", ".jpeg", ".gif")
CALIBRATION_HOP_S = 0.24


def _files(folder: Path, suffixes) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


def _pick(samples: np.ndarray, n: int, seed: int) -> np.ndarray:
    """At most ``n`` samples, spread over the whole set (in order, so runs are repeatable)."""
    if len(samples) <= n:
        return samples
    keep = np.sort(np.random.default_rng(seed).choice(len(samples), n, replace=False))
    return samples[keep]


def audio_patches(folder: Path, n: int = 200, seed: int = 0,
                  params: FeatureParams = FeatureParams()) -> np.ndarray:
    """[≤ n, 96, 64] float32 log-mel patches from every recording under ``folder``."""
    from edgekit.audio.files import read_audio
    from edgekit.frontend.reference import waveform_to_patches

    files = _files(folder, AUDIO_SUFFIXES)
    hop = params.with_hop(CALIBRATION_HOP_S)
    patches = []
    for f in files:
        try:
            patches.append(waveform_to_patches(read_audio(f), hop))
        except AudioFileError as exc:
            warnings.warn(f"calibration skips {exc}", EdgekitWarning, stacklevel=2)
    if not patches:
        raise ConfigError(f"--representative {folder}: no readable recordings "
                          f"({', '.join(AUDIO_SUFFIXES)}) in it")
    return _pick(np.concatenate(patches), n, seed)


def synthetic_audio_patches(n: int = 200, seed: int = 0,
                            params: FeatureParams = FeatureParams()) -> np.ndarray:
    """Noise and tones at levels from -80 to -6 dBFS: plausible log-mel ranges, no meaning."""
    from edgekit.frontend.reference import waveform_to_patches

    rng = np.random.default_rng(seed)
    t = np.arange(params.patch_samples) / params.sample_rate_hz
    out = []
    for _ in range(n):
        x = rng.standard_normal(params.patch_samples) * 10 ** rng.uniform(-4, -0.3)
        for f in rng.uniform(100, 7000, rng.integers(0, 4)):
            x += np.sin(2 * np.pi * f * t) * 10 ** rng.uniform(-3, -0.5)
        out.append(waveform_to_patches(np.clip(x, -1, 1), params)[0])
    return np.stack(out)


def image_crops(folder: Path, size: int, n: int = 200, seed: int = 0) -> np.ndarray:
    """[n, size, size, 3] float32 in [-1, 1]: random crops (half to all of the short side),
    flipped at random, resized bilinearly."""
    from edgekit.build import require_tensorflow

    tf, _ = require_tensorflow()
    images = []
    for f in _files(folder, IMAGE_SUFFIXES):
        try:
            img = tf.io.decode_image(f.read_bytes(), channels=3, expand_animations=False)
        except (tf.errors.InvalidArgumentError, ValueError) as exc:
            warnings.warn(f"calibration skips {f}: {str(exc).splitlines()[0]}", EdgekitWarning, stacklevel=2)
            continue
        images.append(img.numpy())
    if not images:
        raise ConfigError(f"--representative {folder}: no readable pictures ({', '.join(IMAGE_SUFFIXES)}) in it")
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), np.float32)
    for i in range(n):
        img = images[i % len(images)]
        h, w = img.shape[:2]
        side = int(min(h, w) * rng.uniform(0.5, 1.0))
        y, x = rng.integers(0, h - side + 1), rng.integers(0, w - side + 1)
        crop = img[y:y + side, x:x + side]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        resized = tf.image.resize(crop[None].astype(np.float32), (size, size), antialias=True)
        out[i] = np.clip(resized.numpy()[0] / 127.5 - 1.0, -1.0, 1.0)
    return out


def random_images(size: int, n: int = 200, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 3)).astype(np.float32)


def representative_for(arch, folder: Path | None, n: int = 200, seed: int = 0) -> np.ndarray:
    if arch.audio:
        if folder is None:
            warnings.warn("no --representative folder: calibrating on synthetic noise and tones; "
                          "pass a folder of real recordings for faithful int8 ranges",
                          EdgekitWarning, stacklevel=2)
            return synthetic_audio_patches(n, seed)
        return audio_patches(folder, n, seed)
    size = arch.input_shape[0]
    if folder is None:
        # Fine for timing a random-weight model; with real weights, noise ranges ruin a deep net
        # (measured: MobileNet v2 transplanted from the zoo's uint8 file kept top-1 on 10 of 200
        # crops, against 173 when calibrated on crops of one real photo).
        warnings.warn("no --representative folder: calibrating on uniform noise; pass a folder of "
                      "real pictures for faithful int8 ranges", EdgekitWarning, stacklevel=2)
        return random_images(size, n, seed)
    return image_crops(folder, size, n, seed)
