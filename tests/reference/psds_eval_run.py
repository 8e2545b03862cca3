"""Run by a separate environment holding psds_eval (the reference PSDS implementation).

psds_eval 0.5.3 needs pandas < 3 and numpy < 2, so it cannot sit in the project's environment;
tests/test_evaluate_psds.py makes one for it and feeds it the same detections as edgekit's own
PSDS. Reads a JSON case on stdin, writes {"value": .., "per_class": {..}} per scenario on stdout.
"""

import json
import sys
import warnings

import numpy as np
import pandas as pd
from psds_eval import PSDSEval

warnings.simplefilter("ignore")
case = json.load(sys.stdin)
cols = ["filename", "onset", "offset", "event_label"]
gt = pd.DataFrame(case["ground_truth"], columns=cols)
meta = pd.DataFrame(list(case["durations"].items()), columns=["filename", "duration"])
out = {}
for name, s in case["scenarios"].items():
    ev = PSDSEval(s["dtc"], s["gtc"], s["cttc"], ground_truth=gt, metadata=meta)
    for i, op in enumerate(case["operating_points"]):
        ev.add_operating_point(pd.DataFrame(op, columns=cols), info={"n": i})
    res = ev.psds(s["alpha_ct"], s["alpha_st"], s["max_efpr"])
    curve = ev.psd_roc_curves(s["alpha_ct"])[2]  # TPR vs eFPR per class (sorted class names)
    classes = sorted(set(gt.event_label))
    per_class = {c: float(PSDSEval._auc(curve.xp, curve.yp[i], s["max_efpr"]) / s["max_efpr"])
                 for i, c in enumerate(classes)}
    out[name] = {"value": float(res.value), "per_class": per_class}
json.dump(out, sys.stdout)
