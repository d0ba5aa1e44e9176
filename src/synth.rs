//! Detections made from ground truth with seeded, controlled noise, for measuring trackers:
//! box jitter, missed detections, occlusions (runs of frames in which a person is missed or
//! seen with a low score), false positives (some as sure as a real detection) and a spread of
//! scores. The same ground truth,
//! level and seed give the same detections, bit for bit (a counter-based generator, frames and
//! ids in order).

use std::collections::BTreeMap;

use vigil_detect::{BBox, Detection};

/// How noisy the detector is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Noise {
    pub name: &'static str,
    /// Box centre and size jitter: standard deviation as a fraction of the box's size.
    pub jitter: f64,
    /// A visible person missed on a frame.
    pub miss: f64,
    /// A visible person becoming occluded on a frame (an occlusion lasts 4 frames on average:
    /// each frame half the time missed, else seen with a score from 0.1 to 0.45).
    pub occlude: f64,
    /// False positives per frame (Poisson), scored 0.1 to 0.75, most of them low.
    pub false_positives: f64,
    /// Standard deviation of a visible person's score around 0.8 (clamped to 0.3–0.99).
    pub score_spread: f64,
}

/// The levels the benchmark reports.
pub const LEVELS: [Noise; 3] = [
    Noise {
        name: "low",
        jitter: 0.02,
        miss: 0.02,
        occlude: 0.01,
        false_positives: 0.2,
        score_spread: 0.05,
    },
    Noise {
        name: "medium",
        jitter: 0.05,
        miss: 0.05,
        occlude: 0.03,
        false_positives: 1.0,
        score_spread: 0.10,
    },
    Noise {
        name: "high",
        jitter: 0.08,
        miss: 0.10,
        occlude: 0.06,
        false_positives: 2.0,
        score_spread: 0.15,
    },
];

/// A chance of an occlusion ending on a frame.
const RECOVER: f64 = 0.25;

/// `SplitMix64`: small, fast, and the same everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(f64::MIN_POSITIVE);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Poisson with mean `lambda` (Knuth's product of uniforms; small means only).
    pub fn poisson(&mut self, lambda: f64) -> u32 {
        let limit = (-lambda).exp();
        let mut p = 1.0;
        let mut k = 0u32;
        loop {
            p *= self.uniform();
            if p <= limit || k >= 64 {
                return k;
            }
            k += 1;
        }
    }

    fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }
}

/// One ground-truth box: frame (from 1), object id, box in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Truth {
    pub frame: u32,
    pub id: u64,
    pub bbox: BBox,
}

/// Each frame's detections (class 0), frames 1 to the last frame of `truth`.
#[must_use]
pub fn detections(truth: &[Truth], noise: &Noise, seed: u64) -> BTreeMap<u32, Vec<Detection>> {
    let mut by_frame: BTreeMap<u32, Vec<&Truth>> = BTreeMap::new();
    for t in truth {
        by_frame.entry(t.frame).or_default().push(t);
    }
    let last = by_frame.keys().next_back().copied().unwrap_or(0);
    let (width, height) = truth.iter().fold((1.0f64, 1.0f64), |(w, h), t| {
        (w.max(f64::from(t.bbox.x2)), h.max(f64::from(t.bbox.y2)))
    });
    let mut rng = Rng::new(seed);
    let mut occluded: BTreeMap<u64, bool> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for frame in 1..=last {
        let mut dets = Vec::new();
        let mut people = by_frame.remove(&frame).unwrap_or_default();
        people.sort_by_key(|t| t.id);
        for t in &people {
            let hidden = occluded.entry(t.id).or_insert(false);
            *hidden = if *hidden {
                !rng.chance(RECOVER)
            } else {
                rng.chance(noise.occlude)
            };
            let score = if *hidden {
                if rng.chance(0.5) {
                    continue;
                }
                rng.between(0.1, 0.45)
            } else {
                if rng.chance(noise.miss) {
                    continue;
                }
                (0.8 + noise.score_spread * rng.normal()).clamp(0.3, 0.99)
            };
            let b = t.bbox;
            let (w, h) = (f64::from(b.x2 - b.x1), f64::from(b.y2 - b.y1));
            let cx = f64::from(b.x1) + w / 2.0 + noise.jitter * w * rng.normal();
            let cy = f64::from(b.y1) + h / 2.0 + noise.jitter * h * rng.normal();
            let w = (w * (1.0 + noise.jitter * rng.normal())).max(2.0);
            let h = (h * (1.0 + noise.jitter * rng.normal())).max(2.0);
            dets.push(detection(cx, cy, w, h, score));
        }
        for _ in 0..rng.poisson(noise.false_positives) {
            // Person-sized: a tenth to a third of the frame's height, half as wide.
            let h = height * rng.between(0.1, 0.35);
            let w = h * rng.between(0.35, 0.6);
            let cx = rng.between(w / 2.0, (width - w / 2.0).max(w / 2.0));
            let cy = rng.between(h / 2.0, (height - h / 2.0).max(h / 2.0));
            // Mostly unsure, with a tail as sure as a real person: 0.1 + 0.65·u², up to 0.75
            // (12 % above 0.6, half above 0.25).
            let u = rng.uniform();
            dets.push(detection(cx, cy, w, h, 0.1 + 0.65 * u * u));
        }
        out.insert(frame, dets);
    }
    out
}

