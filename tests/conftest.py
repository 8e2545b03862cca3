"""Shared fixtures: the real third-party models and recordings in ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    env = os.environ.get("EDGEKIT_TEST_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


DATA = data_dir()
MODELS = DATA / "models"
AUDIO = DATA / "audio"


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"test data {path} is absent (set EDGEKIT_TEST_DATA to the shared data folder)")
    return path


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return need(MODELS)


@pytest.fixture(scope="session")
def audio_dir() -> Path:
    return need(AUDIO)


def audio_files() -> list[Path]:
    return sorted(p for p in AUDIO.glob("*") if p.suffix in (".wav", ".ogg", ".flac")) if AUDIO.exists() else []


@pytest.fixture(scope="session")
def recordings() -> dict[str, np.ndarray]:
    """Every shared recording, read once as 16 kHz int16 mono (so every path sees the same samples)."""
    need(AUDIO)
    from edgekit.audio.files import read_audio

    return {p.name: read_audio(p) for p in audio_files()}


@pytest.fixture(scope="session")
def spectra_model(models_dir):
    from edgekit.models.model import load_model

    return load_model(need(models_dir / "yamnet_spectra_in.tflite"))


@pytest.fixture(scope="session")
def official_model(models_dir):
    from edgekit.proof import load_official

    return load_official(need(models_dir / "yamnet.tflite"))
