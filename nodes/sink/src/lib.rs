//! The sink node of a replay: writes one JSON line per frame (detections and tracks, source
//! pixels), strictly in frame-index order with no gaps, and acknowledges to the replay node,
//! which keeps lock-step replay lossless. Acks are cumulative (every frame up to this index is
//! written) and repeated on the `tick` timer, so a lost ack costs nothing; a frame lost on the
//! way is never acknowledged, so the replay sends it again. It reads until its input closes.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use dora_node_api::dora_core::config::DataId;
use dora_node_api::{DoraArray, DoraNode, Event, EventStream};
use eyre::WrapErr;
use serde::Serialize;
use vigil_config::topology::{self, port};
use vigil_detect::Detection;
use vigil_msg::config::{ConfigError, Lookup};
use vigil_msg::{FrameHeader, FrameStatus, ResultMsg, decode_result, encode_ack};
use vigil_track::Track;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub out: PathBuf,
    /// Where to write the run's summary ([`Stats`]), if anywhere.
    pub stats: Option<PathBuf>,
    pub labels: Option<PathBuf>,
}

impl Config {
    /// The output files (graph facts) and the model's labels.
    pub fn new(c: &vigil_config::Config, l: &impl Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            out: l.parse_required(topology::env::OUT)?,
            stats: l.get(topology::env::STATS).map(PathBuf::from),
            labels: c.model.labels.clone(),
        })
    }
}

/// A run's summary: lines written, frames by status, and the latency from capture to
/// detections of the inferred frames (wall clock, for people: not in the lines).
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Stats {
    pub lines: u64,
    /// Frames by status (`inferred`, `interval`, `busy`, `missing`, `bad_frame`, `failed`).
    pub status: BTreeMap<String, u64>,
    /// Capture → detections, ms: p50, p99, max over the inferred frames that carry it.
    pub detect_ms: Option<Percentiles>,
    /// Preprocessing and inference of the inferred frames, ms.
    pub preprocess_ms: Option<Percentiles>,
    pub infer_ms: Option<Percentiles>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// Nearest-rank percentiles of `values` (ms); `None` when empty.
    #[must_use]
    pub fn of(mut values: Vec<f64>) -> Option<Self> {
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let rank = |q: f64| values[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
        (n > 0).then(|| Self {
            count: n as u64,
            p50: rank(0.50),
            p99: rank(0.99),
            max: values[n - 1],
        })
    }
}

/// Class names, one a line; class ids index into it.
pub fn read_labels(path: &Path) -> eyre::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .wrap_err_with(|| format!("reading labels {}", path.display()))?;
    Ok(text.lines().map(|l| l.trim().to_owned()).collect())
}

#[derive(Serialize)]
struct Line<'a> {
    seq: u64,
    /// Whether the frame was inferred and, if not, why; tracks of a frame not inferred are
    /// predictions.
    status: &'static str,
    detections: Vec<DetJson<'a>>,
    tracks: Vec<TrackJson>,
}

#[derive(Serialize)]
struct DetJson<'a> {
    class: u32,
    label: &'a str,
    score: f64,
    #[serde(rename = "box")]
    bbox: [f64; 4],
}

#[derive(Serialize)]
struct TrackJson {
    id: u64,
    class: u32,
    #[serde(rename = "box")]
    bbox: [f64; 4],
    /// Carried on without a detection this frame.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    coasting: bool,
}

fn round(v: f32, places: i32) -> f64 {
    let k = 10f64.powi(places);
    (f64::from(v) * k).round() / k
}

fn box_json(b: &vigil_detect::BBox) -> [f64; 4] {
    [
        round(b.x1, 2),
        round(b.y1, 2),
        round(b.x2, 2),
        round(b.y2, 2),
    ]
}

/// One frame as a JSON line (without the newline). Scores to 4 places, pixels to 2;
/// `coasting` appears only when true.
#[must_use]
pub fn json_line(
    seq: u64,
    status: FrameStatus,
    detections: &[Detection],
    tracks: &[Track],
    labels: &[String],
) -> String {
    let line = Line {
        seq,
        status: status.as_str(),
        detections: detections
            .iter()
            .map(|d| DetJson {
                class: d.class,
                label: labels.get(d.class as usize).map_or("", String::as_str),
                score: round(d.score, 4),
                bbox: box_json(&d.bbox),
            })
            .collect(),
        tracks: tracks
            .iter()
            .map(|t| TrackJson {
                id: t.id,
                class: t.class,
                bbox: box_json(&t.bbox),
                coasting: t.coasting(),
            })
            .collect(),
    };
    serde_json::to_string(&line).unwrap_or_default()
}

