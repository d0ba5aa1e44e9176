//! Frame → network tensor: decode, letterbox, normalise, lay out.

use vigil_detect::{Letterbox, TensorLayout};

use crate::VisionError;
use crate::jpeg::{DecodeScale, JpegCodec, RgbImage};
use crate::resample::Resample;

#[cfg(test)]
mod reference;
#[cfg(test)]
mod sample;

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
    /// `run_jpeg` decodes at 1/2, 1/4 or 1/8 of the frame's size (libjpeg-turbo scales in the
    /// IDCT) when the letterboxed content is at most that fraction of the frame on both axes
    /// and the fraction divides both sides; the resize then starts from the smaller image.
    /// Much cheaper, but the values differ a little from a full decode's (block means, not
    /// bilinear samples); the `Letterbox` still refers to the full frame.
    pub reduced_decode: bool,
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
            reduced_decode: false,
        }
    }
}

impl PreprocessConfig {
    /// A plain resize (no aspect kept) to `net_w`×`net_h`, RGB 0..255, NHWC: what
    /// CenterNet-MobileNetV3 from the `OpenCV` model zoo takes.
    #[must_use]
    pub fn plain_resize(net_w: u32, net_h: u32) -> Self {
        Self {
            net_w,
            net_h,
            layout: TensorLayout::Nhwc,
            scale: 1.0,
            keep_aspect: false,
            pad_value: 0,
            ..Self::default()
        }
    }

    /// Ultralytics' own preprocessing (the default) at `size`×`size`.
    #[must_use]
    pub fn ultralytics(size: u32) -> Self {
        Self {
            net_w: size,
            net_h: size,
            ..Self::default()
        }
    }

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

/// Reusable state for one stream of frames: decoder, resizer, scratch buffers and the
/// normalisation tables of its config.
pub struct Preprocessor {
    cfg: PreprocessConfig,
    codec: JpegCodec,
    resample: Resample,
    frame: RgbImage,
    inner: Vec<u8>,
    norm: Normalise,
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
            norm: Normalise::new(&cfg),
            cfg,
            codec: JpegCodec::new(90)?,
            resample: Resample::default(),
            frame: RgbImage::default(),
            inner: Vec::new(),
        })
    }

    #[must_use]
    pub fn config(&self) -> &PreprocessConfig {
        &self.cfg
    }

    /// Decodes a JPEG frame and writes the network tensor into `out`; with `reduced_decode`,
    /// at the smallest scale the letterbox allows.
    pub fn run_jpeg(&mut self, jpeg: &[u8], out: &mut Vec<f32>) -> Result<Letterbox, VisionError> {
        let (w, h) = self.codec.size(jpeg)?;
        let lb = self.fit(w, h)?;
        let scale = if self.cfg.reduced_decode {
            reduced_scale(w, h, lb.inner_size())
        } else {
            DecodeScale::Full
        };
        let mut frame = std::mem::take(&mut self.frame);
        let result = self
            .codec
            .decode_scaled_into(jpeg, scale, &mut frame)
            .and_then(|()| self.letterbox(&lb, &frame, out));
        self.frame = frame;
        result.map(|()| lb)
    }

    /// Decodes a JPEG frame in full (for a letterbox made elsewhere: the infer node's GPU)
    /// and says how it will be letterboxed.
    pub fn decode_jpeg(&mut self, jpeg: &[u8]) -> Result<(&RgbImage, Letterbox), VisionError> {
        let (w, h) = self.codec.size(jpeg)?;
        let lb = self.fit(w, h)?;
        self.codec
            .decode_scaled_into(jpeg, DecodeScale::Full, &mut self.frame)?;
        Ok((&self.frame, lb))
    }

    /// Letterboxes an RGB frame and writes the network tensor into `out`.
    pub fn run_rgb(
        &mut self,
        img: &RgbImage,
        out: &mut Vec<f32>,
    ) -> Result<Letterbox, VisionError> {
        let lb = self.fit(img.width, img.height)?;
        self.letterbox(&lb, img, out)?;
        Ok(lb)
    }

    /// The letterbox of a `w`×`h` frame into the network input.
    fn fit(&self, w: u32, h: u32) -> Result<Letterbox, VisionError> {
        let c = &self.cfg;
        if w == 0 || h == 0 || c.net_w == 0 || c.net_h == 0 {
            return Err(size_err(&self.cfg, w, h));
        }
        Ok(Letterbox::fit(
            w,
            h,
            c.net_w,
            c.net_h,
            c.keep_aspect,
            c.symmetric_padding,
        ))
    }

    /// Resizes `img` (the frame `lb` was fitted to, or a reduced decode of it) to the
    /// letterbox's content in u8, then writes the tensor in one pass.
    fn letterbox(
        &mut self,
        lb: &Letterbox,
        img: &RgbImage,
        out: &mut Vec<f32>,
    ) -> Result<(), VisionError> {
        let (iw, ih) = lb.inner_size();
        let len = img.width as usize * img.height as usize * 3;
        let Some(pixels) = img.pixels.get(..len).filter(|_| len > 0) else {
            return Err(size_err(&self.cfg, img.width, img.height));
        };
        let content = if (img.width, img.height) == (iw, ih) {
            pixels
        } else {
            // Bilinear interpolation without antialiasing: the same sampling as OpenCV's
            // INTER_LINEAR, which DeepStream's and Ultralytics' preprocessing both use.
            if !self.resample.prepare(img.width, img.height, iw, ih) {
                return Err(VisionError::Resize(format!(
                    "no two-tap bilinear resize {}x{} -> {iw}x{ih}",
                    img.width, img.height
                )));
            }
            self.inner.resize(iw as usize * ih as usize * 3, 0);
            self.resample.run(pixels, &mut self.inner);
            &self.inner
        };
        self.norm.write(lb, content, out);
        Ok(())
    }
}

