//! The infer node's GPU path in-process, against the CPU path: ONNX Runtime's CUDA execution
//! provider fed by vigil's letterbox kernel straight into the model's input on the device.

use std::path::Path;
use std::time::{Duration, Instant};

use eyre::{bail, eyre};
use vigil_detect::{Detection, Layout, NmsConfig, PostprocessConfig};
use vigil_infer::{
    Backend, ConvSearch, CudaOptions, Detector, GpuBackend, OrtBackend, OrtConfig, Provider,
    RgbFrame, warm_up,
};
use vigil_record::Recording;
use vigil_vision::{JpegCodec, PreprocessConfig, Preprocessor, RgbImage};

/// The parity bound: matched boxes overlap at least this much...
pub const MIN_IOU: f32 = 0.99;
/// ...and their scores differ by at most this.
pub const MAX_DSCORE: f32 = 1e-3;

/// A model and how vigil.yml sets it up.
pub struct Model {
    pub name: &'static str,
    pub path: &'static str,
    pub pre: PreprocessConfig,
    pub post: PostprocessConfig,
}

#[must_use]
pub fn centernet() -> Model {
    Model {
        name: "CenterNet-MobileNetV3 512",
        path: "models/centernet_mb3_coco.onnx",
        pre: PreprocessConfig::plain_resize(512, 512),
        post: PostprocessConfig {
            layout: Some(Layout::BoxesScoreClass),
            threshold: 0.3,
            nms: NmsConfig::default(),
        },
    }
}

#[must_use]
pub fn yolov8n() -> Model {
    Model {
        name: "YOLOv8n 320 (Ultralytics raw, decoded on the device)",
        path: "models/nudenet_yolov8n_320n.onnx",
        pre: PreprocessConfig::ultralytics(320),
        // Low, so that the street scene gives this (body-part) detector boxes to compare.
        post: PostprocessConfig {
            layout: Some(Layout::UltralyticsRaw),
            threshold: 0.05,
            nms: NmsConfig::default(),
        },
    }
}

fn ort(model: &Model, provider: Provider, cuda: CudaOptions) -> OrtConfig {
    OrtConfig {
        model: model.path.into(),
        provider,
        threads: 0,
        library: std::env::var_os("ORT_DYLIB_PATH").map(Into::into),
        cuda,
        ..OrtConfig::default()
    }
}

/// The GPU path for `model`, bound and warmed up, with its start-up times.
pub fn gpu_detector(
    model: &Model,
    cuda: CudaOptions,
) -> eyre::Result<(Detector<GpuBackend>, [Duration; 3])> {
    let graph = cuda.cuda_graph;
    let mut b = GpuBackend::load(&ort(model, Provider::Cuda, cuda))?;
    let layout = model.post.layout.ok_or_else(|| eyre!("a decoder"))?;
    b.bind(model.pre.clone(), layout, model.post.lowest_threshold())?;
    let t = Instant::now();
    warm_up(&mut b)?;
    if graph {
        // Captured on the second run.
        warm_up(&mut b)?;
    }
    let times = [b.load_times.device, b.load_times.session, t.elapsed()];
    Ok((Detector::new(b, model.post.clone()), times))
}

/// How two frames' detections compare.
#[derive(Debug, Default, Clone, Copy)]
pub struct Agreement {
    pub reference: usize,
    pub matched: usize,
    /// Unmatched detections scoring within [`MAX_DSCORE`] of the threshold (a flip, allowed).
    pub near_threshold: usize,
    /// Unmatched and not near the threshold: a failure.
    pub unmatched: usize,
    pub min_iou: f32,
    pub max_dscore: f32,
}

impl Agreement {
    fn add(&mut self, a: &[Detection], b: &[Detection], threshold: f32) {
        if self.reference == 0 && self.matched == 0 {
            self.min_iou = 1.0;
        }
        self.reference += a.len();
        let mut taken = vec![false; b.len()];
        let near = |d: &Detection| (d.score - threshold).abs() <= MAX_DSCORE;
        for d in a {
            let best = b
                .iter()
                .enumerate()
                .filter(|(j, e)| !taken[*j] && e.class == d.class)
                .map(|(j, e)| (j, d.bbox.iou(&e.bbox)))
                .max_by(|x, y| x.1.total_cmp(&y.1));
            match best {
                Some((j, iou)) if iou >= 0.5 => {
                    taken[j] = true;
                    self.matched += 1;
                    self.min_iou = self.min_iou.min(iou);
                    self.max_dscore = self.max_dscore.max((d.score - b[j].score).abs());
                }
                _ if near(d) => self.near_threshold += 1,
                _ => self.unmatched += 1,
            }
        }
        for (j, e) in b.iter().enumerate() {
            if !taken[j] {
                if near(e) {
                    self.near_threshold += 1;
                } else {
                    self.unmatched += 1;
                }
            }
        }
    }

    #[must_use]
    pub fn within_bounds(&self) -> bool {
        self.reference > 0
            && self.unmatched == 0
            && self.min_iou >= MIN_IOU
            && self.max_dscore <= MAX_DSCORE
    }
}

fn median_ms(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0) * 1e3
}

