//! The tracker a graph runs, chosen by configuration: nvtracker-style IOU or ByteTrack. Both
//! match on inferred frames and predict with their motion model on the others.

use vigil_detect::{BBox, Detection};
pub use vigil_frame::Track;

use crate::bytetrack::{ByteTrackConfig, ByteTracker};
use crate::iou::{IouConfig, IouTracker};

/// Which tracker, with its settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Algorithm {
    Iou(IouConfig),
    ByteTrack(ByteTrackConfig),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerConfig {
    pub algorithm: Algorithm,
    /// A track is predicted through at most this many frames in a row without detector output.
    pub max_coast: u32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::ByteTrack(ByteTrackConfig::default()),
            max_coast: 90,
        }
    }
}

/// A box a tracker can use: finite, with a positive size.
#[must_use]
pub(crate) fn usable(b: &BBox) -> bool {
    b.is_finite() && b.x2 > b.x1 && b.y2 > b.y1
}

#[derive(Debug, Clone)]
pub enum Tracker {
    Iou(IouTracker),
    ByteTrack(ByteTracker),
}

impl Tracker {
    #[must_use]
    pub fn new(cfg: TrackerConfig) -> Self {
        match cfg.algorithm {
            Algorithm::Iou(c) => Self::Iou(IouTracker::new(c, cfg.max_coast)),
            Algorithm::ByteTrack(c) => Self::ByteTrack(ByteTracker::new(c, cfg.max_coast)),
        }
    }

    /// Advances one inferred frame. Returns the tracks shown, ordered by id.
    pub fn update(&mut self, detections: &[Detection]) -> Vec<Track> {
        match self {
            Self::Iou(t) => t.update(detections),
            Self::ByteTrack(t) => t.update(detections),
        }
    }

    /// Advances one frame the detector did not run on: tracks predicted, shown ones marked
    /// coasting. Returns the tracks shown, ordered by id.
    pub fn predict(&mut self) -> Vec<Track> {
        match self {
            Self::Iou(t) => t.predict(),
            Self::ByteTrack(t) => t.predict(),
        }
    }

    /// Tracks kept, shown or not (bounded by the configured cap).
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Self::Iou(t) => t.len(),
            Self::ByteTrack(t) => t.len(),
        }
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
