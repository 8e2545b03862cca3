"""Benchmark records (JSON), their Markdown tables and PNG plots, comparisons between two
records, and the check against published figures."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

from edgekit.errors import ConfigError

SCHEMA = "edgekit.bench/1"
PUBLISHED = Path(__file__).with_name("published.json")  # package data
RSS_NOTE = ("peak RSS is ru_maxrss of the whole process: a high-water mark that includes Python, "
            "numpy, the runtime and every model loaded before the row, so it only grows down the table")


def make_record(results: list[dict], machine: dict, settings: dict, label: str | None = None,
                notes: list[str] | None = None) -> dict:
    from edgekit import __version__

    return {
        "schema": SCHEMA,
        "edgekit": __version__,
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "label": label,
        "machine": machine,
        "settings": settings,
        "notes": [RSS_NOTE, *(notes or [])],
        "results": results,
        "published_check": None,
    }


def write_json(record: dict, dest: str) -> None:
    text = json.dumps(record, indent=1, default=str) + "\n"
    if dest == "-":
        sys.stdout.write(text)
    else:
        Path(dest).write_text(text)


def load_record(path: str | Path) -> dict:
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read a benchmark record ({exc})") from None
    if not isinstance(record, dict) or not isinstance(record.get("results"), list):
        raise ConfigError(f"{path}: not an `edgekit bench --json` record (no results list)")
    return record


# --- formatting ------------------------------------------------------------------------------


def _ms(x) -> str:
    if x is None:
        return "—"
    return f"{x:.3f}" if x < 10 else f"{x:.2f}" if x < 100 else f"{x:.1f}"


def _si(n) -> str:
    if n is None:
        return "—"
    return f"{n / 1e9:.3g} G" if n >= 1e9 else f"{n / 1e6:.3g} M" if n >= 1e6 else f"{n / 1e3:.3g} k"


def xnnpack_label(row: dict) -> str:
    if row.get("xnnpack_requested") is None:
        return "—"
    if not row["xnnpack_requested"]:
        return "off"
    return "on" if row.get("xnnpack") or row.get("status") != "ok" else "on (not taken)"


def short_status(status: str) -> str:
    if status == "ok":
        return "ok"
    for prefix in ("no Edge TPU found", "needs an Edge TPU", "error"):
        if status.startswith(prefix):
            return prefix
    return status.split(":")[0]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return out


def machine_lines(m: dict) -> list[str]:
    rt = m.get("runtime") or {}
    tpu = m.get("edgetpu") or {}
    warning = f" — **warning**: {m['governor_warning']}" if m.get("governor_warning") else ""
    lines = [
        f"- CPU: {m.get('cpu')} ({m.get('machine')}), {m.get('cores')} cores"
        f" ({m.get('cores_available')} available){', virtualised' if m.get('virtualised') else ''}",
        f"- governor: {m.get('governor')}{warning}",
        f"- board: {m.get('board') or 'none (no /proc/device-tree/model)'}",
        f"- OS: {m.get('os')}; Python {m.get('python')}; numpy {m.get('numpy')}; "
        f"runtime {rt.get('name')} {rt.get('version')}; edgekit {m.get('edgekit')}",
        f"- Edge TPU: {'usable' if tpu.get('usable') else 'not usable: ' + str(tpu.get('reason'))}",
        f"- host: {m.get('hostname')}; load average at start: {m.get('loadavg_at_start')}",
    ]
    return lines


def markdown(record: dict) -> str:
    s = record.get("settings", {})
    lines = [f"# edgekit bench: {record.get('label') or record['machine'].get('hostname')}", "",
             f"{record['timestamp']}, edgekit {record.get('edgekit')}; "
             + (f"{s['runs']} runs" if s.get("runs") else "timed runs") + f" after {s.get('warmup')} warm-up"
             + (f", at most {s['seconds']} s per row" if s.get("seconds") else "")
             + "; only `invoke()` is timed.", "", "## Machine", "", *machine_lines(record["machine"]), "",
             "## Latency (ms per invoke)", ""]
    header = ["model", "device", "XNNPACK", "status", "init", "1st", "min", "p50", "p90", "p99", "max",
              "mean ± std", "FPS", "MACs", "params", "peak RSS MiB", "harness/bare p50"]
    rows, footnotes = [], []
    for r in record["results"]:
        lat = r.get("latency_ms") or {}
        status = short_status(r["status"])
        if status != "ok":
            footnotes.append(f"- {r['model']} on {r['device']}: {r['status']}")
            status += f" [{len(footnotes)}]"
        ov = r.get("overhead")
        rows.append([
            r["model"], r["device"], xnnpack_label(r), status,
            _ms(r.get("init_ms")), _ms(r.get("first_inference_ms")),
            _ms(lat.get("min")), _ms(lat.get("p50")), _ms(lat.get("p90")), _ms(lat.get("p99")),
            _ms(lat.get("max")),
            f"{_ms(lat['mean'])} ± {_ms(lat['std'])}" if lat else "—",
            f"{r['fps']:.1f}" if r.get("fps") else "—", _si(r.get("macs")), _si(r.get("params")),
            r.get("peak_rss_mib") or "—", f"{ov['ratio_p50']:.3f}" if ov else "—",
        ])
    lines += _table(header, rows)
    if footnotes:
        lines += ["", *[f"[{i}] {f[2:]}" for i, f in enumerate(footnotes, 1)]]
    inputs = sorted({f"{r['model']}: {r['input']['source']}"
                     + (" (synthetic)" if r["input"]["synthetic"] else "")
                     for r in record["results"] if r.get("input")})
    if inputs:
        lines += ["", "Inputs:", *[f"- {i}" for i in inputs]]
    tops = [f"{r['model']} ({r['device']}, XNNPACK {xnnpack_label(r)}): {top1_text(r['top1'])}"
            for r in record["results"] if r.get("top1")]
    if tops:
        lines += ["", "Top-1 on that input (sanity check):", *[f"- {t}" for t in tops]]
    lines += pipeline_lines(record)
    if record.get("published_check"):
        lines += ["", "## Published figures", "", *published_lines(record["published_check"])]
    lines += ["", "## Notes", "", *[f"- {n}" for n in record.get("notes", [])]]
    return "\n".join(lines) + "\n"


def top1_text(top: dict) -> str:
    """The sanity line's value: a score where the model outputs one, else named for what it is."""
    kind = top.get("output", "probability")  # records from before "output" held scores
    if kind == "probability":
        return f"{top['label']} {top['score']:.2f}"
    if kind == "logit":
        return f"{top['label']} (logit {top['score']:.3g}, not a score)"
    return f"{top['label']} (raw output {top['score']:.3g}, scale unknown)"


