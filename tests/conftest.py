"""Shared fixtures: the real third-party models and recordings in ../shared/data."""

from __future__ import annotations

import os
import shutil
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


def in_ci() -> bool:
    """CI sets CI=true: there a missing real part (data, PulseAudio, Mosquitto) is a broken set-up."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def absent(reason: str):
    """Skip a test whose real part is missing here, or fail it under CI, where a run that passes by
    skipping would prove nothing."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing real part fails the run instead of skipping)", pytrace=False)
    pytest.skip(reason)


def _clear_stale_jack_db() -> None:
    """PortAudio's start-up goes through libjack, which locks a database in /dev/shm/jack_db-UID.
    A process killed inside that lock (a test kills daemons with -9) leaves it held for good, and
    every later ``import sounddevice`` on the machine then hangs. When no live process has a file of
    it open or mapped, it is stale: remove it (libjack makes a fresh one)."""
    db = Path(f"/dev/shm/jack_db-{os.getuid()}")
    if not db.is_dir():
        return
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if any(str(db) in os.readlink(fd) for fd in (proc / "fd").iterdir()):
                return
            if str(db) in (proc / "maps").read_text():
                return
        except OSError:  # gone, or not ours to read
            continue
    shutil.rmtree(db, ignore_errors=True)


def pytest_sessionstart(session):
    _clear_stale_jack_db()
    # Under CI, say at once what is missing rather than in a hundred failed tests.
    if not in_ci():
        return
    from mosquitto import find_binary
    from pulse import pulse_available

    missing = [why for why in (
        None if DATA.exists() else f"the shared test data at {DATA} (set EDGEKIT_TEST_DATA to it)",
        pulse_available(),
        None if find_binary("mosquitto") else "the mosquitto broker (apt-get install mosquitto)",
        None if shutil.which("chromium") and shutil.which("chromedriver")
        else "headless Chromium for the status page test (apt-get install chromium chromium-driver)",
    ) if why]
    if missing:
        raise pytest.UsageError("CI=true, and real parts the tests need are missing: " + "; ".join(missing)
                                + ". Run scripts/setup as root (or unset CI to let those tests skip)")


def need(path: Path) -> Path:
    if not path.exists():
        absent(f"test data {path} is absent (set EDGEKIT_TEST_DATA to the shared data folder)")
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
