//! `vigil bench`: where a frame's time goes, and what the multi-process dataflow does with it.
//!
//! One run on one recording: each stage alone on every frame (median ms), the same stages one
//! after another in a single loop (what a one-process program does: the sequential frame
//! rate), then the real dataflow (lock-step replay through dora, every stage its own process),
//! with one infer process and with two sharing the frames, and the ratios of the rates.
//!
//! `--live`: the lock-step capacity C of the dataflow, then realtime replays at several camera
//! rates R (15, 30, 60 fps and C): per rate, the fraction of frames with fresh detections
//! against the ideal min(1, C/R), capture → detections p50/p99 against one inference + one
//! preprocessing + one frame interval, and lines lost.

use std::path::Path;
use std::time::{Duration, Instant};

use eyre::WrapErr;
use vigil_detect::postprocess;
use vigil_infer::{Backend, OrtBackend};
use vigil_record::Recording;
use vigil_track::Tracker;
use vigil_vision::{JpegCodec, Overlay, Preprocessor, RgbImage, draw_overlay};

use crate::dataflow::{ReplayOptions, RunConfig, replay};

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v.get(v.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

pub fn bench(recording: &Path, run: &RunConfig) -> eyre::Result<()> {
    let rec = Recording::open(recording)?;
    // Each stage's config as its node makes it from the same resolved vigil.yml.
    let r = &run.resolved;
    let pre_cfg = vigil_preprocess::Config::new(r, 1, vigil_config::topology::Order::Strict);
    let mut infer_cfg = vigil_infer_node::Config::new(&r.config, "infer");
    infer_cfg.post.layout = Some(r.decoder);
    let track_cfg =
        vigil_track_node::Config::new(&r.config.tracker, vigil_config::topology::Order::Strict);
    let mut backend = OrtBackend::load(&infer_cfg.ort)?;
    let mut codec = JpegCodec::new(80)?;
    let mut pre = Preprocessor::new(pre_cfg.pre.clone())?;
    let mut tracker = Tracker::new(track_cfg.tracker);
    let shape = pre_cfg.pre.shape();
    let n = rec.frames.len();
    println!(
        "vigil bench: {} ({n} frames {}x{}), model {}",
        recording.display(),
        rec.info.width,
        rec.info.height,
        infer_cfg.ort.model.display()
    );

    // Warm up (lazy initialisation in every library) on the first frame.
    let mut img = RgbImage::default();
    let mut tensor = Vec::new();
    if let Some(f) = rec.frames.first() {
        codec.decode_into(&f.jpeg, &mut img)?;
        pre.run_rgb(&img, &mut tensor)?;
        backend.run(&shape, &tensor)?;
    }

    let mut t = [const { Vec::new() }; 6];
    let names = [
        "JPEG decode",
        "letterbox + normalise",
        "inference",
        "decode + NMS",
        "track",
        "preview overlay + JPEG encode",
    ];
    let seq_start = Instant::now();
    for f in &rec.frames {
        let s = Instant::now();
        codec.decode_into(&f.jpeg, &mut img)?;
        t[0].push(s.elapsed());
        let s = Instant::now();
        let lb = pre.run_rgb(&img, &mut tensor)?;
        t[1].push(s.elapsed());
        let s = Instant::now();
        let outs = backend.run(&shape, &tensor)?;
        t[2].push(s.elapsed());
        let s = Instant::now();
        let dets = postprocess(&outs, &infer_cfg.post, &lb)?;
        t[3].push(s.elapsed());
        let s = Instant::now();
        let tracks = tracker.update(&dets);
        t[4].push(s.elapsed());
        let s = Instant::now();
        let overlays: Vec<Overlay> = vigil_vision::overlays(&tracks, &[]);
        draw_overlay(&mut img, &overlays);
        codec.encode(&img)?;
        t[5].push(s.elapsed());
    }
    let seq_fps = n as f64 / seq_start.elapsed().as_secs_f64();
    println!("\n| stage | median ms/frame |\n|---|---|");
    let medians: Vec<f64> = t.into_iter().map(median).collect();
    for (name, m) in names.iter().zip(&medians) {
        println!("| {name} | {m:.3} |");
    }
    // What a frame costs besides inference on the device: decode, letterbox, NMS, track (the
    // preview renders only while someone watches).
    let besides = medians[0] + medians[1] + medians[3] + medians[4];
    println!(
        "\neverything but inference: {besides:.2} ms = {:.1} % of inference ({:.1} % with a preview being watched)",
        100.0 * besides / medians[2],
        100.0 * (besides + medians[5]) / medians[2]
    );
    println!("\nsequential, one process, every stage in turn: {seq_fps:.1} fps");

    let dir = tempfile::tempdir()?;
    for workers in [1, 2] {
        let out = dir.path().join(format!("bench-{workers}.jsonl"));
        let opts = ReplayOptions {
            infer_workers: workers,
            ..ReplayOptions::default()
        };

        let stats =
            replay(recording, &out, run, &opts).wrap_err("replaying through the dataflow")?;
        let how = if workers == 1 {
            "one process per stage".to_owned()
        } else {
            format!("{workers} infer processes of one ONNX Runtime thread each")
        };
        match stats.steady_fps {
            Some(fps) => println!(
                "dataflow, lock-step replay, {how}: {fps:.1} fps once results flow; dataflow / sequential = {:.2}",
                fps / seq_fps
            ),
            None => println!("dataflow, {how}: {} frames, too few to time", stats.frames),
        }
    }
    Ok(())
}

/// One realtime run at `fps` (or the recorded rate).
pub struct LiveRun {
    pub frames: u64,
    pub lines: u64,
    pub inferred: u64,
    pub stats: vigil_sink::Stats,
}

impl LiveRun {
    /// Frames with fresh detections, as a fraction of the frames played.
    #[must_use]
    pub fn fresh(&self) -> f64 {
        self.inferred as f64 / self.frames.max(1) as f64
    }
}

/// A realtime replay of `recording` at `fps` with `workers` infer processes.
pub fn live_run(
    recording: &Path,
    run: &RunConfig,
    fps: f64,
    workers: usize,
) -> eyre::Result<LiveRun> {
    let frames = Recording::open(recording)?.frames.len() as u64;
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("live.jsonl");
    let opts = ReplayOptions {
        realtime: true,
        fps: Some(fps),
        infer_workers: workers,
        ..ReplayOptions::default()
    };
    let stats = replay(recording, &out, run, &opts)
        .wrap_err_with(|| format!("realtime replay at {fps:.1} fps"))?;
    let summary = stats
        .summary
        .ok_or_else(|| eyre::eyre!("the sink wrote no summary"))?;
    Ok(LiveRun {
        frames,
        lines: stats.frames,
        inferred: summary.status.get("inferred").copied().unwrap_or(0),
        stats: summary,
    })
}

/// The lock-step capacity of the dataflow with `workers` infer processes, in fps.
pub fn capacity(recording: &Path, run: &RunConfig, workers: usize) -> eyre::Result<f64> {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("lockstep.jsonl");
    let opts = ReplayOptions {
        infer_workers: workers,
        ..ReplayOptions::default()
    };
    replay(recording, &out, run, &opts)?
        .steady_fps
        .ok_or_else(|| eyre::eyre!("too few frames to time the lock-step replay"))
}

/// `vigil bench --live`: see the module docs.
pub fn bench_live(recording: &Path, run: &RunConfig, workers: usize) -> eyre::Result<()> {
    let c = capacity(recording, run, workers)?;
    println!(
        "vigil bench --live: {} with {workers} infer process(es); lock-step capacity C = {c:.1} fps",
        recording.display()
    );
    let mut rates = vec![15.0, 30.0, 60.0, c];
    rates.sort_by(f64::total_cmp);
    println!(
        "\n| camera fps R | frames | fresh | ideal min(1, C/R) | fresh / ideal | detect p50 ms | p99 ms | bound ms | lost | not inferred |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in rates {
        let live = live_run(recording, run, r, workers)?;
        let ideal = (c / r).min(1.0);
        let s = &live.stats;
        let med = |p: Option<vigil_sink::Percentiles>| p.map_or(0.0, |p| p.p50);
        // One inference + one preprocessing (their medians in this run) + one frame interval.
        let bound = med(s.infer_ms) + med(s.preprocess_ms) + 1e3 / r;
        let others: Vec<String> = s
            .status
            .iter()
            .filter(|(k, n)| k.as_str() != "inferred" && **n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        println!(
            "| {r:.1} | {} | {:.3} | {ideal:.3} | {:.2} | {:.1} | {:.1} | {bound:.1} | {} | {} |",
            live.frames,
            live.fresh(),
            live.fresh() / ideal,
            med(s.detect_ms),
            s.detect_ms.map_or(0.0, |p| p.p99),
            live.frames.saturating_sub(live.lines),
            others.join(", ")
        );
    }
    Ok(())
}
