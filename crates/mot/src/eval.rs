//! The metrics, by the definitions motmetrics 1.4.0 implements for
//! `mm.utils.compare_to_groundtruth(gt, ts, 'iou', distth=0.5)` followed by `mh.compute(…)`.
//!
//! Frame by frame, in increasing frame number, over every frame either file has a box in
//! (`MOTAccumulator.update`):
//! 1. each object (in file order) that was last matched to a hypothesis present in this frame
//!    keeps it if their distance is allowed — even when another hypothesis fits better;
//! 2. the remaining objects and hypotheses are paired by the most pairs among allowed ones,
//!    then the least total distance. A pair whose object was last matched to another
//!    hypothesis is an ID switch (however many frames ago that match was);
//! 3. objects left over are misses, hypotheses left over false positives.
//!
//! The distance is 1 − IoU (`iou_matrix`); a pair farther than `max_distance` (0.5: IoU below
//! 0.5) may not be matched. ID measures (`id_global_assignment`) pair each ground-truth id with
//! at most one hypothesis id for the whole sequence, maximising the frames in which the two
//! overlap within `max_distance` (matched by CLEAR or not).
//!
//! Ties: where two assignments of a frame have exactly the same total distance, the solver
//! here keeps the lowest positions ([`vigil_track::assign`]); motmetrics' scipy solver may
//! pick the other, and the switches that follow can differ. Only exactly equal sums of IoU
//! tie: identical boxes, or two hypotheses of one size that both cover the object's extent in
//! one direction and lie within it in the other (1 random sequence in 1500 in a comparison
//! with motmetrics). The ID measures do not depend on ties.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use vigil_track::assign::{minimum_cost, most_pairs};

use crate::text::{Row, Sequence};

/// motmetrics' `distth` for `'iou'` as MOTChallenge evaluates: pairs with 1 − IoU above 0.5
/// are never matched.
pub const MAX_DISTANCE: f64 = 0.5;

/// What motmetrics 1.4.0 reports, under its names (the JSON keys of `vigil track-eval`). Rates
/// are NaN, or infinite, where motmetrics divides by zero (`quiet_divide`): no objects, no
/// predictions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Metrics {
    /// 2·IDTP / (objects + predictions).
    pub idf1: f64,
    /// IDTP / (IDTP + IDFP).
    pub idp: f64,
    /// IDTP / (IDTP + IDFN).
    pub idr: f64,
    /// Detections / objects.
    pub recall: f64,
    /// Detections / (detections + false positives).
    pub precision: f64,
    /// Ground-truth ids.
    pub num_unique_objects: u64,
    /// Ground-truth ids matched in at least 80% of the frames they are in.
    pub mostly_tracked: u64,
    /// … in at least 20% and less than 80%.
    pub partially_tracked: u64,
    /// … in less than 20%.
    pub mostly_lost: u64,
    pub num_false_positives: u64,
    pub num_misses: u64,
    pub num_switches: u64,
    /// For each ground-truth id, between the first and the last frame it is matched in: how
    /// often it goes from matched to missed (frames it is absent from the ground truth do
    /// not count).
    pub num_fragmentations: u64,
    /// 1 − (misses + switches + false positives) / objects.
    pub mota: f64,
    /// The mean distance 1 − IoU over matches and switches, as motmetrics reports MOTP: 0 is
    /// perfect, lower is better (MOTChallenge's own MOTP is 1 − this, in percent).
    pub motp: f64,
    /// Matches (switches included) whose hypothesis was last matched by another object in the
    /// assignment step.
    pub num_transfer: u64,
    /// Switches to a hypothesis never matched before.
    pub num_ascend: u64,
    /// Transfers to an object never matched before.
    pub num_migrate: u64,
    /// Ground-truth boxes.
    pub num_objects: u64,
    /// Hypothesis boxes.
    pub num_predictions: u64,
    /// Frames with a box in either file. (motmetrics with pandas 2 or later also counts, in
    /// most cases, a frame whose only ground-truth boxes were left out for their confidence:
    /// pandas keeps it in the index motmetrics iterates over. Nothing but this count depends
    /// on it.)
    pub num_frames: u64,
    /// Matches that are not switches.
    pub num_matches: u64,
    /// Matches plus switches.
    pub num_detections: u64,
    /// Boxes of the ID assignment's pairs that overlap within the distance.
    pub idtp: u64,
    /// Hypothesis boxes not counted in IDTP.
    pub idfp: u64,
    /// Ground-truth boxes not counted in IDTP.
    pub idfn: u64,
}

