//! `vigil test`, `vigil diff` and cancelling, as a user meets them: the real binary, the real
//! dataflow.

#[allow(dead_code)] // each test binary uses its own part of it
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{root, vigil};

fn run(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let out = vigil().args(args).current_dir(cwd).output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A new user's loop: accept a recording's detections, see them pass, change the confidence
/// threshold and see the test fail with a readable diff and JUnit XML.
#[test]
fn accept_then_a_changed_threshold_fails_with_a_readable_diff_and_junit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifest = dir.path().join("vigil-tests.yml");
    std::fs::write(
        &manifest,
        format!(
            "tests:\n  - name: sample\n    recording: {}\n    config: {}\n",
            root().join("recordings/vtest-100.mcap").display(),
            root().join("vigil.yml").display()
        ),
    )
    .expect("write");
    let m = manifest.to_str().expect("utf-8");
    let (code, stdout, stderr) = run(&["test", m], dir.path());
    assert_eq!(code, 1, "no expectation yet: {stdout}{stderr}");
    assert!(stdout.contains("vigil test --accept"), "{stdout}");

    let (code, stdout, stderr) = run(&["test", m, "--accept"], dir.path());
    assert_eq!(code, 0, "{stdout}{stderr}");
    let expected = dir.path().join("expected/sample.jsonl");
    assert_eq!(
        std::fs::read_to_string(&expected)
            .expect("written")
            .lines()
            .count(),
        100
    );

    let junit = dir.path().join("junit.xml");
    let (code, stdout, stderr) = run(
        &["test", m, "--junit", junit.to_str().expect("utf-8")],
        dir.path(),
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("ok     sample (exact"), "{stdout}");
    assert!(stdout.contains("100 frames, 100 identical"), "{stdout}");

    let (code, stdout, stderr) = run(
        &[
            "test",
            m,
            "--set",
            "postprocess.conf_threshold=0.45",
            "--junit",
            junit.to_str().expect("utf-8"),
        ],
        dir.path(),
    );
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("FAILED sample (exact"), "{stdout}");
    assert!(stdout.contains("frame 0:\n    - missing  "), "{stdout}");
    assert!(stdout.contains("0 passed, 1 failed, 0 errors"), "{stdout}");
    let xml = std::fs::read_to_string(&junit).expect("junit");
    assert!(
        xml.contains(r#"<testsuites name="vigil test" tests="1" failures="1" errors="0""#),
        "{xml}"
    );
    assert!(xml.contains("<failure message=\"100 frames, "), "{xml}");
    assert!(xml.contains("- missing  "), "{xml}");

    // `vigil diff` says the same of the two outputs.
    let actual = dir.path().join("target/vigil-test/sample.jsonl");
    let (code, stdout, _) = run(
        &[
            "diff",
            expected.to_str().expect("utf-8"),
            actual.to_str().expect("utf-8"),
            "--tolerance",
            "cross-backend",
        ],
        dir.path(),
    );
    assert_eq!(code, 1, "{stdout}");
    assert!(
        stdout.starts_with("DIFFERENT (cross-backend): 100 frames"),
        "{stdout}"
    );
    let (code, stdout, _) = run(
        &[
            "diff",
            expected.to_str().expect("utf-8"),
            expected.to_str().expect("utf-8"),
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{stdout}");
    assert!(
        stdout.starts_with("same (exact): 100 frames, 100 identical"),
        "{stdout}"
    );
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

/// Every process below `root`, from /proc.
fn descendants(root: u32) -> Vec<u32> {
    let pairs: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(Result::ok)
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(pairs.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found.remove(0);
    found
}

/// CI cancels a job with SIGTERM (and a person with Ctrl-C): the whole dataflow stops, the
/// command exits non-zero and says so.
#[test]
fn sigterm_or_sigint_mid_replay_stops_every_process_of_the_dataflow() {
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out.jsonl");
        let mut child = vigil()
            .arg("replay")
            .arg(root().join("recordings/vtest-100.mcap"))
            .arg("-o")
            .arg(&out)
            .args(["--realtime", "--fps", "10"])
            .current_dir(root())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("starts");
        // Mid-replay: lines are being written (10 s of frames at 10 fps).
        let start = Instant::now();
        while std::fs::read_to_string(&out).map_or(0, |s| s.lines().count()) < 5 {
            assert!(
                start.elapsed() < Duration::from_mins(1),
                "the replay wrote nothing"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let procs = descendants(child.id());
        assert!(
            procs.len() >= 7,
            "dora and the nodes run below vigil: {procs:?}"
        );
        let kill = std::process::Command::new("kill")
            .args([format!("-{signal}"), child.id().to_string()])
            .status()
            .expect("kill");
        assert!(kill.success());
        let start = Instant::now();
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "SIG{signal}: vigil did not exit"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
            .expect("stderr");
        assert_eq!(status.code(), Some(code), "SIG{signal}: {stderr}");
        assert!(
            stderr.contains(&format!("cancelled by SIG{signal}")),
            "{stderr}"
        );
        let left: Vec<u32> = procs.into_iter().filter(|&p| alive(p)).collect();
        assert!(
            left.is_empty(),
            "SIG{signal}: processes of the dataflow left running: {left:?}"
        );
    }
}

/// `vigil concat` makes the long recordings the memory benchmark replays: frame numbers and
/// times go on from piece to piece, the frames are the same bytes.
#[test]
fn concat_numbers_and_times_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("x3.mcap");
    let sample = root().join("recordings/vtest-100.mcap");
    let (code, stdout, stderr) = run(
        &[
            "concat",
            sample.to_str().expect("utf-8"),
            "--times",
            "3",
            "-o",
            out.to_str().expect("utf-8"),
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("300 frames"), "{stdout}");
    let a = vigil_record::Recording::open(&sample).expect("sample");
    let b = vigil_record::Recording::open(&out).expect("joined");
    assert_eq!(b.frames.len(), 300);
    assert!(!b.torn);
    let period = a.duration_ns() + 100_000_000; // 10 fps: one frame interval between pieces
    for (i, f) in b.frames.iter().enumerate() {
        let (k, o) = (i / 100, &a.frames[i % 100]);
        assert_eq!(u64::from(f.seq), u64::from(o.seq) + 100 * k as u64);
        assert_eq!(f.timestamp_ns, o.timestamp_ns + period * k as u64);
        assert_eq!(f.jpeg, o.jpeg);
    }
    let (code, _, stderr) = run(&["concat", "-o", out.to_str().expect("utf-8")], dir.path());
    assert_ne!(code, 0);
    assert!(stderr.contains("at least one recording"), "{stderr}");
    // Writing over an input would empty it before it is read: refused, the input intact.
    let before = std::fs::read(&out).expect("joined");
    let (code, _, stderr) = run(
        &[
            "concat",
            out.to_str().expect("utf-8"),
            "-o",
            out.to_str().expect("utf-8"),
        ],
        dir.path(),
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("is also an input"), "{stderr}");
    assert_eq!(std::fs::read(&out).expect("still there"), before);
}

fn python(script: &str, args: &[&Path]) -> (bool, String) {
    let out = std::process::Command::new(root().join(".venv/bin/python"))
        .arg(root().join("tests/python").join(script))
        .args(args)
        .output()
        .expect("the setup step installs .venv");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A replay's annotated recording opens in the official MCAP reader with Foxglove's protobuf
/// schemas (boxes stamped like their frames, track ids on the labels), and its Parquet export
/// opens in DuckDB with every detection and track, typed.
#[test]
fn annotated_mcap_and_parquet_open_in_the_official_readers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (out, ann, table) = (
        dir.path().join("out.jsonl"),
        dir.path().join("annotated.mcap"),
        dir.path().join("detections.parquet"),
    );
    let sample = root().join("recordings/vtest-100.mcap");
    let s = |p: &Path| p.to_str().expect("utf-8").to_owned();
    let (code, _, stderr) = run(
        &[
            "replay",
            &s(&sample),
            "-o",
            &s(&out),
            "--annotate",
            &s(&ann),
        ],
        &root(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("annotated.mcap: 100 frames, "), "{stderr}");
    let (ok, report) = python("check_annotated.py", &[&ann, &out]);
    assert!(ok, "{report}");
    assert!(
        report.contains(r#""frames": 100, "annotated": 100"#),
        "{report}"
    );

    let (code, stdout, stderr) = run(
        &[
            "export",
            &s(&out),
            "--recording",
            &s(&sample),
            "-o",
            &s(&table),
        ],
        &root(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("100 frames"), "{stdout}");
    let (ok, report) = python("check_export.py", &[&table, &out]);
    assert!(ok, "{report}");
    assert!(report.contains(r#""frame": 100"#), "{report}");

    // The annotated copy is a recording too: it replays to the same lines.
    let again = dir.path().join("again.jsonl");
    let (code, _, stderr) = run(&["replay", &s(&ann), "-o", &s(&again)], &root());
    assert_eq!(code, 0, "{stderr}");
    let (again, out) = (
        std::fs::read_to_string(&again).expect("again"),
        std::fs::read_to_string(&out).expect("out"),
    );
    assert!(again == out, "the annotated copy replays differently");
}

/// `vigil plot` draws a real output as one self-contained page; a bad line is an error
/// naming the file and the line.
#[test]
fn plot_draws_a_page_and_names_a_bad_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("report.html");
    let expected = root().join("recordings/expected/vtest-100.jsonl");
    let (code, stdout, stderr) = run(
        &[
            "plot",
            expected.to_str().expect("utf-8"),
            "--fps",
            "10",
            "-o",
            page.to_str().expect("utf-8"),
        ],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("100 frames"), "{stdout}");
    let html = std::fs::read_to_string(&page).expect("page");
    assert!(
        html.starts_with("<!DOCTYPE html>") && html.contains("<svg"),
        "{html:.200}"
    );
    for words in [
        "Detections per class",
        "Track lifetimes",
        "person: 674 detections",
    ] {
        assert!(html.contains(words), "{words}");
    }
    // Self-contained: nothing fetched when it opens (the SVG namespace is a name, not a fetch).
    assert!(!html.contains("src=") && !html.contains("href=\"http") && !html.contains("@import"));
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"seq\":0,\"status\":\"inferred\",\"detections\":[],\"tracks\":[]}\n{oops\n",
    )
    .expect("write");
    let (code, _, stderr) = run(
        &[
            "plot",
            bad.to_str().expect("utf-8"),
            "-o",
            page.to_str().expect("utf-8"),
        ],
        dir.path(),
    );
    assert_ne!(code, 0);
    assert!(stderr.contains("bad.jsonl:2"), "{stderr}");
}
