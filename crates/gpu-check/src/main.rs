//! `vigil-gpu-check`: proves the GPU path on a real GPU (run by `ci/gpu-check`).
//!
//! 1. The letterbox + normalise kernels on real frames against the CPU path, for the models'
//!    configurations, f32 and f16.
//! 2. The decode kernel on real raw `YOLOv8` outputs (the parity goldens) against the CPU
//!    decoder: identical candidates.
//! 3. Kernel times against the device's measured copy bandwidth; decode of 8400 × (4+8).
//! 4. The in-process pipeline (the cores the nodes use, without dora) over the sample
//!    recording, CPU preprocessing vs GPU preprocessing: same detections, frames per second.
//!
//! 5. With ONNX Runtime GPU (`ORT_DYLIB_PATH` naming `onnxruntime-gpu`'s library; skipped
//!    with `--no-ort-gpu`): the infer node's GPU path (letterbox into the model's input on the
//!    device, CUDA EP, device decode) against the CPU path for CenterNet and `YOLOv8n`, TF32 off
//!    and on; start-up times by cuDNN search; a real illegal-address fault (error 700).
//!
//! Exits non-zero when a comparison fails. Run from the project root.

#![allow(unsafe_code)] // device slices handed to the kernels by address

mod ort_gpu;

use std::path::Path;
use std::time::Instant;

use eyre::{WrapErr, bail, eyre};
use vigil_detect::{Layout, NmsConfig, OutputTensor, PostprocessConfig, TensorLayout, decode};
use vigil_gpu::{Gpu, Pool, Precision};
use vigil_infer::{Detector, OrtBackend, OrtConfig, Provider};
use vigil_record::Recording;
use vigil_vision::{ColorFormat, JpegCodec, PreprocessConfig, Preprocessor, RgbImage};

fn configs() -> Vec<(&'static str, PreprocessConfig)> {
    let yolo = PreprocessConfig {
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
    };
    vec![
        ("yolov8 640 NCHW rgb/255 pad 114", yolo.clone()),
        (
            "nvinfer 320 NCHW bgr offsets pad 0",
            PreprocessConfig {
                net_w: 320,
                net_h: 320,
                color: ColorFormat::Bgr,
                offsets: [104.0, 117.0, 123.0],
                pad_value: 0,
                ..yolo.clone()
            },
        ),
        (
            "centernet 512 NHWC plain resize",
            PreprocessConfig {
                net_w: 512,
                net_h: 512,
                layout: TensorLayout::Nhwc,
                scale: 1.0,
                keep_aspect: false,
                pad_value: 0,
                ..yolo.clone()
            },
        ),
        (
            "gray 416 NCHW",
            PreprocessConfig {
                net_w: 416,
                net_h: 416,
                color: ColorFormat::Gray,
                ..yolo
            },
        ),
    ]
}

fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn frames(n: usize) -> eyre::Result<Vec<RgbImage>> {
    let rec = Recording::open(Path::new("recordings/vtest-100.mcap"))?;
    let mut codec = JpegCodec::new(90)?;
    rec.frames
        .iter()
        .take(n)
        .map(|f| codec.decode(&f.jpeg).map_err(Into::into))
        .collect()
}

/// A 1280×720 frame (the kiosk's camera size), upscaled from a sample frame on the CPU.
fn hd(img: &RgbImage) -> eyre::Result<RgbImage> {
    let cfg = PreprocessConfig {
        net_w: 1280,
        net_h: 720,
        layout: TensorLayout::Nhwc,
        scale: 1.0,
        keep_aspect: false,
        ..PreprocessConfig::default()
    };
    let mut pre = Preprocessor::new(cfg)?;
    let mut t = Vec::new();
    pre.run_rgb(img, &mut t)?;
    Ok(RgbImage {
        width: 1280,
        height: 720,
        pixels: t.into_iter().map(|v| v as u8).collect(),
    })
}

