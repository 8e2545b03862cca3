"""What the benchmark feeds a model: a real recording's window or patch, a real photo, or a synthetic
stand-in that says it is one (only where neither the data folder nor the model's folder has one)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if TYPE_CHECKING:
    from edgekit.bench.runner import Settings

from edgekit.errors import ConfigError, ExtraNotInstalledError
from edgekit.frontend import reference
from edgekit.models.model import IMAGE, WAVEFORM, Model
from edgekit.quant import InputQuant, quantise

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus")


def default_data_dir(env: dict | None = None) -> Path | None:
    """The shared test data (audio/, models/) named by $EDGEKIT_TEST_DATA; None when unset.

    Only the environment or ``--data`` name it: an installed package has no checkout, and no
    data folder, beside it. Without one the bench measures synthetic inputs and says so.
    """
    value = (os.environ if env is None else env).get("EDGEKIT_TEST_DATA")
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise ConfigError(f"EDGEKIT_TEST_DATA={value}: no such folder; point it at the shared test data "
                          "(with audio/ and models/), or unset it to measure synthetic inputs")
    return path


def find_sample(name: str, sub: str, settings: Settings, model_path: Path | None) -> Path | None:
    """A sample input file: in ``--data``'s ``sub``/ folder when given, else beside the model (its
    own folder, or ``../sub/`` as in the shared data's models/ and audio/ layout)."""
    if settings.data_dir:
        roots = [settings.data_dir / sub]
    elif model_path is not None:
        here = Path(model_path).parent  # not resolved: a link's folder is where it was put
        roots = [here, here.parent / sub]
    else:
        roots = []
    return next((r / name for r in roots if (r / name).is_file()), None)


# --- inputs ----------------------------------------------------------------------------------


@dataclass
class Input:
    value: np.ndarray  # exactly what set_tensor gets
    source: str
    synthetic: bool

    def describe(self) -> dict:
        v = self.value.astype(np.float64)
        return {
            "source": self.source,
            "synthetic": self.synthetic,
            "shape": list(self.value.shape),
            "dtype": str(self.value.dtype),
            "nonzero_fraction": round(float(np.count_nonzero(self.value)) / self.value.size, 4),
            "mean": round(float(v.mean()), 4),
            "std": round(float(v.std()), 4),
        }


def synthetic_audio(seconds: float = 4.0, rate: int = 16000, seed: int = 0) -> np.ndarray:
    """A log chirp 150 Hz -> 6 kHz every second plus noise: energy in every mel band, never zeros."""
    t = np.arange(int(seconds * rate)) / rate
    f0, f1 = 150.0, 6000.0
    k = np.log(f1 / f0)
    phase = 2 * np.pi * f0 * (np.exp(k * (t % 1.0)) - 1) / k
    noise = np.random.default_rng(seed).standard_normal(len(t))
    x = 0.3 * np.sin(phase) + 0.03 * noise
    return np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)


def synthetic_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth colour fields, a disc and noise: edges and texture, as a photo has."""
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    r = 0.5 + 0.5 * np.sin(6 * xx + 1)
    g = yy
    b = 0.5 + 0.5 * np.cos(9 * (xx + yy))
    img = np.stack([r, g, b], axis=-1)
    disc = (xx - 0.5) ** 2 + (yy - 0.45) ** 2 < 0.04
    img[disc] = (0.9, 0.8, 0.2)
    img += 0.05 * np.random.default_rng(seed).standard_normal(img.shape)
    return np.clip(img * 255, 0, 255).astype(np.uint8)


def load_image(path: Path, h: int, w: int) -> tuple[np.ndarray, str]:
    """A picture as [h, w, 3] uint8 RGB, resized bilinearly (Pillow, from the bench extra)."""
    try:
        from PIL import Image
    except ImportError:
        raise ExtraNotInstalledError(f"{path.name}: reading a picture needs Pillow; install the bench extra: "
                                     "pip install 'edgekit[bench]'") from None
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").resize((w, h), Image.BILINEAR)), "Pillow bilinear"


def load_audio(settings: Settings, model_path: Path | None = None) -> tuple[np.ndarray, str, bool]:
    """int16 16 kHz samples, where they came from, and whether they are synthetic."""
    from edgekit.audio.files import read_audio

    if settings.input is not None and settings.input.suffix.lower() in AUDIO_SUFFIXES:
        return read_audio(settings.input), settings.input.name, False
    speech = find_sample("speech.wav", "audio", settings, model_path)
    if speech is not None:
        return read_audio(speech), speech.name, False
    return synthetic_audio(), "synthetic log chirp 150 Hz-6 kHz + noise (speech.wav absent)", True


def make_input(model: Model, settings: Settings) -> Input:
    detail = model.interpreter.get_input_details()[0]
    shape, dtype = tuple(detail["shape"]), detail["dtype"]
    p = model.params
    if model.kind == IMAGE:
        _, h, w, _ = shape
        picture = None
        if settings.input is not None and settings.input.suffix.lower() not in AUDIO_SUFFIXES:
            picture = settings.input
        else:
            picture = find_sample("grace_hopper.bmp", "models", settings, model.path)
        if picture is not None:
            pixels, how = load_image(picture, h, w)
            source, synthetic = f"{picture.name} resized to {h}x{w} ({how})", False
        else:
            pixels = synthetic_image(h, w)
            source, synthetic = f"synthetic {h}x{w} colour fields + noise (grace_hopper.bmp absent)", True
        if dtype == np.uint8:
            value = pixels
        elif dtype == np.int8:
            value = (pixels.astype(np.int16) - 128).astype(np.int8)
        else:
            value = (pixels.astype(np.float32) / 127.5 - 1.0).astype(np.float32)
        return Input(value.reshape(shape), source, synthetic)

    pcm, name, synthetic = load_audio(settings, model.path)
    if model.kind == WAVEFORM:
        padded = reference.pad_waveform(pcm, p)
        windows = reference.frame(padded, p.patch_samples, p.patch_hop_samples)
        rms = np.sqrt((windows.astype(np.float64) ** 2).mean(axis=1))
        i = int(rms.argmax())  # the loudest window: speech, not the silence around it
        start = i * p.patch_hop_samples / p.sample_rate_hz
        value = (windows[i].astype(np.float32) / 32768.0).reshape(shape)
        window_s = p.patch_samples / p.sample_rate_hz
        return Input(value, f"{name}, {window_s:.3f} s window at {start:.2f} s", synthetic)

    patches = reference.waveform_to_patches(pcm, p)
    i = int(patches.mean(axis=(1, 2)).argmax())
    start = i * p.patch_hop_samples / p.sample_rate_hz
    end = start + p.patch_samples / p.sample_rate_hz
    source = f"{name}, log-mel patch {i} ({start:.2f}-{end:.2f} s), float front end"
    patch = patches[i]
    if dtype == np.int8:
        scale, zp = detail["quantization"]
        value = quantise(patch, InputQuant(float(scale), int(zp)))
    else:
        value = patch.astype(np.float32)
    return Input(value.reshape(shape), source, synthetic)


# --- timing ----------------------------------------------------------------------------------
