"""Regenerate edgekit/sounds/data/negatives.npz: generic negatives for custom sounds.

Only openly licensed audio. CC BY 4.0: the Speech Commands background noises and every other
LibriSpeech clip of the events/background/speech folder (the rest stays out so that benchmarks can
test false alarms on speech the bank never saw). With ``--cc0 DIR``, also the CC0 samples listed in
``scripts/sounds_bank_cc0.csv`` (Sonic Pi's ``etc/samples``, from freesound.org: drums, percussion,
electric blips and bells, bass, guitar, hums and drones, loops), read from DIR; the audio never
enters the repository, only the embeddings do. Run from the repository root:

    git --git-dir=<sonic-pi mirror> show HEAD:etc/samples/NAME.flac > DIR/NAME.flac   # each listed file
    EDGEKIT_TEST_DATA=../shared/data python scripts/make_sounds_bank.py [--cc0 DIR] [--out NPZ]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgekit.audio.files import read_audio  # noqa: E402
from edgekit.models.embedding import embedding_tensor  # noqa: E402
from edgekit.sounds.embed import Embedder  # noqa: E402

OPEN_SOURCES = {"speechcommands_background_noise", "resemblyzer_speech"}
HOP = 0.48
OPEN_WINDOWS = 400  # from the CC BY recordings (the bank as it was before the CC0 samples)
CC0_WINDOWS = 250  # from the CC0 samples: every file once, then second and third windows of the longer ones
CC0_PER_FILE = 3  # a 15 s loop must not outweigh a dozen one-shots
MAX_WINDOWS = OPEN_WINDOWS + CC0_WINDOWS
CC0_MANIFEST = Path(__file__).resolve().with_name("sounds_bank_cc0.csv")
SONIC_PI = ("Sonic Pi (https://github.com/sonic-pi-net/sonic-pi, etc/samples at commit "
            "c0002065a976b1355e7889f4aa96a1804e2b8119; its README.md places them under CC0)")


def bank_files(events: Path) -> list[tuple[str, str]]:
    """(relative path, licence) of the CC BY files the bank is made from, in a fixed order."""
    rows = list(csv.DictReader(open(events / "MANIFEST.csv", newline="")))
    noise = [r for r in rows if r["source"] == "speechcommands_background_noise"]
    speech = sorted((r for r in rows if r["source"] == "resemblyzer_speech"), key=lambda r: r["path"])[::2]
    chosen = noise + speech
    for r in chosen:
        assert r["source"] in OPEN_SOURCES and "NC" not in r["licence"], r
    return [(r["path"], r["licence"]) for r in chosen]


def cc0_files(manifest: Path = CC0_MANIFEST) -> list[dict]:
    """The CC0 samples' rows (file, kind, source, licence), sorted by file name."""
    rows = sorted(csv.DictReader(open(manifest, newline="")), key=lambda r: r["file"])
    for r in rows:
        assert r["licence"].startswith("CC0"), r
    return rows


