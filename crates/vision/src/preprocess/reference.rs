//! The letterbox as vigil first wrote it: resize in u8, then one closure call per tensor value
//! over the whole padded tensor. Test and bench code only: the unit tests prove the
//! `Preprocessor` bit-identical to it, and `benches/preprocess.rs` times both.
//! Written against names its parent module brings into scope, so both can include it.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use vigil_detect::{Letterbox, TensorLayout};

use super::{ColorFormat, PreprocessConfig, RgbImage, VisionError};

/// The old `Preprocessor::run_rgb`, with its resizer and scratch buffer.
pub struct Reference {
    cfg: PreprocessConfig,
    resizer: Resizer,
    inner: Vec<u8>,
}

impl Reference {
    pub fn new(cfg: PreprocessConfig) -> Self {
        Self {
            cfg,
            resizer: Resizer::new(),
            inner: Vec::new(),
        }
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
