"""Benchmark-side swap of the shipped negatives: ``--bank NPZ`` runs a benchmark with a candidate
bank built by ``scripts/make_sounds_bank.py --out NPZ`` (no runtime knob: users get the shipped one)."""

from __future__ import annotations

from pathlib import Path

import edgekit.sounds.train as train
from edgekit.sounds.bank import Bank, load_bank, read_bank


def use_bank(path: str | Path | None) -> Bank | None:
    """The bank at ``path`` (also what ``learn`` loads from now on), or the shipped one when None."""
    if path is None:
        return load_bank()
    bank = read_bank(Path(path))
    train.load_bank = lambda: bank
    return bank
