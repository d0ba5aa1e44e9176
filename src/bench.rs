//! `vigil bench`: where a frame's time goes, and what the multi-process dataflow does with it.
//!
//! One run on one recording: each stage alone on every frame (median ms), the same stages one
//! after another in a single loop (what a one-process program does: the sequential frame
//! rate), then the real dataflow (lock-step replay through dora, every stage its own process),
//! with one infer process and with two sharing the frames, and the ratios of the rates.

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
    let pre_cfg = vigil_preprocess::Config::new(r, 1);
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
        let tracks = tracker.update(&dets, true);
        t[4].push(s.elapsed());
        let s = Instant::now();
        let overlays: Vec<Overlay> = vigil_vision::overlays(&tracks, &[]);
        draw_overlay(&mut img, &overlays);
        codec.encode(&img)?;
        t[5].push(s.elapsed());
    }
    let seq_fps = n as f64 / seq_start.elapsed().as_secs_f64();
    println!("\n| stage | median ms/frame |\n|---|---|");
    for (name, v) in names.iter().zip(t) {
        println!("| {name} | {:.3} |", median(v));
    }
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
