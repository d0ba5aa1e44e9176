#!/usr/bin/env python3
"""Opens an exported Parquet file with DuckDB and checks it against the output it came from:
rows per kind, column types, values of every detection and track, timestamps.

usage: check_export.py DETECTIONS.parquet OUTPUT.jsonl
Prints one JSON line of what it found; exits non-zero on any mismatch.
"""
import json
import sys

import duckdb

path, output = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(output)]
con = duckdb.connect()
con.read_parquet(path).create_view("t")
types = dict(con.execute("select column_name, column_type from (describe t)").fetchall())
want_types = {"seq": "UBIGINT", "timestamp_ns": "UBIGINT", "status": "VARCHAR",
              "inferred": "BOOLEAN", "kind": "VARCHAR", "class": "UINTEGER",
              "label": "VARCHAR", "score": "DOUBLE", "x1": "DOUBLE", "y1": "DOUBLE",
              "x2": "DOUBLE", "y2": "DOUBLE", "track_id": "UBIGINT", "coasting": "BOOLEAN"}
problems = [f"column {k}: {types.get(k)}, expected {v}" for k, v in want_types.items()
            if types.get(k) != v]
counts = dict(con.execute("select kind, count(*) from t group by kind").fetchall())
want = {"frame": len(rows), "detection": sum(len(r["detections"]) for r in rows),
        "track": sum(len(r["tracks"]) for r in rows)}
if counts != want:
    problems.append(f"rows by kind {counts}, expected {want}")
dets = con.execute("select seq, class, label, score, x1, y1, x2, y2, status, inferred from t "
                   "where kind = 'detection' order by seq, score desc, x1").fetchall()
want_dets = sorted(((r["seq"], d["class"], d["label"], d["score"], *d["box"], r["status"],
                     r["status"] == "inferred") for r in rows for d in r["detections"]),
                   key=lambda x: (x[0], -x[3], x[4]))
if dets != want_dets:
    problems.append("detection rows differ from the output's detections")
tracks = con.execute("select seq, track_id, class, x1, y1, x2, y2, coasting from t "
                     "where kind = 'track' order by seq, track_id").fetchall()
want_tracks = sorted((r["seq"], t["id"], t["class"], *t["box"], t.get("coasting", False))
                     for r in rows for t in r["tracks"])
if tracks != want_tracks:
    problems.append("track rows differ from the output's tracks")
nulls = con.execute("select count(*) from t where timestamp_ns is null").fetchone()[0]
steps = con.execute("select count(distinct timestamp_ns) from t").fetchone()[0]
if nulls or steps != len(rows):
    problems.append(f"{nulls} rows without a timestamp, {steps} distinct for {len(rows)} frames")
print(json.dumps({"rows": counts, "columns": len(types), "problems": problems[:5]}))
sys.exit(1 if problems else 0)
