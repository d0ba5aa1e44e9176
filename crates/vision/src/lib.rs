//! Pixels: JPEG decode and encode (libjpeg-turbo, which reads the Huffman-table-less MJPEG
//! frames UVC webcams send), the letterbox resize into a normalised network tensor, and the
//! overlay the preview draws.

mod draw;
mod jpeg;
mod preprocess;
mod resample;

pub use draw::{Overlay, draw_overlay, overlays};
pub use jpeg::{DecodeScale, JpegCodec, RgbImage};
pub use preprocess::{ColorFormat, PreprocessConfig, Preprocessor};

#[derive(Debug, thiserror::Error)]
pub enum VisionError {
    #[error("corrupt or unsupported JPEG ({len} bytes): {source}")]
    Jpeg {
        len: usize,
        source: turbojpeg::Error,
    },
    #[error("image is {width}×{height}, which cannot be resized to {net_w}×{net_h}")]
    Size {
        width: u32,
        height: u32,
        net_w: u32,
        net_h: u32,
    },
    #[error("resize failed: {0}")]
    Resize(String),
}
