//! Tracking with no I/O: an IOU tracker whose ids come from a counter it owns and which keeps
//! predicting tracks through frames with no detections; a reorder buffer that puts results
//! from any number of inference processes back into frame order; and the live ordering that
//! never lets a dead detector block the output.

pub mod assign;
mod live;
mod merge;
mod tracker;

pub use live::{LiveOrder, Released};
pub use merge::Reorder;
pub use tracker::{Track, Tracker, TrackerConfig};