pub fn main() -> eyre::Result<()> {
    let cfg = Config::new(&vigil_config::from_env()?, &vigil_msg::config::env_lookup())?;
    let labels = cfg
        .labels
        .as_deref()
        .map(read_labels)
        .transpose()?
        .unwrap_or_default();
    let (node, events) = DoraNode::init_from_env().wrap_err("sink: connecting to dora")?;
    run(&cfg, &labels, node, events)
}

/// The sink apart from dora: results in any order (duplicates too), JSON lines out strictly
/// by frame index, and what to acknowledge.
pub struct Lines<'a, W> {
    out: W,
    labels: &'a [String],
    waiting: BTreeMap<u64, ResultMsg>,
    last_written: Option<FrameHeader>,
    written: u64,
    status: [u64; FrameStatus::ALL.len()],
    /// Per inferred frame: capture → detections, preprocessing, inference (ms).
    times: [Vec<f64>; 3],
}

impl<'a, W: Write> Lines<'a, W> {
    pub fn new(out: W, labels: &'a [String]) -> Self {
        Self {
            out,
            labels,
            waiting: BTreeMap::new(),
            last_written: None,
            written: 0,
            status: [0; FrameStatus::ALL.len()],
            times: Default::default(),
        }
    }

    /// What was written so far.
    #[must_use]
    pub fn stats(&self) -> Stats {
        Stats {
            lines: self.written,
            status: FrameStatus::ALL
                .iter()
                .zip(self.status)
                .map(|(s, n)| (s.as_str().to_owned(), n))
                .collect(),
            detect_ms: Percentiles::of(self.times[0].clone()),
            preprocess_ms: Percentiles::of(self.times[1].clone()),
            infer_ms: Percentiles::of(self.times[2].clone()),
        }
    }

    /// The last frame written: every frame up to it is in the file (what the replay node is
    /// acknowledged).
    #[must_use]
    pub fn last_written(&self) -> Option<FrameHeader> {
        self.last_written
    }

    fn write(&mut self, r: &ResultMsg) -> std::io::Result<()> {
        let line = json_line(
            r.header.seq,
            r.status,
            &r.detections,
            &r.tracks,
            self.labels,
        );
        writeln!(self.out, "{line}")?;
        self.written += 1;
        self.status[r.status as usize] += 1;
        let l = r.latency;
        for (times, us) in self
            .times
            .iter_mut()
            .zip([l.detect_us, l.preprocess_us, l.infer_us])
        {
            if us > 0 && r.inferred() {
                times.push(f64::from(us) / 1e3);
            }
        }
        Ok(())
    }

    /// Takes one result and writes every line now contiguous.
    pub fn push(&mut self, r: ResultMsg) -> std::io::Result<()> {
        if self.last_written.is_none_or(|l| r.header.index > l.index) {
            self.waiting.insert(r.header.index, r);
        }
        let mut next = self.last_written.map_or(0, |l| l.index + 1);
        while let Some(r) = self.waiting.remove(&next) {
            self.write(&r)?;
            self.last_written = Some(r.header);
            next += 1;
        }
        Ok(())
    }

    /// The stream has ended: what still waits behind a gap is written in order too. Returns
    /// the writer and the summary.
    pub fn finish(mut self) -> std::io::Result<(W, Stats)> {
        for r in std::mem::take(&mut self.waiting).into_values() {
            self.write(&r)?;
        }
        self.out.flush()?;
        let stats = self.stats();
        Ok((self.out, stats))
    }
}