/// The distance motmetrics' `iou_matrix` gives two boxes: 1 − IoU, computed as it computes it
/// (corners from `bb_left - 1`, `bb_top - 1` as its loader shifts them, sizes as corner
/// differences) so that a pair on the 0.5 boundary falls on the same side.
fn distance(a: &Row, b: &Row) -> f64 {
    let corners = |r: &Row| {
        let (x0, y0) = (r.left - 1.0, r.top - 1.0);
        [x0, y0, x0 + r.width, y0 + r.height]
    };
    1.0 - vigil_compare::iou(&corners(a), &corners(b))
}

/// One ground-truth id's frames.
#[derive(Default)]
struct Life {
    present: u64,
    tracked: u64,
    /// Matched in some earlier frame.
    seen: bool,
    /// Missed since the last frame it was matched in.
    gap: bool,
    fragmentations: u64,
}

impl Life {
    fn frame(&mut self, tracked: bool) {
        self.present += 1;
        if tracked {
            self.tracked += 1;
            if self.gap {
                self.fragmentations += 1;
                self.gap = false;
            }
            self.seen = true;
        } else if self.seen {
            self.gap = true;
        }
    }
}

/// The accumulator's state and counts (`MOTAccumulator`).
#[derive(Default)]
struct Clear {
    /// Object → the hypothesis it was last matched to (`m`).
    last_hyp: BTreeMap<i64, i64>,
    /// Hypothesis → the object it was last matched to in the assignment step (`res_m`).
    last_obj: BTreeMap<i64, i64>,
    /// Objects and hypotheses ever matched (`last_match`, `hypHistory`).
    matched_objs: BTreeSet<i64>,
    matched_hyps: BTreeSet<i64>,
    lives: BTreeMap<i64, Life>,
    /// (object, hypothesis) → the frames they overlap within the distance in.
    overlaps: BTreeMap<(i64, i64), u64>,
    matches: u64,
    switches: u64,
    misses: u64,
    false_positives: u64,
    transfers: u64,
    ascends: u64,
    migrates: u64,
    distance_sum: f64,
}

impl Clear {
    fn frame(&mut self, objs: &[&Row], hyps: &[&Row], max_distance: f64) {
        let (no, nh) = (objs.len(), hyps.len());
        let mut dists: Vec<f64> = objs
            .iter()
            .flat_map(|o| hyps.iter().map(move |h| distance(o, h)))
            .map(|d| if d <= max_distance { d } else { f64::NAN })
            .collect();
        for (k, d) in dists.iter().enumerate() {
            if d.is_finite() {
                *self
                    .overlaps
                    .entry((objs[k / nh].id, hyps[k % nh].id))
                    .or_default() += 1;
            }
        }
        let mut obj_done = vec![false; no];
        let mut hyp_done = vec![false; nh];

        // 1. Correspondences of earlier frames that still hold.
        for (i, o) in objs.iter().enumerate() {
            let Some(&prev) = self.last_hyp.get(&o.id) else {
                continue;
            };
            let Some(j) = (0..nh).find(|&j| !hyp_done[j] && hyps[j].id == prev) else {
                continue;
            };
            let d = dists[i * nh + j];
            if d.is_finite() {
                obj_done[i] = true;
                hyp_done[j] = true;
                self.matches += 1;
                self.distance_sum += d;
                self.matched_objs.insert(o.id);
                self.matched_hyps.insert(prev);
            }
        }

        // 2. The most pairs, then the least distance, among the rest.
        for (k, d) in dists.iter_mut().enumerate() {
            if obj_done[k / nh] || hyp_done[k % nh] {
                *d = f64::NAN;
            }
        }
        for (i, j) in most_pairs(&dists, no, nh) {
            let (o, h, d) = (objs[i].id, hyps[j].id, dists[i * nh + j]);
            let switch = self.last_hyp.get(&o).is_some_and(|&p| p != h);
            if switch && !self.matched_hyps.contains(&h) {
                self.ascends += 1;
            }
            if self.last_obj.get(&h).is_some_and(|&p| p != o) {
                self.transfers += 1;
                if !self.matched_objs.contains(&o) {
                    self.migrates += 1;
                }
            }
            self.matched_hyps.insert(h);
            self.matched_objs.insert(o);
            if switch {
                self.switches += 1;
            } else {
                self.matches += 1;
            }
            self.distance_sum += d;
            obj_done[i] = true;
            hyp_done[j] = true;
            self.last_hyp.insert(o, h);
            self.last_obj.insert(h, o);
        }

        // 3. What is left.
        for (o, done) in objs.iter().zip(&obj_done) {
            self.lives.entry(o.id).or_default().frame(*done);
        }
        self.misses += obj_done.iter().filter(|d| !**d).count() as u64;
        self.false_positives += hyp_done.iter().filter(|d| !**d).count() as u64;
    }

