//! End to end through the real dora runtime: `vigil import` and `vigil replay` as a user runs
//! them, on the committed sample recording and on footage the sample does not contain.

mod common;

use std::path::Path;

use common::{recording_of, root, vigil};

fn replay(recording: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let output = vigil()
        .current_dir(root())
        .arg("replay")
        .arg(recording)
        .arg("-o")
        .arg(out)
        .args(extra)
        .output()
        .expect("vigil runs");
    assert!(
        output.status.success(),
        "vigil replay failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
        .collect()
}

/// The replay output with values rounded (0.1 px, 0.01 score), one frame a line, for a
/// snapshot that other CPUs reproduce.
fn rounded(frames: &[serde_json::Value]) -> String {
    let r = |v: &serde_json::Value, k: f64| {
        format!("{}", (v.as_f64().unwrap_or(f64::NAN) * k).round() / k)
    };
    let b = |v: &serde_json::Value| {
        v.as_array()
            .map(|a| a.iter().map(|x| r(x, 10.0)).collect::<Vec<_>>().join(","))
            .unwrap_or_default()
    };
    frames
        .iter()
        .map(|f| {
            let dets: Vec<String> = f["detections"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    format!(
                        "{} {} [{}]",
                        d["label"].as_str().unwrap_or(""),
                        r(&d["score"], 100.0),
                        b(&d["box"])
                    )
                })
                .collect();
            let tracks: Vec<String> = f["tracks"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|t| format!("#{} [{}]", t["id"], b(&t["box"])))
                .collect();
            format!("{}: {} | {}", f["seq"], dets.join("; "), tracks.join("; "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn sample_replay_is_lossless_deterministic_and_matches_the_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = root().join("recordings/vtest-100.mcap");
    let (a, b) = (dir.path().join("a.jsonl"), dir.path().join("b.jsonl"));
    // One infer process, no standby.
    replay(&rec, &a, &["--infer-workers", "1", "--standby", "0"]);
    // The second names the CPU letterbox (what `auto` picks with the CPU provider), and runs
    // as configured: a worker per core, one process standing by.
    replay(&rec, &b, &["--set", "preprocess.device=cpu"]);
    let (bytes_a, bytes_b) = (std::fs::read(&a).expect("a"), std::fs::read(&b).expect("b"));
    assert_eq!(
        bytes_a, bytes_b,
        "two replays of one recording must write identical bytes"
    );
    // Frames dealt to two infer processes come back in order: the same bytes again.
    let c = dir.path().join("c.jsonl");
    replay(&rec, &c, &["--infer-workers", "2"]);
    assert_eq!(
        bytes_a,
        std::fs::read(&c).expect("c"),
        "the output does not depend on how many infer processes share the frames"
    );
    // The process at work dies on frame 40: the standby takes over, the lost frame comes
    // again (and is not faulted again): the same bytes.
    let d = dir.path().join("d.jsonl");
    replay(
        &rec,
        &d,
        &[
            "--infer-workers",
            "1",
            "--standby",
            "1",
            "--faults",
            "segv@40",
        ],
    );
    assert_eq!(
        bytes_a,
        std::fs::read(&d).expect("d"),
        "the output does not depend on a standby taking over"
    );
    let frames = lines(&a);
    let seqs: Vec<u64> = frames
        .iter()
        .map(|f| f["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(
        seqs,
        (0..100).collect::<Vec<_>>(),
        "one line per frame, in order"
    );
    // vtest.avi shows several pedestrians in every frame.
    let people = |f: &serde_json::Value| {
        f["detections"]
            .as_array()
            .map_or(0, |d| d.iter().filter(|d| d["label"] == "person").count())
    };
    assert!(
        frames.iter().all(|f| people(f) >= 3),
        "people found in every frame"
    );
    insta::assert_snapshot!("vtest_100", rounded(&frames));
}

/// ByteTrack through the real dataflow, on every second frame (the customer's interval) and
/// with the low-scored detections it uses: deterministic whatever the infer processes do,
/// track ids unchanged when the one at work dies, the skipped frames' tracks predicted and
/// marked, and a snapshot.
#[test]
fn bytetrack_replay_is_deterministic_and_matches_its_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = root().join("recordings/vtest-100.mcap");
    let set = [
        "--set",
        "tracker.kind=bytetrack",
        "--set",
        "postprocess.conf_threshold=0.1",
        "--set",
        "preprocess.interval=2",
        // CenterNet scores this footage's people 0.3–0.65: ByteTrack's thresholds to match.
        "--set",
        "tracker.bytetrack.high_threshold=0.4",
        "--set",
        "tracker.bytetrack.new_track_threshold=0.45",
    ];
    let run = |name: &str, extra: &[&str]| {
        let out = dir.path().join(name);
        let args: Vec<&str> = set.iter().chain(extra).copied().collect();
        replay(&rec, &out, &args);
        out
    };
    let a = run("a.jsonl", &["--infer-workers", "1", "--standby", "0"]);
    let b = run("b.jsonl", &["--infer-workers", "2"]);
    let c = run(
        "c.jsonl",
        &[
            "--infer-workers",
            "1",
            "--standby",
            "1",
            "--faults",
            "segv@40",
        ],
    );
    let bytes = std::fs::read(&a).expect("a");
    assert_eq!(
        bytes,
        std::fs::read(&b).expect("b"),
        "two processes: same bytes"
    );
    assert_eq!(
        bytes,
        std::fs::read(&c).expect("c"),
        "a death at frame 40: same bytes"
    );
    let frames = lines(&a);
    assert_eq!(frames.len(), 100);
    let status = |f: &serde_json::Value| f["status"].as_str().unwrap_or("").to_owned();
    assert_eq!(
        frames.iter().filter(|f| status(f) == "interval").count(),
        50,
        "every second frame is predicted"
    );
    // Skipped frames carry their tracks, moved on by the filter and marked coasting; the next
    // inferred frame continues the same ids.
    let ids = |f: &serde_json::Value| -> Vec<u64> {
        f["tracks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["id"].as_u64())
            .collect()
    };
    let mut continued = 0;
    for w in frames.windows(2) {
        if status(&w[1]) != "interval" {
            continue;
        }
        let tracks = w[1]["tracks"].as_array().expect("tracks");
        assert!(!tracks.is_empty(), "seq {}: tracks predicted", w[1]["seq"]);
        assert!(tracks.iter().all(|t| t["coasting"] == true), "marked");
        assert_eq!(ids(&w[0]), ids(&w[1]), "the tracks shown stay the same");
        continued += 1;
    }
    assert_eq!(continued, 50);
    // ByteTrack's second association matched tracks to detections below its high threshold
    // (0.4): they reached the tracker and kept tracks shown.
    let bx = |v: &serde_json::Value| -> [f64; 4] {
        let a: Vec<f64> = v
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(serde_json::Value::as_f64)
            .collect();
        [a[0], a[1], a[2], a[3]]
    };
    let mut second = 0;
    for f in frames.iter().filter(|f| status(f) == "inferred") {
        let dets = f["detections"].as_array().cloned().unwrap_or_default();
        for t in f["tracks"].as_array().into_iter().flatten() {
            let near: Vec<f64> = dets
                .iter()
                .filter(|d| {
                    d["class"] == t["class"]
                        && vigil_compare::iou(&bx(&d["box"]), &bx(&t["box"])) > 0.5
                })
                .filter_map(|d| d["score"].as_f64())
                .collect();
            if !near.is_empty() && near.iter().all(|&s| s < 0.4) {
                second += 1;
            }
        }
    }
    assert!(second > 0, "tracks continued by low-scored detections");
    insta::assert_snapshot!("vtest_100_bytetrack", rounded(&frames));
}

#[test]
fn import_then_replay_finds_the_person_in_unseen_footage() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = recording_of("tests/fixtures/messi5.jpg", 3, 5, dir.path());
    let info = vigil().arg("info").arg(&rec).output().expect("runs");
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.contains("frames:     3") && info.contains("548x342"),
        "{info}"
    );

    let jsonl = dir.path().join("out.jsonl");
    replay(&rec, &jsonl, &[]);
    let frames = lines(&jsonl);
    assert_eq!(frames.len(), 3);
    for f in &frames {
        let person = f["detections"]
            .as_array()
            .expect("detections")
            .iter()
            .find(|d| d["label"] == "person")
            .expect("a person");
        let b: Vec<f64> = person["box"]
            .as_array()
            .expect("box")
            .iter()
            .map(|v| v.as_f64().expect("num"))
            .collect();
        // The footballer runs through the middle of the 548×342 photo, most of its height tall.
        assert!(
            b[0] < 274.0 && b[2] > 274.0 && b[1] < 171.0 && b[3] > 171.0 && b[3] - b[1] > 150.0,
            "{b:?}"
        );
        assert!(
            b[0] >= 0.0 && b[1] >= 0.0 && b[2] <= 548.0 && b[3] <= 342.0,
            "clamped to the frame: {b:?}"
        );
    }
    // The same person keeps one track id across the frames.
    let ids: Vec<&serde_json::Value> = frames.iter().map(|f| &f["tracks"][0]["id"]).collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
}

#[test]
fn a_torn_recording_replays_every_complete_frame() {
    let dir = tempfile::tempdir().expect("tempdir");
    let full = std::fs::read(root().join("recordings/vtest-100.mcap")).expect("sample");
    let torn = dir.path().join("torn.mcap");
    std::fs::write(&torn, &full[..full.len() / 5]).expect("write");
    let info = vigil().arg("info").arg(&torn).output().expect("runs");
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(info.contains("torn:"), "{info}");
    let frames: usize = info
        .lines()
        .find_map(|l| l.strip_prefix("frames:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("frame count");
    assert!((15..25).contains(&frames), "{info}");
    let out = dir.path().join("torn.jsonl");
    replay(&torn, &out, &[]);
    assert_eq!(lines(&out).len(), frames);
}

/// Replays the sample with `yaml` as its vigil.yml (in `dir`, which the replay's work folder
/// and output go in too) and expects it to fail: returns stderr.
fn failing_replay_with_config(dir: &Path, yaml: &str) -> String {
    let cfg = dir.join("vigil.yml");
    std::fs::write(&cfg, yaml).expect("write");
    let out = vigil()
        .args(["replay", "recordings/vtest-100.mcap", "-o"])
        .arg(dir.join("o.jsonl"))
        .arg("--config")
        .arg(&cfg)
        .arg("--workdir")
        .arg(dir.join("work"))
        .current_dir(root())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{stderr}");
    stderr
}

#[test]
fn bad_config_is_an_error_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = root().join("models/centernet_mb3_coco.onnx");
    let yaml = format!(
        "model:\n  path: {}\npostprocess:\n  conf_treshold: 0.3\n",
        model.display()
    );
    let stderr = failing_replay_with_config(dir.path(), &yaml);
    assert!(
        stderr.contains("conf_treshold") && stderr.contains("line 4"),
        "{stderr}"
    );
}

#[test]
fn a_model_that_cannot_be_opened_fails_the_replay_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = "model:\n  path: missing.onnx\npreprocess: {net_w: 512, net_h: 512, layout: nhwc}\n";
    let stderr = failing_replay_with_config(dir.path(), yaml);
    assert!(stderr.contains("missing.onnx"), "{stderr}");
}

#[test]
fn a_gpu_provider_on_a_machine_without_a_gpu_fails_before_dora_starts() {
    // For machines without an NVIDIA driver (CI's): there `provider: cuda` cannot work, and
    // says so before any node starts (not as an infer node dying at its start). Where a GPU
    // is present there is nothing to refuse.
    if let Ok(n @ 1..) = vigil_gpu::devices() {
        eprintln!("{n} GPU(s) here: this test is for a machine without one");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = recording_of("tests/fixtures/messi5.jpg", 3, 30, dir.path());
    let out = vigil()
        .arg("replay")
        .arg(&rec)
        .arg("-o")
        .arg(dir.path().join("o.jsonl"))
        .arg("--workdir")
        .arg(dir.path().join("work"))
        .args(["--set", "model.provider=cuda"])
        .current_dir(root())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("model.provider cuda") && stderr.contains("libcuda.so"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("work/replay.yml").exists() && !dir.path().join("o.jsonl").exists(),
        "nothing started"
    );
    let check = vigil()
        .args(["check", "vigil.yml", "--set", "model.provider=tensorrt"])
        .current_dir(root())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(
        !check.status.success() && stderr.contains("model.provider tensorrt"),
        "{stderr}"
    );
}

#[test]
fn a_decoder_that_cannot_read_the_model_fails_before_dora_starts() {
    // DeepStream-Yolo's parser (`boxes`, [1, N, 6]) in front of a raw Ultralytics export.
    let dir = tempfile::tempdir().expect("tempdir");
    let model = root().join("models/nudenet_yolov8n_320n.onnx");
    let yaml = format!(
        "model:\n  path: {}\n  decoder: boxes\npreprocess: {{net_w: 320, net_h: 320}}\n",
        model.display()
    );
    let stderr = failing_replay_with_config(dir.path(), &yaml);
    assert!(
        stderr.contains("decoder `boxes` cannot read this model")
            && stderr.contains("[1, N, 6]")
            && stderr.contains("`output0` [?, 22, ?]"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("work/replay.yml").exists() && !dir.path().join("o.jsonl").exists(),
        "nothing started"
    );
    // `vigil check` says the same of the same file, and passes the project's own.
    let check = vigil()
        .arg("check")
        .arg(dir.path().join("vigil.yml"))
        .output()
        .expect("runs");
    assert!(!check.status.success());
    assert!(String::from_utf8_lossy(&check.stderr).contains("decoder `boxes`"));
    let ok = vigil()
        .args(["check", "vigil.yml"])
        .current_dir(root())
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        stdout.contains("512x512 nhwc") && stdout.contains("decoder:  boxes"),
        "{stdout}"
    );
}

#[test]
fn a_replay_in_which_no_frame_could_be_inferred_fails_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rec = recording_of("tests/fixtures/messi5.jpg", 3, 30, dir.path());
    let out = vigil()
        .args(["replay"])
        .arg(&rec)
        .arg("-o")
        .arg(dir.path().join("o.jsonl"))
        // Every frame's outputs turn to NaN: each is rejected, none inferred.
        .args(["--faults", "garbage@0,garbage@1,garbage@2"])
        .current_dir(root())
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("none of the 3 frames could be inferred"),
        "{stderr}"
    );
}

#[test]
fn a_bad_image_fails_the_import_naming_it_and_leaves_no_recording() {
    let dir = tempfile::tempdir().expect("tempdir");
    let images = dir.path().join("images");
    std::fs::create_dir_all(&images).expect("mkdir");
    std::fs::copy(
        root().join("tests/fixtures/messi5.jpg"),
        images.join("a.jpg"),
    )
    .expect("copy");
    std::fs::write(images.join("b.jpg"), b"\xff\xd8 not a jpeg").expect("write");
    let rec = dir.path().join("r.mcap");
    let out = vigil()
        .arg("import")
        .arg(&images)
        .arg("-o")
        .arg(&rec)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("b.jpg"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    assert_eq!(left, ["images"], "no recording, partial or whole");
}
