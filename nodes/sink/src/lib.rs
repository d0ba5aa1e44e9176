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
use vigil_msg::{FrameHeader, ResultMsg, decode_result, encode_ack};
use vigil_track::Track;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub out: PathBuf,
    pub labels: Option<PathBuf>,
}

impl Config {
    /// The output file (a graph fact) and the model's labels.
    pub fn new(c: &vigil_config::Config, l: &impl Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            out: l.parse_required(topology::env::OUT)?,
            labels: c.model.labels.clone(),
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
    /// The frame's detections never came (the detector was down): tracks are predictions.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    missing: bool,
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
/// `missing` and `coasting` appear only when true.
#[must_use]
pub fn json_line(
    seq: u64,
    missing: bool,
    detections: &[Detection],
    tracks: &[Track],
    labels: &[String],
) -> String {
    let line = Line {
        seq,
        missing,
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

pub fn run(
    cfg: &Config,
    labels: &[String],
    mut node: DoraNode,
    mut events: EventStream,
) -> eyre::Result<()> {
    let file =
        File::create(&cfg.out).wrap_err_with(|| format!("creating {}", cfg.out.display()))?;
    let mut out = BufWriter::new(file);
    let mut waiting: BTreeMap<u64, ResultMsg> = BTreeMap::new();
    let mut last_written: Option<FrameHeader> = None;
    let (mut written, mut bad) = (0u64, 0u64);
    let ack = DataId::from(port::ACK.to_owned());
    let send_ack = |node: &mut DoraNode, h: &FrameHeader| {
        let (params, array) = encode_ack(h);
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
            port::TICK => {
                if let Some(h) = &last_written {
                    send_ack(&mut node, h);
                }
            }
            port::RESULT => match decode_result(&metadata.parameters, data.as_array().as_ref()) {
                Ok(r) => {
                    if last_written.is_none_or(|l| r.header.index > l.index) {
                        waiting.insert(r.header.index, r);
                    }
                    let mut next = last_written.map_or(0, |l| l.index + 1);
                    while let Some(r) = waiting.remove(&next) {
                        writeln!(
                            out,
                            "{}",
                            json_line(r.header.seq, r.missing, &r.detections, &r.tracks, labels)
                        )
                        .wrap_err("sink: writing")?;
                        written += 1;
                        last_written = Some(r.header);
                        next += 1;
                    }
                    if let Some(h) = &last_written {
                        send_ack(&mut node, h);
                    }
                }
                Err(e) => {
                    bad += 1;
                    tracing::error!(error = %e, bad, "sink: malformed result");
                }
            },
            _ => {}
        }
    }
    for r in waiting.values() {
        writeln!(
            out,
            "{}",
            json_line(r.header.seq, r.missing, &r.detections, &r.tracks, labels)
        )
        .wrap_err("sink: writing")?;
        written += 1;
    }
    out.flush()
        .wrap_err_with(|| format!("flushing {}", cfg.out.display()))?;
    tracing::info!(written, bad, "sink finished");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_detect::BBox;

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
        let line = json_line(7, false, &[d], &[t], &["person".to_owned()]);
        assert_eq!(
            line,
            r#"{"seq":7,"detections":[{"class":0,"label":"person","score":0.9123,"box":[1.23,2.0,30.0,40.5]}],"tracks":[{"id":3,"class":0,"box":[1.23,2.0,30.0,40.5]}]}"#
        );
        let coasting = Track { lost: 4, ..t };
        let line = json_line(8, true, &[], &[coasting], &[]);
        assert_eq!(
            line,
            r#"{"seq":8,"missing":true,"detections":[],"tracks":[{"id":3,"class":0,"box":[1.23,2.0,30.0,40.5],"coasting":true}]}"#
        );
    }
}
