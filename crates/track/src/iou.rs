//! The IOU tracker, with the target management of `NvMultiObjectTracker`'s IOU tracker
//! (DeepStream's `config_tracker_IOU.yml`): greedy matching of detections to targets by `IoU`
//! (same class only with `class_match`), new targets tentative until past probation and ended
//! early if missed while tentative, a new target refused where it overlaps an existing one,
//! shadow tracking (a missed target is kept, not output, until it is matched again or its
//! shadow age passes `max_shadow_age`), a cap on targets, and detections below a confidence not
//! tracked at all.
//!
//! Ages count inferred frames. On a frame the detector did not run on (interval, busy, down),
//! vigil does what nvtracker's IOU tracker cannot: every target moves on at its last velocity
//! and the output ones are marked coasting; such frames do not age targets.

use vigil_detect::{BBox, Detection};
use vigil_frame::Track;

use crate::tracker::usable;

/// nvtracker's keys for each setting: see the fields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IouConfig {
    /// A detection continues a target when their `IoU` is at least this
    /// (`minMatchingScore4Iou`).
    pub iou_threshold: f32,
    /// A target missed on more inferred frames in a row than this ends
    /// (`maxShadowTrackingAge`); until then it is kept and not output.
    pub max_shadow_age: u32,
    /// A new target is tentative (kept, not output) for this many inferred frames
    /// (`probationAge`); 0: output from its first frame.
    pub probation_age: u32,
    /// A tentative target missed on this many inferred frames in a row ends
    /// (`earlyTerminationAge`); 0: never early.
    pub early_termination_age: u32,
    /// A detection that overlaps an existing target by more than this `IoU` does not start
    /// a new one (`minIouDiff4NewTarget`); 1: never refused.
    pub max_new_overlap: f32,
    /// Detections scored below this are not tracked (`minDetectorConfidence`).
    pub min_confidence: f32,
    /// Only a detection of the target's class continues it (`checkClassMatch`).
    pub class_match: bool,
    /// At most this many targets, tentative and shadow ones included
    /// (`maxTargetsPerStream`); detections beyond it start none.
    pub max_targets: usize,
}

impl Default for IouConfig {
    fn default() -> Self {
        Self {
            iou_threshold: 0.3,
            max_shadow_age: 30,
            probation_age: 0,
            early_termination_age: 1,
            max_new_overlap: 1.0,
            min_confidence: 0.0,
            class_match: true,
            max_targets: 150,
        }
    }
}

/// A target and its motion.
#[derive(Debug, Clone, Copy)]
struct Target {
    track: Track,
    /// The box of the last match.
    anchor: BBox,
    /// Frames since `anchor`, predicted ones included.
    since: u32,
    /// Centre motion per frame.
    velocity: [f32; 2],
    /// Inferred frames since the target started.
    age: u32,
    /// Past probation: output while matched.
    active: bool,
}

impl Target {
    /// Shown this frame: past probation and not in the shadow.
    fn shown(&self) -> bool {
        self.active && self.track.misses == 0
    }

    /// The box moved on at its velocity to `since` frames after the last match.
    fn predicted(&self) -> BBox {
        let dt = self.since as f32;
        let (dx, dy) = (self.velocity[0] * dt, self.velocity[1] * dt);
        let a = self.anchor;
        BBox::new(a.x1 + dx, a.y1 + dy, a.x2 + dx, a.y2 + dy)
    }
}

fn centre(b: &BBox) -> [f32; 2] {
    [f32::midpoint(b.x1, b.x2), f32::midpoint(b.y1, b.y2)]
}

#[derive(Debug, Clone)]
pub struct IouTracker {
    cfg: IouConfig,
    max_coast: u32,
    targets: Vec<Target>,
    next_id: u64,
}

impl IouTracker {
    /// `max_coast`: a target is predicted through at most this many frames in a row without
    /// detector output.
    #[must_use]
    pub fn new(cfg: IouConfig, max_coast: u32) -> Self {
        Self {
            cfg,
            max_coast,
            targets: Vec::new(),
            next_id: 1,
        }
    }

    /// The targets shown, ordered by id.
    fn shown(&self) -> Vec<Track> {
        self.targets
            .iter()
            .filter(|t| t.shown())
            .map(|t| t.track)
            .collect()
    }

