//! `vigil track-eval` against motmetrics 1.4.0 itself (`tests/python/motmetrics_reference.py`):
//! on the MOTChallenge sequences TUD-Campus and TUD-Stadtmitte with the tracker outputs the
//! motmetrics wheel ships, and on those outputs damaged on purpose (ids swapped, boxes dropped,
//! moved and added), every metric both print agrees within 1e-3. `bash ci/setup` fetches the
//! sequences (into data/mot/, never committed) and installs motmetrics.

#[allow(dead_code)] // each test binary uses its own part of it
mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::{root, vigil};
use serde_json::{Map, Value};
use vigil_mot::{Row, parse, to_text};

const SEQUENCES: [&str; 2] = ["TUD-Campus", "TUD-Stadtmitte"];

/// The metrics the comparison must cover (both tools print more).
const REQUIRED: [&str; 17] = [
    "mota",
    "motp",
    "idf1",
    "idp",
    "idr",
    "recall",
    "precision",
    "num_switches",
    "num_fragmentations",
    "num_misses",
    "num_false_positives",
    "num_objects",
    "num_predictions",
    "num_unique_objects",
    "mostly_tracked",
    "partially_tracked",
    "mostly_lost",
];

/// A file of `bash ci/setup`'s copy of the sequences.
fn data(sequence: &str, file: &str) -> PathBuf {
    let path = root().join("data/mot").join(sequence).join(file);
    assert!(
        path.is_file(),
        "{}: missing; run `bash ci/setup` (it copies the MOTChallenge sequences out of the \
         motmetrics 1.4.0 wheel into data/mot/)",
        path.display()
    );
    path
}

fn json(what: &str, stdout: &[u8]) -> Map<String, Value> {
    match serde_json::from_slice(stdout) {
        Ok(Value::Object(m)) => m,
        other => panic!(
            "{what}: not a JSON object ({other:?}): {}",
            String::from_utf8_lossy(stdout)
        ),
    }
}

