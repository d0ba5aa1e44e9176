//! Frame → tensor on real frames, in one run: JPEG decode at full size and at 1/2 (IDCT
//! scaling), then letterbox + normalise of the decoded frame by the old per-value path (kept as
//! the tests' reference) and by the `Preprocessor`, for the repo's model input (`CenterNet`
//! 512×512 NHWC, plain resize) and a 640×640 NCHW keep-aspect `YOLO` input; and the whole
//! `run_jpeg` with and without `reduced_decode`. Median ms per frame over the committed
//! recording's 100 frames enlarged to 1280×720 (4:2:2, quality 80, as a webcam sends them),
//! five passes. Then, where the project's .venv has `OpenCV`, `ci/bench_cv2.py` times
//! `cv2.resize` + `copyMakeBorder` + float conversion on the very same JPEGs.
//!
//! `cargo bench -p vigil-vision`

#![allow(clippy::print_stdout)]

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use vigil_vision::{
    ColorFormat, DecodeScale, JpegCodec, PreprocessConfig, Preprocessor, RgbImage, VisionError,
};

#[path = "../src/preprocess/reference.rs"]
mod reference;
#[path = "../src/preprocess/sample.rs"]
mod sample;

const PASSES: usize = 5;

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v.get(v.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

fn timed<T>(times: &mut Vec<Duration>, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = std::hint::black_box(f());
    times.push(start.elapsed());
    out
}

fn main() -> Result<(), Box<dyn Error>> {
    let frames = sample::enlarged(&sample::recorded(1)?, 1280, 720)?;
    println!(
        "vigil-vision preprocess bench: {} frames 1280x720 (recordings/vtest-100.mcap enlarged, \
         4:2:2 q80), {PASSES} passes, median ms/frame",
        frames.len()
    );

    let mut codec = JpegCodec::new(90)?;
    let mut img = RgbImage::default();
    let (mut full, mut half) = (Vec::new(), Vec::new());
    for _ in 0..PASSES {
        for jpeg in &frames {
            timed(&mut half, || {
                codec.decode_scaled_into(jpeg, DecodeScale::Half, &mut img)
            })?;
            timed(&mut full, || codec.decode_into(jpeg, &mut img))?;
        }
    }
    println!("\n| JPEG decode | ms |\n|---|---|");
    println!("| full 1280x720 | {:.3} |", median(full));
    println!("| 1/2 in the IDCT, 640x360 | {:.3} |", median(half));

    let centernet = PreprocessConfig::plain_resize(512, 512);
    let yolo = PreprocessConfig::default();
    println!(
        "\n| letterbox + normalise of the decoded frame | old ms | new ms | new/old | \
         run_jpeg ms | run_jpeg reduced_decode ms |\n|---|---|---|---|---|---|"
    );
    for (name, cfg) in [
        ("CenterNet 512x512 NHWC RGB, plain resize", centernet),
        ("YOLO 640x640 NCHW RGB/255, keep aspect, pad 114", yolo),
    ] {
        let [old, new, jpeg, reduced] = letterbox(&cfg, &frames)?;
        let (old, new) = (median(old), median(new));
        println!(
            "| {name} | {old:.3} | {new:.3} | {:.2} | {:.3} | {:.3} |",
            new / old,
            median(jpeg),
            median(reduced)
        );
    }

    cv2(&frames)
}

/// Times of the old path, the new one, and the whole `run_jpeg` without and with
/// `reduced_decode`, each on every frame.
fn letterbox(
    cfg: &PreprocessConfig,
    frames: &[Vec<u8>],
) -> Result<[Vec<Duration>; 4], VisionError> {
    let mut codec = JpegCodec::new(90)?;
    let mut old = reference::Reference::new(cfg.clone());
    let mut new = Preprocessor::new(cfg.clone())?;
    let mut reduced = Preprocessor::new(PreprocessConfig {
        reduced_decode: true,
        ..cfg.clone()
    })?;
    let (mut img, mut tensor) = (RgbImage::default(), Vec::new());
    let mut t = [const { Vec::new() }; 4];
    for pass in 0..PASSES {
        for jpeg in frames {
            codec.decode_into(jpeg, &mut img)?;
            // Alternate which path sees the freshly decoded frame first.
            if pass % 2 == 0 {
                timed(&mut t[0], || old.run_rgb(&img, &mut tensor))?;
                timed(&mut t[1], || new.run_rgb(&img, &mut tensor))?;
            } else {
                timed(&mut t[1], || new.run_rgb(&img, &mut tensor))?;
                timed(&mut t[0], || old.run_rgb(&img, &mut tensor))?;
            }
            // As the preprocess node calls it: its tensor cleared before every frame.
            tensor.clear();
            timed(&mut t[2], || new.run_jpeg(jpeg, &mut tensor))?;
            tensor.clear();
            timed(&mut t[3], || reduced.run_jpeg(jpeg, &mut tensor))?;
        }
    }
    Ok(t)
}

/// The same frames through `OpenCV`, where the project's .venv has it.
fn cv2(frames: &[Vec<u8>]) -> Result<(), Box<dyn Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".venv/bin/python");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vision-bench-720p");
    std::fs::create_dir_all(&dir)?;
    for (i, jpeg) in frames.iter().enumerate() {
        std::fs::write(dir.join(format!("frame_{i:05}.jpg")), jpeg)?;
    }
    let status = std::process::Command::new(&python)
        .arg(root.join("ci/bench_cv2.py"))
        .arg(&dir)
        .arg(PASSES.to_string())
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => {
            println!("\ncv2: ci/bench_cv2.py failed ({s}); is opencv-python-headless in .venv?");
        }
        Err(e) => println!("\ncv2: not run ({}: {e})", python.display()),
    }
    Ok(())
}
