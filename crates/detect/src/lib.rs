//! Detection maths with no I/O: box geometry, the letterbox that maps network pixels back to
//! source pixels, decoders for the YOLO output layouts vigil understands, and class-aware NMS.

mod decode;
mod geometry;
mod nms;

pub use decode::{DecodeError, Layout, OutputTensor, decode};
pub use geometry::{BBox, Detection, Letterbox, TensorLayout};
pub use nms::{NmsConfig, nms};

/// Everything that turns raw model outputs into a frame's detections.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PostprocessConfig {
    /// The output layout; `None` picks one from the output's shape.
    pub layout: Option<Layout>,
    /// Candidates scoring below this are dropped before NMS (nvinfer's pre-cluster-threshold).
    pub threshold: f32,
    pub nms: NmsConfig,
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
    let candidates = decode(outputs, cfg.layout, cfg.threshold)?;
    Ok(nms(&candidates, &cfg.nms)
        .into_iter()
        .map(|d| Detection {
            bbox: letterbox.to_source(&d.bbox),
            ..d
        })
        .collect())
}
