#!/usr/bin/env python3
"""Compares two vigil output files (JSONL, one line per frame) detection by detection.

usage: compare_detections.py A.jsonl B.jsonl [--min-iou 0.99] [--max-dscore 1e-3]
                             [--threshold 0.3]

Per frame, each detection of A is matched to the unmatched detection of B of the same class
with the highest IoU (at least 0.5). Prints one JSON line: frames, detections on each side,
matched, near-threshold flips (unmatched, scoring within --max-dscore of --threshold: a box
one backend keeps and the other drops by a hair), other differences, the lowest IoU and the
largest score difference of the matched pairs, frames whose status differs, and `ok` (frames
to compare, the same frames and statuses, no other differences, IoU and score within bounds). Exits 1 when not ok. Standard library only.
"""
import argparse
import json
import sys


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def frames(path):
    out = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{n}: not JSON: {e}")
            out[row["seq"]] = (row.get("status"), row.get("detections") or [])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--min-iou", type=float, default=0.99)
    ap.add_argument("--max-dscore", type=float, default=1e-3)
    ap.add_argument("--threshold", type=float, default=0.3)
    args = ap.parse_args()
    fa, fb = frames(args.a), frames(args.b)
    near = lambda d: abs(d["score"] - args.threshold) <= args.max_dscore
    r = {"frames_a": len(fa), "frames_b": len(fb), "detections_a": 0, "detections_b": 0,
         "matched": 0, "near_threshold_flips": 0, "other_differences": 0,
         "min_iou": 1.0, "max_dscore": 0.0, "status_differences": 0}
    for seq in sorted(set(fa) | set(fb)):
        (sa, a), (sb, b) = fa.get(seq, (None, [])), fb.get(seq, (None, []))
        r["status_differences"] += sa != sb
        r["detections_a"] += len(a)
        r["detections_b"] += len(b)
        taken = [False] * len(b)
        for d in a:
            best, best_iou = None, 0.5
            for j, e in enumerate(b):
                if not taken[j] and e["class"] == d["class"]:
                    v = iou(d["box"], e["box"])
                    if v >= best_iou:
                        best, best_iou = j, v
            if best is None:
                r["near_threshold_flips" if near(d) else "other_differences"] += 1
                continue
            taken[best] = True
            r["matched"] += 1
            r["min_iou"] = min(r["min_iou"], best_iou)
            r["max_dscore"] = max(r["max_dscore"], abs(d["score"] - b[best]["score"]))
        for j, e in enumerate(b):
            if not taken[j]:
                r["near_threshold_flips" if near(e) else "other_differences"] += 1
    r["min_iou"] = round(r["min_iou"], 5)
    r["max_dscore"] = round(r["max_dscore"], 6)
    r["ok"] = (len(fa) > 0 and fa.keys() == fb.keys() and r["other_differences"] == 0
               and r["status_differences"] == 0
               and r["min_iou"] >= args.min_iou and r["max_dscore"] <= args.max_dscore)
    print(json.dumps(r))
    sys.exit(0 if r["ok"] else 1)


if __name__ == "__main__":
    main()
