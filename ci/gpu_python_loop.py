#!/usr/bin/env python3
"""The Python baseline for vigil's GPU throughput: a detection loop written the usual way.

usage: gpu_python_loop.py --frames DIR --model models/centernet_mb3_coco.onnx
                          [--search EXHAUSTIVE|HEURISTIC|DEFAULT] [--tf32 0|1] [--repeat K]
                          [--size N]  (for a model whose input size is dynamic)

For each JPEG in DIR (file-name order): cv2.imdecode → BGR to RGB → the model's input →
onnxruntime with the CUDA execution provider (CPU as the fallback onnxruntime itself picks) →
threshold → class-aware NMS (cv2.dnn, IoU 0.45) → boxes back to frame pixels. Two kinds of
model, told apart by their input:
- NHWC [1,H,W,3] (CenterNet-MobileNetV3): cv2.resize to HxW (bilinear, a plain resize),
  float32 0..255; its `detections` output [1,100,6] (x1,y1,x2,y2,score,class); threshold 0.3.
- NCHW [1,3,H,W] (an Ultralytics YOLOv8 export): letterbox keeping aspect (bilinear, symmetric
  padding 114), /255, HWC→CHW; its raw output [1,4+nc,N] (cx,cy,w,h, class scores);
  threshold 0.25.

Prints one JSON line: onnxruntime version, the providers the session used, frames, session
creation and first-run seconds (what a restarted process pays), the loop's frames per second
(wall clock over every frame after the first run) and per-stage medians in ms.
"""
import argparse
import glob
import json
import os
import time

import cv2
import numpy as np
import onnxruntime as ort

ap = argparse.ArgumentParser()
ap.add_argument("--frames", required=True)
ap.add_argument("--model", required=True)
ap.add_argument("--search", default="EXHAUSTIVE", choices=["EXHAUSTIVE", "HEURISTIC", "DEFAULT"])
ap.add_argument("--tf32", type=int, default=0)
ap.add_argument("--repeat", type=int, default=1)
ap.add_argument("--size", type=int, default=None, help="input size, for a model that leaves it dynamic")
a = ap.parse_args()

jpegs = [open(f, "rb").read() for f in sorted(glob.glob(os.path.join(a.frames, "*.jpg")))]
if not jpegs:
    raise SystemExit(f"no .jpg in {a.frames}")
cuda = {"cudnn_conv_algo_search": a.search, "use_tf32": str(a.tf32)}
t = time.perf_counter()
sess = ort.InferenceSession(a.model, providers=[("CUDAExecutionProvider", cuda), "CPUExecutionProvider"])
session_s = time.perf_counter() - t
inp = sess.get_inputs()[0].name
out_names = [o.name for o in sess.get_outputs()]
det_name = next((n for n, o in zip(out_names, sess.get_outputs()) if list(o.shape)[-1] == 6), out_names[0])
shape = sess.get_inputs()[0].shape
YOLO = shape[1] == 3
SIZE = shape[2] if isinstance(shape[2], int) else a.size
if SIZE is None:
    raise SystemExit(f"{a.model}: the input size is dynamic ({shape}): give --size")
THRESHOLD, IOU = (0.25 if YOLO else 0.3), 0.45


def decode(b):
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def prep(img):
    if not YOLO:
        return cv2.resize(img, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR).astype(np.float32)[None]
    h, w = img.shape[:2]
    s = min(SIZE / w, SIZE / h)
    nw, nh = round(w * s), round(h * s)
    out = np.full((SIZE, SIZE, 3), 114, np.uint8)
    x, y = (SIZE - nw) // 2, (SIZE - nh) // 2
    out[y:y + nh, x:x + nw] = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    return np.ascontiguousarray((out.astype(np.float32) / 255.0).transpose(2, 0, 1)[None])


def post_yolo(raw, w, h):
    o = raw[0].T
    scores = o[:, 4:]
    cls = scores.argmax(1)
    conf = scores[np.arange(len(o)), cls]
    keep = conf >= THRESHOLD
    o, cls, conf = o[keep], cls[keep], conf[keep]
    if not len(o):
        return []
    boxes = np.stack([o[:, 0] - o[:, 2] / 2, o[:, 1] - o[:, 3] / 2, o[:, 2], o[:, 3]], 1)
    idx = np.array(cv2.dnn.NMSBoxesBatched(boxes.tolist(), conf.tolist(), cls.tolist(), THRESHOLD, IOU)).reshape(-1)
    s = min(SIZE / w, SIZE / h)
    px, py = (SIZE - round(w * s)) // 2, (SIZE - round(h * s)) // 2
    return [((b[0] - px) / s, (b[1] - py) / s, (b[0] + b[2] - px) / s, (b[1] + b[3] - py) / s, float(conf[i]), int(cls[i]))
            for i, b in ((i, boxes[i]) for i in idx)]


def post(dets, w, h):
    if YOLO:
        return post_yolo(dets, w, h)
    d = dets[0]
    d = d[d[:, 4] >= THRESHOLD]
    kept = []
    for c in np.unique(d[:, 5]):
        k = d[d[:, 5] == c]
        boxes = [[float(x1), float(y1), float(x2 - x1), float(y2 - y1)] for x1, y1, x2, y2 in k[:, :4]]
        for i in np.array(cv2.dnn.NMSBoxes(boxes, k[:, 4].tolist(), THRESHOLD, IOU)).reshape(-1):
            kept.append(k[i])
    sx, sy = w / SIZE, h / SIZE
    return [(r[0] * sx, r[1] * sy, r[2] * sx, r[3] * sy, r[4], int(r[5])) for r in kept]


first = prep(decode(jpegs[0]))
t = time.perf_counter()
sess.run([det_name], {inp: first})
first_run_s = time.perf_counter() - t

stages = {"decode": [], "prep": [], "infer": [], "post": []}
total = 0
t0 = time.perf_counter()
for _ in range(a.repeat):
    for b in jpegs:
        t1 = time.perf_counter()
        img = decode(b)
        t2 = time.perf_counter()
        x = prep(img)
        t3 = time.perf_counter()
        dets = sess.run([det_name], {inp: x})[0]
        t4 = time.perf_counter()
        total += len(post(dets, img.shape[1], img.shape[0]))
        t5 = time.perf_counter()
        stages["decode"].append(t2 - t1)
        stages["prep"].append(t3 - t2)
        stages["infer"].append(t4 - t3)
        stages["post"].append(t5 - t4)
wall = time.perf_counter() - t0
n = len(jpegs) * a.repeat
print(json.dumps({
    "onnxruntime": ort.__version__, "providers": sess.get_providers(), "search": a.search,
    "tf32": a.tf32, "frames": n, "session_create_s": round(session_s, 3),
    "first_run_s": round(first_run_s, 3), "loop_fps": round(n / wall, 1),
    **{k + "_ms": round(1e3 * float(np.median(v)), 3) for k, v in stages.items()},
    "detections": total,
}))
