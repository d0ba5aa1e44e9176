//! The track node: puts detections back into frame order by the frames' gap-free index, runs
//! the tracker vigil.yml chooses (ByteTrack or nvtracker-style IOU), and emits each frame's `result` (its detections and tracks) in order. A
//! frame that arrives again after its result went out (a replay resending a frame whose result
//! was lost on the way: in strict order its detections come again, live the camera frame
//! itself) gets the same result sent again, from a short cache.
//!
//! Every input whose id starts with `detections` is merged (`detections`, or `detections_0` …
//! `detections_{N-1}` for N infer processes splitting frames between them). Because the merge
//! is by frame index, the output bytes do not depend on how many infer processes there are or
//! how their results interleave. In `strict` order (lock-step replay) it waits for every frame.
//!
//! The preprocessor's `skipped` input says, for each frame it did not send to the detector, why
//! (interval, busy, bad frame, detector down): such a frame goes out as soon as its turn comes,
//! with its tracks predicted by the tracker's motion model and marked coasting. A `busy` frame behind a
//! frame whose detections never came was waiting on a dead detector: it goes out `missing`.
//!
//! `live` (default) also takes the camera's `frame` input and never waits on the detector for
//! long: a frame whose detections have not come once a frame `tracker.coast_after_ms` newer was
//! seen (or the detector answered a few later ones) goes out as `missing`, its tracks predicted.
//! So the output keeps its pace while infer is down or restarting. A frame never seen at all
//! goes out `missing` in its place: one result per frame index, no gaps.

use dora_node_api::dora_core::config::DataId;
use dora_node_api::{DoraArray, DoraNode, Event, EventStream};
use eyre::WrapErr;
use std::collections::VecDeque;
use vigil_config::topology::{self, Order, port};
use vigil_msg::config::{ConfigError, Lookup};

use vigil_config::TrackerKind;
use vigil_msg::{
    DetectionsMsg, Encode, FrameHeader, FrameStatus, Latency, ResultMsg, decode_detections,
};
use vigil_track::{
    Algorithm, ByteTrackConfig, IouConfig, LiveOrder, Released, Reorder, Tracker, TrackerConfig,
};

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub tracker: TrackerConfig,
    /// Later frames allowed to wait behind a missing one before it is given up; `None` waits.
    pub hold: Option<usize>,
    /// Live mode: how much newer (frame time) a frame must be before an older one whose
    /// detections have not come goes out without them.
    pub coast_after_ns: u64,
}

/// The tracker the `tracker` section asks for.
#[must_use]
pub fn tracker_config(t: &vigil_config::Tracker) -> TrackerConfig {
    let algorithm = match t.kind {
        TrackerKind::Iou => Algorithm::Iou(IouConfig {
            iou_threshold: t.iou_threshold.get(),
            max_shadow_age: t.max_age,
            probation_age: t.probation_age,
            early_termination_age: t.early_termination_age,
            max_new_overlap: t.new_target_overlap.get(),
            min_confidence: t.min_confidence.get(),
            class_match: t.class_match,
            max_targets: t.max_targets,
        }),
        TrackerKind::ByteTrack => {
            let b = &t.bytetrack;
            Algorithm::ByteTrack(ByteTrackConfig {
                high_threshold: b.high_threshold.get(),
                low_threshold: b.low_threshold.get().max(t.min_confidence.get()),
                new_track_threshold: b.new_track_threshold.get(),
                match_threshold: b.match_threshold.get(),
                class_match: t.class_match,
                max_targets: t.max_targets,
                track_buffer: b.track_buffer,
                ..ByteTrackConfig::default()
            })
        }
    };
    TrackerConfig {
        algorithm,
        max_coast: t.max_coast,
    }
}

/// Later frames the detector may answer before a missing one is given up, in live mode.
const LIVE_HOLD: usize = 3;