fn check_letterbox(gpu: &Gpu, imgs: &[RgbImage]) -> eyre::Result<()> {
    println!(
        "\n## 1. letterbox + normalise: GPU kernels vs the CPU path ({} frames)",
        imgs.len()
    );
    println!("| config | source | precision | max abs diff | tolerance |");
    println!("|---|---|---|---|---|");
    let mut failed = false;
    let sizes = [imgs[0].clone(), hd(&imgs[0])?];
    for (name, cfg) in configs() {
        for src in &sizes {
            for precision in [Precision::F32, Precision::F16] {
                let mut lb = gpu.letterbox_for(src.width, src.height, &cfg, precision)?;
                let mut pre = Preprocessor::new(cfg.clone())?;
                let mut worst = 0.0f32;
                let frames: Vec<&RgbImage> = if src.width == imgs[0].width {
                    imgs.iter().collect()
                } else {
                    vec![src]
                };
                for img in frames {
                    let mut cpu = Vec::new();
                    pre.run_rgb(img, &mut cpu)?;
                    gpu.letterbox(&mut lb, &img.pixels)?;
                    let dev = gpu.download(&mut lb)?;
                    if dev.len() != cpu.len() {
                        bail!(
                            "{name}: {} values from the GPU, {} from the CPU",
                            dev.len(),
                            cpu.len()
                        );
                    }
                    worst = worst.max(max_abs(&dev, &cpu));
                }
                // f32: the integer resize is bit-identical, the normalisation the same IEEE
                // operations. f16: half precision of values up to 255·scale.
                let tol = match precision {
                    Precision::F32 => 1.0 / 255.0,
                    Precision::F16 => (cfg.scale * 255.0).abs().max(1.0) / 1024.0 + 1.0 / 255.0,
                };
                let ok = worst <= tol;
                failed |= !ok;
                println!(
                    "| {name} | {}x{} | {precision:?} | {worst:.3e} | {tol:.3e} {} |",
                    src.width,
                    src.height,
                    if ok { "ok" } else { "FAIL" }
                );
            }
        }
    }
    if failed {
        bail!("letterbox differs from the CPU path");
    }
    Ok(())
}

fn check_decode(gpu: &Gpu) -> eyre::Result<()> {
    println!("\n## 2. decode: GPU kernel vs the CPU decoder on onnxruntime's raw YOLOv8n outputs");
    let dir = Path::new("tests/goldens/yolov8n");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .wrap_err("tests/goldens/yolov8n")?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    files.sort();
    let (c, n) = (22usize, 2100usize);
    let mut pool = Pool::default();
    let mut total = 0;
    for f in &files {
        let bytes = std::fs::read(f)?;
        let data: Vec<f32> = bytes
            .chunks_exact(4)
            .take(c * n)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let cpu = decode(
            &[OutputTensor {
                name: "output0".into(),
                shape: vec![1, c, n],
                data: data.clone(),
            }],
            Some(Layout::UltralyticsRaw),
            0.01,
        )?;
        let mut bufs = pool.take(|| gpu.decode_buffers(4096))?;
        let raw = gpu.upload_f32(&data)?;
        let dev = gpu
            // SAFETY: `raw` lives until after the decode.
            .decode_ultralytics(unsafe { gpu.raw(&raw) }, c - 4, n, 0.01, bufs.buffer())?
            .candidates;
        pool.give_back(bufs);
        if dev != cpu {
            bail!(
                "{}: {} GPU candidates, {} CPU, or they differ",
                f.display(),
                dev.len(),
                cpu.len()
            );
        }
        total += cpu.len();
    }
    println!(
        "{} frames, {total} candidates at >= 0.01: identical (boxes, scores, classes, order); {} device buffer set(s) made for them",
        files.len(),
        pool.made()
    );
    Ok(())
}

fn synthetic_raw(classes: usize, n: usize) -> Vec<f32> {
    let mut state = 7u64;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((state >> 40) as f32) / ((1u64 << 24) as f32)
    };
    let mut d = vec![0.0f32; (4 + classes) * n];
    for i in 0..n {
        d[i] = next() * 640.0;
        d[n + i] = next() * 640.0;
        d[2 * n + i] = 8.0 + next() * 100.0;
        d[3 * n + i] = 8.0 + next() * 100.0;
        for k in 0..classes {
            // ~1000 of 8400 anchors above 0.25, as in a busy scene.
            let s = next();
            d[(4 + k) * n + i] = if s > 0.985 {
                0.25 + next() * 0.7
            } else {
                s * 0.05
            };
        }
    }
    d
}