fn detection(cx: f64, cy: f64, w: f64, h: f64, score: f64) -> Detection {
    Detection {
        class: 0,
        score: score as f32,
        bbox: BBox::new(
            (cx - w / 2.0) as f32,
            (cy - h / 2.0) as f32,
            (cx + w / 2.0) as f32,
            (cy + h / 2.0) as f32,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn walk(frames: u32, people: u64) -> Vec<Truth> {
        (1..=frames)
            .flat_map(|f| {
                (0..people).map(move |id| Truth {
                    frame: f,
                    id,
                    bbox: BBox::new(
                        10.0 + 100.0 * id as f32 + f as f32,
                        50.0,
                        50.0 + 100.0 * id as f32 + f as f32,
                        150.0,
                    ),
                })
            })
            .collect()
    }

    #[test]
    fn same_seed_same_detections_other_seed_other_ones() {
        let truth = walk(50, 4);
        let a = detections(&truth, &LEVELS[1], 7);
        assert_eq!(a, detections(&truth, &LEVELS[1], 7));
        assert_ne!(a, detections(&truth, &LEVELS[1], 8));
        assert_eq!(a.len(), 50, "every frame, detections or not");
    }

    #[test]
    fn each_level_is_noisier_than_the_one_before() {
        let truth = walk(400, 5);
        let stats: Vec<(f64, f64, f64)> = LEVELS
            .iter()
            .map(|n| {
                let d = detections(&truth, n, 1);
                let all: Vec<&Detection> = d.values().flatten().collect();
                let sure = all.iter().filter(|d| d.score >= 0.5).count() as f64;
                let low = all.len() as f64 - sure;
                // Offset of the sure detections' centres from their truth (nearest box).
                let mut err = 0.0;
                for (f, dets) in &d {
                    for det in dets.iter().filter(|d| d.score >= 0.5) {
                        let cx = f64::from(det.bbox.x1 + det.bbox.x2) / 2.0;
                        err += truth
                            .iter()
                            .filter(|t| t.frame == *f)
                            .map(|t| (cx - f64::from(t.bbox.x1 + t.bbox.x2) / 2.0).abs())
                            .fold(f64::INFINITY, f64::min);
                    }
                }
                (sure, low, err / sure)
            })
            .collect();
        for w in stats.windows(2) {
            assert!(w[1].0 < w[0].0, "fewer sure detections: {stats:?}");
            assert!(w[1].1 > w[0].1, "more unsure ones: {stats:?}");
            assert!(w[1].2 > w[0].2, "more jitter: {stats:?}");
        }
        // Low noise: nearly every person found, close to the truth.
        let (sure, _, err) = stats[0];
        assert!(sure > 0.9 * 2000.0 && err < 1.5, "{stats:?}");
    }

    #[test]
    fn the_generator_is_uniform_and_normal_enough() {
        let mut r = Rng::new(3);
        let n = 100_000;
        let mean = (0..n).map(|_| r.uniform()).sum::<f64>() / f64::from(n);
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
        let v: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let m = v.iter().sum::<f64>() / f64::from(n);
        let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / f64::from(n);
        assert!(m.abs() < 0.02 && (var - 1.0).abs() < 0.03, "{m} {var}");
        let p = (0..n).map(|_| f64::from(r.poisson(2.0))).sum::<f64>() / f64::from(n);
        assert!((p - 2.0).abs() < 0.03, "{p}");
    }
}
