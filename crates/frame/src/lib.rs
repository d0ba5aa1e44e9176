//! What the stages say about a frame, as plain data: the frame's header, how long the stages
//! took, its detections, its result (detections and tracks), and what the infer node reports
//! about itself. No wire format and no I/O: `vigil-msg` puts these on the wire, and pure cores
//! (the tracker, pipeline health) take them as domain events.

use vigil_detect::{BBox, Detection};

/// The source frame's facts, carried by every message derived from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The capture driver's sequence number (or the recording's).
    pub seq: u64,
    /// The source's own frame counter: 0, 1, 2, … with no gaps, whatever `seq` does. Nodes
    /// that must see frames in order reorder and de-duplicate by it.
    pub index: u64,
    /// Capture time in nanoseconds, from the driver or the recording.
    pub timestamp_ns: u64,
    pub width: u32,
    pub height: u32,
}

/// How long the stages before a message took on its frame, in microseconds (0: not measured).
/// Wall-clock measurements for monitoring only: nothing downstream decides on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Latency {
    pub preprocess_us: u32,
    pub infer_us: u32,
}

/// One frame's detections in source pixels. `inferred` is false for skipped frames.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionsMsg {
    pub header: FrameHeader,
    pub inferred: bool,
    pub detections: Vec<Detection>,
    pub latency: Latency,
}

/// One tracked object.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Track {
    pub id: u64,
    pub class: u32,
    pub score: f32,
    pub bbox: BBox,
    /// Matched detections so far.
    pub hits: u32,
    /// Inferred frames since the last match; 0 when matched this frame.
    pub misses: u32,
    /// Frames predicted since the detector last answered (it was down or lost them).
    pub lost: u32,
}

impl Track {
    /// True when the track is carried on without a detection this frame.
    #[must_use]
    pub fn coasting(&self) -> bool {
        self.misses > 0 || self.lost > 0
    }
}

/// One frame's outcome as the tracker left it: the frame's detections and the live tracks,
/// together so that they can never be separated on the way. `missing` marks a frame whose
/// detections never came (the detector was down or lost it): its tracks are predictions.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultMsg {
    pub header: FrameHeader,
    pub inferred: bool,
    pub missing: bool,
    pub detections: Vec<Detection>,
    pub tracks: Vec<Track>,
    pub latency: Latency,
}

/// Why a node's previous process ended, as it recorded on its way out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultReport {
    /// `SIGSEGV`, `SIGABRT`, `sticky device error`, `watchdog`, …
    pub cause: String,
    /// The frame it was working on.
    pub seq: u64,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
}

/// What the infer node tells the monitor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusMsg {
    /// A process started; `previous` is how its predecessor ended (`None`: first start, or a
    /// predecessor that left no word, e.g. killed by the kernel).
    Started {
        pid: u32,
        previous: Option<FaultReport>,
    },
    /// A frame's tensor or outputs held NaN/inf and were rejected.
    Rejected { header: FrameHeader, total: u64 },
}
