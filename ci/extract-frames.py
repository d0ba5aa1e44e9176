#!/usr/bin/env python3
"""Writes frames of a video as numbered JPEGs, for `vigil import`.

usage: extract-frames.py VIDEO OUT_DIR [--start N] [--count N] [--quality Q] [--size WxH]

--size resizes each frame (bilinear) first, e.g. 1280x720: the kiosk camera's size.
"""
import argparse
import pathlib

import cv2

ap = argparse.ArgumentParser()
ap.add_argument("video")
ap.add_argument("out")
ap.add_argument("--start", type=int, default=0)
ap.add_argument("--count", type=int, default=100)
ap.add_argument("--quality", type=int, default=90)
ap.add_argument("--size", default=None, help="WxH, e.g. 1280x720")
a = ap.parse_args()
out = pathlib.Path(a.out)
out.mkdir(parents=True, exist_ok=True)
cap = cv2.VideoCapture(a.video)
cap.set(cv2.CAP_PROP_POS_FRAMES, a.start)
n = 0
while n < a.count:
    ok, frame = cap.read()
    if not ok:
        break
    if a.size:
        w, h = (int(v) for v in a.size.lower().split("x"))
        frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR)
    cv2.imwrite(str(out / f"frame_{a.start + n:05d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, a.quality])
    n += 1
print(f"{n} frames -> {out}")