    /// IDTP: the most overlapping frames a one-to-one pairing of ids gets. motmetrics solves
    /// an (objects + hypotheses)² matrix of IDFP + IDFN with a dummy partner for each id; its
    /// optimum is the pairing with the most overlaps, which is what is solved here, on the
    /// ids that overlap at all (the others add nothing).
    fn id_true_positives(&self) -> u64 {
        let objs: Vec<i64> = self
            .overlaps
            .keys()
            .map(|&(o, _)| o)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let hyps: Vec<i64> = self
            .overlaps
            .keys()
            .map(|&(_, h)| h)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let most = self.overlaps.values().copied().max().unwrap_or(0);
        let overlap = |o: i64, h: i64| self.overlaps.get(&(o, h)).copied().unwrap_or(0);
        // Every row gets a column (or the other way round), so the fewest missed overlaps are
        // the most overlaps.
        let costs: Vec<f64> = objs
            .iter()
            .flat_map(|&o| hyps.iter().map(move |&h| (most - overlap(o, h)) as f64))
            .collect();
        minimum_cost(&costs, objs.len(), hyps.len())
            .into_iter()
            .zip(&objs)
            .filter_map(|(c, &o)| Some(overlap(o, hyps[c?])))
            .sum()
    }
}

/// The metrics of a tracker's output (`results`) against ground truth, pairs farther than
/// `max_distance` (1 − IoU; [`MAX_DISTANCE`] for MOTChallenge) never matched.
#[must_use]
pub fn evaluate(ground_truth: &Sequence, results: &Sequence, max_distance: f64) -> Metrics {
    let mut by_frame: BTreeMap<i64, (Vec<&Row>, Vec<&Row>)> = BTreeMap::new();
    for r in ground_truth.rows() {
        by_frame.entry(r.frame).or_default().0.push(r);
    }
    for r in results.rows() {
        by_frame.entry(r.frame).or_default().1.push(r);
    }
    let mut clear = Clear::default();
    for (objs, hyps) in by_frame.values() {
        clear.frame(objs, hyps, max_distance);
    }

    let detections = clear.matches + clear.switches;
    let objects = detections + clear.misses;
    let predictions = detections + clear.false_positives;
    let idtp = clear.id_true_positives();
    let (idfp, idfn) = (predictions - idtp, objects - idtp);
    let ratio = |a: u64, b: u64| a as f64 / b as f64;
    let share = |l: &Life| ratio(l.tracked, l.present);
    let lives = || clear.lives.values();
    Metrics {
        idf1: ratio(2 * idtp, objects + predictions),
        idp: ratio(idtp, idtp + idfp),
        idr: ratio(idtp, idtp + idfn),
        recall: ratio(detections, objects),
        precision: ratio(detections, clear.false_positives + detections),
        num_unique_objects: clear.lives.len() as u64,
        mostly_tracked: lives().filter(|l| share(l) >= 0.8).count() as u64,
        partially_tracked: lives().filter(|l| (0.2..0.8).contains(&share(l))).count() as u64,
        mostly_lost: lives().filter(|l| share(l) < 0.2).count() as u64,
        num_false_positives: clear.false_positives,
        num_misses: clear.misses,
        num_switches: clear.switches,
        num_fragmentations: lives().map(|l| l.fragmentations).sum(),
        mota: 1.0
            - ratio(
                clear.misses + clear.switches + clear.false_positives,
                objects,
            ),
        motp: clear.distance_sum / detections as f64,
        num_transfer: clear.transfers,
        num_ascend: clear.ascends,
        num_migrate: clear.migrates,
        num_objects: objects,
        num_predictions: predictions,
        num_frames: by_frame.len() as u64,
        num_matches: clear.matches,
        num_detections: detections,
        idtp,
        idfp,
        idfn,
    }
}