def spread(counts: list[int], per_file: int, total: int) -> list[tuple[int, int]]:
    """(file, window) pairs: each file's windows evenly spaced, taken round by round (every file's
    first, then every file's second, ...) until ``total``; deterministic, no file left out unless
    there are more files than ``total``."""
    ranked = []
    for f, n in enumerate(counts):
        m = min(n, per_file)
        picks = np.unique(np.round(np.linspace(0, n - 1, m)).astype(int)) if m > 1 else np.array([n // 2])
        order = sorted(picks, key=lambda i: (abs(i - (n - 1) / 2), i))  # the middle first: the sound itself
        ranked += [(r, f, int(i)) for r, i in enumerate(order)]
    return [(f, i) for _, f, i in sorted(ranked)[:total]]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cc0", type=Path, help="folder holding the files listed in scripts/sounds_bank_cc0.csv")
    ap.add_argument("--cc0-skip", default="", help="comma list of the manifest's kinds to leave out")
    ap.add_argument("--out", type=Path, default=ROOT / "edgekit" / "sounds" / "data" / "negatives.npz",
                    help="where to write the bank (ATTRIBUTION.md goes beside it)")
    args = ap.parse_args(argv)
    cc0 = []
    if args.cc0:  # checked before any embedding: a wrong folder fails at once
        skip = {k for k in args.cc0_skip.split(",") if k}
        cc0 = [r for r in cc0_files() if r["kind"] not in skip]
        missing = [r["file"] for r in cc0 if not (args.cc0 / r["file"]).is_file()]
        if missing:
            sys.exit(f"--cc0 {args.cc0}: {len(missing)} of the {len(cc0)} listed files are missing (e.g. {missing[0]}); "
                     "copy them from Sonic Pi's etc/samples first (see this script's docstring)")
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
    keep = np.sort(rng.choice(len(emb), size=min(OPEN_WINDOWS, len(emb)), replace=False))
    chosen, kept_sources = [emb[keep]], [sources[i] for i in keep]
    if cc0:
        per_file = [embedder.embed(read_audio(args.cc0 / r["file"]), HOP).embeddings for r in cc0]
        picks = spread([len(e) for e in per_file], CC0_PER_FILE, CC0_WINDOWS)
        chosen.append(np.stack([per_file[f][i] for f, i in picks]))
        kept_sources += [cc0[f]["file"] for f, _ in picks]
    info = embedder.model.graph.tensors[embedding_tensor(embedder.model.graph)]
    scale, zp = info.scales[0], info.zero_points[0]  # the embedding's own int8 grid: no extra rounding
    codes = np.clip(np.round(np.concatenate(chosen) / scale) + zp, -128, 127).astype(np.int8)
    meta = {"model": embedder.path.name, "model_sha256": embedder.sha256, "hop_seconds": HOP, "scale": float(scale),
            "zero_point": int(zp), "sources": sorted(set(kept_sources)), "files": [f for f, _ in files]}
    if cc0:
        meta["cc0_files"] = [r["file"] for r in cc0]
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, codes=codes, meta=np.array(json.dumps(meta)))
    print(f"{out}: {len(codes)} windows ({len(codes) - len(keep)} CC0) from {len(files) + len(cc0)} files, "
          f"{out.stat().st_size} bytes")
    write_attribution(out.with_name("ATTRIBUTION.md"), len(codes), meta, dict(files), cc0)


def write_attribution(path: Path, windows: int, meta: dict, licences: dict[str, str], cc0: list[dict]) -> None:
    lines = [
        "# Shipped negatives: attribution", "",
        f"`negatives.npz` holds {windows} int8 YAMNet embeddings ({meta['model']}, {meta['hop_seconds']} s hop; no audio) "
        "computed by", f"`scripts/make_sounds_bank.py` from the recordings below, {'' if cc0 else 'all '}under the Creative Commons",
        "Attribution 4.0 licence (https://creativecommons.org/licenses/by/4.0/)"
        + (" or dedicated to the public domain under CC0 1.0" if cc0 else "") + ". Embeddings are derived",
        "material; they are redistributed under the same licence with this attribution.", "",
        "- Speech Commands background noises: P. Warden, \"Speech Commands: A Dataset for Limited-Vocabulary",
        "  Speech Recognition\", 2018, Google (CC BY 4.0).",
        "- LibriSpeech train-clean-100 utterances: V. Panayotov, G. Chen, D. Povey, S. Khudanpur, \"LibriSpeech: an",
        "  ASR corpus based on public domain audio books\", ICASSP 2015 (CC BY 4.0), via resemble-ai/Resemblyzer.",
    ]
    if cc0:
        lines += [f"- Samples shipped with {SONIC_PI}:", "  from freesound.org, or donated by Uwe Zahn (Arovane)"
                  " (CC0 1.0, https://creativecommons.org/publicdomain/zero/1.0/; no attribution is",
                  "  required, the originals are listed anyway)."]
    lines += ["", "Files (as named in the shared data set's events/MANIFEST.csv, with their licence):", ""]
    lines += [f"- {Path(f).name} ({licences[f]})" for f in meta["files"]]
    if cc0:
        lines += ["", "CC0 samples (Sonic Pi's file name, its kind, the original):", ""]
        lines += [f"- {r['file']} ({r['licence']}; {r['kind']}): {r['source']}" for r in cc0]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