impl Config {
    /// The `tracker` section, released in `order` (a graph fact).
    #[must_use]
    pub fn new(t: &vigil_config::Tracker, order: Order) -> Self {
        Self {
            tracker: tracker_config(t),
            hold: match order {
                Order::Live => Some(LIVE_HOLD),
                Order::Strict => None,
            },
            coast_after_ns: t.coast_after_ms.saturating_mul(1_000_000),
        }
    }

    /// The order this graph asks for (`VIGIL_ORDER`; live when unset).
    pub fn order(l: &impl Lookup) -> Result<Order, ConfigError> {
        l.parse_or(topology::env::ORDER, Order::Live)
    }
}

pub fn main() -> eyre::Result<()> {
    let cfg = Config::new(
        &vigil_config::from_env()?.tracker,
        Config::order(&vigil_msg::config::env_lookup())?,
    );
    let (node, events) = DoraNode::init_from_env().wrap_err("track: connecting to dora")?;
    run(&cfg, node, events)
}

/// Results kept for frames that may arrive again (a replay resends a frame 3 s after it went
/// without an acknowledgement: 256 frames is 4 s at 60 fps). A frame sent again after its
/// result left the cache gets a `missing` result without tracks, so a replay always ends.
const RESEND_CACHE: usize = 256;

/// Frames given up on (their detections never came) remembered, to tell a `busy` frame
/// behind one of them that the detector was down.
const GIVEN_UP: usize = 64;

/// The frame order in force: strict reorder by index, or live with coasting.
enum Release {
    Strict(Reorder<DetectionsMsg>),
    Live(LiveOrder<FrameHeader, DetectionsMsg>),
}

impl Release {
    /// Takes one message; returns false for a duplicate or late one.
    fn push(&mut self, id: &str, header: FrameHeader, dets: Option<DetectionsMsg>) -> bool {
        match (self, dets) {
            (Self::Strict(r), Some(d)) => r.push(header.index, d),
            (Self::Strict(_), None) => true,
            (Self::Live(l), None) => l.frame(header.index, header.timestamp_ns, header),
            (Self::Live(l), Some(d)) => {
                let answered = matches!(d.status, FrameStatus::Inferred | FrameStatus::Failed);
                let ok = l.fill(header.index, header.timestamp_ns, d, answered);
                if !ok {
                    tracing::debug!(id, index = header.index, "track: detections came late");
                }
                ok
            }
        }
    }

    /// The next frame to go out: its header and detections (`None`: they never came).
    fn pop(&mut self) -> Option<(FrameHeader, Option<DetectionsMsg>)> {
        match self {
            Self::Strict(r) => r.pop().map(|(_, d)| (d.header, Some(d))),
            Self::Live(l) => l.pop().map(released),
        }
    }

    fn drain(&mut self) -> Vec<(FrameHeader, Option<DetectionsMsg>)> {
        match self {
            Self::Strict(r) => r.drain().map(|(_, d)| (d.header, Some(d))).collect(),
            Self::Live(l) => l.drain().into_iter().map(released).collect(),
        }
    }
}

/// A live-order slot as the header to emit and the detections, if they came. An index never
/// seen has only its index (its header is made up when it goes out: [`TrackStage::step`]).
fn released(r: Released<FrameHeader, DetectionsMsg>) -> (FrameHeader, Option<DetectionsMsg>) {
    match (r.item, r.frame) {
        (Some(d), _) => (d.header, Some(d)),
        (None, Some(h)) => (h, None),
        (None, None) => (unseen(r.index), None),
    }
}

/// The header of a frame index never seen: no size, no time (0), its seq filled in later.
fn unseen(index: u64) -> FrameHeader {
    FrameHeader {
        seq: index,
        index,
        timestamp_ns: 0,
        width: 0,
        height: 0,
    }
}

