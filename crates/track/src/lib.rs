//! Tracking with no I/O: two trackers whose ids come from a counter they own and which keep
//! predicting tracks through frames with no detections — nvtracker-style IOU
//! ([`iou::IouTracker`]) and ByteTrack ([`bytetrack::ByteTracker`], on a Kalman filter) —
//! behind one [`Tracker`]; the minimum-cost assignment they and the evaluator use; a reorder
//! buffer that puts results from any number of inference processes back into frame order;
//! and the live ordering that never lets a dead detector block the output.

pub mod assign;
pub mod bytetrack;
pub mod iou;
mod kalman;
mod live;
mod merge;
mod tracker;

pub use bytetrack::{ByteTrackConfig, ByteTracker};
pub use iou::{IouConfig, IouTracker};
pub use live::{LiveOrder, Released};
pub use merge::Reorder;
pub use tracker::{Algorithm, Track, Tracker, TrackerConfig};
