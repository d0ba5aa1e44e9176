//! The track node: puts detections back into frame order by the frames' gap-free index, runs
//! the IOU tracker, and emits each frame's `result` (its detections and tracks) in order. A
//! frame that arrives again after its result went out (a replay resending a frame whose result
//! was lost on the way) gets the same result sent again, from a short cache.
//!
//! Every input whose id starts with `detections` is merged (`detections`, or `detections_0` …
//! `detections_{N-1}` for N infer processes splitting frames between them). Because the merge
//! is by frame index, the output bytes do not depend on how many infer processes there are or
//! how their results interleave. `VIGIL_ORDER=strict` (replay) waits for every frame;
//! `live` (default) gives a missing frame up once a few later ones are waiting.

use dora_node_api::dora_core::config::DataId;
use dora_node_api::{DoraArray, DoraNode, Event, EventStream};
use eyre::WrapErr;
use std::collections::VecDeque;
use vigil_msg::config::{ConfigError, Lookup};

use vigil_msg::{DetectionsMsg, ResultMsg, decode_detections};
use vigil_track::{Reorder, Tracker, TrackerConfig};

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub tracker: TrackerConfig,
    /// Later frames allowed to wait behind a missing one before it is given up; `None` waits.
    pub hold: Option<usize>,
}

/// Frames that may wait behind a missing one in live mode.
const LIVE_HOLD: usize = 3;

impl Config {
    pub fn from_lookup(l: &impl Lookup) -> Result<Self, ConfigError> {
        let d = TrackerConfig::default();
        let iou: f32 = l.parse_or("VIGIL_TRACK_IOU", d.iou_threshold)?;
        if !(0.0..=1.0).contains(&iou) {
            return Err(ConfigError::new(
                "VIGIL_TRACK_IOU",
                &iou.to_string(),
                "expected 0..=1",
            ));
        }
        let hold = match l.get("VIGIL_ORDER").unwrap_or_default().as_str() {
            "" | "live" => Some(LIVE_HOLD),
            "strict" => None,
            other => {
                return Err(ConfigError::new(
                    "VIGIL_ORDER",
                    other,
                    "expected strict or live",
                ));
            }
        };
        Ok(Self {
            tracker: TrackerConfig {
                iou_threshold: iou,
                max_age: l.parse_or("VIGIL_MAX_AGE", d.max_age)?,
            },
            hold,
        })
    }
}

pub fn main() -> eyre::Result<()> {
    let cfg = Config::from_lookup(&vigil_msg::config::env_lookup())?;
    let (node, events) = DoraNode::init_from_env().wrap_err("track: connecting to dora")?;
    run(&cfg, node, events)
}

/// Results kept for frames that may arrive again.
const RESEND_CACHE: usize = 64;

pub fn run(cfg: &Config, mut node: DoraNode, mut events: EventStream) -> eyre::Result<()> {
    let mut tracker = Tracker::new(cfg.tracker);
    let mut reorder: Reorder<DetectionsMsg> = Reorder::new(cfg.hold);
    let mut sent: VecDeque<ResultMsg> = VecDeque::with_capacity(RESEND_CACHE);
    let output = DataId::from("result".to_owned());
    let (mut bad, mut duplicates) = (0u64, 0u64);
    let emit = |node: &mut DoraNode, msg: &ResultMsg| {
        let (params, array) = msg.encode();
        node.send_output(output.clone(), params, DoraArray::from(array))
            .wrap_err("track: sending result")
    };
    while let Some(event) = events.recv() {
        let Event::Input { id, metadata, data } = event else {
            continue;
        };
        if !id.as_str().starts_with("detections") {
            continue;
        }
        match decode_detections(&metadata.parameters, data.as_array().as_ref()) {
            Ok(d) => {
                let index = d.header.index;
                if !reorder.push(index, d) {
                    duplicates += 1;
                    if let Some(again) = sent.iter().find(|r| r.header.index == index) {
                        emit(&mut node, again)?;
                    }
                }
            }
            Err(e) => {
                bad += 1;
                tracing::error!(error = %e, bad, "track: dropping malformed detections message");
            }
        }
        while let Some((_, dets)) = reorder.pop() {
            let result = step(&mut tracker, dets);
            emit(&mut node, &result)?;
            if sent.len() == RESEND_CACHE {
                sent.pop_front();
            }
            sent.push_back(result);
        }
    }
    // The stream has ended: whatever still waits behind a missing frame goes out in order.
    let rest: Vec<DetectionsMsg> = reorder.drain().map(|(_, d)| d).collect();
    for dets in rest {
        emit(&mut node, &step(&mut tracker, dets))?;
    }
    tracing::info!(
        bad,
        duplicates,
        skipped = reorder.skipped(),
        "track finished"
    );
    Ok(())
}

fn step(tracker: &mut Tracker, dets: DetectionsMsg) -> ResultMsg {
    let tracks = tracker.update(&dets.detections, dets.inferred).to_vec();
    ResultMsg {
        header: dets.header,
        inferred: dets.inferred,
        detections: dets.detections,
        tracks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_bounds() {
        let c = Config::from_lookup(&|_: &str| None).expect("defaults");
        assert_eq!(
            (c.hold, c.tracker),
            (Some(LIVE_HOLD), TrackerConfig::default())
        );
        let strict = |k: &str| (k == "VIGIL_ORDER").then(|| "strict".to_owned());
        assert_eq!(Config::from_lookup(&strict).expect("strict").hold, None);
        let bad = |k: &str| (k == "VIGIL_TRACK_IOU").then(|| "2".to_owned());
        assert!(Config::from_lookup(&bad).is_err());
    }
}