    /// Targets kept, shown or not.
    #[must_use]
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Advances one inferred frame: matches its detections to the targets, starts new ones,
    /// ends those past their age. Returns the targets shown, ordered by id.
    pub fn update(&mut self, detections: &[Detection]) -> Vec<Track> {
        let cfg = self.cfg;
        let detections: Vec<&Detection> = detections
            .iter()
            .filter(|d| d.score >= cfg.min_confidence && usable(&d.bbox))
            .collect();
        for t in &mut self.targets {
            t.since = t.since.saturating_add(1);
            t.age = t.age.saturating_add(1);
            // A shown target predicted through frames without detector output is where its
            // motion put it; one in the shadow stays where it was last seen (nvtracker's IOU
            // tracker has no motion).
            if t.track.lost > 0 && t.track.misses == 0 {
                t.track.bbox = t.predicted();
            }
            t.track.lost = 0;
        }
        // All (target, detection) pairs above the threshold, best IoU first; ties fall back
        // to index order so the result depends only on the input (nvtracker's greedy matcher).
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (ti, t) in self.targets.iter().enumerate() {
            for (di, det) in detections.iter().enumerate() {
                if cfg.class_match && det.class != t.track.class {
                    continue;
                }
                let iou = t.track.bbox.iou(&det.bbox);
                if iou >= cfg.iou_threshold {
                    pairs.push((iou, ti, di));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let mut target_used = vec![false; self.targets.len()];
        let mut det_used = vec![false; detections.len()];
        for (_, ti, di) in pairs {
            if target_used[ti] || det_used[di] {
                continue;
            }
            (target_used[ti], det_used[di]) = (true, true);
            let t = &mut self.targets[ti];
            let det = detections[di];
            let (old, new) = (centre(&t.anchor), centre(&det.bbox));
            let dt = t.since.max(1) as f32;
            let v = [(new[0] - old[0]) / dt, (new[1] - old[1]) / dt];
            t.velocity = if t.track.hits == 1 {
                v
            } else {
                [0.5 * (t.velocity[0] + v[0]), 0.5 * (t.velocity[1] + v[1])]
            };
            (t.anchor, t.since) = (det.bbox, 0);
            t.track.bbox = det.bbox;
            t.track.score = det.score;
            t.track.hits += 1;
            t.track.misses = 0;
            if !t.active && t.age >= cfg.probation_age {
                t.active = true;
            }
        }
        for (t, used) in self.targets.iter_mut().zip(&target_used) {
            if !used {
                t.track.misses += 1;
            }
        }
        // Every target ends once missed longer than the shadow age; one on probation earlier.
        self.targets.retain(|t| {
            let m = t.track.misses;
            m <= cfg.max_shadow_age
                && (t.active || cfg.early_termination_age == 0 || m < cfg.early_termination_age)
        });
        // New targets from the detections left, best score first.
        let mut fresh: Vec<&Detection> = detections
            .iter()
            .zip(&det_used)
            .filter(|(_, used)| !**used)
            .map(|(d, _)| *d)
            .collect();
        fresh.sort_by(|a, b| b.score.total_cmp(&a.score));
        for det in fresh {
            if self.targets.len() >= cfg.max_targets {
                break;
            }
            let overlapped = self
                .targets
                .iter()
                .any(|t| t.track.bbox.iou(&det.bbox) > cfg.max_new_overlap);
            if overlapped {
                continue;
            }
            self.targets.push(Target {
                track: Track {
                    id: self.next_id,
                    class: det.class,
                    score: det.score,
                    bbox: det.bbox,
                    hits: 1,
                    misses: 0,
                    lost: 0,
                },
                anchor: det.bbox,
                since: 0,
                velocity: [0.0, 0.0],
                age: 0,
                active: cfg.probation_age == 0,
            });
            self.next_id += 1;
        }
        self.shown()
    }

    /// Advances one frame the detector did not run on: every shown target moves on at its
    /// last velocity, marked coasting (`lost`); one in the shadow stays where it was last
    /// seen; a target predicted for more than `max_coast` frames in a row ends. Returns the
    /// targets shown, ordered by id.
    pub fn predict(&mut self) -> Vec<Track> {
        for t in &mut self.targets {
            t.since = t.since.saturating_add(1);
            t.track.lost += 1;
            if t.track.misses == 0 {
                t.track.bbox = t.predicted();
            }
        }
        let max_coast = self.max_coast;
        self.targets.retain(|t| t.track.lost <= max_coast);
        self.shown()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn det(class: u32, x: f32) -> Detection {
        scored(class, x, 0.9)
    }

    fn scored(class: u32, x: f32, score: f32) -> Detection {
        Detection {
            class,
            score,
            bbox: BBox::new(x, 0.0, x + 10.0, 10.0),
        }
    }

    fn ids(tracks: &[Track]) -> Vec<u64> {
        tracks.iter().map(|t| t.id).collect()
    }

    fn tracker(cfg: IouConfig) -> IouTracker {
        IouTracker::new(cfg, 90)
    }

    #[test]
    fn moving_box_keeps_its_id_and_a_lost_one_ages_out() {
        let mut tr = tracker(IouConfig {
            max_shadow_age: 2,
            ..IouConfig::default()
        });
        assert_eq!(ids(&tr.update(&[det(0, 0.0), det(1, 50.0)])), [1, 2]);
        let t = tr.update(&[det(0, 2.0)]);
        assert_eq!(ids(&t), [1], "a missed target is in the shadow: not shown");
        assert_eq!(tr.len(), 2, "…but kept");
        // Frames not inferred do not age targets: they are predicted and marked.
        let t = tr.predict();
        assert!(t.iter().all(|t| t.coasting() && t.lost == 1));
        tr.update(&[det(0, 4.0)]);
        tr.update(&[det(0, 6.0)]);
        assert_eq!(tr.len(), 1, "shadow age 3 > 2: ended");
        // Back within the shadow age, a target is shown again under its id.
        let mut tr = tracker(IouConfig::default());
        tr.update(&[det(0, 0.0), det(1, 50.0)]);
        tr.update(&[det(0, 1.0)]);
        assert_eq!(ids(&tr.update(&[det(0, 2.0), det(1, 50.0)])), [1, 2]);
    }

    #[test]
    fn tracks_coast_at_their_velocity_when_detections_stop_and_end_after_max_coast() {
        let mut tr = IouTracker::new(
            IouConfig {
                iou_threshold: 0.1,
                ..IouConfig::default()
            },
            3,
        );
        tr.update(&[det(0, 0.0)]);
        tr.update(&[det(0, 2.0)]);
        // An interval-skipped frame: predicted on at 2 px a frame.
        let t = tr.predict();
        assert!((t[0].bbox.x1 - 4.0).abs() < 1e-4, "{:?}", t[0].bbox);
        tr.update(&[det(0, 6.0)]); // 2 px a frame
        let t = tr.predict();
        assert_eq!((t[0].id, t[0].lost, t[0].misses), (1, 1, 0));
        assert!(t[0].coasting());
        assert!((t[0].bbox.x1 - 8.0).abs() < 1e-4, "{:?}", t[0].bbox);
        let t = tr.predict();
        assert!((t[0].bbox.x1 - 10.0).abs() < 1e-4, "{:?}", t[0].bbox);
        // The detector is back: the target is matched near its prediction and stops coasting.
        let t = tr.update(&[det(0, 12.0)]);
        assert_eq!((t[0].id, t[0].lost, t[0].coasting()), (1, 0, false));
        for _ in 0..3 {
            assert_eq!(tr.predict().len(), 1);
        }
        assert!(
            tr.predict().is_empty(),
            "ends after max_coast predicted frames"
        );
        assert!(tr.is_empty());
    }

    #[test]
    fn matching_is_against_the_box_predicted_for_this_frame() {
        // 4 px a frame on a 10 px box: after two skipped frames the last box overlaps the
        // next detection by nothing, the prediction by all of it.
        let mut tr = tracker(IouConfig::default());
        tr.update(&[det(0, 0.0)]);
        assert_eq!(ids(&tr.update(&[det(0, 4.0)])), [1]);
        tr.predict();
        tr.predict();
        assert_eq!(ids(&tr.update(&[det(0, 16.0)])), [1]);
    }

    #[test]
    fn probation_age_holds_a_new_target_back_until_it_has_been_seen_long_enough() {
        let mut tr = tracker(IouConfig {
            probation_age: 2,
            early_termination_age: 0,
            ..IouConfig::default()
        });
        assert!(tr.update(&[det(0, 0.0)]).is_empty(), "age 0: tentative");
        assert!(tr.update(&[det(0, 1.0)]).is_empty(), "age 1: tentative");
        assert_eq!(ids(&tr.update(&[det(0, 2.0)])), [1], "age 2: active");
        assert!(!tr.predict().is_empty(), "an active target coasts");
        // A tentative target is not shown while predicted either.
        let mut tr = tracker(IouConfig {
            probation_age: 2,
            ..IouConfig::default()
        });
        tr.update(&[det(0, 0.0)]);
        assert!(tr.predict().is_empty());
        // probation 0 (the default): shown at once.
        let mut tr = tracker(IouConfig::default());
        assert_eq!(ids(&tr.update(&[det(0, 0.0)])), [1]);
    }

    #[test]
    fn early_termination_ends_a_tentative_target_missed_too_often() {
        let run = |early: u32| {
            let mut tr = tracker(IouConfig {
                probation_age: 3,
                early_termination_age: early,
                ..IouConfig::default()
            });
            tr.update(&[det(0, 0.0)]);
            tr.update(&[]);
            tr.update(&[]);
            tr.len()
        };
        assert_eq!(run(1), 0, "missed once: ended");
        assert_eq!(run(2), 0, "missed twice: ended");
        assert_eq!(run(3), 1, "missed twice of 3: kept");
        assert_eq!(run(0), 1, "0: never early");
        // …but never past the shadow age: a tentative target missed for good ends too.
        let mut tr = tracker(IouConfig {
            probation_age: 2,
            early_termination_age: 0,
            max_shadow_age: 3,
            ..IouConfig::default()
        });
        tr.update(&[det(0, 0.0)]);
        for _ in 0..3 {
            tr.update(&[]);
        }
        assert_eq!(tr.len(), 1, "missed 3 times: kept");
        tr.update(&[]);
        assert!(tr.is_empty(), "missed 4 times: ended");
        // An active target is not ended early: shadow tracking applies.
        let mut tr = tracker(IouConfig {
            early_termination_age: 1,
            ..IouConfig::default()
        });
        tr.update(&[det(0, 0.0)]);
        tr.update(&[]);
        assert_eq!(tr.len(), 1);
    }

    #[test]
    fn iou_threshold_is_the_least_overlap_that_continues_a_target() {
        // 10 px boxes 4 px apart: IoU 6/14 = 0.43.
        let run = |threshold: f32| {
            let mut tr = tracker(IouConfig {
                iou_threshold: threshold,
                ..IouConfig::default()
            });
            tr.update(&[det(0, 0.0)]);
            ids(&tr.update(&[det(0, 4.0)]))
        };
        assert_eq!(run(0.4), [1]);
        assert_eq!(run(0.45), [2], "below the threshold: a new target");
    }

    #[test]
    fn a_shadow_target_stays_where_it_was_last_seen() {
        // Moving 4 px a frame, then missed: on inferred and skipped frames alike its box does
        // not move, and a detection where it was continues it.
        for skipped in [0, 2] {
            let mut tr = tracker(IouConfig::default());
            tr.update(&[det(0, 0.0)]);
            tr.update(&[det(0, 4.0)]);
            tr.update(&[]);
            for _ in 0..skipped {
                assert!(tr.predict().is_empty());
            }
            assert_eq!(ids(&tr.update(&[det(0, 4.0)])), [1], "skipped {skipped}");
        }
    }

    #[test]
    fn max_shadow_age_is_how_long_a_missed_target_is_kept_unseen() {
        let kept = |age: u32, misses: usize| {
            let mut tr = tracker(IouConfig {
                max_shadow_age: age,
                ..IouConfig::default()
            });
            tr.update(&[det(0, 0.0)]);
            for _ in 0..misses {
                assert!(tr.update(&[]).is_empty(), "a shadow target is not shown");
            }
            ids(&tr.update(&[det(0, 0.0)]))
        };
        assert_eq!(kept(3, 3), [1], "back after 3 misses: same id");
        assert_eq!(kept(3, 4), [2], "after 4 it had ended: a new id");
        assert_eq!(kept(0, 1), [2]);
    }

    #[test]
    fn a_detection_overlapping_an_existing_target_starts_no_new_one() {
        // Two detections of one class overlapping by IoU 0.67 (8 of 12 px): one target, the
        // other detection refused at 0.5, a second target when the limit is off (1.0).
        let dets = [scored(0, 0.0, 0.9), scored(0, 2.0, 0.8)];
        let mut tr = tracker(IouConfig {
            max_new_overlap: 0.5,
            ..IouConfig::default()
        });
        assert_eq!(tr.update(&dets).len(), 1);
        assert_eq!(tr.update(&dets).len(), 1, "still refused next frame");
        let mut tr = tracker(IouConfig::default());
        assert_eq!(tr.update(&dets).len(), 2);
        // It is the better-scored detection that starts the target.
        let mut tr = tracker(IouConfig {
            max_new_overlap: 0.5,
            ..IouConfig::default()
        });
        let t = tr.update(&[scored(0, 0.0, 0.5), scored(0, 2.0, 0.8)]);
        assert!((t[0].bbox.x1 - 2.0).abs() < 1e-6);
        // A shadow target still refuses a duplicate beside its new detection.
        let mut tr = tracker(IouConfig {
            max_new_overlap: 0.1,
            iou_threshold: 0.9,
            ..IouConfig::default()
        });
        tr.update(&[det(0, 0.0)]);
        assert!(tr.update(&[det(0, 5.0)]).is_empty());
        assert_eq!(tr.len(), 1);
    }

    #[test]
    fn detections_below_min_confidence_are_not_tracked() {
        let mut tr = tracker(IouConfig {
            min_confidence: 0.5,
            ..IouConfig::default()
        });
        assert!(tr.update(&[scored(0, 0.0, 0.4)]).is_empty());
        assert_eq!(tr.len(), 0);
        tr.update(&[scored(0, 0.0, 0.6)]);
        // A low-scored detection does not keep a target out of the shadow either.
        assert!(tr.update(&[scored(0, 0.0, 0.4)]).is_empty());
        assert_eq!(tr.len(), 1);
    }

    #[test]
    fn class_match_keeps_a_target_to_its_class() {
        let run = |class_match: bool| {
            let mut tr = tracker(IouConfig {
                class_match,
                ..IouConfig::default()
            });
            tr.update(&[det(0, 0.0)]);
            ids(&tr.update(&[det(1, 1.0)]))
        };
        assert_eq!(run(true), [2], "another class starts its own target");
        assert_eq!(run(false), [1], "off: the box continues the target");
    }

    #[test]
    fn max_targets_caps_the_targets_shadow_ones_included() {
        let mut tr = tracker(IouConfig {
            max_targets: 2,
            ..IouConfig::default()
        });
        let t = tr.update(&[
            scored(0, 0.0, 0.5),
            scored(0, 40.0, 0.9),
            scored(0, 80.0, 0.7),
        ]);
        assert_eq!(t.len(), 2, "{t:?}");
        assert!(t.iter().all(|t| t.score >= 0.7), "the best-scored two");
        // Both in the shadow: still counted, a new object starts nothing.
        assert!(tr.update(&[det(0, 200.0)]).is_empty());
        assert_eq!(tr.len(), 2);
    }

    proptest! {
        /// Track ids are unique within a frame and never reused once a target has ended, for
        /// any settings.
        #[test]
        fn ids_unique_and_never_reused(
            frames in prop::collection::vec(prop::collection::vec((0u32..2, 0.0f32..100.0, 0.0f32..1.0), 0..6), 1..40),
            probation in 0u32..3, early in 0u32..3, shadow in 0u32..3, overlap in 0.2f32..1.0,
            class_match: bool, max_targets in 1usize..8,
        ) {
            let mut tr = IouTracker::new(IouConfig {
                max_shadow_age: shadow, probation_age: probation, early_termination_age: early,
                max_new_overlap: overlap, class_match, max_targets, min_confidence: 0.2,
                ..IouConfig::default()
            }, 2);
            let mut ended = std::collections::BTreeSet::new();
            let mut previous = std::collections::BTreeSet::new();
            for (i, f) in frames.into_iter().enumerate() {
                let dets: Vec<Detection> = f.into_iter().map(|(c, x, s)| scored(c, x, s)).collect();
                if i % 5 == 4 { tr.predict(); } else { tr.update(&dets); }
                prop_assert!(tr.len() <= max_targets);
                let now: std::collections::BTreeSet<u64> = tr.targets.iter().map(|t| t.track.id).collect();
                prop_assert_eq!(now.len(), tr.len());
                prop_assert!(now.is_disjoint(&ended));
                ended.extend(previous.difference(&now).copied());
                previous = now;
            }
        }
    }
}