#[cfg(test)]
// The values are exact on purpose: small fractions, and a distance on the limit that must fall
// on motmetrics' side of it.
#[allow(clippy::float_cmp)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::text::{RESULT_MIN_CONFIDENCE, parse, to_text};

    /// A box `(frame, id, left, top, width, height)`.
    type B = (i64, i64, f64, f64, f64, f64);

    fn seq(boxes: &[B]) -> Sequence {
        let rows = boxes
            .iter()
            .map(|&(frame, id, left, top, width, height)| Row {
                frame,
                id,
                left,
                top,
                width,
                height,
                conf: 1.0,
            })
            .collect();
        Sequence::from_rows("test", rows).unwrap()
    }

    fn eval(gt: &[B], ts: &[B]) -> Metrics {
        evaluate(&seq(gt), &seq(ts), MAX_DISTANCE)
    }

    /// A 10×10 box at `x`.
    fn at(frame: i64, id: i64, x: f64) -> B {
        (frame, id, x, 0.0, 10.0, 10.0)
    }

    #[test]
    fn distance_is_one_minus_iou_and_half_overlap_still_matches() {
        let row = |b: B| Row {
            frame: b.0,
            id: b.1,
            left: b.2,
            top: b.3,
            width: b.4,
            height: b.5,
            conf: 1.0,
        };
        assert_eq!(distance(&row(at(1, 1, 0.0)), &row(at(1, 2, 0.0))), 0.0);
        assert_eq!(distance(&row(at(1, 1, 0.0)), &row(at(1, 2, 10.0))), 1.0);
        // IoU 100 / 200: exactly on the limit, which motmetrics allows (it forbids > 0.5).
        let half = (1, 2, 0.0, 0.0, 10.0, 20.0);
        assert_eq!(distance(&row(at(1, 1, 0.0)), &row(half)), 0.5);
        let m = eval(&[at(1, 1, 0.0)], &[half]);
        assert_eq!((m.num_matches, m.motp), (1, 0.5));
        let m = eval(&[at(1, 1, 0.0)], &[(1, 2, 0.0, 0.0, 10.0, 20.001)]);
        assert_eq!(
            (m.num_matches, m.num_misses, m.num_false_positives),
            (0, 1, 1)
        );
    }

    #[test]
    fn a_miss_and_a_false_positive() {
        let m = eval(
            &[at(1, 1, 0.0), at(2, 1, 0.0), at(2, 2, 50.0)],
            &[
                at(1, 9, 0.0),
                at(2, 9, 0.0),
                at(2, 8, 100.0),
                at(3, 8, 100.0),
            ],
        );
        assert_eq!((m.num_matches, m.num_switches), (2, 0));
        assert_eq!((m.num_misses, m.num_false_positives), (1, 2));
        assert_eq!((m.num_objects, m.num_predictions, m.num_frames), (3, 4, 3));
        assert_eq!(m.mota, 0.0);
        assert_eq!((m.recall, m.precision), (2.0 / 3.0, 0.5));
        assert_eq!((m.mostly_tracked, m.mostly_lost), (1, 1));
        assert_eq!(m.motp, 0.0);
    }

    #[test]
    fn another_hypothesis_on_the_object_is_a_switch() {
        // Object 1 is tracked by 10, then by 20.
        let gt: Vec<B> = (1..=4).map(|f| at(f, 1, 0.0)).collect();
        let ts = [
            at(1, 10, 0.0),
            at(2, 10, 0.0),
            at(3, 20, 0.0),
            at(4, 20, 0.0),
        ];
        let m = eval(&gt, &ts);
        assert_eq!((m.num_matches, m.num_switches, m.num_ascend), (3, 1, 1));
        assert_eq!((m.num_transfer, m.num_fragmentations), (0, 0));
        assert_eq!(m.mota, 0.75);
        // The ID measures pair object 1 with one of the two: half its frames.
        assert_eq!((m.idtp, m.idfp, m.idfn), (2, 2, 2));
        assert_eq!((m.idf1, m.idp, m.idr), (0.5, 0.5, 0.5));
    }

    #[test]
    fn a_gap_in_the_matches_is_a_fragmentation_and_the_last_match_is_remembered() {
        // Frames 1–7: tracked by 10, missed, missed, absent from the ground truth, tracked by
        // 20 (a switch: 10 was its last match, three frames before), tracked, missed.
        let gt = [
            at(1, 1, 0.0),
            at(2, 1, 0.0),
            at(3, 1, 0.0),
            at(5, 1, 0.0),
            at(6, 1, 0.0),
            at(7, 1, 0.0),
        ];
        let ts = [
            at(1, 10, 0.0),
            at(4, 10, 0.0),
            at(5, 20, 0.0),
            at(6, 20, 0.0),
        ];
        let m = eval(&gt, &ts);
        assert_eq!((m.num_matches, m.num_switches, m.num_misses), (2, 1, 3));
        assert_eq!(m.num_fragmentations, 1);
        assert_eq!((m.num_false_positives, m.num_frames), (1, 7));
        assert_eq!(m.partially_tracked, 1);
    }

    #[test]
    fn a_correspondence_that_still_holds_is_kept_over_a_better_fit() {
        // Frame 2: 20 sits exactly on object 1, but 10 (its match in frame 1) still overlaps
        // by IoU 0.6 (7.5 × 10 / (200 − 75)): 10 stays, 20 is a false positive.
        let gt = [at(1, 1, 0.0), at(2, 1, 0.0)];
        let ts = [at(1, 10, 0.0), at(2, 10, 2.5), at(2, 20, 0.0)];
        let m = eval(&gt, &ts);
        assert_eq!(
            (m.num_matches, m.num_switches, m.num_false_positives),
            (2, 0, 1)
        );
        assert!((m.motp - 0.2).abs() < 1e-12, "{}", m.motp);
        // Once it no longer overlaps by half (IoU 5 × 10 / 150), the better fit takes over.
        let ts = [at(1, 10, 0.0), at(2, 10, 5.0), at(2, 20, 0.0)];
        let m = eval(&gt, &ts);
        assert_eq!(
            (m.num_matches, m.num_switches, m.num_false_positives),
            (1, 1, 1)
        );
    }

    #[test]
    fn the_assignment_makes_the_most_pairs_before_the_least_distance() {
        // 10 fits object 1 best (distance 2/11) and reaches object 2 (6/13); 11 reaches
        // object 1 only (4/12). The cheapest single pair is 1–10, but two pairs (1–11, 2–10)
        // come first.
        let gt = [at(1, 1, 0.0), at(1, 2, 4.0)];
        let ts = [at(1, 10, 1.0), at(1, 11, -2.0)];
        let m = eval(&gt, &ts);
        assert_eq!(
            (m.num_matches, m.num_misses, m.num_false_positives),
            (2, 0, 0)
        );
        assert!((m.motp - f64::midpoint(4.0 / 12.0, 6.0 / 13.0)).abs() < 1e-12);
    }

    #[test]
    fn ids_swapped_halfway_cost_two_switches_and_half_the_id_score() {
        // Objects 1 (x = 0) and 2 (x = 50); hypotheses a = 10, b = 20 trade places at frame 3.
        let mut gt = Vec::new();
        let mut ts = Vec::new();
        for f in 1..=4 {
            gt.extend([at(f, 1, 0.0), at(f, 2, 50.0)]);
            let (a, b) = if f <= 2 { (0.0, 50.0) } else { (50.0, 0.0) };
            ts.extend([at(f, 10, a), at(f, 20, b)]);
        }
        let m = eval(&gt, &ts);
        assert_eq!((m.num_matches, m.num_switches), (6, 2));
        assert_eq!((m.num_transfer, m.num_ascend, m.num_migrate), (2, 0, 0));
        assert_eq!(m.mota, 0.75);
        assert_eq!((m.idtp, m.idf1, m.idp, m.idr), (4, 0.5, 0.5, 0.5));
        assert_eq!(m.num_fragmentations, 0);
    }

    #[test]
    fn the_id_pairing_takes_the_most_overlaps_overall() {
        // Object 1 overlaps a for 3 frames and b for 2; object 2 overlaps a for 2 frames only.
        // Greedy (1–a) gives 3; the best pairing (1–b, 2–a) gives 4.
        let mut gt = Vec::new();
        let mut ts = Vec::new();
        for f in 1..=3 {
            gt.push(at(f, 1, 0.0));
            ts.push(at(f, 10, 0.0));
        }
        for f in 4..=5 {
            gt.extend([at(f, 1, 0.0), at(f, 2, 50.0)]);
            ts.extend([at(f, 20, 0.0), at(f, 10, 50.0)]);
        }
        let m = eval(&gt, &ts);
        assert_eq!((m.idtp, m.idfn, m.idfp), (4, 3, 3));
    }

    #[test]
    fn nothing_to_divide_by_gives_nan_as_motmetrics_does() {
        let m = eval(&[], &[at(1, 3, 0.0)]);
        assert_eq!((m.num_false_positives, m.num_frames), (1, 1));
        assert!(m.motp.is_nan() && m.recall.is_nan() && m.idr.is_nan());
        assert_eq!(m.mota, f64::NEG_INFINITY);
    }

    /// Ground truth: per frame, some of 4 objects, object k in its own column (x = 100 k) so
    /// no two overlap, each moving a little from frame to frame.
    fn ground_truth() -> impl Strategy<Value = Vec<B>> {
        prop::collection::vec(
            (prop::collection::vec(any::<bool>(), 4), -3.0..3.0f64),
            1..12,
        )
        .prop_map(|frames| {
            let mut out = Vec::new();
            for (f, (present, dx)) in frames.iter().enumerate() {
                for (k, _) in present.iter().enumerate().filter(|(_, p)| **p) {
                    let x = 100.0 * k as f64 + dx * (k as f64 + 1.0);
                    out.push((f as i64 + 1, k as i64 + 1, x, 5.0, 30.0, 60.0));
                }
            }
            out
        })
    }

    /// Any boxes: a few ids on a small field, so that they overlap, miss and swap.
    fn boxes() -> impl Strategy<Value = Vec<B>> {
        prop::collection::btree_map(
            (1..8i64, 1..6i64),
            (0.0..40.0f64, 0.0..20.0f64, 5.0..30.0f64, 5.0..30.0f64),
            0..30,
        )
        .prop_map(|m| {
            m.into_iter()
                .map(|((f, id), (x, y, w, h))| (f, id, x, y, w, h))
                .collect()
        })
    }

    /// Metrics to compare, a NaN equal to a NaN.
    fn same(m: &Metrics) -> String {
        format!("{m:?}")
    }

    /// The rows with the frames interleaved in another order, each frame's own rows still in
    /// their order (which motmetrics' matching can depend on).
    fn interleave(rows: &[B], order: &[usize]) -> Vec<B> {
        let mut by_frame: BTreeMap<i64, std::collections::VecDeque<B>> = BTreeMap::new();
        for r in rows {
            by_frame.entry(r.0).or_default().push_back(*r);
        }
        let mut keyed: Vec<(usize, i64)> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (order.get(i).copied().unwrap_or(i), r.0))
            .collect();
        keyed.sort_by_key(|&(k, _)| k);
        keyed
            .into_iter()
            .filter_map(|(_, f)| by_frame.get_mut(&f)?.pop_front())
            .collect()
    }

    proptest! {
        /// The ground truth as a tracker's output, under other ids, is perfect: MOTA 1, IDF1
        /// 1, MOTP 0, no switches, fragmentations, misses or false positives.
        #[test]
        fn the_ground_truth_itself_scores_perfectly(gt in ground_truth(), shift in 1..1000i64) {
            let ts: Vec<B> = gt.iter().map(|&(f, id, x, y, w, h)| (f, id * 7 + shift, x, y, w, h)).collect();
            prop_assume!(!gt.is_empty());
            let m = eval(&gt, &ts);
            prop_assert_eq!(m.mota, 1.0);
            prop_assert_eq!((m.idf1, m.idp, m.idr), (1.0, 1.0, 1.0));
            prop_assert_eq!(m.motp, 0.0);
            prop_assert_eq!((m.num_switches, m.num_fragmentations, m.num_misses, m.num_false_positives), (0, 0, 0, 0));
            prop_assert_eq!(m.mostly_tracked, m.num_unique_objects);
        }

        /// Frames may come in any order in the files: only each frame's rows, in their order,
        /// count. Ids are only names: numbering them otherwise changes nothing.
        #[test]
        fn file_order_of_frames_and_id_numbers_do_not_matter(
            gt in boxes(),
            ts in boxes(),
            order in prop::collection::vec(0..1000usize, 30),
        ) {
            let m = same(&eval(&gt, &ts));
            prop_assert_eq!(same(&eval(&interleave(&gt, &order), &interleave(&ts, &order))), m.clone());
            let renamed = |b: &[B], k: i64| b.iter().map(|&(f, id, x, y, w, h)| (f, 100 - id * k, x, y, w, h)).collect::<Vec<_>>();
            let r = eval(&renamed(&gt, 3), &renamed(&ts, 5));
            // MOTP sums the same distances in the same order: equal to the bit.
            prop_assert_eq!(same(&r), m);
        }

        /// The counts add up: every ground-truth box is a match, a switch or a miss, every
        /// hypothesis box a match, a switch or a false positive, every object mostly tracked,
        /// partially tracked or mostly lost; IDTP fits in both.
        #[test]
        fn the_counts_add_up(gt in boxes(), ts in boxes()) {
            let m = eval(&gt, &ts);
            prop_assert_eq!(m.num_objects, gt.len() as u64);
            prop_assert_eq!(m.num_predictions, ts.len() as u64);
            prop_assert_eq!(m.num_objects, m.num_matches + m.num_switches + m.num_misses);
            prop_assert_eq!(m.num_unique_objects, m.mostly_tracked + m.partially_tracked + m.mostly_lost);
            prop_assert!(m.idtp <= m.num_objects.min(m.num_predictions));
            prop_assert!(m.num_ascend <= m.num_switches && m.num_migrate <= m.num_transfer);
        }

        /// Written as a result file and read back, a tracker's output scores the same.
        #[test]
        fn written_results_score_the_same(gt in boxes(), ts in boxes()) {
            let rows: Vec<Row> = seq(&ts).rows().to_vec();
            let back = parse("back", to_text(&rows).as_bytes(), RESULT_MIN_CONFIDENCE).unwrap();
            prop_assert_eq!(same(&evaluate(&seq(&gt), &back, MAX_DISTANCE)), same(&eval(&gt, &ts)));
        }
    }
}