/// The track stage apart from dora: messages in, results out, in frame order. A frame whose
/// result already went out and arrives again gets the same result again, from a short cache.
pub struct TrackStage {
    tracker: Tracker,
    order: Release,
    sent: VecDeque<ResultMsg>,
    given_up: VecDeque<u64>,
    /// The header of the last result out.
    last: Option<FrameHeader>,
    duplicates: u64,
}

impl TrackStage {
    #[must_use]
    pub fn new(cfg: &Config) -> Self {
        Self {
            tracker: Tracker::new(cfg.tracker),
            order: match cfg.hold {
                None => Release::Strict(Reorder::new(None)),
                Some(hold) => Release::Live(LiveOrder::new(cfg.coast_after_ns, hold)),
            },
            sent: VecDeque::with_capacity(RESEND_CACHE),
            given_up: VecDeque::with_capacity(GIVEN_UP),
            last: None,
            duplicates: 0,
        }
    }

    /// One input — a frame's detections (`dets`), or a camera frame (`None`); `emit` gets
    /// the results now due, in frame order.
    pub fn push<E>(
        &mut self,
        id: &str,
        header: FrameHeader,
        dets: Option<DetectionsMsg>,
        mut emit: impl FnMut(&ResultMsg) -> Result<(), E>,
    ) -> Result<(), E> {
        // What came again: in strict order a frame's detections (the replay resent the frame),
        // live the camera frame itself (late answers are not news to anyone).
        let resent = match self.order {
            Release::Strict(_) => dets.is_some(),
            Release::Live(_) => dets.is_none(),
        };
        if !self.order.push(id, header, dets) {
            self.duplicates += 1;
            // A frame still waiting for an earlier one goes out once, in order, with what
            // came first; answering its resend before then would put a `missing` line in its
            // place (a replay resends frames unacknowledged for 3 s, as at a slow start-up).
            let released = self.last.is_some_and(|l| header.index <= l.index);
            if resent && released {
                match self.sent.iter().find(|r| r.header.index == header.index) {
                    Some(again) => emit(again)?,
                    None => emit(&ResultMsg {
                        header,
                        status: FrameStatus::Missing,
                        detections: Vec::new(),
                        tracks: Vec::new(),
                        latency: Latency::default(),
                    })?,
                }
            }
        }
        while let Some((header, dets)) = self.order.pop() {
            let result = self.step(header, dets);
            emit(&result)?;
            if self.sent.len() == RESEND_CACHE {
                self.sent.pop_front();
            }
            self.sent.push_back(result);
        }
        Ok(())
    }

    /// One frame through the tracker: matched on its detections if it was inferred, else
    /// predicted; a `busy` frame behind a frame given up on becomes `missing`.
    fn step(&mut self, mut header: FrameHeader, dets: Option<DetectionsMsg>) -> ResultMsg {
        if header == unseen(header.index)
            && let Some(last) = self.last
        {
            // Sequence numbers run with the index unless the source skipped some: the best
            // guess for a frame never seen.
            header.seq = last.seq + (header.index - last.index);
        }
        self.last = Some(header);
        let Some(d) = dets else {
            if self.given_up.len() == GIVEN_UP {
                self.given_up.pop_front();
            }
            self.given_up.push_back(header.index);
            return ResultMsg {
                header,
                status: FrameStatus::Missing,
                detections: Vec::new(),
                tracks: self.tracker.predict(),
                latency: Latency::default(),
            };
        };
        let status = match (d.status, d.behind) {
            (FrameStatus::Busy, Some(b)) if self.given_up.contains(&b) => FrameStatus::Missing,
            (s, _) => s,
        };
        let tracks = if status == FrameStatus::Inferred {
            self.tracker.update(&d.detections)
        } else {
            self.tracker.predict()
        };
        ResultMsg {
            header,
            status,
            tracks,
            detections: d.detections,
            latency: d.latency,
        }
    }

