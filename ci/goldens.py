#!/usr/bin/env python3
"""Writes the parity goldens under tests/goldens/: what Python onnxruntime and OpenCV make of
the same frames vigil's parity tests read (tests/parity.rs).

Run from the project root after the setup command (needs opencv-python-headless, numpy and
onnxruntime; reads ../shared/assets/video/vtest.avi or VTEST=path, and models/):

    python3 ci/goldens.py

For every model and frame it stores
  - the raw outputs of onnxruntime on OpenCV's letterboxed input (`.bin`, float32 LE, the
    outputs listed in the JSON one after the other): the detection output always, whole; the
    others for the frames whose input is kept, those over 100k values at every `stride`-th value,
  - OpenCV's NMS (`cv2.dnn.NMSBoxesBatched`) of the decoded candidates, in network pixels,
  - the end-to-end boxes in source pixels,
and for the first frames the letterboxed image itself (`.png`, RGB) so that vigil can be fed
the very same input tensor and compare its own letterbox with OpenCV's.

Letterbox: cv2.resize INTER_LINEAR to round(side * scale), then cv2.copyMakeBorder with the
pad value, the left/top pad the floor of half the slack (nvinfer's symmetric padding).
"""
import json
import os
import sys

import cv2
import numpy as np
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "goldens")
VTEST = os.environ.get("VTEST", os.path.join(ROOT, "..", "shared", "assets", "video", "vtest.avi"))
BIG = 100_000

# name, file, input layout, size, keep aspect, pad, scale, decoder, candidate threshold, e2e threshold
MODELS = [
    ("centernet", "models/centernet_mb3_coco.onnx", "nhwc", 512, False, 0, 1.0, "boxes", 0.05, 0.3),
    ("yolov8n", "models/nudenet_yolov8n_320n.onnx", "nchw", 320, True, 114, 1 / 255, "ultralytics", 0.01, 0.25),
    ("yolov8n_dsy", "models/nudenet_yolov8n_320n_dsy.onnx", "nchw", 320, True, 114, 1 / 255, "boxes", 0.01, 0.25),
]
IOU = 0.45
PNG_FRAMES = 3


def frames():
    """15 vtest.avi frames, messi5.jpg, and 5 crops of it (the YOLOv8n model finds faces and
    feet, which the pedestrians seen from above do not show)."""
    os.makedirs(os.path.join(OUT, "frames"), exist_ok=True)
    cap = cv2.VideoCapture(VTEST)
    names = []
    for i in range(150):
        ok, img = cap.read()
        if not ok:
            sys.exit(f"{VTEST}: frame {i} unreadable")
        if i % 10 == 0:
            name = f"frames/vtest_{i:03d}.jpg"
            cv2.imwrite(os.path.join(OUT, name), img, [cv2.IMWRITE_JPEG_QUALITY, 80])
            names.append(name)
    names.append("../fixtures/messi5.jpg")
    messi = cv2.imread(os.path.join(OUT, "..", "fixtures", "messi5.jpg"))
    h, w = messi.shape[:2]
    crops = [(0, 0, w // 2, h), (w // 4, 0, 3 * w // 4, h), (w // 3, h // 8, w, h), (w // 5, 0, w, 2 * h // 3)]
    for k, (x1, y1, x2, y2) in enumerate(crops):
        name = f"frames/messi5_crop{k}.jpg"
        cv2.imwrite(os.path.join(OUT, name), messi[y1:y2, x1:x2], [cv2.IMWRITE_JPEG_QUALITY, 90])
        names.append(name)
    name = "frames/messi5_mirror.jpg"
    cv2.imwrite(os.path.join(OUT, name), messi[:, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    names.append(name)
    return names


def letterbox(rgb, size, keep, pad):
    h, w = rgb.shape[:2]
    if not keep:
        return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_LINEAR), (size / w, size / h, 0, 0)
    s = min(size / w, size / h)
    nw, nh = min(max(round(w * s), 1), size), min(max(round(h * s), 1), size)
    img = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_LINEAR)
    left, top = (size - nw) // 2, (size - nh) // 2
    img = cv2.copyMakeBorder(img, top, size - nh - top, left, size - nw - left, cv2.BORDER_CONSTANT, value=(pad, pad, pad))
    return img, (s, s, left, top)


def decode(outputs, kind, thr):
    """Candidates (x1, y1, x2, y2, score, class) scoring at least thr, network pixels."""
    if kind == "ultralytics":
        out = next(o for o in outputs if o.ndim == 3 and o.shape[1] < o.shape[2])[0]  # [4+nc, N]
        scores = out[4:]
        cls = scores.argmax(axis=0)
        best = scores[cls, np.arange(out.shape[1])]
        cx, cy, w, h = out[0], out[1], out[2], out[3]
        half_w, half_h = w / np.float32(2), h / np.float32(2)
        rows = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h, best, cls.astype(np.float32)], axis=1)
    else:
        rows = next(o for o in outputs if o.ndim == 3 and o.shape[2] == 6)[0]
    keep = np.isfinite(rows).all(axis=1) & (rows[:, 4] >= np.float32(thr)) & (rows[:, 2] >= rows[:, 0]) & (rows[:, 3] >= rows[:, 1])
    return rows[keep]


