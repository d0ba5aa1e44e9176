//! Live mode through the real dora runtime: a camera faster than the detector. The lock-step
//! replay measures what the dataflow can do (C fps); a realtime replay at twice that rate must
//! still carry fresh detections on most of the frames it can (at least 0.7 × C/R, room for a
//! noisy machine: the goal in `vigil bench --live` is 0.9), write one line per frame, and say
//! of every other frame why it was not inferred, with its tracks predicted.

use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_record::{RecordedFrame, Recording, RecordingInfo, RecordingWriter};

const FRAMES: u64 = 300;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn vigil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
}

/// The committed sample's frames, looped to `FRAMES` (timestamps at 30 fps).
fn looped(path: &Path) {
    let sample = Recording::open(&root().join("recordings/vtest-100.mcap")).expect("sample");
    let info = RecordingInfo {
        fps: 30.0,
        ..sample.info.clone()
    };
    let mut w = RecordingWriter::create(path, &info).expect("create");
    for i in 0..FRAMES {
        let src = &sample.frames[(i as usize) % sample.frames.len()];
        w.write_frame(&RecordedFrame {
            seq: i as u32,
            timestamp_ns: i * 1_000_000_000 / 30,
            jpeg: src.jpeg.clone(),
        })
        .expect("write");
    }
    w.finish().expect("finish");
}

fn replay(rec: &Path, dir: &Path, name: &str, extra: &[&str]) -> serde_json::Value {
    let out = dir.join(format!("{name}.jsonl"));
    let summary = dir.join(format!("{name}.json"));
    let output = vigil()
        .current_dir(root())
        .arg("replay")
        .arg(rec)
        .arg("-o")
        .arg(&out)
        .arg("--summary")
        .arg(&summary)
        .args(extra)
        .output()
        .expect("vigil runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "vigil replay {extra:?}: {stderr}");
    eprintln!("{name}: {}", stderr.lines().last().unwrap_or_default());
    let mut s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).expect("summary")).expect("json");
    s["lines"] = std::fs::read_to_string(&out)
        .expect("output")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("one JSON object a line"))
        .collect::<Vec<_>>()
        .into();
    s
}

#[test]
fn a_camera_twice_as_fast_as_the_detector_gets_fresh_detections_on_the_frames_it_can() {
    let dir = tempfile::tempdir().expect("tmp");
    let rec = dir.path().join("looped.mcap");
    looped(&rec);
    let lockstep = replay(&rec, dir.path(), "lockstep", &[]);
    let c = lockstep["fps"].as_f64().expect("lock-step fps measured");
    let r = 2.0 * c;
    let live = replay(
        &rec,
        dir.path(),
        "live",
        &["--realtime", "--fps", &format!("{r:.2}")],
    );
    let lines = live["lines"].as_array().expect("lines");
    assert_eq!(lines.len() as u64, FRAMES, "one line per frame, none lost");
    let inferred = live["summary"]["status"]["inferred"]
        .as_u64()
        .expect("counted");
    let fresh = inferred as f64 / FRAMES as f64;
    let ideal = (c / r).min(1.0);
    eprintln!(
        "C = {c:.1} fps, R = {r:.1} fps: fresh {fresh:.3}, ideal {ideal:.3}, ratio {:.2}; {}",
        fresh / ideal,
        live["summary"]
    );
    assert!(
        fresh >= 0.7 * ideal,
        "fresh detections on {inferred} of {FRAMES} frames at twice the capacity"
    );
    // Every line says what happened to its frame; frames not inferred because the detector
    // was busy carry predicted tracks, marked coasting.
    let mut busy_with_tracks = 0;
    for (i, l) in lines.iter().enumerate() {
        assert_eq!(l["seq"].as_u64(), Some(i as u64), "in order, no gap");
        let status = l["status"].as_str().expect("a status on every line");
        assert!(
            ["inferred", "busy", "missing"].contains(&status),
            "line {i}: {status}"
        );
        let tracks = l["tracks"].as_array().expect("tracks");
        if status != "inferred" {
            assert!(
                l["detections"].as_array().is_some_and(Vec::is_empty),
                "line {i}: no fresh detections on a frame not inferred"
            );
            assert!(
                tracks.iter().all(|t| t["coasting"] == true),
                "line {i}: tracks are predictions"
            );
            busy_with_tracks += usize::from(status == "busy" && !tracks.is_empty());
        }
    }
    assert!(busy_with_tracks > 0, "busy frames carry predicted tracks");
}
