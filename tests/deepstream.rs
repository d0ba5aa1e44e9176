//! The customer's DeepStream-Yolo files import as they are: `vigil import-deepstream` turns the
//! nvinfer and nvtracker configs under tests/fixtures/deepstream into a vigil.yml, and
//! `vigil replay --config` runs the real dataflow with it.

mod common;

use common::{recording_of, root};

fn vigil() -> std::process::Command {
    let mut c = common::vigil();
    c.current_dir(root());
    c
}

#[test]
fn imported_deepstream_config_runs_a_replay() {
    let dir = tempfile::tempdir().expect("tmp");
    let yml = dir.path().join("cfg").join("vigil.yml");
    let fixtures = root().join("tests/fixtures/deepstream");
    let out = vigil()
        .arg("import-deepstream")
        .arg(fixtures.join("config_infer_primary_yoloV8.txt"))
        .arg("--tracker")
        .arg(fixtures.join("config_tracker_IOU.yml"))
        .arg("-o")
        .arg(&yml)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // The one key neither nvinfer nor vigil uses is named with its line.
    assert!(
        stderr.contains("config_infer_primary_yoloV8.txt:29: custom-network-config=yolov8n.cfg"),
        "{stderr}"
    );
    let text = std::fs::read_to_string(&yml).expect("written");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
    assert_eq!(doc["model"]["decoder"].as_str(), Some("boxes"));
    assert_eq!(
        doc["preprocess"]["interval"].as_u64(),
        Some(3),
        "interval=2 skips two"
    );
    assert_eq!(
        doc["preprocess"]["pad_value"].as_u64(),
        Some(0),
        "nvinfer pads black"
    );
    assert_eq!(doc["preprocess"]["keep_aspect"].as_bool(), Some(true));
    assert_eq!(
        doc["postprocess"]["classes"][12]["iou_threshold"].as_f64(),
        Some(0.5)
    );
    assert_eq!(doc["tracker"]["max_age"].as_u64(), Some(38));

    // Three frames of a face close enough for the 320-pixel model.
    let rec = recording_of("tests/goldens/frames/messi5_crop2.jpg", 3, 30, dir.path());
    let jsonl = dir.path().join("out.jsonl");
    let out = vigil()
        .arg("replay")
        .arg(&rec)
        .arg("-o")
        .arg(&jsonl)
        .arg("--config")
        .arg(&yml)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&jsonl)
        .expect("output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(lines.len(), 3);
    // Inference on every 3rd frame (seq 0): that frame has the labelled detections.
    let labels: Vec<&str> = lines[0]["detections"]
        .as_array()
        .expect("detections")
        .iter()
        .filter_map(|d| d["label"].as_str())
        .collect();
    eprintln!("frame 0: {labels:?}");
    assert!(
        !labels.is_empty() && labels.iter().all(|l| !l.is_empty()),
        "{labels:?}"
    );
    assert!(
        lines[1]["detections"].as_array().is_some_and(Vec::is_empty),
        "frame 1 is not inferred"
    );
}
