//! The IOU tracker: greedy matching of detections to tracks of the same class by `IoU`.

use vigil_detect::{BBox, Detection};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrackerConfig {
    /// A detection joins a track when their `IoU` is at least this.
    pub iou_threshold: f32,
    /// A track survives this many inferred frames without a match.
    pub max_age: u32,
}

impl Default for TrackerConfig {
    fn default() -> Self {
        Self {
            iou_threshold: 0.3,
            max_age: 30,
        }
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
}

impl Track {
    /// True when the track is carried on without a detection this frame.
    #[must_use]
    pub fn coasting(&self) -> bool {
        self.misses > 0
    }
}

#[derive(Debug, Clone)]
pub struct Tracker {
    cfg: TrackerConfig,
    tracks: Vec<Track>,
    next_id: u64,
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

    /// Advances one frame. `inferred` is false for frames the detector skipped: tracks then
    /// keep their boxes and do not age. Returns the live tracks, ordered by id.
    pub fn update(&mut self, detections: &[Detection], inferred: bool) -> &[Track] {
        if !inferred {
            return &self.tracks;
        }
        // All (track, detection) pairs of one class above the threshold, best IoU first;
        // ties fall back to index order so the result depends only on the input.
        let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
        for (t, track) in self.tracks.iter().enumerate() {
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
            let track = &mut self.tracks[t];
            track.bbox = detections[d].bbox;
            track.score = detections[d].score;
            track.hits += 1;
            track.misses = 0;
        }
        for (track, used) in self.tracks.iter_mut().zip(&track_used) {
            if !used {
                track.misses += 1;
            }
        }
        let max_age = self.cfg.max_age;
        self.tracks.retain(|t| t.misses <= max_age);
        for (det, _) in detections.iter().zip(&det_used).filter(|(_, used)| !**used) {
            self.tracks.push(Track {
                id: self.next_id,
                class: det.class,
                score: det.score,
                bbox: det.bbox,
                hits: 1,
                misses: 0,
            });
            self.next_id += 1;
        }
        &self.tracks
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
        });
        let ids: Vec<u64> = tr
            .update(&[det(0, 0.0), det(1, 50.0)], true)
            .iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(ids, vec![1, 2]);
        let t = tr.update(&[det(0, 2.0)], true);
        assert_eq!((t[0].id, t[0].misses, t[1].id, t[1].misses), (1, 0, 2, 1));
        assert!(t[1].coasting());
        // Skipped frames do not age tracks.
        assert_eq!(tr.update(&[], false).len(), 2);
        tr.update(&[det(0, 4.0)], true);
        let t = tr.update(&[det(0, 6.0)], true);
        assert_eq!(t.iter().map(|t| t.id).collect::<Vec<_>>(), vec![1]);
    }

    proptest! {
        /// Track ids are unique within a frame and never reused once a track has ended.
        #[test]
        fn ids_unique_and_never_reused(
            frames in prop::collection::vec(prop::collection::vec((0u32..2, 0.0f32..100.0), 0..6), 1..40),
        ) {
            let mut tr = Tracker::new(TrackerConfig { iou_threshold: 0.3, max_age: 1 });
            let mut ended = std::collections::BTreeSet::new();
            let mut previous = std::collections::BTreeSet::new();
            for f in frames {
                let dets: Vec<Detection> = f.into_iter().map(|(c, x)| det(c, x)).collect();
                let now: std::collections::BTreeSet<u64> = tr.update(&dets, true).iter().map(|t| t.id).collect();
                prop_assert_eq!(now.len(), tr.tracks.len());
                prop_assert!(now.is_disjoint(&ended));
                ended.extend(previous.difference(&now).copied());
                previous = now;
            }
        }
    }
}
