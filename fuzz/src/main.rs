//! vigil's fuzz harness: every parser that sees outside data, one libFuzzer target each,
//! chosen by `VIGIL_FUZZ_TARGET` (`ci/fuzz` runs them, seeds the corpora from real files and
//! keeps what crashes under `target/fuzz/artifacts/<target>/`).
//!
//! - `jpeg`: a camera frame through the preprocessor (decode, letterbox; decode alone for the
//!   GPU path);
//! - `mcap`: a recording (torn, truncated, garbage, empty frames, huge declared sizes);
//! - `config`: a vigil.yml, and `--set` overrides;
//! - `deepstream`: an nvinfer / deepstream-app config through the importer;
//! - `msg`: the Arrow messages between nodes (parameters and payload built from the bytes);
//! - `output`: an output file (JSON lines) as `vigil test` and `vigil diff` read and compare it;
//! - `mot`: MOTChallenge text as `vigil track-eval` reads it, as ground truth and as a result,
//!   scored against each other;
//! - `track`: detections (any floats: NaN, infinities, huge boxes) through both trackers, with
//!   frames not inferred between; tracks stay within the cap, ids unique.
//!
//! A target may return errors — that is what bad input must give — but never panic, abort or
//! run out of memory.
#![no_main]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use arrow::array::{ArrayRef, Float32Array, UInt8Array};
use vigil_msg::{MetadataParameters, Parameter};

fn target() -> &'static str {
    static T: OnceLock<String> = OnceLock::new();
    T.get_or_init(|| std::env::var("VIGIL_FUZZ_TARGET").unwrap_or_default())
}

/// A scratch folder of this process, for the parsers that read files.
fn scratch() -> &'static PathBuf {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("vigil-fuzz-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&d);
        d
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    match target() {
        "jpeg" => jpeg(data),
        "mcap" => mcap(data),
        "config" => config(data),
        "deepstream" => deepstream(data),
        "msg" => msg(data),
        "output" => output(data),
        "mot" => mot(data),
        "track" => track(data),
        other => panic!(
            "VIGIL_FUZZ_TARGET={other:?}: jpeg, mcap, config, deepstream, msg, output, mot or track"
        ),
    }
});

fn jpeg(data: &[u8]) {
    thread_local! {
        static PRE: std::cell::RefCell<Option<vigil_vision::Preprocessor>> =
            std::cell::RefCell::new(vigil_vision::Preprocessor::new(
                vigil_vision::PreprocessConfig::plain_resize(64, 48),
            ).ok());
    }
    PRE.with(|p| {
        if let Some(pre) = p.borrow_mut().as_mut() {
            let mut out = Vec::new();
            let _ = pre.run_jpeg(data, &mut out);
            let _ = pre.decode_jpeg(data);
        }
    });
}

fn mcap(data: &[u8]) {
    if let Ok(rec) = vigil_record::Recording::parse(std::path::Path::new("fuzz.mcap"), data) {
        let _ = rec.duration_ns();
        for f in &rec.frames {
            let _ = f.jpeg.len();
        }
    }
}

fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first line, if it looks like one, is a `--set`; the rest the file.
    let (set, yaml) = match text.split_once('\n') {
        Some((first, rest)) if first.contains('=') && !first.contains(':') => (Some(first), rest),
        _ => (None, text),
    };
    let path = scratch().join("vigil.yml");
    if std::fs::write(&path, yaml).is_err() {
        return;
    }
    let overrides = set
        .and_then(|s| s.parse::<vigil_config::Override>().ok())
        .into_iter()
        .collect();
    let source = vigil_config::Source {
        file: Some(path),
        overrides,
    };
    if let Ok(c) = source.load() {
        let _ = c.to_yaml();
    }
}

fn deepstream(data: &[u8]) {
    let dir = scratch();
    let path = dir.join("config_infer.txt");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let _ = vigil_deepstream::import(&path, None, dir);
}

