//! The fault test: a realtime replay (recorded timing, 30 s at 30 fps) with an `abort`, a
//! `segv`, a `hang` and a `sticky` device error injected into the infer processes at known
//! frames, plus one frame of NaN output, through the real dora runtime, with the device's hot
//! standby. Only infer may die: the preview must show every camera frame, at most one frame
//! per fault may go out without fresh detections (the one the process died on), the audit must
//! hold one restart row per fault with the right cause and a readable flight recording,
//! `/health` must have shown each process active in turn with a standby ready, and the
//! dataflow must end cleanly.

use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_record::{RecordedFrame, Recording, RecordingInfo, RecordingWriter};

/// The two tests replay in real time and measure frames lost to a fault: run side by side on
/// 2 cores, a detector restarting on every frame in one starves the standby of the other (a
/// hang then cost 3 frames, not 2). One at a time.
static REALTIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

const FPS: u64 = 30;
const FRAMES: u64 = 900;
const DEADLINE_MS: f64 = 500.0;
const BUDGET_MS: f64 = 1500.0;
const FAULTS: [(&str, u64, &str); 4] = [
    ("abort", 150, "SIGABRT"),
    ("segv", 300, "SIGSEGV"),
    ("hang", 450, "watchdog"),
    ("sticky", 600, "sticky device error"),
];
const GARBAGE_AT: u64 = 750;
/// Frames that may go out without fresh detections per fault: the one the process died on.
const WITHOUT_PER_FAULT: i64 = 1;
/// … per hang: the standby takes over on time (`infer.takeover_ms`), and on 2 busy cores it
/// can still be finishing a slow frame of its own when the hang comes (2 in 1 of 4 CI runs).
const WITHOUT_PER_HANG: i64 = 2;

