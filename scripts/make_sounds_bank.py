"""Regenerate edgekit/sounds/data/negatives.npz: generic negatives for custom sounds.

Only openly licensed audio (CC BY 4.0): the Speech Commands background noises and every other
LibriSpeech clip of the events/background/speech folder (the rest stays out so that benchmarks can
test false alarms on speech the bank never saw). Run from the repository root:

    EDGEKIT_TEST_DATA=../shared/data python scripts/make_sounds_bank.py
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edgekit.audio.files import read_audio  # noqa: E402
from edgekit.sounds.embed import Embedder  # noqa: E402

OPEN_SOURCES = {"speechcommands_background_noise", "resemblyzer_speech"}
HOP = 0.48
MAX_WINDOWS = 400


def bank_files(events: Path) -> list[tuple[str, str]]:
    """(relative path, licence) of the files the bank is made from, in a fixed order."""
    rows = list(csv.DictReader(open(events / "MANIFEST.csv", newline="")))
    noise = [r for r in rows if r["source"] == "speechcommands_background_noise"]
    speech = sorted((r for r in rows if r["source"] == "resemblyzer_speech"), key=lambda r: r["path"])[::2]
    chosen = noise + speech
    for r in chosen:
        assert r["source"] in OPEN_SOURCES and "NC" not in r["licence"], r
    return [(r["path"], r["licence"]) for r in chosen]


def main() -> None:
    data = Path(os.environ.get("EDGEKIT_TEST_DATA", "../shared/data"))
    events = data / "events"
    embedder = Embedder(data / "models" / "yamnet.tflite")
    files = bank_files(events)
    rng = np.random.default_rng(0)
    embs, sources = [], []
    for rel, _ in files:
        e = embedder.embed(read_audio(events / rel), HOP).embeddings
        embs.append(e)
        sources += [rel] * len(e)
    emb = np.concatenate(embs)
    keep = np.sort(rng.choice(len(emb), size=min(MAX_WINDOWS, len(emb)), replace=False))
    scale, zp = embedder._emb["quantization"]
    codes = np.clip(np.round(emb[keep] / scale) + zp, -128, 127).astype(np.int8)
    meta = {"model": embedder.path.name, "model_sha256": embedder.sha256, "hop_seconds": HOP, "scale": float(scale),
            "zero_point": int(zp), "sources": sorted({sources[i] for i in keep}), "files": [f for f, _ in files]}
    out = Path(__file__).resolve().parents[1] / "edgekit" / "sounds" / "data" / "negatives.npz"
    np.savez_compressed(out, codes=codes, meta=np.array(json.dumps(meta)))
    print(f"{out}: {len(codes)} windows from {len(files)} files, {out.stat().st_size} bytes")


if __name__ == "__main__":
    main()