fn size_err(c: &PreprocessConfig, width: u32, height: u32) -> VisionError {
    VisionError::Size {
        width,
        height,
        net_w: c.net_w,
        net_h: c.net_h,
    }
}

/// The reduced decode for a `w`×`h` frame whose letterboxed content is `iw`×`ih`: the
/// smallest 1/d (8, 4, 2) that divides both sides, so the decoded pixels tile the frame
/// exactly, and leaves the resize nothing to enlarge.
fn reduced_scale(w: u32, h: u32, (iw, ih): (u32, u32)) -> DecodeScale {
    [DecodeScale::Eighth, DecodeScale::Quarter, DecodeScale::Half]
        .into_iter()
        .find(|s| {
            let d = s.denom();
            w.is_multiple_of(d) && h.is_multiple_of(d) && iw * d <= w && ih * d <= h
        })
        .unwrap_or(DecodeScale::Full)
}

/// A config's normalisation, `scale · (v − offset[c])` per value, written so the compiler can
/// vectorise it: the NHWC offsets laid out once per tensor row, the padding's values computed
/// once. Every value comes from the very operations of the per-value formula (no fused
/// multiply-add, no reordering), so the tensor is bit-identical to evaluating it.
struct Normalise {
    net_w: usize,
    net_h: usize,
    layout: TensorLayout,
    color: ColorFormat,
    scale: f32,
    offsets: [f32; 3],
    /// NCHW: the value of each byte in each output channel, a look-up table (faster than the
    /// conversion where a channel's values are three bytes apart).
    lut: Box<[[f32; 256]; 3]>,
    /// Grey: `0.299·v`, `0.587·v` and `0.114·v`, the terms of the luma sum, per byte value.
    luma: Box<[[f32; 256]; 3]>,
    /// The padding's value in each output channel.
    pad: [f32; 3],
    /// One tensor row of padding in NHWC (the channels interleaved).
    pad_row: Vec<f32>,
    /// The offset of each value of an NHWC tensor row.
    offset_row: Vec<f32>,
    /// A content row with its channels in the network's order (BGR).
    swapped: Vec<u8>,
}