def nms(c):
    if len(c) == 0:
        return c
    xywh = [[float(r[0]), float(r[1]), float(r[2] - r[0]), float(r[3] - r[1])] for r in c]
    idx = cv2.dnn.NMSBoxesBatched(xywh, [float(s) for s in c[:, 4]], [int(k) for k in c[:, 5]], 0.0, IOU)
    idx = np.array(idx, dtype=np.int64).reshape(-1)
    return c[idx]


def main():
    names = frames()
    for model, path, layout, size, keep, pad, scale, kind, cand_thr, e2e_thr in MODELS:
        sess = ort.InferenceSession(os.path.join(ROOT, path), providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0].name
        os.makedirs(os.path.join(OUT, model), exist_ok=True)
        for n, name in enumerate(names):
            bgr = cv2.imread(os.path.join(OUT, name), cv2.IMREAD_COLOR)
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            img, (sx, sy, px, py) = letterbox(rgb, size, keep, pad)
            x = img.astype(np.float32) * np.float32(scale)
            x = x[None] if layout == "nhwc" else x.transpose(2, 0, 1)[None]
            outputs = sess.run(None, {inp: np.ascontiguousarray(x)})
            stem = os.path.join(model, os.path.splitext(os.path.basename(name))[0])
            meta = []
            png = n < PNG_FRAMES
            with open(os.path.join(OUT, stem + ".bin"), "wb") as f:
                for o, spec in zip(outputs, sess.get_outputs()):
                    flat = o.astype("<f4").reshape(-1)
                    # The decoder's output whole; others only where the input is kept too.
                    detection = o.ndim == 3 and (o.shape[2] == 6 or o.shape[1] < o.shape[2])
                    if not detection and not png:
                        continue
                    stride = 1 if flat.size <= BIG or detection else -(-flat.size // BIG)
                    flat[::stride].tofile(f)
                    meta.append({"name": spec.name, "shape": list(o.shape), "stride": stride})
            if png:
                cv2.imwrite(os.path.join(OUT, stem + ".png"), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            kept = nms(decode(outputs, kind, cand_thr))
            h, w = rgb.shape[:2]
            src = []
            for r in kept:
                if r[4] < e2e_thr:
                    continue
                x1, x2 = [min(max((v - px) / sx, 0.0), w) for v in (r[0], r[2])]
                y1, y2 = [min(max((v - py) / sy, 0.0), h) for v in (r[1], r[3])]
                src.append([float(x1), float(y1), float(x2), float(y2), float(r[4]), int(r[5])])
            golden = {
                "frame": name,
                "png": png,
                "outputs": meta,
                "letterbox": {"scale_x": sx, "scale_y": sy, "pad_x": px, "pad_y": py},
                "candidate_threshold": cand_thr,
                "iou_threshold": IOU,
                "nms": [[float(v) for v in r[:5]] + [int(r[5])] for r in kept],
                "e2e_threshold": e2e_thr,
                "e2e": src,
            }
            with open(os.path.join(OUT, stem + ".json"), "w") as f:
                json.dump(golden, f, indent=1)
            print(f"{model} {name}: {len(kept)} after NMS, {len(src)} at >= {e2e_thr}")


if __name__ == "__main__":
    main()
