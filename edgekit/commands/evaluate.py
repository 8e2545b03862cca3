"""edgekit evaluate: how well the config's rules hear, on annotated recordings."""

from __future__ import annotations

import json
import sys

HELP = ("measure the config's rules on annotated recordings as alarms: events detected, false alarms per hour, "
        "latency (DCASE's collar F1 and threshold-free PSDS beside them)")


def add_arguments(p) -> None:
    p.add_argument("--config", required=True, help="the daemon's TOML config; its rules are evaluated")
    p.add_argument("--annotations", required=True,
                   help="DCASE TSV (filename, onset, offset, event_label) or an Audacity label file")
    p.add_argument("--map", action="append", metavar="RULE=LABEL[,...]",
                   help="annotation label of a rule (default: the rule's name)")
    p.add_argument("--json", metavar="OUT", help="write the results as JSON")
    p.add_argument("--plot", metavar="DIR", help="write PNGs: timelines and recall/false-alarm curves")
    p.add_argument("--hop", type=float, help="window hop in seconds (default: the config's hop_seconds)")
    p.add_argument("--onset-collar", type=float, default=1.0,
                   help="seconds, for the secondary DCASE F1 figures only (default 1.0)")
    p.add_argument("--cache", metavar="DIR", help="keep each file's scores here and reuse them")
    p.add_argument("audio", nargs="+", metavar="AUDIO", help="recordings named in the annotations")


def _fmt(x, spec=".2f") -> str:
    return "-" if x is None else format(x, spec)


def table(ev) -> str:
    from edgekit.evaluate.metrics import AFTER, BEFORE

    head = f"{'rule':<18} {'label':<16} {'events':>6} {'det':>4} {'miss':>4} {'FA':>4} {'recall':>6} " \
           f"{'FA/h':>6} {'p50 s':>6} {'p95 s':>6} | {'F1 on':>5} {'F1 on+off':>9} {'PSDS1':>5} {'PSDS2':>5}"
    rows = [head, "-" * len(head)]
    for name, m in ev.rules.items():
        on = m.dcase_onset.f1 if m.dcase_onset else None
        onoff = m.dcase_onset_offset.f1 if m.dcase_onset_offset else None
        p1, p2 = (ev.psds[k].per_class.get(name) if k in ev.psds else None for k in ("psds1", "psds2"))
        rows.append(f"{name[:18]:<18} {ev.labels[name][:16]:<16} {m.events:>6} {m.detected:>4} {m.missed:>4} "
                    f"{m.false_alarms:>4} {_fmt(m.recall):>6} {_fmt(m.false_alarms_per_hour, '.1f'):>6} "
                    f"{_fmt(m.latency_p50):>6} {_fmt(m.latency_p95):>6} | {_fmt(on):>5} {_fmt(onoff):>9} "
                    f"{_fmt(p1):>5} {_fmt(p2):>5}")
    hours = sum(ev.files.values()) / 3600
    rows.append(f"{len(ev.files)} recording(s), {hours * 60:.1f} min. An event is detected when its rule starts "
                f"within {BEFORE:g} s before its onset to {AFTER:g} s after its offset; FA: a start away from every "
                "such event of the label; FA/h: per hour of that audio; latency: first start - onset. "
                "Secondary: DCASE event F1 (sed_eval, onset collar; onset+offset collars); threshold-free "
                "PSDS of the scores each rule watches (DCASE scenarios 1 and 2, per rule"
                + (f"; across rules {ev.psds['psds1'].value:.3f} and {ev.psds['psds2'].value:.3f}" if ev.psds else "")
                + ").")
    return "\n".join(rows)


def run(args) -> int:
    from edgekit.daemon.config import load_config
    from edgekit.evaluate.annotations import read_annotations
    from edgekit.evaluate.metrics import AFTER, BEFORE
    from edgekit.evaluate.runner import evaluate, labels_for, model_for, parse_map

    mapping = parse_map(args.map)
    annotations = read_annotations(args.annotations, args.audio)
    config = load_config(args.config)  # values first, before the slow model load
    model = model_for(config, args.hop)
    config = load_config(args.config, labels=model.labels)
    ev = evaluate(config, model, annotations, args.audio, mapping, args.onset_collar, cache_dir=args.cache)
    for p in ev.problems:
        print(f"edgekit: warning: {p}", file=sys.stderr)
    print(table(ev))
    if args.json:
        out = {**ev.as_dict(), "hop": model.params.patch_hop_seconds, "config": args.config,
               "alerting": {"before_onset": BEFORE, "after_offset": AFTER},
               "dcase_onset_collar": args.onset_collar}
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    if args.plot:
        from edgekit.evaluate.plots import plot_evaluation

        for path in plot_evaluation(ev, config, labels_for(config, model), args.plot):
            print(f"wrote {path}")
    return 0