def pipeline_lines(record: dict) -> list[str]:
    rows = []
    for r in record["results"]:
        for p in r.get("pipeline") or []:
            rows.append([r["model"], r["device"], xnnpack_label(r), p["frontend"], p["mode"], f"{p['hop_s']:g}",
                         f"{p['audio_s']:.1f}", p["patches"], _ms(p["frontend_cpu_ms_per_hop"]),
                         _ms(p["model_cpu_ms_per_patch"]), p["rtf_cpu"], p["rtf_wall"]])
    if not rows:
        return []
    header = ["model", "device", "XNNPACK", "front end", "mode", "hop s", "audio s", "patches",
              "front end CPU ms/hop", "model CPU ms/patch", "RTF (CPU)", "RTF (wall)"]
    return ["", "## Pipeline: front end + model", "",
            "Real-time factor = seconds of audio per second of CPU (`time.process_time`, all threads); "
            "one hop at a time through `edgekit.listen.Listener`, the daemon's own path (each 10 ms frame "
            "featurised once; records made before it also have `patch` rows, every window from scratch).",
            "", *_table(header, rows)]


# --- plot ------------------------------------------------------------------------------------


def plot(record: dict, path: str | Path) -> None:
    """Latency distribution per row: box (p25-p75), whiskers p1-p99, a dot per outlier."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ConfigError("--plot needs matplotlib: pip install matplotlib") from None
    rows = [r for r in record["results"] if r.get("samples_ms")]
    # A Figure with its own Agg canvas: no pyplot, so no global backend or GUI is touched.
    fig = Figure(figsize=(9, 1.2 + 0.5 * max(1, len(rows))), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if rows:
        data = [r["samples_ms"] for r in rows]
        labels = [f"{r['model'].removesuffix('.tflite')}  {r['device']} XNNPACK {xnnpack_label(r)}\n"
                  f"p50 {_ms(r['latency_ms']['p50'])} ms" for r in rows]
        kw = dict(whis=(1, 99), widths=0.6, flierprops={"markersize": 2, "alpha": 0.5})
        try:
            ax.boxplot(data, orientation="horizontal", tick_labels=labels, **kw)
        except TypeError:  # matplotlib < 3.10
            ax.boxplot(data, vert=False, labels=labels, **kw)
        ax.invert_yaxis()
        lo = min(min(d) for d in data)
        hi = max(max(d) for d in data)
        if lo > 0 and hi / lo > 20:
            ax.set_xscale("log")
        ax.set_xlabel("latency per invoke (ms)" + (", log scale" if ax.get_xscale() == "log" else ""))
        ax.tick_params(axis="y", labelsize=8)
        ax.grid(axis="x", which="both", alpha=0.3)
    else:
        ax.text(0.5, 0.5, "no row ran", ha="center", va="center")
    m = record["machine"]
    rt = m.get("runtime") or {}
    ax.set_title(f"{record.get('label') or m.get('hostname')}\n{m.get('cpu')}, "
                 f"{rt.get('name')} {rt.get('version')}", fontsize=9)
    fig.savefig(path, dpi=110)


# --- compare two records ---------------------------------------------------------------------


def _key(r: dict) -> tuple:
    return (r["model"], r["device"], r.get("xnnpack_requested"))


def compare_rows(a: dict, b: dict) -> list[dict]:
    rb = {_key(r): r for r in b["results"]}
    keys = [_key(r) for r in a["results"]] + [k for k in rb if k not in {_key(r) for r in a["results"]}]
    ra = {_key(r): r for r in a["results"]}
    out = []
    for k in dict.fromkeys(keys):
        x, y = ra.get(k), rb.get(k)
        pa = ((x or {}).get("latency_ms") or {}).get("p50")
        pb = ((y or {}).get("latency_ms") or {}).get("p50")
        fa, fb = (x or {}).get("fps"), (y or {}).get("fps")
        out.append({
            "model": k[0], "device": k[1], "xnnpack": k[2], "a_p50": pa, "b_p50": pb,
            "p50_ratio": pb / pa if pa and pb else None, "a_fps": fa, "b_fps": fb,
            "fps_ratio": fb / fa if fa and fb else None,
            "a_status": (x or {}).get("status", "absent"), "b_status": (y or {}).get("status", "absent"),
        })
    return out


def compare_table(a: dict, b: dict, a_name: str = "A", b_name: str = "B") -> str:
    def who(name, rec):
        m = rec.get("machine", {})
        return f"{name}: {rec.get('label') or m.get('hostname')} — {m.get('cpu')}, {rec.get('timestamp')}"

    rows = []
    for c in compare_rows(a, b):
        xnn = "—" if c["xnnpack"] is None else "on" if c["xnnpack"] else "off"
        ratio = lambda v: f"{v:.3f}" if v is not None else "—"  # noqa: E731
        rows.append([c["model"], c["device"], xnn,
                     _ms(c["a_p50"]) if c["a_p50"] else short_status(c["a_status"]),
                     _ms(c["b_p50"]) if c["b_p50"] else short_status(c["b_status"]),
                     ratio(c["p50_ratio"]),
                     f"{c['a_fps']:.1f}" if c["a_fps"] else "—", f"{c['b_fps']:.1f}" if c["b_fps"] else "—",
                     ratio(c["fps_ratio"])])
    header = ["model", "device", "XNNPACK", "A p50 ms", "B p50 ms", "B/A p50", "A FPS", "B FPS", "B/A FPS"]
    return "\n".join([who(a_name, a), who(b_name, b), "", *_table(header, rows),
                      "", "B/A p50 < 1: B is faster; B/A FPS > 1: B is faster."]) + "\n"


# --- published figures -----------------------------------------------------------------------


def load_published(path: str | Path | None = None) -> dict:
    p = Path(path) if path else PUBLISHED
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{p}: cannot read the published figures ({exc}); pass --published PATH") from None


def class_matches(machine: dict, cls: dict) -> bool:
    rule = cls.get("match", {})
    if "machine" in rule and machine.get("machine") != rule["machine"]:
        return False
    if "cpu_contains" in rule and rule["cpu_contains"] not in (machine.get("cpu") or ""):
        return False
    if "board_contains" in rule and rule["board_contains"] not in (machine.get("board") or ""):
        return False
    return True


def check_published(record: dict, published: dict, tolerance: float | None = None) -> dict:
    """Each row with a published figure for its model and device kind: within ±tolerance or not,
    and only where this machine belongs to the figure's device class."""
    from edgekit.models.runtime import parse_device

    tol = published.get("tolerance", 0.3) if tolerance is None else tolerance
    classes = published["device_classes"]
    machine = record["machine"]
    matching = [name for name, c in classes.items() if class_matches(machine, c)]
    entries = []
    for r in record["results"]:
        kind = parse_device(r["device"]).kind
        for f in published["figures"]:
            cls = classes[f["class"]]
            if f["model"] != r["model"] or cls["device_kind"] != kind:
                continue
            src = published["sources"][f["source"]]
            e = {"model": r["model"], "device": r["device"], "xnnpack": r.get("xnnpack_requested"),
                 "class": f["class"], "published_ms": f["ms"], "statistic": f["statistic"],
                 "source": src["url"], "measured_ms": None, "ratio": None, "verdict": None}
            measured = (r.get("latency_ms") or {}).get(f["statistic"])
            if f["class"] not in matching:
                e["verdict"] = "not comparable: another machine"
            elif measured is None:
                e["verdict"] = f"not measured: {short_status(r['status'])}"
            else:
                ratio = measured / f["ms"]
                e.update(measured_ms=measured, ratio=round(ratio, 3),
                         verdict="within" if abs(ratio - 1) <= tol else "outside")
            entries.append(e)
    checked = [e for e in entries if e["verdict"] in ("within", "outside")]
    if not matching:
        summary = (f"no published device class matches this machine ({machine.get('machine')}, "
                   f"{machine.get('cpu')}, board: {machine.get('board') or 'none'}): the figures are for "
                   + "; ".join(c["description"] for c in classes.values())
                   + ". Nothing was checked.")
    elif not checked:
        summary = f"this machine is {', '.join(matching)}, but no row ran a model with a published figure there."
    else:
        within = sum(e["verdict"] == "within" for e in checked)
        summary = f"{within} of {len(checked)} rows within ±{tol:.0%} of the published figure."
    return {"tolerance": tol, "matching_classes": matching, "summary": summary, "entries": entries}


def published_lines(check: dict) -> list[str]:
    lines = [check["summary"]]
    if check["entries"]:
        rows = [[e["model"], e["device"], "—" if e["xnnpack"] is None else "on" if e["xnnpack"] else "off",
                 e["class"], f"{e['published_ms']:g} ({e['statistic']})", _ms(e["measured_ms"]),
                 e["ratio"] if e["ratio"] is not None else "—", e["verdict"]] for e in check["entries"]]
        lines += ["", *_table(["model", "device", "XNNPACK", "published for", "published ms",
                               "measured ms", "ratio", f"±{check['tolerance']:.0%}"], rows)]
        lines += ["", "Sources: " + ", ".join(sorted({e["source"] for e in check["entries"]}))]
    return lines