fn timings(gpu: &Gpu, img: &RgbImage) -> eyre::Result<()> {
    println!("\n## 3. kernel times (CUDA events, median of 50) vs measured device-to-device copy");
    let hd = hd(img)?;
    let cfg = configs().remove(0).1;
    let median = |mut v: Vec<f32>| {
        v.sort_by(f32::total_cmp);
        v[v.len() / 2]
    };
    println!(
        "| work | bytes moved | kernel ms | copy of those bytes ms | kernel / copy bandwidth |"
    );
    println!("|---|---|---|---|---|");
    for precision in [Precision::F32, Precision::F16] {
        let mut lb = gpu.letterbox_for(1280, 720, &cfg, precision)?;
        gpu.letterbox(&mut lb, &hd.pixels)?;
        gpu.synchronize()?;
        // Bytes the kernel must move: the frame read once, the tensor written.
        let (iw, ih) = lb.letterbox.inner_size();
        let frame = 1280 * 720 * 3;
        let out = 3 * 640 * 640 * precision.bytes();
        let bytes = frame + out;
        let mut k = Vec::new();
        let mut up = Vec::new();
        let mut copy = Vec::new();
        for _ in 0..50 {
            k.push(gpu.time_ms(|| gpu.letterbox_kernels(&mut lb))?);
            up.push(gpu.time_ms(|| gpu.letterbox(&mut lb, &hd.pixels))?);
            // A copy moves its bytes twice (read + write): copy half as many.
            copy.push(gpu.copy_ms(bytes / 2)?);
        }
        let (km, um, cm) = (median(k), median(up), median(copy));
        println!(
            "| letterbox kernels 1280x720 -> 640x640 NCHW {precision:?} (inner {iw}x{ih}) | {bytes} | {km:.4} | {cm:.4} | {:.0} % |",
            100.0 * cm / km
        );
        println!(
            "| the same with the frame's copy into pinned memory and upload | {bytes} + {frame} | {um:.4} | | |"
        );
    }
    let mut lb = gpu.letterbox_for(1280, 720, &cfg, Precision::F32)?;
    let (classes, n) = (8usize, 8400usize);
    let raw_buf = gpu.upload_f32(&synthetic_raw(classes, n))?;
    // SAFETY: `raw_buf` lives to the end of this function, past every use of `raw`.
    let raw = unsafe { gpu.raw(&raw_buf) };
    let mut bufs = gpu.decode_buffers(8400)?;
    let (mut k, mut back) = (Vec::new(), Vec::new());
    let mut found = 0;
    for _ in 0..50 {
        k.push(gpu.time_ms(|| gpu.decode_kernel(raw, classes, n, 0.25, &mut bufs))?);
        let t = Instant::now();
        found = gpu
            .decode_ultralytics(raw, classes, n, 0.25, &mut bufs)?
            .candidates
            .len();
        back.push(t.elapsed().as_secs_f32() * 1e3);
    }
    println!(
        "| decode 8400 x (4+8), threshold 0.25: counter reset + kernel | {} | {:.4} | | |",
        (4 + classes) * n * 4,
        median(k)
    );
    println!(
        "| the same and {found} candidates back on the host, sorted (wall clock) | | {:.4} | | |",
        median(back)
    );
    gpu.letterbox(&mut lb, &hd.pixels)?;
    gpu.synchronize()?;
    Ok(())
}

