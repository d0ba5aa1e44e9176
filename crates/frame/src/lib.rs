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
    /// When the frame was captured (or played, in a replay), Unix time in nanoseconds.
    pub captured_unix_ns: u64,
    pub preprocess_us: u32,
    pub infer_us: u32,
    /// From capture to the frame's detections reaching the tracker.
    pub detect_us: u32,
}

/// Whether a frame was inferred and, if not, why. Every frame carries one: the output says
/// for each frame what the detector did with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FrameStatus {
    /// The detector ran on this frame.
    Inferred,
    /// Not this frame's turn (`preprocess.interval`).
    Interval,
    /// Every detector process was occupied with an older frame, and a newer frame came
    /// before one was free.
    Busy,
    /// The detector was down (starting, restarting) or its answer never came.
    Missing,
    /// The frame's JPEG could not be decoded.
    BadFrame,
    /// The detector ran and failed on this frame (NaN/inf in its tensor or outputs, or an
    /// error of the backend); counted by the infer node.
    Failed,
}

impl FrameStatus {
    pub const ALL: [Self; 6] = [
        Self::Inferred,
        Self::Interval,
        Self::Busy,
        Self::Missing,
        Self::BadFrame,
        Self::Failed,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inferred => "inferred",
            Self::Interval => "interval",
            Self::Busy => "busy",
            Self::Missing => "missing",
            Self::BadFrame => "bad_frame",
            Self::Failed => "failed",
        }
    }

    /// The status named `s` (as [`Self::as_str`] writes it).
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

/// One frame's detections in source pixels, or why there are none (`status`).
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionsMsg {
    pub header: FrameHeader,
    pub status: FrameStatus,
    /// For a `Busy` frame: the frame the detector was occupied with. If that one's answer never
    /// comes, the detector was down, not busy, and the tracker says `Missing`.
    pub behind: Option<u64>,
    pub detections: Vec<Detection>,
    pub latency: Latency,
}

impl DetectionsMsg {
    /// A frame the detector did not run on, for `status`'s reason.
    #[must_use]
    pub fn not_inferred(header: FrameHeader, status: FrameStatus, latency: Latency) -> Self {
        Self {
            header,
            status,
            behind: None,
            detections: Vec::new(),
            latency,
        }
    }

    #[must_use]
    pub fn inferred(&self) -> bool {
        self.status == FrameStatus::Inferred
    }
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
    /// Frames predicted since the last inferred one (skipped by interval, detector busy or
    /// down).
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
/// together so that they can never be separated on the way. On a frame not inferred
/// (`status`), the tracks are predictions, marked coasting.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultMsg {
    pub header: FrameHeader,
    pub status: FrameStatus,
    pub detections: Vec<Detection>,
    pub tracks: Vec<Track>,
    pub latency: Latency,
}

impl ResultMsg {
    #[must_use]
    pub fn inferred(&self) -> bool {
        self.status == FrameStatus::Inferred
    }
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

/// What the infer processes (and the camera) tell the monitor.
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
    /// A crash loop: after `deaths` deaths within `window_s` seconds the process waits
    /// `pause_ms` before it loads the model again; `cause` is how the last one ended.
    Paused {
        deaths: u32,
        window_s: u32,
        pause_ms: u64,
        cause: String,
    },
    /// The camera stopped delivering; it is being reopened.
    CameraDown { why: String },
    /// The camera delivers again after `outage_ms` and `attempts` reopen attempts.
    CameraUp { outage_ms: u64, attempts: u32 },
}

/// What the preprocess node makes of one infer process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Not heard from (starting, paused) or gone.
    Down,
    /// Gets frames.
    Active,
    /// Loaded and warm, asking for work, held in reserve: the next frame goes to it the
    /// moment an active process dies or overruns.
    Standby,
}

impl Role {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Down => "down",
            Self::Active => "active",
            Self::Standby => "standby",
        }
    }

    /// The name [`Role::as_str`] gives.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Down, Self::Active, Self::Standby]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}
