#!/usr/bin/env python3
"""Reads an annotated recording with the official MCAP reader and the Foxglove protobuf
schemas, as Foxglove Studio would, and checks it against the output it was made from.

usage: check_annotated.py ANNOTATED.mcap OUTPUT.jsonl
Prints one JSON line of what it found; exits non-zero on any mismatch.
"""
import json
import sys

from foxglove_schemas_protobuf.CompressedImage_pb2 import CompressedImage
from foxglove_schemas_protobuf.ImageAnnotations_pb2 import ImageAnnotations
from mcap.reader import make_reader

path, output = sys.argv[1], sys.argv[2]
lines = {}
with open(output) as f:
    for line in f:
        row = json.loads(line)
        lines[row["seq"]] = row

images, annotations, detections = {}, {}, {}
with open(path, "rb") as f:
    reader = make_reader(f)
    meta = [m for m in reader.iter_metadata() if m.name == "vigil.recording"]
with open(path, "rb") as f:
    reader = make_reader(f)
    for schema, channel, message in reader.iter_messages():
        if channel.topic == "/camera/image":
            assert schema.name == "foxglove.CompressedImage", schema.name
            img = CompressedImage()
            img.ParseFromString(message.data)
            assert img.format == "jpeg" and img.data[:2] == b"\xff\xd8"
            images[message.sequence] = (message.log_time, img)
        elif channel.topic == "/vigil/annotations":
            assert schema.name == "foxglove.ImageAnnotations", schema.name
            assert schema.encoding == "protobuf" and channel.message_encoding == "protobuf"
            ann = ImageAnnotations()
            ann.ParseFromString(message.data)
            annotations[message.sequence] = (message.log_time, ann)
        elif channel.topic == "/vigil/detections":
            assert channel.message_encoding == "json" and schema.encoding == "jsonschema"
            detections[message.sequence] = json.loads(message.data)

problems = []
if not meta:
    problems.append("no vigil.recording metadata")
if set(images) != set(lines) or set(annotations) != set(lines):
    problems.append(f"frames: {len(images)} images, {len(annotations)} annotations, "
                    f"{len(lines)} lines")
boxes = texts_with_id = 0
for seq, row in lines.items():
    t_img, img = images[seq]
    t_ann, ann = annotations[seq]
    stamp = ann.timestamp.seconds * 10**9 + ann.timestamp.nanos
    img_stamp = img.timestamp.seconds * 10**9 + img.timestamp.nanos
    if not (t_img == t_ann == stamp == img_stamp):
        problems.append(f"seq {seq}: annotation time {stamp} vs image {img_stamp}")
    want = len(row["detections"]) + len(row["tracks"])
    if len(ann.points) != want or len(ann.texts) != want:
        problems.append(f"seq {seq}: {len(ann.points)} boxes for {want}")
    for d, p in zip(row["detections"], ann.points):
        xs = [pt.x for pt in p.points]
        ys = [pt.y for pt in p.points]
        if p.type != p.LINE_LOOP or [min(xs), min(ys), max(xs), max(ys)] != d["box"]:
            problems.append(f"seq {seq}: box {d['box']} drawn as {xs} {ys}")
    for tr, tx in zip(row["tracks"], ann.texts[len(row["detections"]):]):
        texts_with_id += tx.text.startswith(f"#{tr['id']} ")
    boxes += len(ann.points)
    if detections[seq] != row:
        problems.append(f"seq {seq}: detections channel differs from the output line")
tracks = sum(len(r["tracks"]) for r in lines.values())
if texts_with_id != tracks:
    problems.append(f"{texts_with_id} track labels carry their id, of {tracks}")
print(json.dumps({"frames": len(images), "annotated": len(annotations), "boxes": boxes,
                  "track_ids": texts_with_id, "problems": problems[:5]}))
sys.exit(1 if problems else 0)
