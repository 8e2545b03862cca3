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
from edgekit.models.embedding import embedding_tensor  # noqa: E402
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
    info = embedder.model.graph.tensors[embedding_tensor(embedder.model.graph)]
    scale, zp = info.scales[0], info.zero_points[0]  # the embedding's own int8 grid: no extra rounding
    codes = np.clip(np.round(emb[keep] / scale) + zp, -128, 127).astype(np.int8)
    meta = {"model": embedder.path.name, "model_sha256": embedder.sha256, "hop_seconds": HOP, "scale": float(scale),
            "zero_point": int(zp), "sources": sorted({sources[i] for i in keep}), "files": [f for f, _ in files]}
    out = Path(__file__).resolve().parents[1] / "edgekit" / "sounds" / "data" / "negatives.npz"
    np.savez_compressed(out, codes=codes, meta=np.array(json.dumps(meta)))
    print(f"{out}: {len(codes)} windows from {len(files)} files, {out.stat().st_size} bytes")
    write_attribution(out.with_name("ATTRIBUTION.md"), len(codes), meta, dict(files))


def write_attribution(path: Path, windows: int, meta: dict, licences: dict[str, str]) -> None:
    lines = [
        "# Shipped negatives: attribution", "",
        f"`negatives.npz` holds {windows} int8 YAMNet embeddings ({meta['model']}, {meta['hop_seconds']} s hop; no audio) "
        "computed by", "`scripts/make_sounds_bank.py` from the recordings below, all under the Creative Commons",
        "Attribution 4.0 licence (https://creativecommons.org/licenses/by/4.0/). Embeddings are derived",
        "material; they are redistributed under the same licence with this attribution.", "",
        "- Speech Commands background noises: P. Warden, \"Speech Commands: A Dataset for Limited-Vocabulary",
        "  Speech Recognition\", 2018, Google (CC BY 4.0).",
        "- LibriSpeech train-clean-100 utterances: V. Panayotov, G. Chen, D. Povey, S. Khudanpur, \"LibriSpeech: an",
        "  ASR corpus based on public domain audio books\", ICASSP 2015 (CC BY 4.0), via resemble-ai/Resemblyzer.", "",
        "Files (as named in the shared data set's events/MANIFEST.csv, with their licence):", "",
    ]
    lines += [f"- {Path(f).name} ({licences[f]})" for f in meta["files"]]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