/// A realtime replay of `rec` with `faults`, one infer process at work and one standing by
/// (vigil.yml), the monitor on `port`; `extra` arguments after.
fn realtime_replay(
    dir: &Path,
    rec: &Path,
    out: &Path,
    faults: &str,
    port: u16,
    extra: &[&str],
) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .current_dir(root())
        .arg("replay")
        .arg(rec)
        .arg("-o")
        .arg(out)
        .args(["--realtime", "--faults", faults])
        .args(["--infer-workers", "1"])
        .args(["--monitor-port", &port.to_string()])
        .args(extra)
        .arg("--workdir")
        .arg(dir.join("work"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("vigil runs")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One HTTP/1.0 GET of `/health` on the monitor: its JSON, if it answered.
fn health(port: u16) -> Option<serde_json::Value> {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    c.set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .ok()?;
    write!(c, "GET /health HTTP/1.0\r\n\r\n").ok()?;
    let mut text = String::new();
    c.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.split_once("\r\n\r\n")?.1).ok()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The committed sample's frames, looped and re-timed to 30 s at 30 fps.
fn thirty_seconds(path: &Path) {
    looped(path, FRAMES);
}

/// The committed sample's frames, looped and re-timed to `frames` at 30 fps.
fn looped(path: &Path, frames: u64) {
    let sample = Recording::open(&root().join("recordings/vtest-100.mcap")).expect("sample");
    let info = RecordingInfo {
        fps: FPS as f64,
        ..sample.info.clone()
    };
    let mut w = RecordingWriter::create(path, &info).expect("create");
    for i in 0..frames {
        let src = &sample.frames[(i as usize) % sample.frames.len()];
        w.write_frame(&RecordedFrame {
            seq: i as u32,
            timestamp_ns: i * 1_000_000_000 / FPS,
            jpeg: src.jpeg.clone(),
        })
        .expect("write");
    }
    w.finish().expect("finish");
}

#[derive(Debug)]
struct Row {
    cause: String,
    fault_seq: u64,
    restart_ms: f64,
    first_detection_ms: Option<f64>,
    frames_without: Option<i64>,
    flight: Option<String>,
}

#[test]
fn injected_faults_cost_no_video_and_leave_evidence() {
    let _one_at_a_time = REALTIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().expect("tmp");
    let rec = dir.path().join("thirty.mcap");
    thirty_seconds(&rec);
    let out = dir.path().join("out.jsonl");
    let faults: Vec<String> = FAULTS
        .iter()
        .map(|(kind, seq, _)| format!("{kind}@{seq}"))
        .chain([format!("garbage@{GARBAGE_AT}")])
        .collect();
    let port = free_port();
    let child = realtime_replay(
        dir.path(),
        &rec,
        &out,
        &faults.join(","),
        port,
        &[
            "--deadline-ms",
            &DEADLINE_MS.to_string(),
            // The customer's setting: inference on every 3rd frame.
            "--set",
            "preprocess.interval=3",
        ],
    );
    // What /health said while it ran: (the active process, a standby ready).
    let watcher = std::thread::spawn(move || {
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..900 {
            if let Some(h) = health(port) {
                let active = h["infer"].as_array().and_then(|ps| {
                    ps.iter()
                        .find(|p| p["role"] == "active")
                        .and_then(|p| p["node"].as_str().map(str::to_owned))
                });
                seen.insert((active, h["standby_ready"].as_bool()));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            if seen.len() > 8 {
                break;
            }
        }
        seen
    });
    let output = child.wait_with_output().expect("vigil runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the dataflow did not end cleanly: {stderr}"
    );

    let db = rusqlite::Connection::open(out.with_extension("audit.db")).expect("audit db");
    let (frames_in, shown, gaps, rejected): (i64, i64, i64, i64) = db
        .query_row(
            "SELECT frames_in, frames_shown, preview_gaps, frames_rejected FROM sessions",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("one session");
    let mut stmt = db
        .prepare(
            "SELECT cause, fault_seq, restart_ms, first_detection_ms, frames_without_detections, flight_recording FROM process_restarts ORDER BY id",
        )
        .expect("query");
    let rows: Vec<Row> = stmt
        .query_map([], |r| {
            Ok(Row {
                cause: r.get(0)?,
                fault_seq: r.get::<_, i64>(1)? as u64,
                restart_ms: r.get(2)?,
                first_detection_ms: r.get(3)?,
                frames_without: r.get(4)?,
                flight: r.get(5)?,
            })
        })
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows");

    eprintln!(
        "fault     frame  cause                 restart ms  first detection ms  frames w/o detections"
    );
    for (row, (kind, ..)) in rows.iter().zip(FAULTS) {
        eprintln!(
            "{kind:<9} {:>5}  {:<20}  {:>10.0}  {:>18.0}  {:>5}",
            row.fault_seq,
            row.cause,
            row.restart_ms,
            row.first_detection_ms.unwrap_or(f64::NAN),
            row.frames_without.unwrap_or(-1)
        );
    }
    eprintln!("frames in {frames_in}, shown {shown}, preview gaps {gaps}, rejected {rejected}");

    // The monitor sits beside the data path; dora does not deliver what a node was sent
    // before it had connected, which can cost it the very first frame.
    assert!(
        frames_in >= FRAMES as i64 - 2,
        "the monitor saw {frames_in} of {FRAMES} camera frames"
    );
    // The preview counts every frame it shows; its last report can be lost on the way like
    // any dora message, and the first frame can leave before it connected. What may not
    // happen is a gap: a frame it did not show while the detector was down.
    assert_eq!(gaps, 0, "the preview showed every frame after its first");
    assert!(
        shown >= FRAMES as i64 - 2,
        "the preview showed {shown} of {FRAMES} frames"
    );
    assert!(rejected >= 1, "the NaN output was rejected and counted");
    assert_eq!(
        rows.len(),
        FAULTS.len(),
        "one restart row per fault: {rows:?}"
    );
    let seen = watcher.join().expect("watcher");
    eprintln!("/health said (active, standby ready): {seen:?}");
    for node in ["infer_0", "infer_1"] {
        assert!(
            seen.contains(&(Some(node.to_owned()), Some(true))),
            "{node} active with a standby ready: {seen:?}"
        );
    }
    for (row, (kind, seq, cause)) in rows.iter().zip(FAULTS) {
        // On the planned frame, or the first the detector took after it (live pacing).
        assert_eq!(row.cause.as_str(), cause, "{kind}");
        let without = row
            .frames_without
            .unwrap_or_else(|| panic!("{kind}: detections never resumed"));
        let allowed = if kind == "hang" {
            WITHOUT_PER_HANG
        } else {
            WITHOUT_PER_FAULT
        };
        assert!(
            without <= allowed,
            "{kind}: {without} frames without fresh detections"
        );
        assert!(
            (seq..seq + FPS).contains(&row.fault_seq),
            "{kind}: planned at {seq}, happened at {}",
            row.fault_seq
        );
        let budget = if kind == "hang" {
            DEADLINE_MS + BUDGET_MS
        } else {
            BUDGET_MS
        };
        let back = row
            .first_detection_ms
            .unwrap_or_else(|| panic!("{kind}: detections never resumed"));
        assert!(back <= budget, "{kind}: detections back after {back} ms");
        let flight = PathBuf::from(row.flight.as_deref().expect("flight recording named"));
        let fr = Recording::open(&flight).expect("flight recording readable");
        assert!(
            fr.frames.iter().any(|f| u64::from(f.seq) == row.fault_seq),
            "{kind}: the flight recording holds the fault frame"
        );
        assert!(fr.frames.len() > 60, "{kind}: seconds around the fault");
    }
    let written = std::fs::read_to_string(&out).expect("output");
    let missing = written
        .lines()
        .filter(|l| l.contains("\"status\":\"missing\""))
        .count();
    let written = written.lines().count();
    eprintln!("results written: {written}, {missing} of them without detections (tracks coasting)");
    assert_eq!(written as u64, FRAMES, "one line per frame, none lost");
    assert!(
        missing > 0,
        "frames during the faults went out without detections"
    );

    // A flight recording is a normal recording: replaying it gives the detections around the
    // fault (the sample's pedestrians).
    let flight = PathBuf::from(rows[1].flight.as_deref().expect("named"));
    let frames = Recording::open(&flight).expect("readable").frames.len();
    let again = dir.path().join("flight.jsonl");
    let status = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .current_dir(root())
        .arg("replay")
        .arg(&flight)
        .arg("-o")
        .arg(&again)
        .status()
        .expect("vigil runs");
    assert!(status.success());
    let lines: Vec<String> = std::fs::read_to_string(&again)
        .expect("output")
        .lines()
        .map(str::to_owned)
        .collect();
    eprintln!(
        "flight recording {}: {frames} frames replayed",
        flight.display()
    );
    assert_eq!(lines.len(), frames, "one line per flight-recorded frame");
    let with_people = lines.iter().filter(|l| l.contains("\"person\"")).count();
    assert!(
        with_people * 10 >= frames * 9,
        "{with_people} of {frames} frames find people"
    );
}

/// A detector that dies on every frame it takes (a corrupt engine, a driver gone bad) must not
/// spin: with the defaults (5 deaths within 60 s) each infer process holds back 10 s after its
/// fifth death, `/health` says `degraded` and why, the audit has a `crash_loops` row, and the
/// camera and the preview go on showing every frame.
#[test]
fn a_detector_that_dies_on_every_frame_is_held_back_and_the_video_goes_on() {
    const LOOP_FRAMES: u64 = 600;
    let _one_at_a_time = REALTIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().expect("tmp");
    let rec = dir.path().join("twenty.mcap");
    looped(&rec, LOOP_FRAMES);
    let out = dir.path().join("out.jsonl");
    let port = free_port();
    let child = realtime_replay(dir.path(), &rec, &out, "segv@0..", port, &[]);
    let watcher = std::thread::spawn(move || {
        let mut reasons = std::collections::BTreeSet::new();
        for _ in 0..600 {
            if let Some(h) = health(port)
                && h["status"] == "degraded"
            {
                reasons.insert(h["reason"].as_str().unwrap_or_default().to_owned());
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
            if reasons.iter().any(|r| r.contains("held back")) {
                break;
            }
        }
        reasons
    });
    let output = child.wait_with_output().expect("vigil runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Every line is written; a run without a single detection is still a failed run.
    assert!(
        !output.status.success()
            && stderr.contains(&format!(
                "none of the {LOOP_FRAMES} frames could be inferred"
            )),
        "the replay must end, and fail saying no frame was inferred: {stderr}"
    );
    let reasons = watcher.join().expect("watcher");
    eprintln!("/health said degraded: {reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("5 deaths within 60 s (the last: SIGSEGV)") && r.contains("10 s")),
        "{reasons:?}"
    );
    let db = rusqlite::Connection::open(out.with_extension("audit.db")).expect("audit db");
    let loops: Vec<(String, i64, i64, i64, String)> = db
        .prepare("SELECT node, deaths, window_s, pause_ms, cause FROM crash_loops ORDER BY id")
        .expect("query")
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("rows");
    let restarts: i64 = db
        .query_row("SELECT COUNT(*) FROM process_restarts", [], |r| r.get(0))
        .expect("count");
    let (frames_in, shown, gaps): (i64, i64, i64) = db
        .query_row(
            "SELECT frames_in, frames_shown, preview_gaps FROM sessions",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("one session");
    eprintln!(
        "crash loops {loops:?}; {restarts} restarts recorded; frames in {frames_in}, shown {shown}, gaps {gaps}"
    );
    assert!(!loops.is_empty(), "the breaker tripped");
    for (node, deaths, window, pause, cause) in &loops {
        assert!(node.starts_with("infer_"), "{node}");
        assert_eq!((*deaths, *window, cause.as_str()), (5, 60, "SIGSEGV"));
        assert!(*pause == 10_000 || *pause == 20_000, "{pause}");
    }
    // Held back (5 deaths, 10 s; 5 more, 20 s), each process dies about ten times in 20 s,
    // not on every frame it could have taken (some 25 each without the breaker).
    assert!((1..=30).contains(&restarts), "{restarts} restarts in 20 s");
    assert_eq!(gaps, 0, "the preview showed every frame after its first");
    assert!(shown >= LOOP_FRAMES as i64 - 2, "shown {shown}");
    let written = std::fs::read_to_string(&out)
        .expect("output")
        .lines()
        .count();
    assert_eq!(written as u64, LOOP_FRAMES, "one line per frame, none lost");
}