fn ours(gt: &Path, result: &Path) -> Map<String, Value> {
    let out = vigil()
        .arg("track-eval")
        .args([gt, result])
        .args(["--format", "json"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "vigil track-eval: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    json("vigil track-eval", &out.stdout)
}

fn reference(gt: &Path, result: &Path) -> Map<String, Value> {
    let python = root().join(".venv/bin/python");
    let out = std::process::Command::new(&python)
        .arg(root().join("tests/python/motmetrics_reference.py"))
        .args([gt, result])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}; run `bash ci/setup`", python.display()));
    assert!(
        out.status.success(),
        "motmetrics_reference.py: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    json("motmetrics_reference.py", &out.stdout)
}

/// Both tools on one pair: every metric motmetrics prints, vigil prints too, equal within 1e-3
/// (null, where both divide by zero, equal to null). Returns vigil's.
fn agree(gt: &Path, result: &Path) -> Map<String, Value> {
    let (got, want) = (ours(gt, result), reference(gt, result));
    let mut differ = Vec::new();
    for (name, w) in &want {
        let g = got
            .get(name)
            .unwrap_or_else(|| panic!("vigil track-eval prints no {name}"));
        let same = match (w.as_f64(), g.as_f64()) {
            (Some(w), Some(g)) => (w - g).abs() <= 1e-3,
            _ => w.is_null() && g.is_null(),
        };
        if !same {
            differ.push(format!("{name}: motmetrics {w}, vigil {g}"));
        }
    }
    assert!(
        differ.is_empty(),
        "{} vs {}:\n{}",
        gt.display(),
        result.display(),
        differ.join("\n")
    );
    for name in REQUIRED {
        assert!(want.contains_key(name), "motmetrics printed no {name}");
    }
    got
}

fn count(m: &Map<String, Value>, name: &str) -> u64 {
    m[name].as_u64().expect("a count")
}

/// The sequences and the tracker outputs motmetrics ships with them, scored alike; the numbers
/// are motmetrics' own test's (MOTA 52.6% and 56.4%, IDF1 55.8% and 64.5%).
#[test]
fn agrees_with_motmetrics_on_the_tud_sequences() {
    let mut seen = Vec::new();
    for s in SEQUENCES {
        let m = agree(&data(s, "gt.txt"), &data(s, "test.txt"));
        seen.push((
            count(&m, "num_objects"),
            count(&m, "num_switches"),
            (m["mota"].as_f64().expect("mota") * 1000.0).round(),
        ));
    }
    assert_eq!(seen, [(359, 7, 526.0), (1156, 7, 564.0)]);
}

/// The tracker output damaged: from the middle frame on its two longest tracks trade ids,
/// every 5th box is dropped, every 7th moved right by 0.4 of its width, and every 9th copied a
/// width to the left under a new id — and then written out as a tracker would write it.
fn perturbed(result: &Path, out: &Path) {
    let text = std::fs::read_to_string(result).expect("read");
    let rows = parse(
        "test.txt",
        text.as_bytes(),
        vigil_mot::RESULT_MIN_CONFIDENCE,
    )
    .expect("parses")
    .rows()
    .to_vec();
    let mut lengths: BTreeMap<i64, usize> = BTreeMap::new();
    for r in &rows {
        *lengths.entry(r.id).or_default() += 1;
    }
    let mut by_length: Vec<(usize, i64)> = lengths.iter().map(|(&id, &n)| (n, id)).collect();
    by_length.sort_unstable_by(|a, b| b.cmp(a));
    let (a, b) = (by_length[0].1, by_length[1].1);
    let (first, last) = (rows[0].frame, rows[rows.len() - 1].frame);
    let middle = first + (last - first) / 2;
    let fresh = lengths.keys().max().expect("ids") + 1000;
    let mut damaged = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let mut r = *r;
        if r.frame >= middle {
            r.id = if r.id == a {
                b
            } else if r.id == b {
                a
            } else {
                r.id
            };
        }
        if i % 5 == 4 {
            continue;
        }
        if i % 7 == 3 {
            r.left += 0.4 * r.width;
        }
        damaged.push(r);
        if i % 9 == 2 {
            damaged.push(Row {
                id: fresh + i as i64,
                left: r.left - r.width,
                ..r
            });
        }
    }
    std::fs::write(out, to_text(&damaged)).expect("write");
}

#[test]
fn agrees_with_motmetrics_on_damaged_outputs() {
    let dir = tempfile::tempdir().expect("tempdir");
    for s in SEQUENCES {
        let result = dir.path().join(format!("{s}.txt"));
        perturbed(&data(s, "test.txt"), &result);
        let original = ours(&data(s, "gt.txt"), &data(s, "test.txt"));
        let m = agree(&data(s, "gt.txt"), &result);
        // The damage shows: more switches and false positives than the output it came from.
        for name in ["num_switches", "num_false_positives", "num_misses"] {
            assert!(
                count(&m, name) > count(&original, name),
                "{s}: {name} {} (undamaged {})",
                m[name],
                original[name]
            );
        }
    }
}

/// A line that is not MOTChallenge text: the error names the file, the line and the field,
/// and the exit status is non-zero.
#[test]
fn a_bad_line_names_the_file_line_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (gt, bad) = (dir.path().join("gt.txt"), dir.path().join("bad.txt"));
    std::fs::write(&gt, "1,1,10,10,20,40,1,-1,-1,-1\n").expect("write");
    std::fs::write(
        &bad,
        "1,3,10,10,20,40,-1,-1,-1,-1\n2,3,left,10,20,40,-1,-1,-1,-1\n",
    )
    .expect("write");
    let out = vigil()
        .arg("track-eval")
        .args([&gt, &bad])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: line 2: bb_left `left` is not a finite number",
            bad.display()
        )),
        "{stderr}"
    );
    let missing = dir.path().join("missing.txt");
    let out = vigil()
        .arg("track-eval")
        .args([&gt, &missing])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("missing.txt: No such file"), "{stderr}");
}

