"""Threshold-free PSDS (edgekit.evaluate.psds): agreement with psds_eval, and the definition's properties.

psds_eval 0.5.3, the reference implementation, needs numpy < 2 and pandas < 3, so it runs in an
environment of its own (made once, cached in /var/tmp) and is fed the very same detections.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, absent
from edgekit.evaluate import psds as P

REF_ENV = Path(os.environ.get("EDGEKIT_PSDS_REF", "/var/tmp/edgekit-psds-ref"))
REF_PINS = ["psds_eval==0.5.3", "numpy==1.26.4", "pandas==2.2.3"]
WINDOW, HOP = 0.975, 0.1
LABELS = ("alarm", "bark", "knock")


@pytest.fixture(scope="session")
def reference_python() -> Path:
    py = REF_ENV / "bin" / "python"
    stamp = REF_ENV / "edgekit-pins.txt"
    if not (py.exists() and stamp.exists() and stamp.read_text().split() == REF_PINS):
        env = {**os.environ, "PIP_CONSTRAINT": "", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        base = getattr(sys, "_base_executable", sys.executable)
        made = subprocess.run([base, "-m", "venv", "--clear", str(REF_ENV)], capture_output=True, text=True)
        if made.returncode == 0:
            made = subprocess.run([str(py), "-m", "pip", "install", "-q", *REF_PINS], capture_output=True,
                                  text=True, env=env, timeout=600)
        if made.returncode != 0:
            absent(f"could not make the psds_eval reference environment in {REF_ENV}: {made.stderr[-400:]}")
        stamp.write_text(" ".join(REF_PINS))
    return py


def _case(seed: int):
    """Files, non-overlapping events per label, and score series: clean for some labels, noisy for others."""
    rng = np.random.default_rng(seed)
    files = {f"f{i}.wav": float(rng.uniform(40, 120)) for i in range(4)}
    truth = []
    for f, d in files.items():
        for lab in LABELS:
            t = float(rng.uniform(0, 10))
            for _ in range(rng.integers(0, 5)):
                a = t + float(rng.uniform(0, 20))
                b = a + float(rng.uniform(0.3, 8))
                if b < d:
                    truth.append((f, a, b, lab))
                t = b
    for lab in LABELS:
        if not any(x[3] == lab for x in truth):
            truth.append(("f0.wav", 5.0, 7.0, lab))
    series = {}
    for k, lab in enumerate(LABELS):
        noise, slack = (0.15, 0.05) if k == 0 else (0.6, 0.6)
        series[lab] = {}
        for f, d in files.items():
            end = np.arange(WINDOW, d, HOP)
            centre = end - WINDOW / 2
            score = rng.uniform(0, noise, len(end))
            for g in truth:
                if g[0] == f and g[3] in (lab, LABELS[(k + 1) % 3]):  # some confusion with another label
                    score[(centre > g[1] - slack) & (centre < g[2] + slack)] += rng.uniform(0.2, 0.9)
            series[lab][f] = (end, np.round(score, 2), HOP)  # 2 decimals: thresholds repeat, as uint8 scores do
    return files, truth, series


def _operating_points(files, series, thresholds):
    out = {}
    for lab, per_file in series.items():
        out[lab] = []
        for t in thresholds:
            dets = []
            for f, s in per_file.items():
                a, b, score = P._laid_out(P.Timeline({f: files[f]}), {f: s}, WINDOW, files)
                dets += [(f, float(x), float(y)) for x, y in zip(*P.runs(a, b, score, t))]
            out[lab].append(dets)
    return out


SCENARIOS = dict(P.SCENARIOS, other=P.Scenario(dtc=0.5, gtc=0.4, cttc=0.2, alpha_ct=1.0, alpha_st=0.5, max_efpr=50))


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_psds_agrees_with_the_reference_implementation(reference_python, seed):
    files, truth, series = _case(seed)
    ops = _operating_points(files, series, np.round(np.arange(0.05, 1.6, 0.05), 2))
    mine = {name: P.psds(truth, files, ops, s) for name, s in SCENARIOS.items()}
    n = len(ops[LABELS[0]])
    case = {"ground_truth": truth, "durations": files,
            "operating_points": [[[f, a, b, lab] for lab in LABELS for f, a, b in ops[lab][i]] for i in range(n)],
            "scenarios": {name: asdict(s) for name, s in SCENARIOS.items()}}
    proc = subprocess.run([str(reference_python), str(ROOT / "tests" / "reference" / "psds_eval_run.py")],
                          input=json.dumps(case), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ref = json.loads(proc.stdout)
    assert any(x > 0.3 for k in ref for x in ref[k]["per_class"].values())  # a case where something is detected
    for name in SCENARIOS:
        assert mine[name].value == pytest.approx(ref[name]["value"], abs=1e-9), name
        for lab in LABELS:
            assert mine[name].per_class[lab] == pytest.approx(ref[name]["per_class"][lab], abs=1e-9), (name, lab)


def _exact(files, truth, label):
    """Scores 1 in every window centred inside an event of ``label``, 0 elsewhere."""
    out = {}
    for f, d in files.items():
        end = np.arange(WINDOW, d, HOP)
        centre = end - WINDOW / 2
        inside = np.zeros(len(end), bool)
        for g in truth:
            if g[0] == f and g[3] == label:
                inside |= (centre - HOP / 2 >= g[1]) & (centre + HOP / 2 <= g[2])
        out[f] = (end, inside.astype(float), HOP)
    return out


def test_a_scorer_that_marks_every_event_scores_one_and_a_blind_one_zero():
    # Events fill under a tenth of each file: else psds2's DTC of 0.1 would let a detection of the
    # whole file pass (by definition), and a scorer blind to the events would still score.
    files = {"a.wav": 300.0, "b.wav": 200.0}
    truth = [("a.wav", 5.0, 9.0, "alarm"), ("a.wav", 30.0, 33.0, "alarm"), ("b.wav", 10.0, 14.0, "alarm"),
             ("a.wav", 40.0, 44.0, "bark")]
    exact = {"alarm": _exact(files, truth, "alarm"), "bark": _exact(files, truth, "bark")}
    res = P.score_psds(truth, files, exact, {"alarm": "alarm", "bark": "bark"}, WINDOW)
    for r in res.values():
        assert r.value == pytest.approx(1.0) and r.per_class == pytest.approx({"alarm": 1.0, "bark": 1.0})
    blind = {"alarm": {f: (e, 1.0 - s, h) for f, (e, s, h) in exact["alarm"].items()}}
    res = P.score_psds(truth, files, blind, {"alarm": "alarm"}, WINDOW)
    assert all(r.value == 0.0 for r in res.values())


def test_a_rules_psds_depends_on_its_scores_and_the_annotations_only():
    """Per rule, not on which other rules are scored nor on the order of the files."""
    files, truth, series = _case(7)
    labels = {lab: lab for lab in LABELS}
    every = P.score_psds(truth, files, series, labels, WINDOW)
    alone = P.score_psds(truth, files, {"bark": series["bark"]}, {"bark": "bark"}, WINDOW)
    backwards = dict(reversed(list(files.items())))
    flipped = P.score_psds(truth, backwards, series, labels, WINDOW)
    for k in P.SCENARIOS:
        assert alone[k].per_class["bark"] == pytest.approx(every[k].per_class["bark"], abs=1e-12)
        assert flipped[k].value == pytest.approx(every[k].value, abs=1e-12)
    assert every["psds2"].value > 0  # the case is not trivially zero


def test_overlapping_events_of_one_label_count_as_their_union():
    files = {"a.wav": 60.0}
    one = [("a.wav", 5.0, 12.0, "alarm")]
    two = [("a.wav", 5.0, 9.0, "alarm"), ("a.wav", 8.0, 12.0, "alarm")]
    scores = {"alarm": _exact(files, one, "alarm")}
    for k in P.SCENARIOS:
        a = P.score_psds(one, files, scores, {"alarm": "alarm"}, WINDOW)[k]
        b = P.score_psds(two, files, scores, {"alarm": "alarm"}, WINDOW)[k]
        assert a.value == b.value == pytest.approx(1.0)


def test_thresholds_are_every_distinct_score_up_to_the_cap():
    scores = np.repeat(np.arange(256) / 255.0, 3)
    assert len(P.thresholds(scores)) == 256
    many = np.linspace(0, 1, 10_000)
    picked = P.thresholds(many, most=100)
    assert len(picked) == 100 and picked[0] == 0.0 and picked[-1] == 1.0
