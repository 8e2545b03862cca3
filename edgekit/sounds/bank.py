"""The generic negatives that ship with edgekit: embeddings of openly licensed everyday sounds.

A head trained only against the user's room learns "not this room" rather than "not my sound";
a few hundred windows of other sounds (speech, running water, dishes, noise) teach it what a
sound that is *not* the doorbell looks like. Only the embeddings ship, computed by
``scripts/make_sounds_bank.py`` from CC BY 4.0 audio listed in ``data/ATTRIBUTION.md``.
They come from YAMNet's body, whose weights every YAMNet file here shares.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import BinaryIO

import numpy as np

BANK_FILE = "negatives.npz"


@dataclass(frozen=True)
class Bank:
    embeddings: np.ndarray  # [n, 1024] float32
    sources: tuple[str, ...]  # the files the windows came from (see ATTRIBUTION.md)
    meta: dict

    def __len__(self) -> int:
        return len(self.embeddings)


def load_bank() -> Bank | None:
    """The shipped bank, or None when the package was installed without its data."""
    try:
        with (resources.files("edgekit.sounds") / "data" / BANK_FILE).open("rb") as f:
            return read_bank(f)
    except (FileNotFoundError, OSError, KeyError, ValueError):
        return None


def read_bank(f: BinaryIO | str | Path) -> Bank:
    """A bank written by ``scripts/make_sounds_bank.py`` (the benchmarks compare candidates with it)."""
    with np.load(f, allow_pickle=False) as z:
        codes = np.asarray(z["codes"], np.int8)
        meta = json.loads(str(z["meta"]))
    emb = ((codes.astype(np.float32) - meta["zero_point"]) * np.float32(meta["scale"])).astype(np.float32)
    return Bank(emb, tuple(meta["sources"]), meta)
