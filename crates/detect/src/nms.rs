//! Greedy non-maximum suppression, class-aware by default (nvinfer cluster-mode 2).

use std::collections::BTreeMap;

use crate::geometry::Detection;

/// Settings of one class that override the global ones (nvinfer's `[class-attrs-N]`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ClassAttrs {
    /// Pre-cluster threshold.
    pub threshold: Option<f32>,
    pub iou_threshold: Option<f32>,
    /// Keep at most this many boxes of the class.
    pub top_k: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NmsConfig {
    /// A box is dropped when its `IoU` with a kept box of the same class exceeds this.
    pub iou_threshold: f32,
    /// Keep at most this many boxes overall (highest scores first).
    pub top_k: usize,
    /// Suppress across classes too.
    pub class_agnostic: bool,
    /// Per-class overrides.
    pub classes: BTreeMap<u32, ClassAttrs>,
}

impl Default for NmsConfig {
    fn default() -> Self {
        Self {
            iou_threshold: 0.45,
            top_k: 300,
            class_agnostic: false,
            classes: BTreeMap::new(),
        }
    }
}

/// Returns the kept detections, best score first. Ties break by input order, so the result
/// depends only on the input. Non-finite scores are dropped.
#[must_use]
pub fn nms(candidates: &[Detection], cfg: &NmsConfig) -> Vec<Detection> {
    let mut order: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].score.is_finite())
        .collect();
    order.sort_by(|&a, &b| {
        candidates[b]
            .score
            .total_cmp(&candidates[a].score)
            .then(a.cmp(&b))
    });
    let mut kept: Vec<Detection> = Vec::new();
    let mut per_class: BTreeMap<u32, usize> = BTreeMap::new();
    for i in order {
        if kept.len() >= cfg.top_k {
            break;
        }
        let c = &candidates[i];
        let attrs = cfg.classes.get(&c.class).copied().unwrap_or_default();
        let count = per_class.entry(c.class).or_default();
        if attrs.top_k.is_some_and(|k| *count >= k) {
            continue;
        }
        let iou = attrs.iou_threshold.unwrap_or(cfg.iou_threshold);
        let suppressed = kept
            .iter()
            .any(|k| (cfg.class_agnostic || k.class == c.class) && k.bbox.iou(&c.bbox) > iou);
        if !suppressed {
            *count += 1;
            kept.push(*c);
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BBox;
    use proptest::prelude::*;

    fn det(class: u32, score: f32, x: f32, y: f32, w: f32, h: f32) -> Detection {
        Detection {
            class,
            score,
            bbox: BBox::new(x, y, x + w, y + h),
        }
    }

    #[test]
    fn overlapping_same_class_is_suppressed_other_class_kept() {
        let c = [
            det(0, 0.9, 0.0, 0.0, 10.0, 10.0),
            det(0, 0.8, 1.0, 1.0, 10.0, 10.0),
            det(1, 0.7, 1.0, 1.0, 10.0, 10.0),
        ];
        let kept = nms(&c, &NmsConfig::default());
        assert_eq!(kept, vec![c[0], c[2]]);
        let agnostic = nms(
            &c,
            &NmsConfig {
                class_agnostic: true,
                ..NmsConfig::default()
            },
        );
        assert_eq!(agnostic, vec![c[0]]);
    }

    #[test]
    fn per_class_iou_and_top_k_override_the_global_ones() {
        let c = [
            det(0, 0.9, 0.0, 0.0, 10.0, 10.0),
            det(0, 0.8, 3.0, 0.0, 10.0, 10.0), // IoU 0.54 with the first
            det(1, 0.7, 0.0, 0.0, 10.0, 10.0),
            det(1, 0.6, 50.0, 0.0, 10.0, 10.0),
        ];
        let mut cfg = NmsConfig::default();
        assert_eq!(nms(&c, &cfg).len(), 3);
        cfg.classes.insert(
            0,
            ClassAttrs {
                iou_threshold: Some(0.6),
                ..ClassAttrs::default()
            },
        );
        cfg.classes.insert(
            1,
            ClassAttrs {
                top_k: Some(1),
                ..ClassAttrs::default()
            },
        );
        assert_eq!(nms(&c, &cfg), vec![c[0], c[1], c[2]]);
    }

    fn arb_dets() -> impl Strategy<Value = Vec<Detection>> {
        prop::collection::vec(
            (
                0u32..3,
                0.0f32..1.0,
                0.0f32..100.0,
                0.0f32..100.0,
                1.0f32..50.0,
                1.0f32..50.0,
            )
                .prop_map(|(c, s, x, y, w, h)| det(c, s, x, y, w, h)),
            0..60,
        )
    }

    proptest! {
        /// NMS keeps the top-scoring box.
        #[test]
        fn keeps_the_best(c in arb_dets()) {
            let kept = nms(&c, &NmsConfig::default());
            if let Some(best) = c.iter().max_by(|a, b| a.score.total_cmp(&b.score)) {
                prop_assert!(kept[0].score.total_cmp(&best.score).is_eq());
            }
        }

        /// No two kept boxes of one class overlap above the threshold, and output ⊆ input.
        #[test]
        fn no_same_class_pair_above_threshold(c in arb_dets(), thr in 0.1f32..0.9) {
            let cfg = NmsConfig { iou_threshold: thr, ..NmsConfig::default() };
            let kept = nms(&c, &cfg);
            for (i, a) in kept.iter().enumerate() {
                prop_assert!(c.contains(a));
                for b in &kept[i + 1..] {
                    prop_assert!(a.class != b.class || a.bbox.iou(&b.bbox) <= thr);
                }
            }
        }

        /// NMS is idempotent.
        #[test]
        fn idempotent(c in arb_dets()) {
            let once = nms(&c, &NmsConfig::default());
            prop_assert_eq!(nms(&once, &NmsConfig::default()), once);
        }

        /// NaN scores are dropped, never kept, never a panic.
        #[test]
        fn survives_nan(mut c in arb_dets(), at in 0usize..60) {
            if !c.is_empty() {
                let i = at % c.len();
                c[i].score = f32::NAN;
            }
            prop_assert!(nms(&c, &NmsConfig::default()).iter().all(|d| d.score.is_finite()));
        }
    }
}