fn pipeline(gpu: &Gpu) -> eyre::Result<()> {
    println!(
        "\n## 4. in-process pipeline over recordings/vtest-100.mcap (CenterNet, ONNX Runtime CPU)"
    );
    let rec = Recording::open(Path::new("recordings/vtest-100.mcap"))?;
    let cfg = PreprocessConfig::plain_resize(512, 512);
    let post = PostprocessConfig {
        layout: Some(Layout::BoxesScoreClass),
        threshold: 0.3,
        nms: NmsConfig::default(),
    };
    let backend = OrtBackend::load(&OrtConfig {
        model: "models/centernet_mb3_coco.onnx".into(),
        provider: Provider::Cpu,
        threads: 0,
        library: std::env::var_os("ORT_DYLIB_PATH").map(Into::into),
        ..OrtConfig::default()
    })?;
    // The per-frame core the infer node runs.
    let mut detector = Detector::new(backend, post);
    let shape = cfg.shape();
    let mut codec = JpegCodec::new(90)?;
    let mut pre = Preprocessor::new(cfg.clone())?;
    let (mut cpu_out, mut gpu_out) = (Vec::new(), Vec::new());
    let (mut cpu_pre, mut gpu_pre) = (0.0f64, 0.0f64);
    let mut lb = None;
    let started = Instant::now();
    for f in &rec.frames {
        let img = codec.decode(&f.jpeg)?;
        let t = Instant::now();
        let mut tensor = Vec::new();
        let letterbox = pre.run_rgb(&img, &mut tensor)?;
        cpu_pre += t.elapsed().as_secs_f64();
        cpu_out.push(detector.detect(&shape, &tensor, &letterbox)?);
    }
    let cpu_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    for f in &rec.frames {
        let img = codec.decode(&f.jpeg)?;
        let t = Instant::now();
        let dl = match &mut lb {
            Some(l) => l,
            None => lb.insert(gpu.letterbox_for(img.width, img.height, &cfg, Precision::F32)?),
        };
        gpu.letterbox(dl, &img.pixels)?;
        // onnxruntime-gpu is not available here: the tensor comes back to the host for the
        // CPU execution provider (with the CUDA EP it would be bound on the device).
        let tensor = gpu.download(dl)?;
        gpu_pre += t.elapsed().as_secs_f64();
        gpu_out.push(detector.detect(&shape, &tensor, &dl.letterbox)?);
    }
    let gpu_s = started.elapsed().as_secs_f64();
    let n = rec.frames.len() as f64;
    let dets: usize = cpu_out.iter().map(Vec::len).sum();
    println!("| path | frames | detections | preprocess ms/frame | total fps |");
    println!("|---|---|---|---|---|");
    println!(
        "| CPU preprocessing | {} | {dets} | {:.3} | {:.1} |",
        rec.frames.len(),
        1e3 * cpu_pre / n,
        n / cpu_s
    );
    println!(
        "| GPU preprocessing | {} | {} | {:.3} | {:.1} |",
        rec.frames.len(),
        gpu_out.iter().map(Vec::len).sum::<usize>(),
        1e3 * gpu_pre / n,
        n / gpu_s
    );
    if cpu_out != gpu_out {
        bail!("the GPU path's detections differ from the CPU path's");
    }
    println!("detections identical on all {} frames", rec.frames.len());
    Ok(())
}

fn main() -> eyre::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    // `--start-up SEARCH [--cuda-graph]`: one row of start-up times, in a fresh process.
    if let Some(i) = args.iter().position(|a| a == "--start-up") {
        let search = match args.get(i + 1).map(String::as_str) {
            Some("exhaustive") => vigil_infer::ConvSearch::Exhaustive,
            Some("default") => vigil_infer::ConvSearch::Default,
            _ => vigil_infer::ConvSearch::Heuristic,
        };
        let cuda = vigil_infer::CudaOptions {
            conv_search: search,
            cuda_graph: args.iter().any(|a| a == "--cuda-graph"),
            ..vigil_infer::CudaOptions::default()
        };
        return ort_gpu::start_up_row(&ort_gpu::centernet(), cuda);
    }
    let gpu = Gpu::open(0).map_err(|e| eyre!("{e}"))?;
    println!("# vigil GPU check\n\ndevice: {}", gpu.name());
    let imgs = frames(20)?;
    check_letterbox(&gpu, &imgs)?;
    check_decode(&gpu)?;
    timings(&gpu, &imgs[0])?;
    pipeline(&gpu)?;
    if !std::env::args().any(|a| a == "--no-ort-gpu") {
        println!("\n## 5. ONNX Runtime's CUDA EP fed on the device, against the CPU path");
        let frames = ort_gpu::sample_frames()?;
        let centernet = ort_gpu::centernet();
        ort_gpu::parity(&centernet, &frames)?;
        let yolo = ort_gpu::yolov8n();
        if Path::new(yolo.path).is_file() {
            ort_gpu::parity(&yolo, &frames)?;
        } else {
            println!("\n{} not here (ci/setup fetches it): skipped", yolo.path);
        }
        // Last: it breaks this process's context for good.
        ort_gpu::illegal_address(&centernet, &frames[0])?;
    }
    println!("\nall checks passed");
    Ok(())
}
