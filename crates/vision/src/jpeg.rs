//! JPEG through libjpeg-turbo.

use turbojpeg::{Compressor, Decompressor, Image, PixelFormat, ScalingFactor, Subsamp};

use crate::VisionError;

/// A packed RGB image, 3 bytes a pixel, rows without padding.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RgbImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

/// How much smaller than the frame a JPEG is decoded: libjpeg-turbo scales in the IDCT, so a
/// reduced decode costs a fraction of a full one. Its pixels are block means rather than a
/// bilinear resize's samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DecodeScale {
    #[default]
    Full,
    Half,
    Quarter,
    Eighth,
}

impl DecodeScale {
    /// The denominator: the frame is decoded at `1/denom` of its width and height (rounded up).
    #[must_use]
    pub fn denom(self) -> u32 {
        match self {
            Self::Full => 1,
            Self::Half => 2,
            Self::Quarter => 4,
            Self::Eighth => 8,
        }
    }

    fn factor(self) -> ScalingFactor {
        match self {
            Self::Full => ScalingFactor::ONE,
            Self::Half => ScalingFactor::ONE_HALF,
            Self::Quarter => ScalingFactor::ONE_QUARTER,
            Self::Eighth => ScalingFactor::ONE_EIGHTH,
        }
    }
}

/// A decoder and an encoder kept for reuse, so a node allocates them once.
pub struct JpegCodec {
    decompressor: Decompressor,
    compressor: Compressor,
}

impl std::fmt::Debug for JpegCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JpegCodec")
    }
}

impl JpegCodec {
    pub fn new(quality: i32) -> Result<Self, VisionError> {
        let err = |source| VisionError::Jpeg { len: 0, source };
        let mut compressor = Compressor::new().map_err(err)?;
        compressor.set_quality(quality).map_err(err)?;
        compressor.set_subsamp(Subsamp::Sub2x2).map_err(err)?;
        Ok(Self {
            decompressor: Decompressor::new().map_err(err)?,
            compressor,
        })
    }

    /// The frame's width and height, from its header alone.
    pub fn size(&mut self, jpeg: &[u8]) -> Result<(u32, u32), VisionError> {
        let header = self
            .decompressor
            .read_header(jpeg)
            .map_err(|source| VisionError::Jpeg {
                len: jpeg.len(),
                source,
            })?;
        Ok((header.width as u32, header.height as u32))
    }

    /// Decodes into `out`, reusing its allocation.
    pub fn decode_into(&mut self, jpeg: &[u8], out: &mut RgbImage) -> Result<(), VisionError> {
        self.decode_scaled_into(jpeg, DecodeScale::Full, out)
    }

    /// Decodes at `1/scale.denom()` of the frame's size into `out`, reusing its allocation. A
    /// lossless JPEG, which libjpeg-turbo cannot scale, is decoded at full size: `out` says
    /// which size came.
    pub fn decode_scaled_into(
        &mut self,
        jpeg: &[u8],
        scale: DecodeScale,
        out: &mut RgbImage,
    ) -> Result<(), VisionError> {
        let err = |source| VisionError::Jpeg {
            len: jpeg.len(),
            source,
        };
        let header = self.decompressor.read_header(jpeg).map_err(err)?;
        let factor = if header.is_lossless {
            ScalingFactor::ONE
        } else {
            scale.factor()
        };
        if self.decompressor.scaling_factor() != factor {
            self.decompressor.set_scaling_factor(factor).map_err(err)?;
        }
        let header = header.scaled(factor);
        out.width = header.width as u32;
        out.height = header.height as u32;
        out.pixels.resize(header.width * header.height * 3, 0);
        let image = Image {
            pixels: out.pixels.as_mut_slice(),
            width: header.width,
            pitch: header.width * 3,
            height: header.height,
            format: PixelFormat::RGB,
        };
        self.decompressor.decompress(jpeg, image).map_err(err)
    }

    pub fn decode(&mut self, jpeg: &[u8]) -> Result<RgbImage, VisionError> {
        let mut out = RgbImage::default();
        self.decode_into(jpeg, &mut out)?;
        Ok(out)
    }

    pub fn encode(&mut self, img: &RgbImage) -> Result<Vec<u8>, VisionError> {
        let image = Image {
            pixels: img.pixels.as_slice(),
            width: img.width as usize,
            pitch: img.width as usize * 3,
            height: img.height as usize,
            format: PixelFormat::RGB,
        };
        self.compressor
            .compress_to_vec(image)
            .map_err(|source| VisionError::Jpeg {
                len: img.pixels.len(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(w: u32, h: u32) -> RgbImage {
        let pixels = (0..h)
            .flat_map(|y| (0..w).flat_map(move |x| [(x * 4) as u8, (y * 4) as u8, 128]))
            .collect();
        RgbImage {
            width: w,
            height: h,
            pixels,
        }
    }

    /// Removes every DHT segment, as UVC webcams do with their MJPEG frames.
    fn strip_huffman_tables(jpeg: &[u8]) -> Vec<u8> {
        let mut out = jpeg[..2].to_vec();
        let mut i = 2;
        while i + 4 <= jpeg.len() && jpeg[i] == 0xFF {
            let marker = jpeg[i + 1];
            let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
            if marker == 0xDA {
                out.extend_from_slice(&jpeg[i..]);
                return out;
            }
            if marker != 0xC4 {
                out.extend_from_slice(&jpeg[i..i + 2 + len]);
            }
            i += 2 + len;
        }
        out
    }

    #[test]
    fn round_trip_keeps_size_and_roughly_the_pixels() {
        let mut codec = JpegCodec::new(95).expect("codec");
        let img = gradient(64, 48);
        let encoded = codec.encode(&img).expect("encodes");
        let back = codec.decode(&encoded).expect("decodes");
        assert_eq!((back.width, back.height), (64, 48));
        let err: u64 = img
            .pixels
            .iter()
            .zip(&back.pixels)
            .map(|(a, b)| u64::from(a.abs_diff(*b)))
            .sum();
        assert!(
            err / (img.pixels.len() as u64) < 4,
            "mean error {}",
            err / img.pixels.len() as u64
        );
    }

    #[test]
    fn decodes_uvc_frames_without_huffman_tables() {
        let mut codec = JpegCodec::new(90).expect("codec");
        let img = gradient(64, 48);
        let full = codec.encode(&img).expect("encodes");
        let stripped = strip_huffman_tables(&full);
        assert!(
            stripped.len() < full.len(),
            "test must really remove the tables"
        );
        let a = codec.decode(&full).expect("full decodes");
        let b = codec
            .decode(&stripped)
            .expect("stripped decodes with the standard tables");
        assert_eq!(a, b);
    }

    #[test]
    fn corrupt_jpeg_is_an_error_not_a_panic() {
        let mut codec = JpegCodec::new(90).expect("codec");
        let err = codec
            .decode(&[0xFF, 0xD8, 0xFF, 0x00, 1, 2, 3])
            .expect_err("corrupt");
        assert!(err.to_string().contains("7 bytes"), "{err}");
        assert!(codec.decode(&[]).is_err());
    }
}
