//! Frame → network tensor: decode, letterbox, normalise, lay out.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use vigil_detect::{Letterbox, TensorLayout};

use crate::VisionError;
use crate::jpeg::{JpegCodec, RgbImage};

/// Channel order the network expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColorFormat {
    Rgb,
    Bgr,
    #[serde(alias = "grey")]
    Gray,
}

impl ColorFormat {
    #[must_use]
    pub fn channels(self) -> usize {
        if self == Self::Gray { 1 } else { 3 }
    }
}

/// How to turn a frame into the network's input. Each value is `scale · (pixel − offset[c])`,
/// nvinfer's `net-scale-factor` and `offsets`.
#[derive(Debug, Clone, PartialEq)]
pub struct PreprocessConfig {
    pub net_w: u32,
    pub net_h: u32,
    pub layout: TensorLayout,
    pub color: ColorFormat,
    pub scale: f32,
    pub offsets: [f32; 3],
    pub keep_aspect: bool,
    pub symmetric_padding: bool,
    /// Raw pixel value of the padding, before normalisation (nvinfer pads 0, Ultralytics 114).
    pub pad_value: u8,
}

impl Default for PreprocessConfig {
    /// Ultralytics' own preprocessing of a 640×640 `YOLOv8`.
    fn default() -> Self {
        Self {
            net_w: 640,
            net_h: 640,
            layout: TensorLayout::Nchw,
            color: ColorFormat::Rgb,
            scale: 1.0 / 255.0,
            offsets: [0.0; 3],
            keep_aspect: true,
            symmetric_padding: true,
            pad_value: 114,
        }
    }
}

impl PreprocessConfig {
    #[must_use]
    pub fn shape(&self) -> Vec<usize> {
        let (c, h, w) = (
            self.color.channels(),
            self.net_h as usize,
            self.net_w as usize,
        );
        match self.layout {
            TensorLayout::Nchw => vec![1, c, h, w],
            TensorLayout::Nhwc => vec![1, h, w, c],
        }
    }
}

/// Reusable state for one stream of frames: decoder, resizer and scratch buffers.
pub struct Preprocessor {
    cfg: PreprocessConfig,
    codec: JpegCodec,
    resizer: Resizer,
    frame: RgbImage,
    inner: Vec<u8>,
}

impl std::fmt::Debug for Preprocessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Preprocessor")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Preprocessor {
    pub fn new(cfg: PreprocessConfig) -> Result<Self, VisionError> {
        Ok(Self {
            cfg,
            codec: JpegCodec::new(90)?,
            resizer: Resizer::new(),
            frame: RgbImage::default(),
            inner: Vec::new(),
        })
    }

    #[must_use]
    pub fn config(&self) -> &PreprocessConfig {
        &self.cfg
    }

    /// Decodes a JPEG frame and writes the network tensor into `out`.
    pub fn run_jpeg(&mut self, jpeg: &[u8], out: &mut Vec<f32>) -> Result<Letterbox, VisionError> {
        let mut frame = std::mem::take(&mut self.frame);
        let result = self
            .codec
            .decode_into(jpeg, &mut frame)
            .and_then(|()| self.run_rgb(&frame, out));
        self.frame = frame;
        result
    }

    /// Letterboxes an RGB frame and writes the network tensor into `out`.
    pub fn run_rgb(
        &mut self,
        img: &RgbImage,
        out: &mut Vec<f32>,
    ) -> Result<Letterbox, VisionError> {
        let c = &self.cfg;
        let size_err = || VisionError::Size {
            width: img.width,
            height: img.height,
            net_w: c.net_w,
            net_h: c.net_h,
        };
        if img.width == 0 || img.height == 0 || c.net_w == 0 || c.net_h == 0 {
            return Err(size_err());
        }
        let lb = Letterbox::fit(
            img.width,
            img.height,
            c.net_w,
            c.net_h,
            c.keep_aspect,
            c.symmetric_padding,
        );
        let (iw, ih) = lb.inner_size();
        // Bilinear interpolation without antialiasing: the same sampling as OpenCV's
        // INTER_LINEAR, which DeepStream's and Ultralytics' preprocessing both use.
        let src = ImageRef::new(img.width, img.height, &img.pixels, PixelType::U8x3)
            .map_err(|_| size_err())?;
        self.inner.resize(iw as usize * ih as usize * 3, 0);
        let mut dst = Image::from_slice_u8(iw, ih, &mut self.inner, PixelType::U8x3)
            .map_err(|_| size_err())?;
        let opts = ResizeOptions::new().resize_alg(ResizeAlg::Interpolation(FilterType::Bilinear));
        self.resizer
            .resize(&src, &mut dst, &opts)
            .map_err(|e| VisionError::Resize(e.to_string()))?;
        write_tensor(c, &lb, &self.inner, out);
        Ok(lb)
    }
}