/// `vigil track-bench` on the same sequences: every noise level × interval × tracker scored,
/// the goal line for each level, and the same bytes when run again (seeded noise, no clock).
#[test]
fn track_bench_covers_every_case_and_is_deterministic() {
    data("TUD-Campus", "gt.txt");
    let run = || {
        let out = vigil()
            .current_dir(root())
            .args(["track-bench", "--seeds", "2"])
            .output()
            .expect("vigil runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let first = run();
    assert_eq!(first, run(), "seeded: the same table twice");
    let rows: Vec<&str> = first
        .lines()
        .filter(|l| l.starts_with("| low") || l.starts_with("| medium") || l.starts_with("| high"))
        .collect();
    assert_eq!(rows.len(), 3 * 3 * 2, "{first}");
    for tracker in ["IOU (nvtracker)", "ByteTrack"] {
        assert_eq!(rows.iter().filter(|r| r.contains(tracker)).count(), 9);
    }
    // Every MOTA and IDF1 a rate; more noise never helps the same tracker at interval 1.
    let cell = |row: &str, i: usize| -> f64 {
        row.split('|')
            .nth(i)
            .and_then(|c| c.trim().parse().ok())
            .expect("a number")
    };
    for r in &rows {
        assert!(
            (-1.0..=1.0).contains(&cell(r, 4)) && (0.0..=1.0).contains(&cell(r, 5)),
            "{r}"
        );
    }
    let mota = |noise: &str, tracker: &str| {
        rows.iter()
            .find(|r| r.starts_with(&format!("| {noise} | 1 | {tracker}")))
            .map(|r| cell(r, 4))
            .expect("row")
    };
    for tracker in ["IOU (nvtracker)", "ByteTrack"] {
        assert!(mota("low", tracker) > mota("medium", tracker), "{first}");
        assert!(mota("medium", tracker) > mota("high", tracker), "{first}");
    }
    assert_eq!(
        first
            .matches("every 2 frames (nvinfer interval=1), ")
            .count(),
        3,
        "{first}"
    );
    assert_eq!(
        first
            .matches("every 3 frames (nvinfer interval=2), ")
            .count(),
        3,
        "{first}"
    );
    // A missing data folder is an error that says how to get it.
    let out = vigil()
        .current_dir(root())
        .args(["track-bench", "--data", "no/such/folder"])
        .output()
        .expect("vigil runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no/such/folder"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `vigil export --format mot`: a run's tracks as a MOTChallenge result that `vigil track-eval`
/// reads: one line per shown track of the class, frames from 1; scored against itself, perfect.
#[test]
fn a_runs_tracks_export_to_motchallenge_text_that_track_eval_reads() {
    let dir = tempfile::tempdir().expect("tmp");
    let expected = root().join("recordings/expected/vtest-100.jsonl");
    let mot = dir.path().join("tracks.txt");
    let out = vigil()
        .args(["export", "--format", "mot", "--class", "0", "-o"])
        .arg(&mot)
        .arg(&expected)
        .output()
        .expect("vigil runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let persons: usize = std::fs::read_to_string(&expected)
        .expect("expected output")
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("json");
            v["tracks"]
                .as_array()
                .map_or(0, |t| t.iter().filter(|t| t["class"] == 0).count())
        })
        .sum();
    let text = std::fs::read_to_string(&mot).expect("written");
    assert!(persons > 100, "the sample has people tracked");
    assert_eq!(text.lines().count(), persons);
    assert!(text.starts_with("1,"), "frames from 1: {}", &text[..40]);
    let out = vigil()
        .args(["track-eval", "--format", "json"])
        .arg(&mot)
        .arg(&mot)
        .output()
        .expect("vigil runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = json("self", &out.stdout);
    assert_eq!(m["mota"].as_f64(), Some(1.0));
    assert_eq!(m["idf1"].as_f64(), Some(1.0));
    assert_eq!(m["num_switches"].as_u64(), Some(0));
    assert_eq!(m["num_objects"].as_u64(), Some(persons as u64));
}
