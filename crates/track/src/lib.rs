//! Tracking with no I/O: an IOU tracker whose ids come from a counter it owns, and a reorder
//! buffer that puts results from any number of inference processes back into frame order.

mod merge;
mod tracker;

pub use merge::Reorder;
pub use tracker::{Track, Tracker, TrackerConfig};