/// Bytes → (parameters, payload): a few `key = value` pairs over the keys the decoders read,
/// then the payload as one of the array types they take.
fn msg(data: &[u8]) {
    use vigil_msg::keys;
    const KEYS: &[&str] = &[
        keys::SEQ,
        keys::INDEX,
        keys::TIMESTAMP_NS,
        keys::WIDTH,
        keys::HEIGHT,
        keys::STATUS,
        keys::BEHIND,
        keys::CAPTURED_NS,
        keys::DETECT_US,
        keys::RECEIVED,
        keys::SHAPE,
        keys::LAYOUT,
        keys::SCALE,
        keys::PAD,
        keys::NET_SIZE,
        keys::PREPROCESS_US,
        keys::INFER_US,
        keys::EVENT,
        keys::PID,
        keys::FAULT_CAUSE,
        keys::FAULT_SEQ,
        keys::EXIT_CODE,
        keys::SIGNAL,
        keys::REJECTED,
        keys::SHOWN,
        keys::DEATHS,
        keys::WINDOW_S,
        keys::PAUSE_MS,
        keys::ROLES,
        keys::WHY,
        keys::OUTAGE_MS,
        keys::ATTEMPTS,
    ];
    let mut b = data;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, rest) = b.split_at_checked(n)?;
        b = rest;
        Some(head)
    };
    let mut p = MetadataParameters::new();
    let Some(&[pairs]) = take(1) else { return };
    for _ in 0..pairs % 16 {
        let Some(&[k, kind]) = take(2) else { break };
        let key = KEYS[k as usize % KEYS.len()];
        let value = match kind % 5 {
            0 => match take(8) {
                Some(v) => Parameter::Integer(i64::from_le_bytes(v.try_into().unwrap_or([0; 8]))),
                None => break,
            },
            1 => match take(8) {
                Some(v) => Parameter::Float(f64::from_le_bytes(v.try_into().unwrap_or([0; 8]))),
                None => break,
            },
            2 => {
                let Some(&[n]) = take(1) else { break };
                match take(usize::from(n % 32)) {
                    Some(s) => Parameter::String(String::from_utf8_lossy(s).into_owned()),
                    None => break,
                }
            }
            3 => {
                let Some(&[n]) = take(1) else { break };
                let Some(v) = take(usize::from(n % 8) * 8) else {
                    break;
                };
                Parameter::ListInt(
                    v.chunks_exact(8)
                        .map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                        .collect(),
                )
            }
            _ => {
                let Some(&[n]) = take(1) else { break };
                let Some(v) = take(usize::from(n % 8) * 8) else {
                    break;
                };
                Parameter::ListFloat(
                    v.chunks_exact(8)
                        .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                        .collect(),
                )
            }
        };
        p.insert(key.into(), value);
    }
    let Some(&[array_kind]) = take(1) else { return };
    let rest = b.to_vec();
    let array: ArrayRef = match array_kind % 3 {
        0 => Arc::new(UInt8Array::from(rest)),
        1 => Arc::new(Float32Array::from(
            rest.chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap_or([0; 4])))
                .collect::<Vec<_>>(),
        )),
        // A detections payload of the right shape, its values (NaN, inf, anything) from the
        // bytes; the parameters above win over the encoded ones.
        _ => {
            let detections = rest
                .chunks_exact(24)
                .map(|c| {
                    let f = |i: usize| f32::from_le_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
                    vigil_detect::Detection {
                        class: u32::from_le_bytes([c[0], c[1], c[2], c[3]]),
                        score: f(4),
                        bbox: vigil_detect::BBox {
                            x1: f(8),
                            y1: f(12),
                            x2: f(16),
                            y2: f(20),
                        },
                    }
                })
                .collect();
            let header = vigil_msg::FrameHeader {
                seq: 1,
                index: 1,
                timestamp_ns: 1,
                width: 640,
                height: 480,
            };
            let msg = vigil_msg::DetectionsMsg {
                detections,
                ..vigil_msg::DetectionsMsg::not_inferred(
                    header,
                    vigil_msg::FrameStatus::Inferred,
                    vigil_msg::Latency::default(),
                )
            };
            let (encoded, a) = vigil_msg::Encode::encode(&msg);
            for (k, v) in encoded {
                p.entry(k).or_insert(v);
            }
            a
        }
    };
    let _ = vigil_msg::decode_header(&p);
    let _ = vigil_msg::decode_frame(&p, array.as_ref());
    let _ = vigil_msg::decode_tensor(&p, array.as_ref());
    let _ = vigil_msg::decode_detections(&p, array.as_ref());
    let _ = vigil_msg::decode_result(&p, array.as_ref());
    let _ = vigil_msg::decode_ready(&p);
    let _ = vigil_msg::decode_status(&p);
    let _ = vigil_msg::decode_roles(&p);
    let _ = vigil_msg::decode_shown(&p);
}

