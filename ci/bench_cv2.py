#!/usr/bin/env python3
"""OpenCV's letterbox on a folder of JPEGs: the Python baseline `cargo bench -p vigil-vision`
compares vigil's with (it writes the frames it timed and runs this on them).

usage: bench_cv2.py DIR [PASSES]     (needs opencv-python-headless and numpy)

Median ms per frame of cv2.imdecode (full and IMREAD_REDUCED_COLOR_2), and of
cv2.resize INTER_LINEAR + cv2.copyMakeBorder + astype(float32) * scale for the same two inputs
as the Rust bench (CenterNet 512x512 NHWC plain resize; YOLO 640x640 keep aspect, pad 114,
/255, also with the HWC -> CHW copy an NCHW network needs), with OpenCV's own thread pool and
with one thread (vigil's preprocessing is one thread).
"""
import pathlib
import statistics
import sys
import time

import cv2
import numpy as np


def median_ms(fn, items, passes):
    times = []
    for _ in range(passes):
        for x in items:
            t = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def centernet(rgb):
    img = cv2.resize(rgb, (512, 512), interpolation=cv2.INTER_LINEAR)
    return img.astype(np.float32) * np.float32(1.0)


def yolo(rgb, nchw=False):
    h, w = rgb.shape[:2]
    r = min(640 / w, 640 / h)
    nw, nh = round(w * r), round(h * r)
    img = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
    top, left = (640 - nh) // 2, (640 - nw) // 2
    img = cv2.copyMakeBorder(img, top, 640 - nh - top, left, 640 - nw - left,
                             cv2.BORDER_CONSTANT, value=(114, 114, 114))
    t = img.astype(np.float32) * np.float32(1 / 255)
    return np.ascontiguousarray(t.transpose(2, 0, 1)) if nchw else t


def main():
    folder = pathlib.Path(sys.argv[1])
    passes = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    jpegs = [np.frombuffer(p.read_bytes(), np.uint8) for p in sorted(folder.glob("*.jpg"))]
    rgb = [cv2.cvtColor(cv2.imdecode(j, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for j in jpegs]
    h, w = rgb[0].shape[:2]
    print(f"\ncv2 {cv2.__version__}, numpy {np.__version__}: {len(jpegs)} frames {w}x{h}, "
          f"{passes} passes, median ms/frame")
    print("\n| cv2 | default threads | 1 thread |\n|---|---|---|")
    default = cv2.getNumThreads()
    rows = [
        ("imdecode full", lambda j: cv2.imdecode(j, cv2.IMREAD_COLOR), jpegs),
        ("imdecode IMREAD_REDUCED_COLOR_2", lambda j: cv2.imdecode(j, cv2.IMREAD_REDUCED_COLOR_2), jpegs),
        ("CenterNet 512 NHWC: resize + astype*scale", centernet, rgb),
        ("YOLO 640 keep aspect: resize + copyMakeBorder + astype*scale (HWC)", yolo, rgb),
        ("YOLO 640 as above + HWC->CHW copy (NCHW)", lambda x: yolo(x, True), rgb),
    ]
    for name, fn, items in rows:
        cv2.setNumThreads(default)
        many = median_ms(fn, items, passes)
        cv2.setNumThreads(1)
        one = median_ms(fn, items, passes)
        print(f"| {name} | {many:.3f} | {one:.3f} |")
    cv2.setNumThreads(default)


if __name__ == "__main__":
    main()