/// CPU path vs GPU path over the sample recording, for `model`; TF32 off and on.
pub fn parity(model: &Model, frames: &[RgbImage]) -> eyre::Result<()> {
    println!("\n### {}\n", model.name);
    let mut cpu = Detector::new(
        OrtBackend::load(&ort(model, Provider::Cpu, CudaOptions::default()))?,
        model.post.clone(),
    );
    let mut pre = Preprocessor::new(model.pre.clone())?;
    let shape = model.pre.shape();
    let mut reference = Vec::with_capacity(frames.len());
    let mut tensors = Vec::with_capacity(frames.len());
    for img in frames {
        let mut t = Vec::new();
        let lb = pre.run_rgb(img, &mut t)?;
        reference.push((cpu.detect(&shape, &t, &lb)?, lb));
        tensors.push(t);
    }
    println!(
        "| CUDA EP setting | frames | CPU detections | matched | near-threshold flips | other differences | min IoU | max abs score diff | input on the device = host tensor | GPU path ms/frame (median) | within IoU >= {MIN_IOU}, dscore <= {MAX_DSCORE} |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut ok = true;
    for (tf32, cuda_graph) in [(false, false), (true, false), (false, true)] {
        let cuda = CudaOptions {
            tf32,
            conv_search: ConvSearch::Heuristic,
            cuda_graph,
        };
        let (mut gpu, _) = match gpu_detector(model, cuda) {
            Ok(g) => g,
            Err(e) if cuda_graph => {
                println!("| CUDA graph | not possible for this model: {e} |");
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut agree = Agreement::default();
        let mut identical = true;
        let mut input = Vec::new();
        let mut times = Vec::with_capacity(frames.len());
        for (img, ((dets, lb), tensor)) in frames.iter().zip(reference.iter().zip(&tensors)) {
            let frame = RgbFrame {
                width: img.width,
                height: img.height,
                pixels: &img.pixels,
            };
            let t = Instant::now();
            let got = gpu.detect_frame(&frame, lb)?;
            times.push(t.elapsed().as_secs_f64());
            gpu.backend_mut().input_on_host(&mut input)?;
            identical &= input.len() == tensor.len()
                && input
                    .iter()
                    .zip(tensor)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
            agree.add(dets, &got, model.post.threshold);
        }
        let within = agree.within_bounds();
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.5} | {:.2e} | {} | {:.3} | {} |",
            match (tf32, cuda_graph) {
                (true, _) => "tf32 on",
                (false, true) => "tf32 off, CUDA graph",
                (false, false) => "tf32 off (vigil's default)",
            },
            frames.len(),
            agree.reference,
            agree.matched,
            agree.near_threshold,
            agree.unmatched,
            agree.min_iou,
            agree.max_dscore,
            if identical { "yes, bit for bit" } else { "NO" },
            median_ms(times),
            if within { "yes" } else { "no" }
        );
        ok &= identical && (tf32 || within);
    }
    if !ok {
        bail!(
            "{}: the GPU path (TF32 off) is outside the parity bound, or its input differs from the host's",
            model.name
        );
    }
    Ok(())
}

/// What a new GPU process pays before its first detection: one row, for a process that has
/// done nothing else (`vigil-gpu-check --start-up SEARCH [--cuda-graph]`).
pub fn start_up_row(model: &Model, cuda: CudaOptions) -> eyre::Result<()> {
    let started = Instant::now();
    let (mut gpu, [device, session, first]) = gpu_detector(model, cuda)?;
    let total = started.elapsed();
    let b = gpu.backend_mut();
    let shape: Vec<usize> = model.pre.shape();
    let zeros = vec![0.0f32; shape.iter().product()];
    let mut runs = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        b.run(&shape, &zeros)?;
        runs.push(t.elapsed().as_secs_f64());
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "| {:?}{} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} |",
        cuda.conv_search,
        if cuda.cuda_graph { ", CUDA graph" } else { "" },
        ms(device),
        ms(session),
        ms(first),
        ms(total),
        median_ms(runs)
    );
    Ok(())
}

/// The customer's failure, for real: a wild-pointer write in this process's context; the next
/// inference must fail with a sticky error (700) that the infer node exits on.
pub fn illegal_address(model: &Model, img: &RgbImage) -> eyre::Result<()> {
    println!("\n### A real illegal address (error 700) in the process that owns the model\n");
    let (mut gpu, _) = gpu_detector(model, CudaOptions::default())?;
    let frame = RgbFrame {
        width: img.width,
        height: img.height,
        pixels: &img.pixels,
    };
    let lb = vigil_detect::Letterbox::fit(
        img.width,
        img.height,
        model.pre.net_w,
        model.pre.net_h,
        model.pre.keep_aspect,
        model.pre.symmetric_padding,
    );
    let before = gpu.detect_frame(&frame, &lb)?.len();
    gpu.backend_mut().break_device()?;
    let after = gpu.detect_frame(&frame, &lb);
    let err = match after {
        Ok(d) => bail!(
            "the frame after the wild write gave {} detections: no fault",
            d.len()
        ),
        Err(vigil_infer::FrameError::Backend(e)) => e,
        Err(e) => bail!("the frame after the wild write failed, but not on the device: {e}"),
    };
    println!("- before: {before} detections");
    println!("- after the wild write: `{err}`");
    println!(
        "- classified sticky (the node exits 86 for a restart): {}",
        err.is_sticky()
    );
    let again = gpu.detect_frame(&frame, &lb);
    println!(
        "- the next frame in the same process: {}",
        match &again {
            Ok(_) => "succeeded (!)".to_owned(),
            Err(e) => format!("`{e}`"),
        }
    );
    if !err.is_sticky() || again.is_ok() {
        bail!("error 700 was not sticky or not classified so");
    }
    Ok(())
}

/// The sample recording's frames, decoded.
pub fn sample_frames() -> eyre::Result<Vec<RgbImage>> {
    let rec = Recording::open(Path::new("recordings/vtest-100.mcap"))?;
    let mut codec = JpegCodec::new(90)?;
    rec.frames
        .iter()
        .map(|f| codec.decode(&f.jpeg).map_err(Into::into))
        .collect()
}