pub fn run(
    cfg: &Config,
    labels: &[String],
    mut node: DoraNode,
    mut events: EventStream,
) -> eyre::Result<()> {
    let file =
        File::create(&cfg.out).wrap_err_with(|| format!("creating {}", cfg.out.display()))?;
    let mut lines = Lines::new(BufWriter::new(file), labels);
    let mut bad = 0u64;
    let ack = DataId::from(port::ACK.to_owned());
    let mut send_ack = |h: Option<FrameHeader>| {
        let Some(h) = h else { return };
        let (params, array) = encode_ack(&h);
        // The replay node may already have finished; a failed ack is not an error.
        if let Err(e) = node.send_output(ack.clone(), params, DoraArray::from(array)) {
            tracing::debug!(error = %e, "sink: ack not delivered");
        }
    };
    while let Some(event) = events.recv() {
        let (id, metadata, data) = match event {
            Event::Input { id, metadata, data } => (id, metadata, data),
            Event::InputClosed { id } if id.as_str() == port::RESULT => break,
            _ => continue,
        };
        match id.as_str() {
            port::TICK => send_ack(lines.last_written()),
            port::RESULT => match decode_result(&metadata.parameters, data.as_array().as_ref()) {
                Ok(r) => {
                    lines.push(r).wrap_err("sink: writing")?;
                    send_ack(lines.last_written());
                }
                Err(e) => {
                    bad += 1;
                    tracing::error!(error = %e, bad, "sink: malformed result");
                }
            },
            _ => {}
        }
    }
    let (_, stats) = lines
        .finish()
        .wrap_err_with(|| format!("writing {}", cfg.out.display()))?;
    if let Some(path) = &cfg.stats {
        std::fs::write(path, serde_json::to_string_pretty(&stats)?)
            .wrap_err_with(|| format!("writing {}", path.display()))?;
    }
    tracing::info!(written = stats.lines, bad, "sink finished");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_detect::BBox;

    fn result(index: u64) -> ResultMsg {
        ResultMsg {
            header: FrameHeader {
                seq: index + 100,
                index,
                timestamp_ns: index,
                width: 10,
                height: 10,
            },
            status: FrameStatus::Inferred,
            detections: Vec::new(),
            tracks: Vec::new(),
            latency: vigil_msg::Latency {
                detect_us: 1000 * (index as u32 + 1),
                ..vigil_msg::Latency::default()
            },
        }
    }

    #[test]
    fn lines_go_out_in_frame_order_once_each_and_the_ack_follows_the_file() {
        let mut lines = Lines::new(Vec::new(), &[]);
        lines.push(result(1)).expect("push");
        assert_eq!(lines.last_written(), None, "frame 0 is not in yet");
        lines.push(result(0)).expect("push");
        assert_eq!(lines.last_written().map(|h| h.index), Some(1));
        lines.push(result(1)).expect("a resent duplicate");
        lines.push(result(3)).expect("push");
        assert_eq!(lines.last_written().map(|h| h.index), Some(1));
        let (bytes, stats) = lines.finish().expect("finish");
        let text = String::from_utf8(bytes).expect("utf8");
        let seqs: Vec<&str> = text.lines().map(|l| &l[7..10]).collect();
        assert_eq!(seqs, ["100", "101", "103"], "{text}");
        assert_eq!((stats.lines, stats.status["inferred"]), (3, 3));
        let ms = stats.detect_ms.expect("measured");
        assert_eq!((ms.count, ms.p50, ms.max), (3, 2.0, 4.0));
    }

    #[test]
    fn line_format_matches_the_documented_shape() {
        let b = BBox::new(1.234_56, 2.0, 30.0, 40.5);
        let d = Detection {
            class: 0,
            score: 0.912_345,
            bbox: b,
        };
        let t = Track {
            id: 3,
            class: 0,
            score: 0.9,
            bbox: b,
            hits: 1,
            misses: 0,
            lost: 0,
        };
        let line = json_line(7, FrameStatus::Inferred, &[d], &[t], &["person".to_owned()]);
        assert_eq!(
            line,
            r#"{"seq":7,"status":"inferred","detections":[{"class":0,"label":"person","score":0.9123,"box":[1.23,2.0,30.0,40.5]}],"tracks":[{"id":3,"class":0,"box":[1.23,2.0,30.0,40.5]}]}"#
        );
        let coasting = Track { lost: 4, ..t };
        let line = json_line(8, FrameStatus::Busy, &[], &[coasting], &[]);
        assert_eq!(
            line,
            r#"{"seq":8,"status":"busy","detections":[],"tracks":[{"id":3,"class":0,"box":[1.23,2.0,30.0,40.5],"coasting":true}]}"#
        );
    }
}
