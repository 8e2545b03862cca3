#!/usr/bin/env python3
"""Where to draw the speech-privacy line (a benchmark, not a test).

    .venv/bin/python benchmarks/speech_privacy.py [--data ../shared/data] [--json PATH]

Each clip of ../shared/data/events goes through the daemon's path (yamnet_spectra_in, fixed
front end, hop 0.48 s, the volume gate at -70 dBFS); its score is the highest of YAMNet's speech
classes (edgekit.daemon.privacy.SPEECH_LABELS) over its windows, as a clip's is when the daemon
decides. Per threshold: the share of speech clips caught (background/speech: LibriSpeech and
librosa readings), of other backgrounds withheld (music, street, rain, appliances, ...; children
playing shown apart, as it has shouting children in it) and of target sound clips withheld
(ESC-50 events: what clips are for). The right threshold catches nearly all speech and withholds
few events.
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
from edgekit.daemon.privacy import SPEECH_THRESHOLD, speech_indices  # noqa: E402
from edgekit.listen import Listener  # noqa: E402
from edgekit.models.model import load_model  # noqa: E402
from edgekit.params import FeatureParams  # noqa: E402

THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)


def mixed(speech: Path, noise: Path, snr_db: float) -> np.ndarray:
    """The speech's first 5 s under a background, the speech ``snr_db`` above it (RMS)."""
    s = read_audio(speech)[: 5 * 16000].astype(np.float64)
    n = np.resize(read_audio(noise).astype(np.float64), len(s))
    rms = lambda x: np.sqrt(np.mean(x ** 2)) + 1e-9  # noqa: E731
    s *= rms(n) / rms(s) * 10 ** (snr_db / 20)
    return np.clip(s + n, -32768, 32767).astype(np.int16)


def clip_scores(model, idx, files) -> list[float]:
    out = []
    for f in files:
        li = Listener(model, "fixed", -70.0)
        res = li.push(f if isinstance(f, np.ndarray) else read_audio(f)) + li.flush()
        best = max((float(r.scores.reshape(-1)[idx].max()) for r in res if r.scores is not None), default=0.0)
        out.append(best)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--json")
    args = ap.parse_args()
    data = Path(args.data)
    model = load_model(data / "models" / "yamnet_spectra_in.tflite", "cpu", params=FeatureParams().with_hop(0.48))
    idx = np.asarray(speech_indices(model.labels))
    ev = data / "events"
    groups = {
        "speech": sorted((ev / "background" / "speech").glob("*.flac")),
        "children_playing": sorted((ev / "background" / "children_playing").glob("*.flac")),
        "other background": sorted(p for d in (ev / "background").iterdir() if d.name not in ("speech", "children_playing")
                                   for p in d.glob("*.flac")),
        "target events": sorted((ev / "target").glob("*/*.flac")),
    }
    noises = [p for p in groups["other background"] if p.parent.name not in ("music", "street_music")]
    for snr in (0, -10):  # a voice under the room's noise, as loud as it and 10 dB below it
        groups[f"speech at {snr} dB SNR"] = [mixed(sp, noises[(7 * i) % len(noises)], snr)
                                             for i, sp in enumerate(groups["speech"])]
    scores = {g: clip_scores(model, idx, files) for g, files in groups.items()}
    rows = {g: {str(t): round(float(np.mean(np.array(s) >= t)), 3) for t in THRESHOLDS} for g, s in scores.items()}
    print(f"share of clips at or above each speech threshold (in use: {SPEECH_THRESHOLD}):")
    print(f"  {'group':18} {'clips':>5}  " + "  ".join(f"{t:>5}" for t in THRESHOLDS))
    for g, files in groups.items():
        print(f"  {g:18} {len(files):5}  " + "  ".join(f"{rows[g][str(t)]:5.3f}" for t in THRESHOLDS))
    per_target: dict = {}
    for f, s in zip(groups["target events"], scores["target events"]):
        per_target.setdefault(f.parent.name, []).append(s >= SPEECH_THRESHOLD)
    worst = sorted(((float(np.mean(v)), k) for k, v in per_target.items()), reverse=True)[:6]
    print(f"  target classes most often withheld at {SPEECH_THRESHOLD}: "
          + ", ".join(f"{k} {v:.2f}" for v, k in worst))
    if args.json:
        Path(args.json).write_text(json.dumps({"threshold": SPEECH_THRESHOLD, "share_at_or_above": rows,
                                               "clips": {g: len(f) for g, f in groups.items()},
                                               "targets_withheld": {k: round(float(np.mean(v)), 3)
                                                                    for k, v in per_target.items()}}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