fn output(data: &[u8]) {
    use vigil_compare::{Output, Profile, Thresholds, compare};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(out) = Output::parse(std::path::Path::new("fuzz.jsonl"), text) else {
        return;
    };
    let th = Thresholds {
        default: Some(0.25),
        ..Thresholds::default()
    };
    // Against itself, against nothing, and against itself with every box shifted.
    let mut shifted = out.clone();
    for line in shifted.frames.values_mut() {
        for d in &mut line.detections {
            d.bbox[0] += 1.0;
            d.score -= 0.01;
        }
    }
    for other in [&out, &Output::default(), &shifted] {
        for p in [Profile::Exact, Profile::CrossBackend] {
            let r = compare(&out, other, p, &th);
            let _ = (r.passed(p), r.summary(), r.describe_diffs(3));
        }
    }
}

fn mot(data: &[u8]) {
    // Ground truth, then the result after the first NUL (or the same text).
    let (gt, ts) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, data),
    };
    let gt = vigil_mot::parse("gt.txt", gt, vigil_mot::GROUND_TRUTH_MIN_CONFIDENCE);
    let ts = vigil_mot::parse("ts.txt", ts, vigil_mot::RESULT_MIN_CONFIDENCE);
    if let (Ok(gt), Ok(ts)) = (gt, ts) {
        // Bounded work: the assignment is cubic in the boxes of a frame.
        if gt.rows().len() + ts.rows().len() <= 4000 {
            let m = vigil_mot::evaluate(&gt, &ts, vigil_mot::MAX_DISTANCE);
            let _ = vigil_mot::to_text(ts.rows());
            assert!(m.num_matches + m.num_switches + m.num_misses == m.num_objects);
        }
    }
}

fn track(data: &[u8]) {
    use vigil_detect::{BBox, Detection};
    use vigil_track::{Algorithm, ByteTrackConfig, IouConfig, Tracker, TrackerConfig};
    let cap = 8;
    let mut trackers = [
        Tracker::new(TrackerConfig {
            algorithm: Algorithm::Iou(IouConfig {
                max_targets: cap,
                probation_age: 1,
                max_new_overlap: 0.5,
                ..IouConfig::default()
            }),
            max_coast: 5,
        }),
        Tracker::new(TrackerConfig {
            algorithm: Algorithm::ByteTrack(ByteTrackConfig {
                max_targets: cap,
                ..ByteTrackConfig::default()
            }),
            max_coast: 5,
        }),
    ];
    // A frame: one byte (count, and whether it is inferred), then 18 bytes a detection.
    let mut rest = data;
    while let Some((&head, tail)) = rest.split_first() {
        let n = usize::from(head & 0x0f);
        let inferred = head & 0x80 == 0;
        let take = (n * 18).min(tail.len());
        let (chunk, next) = tail.split_at(take);
        rest = next;
        let f = |b: &[u8]| f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let dets: Vec<Detection> = chunk
            .chunks_exact(18)
            .map(|c| Detection {
                class: u32::from(c[0] % 3),
                score: f32::from(c[1]) / 255.0,
                bbox: BBox::new(f(&c[2..]), f(&c[6..]), f(&c[10..]), f(&c[14..])),
            })
            .collect();
        for t in &mut trackers {
            let shown = if inferred {
                t.update(&dets)
            } else {
                t.predict()
            };
            assert!(t.len() <= cap && shown.len() <= cap);
            let mut ids: Vec<u64> = shown.iter().map(|t| t.id).collect();
            ids.dedup();
            assert_eq!(ids.len(), shown.len(), "ids ordered and unique");
        }
    }
}
