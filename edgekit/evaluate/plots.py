"""PNGs of an evaluation: timelines (annotations, detections, the rule's score) and threshold curves."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from edgekit.errors import EvaluationError
from .calibrate import rule_track
from .metrics import rule_metrics
from .replay import detections, replay

CURVE_ENTERS = np.round(np.arange(0.05, 1.0, 0.05), 2)


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise EvaluationError("--plot needs matplotlib: pip install 'edgekit[bench]'") from None
    return plt


def curve(ev, rule, labels) -> list[tuple[float, float | None, float | None]]:
    """(enter, recall, false alarms per hour) for the rule at each threshold, release kept in ratio."""
    ratio = rule.release / rule.enter if rule.enter > 0 else 0.6
    ref = [e for e in ev.reference if e.label == ev.labels[rule.name]]
    tracks = {name: rule_track(s, rule, labels) for name, s in ev.scores.items()}
    out = []
    for enter in CURVE_ENTERS:
        r = replace(rule, labels=("x",), enter=float(enter), release=float(enter * ratio))
        dets = []
        for name, t in tracks.items():
            dets += detections(replay(t, [r], ("x",)), [r], name, t.hop)[r.name]
        m = rule_metrics(ref, dets, ev.files, collars=False)
        out.append((float(enter), m.recall, m.false_alarms_per_hour))
    return out


def plot_evaluation(ev, config, labels, folder) -> list[Path]:
    plt = _pyplot()
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    rules = list(config.rules)
    for name, s in ev.scores.items():
        fig, axes = plt.subplots(len(rules), 1, figsize=(14, 1.8 * len(rules) + 0.6), sharex=True, squeeze=False)
        for ax, rule in zip(axes[:, 0], rules):
            track = rule_track(s, rule, labels)
            ax.plot(track.end, track.scores[:, 0], lw=0.6, color="0.3", label="score")
            ax.axhline(rule.enter, color="tab:red", lw=0.6, ls="--")
            for e in ev.reference:
                if e.filename == name and e.label == ev.labels[rule.name]:
                    ax.axvspan(e.onset, e.offset, ymin=0.55, ymax=1.0, color="tab:green", alpha=0.35)
            for d in ev.detections.get(rule.name, []):
                if d.filename == name:
                    ax.axvspan(d.onset, d.offset, ymin=0.0, ymax=0.45, color="tab:orange", alpha=0.6)
            ax.set_ylim(0, 1)
            ax.set_ylabel(rule.name, rotation=0, ha="right", fontsize=8)
        axes[0, 0].set_title(f"{name}: annotations (green, top), detections (orange, bottom), score, enter (red)")
        axes[-1, 0].set_xlabel("seconds")
        fig.tight_layout()
        path = out / f"timeline_{Path(name).stem}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    for rule in rules:
        pts = curve(ev, rule, labels)
        fig, ax = plt.subplots(figsize=(5, 4))
        fa = [p[2] if p[2] is not None else np.nan for p in pts]
        rec = [p[1] if p[1] is not None else np.nan for p in pts]
        ax.plot(fa, rec, marker="o", ms=3)
        for enter, r, f in pts[::3]:
            if r is not None and f is not None:
                ax.annotate(f"{enter:g}", (f, r), fontsize=7)
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xlabel("false alarms per hour")
        ax.set_ylabel("event recall")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{rule.name}: recall vs false alarms over enter", fontsize=9)
        fig.tight_layout()
        path = out / f"curve_{rule.name}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written