    /// The stream has ended: whatever still waits goes out, in order.
    pub fn finish(&mut self) -> Vec<ResultMsg> {
        let waiting = self.order.drain();
        let results = waiting
            .into_iter()
            .map(|(header, dets)| self.step(header, dets))
            .collect();
        let (skipped, missing, late) = match &self.order {
            Release::Strict(r) => (r.skipped(), 0, 0),
            Release::Live(l) => (0, l.missing(), l.late()),
        };
        tracing::info!(
            duplicates = self.duplicates,
            skipped,
            missing,
            late,
            "track finished"
        );
        results
    }
}

pub fn run(cfg: &Config, mut node: DoraNode, mut events: EventStream) -> eyre::Result<()> {
    let mut stage = TrackStage::new(cfg);
    let output = DataId::from(port::RESULT.to_owned());
    let mut bad = 0u64;
    let mut emit = |msg: &ResultMsg| -> eyre::Result<()> {
        let (params, array) = msg.encode();
        node.send_output(output.clone(), params, DoraArray::from(array))
            .wrap_err("track: sending result")
    };
    while let Some(event) = events.recv() {
        let Event::Input { id, metadata, data } = event else {
            continue;
        };
        let array = data.as_array();
        let decoded = if id.as_str().starts_with(port::DETECTIONS) || id.as_str() == port::SKIPPED {
            decode_detections(&metadata.parameters, array.as_ref()).map(|mut d| {
                // Capture → detections, for people (the monitor's histogram, `vigil bench`).
                if d.inferred() && d.latency.captured_unix_ns > 0 {
                    let ns = vigil_msg::unix_now_ns().saturating_sub(d.latency.captured_unix_ns);
                    d.latency.detect_us = u32::try_from(ns / 1000).unwrap_or(u32::MAX).max(1);
                }
                (d.header, Some(d))
            })
        } else if id.as_str() == port::FRAME {
            vigil_msg::decode_header(&metadata.parameters).map(|h| (h, None))
        } else {
            continue;
        };
        match decoded {
            Ok((header, dets)) => stage.push(id.as_str(), header, dets, &mut emit)?,
            Err(e) => {
                bad += 1;
                tracing::error!(input = id.as_str(), error = %e, bad, "track: dropping malformed message");
            }
        }
    }
    stage.finish().iter().try_for_each(emit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(index: u64) -> FrameHeader {
        FrameHeader {
            seq: index,
            index,
            timestamp_ns: index * 33_333_333,
            width: 100,
            height: 100,
        }
    }

    fn dets(index: u64, x: f32) -> DetectionsMsg {
        DetectionsMsg {
            header: header(index),
            status: FrameStatus::Inferred,
            behind: None,
            detections: vec![vigil_detect::Detection {
                class: 0,
                score: 0.9,
                bbox: vigil_detect::BBox::new(x, 10.0, x + 20.0, 40.0),
            }],
            latency: Latency::default(),
        }
    }

    fn indices(results: &[ResultMsg]) -> Vec<u64> {
        results.iter().map(|r| r.header.index).collect()
    }

    /// The results one input makes due.
    fn push(
        stage: &mut TrackStage,
        id: &str,
        index: u64,
        dets: Option<DetectionsMsg>,
    ) -> Vec<ResultMsg> {
        let mut out = Vec::new();
        stage
            .push(id, header(index), dets, |r| {
                out.push(r.clone());
                Ok::<(), ()>(())
            })
            .expect("collects");
        out
    }

    #[test]
    fn strict_order_waits_reorders_and_answers_a_resend_with_the_same_result() {
        let t = vigil_config::Tracker::default();
        let mut stage = TrackStage::new(&Config::new(&t, Order::Strict));
        assert!(push(&mut stage, "detections_1", 1, Some(dets(1, 12.0))).is_empty());
        let out = push(&mut stage, "detections_0", 0, Some(dets(0, 10.0)));
        assert_eq!(indices(&out), [0, 1]);
        assert_eq!(out[0].tracks.len(), 1);
        assert_eq!(
            out[0].tracks[0].id, out[1].tracks[0].id,
            "one object, one track"
        );
        // Frame 0 sent again (its result was lost on the way): the same result again.
        let again = push(&mut stage, "detections_0", 0, Some(dets(0, 10.0)));
        assert_eq!(again, out[..1]);
        // Camera frames do not pace a replay.
        assert!(push(&mut stage, "frame", 2, None).is_empty());
        assert!(stage.finish().is_empty());
    }

    /// Found replaying under load: the replay resent frames 0–3 while the detectors were still
    /// loading, and frame 3's second copy came while frame 3 waited for frame 2; it went out
    /// `missing`, in the real result's place.
    #[test]
    fn a_resend_of_a_frame_still_waiting_in_order_is_not_answered_before_it() {
        let t = vigil_config::Tracker::default();
        let mut stage = TrackStage::new(&Config::new(&t, Order::Strict));
        assert!(push(&mut stage, "detections_1", 1, Some(dets(1, 12.0))).is_empty());
        assert!(
            push(&mut stage, "detections_0", 1, Some(dets(1, 12.0))).is_empty(),
            "frame 1 waits for frame 0: its resend is not news"
        );
        let out = push(&mut stage, "detections_0", 0, Some(dets(0, 10.0)));
        assert_eq!(indices(&out), [0, 1]);
        assert!(out.iter().all(|r| r.status == FrameStatus::Inferred));
        assert_eq!(out[1].detections.len(), 1);
    }

    #[test]
    fn live_order_sends_a_frame_out_missing_once_the_detector_is_too_late() {
        let t = vigil_config::Tracker::default();
        let mut stage = TrackStage::new(&Config::new(&t, Order::Live));
        assert_eq!(
            indices(&push(&mut stage, "frame", 0, None)),
            Vec::<u64>::new()
        );
        assert_eq!(
            indices(&push(&mut stage, "detections", 0, Some(dets(0, 10.0)))),
            [0]
        );
        // Frames 1.. come, their detections never do: once a frame 250 ms newer is seen (or
        // a few later ones wait), frame 1 goes out missing with its track predicted.
        let mut out = Vec::new();
        for i in 1..=9 {
            out.extend(push(&mut stage, "frame", i, None));
        }
        assert!(!out.is_empty());
        assert_eq!(out[0].header.index, 1);
        assert_eq!(out[0].status, FrameStatus::Missing);
        assert_eq!(out[0].tracks.len(), 1, "the track coasts");
        assert!(out[0].tracks[0].coasting());
    }

    fn skipped(index: u64, status: FrameStatus, behind: Option<u64>) -> DetectionsMsg {
        DetectionsMsg {
            behind,
            ..DetectionsMsg::not_inferred(header(index), status, Latency::default())
        }
    }

    #[test]
    fn skipped_frames_are_predicted_and_busy_behind_a_lost_frame_is_missing() {
        // The IOU tracker's constant velocity puts predictions at exact positions.
        let t = vigil_config::Tracker {
            kind: TrackerKind::Iou,
            ..vigil_config::Tracker::default()
        };
        let mut stage = TrackStage::new(&Config::new(&t, Order::Live));
        let mut out = Vec::new();
        for i in 0..=1 {
            push(&mut stage, "frame", i, None);
            out.extend(push(
                &mut stage,
                "detections",
                i,
                Some(dets(i, 10.0 + 2.0 * i as f32)),
            ));
        }
        // Frame 2 skipped by interval: its track moves on at 2 px a frame, marked.
        push(&mut stage, "frame", 2, None);
        out.extend(push(
            &mut stage,
            port::SKIPPED,
            2,
            Some(skipped(2, FrameStatus::Interval, None)),
        ));
        assert_eq!(indices(&out), [0, 1, 2]);
        assert_eq!(out[2].status, FrameStatus::Interval);
        assert!(out[2].tracks[0].coasting());
        assert!(
            (out[2].tracks[0].bbox.x1 - 14.0).abs() < 1e-3,
            "{:?}",
            out[2].tracks[0].bbox
        );
        // Frame 3 goes to the detector, which dies; 4.. are busy behind it.
        out.clear();
        push(&mut stage, "frame", 3, None);
        for i in 4..=12 {
            out.extend(push(&mut stage, "frame", i, None));
            out.extend(push(
                &mut stage,
                port::SKIPPED,
                i,
                Some(skipped(i, FrameStatus::Busy, Some(3))),
            ));
        }
        assert_eq!(out[0].header.index, 3);
        assert_eq!(out[0].status, FrameStatus::Missing, "its answer never came");
        assert!(
            out[1..].iter().all(|r| r.status == FrameStatus::Missing),
            "busy behind a lost frame means the detector was down"
        );
        // A busy frame behind a frame that was answered stays busy.
        out.clear();
        push(&mut stage, "frame", 13, None);
        push(&mut stage, "frame", 14, None);
        out.extend(push(
            &mut stage,
            port::SKIPPED,
            14,
            Some(skipped(14, FrameStatus::Busy, Some(13))),
        ));
        out.extend(push(&mut stage, "detections", 13, Some(dets(13, 40.0))));
        assert_eq!(
            out.iter().map(|r| r.status).collect::<Vec<_>>(),
            [FrameStatus::Inferred, FrameStatus::Busy]
        );
    }

    #[test]
    fn live_answers_a_resent_frame_and_ignores_late_detections() {
        let t = vigil_config::Tracker::default();
        let mut stage = TrackStage::new(&Config::new(&t, Order::Live));
        push(&mut stage, "frame", 0, None);
        assert_eq!(
            indices(&push(&mut stage, "detections", 0, Some(dets(0, 10.0)))),
            [0]
        );
        // The replay sends frame 0 again (its result was lost on the way): the same result.
        let again = push(&mut stage, "frame", 0, None);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].status, FrameStatus::Inferred);
        // Frame 1 is given up; its detections come late: nothing goes out again.
        for i in 1..=12 {
            push(&mut stage, "frame", i, None);
        }
        assert!(push(&mut stage, "detections", 1, Some(dets(1, 12.0))).is_empty());
        // A frame sent again after its result left the cache still gets an answer.
        let mut old = TrackStage::new(&Config::new(&t, Order::Live));
        old.sent.clear();
        old.order = Release::Live(LiveOrder::new(250_000_000, LIVE_HOLD));
        push(&mut old, "frame", 5, None);
        push(
            &mut old,
            "skipped",
            5,
            Some(skipped(5, FrameStatus::Interval, None)),
        );
        // Frames 0..=4 never came (gap) and go out missing once 5 is due.
        let out = push(&mut old, "frame", 20, None);
        assert!(out.iter().any(|r| r.header.index == 5));
        assert_eq!(out[0].header.seq, 0);
        old.sent.clear();
        let late = push(&mut old, "frame", 3, None);
        assert_eq!(
            (late.len(), late[0].status, late[0].header.index),
            (1, FrameStatus::Missing, 3)
        );
    }

    #[test]
    fn config_defaults_and_bounds() {
        let t = vigil_config::Tracker::default();
        let c = Config::new(&t, Config::order(&|_: &str| None).expect("defaults"));
        assert_eq!(
            (c.hold, c.tracker, c.coast_after_ns),
            (Some(LIVE_HOLD), TrackerConfig::default(), 250_000_000)
        );
        let strict = |k: &str| (k == topology::env::ORDER).then(|| "strict".to_owned());
        let order = Config::order(&strict).expect("strict");
        assert_eq!(Config::new(&t, order).hold, None);
        let bad = |k: &str| (k == topology::env::ORDER).then(|| "sorted".to_owned());
        assert!(Config::order(&bad).is_err());
    }
}