impl Normalise {
    fn new(c: &PreprocessConfig) -> Self {
        let norm = |ch: usize, v: f32| c.scale * (v - c.offsets[ch]);
        let table = |f: &dyn Fn(f32) -> f32| -> [f32; 256] {
            std::array::from_fn(|v| f(f32::from(v as u8)))
        };
        let pad = std::array::from_fn(|ch| norm(ch, f32::from(c.pad_value)));
        let channels = c.color.channels();
        let row = |per_channel: &[f32; 3]| {
            (0..c.net_w as usize * channels)
                .map(|i| per_channel[i % channels])
                .collect()
        };
        Self {
            net_w: c.net_w as usize,
            net_h: c.net_h as usize,
            layout: c.layout,
            color: c.color,
            scale: c.scale,
            offsets: c.offsets,
            lut: Box::new([
                table(&|v| norm(0, v)),
                table(&|v| norm(1, v)),
                table(&|v| norm(2, v)),
            ]),
            luma: Box::new([
                table(&|v| 0.299 * v),
                table(&|v| 0.587 * v),
                table(&|v| 0.114 * v),
            ]),
            pad,
            pad_row: row(&pad),
            offset_row: row(&c.offsets),
            swapped: Vec::new(),
        }
    }

    /// Writes the padded tensor into `out` (every value once, no zero-fill first) from the
    /// letterbox's content, `inner_size()` packed RGB pixels.
    fn write(&mut self, lb: &Letterbox, content: &[u8], out: &mut Vec<f32>) {
        let (nw, nh) = (self.net_w, self.net_h);
        let (iw, ih) = lb.inner_size();
        let (iw, ih) = (iw as usize, ih as usize);
        let (left, top) = (lb.pad_x as usize, lb.pad_y as usize);
        let margins = Margins {
            nw,
            left,
            right: nw - left - iw,
            top,
            bottom: nh - top - ih,
        };
        let rows = content.chunks_exact(iw * 3);
        let scale = self.scale;
        out.clear();
        out.reserve(self.color.channels() * nw * nh);
        match (self.color, self.layout) {
            (ColorFormat::Gray, _) => {
                let [a, b, c] = &*self.luma;
                let offset = self.offsets[0];
                margins.plane(out, self.pad[0], rows, |p| {
                    scale * (a[p[0] as usize] + b[p[1] as usize] + c[p[2] as usize] - offset)
                });
            }
            (color, TensorLayout::Nchw) => {
                for (ch, lut) in self.lut.iter().enumerate() {
                    let i = if color == ColorFormat::Bgr {
                        2 - ch
                    } else {
                        ch
                    };
                    margins.plane(out, self.pad[ch], rows.clone(), |p| lut[usize::from(p[i])]);
                }
            }
            (color, TensorLayout::Nhwc) => {
                let row = &self.pad_row;
                let offsets = &self.offset_row[..iw * 3];
                for _ in 0..top {
                    out.extend_from_slice(row);
                }
                for src in rows {
                    let src = if color == ColorFormat::Bgr {
                        self.swapped.clear();
                        self.swapped
                            .extend(src.chunks_exact(3).flat_map(|p| [p[2], p[1], p[0]]));
                        &self.swapped
                    } else {
                        src
                    };
                    out.extend_from_slice(&row[..left * 3]);
                    out.extend(
                        src.iter()
                            .zip(offsets)
                            .map(|(&v, &offset)| scale * (f32::from(v) - offset)),
                    );
                    out.extend_from_slice(&row[..margins.right * 3]);
                }
                for _ in 0..margins.bottom {
                    out.extend_from_slice(row);
                }
            }
        }
    }
}

