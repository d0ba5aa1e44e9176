//! The customer's DeepStream-Yolo files import as they are: `vigil import-deepstream` turns the
//! nvinfer and nvtracker configs under tests/fixtures/deepstream into a vigil.yml, and
//! `vigil replay --config` runs the real dataflow with it. DeepStream-Yolo's own configs
//! (tests/fixtures/deepstream-yolo) import the same way, run from their own folder with bare
//! file names, and a model their parser cannot read fails the import.

mod common;

use std::path::Path;

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

/// A folder as a DeepStream-Yolo user has it: the project's own configs and labels, with the
/// one edit its docs/YOLOv8.md asks for, and `model` (from models/) as the `yolov8s.onnx` its
/// config names.
fn deepstream_yolo(model: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    for f in [
        "config_infer_primary_yoloV8.txt",
        "deepstream_app_config.txt",
        "labels.txt",
    ] {
        std::fs::copy(
            root().join("tests/fixtures/deepstream-yolo").join(f),
            dir.path().join(f),
        )
        .expect("copy fixture");
    }
    edit(
        dir.path(),
        "deepstream_app_config.txt",
        "config-file=config_infer_primary.txt",
        "config-file=config_infer_primary_yoloV8.txt",
    );
    std::fs::copy(
        root().join("models").join(model),
        dir.path().join("yolov8s.onnx"),
    )
    .expect("model");
    dir
}

fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(text.contains(from), "{file} has no `{from}`");
    std::fs::write(&path, text.replacen(from, to, 1)).expect("write");
}

/// `vigil import-deepstream ARGS` run in `dir`: (success, stderr).
fn import_in(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = common::vigil()
        .current_dir(dir)
        .arg("import-deepstream")
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn yaml(path: &Path) -> serde_yaml::Value {
    serde_yaml::from_str(&std::fs::read_to_string(path).expect("written")).expect("yaml")
}

#[test]
fn deepstream_yolos_own_configs_import_from_their_own_folder_and_run() {
    let dir = deepstream_yolo("nudenet_yolov8n_320n_dsy.onnx");
    let d = dir.path();
    // This export leaves its input size dynamic and the config has no infer-dims: the error
    // says so (and no longer "cannot make an empty path absolute").
    let (ok, stderr) = import_in(d, &["config_infer_primary_yoloV8.txt", "-o", "vigil.yml"]);
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("config_infer_primary_yoloV8.txt:5: onnx-file=yolov8s.onnx")
            && stderr.contains("set infer-dims=3;H;W"),
        "{stderr}"
    );
    assert!(!d.join("vigil.yml").exists());

    // Done as the message says.
    edit(
        d,
        "config_infer_primary_yoloV8.txt",
        "symmetric-padding=1\n",
        "symmetric-padding=1\ninfer-dims=3;320;320\n",
    );
    let (ok, stderr) = import_in(d, &["config_infer_primary_yoloV8.txt", "-o", "vigil.yml"]);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains(
            "warning: config_infer_primary_yoloV8.txt:6: model-engine-file=model_b1_gpu0_fp32.engine"
        ),
        "{stderr}"
    );
    let doc = yaml(&d.join("vigil.yml"));
    assert_eq!(doc["model"]["path"].as_str(), Some("yolov8s.onnx"));
    assert_eq!(doc["model"]["labels"].as_str(), Some("labels.txt"));
    assert_eq!(doc["model"]["decoder"].as_str(), Some("boxes"));

    // The deepstream-app config names the same nvinfer config.
    let (ok, stderr) = import_in(d, &["deepstream_app_config.txt", "-o", "app/vigil.yml"]);
    assert!(ok, "{stderr}");
    assert!(
        !stderr.contains("deepstream_app_config.txt:"),
        "every group of it is known: {stderr}"
    );
    let doc = yaml(&d.join("app/vigil.yml"));
    assert_eq!(doc["model"]["path"].as_str(), Some("../yolov8s.onnx"));

    // And the imported file runs.
    let rec = recording_of("tests/goldens/frames/messi5_crop2.jpg", 2, 30, d);
    let out = common::vigil()
        .current_dir(d)
        .arg("replay")
        .arg(&rec)
        .args(["-o", "out.jsonl", "--config", "vigil.yml"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = std::fs::read_to_string(d.join("out.jsonl")).expect("output");
    assert_eq!(lines.lines().count(), 2, "{lines}");
}

#[test]
fn a_raw_ultralytics_export_behind_deepstream_yolos_parser_fails_the_import() {
    let dir = deepstream_yolo("nudenet_yolov8n_320n.onnx");
    let d = dir.path();
    edit(
        d,
        "config_infer_primary_yoloV8.txt",
        "symmetric-padding=1\n",
        "symmetric-padding=1\ninfer-dims=3;320;320\n",
    );
    let (ok, stderr) = import_in(d, &["deepstream_app_config.txt", "-o", "vigil.yml"]);
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains(
            "config_infer_primary_yoloV8.txt:21: parse-bbox-func-name=NvDsInferParseYolo: decoder `boxes` cannot read"
        ) && stderr.contains("[1, 22, 2100]"),
        "{stderr}"
    );
    assert!(!d.join("vigil.yml").exists(), "nothing written");
}
