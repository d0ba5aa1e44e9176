//! Multi-object tracking evaluation with no I/O: MOTChallenge 2D text read (and written) from
//! text handed in, and the CLEAR MOT metrics (MOTA, MOTP), the ID measures (IDF1, IDP, IDR)
//! and track counts of a tracker's output against ground truth, by the definitions of
//! motmetrics 1.4.0 (`compare_to_groundtruth(gt, ts, 'iou', distth=0.5)`, then
//! `metrics.compute`), under its metric names. `vigil track-eval` prints them; a test compares
//! them with motmetrics itself on MOTChallenge sequences (`tests/trackeval.rs`).
//!
//! ```
//! let gt = "1,1,10,10,20,40,1,-1,-1,-1\n2,1,12,10,20,40,1,-1,-1,-1\n";
//! let ts = "1,7,10,10,20,40,-1,-1,-1,-1\n2,7,30,10,20,40,-1,-1,-1,-1\n";
//! let gt = vigil_mot::parse("gt.txt", gt.as_bytes(), vigil_mot::GROUND_TRUTH_MIN_CONFIDENCE)?;
//! let ts = vigil_mot::parse("ts.txt", ts.as_bytes(), vigil_mot::RESULT_MIN_CONFIDENCE)?;
//! let m = vigil_mot::evaluate(&gt, &ts, vigil_mot::MAX_DISTANCE);
//! assert_eq!((m.num_matches, m.num_misses, m.num_false_positives), (1, 1, 1));
//! assert_eq!(m.mota, 0.0);
//! # Ok::<(), vigil_mot::ParseError>(())
//! ```

mod eval;
mod text;

pub use eval::{MAX_DISTANCE, Metrics, evaluate};
pub use text::{
    GROUND_TRUTH_MIN_CONFIDENCE, ParseError, RESULT_MIN_CONFIDENCE, Row, Sequence, parse, to_text,
};
