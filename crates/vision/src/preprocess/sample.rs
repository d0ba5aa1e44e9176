//! Real frames for the tests and the bench: the committed recording (`OpenCV`'s `vtest`,
//! 768×576) and the same frames enlarged to 1280×720 and encoded as a UVC webcam sends its
//! MJPEG (4:2:2, quality 80). Test and bench code only: both include this file.

use std::error::Error;
use std::path::{Path, PathBuf};

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{PixelType, ResizeOptions, Resizer};
use turbojpeg::{Compressor, PixelFormat, Subsamp};

use super::{JpegCodec, RgbImage};

/// The committed sample recording.
pub fn recording() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../recordings/vtest-100.mcap")
}

/// Every `step`-th frame of the committed recording, as recorded (768×576 JPEGs).
pub fn recorded(step: usize) -> Result<Vec<Vec<u8>>, Box<dyn Error>> {
    let rec = vigil_record::Recording::open(&recording())?;
    Ok(rec
        .frames
        .into_iter()
        .step_by(step)
        .map(|f| f.jpeg)
        .collect())
}

/// `frames` decoded, enlarged to `w`×`h` (Lanczos3) and encoded again as a webcam would.
pub fn enlarged(frames: &[Vec<u8>], w: u32, h: u32) -> Result<Vec<Vec<u8>>, Box<dyn Error>> {
    let mut codec = JpegCodec::new(90)?;
    let mut compressor = Compressor::new()?;
    compressor.set_quality(80)?;
    compressor.set_subsamp(Subsamp::Sub2x1)?;
    let mut resizer = Resizer::new();
    let mut big = vec![0u8; w as usize * h as usize * 3];
    let mut img = RgbImage::default();
    frames
        .iter()
        .map(|jpeg| {
            codec.decode_into(jpeg, &mut img)?;
            let src = ImageRef::new(img.width, img.height, &img.pixels, PixelType::U8x3)?;
            let mut dst = Image::from_slice_u8(w, h, &mut big, PixelType::U8x3)?;
            resizer.resize(&src, &mut dst, &ResizeOptions::new())?;
            let out = turbojpeg::Image {
                pixels: big.as_slice(),
                width: w as usize,
                pitch: w as usize * 3,
                height: h as usize,
                format: PixelFormat::RGB,
            };
            Ok(compressor.compress_to_vec(out)?)
        })
        .collect()
}
