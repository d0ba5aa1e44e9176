//! The IOU tracker: greedy matching of detections to tracks of the same class by `IoU`, with a
//! constant-velocity prediction for every frame the detector did not run on (skipped by
//! interval, detector busy or down).

use vigil_detect::{BBox, Detection};
pub use vigil_frame::Track;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerConfig {
    /// A detection joins a track when their `IoU` is at least this.
    pub iou_threshold: f32,
    /// A track survives this many inferred frames without a match.
    pub max_age: u32,
    /// A track is predicted through at most this many frames without any detector output.
    pub max_coast: u32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            iou_threshold: 0.3,
            max_age: 30,
            max_coast: 90,
        }
    }
}

/// A track and its motion.
#[derive(Debug, Clone, Copy)]
struct Slot {
    track: Track,
    /// The box of the last match.
    anchor: BBox,
    /// Frames since `anchor`.
    since: u32,
    /// Centre motion per frame.
    velocity: [f32; 2],
}

#[derive(Debug, Clone)]
pub struct Tracker {
    cfg: TrackerConfig,
    tracks: Vec<Slot>,
    next_id: u64,
}

fn centre(b: &BBox) -> [f32; 2] {
    [f32::midpoint(b.x1, b.x2), f32::midpoint(b.y1, b.y2)]
}

impl Tracker {
    #[must_use]
    pub fn new(cfg: TrackerConfig) -> Self {
        Self {
            cfg,
            tracks: Vec::new(),
            next_id: 1,
        }
    }

    fn live(&self) -> Vec<Track> {
        self.tracks.iter().map(|s| s.track).collect()
    }

    /// Advances one inferred frame: matches its detections to the tracks. Returns the live
    /// tracks, ordered by id.
    pub fn update(&mut self, detections: &[Detection]) -> Vec<Track> {
        for s in &mut self.tracks {
            s.since = s.since.saturating_add(1);
        }
        // All (track, detection) pairs of one class above the threshold, best IoU first;
        // ties fall back to index order so the result depends only on the input.
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (t, slot) in self.tracks.iter().enumerate() {
            let track = &slot.track;
            for (d, det) in detections.iter().enumerate() {
                let iou = track.bbox.iou(&det.bbox);
                if det.class == track.class && iou >= self.cfg.iou_threshold {
                    pairs.push((iou, t, d));
                }
            }
        }
        pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
        let mut track_used = vec![false; self.tracks.len()];
        let mut det_used = vec![false; detections.len()];
        for (_, t, d) in pairs {
            if track_used[t] || det_used[d] {
                continue;
            }
            (track_used[t], det_used[d]) = (true, true);
            let slot = &mut self.tracks[t];
            let det = detections[d];
            let (old, new) = (centre(&slot.anchor), centre(&det.bbox));
            let dt = slot.since.max(1) as f32;
            let v = [(new[0] - old[0]) / dt, (new[1] - old[1]) / dt];
            slot.velocity = if slot.track.hits == 1 {
                v
            } else {
                [
                    0.5 * (slot.velocity[0] + v[0]),
                    0.5 * (slot.velocity[1] + v[1]),
                ]
            };
            (slot.anchor, slot.since) = (det.bbox, 0);
            let track = &mut slot.track;
            track.bbox = det.bbox;
            track.score = det.score;
            track.hits += 1;
            track.misses = 0;
        }
        for (slot, used) in self.tracks.iter_mut().zip(&track_used) {
            slot.track.lost = 0;
            if !used {
                slot.track.misses += 1;
            }
        }
        let max_age = self.cfg.max_age;
        self.tracks.retain(|s| s.track.misses <= max_age);
        for (det, _) in detections.iter().zip(&det_used).filter(|(_, used)| !**used) {
            self.tracks.push(Slot {
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
            });
            self.next_id += 1;
        }
        self.live()
    }

    /// Advances one frame the detector did not run on: every track moves on at its last
    /// velocity and is marked coasting (it does not age: `misses` counts inferred frames); a
    /// track predicted for more than `max_coast` frames in a row ends. Returns the live
    /// tracks, ordered by id.
    pub fn predict(&mut self) -> Vec<Track> {
        for s in &mut self.tracks {
            s.since = s.since.saturating_add(1);
            s.track.lost += 1;
            let dt = s.since as f32;
            let (dx, dy) = (s.velocity[0] * dt, s.velocity[1] * dt);
            let a = s.anchor;
            s.track.bbox = BBox::new(a.x1 + dx, a.y1 + dy, a.x2 + dx, a.y2 + dy);
        }
        let max_coast = self.cfg.max_coast;
        self.tracks.retain(|s| s.track.lost <= max_coast);
        self.live()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn det(class: u32, x: f32) -> Detection {
        Detection {
            class,
            score: 0.9,
            bbox: BBox::new(x, 0.0, x + 10.0, 10.0),
        }
    }

    #[test]
    fn moving_box_keeps_its_id_and_a_lost_one_ages_out() {
        let mut tr = Tracker::new(TrackerConfig {
            iou_threshold: 0.3,
            max_age: 2,
            max_coast: 90,
        });
        let ids: Vec<u64> = tr
            .update(&[det(0, 0.0), det(1, 50.0)])
            .iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(ids, vec![1, 2]);
        let t = tr.update(&[det(0, 2.0)]);
        assert_eq!((t[0].id, t[0].misses, t[1].id, t[1].misses), (1, 0, 2, 1));
        assert!(t[1].coasting());
        // Frames not inferred do not age tracks: they are predicted and marked.
        let t = tr.predict();
        assert_eq!(t.len(), 2);
        assert!(t.iter().all(|t| t.coasting() && t.lost == 1));
        tr.update(&[det(0, 4.0)]);
        let t = tr.update(&[det(0, 6.0)]);
        assert_eq!(t.iter().map(|t| t.id).collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn tracks_coast_at_their_velocity_when_detections_stop_and_end_after_max_coast() {
        let mut tr = Tracker::new(TrackerConfig {
            iou_threshold: 0.1,
            max_age: 5,
            max_coast: 3,
        });
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
        // The detector is back: the track is matched near its prediction and stops coasting.
        let t = tr.update(&[det(0, 12.0)]);
        assert_eq!((t[0].id, t[0].lost, t[0].coasting()), (1, 0, false));
        for _ in 0..3 {
            assert_eq!(tr.predict().len(), 1);
        }
        assert!(
            tr.predict().is_empty(),
            "ends after max_coast predicted frames"
        );
    }

    proptest! {
        /// Track ids are unique within a frame and never reused once a track has ended.
        #[test]
        fn ids_unique_and_never_reused(
            frames in prop::collection::vec(prop::collection::vec((0u32..2, 0.0f32..100.0), 0..6), 1..40),
        ) {
            let mut tr = Tracker::new(TrackerConfig { iou_threshold: 0.3, max_age: 1, max_coast: 2 });
            let mut ended = std::collections::BTreeSet::new();
            let mut previous = std::collections::BTreeSet::new();
            for (i, f) in frames.into_iter().enumerate() {
                let dets: Vec<Detection> = f.into_iter().map(|(c, x)| det(c, x)).collect();
                let live = if i % 5 == 4 { tr.predict() } else { tr.update(&dets) };
                let now: std::collections::BTreeSet<u64> = live.iter().map(|t| t.id).collect();
                prop_assert_eq!(now.len(), tr.tracks.len());
                prop_assert!(now.is_disjoint(&ended));
                ended.extend(previous.difference(&now).copied());
                previous = now;
            }
        }
    }
}
