#!/usr/bin/env python3
"""Appends a DeepStream-Yolo style head to an Ultralytics raw YOLO export.

The raw model ends in `output0` [B, 4+nc, N] (cx, cy, w, h, class scores). The head added
here turns it into what the DeepStream-Yolo exporter emits, in network pixels, without NMS:

    (default)        output  [B, N, 6]  x1, y1, x2, y2, score, class
    --three-outputs  boxes   [B, N, 4]  x1, y1, x2, y2
                     scores  [B, N, 1]
                     classes [B, N, 1]  (the older three-output form)

Usage: make_dsy.py IN.onnx OUT.onnx [--three-outputs]      (needs the `onnx` package)
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def const(graph, name, values, dtype=np.int64):
    graph.initializer.append(numpy_helper.from_array(np.array(values, dtype=dtype), name))
    return name


def main(src, dst, three):
    model = onnx.load(src)
    g = model.graph
    raw = g.output[0].name
    n = lambda *args, **kw: g.node.append(helper.make_node(*args, **kw))
    n("Transpose", [raw], ["dsy_t"], perm=[0, 2, 1])  # [B, N, 4+nc]
    axis2 = const(g, "dsy_axis2", [2])
    n("Slice", ["dsy_t", const(g, "dsy_0", [0]), const(g, "dsy_2", [2]), axis2], ["dsy_xy"])
    n("Slice", ["dsy_t", const(g, "dsy_2b", [2]), const(g, "dsy_4", [4]), axis2], ["dsy_wh"])
    n("Slice", ["dsy_t", const(g, "dsy_4b", [4]), const(g, "dsy_end", [1 << 30]), axis2], ["dsy_cls"])
    n("Mul", ["dsy_wh", const(g, "dsy_half", [0.5], np.float32)], ["dsy_half_wh"])
    n("Sub", ["dsy_xy", "dsy_half_wh"], ["dsy_x1y1"])
    n("Add", ["dsy_xy", "dsy_half_wh"], ["dsy_x2y2"])
    n("ReduceMax", ["dsy_cls"], ["dsy_score"], axes=[2], keepdims=1)
    n("ArgMax", ["dsy_cls"], ["dsy_label_i"], axis=2, keepdims=1)
    n("Cast", ["dsy_label_i"], ["dsy_label"], to=TensorProto.FLOAT)
    del g.output[:]
    if three:
        n("Concat", ["dsy_x1y1", "dsy_x2y2"], ["boxes"], axis=2)
        n("Identity", ["dsy_score"], ["scores"])
        n("Identity", ["dsy_label"], ["classes"])
        for name, width in [("boxes", 4), ("scores", 1), ("classes", 1)]:
            g.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", "anchors", width]))
    else:
        n("Concat", ["dsy_x1y1", "dsy_x2y2", "dsy_score", "dsy_label"], ["output"], axis=2)
        g.output.append(helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", "anchors", 6]))
    onnx.checker.check_model(model)
    onnx.save(model, dst)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 2:
        sys.exit(__doc__)
    main(args[0], args[1], "--three-outputs" in sys.argv)