/// Where the content sits in a tensor plane: padding columns and rows around it.
struct Margins {
    nw: usize,
    left: usize,
    right: usize,
    top: usize,
    bottom: usize,
}

impl Margins {
    /// Appends one channel plane: the padding's value around `value` of each content pixel.
    fn plane<'a>(
        &self,
        out: &mut Vec<f32>,
        pad: f32,
        rows: impl Iterator<Item = &'a [u8]>,
        value: impl Fn(&[u8]) -> f32,
    ) {
        out.extend(std::iter::repeat_n(pad, self.top * self.nw));
        for src in rows {
            out.extend(std::iter::repeat_n(pad, self.left));
            out.extend(src.chunks_exact(3).map(&value));
            out.extend(std::iter::repeat_n(pad, self.right));
        }
        out.extend(std::iter::repeat_n(pad, self.bottom * self.nw));
    }
}

#[cfg(test)]
mod tests {
    use fast_image_resize::images::{Image, ImageRef};
    use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

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

    /// Pixels from a small deterministic generator (no wall clock, no OS randomness), every
    /// byte value likely, with a smooth gradient under the noise so the resize has structure.
    fn noise(w: u32, h: u32, seed: u64) -> RgbImage {
        let mut state = seed;
        let pixels = (0..w * h * 3)
            .map(|i| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let (x, y) = ((i / 3) % w, (i / 3) / w);
                ((state >> 59) as u32 + (x * 255 / w + y * 97 / h) * (i % 3 + 1)) as u8
            })
            .collect();
        RgbImage {
            width: w,
            height: h,
            pixels,
        }
    }

    /// Every layout × colour × padding shape, with scales, offsets and pad values that make
    /// each channel's arithmetic differ.
    fn configs(net_w: u32, net_h: u32) -> Vec<PreprocessConfig> {
        let mut all = Vec::new();
        for layout in [TensorLayout::Nchw, TensorLayout::Nhwc] {
            for color in [ColorFormat::Rgb, ColorFormat::Bgr, ColorFormat::Gray] {
                for (keep_aspect, symmetric_padding) in [(true, true), (true, false), (false, true)]
                {
                    for (scale, offsets, pad_value) in [
                        (1.0 / 255.0, [0.0; 3], 114),
                        (1.0, [0.0; 3], 0),
                        (0.017_352_1, [123.675, 116.28, 103.53], 255),
                    ] {
                        all.push(PreprocessConfig {
                            net_w,
                            net_h,
                            layout,
                            color,
                            scale,
                            offsets,
                            keep_aspect,
                            symmetric_padding,
                            pad_value,
                            reduced_decode: false,
                        });
                    }
                }
            }
        }
        all
    }

    /// Runs `cfg` on every image through one `Preprocessor` (its buffers reused from frame to
    /// frame and size to size) and through the reference, and demands the same bits.
    fn assert_bit_identical(cfg: &PreprocessConfig, images: &[RgbImage]) {
        let mut new = Preprocessor::new(cfg.clone()).expect("config");
        let mut old = reference::Reference::new(cfg.clone());
        let (mut a, mut b) = (vec![f32::NAN; 7], Vec::new());
        for img in images {
            let la = new.run_rgb(img, &mut a).expect("new path");
            let lb = old.run_rgb(img, &mut b).expect("reference");
            assert_eq!(la, lb);
            assert_eq!(a.len(), b.len(), "{cfg:?} {}x{}", img.width, img.height);
            let first = a
                .iter()
                .zip(&b)
                .position(|(x, y)| x.to_bits() != y.to_bits());
            assert_eq!(first, None, "{cfg:?} {}x{}", img.width, img.height);
        }
    }

    #[test]
    fn tensor_is_bit_identical_to_the_reference_path() {
        // A 720p camera into the 640 and 512 inputs (the content of 640 keep-aspect is exactly
        // 640×360); a frame of the content's own size (no resize at all); one enlarged; odd sizes;
        // one widened to 320×192 by a horizontal pass alone (it gathers pixels of the frame row).
        let sizes = [
            (1280, 720),
            (640, 360),
            (97, 61),
            (333, 517),
            (640, 640),
            (200, 192),
        ];
        let images: Vec<RgbImage> = sizes
            .into_iter()
            .zip(1..)
            .map(|((w, h), seed)| noise(w, h, seed))
            .collect();
        for (nw, nh) in [(640, 640), (512, 512), (320, 192)] {
            for cfg in configs(nw, nh) {
                assert_bit_identical(&cfg, &images);
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// For any frame size, network size and config (shrinking, enlarging, one pixel wide),
        /// the tensor has the very bits the reference path's.
        #[test]
        fn any_size_and_config_is_bit_identical(
            w in 1u32..400, h in 1u32..300, nw in 1u32..256, nh in 1u32..256,
            which in 0usize..54, seed in proptest::prelude::any::<u64>(),
        ) {
            let cfg = configs(nw, nh).swap_remove(which);
            assert_bit_identical(&cfg, &[noise(w, h, seed)]);
        }
    }

    #[test]
    fn reduced_scale_needs_half_the_frame_and_whole_blocks() {
        let fit = |w, h, n, keep| Letterbox::fit(w, h, n, n, keep, true).inner_size();
        // 720p into 640 keep-aspect: content 640×360, exactly half.
        assert_eq!(
            reduced_scale(1280, 720, fit(1280, 720, 640, true)),
            DecodeScale::Half
        );
        assert_eq!(
            reduced_scale(1280, 720, fit(1280, 720, 512, false)),
            DecodeScale::Full
        );
        assert_eq!(
            reduced_scale(768, 576, fit(768, 576, 192, true)),
            DecodeScale::Quarter
        );
        assert_eq!(
            reduced_scale(1280, 720, fit(1280, 720, 160, true)),
            DecodeScale::Eighth
        );
        // 1/2 would fit, but 641 columns are not whole 2-pixel blocks.
        assert_eq!(
            reduced_scale(1282, 721, fit(1282, 721, 320, true)),
            DecodeScale::Full
        );
    }

    /// Mean and largest absolute difference over the letterbox's content, on the 0..255 scale
    /// (the configs below normalise with scale 1, offsets 0).
    fn content_difference(
        cfg: &PreprocessConfig,
        lb: &Letterbox,
        a: &[f32],
        b: &[f32],
    ) -> (f64, f32) {
        let (iw, ih) = lb.inner_size();
        let (nw, nh) = (cfg.net_w as usize, cfg.net_h as usize);
        let (mut sum, mut max, mut n) = (0.0f64, 0.0f32, 0usize);
        for ch in 0..3 {
            for y in lb.pad_y as usize..(lb.pad_y + ih) as usize {
                for x in lb.pad_x as usize..(lb.pad_x + iw) as usize {
                    let i = match cfg.layout {
                        TensorLayout::Nchw => (ch * nh + y) * nw + x,
                        TensorLayout::Nhwc => (y * nw + x) * 3 + ch,
                    };
                    let d = (a[i] - b[i]).abs();
                    sum += f64::from(d);
                    max = max.max(d);
                    n += 1;
                }
            }
        }
        (sum / n as f64, max)
    }

    #[test]
    fn reduced_decode_is_close_to_the_full_decode_and_keeps_the_letterbox() {
        let recorded = sample::recorded(10).expect("the committed recording");
        let hd = sample::enlarged(&recorded, 1280, 720).expect("720p frames");
        // Measured worst frames: 0.64, 2.95, 3.01. Where the content is exactly 1/d of the
        // frame (720p → 640 keep-aspect) the two differ by the IDCT's rounding alone; elsewhere
        // mostly by the full path's aliasing: bilinear without antialiasing samples 2 of every
        // 2.4 or 4 source pixels, the scaled IDCT averages them all (see the next test).
        let cases = [
            (&hd, 640, TensorLayout::Nchw, DecodeScale::Half, 1.0),
            (&recorded, 320, TensorLayout::Nhwc, DecodeScale::Half, 3.5),
            (
                &recorded,
                192,
                TensorLayout::Nchw,
                DecodeScale::Quarter,
                3.5,
            ),
        ];
        for (frames, net, layout, scale, bound) in cases {
            let cfg = PreprocessConfig {
                net_w: net,
                net_h: net,
                layout,
                scale: 1.0,
                ..PreprocessConfig::default()
            };
            let mut full = Preprocessor::new(cfg.clone()).expect("config");
            let mut reduced = Preprocessor::new(PreprocessConfig {
                reduced_decode: true,
                ..cfg.clone()
            })
            .expect("config");
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let mut worst = 0.0f64;
            for jpeg in frames {
                let la = full.run_jpeg(jpeg, &mut a).expect("full decode");
                let lb = reduced.run_jpeg(jpeg, &mut b).expect("reduced decode");
                assert_eq!(la, lb, "the letterbox refers to the full frame");
                assert_eq!((la.src_w, la.src_h), (full.frame.width, full.frame.height));
                let d = scale.denom();
                assert_eq!(
                    (reduced.frame.width * d, reduced.frame.height * d),
                    (la.src_w, la.src_h),
                    "decoded at 1/{d}"
                );
                // The padding is the same value either way.
                assert_eq!(a.len(), b.len());
                assert_eq!(a[0].to_bits(), b[0].to_bits());
                let (mean, max) = content_difference(&cfg, &la, &a, &b);
                assert!(
                    mean < bound,
                    "{net} {layout:?}: mean |Δ| {mean:.2}, max {max}"
                );
                worst = worst.max(mean);
            }
            eprintln!(
                "reduced decode 1/{} into {net}: worst mean |Δ| {worst:.3}",
                scale.denom()
            );
        }
    }

    #[test]
    fn reduced_decode_is_close_to_the_area_mean_of_the_full_decode() {
        // What a reduced decode should be: the mean of each d×d block of the full decode.
        let recorded = sample::recorded(10).expect("the committed recording");
        let hd = sample::enlarged(&recorded, 1280, 720).expect("720p frames");
        let mut codec = JpegCodec::new(90).expect("codec");
        let mut resizer = Resizer::new();
        let (mut img, mut reduced) = (RgbImage::default(), RgbImage::default());
        for (frames, scale) in [(&hd, DecodeScale::Half), (&recorded, DecodeScale::Quarter)] {
            let (mut sum, mut n) = (0u64, 0usize);
            for jpeg in frames {
                codec.decode_into(jpeg, &mut img).expect("full");
                codec
                    .decode_scaled_into(jpeg, scale, &mut reduced)
                    .expect("reduced");
                let d = scale.denom();
                let (w, h) = (img.width / d, img.height / d);
                assert_eq!((reduced.width, reduced.height), (w, h));
                let mut mean = vec![0u8; reduced.pixels.len()];
                let src = ImageRef::new(img.width, img.height, &img.pixels, PixelType::U8x3)
                    .expect("frame");
                let mut dst = Image::from_slice_u8(w, h, &mut mean, PixelType::U8x3).expect("dst");
                let opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Box));
                resizer.resize(&src, &mut dst, &opts).expect("box filter");
                sum += mean
                    .iter()
                    .zip(&reduced.pixels)
                    .map(|(a, b)| u64::from(a.abs_diff(*b)))
                    .sum::<u64>();
                n += mean.len();
            }
            // Measured: 0.63 (1/2 of 720p), 0.56 (1/4 of 768×576).
            let mean = sum as f64 / n as f64;
            assert!(mean < 1.0, "1/{}: mean |Δ| {mean:.3}", scale.denom());
        }
    }
}
