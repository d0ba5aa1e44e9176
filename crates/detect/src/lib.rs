//! Detection maths with no I/O: box geometry, the letterbox that maps network pixels back to
//! source pixels, decoders for the YOLO output layouts vigil understands, and class-aware NMS.

mod decode;
mod geometry;
mod nms;

pub use decode::{
    DecodeError, Layout, LayoutMismatch, OutputShape, OutputTensor, choose_layout, decode,
    decoded_outputs,
};
pub use geometry::{BBox, Detection, Letterbox, TensorLayout};
pub use nms::{ClassAttrs, NmsConfig, nms};

/// Everything that turns raw model outputs into a frame's detections.
#[derive(Debug, Clone, PartialEq)]
pub struct PostprocessConfig {
    /// The output layout; `None` picks one from the output's shape.
    pub layout: Option<Layout>,
    /// Candidates scoring below this are dropped before NMS (nvinfer's pre-cluster-threshold);
    /// `nms.classes` may set it per class.
    pub threshold: f32,
    pub nms: NmsConfig,
}

impl PostprocessConfig {
    /// The pre-cluster threshold of a class.
    #[must_use]
    pub fn threshold_of(&self, class: u32) -> f32 {
        self.nms
            .classes
            .get(&class)
            .and_then(|a| a.threshold)
            .unwrap_or(self.threshold)
    }

    /// The lowest threshold of any class: what a decoder keeps before per-class thresholds.
    #[must_use]
    pub fn lowest_threshold(&self) -> f32 {
        self.nms
            .classes
            .values()
            .filter_map(|a| a.threshold)
            .fold(self.threshold, f32::min)
    }
}

impl Default for PostprocessConfig {
    fn default() -> Self {
        Self {
            layout: None,
            threshold: 0.25,
            nms: NmsConfig::default(),
        }
    }
}

/// Decode, NMS, then map the kept boxes back to source pixels through the letterbox.
pub fn postprocess(
    outputs: &[OutputTensor],
    cfg: &PostprocessConfig,
    letterbox: &Letterbox,
) -> Result<Vec<Detection>, DecodeError> {
    let candidates = decode(outputs, cfg.layout, cfg.lowest_threshold())?;
    Ok(postprocess_candidates(candidates, cfg, letterbox))
}

/// The rest of [`postprocess`] for candidates already decoded (by a GPU kernel, at
/// [`PostprocessConfig::lowest_threshold`]): per-class thresholds, NMS, source pixels.
#[must_use]
pub fn postprocess_candidates(
    mut candidates: Vec<Detection>,
    cfg: &PostprocessConfig,
    letterbox: &Letterbox,
) -> Vec<Detection> {
    if !cfg.nms.classes.is_empty() {
        candidates.retain(|d| d.score >= cfg.threshold_of(d.class));
    }
    nms(&candidates, &cfg.nms)
        .into_iter()
        .map(|d| Detection {
            bbox: letterbox.to_source(&d.bbox),
            ..d
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_class_pre_cluster_thresholds_apply_before_nms() {
        // [1, 3, 6]: class 0 at 0.3, class 1 at 0.3, class 1 at 0.1.
        let rows = vec![
            0.0, 0.0, 10.0, 10.0, 0.3, 0.0, //
            20.0, 0.0, 30.0, 10.0, 0.3, 1.0, //
            40.0, 0.0, 50.0, 10.0, 0.1, 1.0,
        ];
        let out = OutputTensor {
            name: "output".into(),
            shape: vec![1, 3, 6],
            data: rows,
        };
        let mut cfg = PostprocessConfig {
            threshold: 0.5,
            ..PostprocessConfig::default()
        };
        cfg.nms.classes.insert(
            1,
            ClassAttrs {
                threshold: Some(0.2),
                ..ClassAttrs::default()
            },
        );
        let lb = Letterbox::fit(100, 100, 100, 100, true, true);
        let got = postprocess(&[out], &cfg, &lb).expect("decodes");
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].class, got[0].score), (1, 0.3));
    }
}
