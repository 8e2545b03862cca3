#!/usr/bin/env python3
"""Per-clip agreement of edgekit with Google's yamnet.tflite, for the record.

    .venv/bin/python benchmarks/proof.py [--data ../shared/data] [--json PATH]

Prints, for each shared recording: the log-mel difference against the official graph's own
tensor; front end isolated (official log-mel vs edgekit's float and fixed patches through Coral's
yamnet_spectra_in body): top-1 agreement and mean |Δscore|; and end to end (yamnet.tflite vs
edgekit float front end + Coral body).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edgekit.audio.files import read_audio  # noqa: E402
from edgekit.frontend import reference  # noqa: E402
from edgekit.listen import listen_pcm  # noqa: E402
from edgekit.models.model import load_model  # noqa: E402
from edgekit.proof import compare, load_official, official_logmel  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--json", help="write the figures here too")
    args = ap.parse_args()
    data = Path(args.data)
    official = load_official(data / "models" / "yamnet.tflite")
    body = load_model(data / "models" / "yamnet_spectra_in.tflite")
    rows, totals = [], np.zeros(4)
    for clip in sorted(p for p in (data / "audio").iterdir() if p.suffix in (".wav", ".ogg", ".flac")):
        pcm = read_audio(clip)
        off_feats, off_scores = official_logmel(official, pcm)
        ours = reference.waveform_to_patches(pcm)
        theirs = np.stack([body.run(p) for p in off_feats])
        # edgekit's side goes through the one path the daemon runs.
        s_float = np.stack([w.scores for w in listen_pcm(body, pcm, frontend="float")])
        s_fixed = np.stack([w.scores for w in listen_pcm(body, pcm, frontend="fixed")])
        a_float, d_float = compare(theirs, s_float)
        a_fixed, d_fixed = compare(theirs, s_fixed)
        a_e2e, d_e2e = compare(off_scores, s_float)
        lm = np.abs(off_feats - ours)
        n = len(ours)
        totals += (n, a_float, a_fixed, a_e2e)
        rows.append({"clip": clip.name, "windows": n, "logmel_max": float(lm.max()), "logmel_mean": float(lm.mean()),
                     "iso_float_top1": a_float, "iso_float_dscore": d_float,
                     "iso_fixed_top1": a_fixed, "iso_fixed_dscore": d_fixed,
                     "e2e_top1": a_e2e, "e2e_dscore": d_e2e})
    print(f"{'clip':<18}{'win':>4} {'logmel max':>11} {'mean':>9} | {'float top1':>10} {'|Δ|':>8} | "
          f"{'fixed top1':>10} {'|Δ|':>8} | {'e2e top1':>8} {'|Δ|':>8}")
    for r in rows:
        print(f"{r['clip']:<18}{r['windows']:>4} {r['logmel_max']:>11.2e} {r['logmel_mean']:>9.1e} | "
              f"{r['iso_float_top1']:>7}/{r['windows']:<2} {r['iso_float_dscore']:>8.5f} | "
              f"{r['iso_fixed_top1']:>7}/{r['windows']:<2} {r['iso_fixed_dscore']:>8.5f} | "
              f"{r['e2e_top1']:>5}/{r['windows']:<2} {r['e2e_dscore']:>8.5f}")
    n, f, x, e = totals
    print(f"total {int(n)} windows: isolated float {f / n:.1%}, isolated fixed {x / n:.1%}, end to end {e / n:.1%}")
    if args.json:
        Path(args.json).write_text(json.dumps({"clips": rows, "windows": int(n), "iso_float": f / n,
                                               "iso_fixed": x / n, "e2e": e / n}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
