//! `vigil import`: still images → a recording.

use std::path::{Path, PathBuf};

use eyre::{WrapErr, bail};
use vigil_record::{RecordedFrame, RecordingInfo, RecordingWriter};
use vigil_vision::{JpegCodec, RgbImage};

/// Imports every `.jpg`/`.jpeg`/`.png` in `dir`, in file-name order. JPEGs go in byte for byte;
/// PNGs are encoded as JPEG. Frame `i` gets sequence number `i` and timestamp `i / fps`.
/// (`vigil import` writes it through `write_new`: a bad image leaves no partial recording.)
pub fn import_dir(dir: &Path, output: &Path, fps: f64) -> eyre::Result<u64> {
    if !(fps.is_finite() && fps > 0.0) {
        bail!("--fps {fps}: must be a positive number");
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .wrap_err_with(|| format!("reading {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| matches!(ext(p).as_deref(), Some("jpg" | "jpeg" | "png")))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{}: no .jpg or .png images", dir.display());
    }
    let mut codec = JpegCodec::new(92)?;
    let mut writer: Option<(RecordingWriter, (u32, u32))> = None;
    for (i, file) in files.iter().enumerate() {
        let bytes = std::fs::read(file).wrap_err_with(|| format!("reading {}", file.display()))?;
        let (jpeg, size) = if ext(file).as_deref() == Some("png") {
            let img =
                decode_png(&bytes).wrap_err_with(|| format!("decoding {}", file.display()))?;
            (codec.encode(&img)?, (img.width, img.height))
        } else {
            let img = codec
                .decode(&bytes)
                .wrap_err_with(|| format!("decoding {}", file.display()))?;
            (bytes, (img.width, img.height))
        };
        let (w, first) = if let Some((w, first)) = &mut writer {
            (w, *first)
        } else {
            let info = RecordingInfo {
                camera: format!("import:{}", dir.display()),
                width: size.0,
                height: size.1,
                fps,
                software: crate::software(),
            };
            let w = writer.insert((RecordingWriter::create(output, &info)?, size));
            (&mut w.0, size)
        };
        if size != first {
            bail!(
                "{} is {}x{}, the images before it are {}x{}: one recording has one resolution",
                file.display(),
                size.0,
                size.1,
                first.0,
                first.1
            );
        }
        let timestamp_ns = (i as f64 * 1e9 / fps).round() as u64;
        w.write_frame(&RecordedFrame {
            seq: i as u32,
            timestamp_ns,
            jpeg,
        })?;
    }
    match writer {
        Some((w, _)) => Ok(w.finish()?),
        None => bail!("{}: nothing imported", dir.display()),
    }
}

fn ext(p: &Path) -> Option<String> {
    p.extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
}

fn decode_png(bytes: &[u8]) -> eyre::Result<RgbImage> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info()?;
    let mut buf = vec![0; reader.output_buffer_size().unwrap_or(0)];
    let frame = reader.next_frame(&mut buf)?;
    let (w, h) = (frame.width, frame.height);
    let data = &buf[..frame.buffer_size()];
    let pixels: Vec<u8> = match frame.color_type {
        png::ColorType::Rgb => data.to_vec(),
        png::ColorType::Rgba => data
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        png::ColorType::Grayscale => data.iter().flat_map(|&g| [g, g, g]).collect(),
        png::ColorType::GrayscaleAlpha => data
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0]])
            .collect(),
        png::ColorType::Indexed => bail!("indexed PNG was not expanded"),
    };
    Ok(RgbImage {
        width: w,
        height: h,
        pixels,
    })
}