/// Normalises the resized pixels into the padded tensor.
fn write_tensor(c: &PreprocessConfig, lb: &Letterbox, inner: &[u8], out: &mut Vec<f32>) {
    let (nw, nh) = (c.net_w as usize, c.net_h as usize);
    let (iw, ih) = lb.inner_size();
    let (iw, ih, px, py) = (
        iw as usize,
        ih as usize,
        lb.pad_x as usize,
        lb.pad_y as usize,
    );
    let channels = c.color.channels();
    // Which source channel feeds each output channel.
    let order: &[usize] = match c.color {
        ColorFormat::Rgb => &[0, 1, 2],
        ColorFormat::Bgr => &[2, 1, 0],
        ColorFormat::Gray => &[0],
    };
    let norm = |ch: usize, v: f32| c.scale * (v - c.offsets[ch]);
    let pixel = |x: usize, y: usize, ch: usize| -> f32 {
        if x < px || y < py || x >= px + iw || y >= py + ih {
            return f32::from(c.pad_value);
        }
        let p = &inner[((y - py) * iw + (x - px)) * 3..][..3];
        if c.color == ColorFormat::Gray {
            0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])
        } else {
            f32::from(p[order[ch]])
        }
    };
    out.clear();
    out.resize(channels * nw * nh, 0.0);
    match c.layout {
        TensorLayout::Nchw => {
            for ch in 0..channels {
                let plane = &mut out[ch * nw * nh..(ch + 1) * nw * nh];
                for y in 0..nh {
                    for (x, v) in plane[y * nw..(y + 1) * nw].iter_mut().enumerate() {
                        *v = norm(ch, pixel(x, y, ch));
                    }
                }
            }
        }
        TensorLayout::Nhwc => {
            for (i, px_out) in out.chunks_exact_mut(channels).enumerate() {
                let (x, y) = (i % nw, i / nw);
                for (ch, v) in px_out.iter_mut().enumerate() {
                    *v = norm(ch, pixel(x, y, ch));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(w: u32, h: u32, rgb: [u8; 3]) -> RgbImage {
        RgbImage {
            width: w,
            height: h,
            pixels: rgb.repeat((w * h) as usize),
        }
    }

    #[test]
    fn letterbox_pads_with_the_pad_value_and_normalises() {
        let cfg = PreprocessConfig {
            net_w: 8,
            net_h: 8,
            pad_value: 0,
            ..PreprocessConfig::default()
        };
        let mut p = Preprocessor::new(cfg).expect("new");
        let mut t = Vec::new();
        let lb = p
            .run_rgb(&solid(16, 8, [255, 0, 51]), &mut t)
            .expect("runs");
        assert_eq!((lb.pad_x, lb.pad_y, lb.inner_size()), (0, 2, (8, 4)));
        assert_eq!(t.len(), 3 * 64);
        // Row 0 is padding, row 4 is image; channels R, G, B.
        assert!(t[0].abs() < 1e-6 && (t[4 * 8] - 1.0).abs() < 1e-6);
        assert!(t[64 + 4 * 8].abs() < 1e-6);
        assert!((t[128 + 4 * 8] - 0.2).abs() < 1e-6);
    }

    #[test]
    fn bgr_nhwc_with_offsets() {
        let cfg = PreprocessConfig {
            net_w: 4,
            net_h: 4,
            layout: TensorLayout::Nhwc,
            color: ColorFormat::Bgr,
            scale: 0.5,
            offsets: [10.0, 20.0, 30.0],
            keep_aspect: false,
            ..PreprocessConfig::default()
        };
        let mut p = Preprocessor::new(cfg).expect("new");
        let mut t = Vec::new();
        p.run_rgb(&solid(10, 6, [100, 50, 30]), &mut t)
            .expect("runs");
        assert_eq!(t.len(), 48);
        assert_eq!(
            &t[..3],
            &[
                0.5 * (30.0 - 10.0),
                0.5 * (50.0 - 20.0),
                0.5 * (100.0 - 30.0)
            ]
        );
    }

    #[test]
    fn empty_image_is_an_error() {
        let mut p = Preprocessor::new(PreprocessConfig::default()).expect("new");
        assert!(p.run_rgb(&RgbImage::default(), &mut Vec::new()).is_err());
        assert!(p.run_jpeg(b"not a jpeg", &mut Vec::new()).is_err());
    }
}
