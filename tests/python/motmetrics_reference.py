#!/usr/bin/env python3
"""motmetrics 1.4.0's numbers for a ground truth and a tracker output (MOTChallenge 2D text):
what `vigil track-eval --format json` is compared with (tests/trackeval.rs).

usage: motmetrics_reference.py GT.txt RESULT.txt [--min-confidence F]
Prints one JSON object, motmetrics' metric names as keys (null where it divides by zero).
The ground truth is read with min_confidence F (default 1), the result with motmetrics'
default (-1), then compare_to_groundtruth(gt, ts, 'iou', distth=0.5) and metrics.compute.
"""
import argparse
import json
import math
import sys

import numpy as np

# motmetrics 1.4.0's iou_matrix calls np.asfarray, which NumPy 2.0 removed; this is the
# conversion it made (to a float64 array).
if not hasattr(np, "asfarray"):
    np.asfarray = lambda a, dtype=np.float64: np.asarray(a, dtype=dtype)

try:
    import motmetrics as mm
except ImportError as e:
    sys.exit(f"motmetrics is not installed in .venv ({e}): run `bash ci/setup`")

if mm.__version__ != "1.4.0":
    sys.exit(f"motmetrics {mm.__version__} in .venv, the reference is 1.4.0: run `bash ci/setup`")

METRICS = mm.metrics.motchallenge_metrics + [
    "num_objects", "num_predictions", "num_frames", "num_matches", "num_detections",
    "idtp", "idfp", "idfn",
]

parser = argparse.ArgumentParser()
parser.add_argument("gt")
parser.add_argument("result")
parser.add_argument("--min-confidence", type=float, default=1.0)
args = parser.parse_args()

gt = mm.io.loadtxt(args.gt, fmt="mot15-2D", min_confidence=args.min_confidence)
ts = mm.io.loadtxt(args.result, fmt="mot15-2D")
acc = mm.utils.compare_to_groundtruth(gt, ts, "iou", distth=0.5)
summary = mm.metrics.create().compute(acc, metrics=METRICS, return_dataframe=False)
values = {k: float(summary[k]) for k in METRICS}
print(json.dumps({k: v if math.isfinite(v) else None for k, v in values.items()}))
