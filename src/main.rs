//! `vigil`: one binary for every node of the dataflow (`vigil node <name>`, which dora starts
//! as separate processes) and for the tools around recordings.

mod annotate;
mod bench;
mod cancel;
mod dataflow;
mod export;
mod import;
mod plot;
mod regress;
mod synth;
mod trackbench;
mod trackeval;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};
use eyre::WrapErr;
use vigil_record::RecordingReader;

#[derive(Parser, Debug)]
#[command(
    name = "vigil",
    version,
    about = "Edge video analytics on a dora-rs dataflow"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What `vigil export` writes.
#[derive(ValueEnum, Clone, Copy, Debug)]
enum ExportFormat {
    Parquet,
    Mot,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one node of the dataflow (dora starts these; see dataflow.yml).
    Node { name: NodeName },
    /// Still images (jpg, png) in file-name order → a recording.
    Import {
        dir: PathBuf,
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long, default_value_t = 30.0)]
        fps: f64,
    },
    /// Loads a vigil.yml, opens its model and checks them against each other, as every run
    /// does before it starts; prints what the model fixes (input, decoder).
    Check {
        #[arg(default_value = "vigil.yml")]
        config: PathBuf,
        /// Overrides in vigil.yml's terms, e.g. `--set model.decoder=boxes`.
        #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
        set: Vec<String>,
    },
    /// An nvinfer config (DeepStream-Yolo) and optionally an nvtracker config, or a
    /// deepstream-app config that names both → a vigil.yml.
    ImportDeepstream {
        config: PathBuf,
        #[arg(long)]
        tracker: Option<PathBuf>,
        #[arg(short, long)]
        output: PathBuf,
    },
    /// A recording and an output of it → the recording with the output's boxes, labels and
    /// track ids, as `vigil replay --annotate` writes it.
    Annotate {
        recording: PathBuf,
        output: PathBuf,
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
    },
    /// An output → an Apache Parquet table: a row per frame, per detection and per track
    /// (seq, timestamp, status, kind, class, label, score, box, track id, coasting).
    Export {
        output: PathBuf,
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
        /// The recording the output was made from: each row's `timestamp_ns`.
        #[arg(long)]
        recording: Option<PathBuf>,
        /// parquet: every frame, detection and track; mot: the tracks as a MOTChallenge
        /// result file, for `vigil track-eval`.
        #[arg(long, value_enum, default_value = "parquet")]
        format: ExportFormat,
        /// mot: only the tracks of this class id (e.g. 0, person, against pedestrian ground
        /// truth).
        #[arg(long)]
        class: Option<u32>,
    },
    /// An output (and the audit database of its run) → an HTML page: detections per class
    /// over time, frames without fresh detections, restarts, stalls, crash loops and camera
    /// outages, track lifetimes, all on one time axis.
    Plot {
        output: PathBuf,
        /// The run's audit database (`vigil replay --realtime` writes OUT.audit.db).
        #[arg(long)]
        audit: Option<PathBuf>,
        /// Label the axis in seconds at this frame rate.
        #[arg(long)]
        fps: Option<f64>,
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
    },
    /// Recordings one after the other (or one, `--times` times) → one recording, frame
    /// numbers and times going on; read and written a frame at a time.
    Concat {
        recordings: Vec<PathBuf>,
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long, default_value_t = 1)]
        times: u32,
    },
    /// Frames, duration, resolution, fps and size of a recording.
    Info { recording: PathBuf },
    /// Replay a recording through the real dataflow and write one JSON line per frame.
    Replay(Box<ReplayArgs>),
    /// Time each stage on a recording, sequentially and through the dataflow, in one run.
    Bench {
        #[arg(default_value = "recordings/vtest-100.mcap")]
        recording: PathBuf,
        #[arg(long)]
        model: Option<PathBuf>,
        #[arg(long)]
        config: Option<PathBuf>,
        /// Live mode instead: the lock-step capacity C, then realtime replays at 15, 30, 60
        /// fps and C: fresh detections against min(1, C/R), latency p50/p99, lines lost.
        #[arg(long)]
        live: bool,
        /// Infer processes [default: as `vigil replay` chooses].
        #[arg(long, value_parser = at_least_one)]
        infer_workers: Option<usize>,
    },
    /// The trackers against ground truth: detections made from each sequence's ground truth
    /// with seeded noise (low, medium, high), inference on every 1st, 2nd and 3rd frame, the
    /// IOU tracker (the customer's nvtracker config) and ByteTrack scored by MOTA, IDF1, ID
    /// switches and more; a Markdown table.
    TrackBench {
        /// Folders with a MOTChallenge `gt.txt` each (`bash ci/setup` fetches TUD-Campus and
        /// TUD-Stadtmitte to data/mot).
        #[arg(long, default_value = "data/mot")]
        data: PathBuf,
        /// Noise draws per sequence and level.
        #[arg(long, default_value_t = 20)]
        seeds: u64,
        /// The IOU tracker's settings: an nvtracker IOU config.
        #[arg(
            long,
            default_value = "tests/fixtures/deepstream/config_tracker_IOU.yml"
        )]
        iou_config: PathBuf,
        /// The score the IOU tracker's detections start at (the detector's threshold).
        #[arg(long, default_value_t = 0.25)]
        conf: f32,
        /// The score ByteTrack's detections start at [default: its low threshold, 0.1].
        #[arg(long)]
        bytetrack_conf: Option<f32>,
    },
    /// Snapshot tests of recorded sessions: replays each recording of the manifest lock-step
    /// through the dataflow and compares its detections with the expected output; non-zero
    /// on any failure.
    Test {
        #[arg(default_value = "vigil-tests.yml")]
        manifest: PathBuf,
        /// Write the expectations from this run instead of comparing (after a deliberate
        /// change).
        #[arg(long)]
        accept: bool,
        /// The profile for every recording: exact, cross-backend, or iou=A,score=B
        /// [default: each recording's, else the manifest's, else exact].
        #[arg(long)]
        tolerance: Option<vigil_compare::Profile>,
        /// Any setting for every recording, in vigil.yml's terms (after the manifest's).
        #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
        set: Vec<String>,
        /// Write JUnit XML here.
        #[arg(long)]
        junit: Option<PathBuf>,
        /// Run the I-th of N parts of the manifest (from 1), e.g. in a CI matrix.
        #[arg(long, value_name = "I/N")]
        shard: Option<regress::Shard>,
        /// Where the replays' outputs go.
        #[arg(long, default_value = "target/vigil-test")]
        out_dir: PathBuf,
        /// Infer processes per replay [default: as `vigil replay` chooses].
        #[arg(long, value_parser = at_least_one)]
        infer_workers: Option<usize>,
        /// Differing frames each failure shows (beyond the tolerance first).
        #[arg(long, default_value_t = 5)]
        frames: usize,
    },
    /// Compares two outputs frame by frame, as `vigil test` does; non-zero when they differ
    /// beyond the tolerance.
    Diff {
        expected: PathBuf,
        actual: PathBuf,
        /// exact, cross-backend, or iou=A,score=B.
        #[arg(long, default_value = "exact")]
        tolerance: vigil_compare::Profile,
        /// The vigil.yml the outputs were made with: its confidence thresholds tell
        /// near-threshold flips from real differences.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Or the confidence threshold itself.
        #[arg(long, conflicts_with = "config")]
        conf_threshold: Option<f64>,
        /// Differing frames to show.
        #[arg(long, default_value_t = 10)]
        frames: usize,
    },
    /// A tracker's output against ground truth, both MOTChallenge 2D text: MOTA, MOTP, IDF1
    /// and the rest, as motmetrics 1.4.0 computes them.
    TrackEval(trackeval::Args),
    /// Record live from a V4L2 camera.
    Record {
        #[arg(short, long)]
        output: PathBuf,
        #[arg(long, default_value = "/dev/video0")]
        device: PathBuf,
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
    },
}

#[derive(clap::Args, Debug)]
struct ReplayArgs {
    recording: PathBuf,
    #[arg(short, long)]
    output: PathBuf,
    /// The ONNX model; its `<stem>.yml` beside it is the vigil.yml it runs with.
    #[arg(long)]
    model: Option<PathBuf>,
    /// The vigil.yml [default: the project's, which the device runs].
    #[arg(long)]
    config: Option<PathBuf>,
    /// Play at the recorded timestamps, as the camera would, instead of lock-step: the
    /// detector takes the newest frame when it is free; every frame still gets its line,
    /// saying whether it was inferred and, if not, why.
    #[arg(long)]
    realtime: bool,
    /// With --realtime: play at this many frames per second instead of the recorded times.
    #[arg(long, requires = "realtime")]
    fps: Option<f64>,
    /// Write the run's summary here as JSON: lines, steady fps, frames by status,
    /// capture → detections / preprocessing / inference percentiles (ms).
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Also serve the MJPEG preview on 127.0.0.1:PORT.
    #[arg(long)]
    preview: Option<u16>,
    /// Keep the generated dataflow and dora's logs in this folder.
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Inject faults into the infer node: `abort@SEQ,segv@SEQ,hang@SEQ,sticky@SEQ,garbage@SEQ`,
    /// and with a GPU provider `illegal@SEQ` (a real illegal-address error in its CUDA context).
    #[arg(long)]
    faults: Option<String>,
    /// The infer watchdog's deadline for one inference, in ms.
    #[arg(long)]
    deadline_ms: Option<u64>,
    /// Run the monitor (audit, flight recorder) and serve /health and /metrics on this
    /// port (0: no server). On by default with --realtime, on port 0.
    #[arg(long)]
    monitor_port: Option<u16>,
    /// The audit database [default: <output>.audit.db].
    #[arg(long)]
    audit: Option<PathBuf>,
    /// Where flight recordings go [default: <output>.flight/].
    #[arg(long)]
    flight_dir: Option<PathBuf>,
    /// Any setting, in vigil.yml's terms: `--set tracker.max_age=40` (repeatable).
    #[arg(long = "set", value_name = "SECTION.KEY=VALUE")]
    set: Vec<String>,
    /// Infer processes sharing the frames (each one ONNX Runtime thread) [default: one
    /// per core, at most 4, for the CPU provider; 1 for an accelerator].
    #[arg(long, value_parser = at_least_one)]
    infer_workers: Option<usize>,
    /// Warm infer processes held in reserve: when an active one dies (or, realtime, holds a
    /// frame past `infer.takeover_ms`) the next frame goes to one at once; 0: off
    /// [default: vigil.yml's `infer.standby`].
    #[arg(long)]
    standby: Option<u32>,
    /// Play the recording this many times in a row, frame numbers and times going on (a
    /// soak: `ci/soak`).
    #[arg(long = "loop", default_value_t = 1)]
    loops: u64,
    /// Also write the recording with the run's boxes, labels and track ids (MCAP with
    /// `foxglove.ImageAnnotations`: Foxglove draws them over the video).
    #[arg(long, value_name = "OUT.mcap", conflicts_with = "loops")]
    annotate: Option<PathBuf>,
}

/// What `vigil node` runs (the names dataflow.yml's `args: node <name>` use).
#[derive(ValueEnum, Clone, Copy, Debug)]
enum NodeName {
    Camera,
    Replay,
    Preprocess,
    Infer,
    Track,
    Preview,
    Monitor,
    Sink,
}

fn main() {
    if let Err(e) = run() {
        if let Some(c) = e.downcast_ref::<cancel::Cancelled>() {
            eprintln!("vigil: {c}");
            std::process::exit(128 + c.0);
        }
        eprintln!("Error: {}", describe(&e));
        std::process::exit(1);
    }
}

/// An error for people: the message, then each cause it does not already say (a wrapped
/// I/O error is often in its wrapper's message too), on one line.
fn describe(e: &eyre::Report) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !text.contains(&c) {
            text.push_str(": ");
            text.push_str(&c);
        }
    }
    text
}

fn run() -> eyre::Result<()> {
    let done = command();
    // A signal that came while no dataflow ran (vigil bench's own loop, writing an annotated
    // copy) still ends the command as cancelled.
    match cancel::requested() {
        Some(sig) if done.is_ok() => Err(cancel::Cancelled(sig).into()),
        _ => done,
    }
}

fn command() -> eyre::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // dora keeps node logs in files: colour codes only on a terminal.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    if matches!(
        cli.command,
        Command::Replay(_) | Command::Test { .. } | Command::Bench { .. }
    ) {
        cancel::install()?;
    }
    match cli.command {
        Command::Node { name } => match name {
            NodeName::Camera => vigil_camera::main(),
            NodeName::Replay => vigil_replay::main(),
            NodeName::Preprocess => vigil_preprocess::main(),
            NodeName::Infer => vigil_infer_node::main(),
            NodeName::Track => vigil_track_node::main(),
            NodeName::Preview => vigil_preview::main(),
            NodeName::Monitor => vigil_monitor::main(),
            NodeName::Sink => vigil_sink::main(),
        },
        Command::Import { dir, output, fps } => {
            let n = write_new(&output, &[&dir], |tmp| import::import_dir(&dir, tmp, fps))?;
            println!("{}: {n} frames", output.display());
            Ok(())
        }
        Command::Check { config, set } => check(&config, overrides(&set)?),
        Command::ImportDeepstream {
            config,
            tracker,
            output,
        } => {
            let report = vigil_deepstream::import_to_file(&config, tracker.as_deref(), &output)?;
            for w in &report.warnings {
                eprintln!("warning: {w}");
            }
            eprintln!(
                "{}: written ({} warnings)",
                output.display(),
                report.warnings.len()
            );
            Ok(())
        }
        Command::Info { recording } => info(&recording),
        Command::Annotate {
            recording,
            output,
            out,
        } => {
            let n = annotate::annotate(&recording, &output, &out)?;
            println!(
                "{}: {} frames ({} with an output line), {} boxes",
                out.display(),
                n.frames,
                n.with_line,
                n.boxes
            );
            Ok(())
        }
        Command::Export {
            output,
            out,
            recording,
            format,
            class,
        } => {
            let mut inputs = vec![output.as_path()];
            inputs.extend(recording.as_deref());
            let n = write_new(&out, &inputs, |tmp| match format {
                ExportFormat::Parquet => export::export(&output, recording.as_deref(), tmp),
                ExportFormat::Mot => export::export_mot(&output, class, tmp),
            })?;
            println!("{}: {} frames, {} rows", out.display(), n.frames, n.rows);
            Ok(())
        }
        Command::Plot {
            output,
            audit,
            fps,
            out,
        } => {
            let what = plot::plot(&output, audit.as_deref(), fps, &out)?;
            println!("{what}");
            Ok(())
        }
        Command::Concat {
            recordings,
            output,
            times,
        } => {
            let inputs: Vec<&Path> = recordings.iter().map(PathBuf::as_path).collect();
            let n = write_new(&output, &inputs, |tmp| concat(&recordings, times, tmp))?;
            println!("{}: {n} frames", output.display());
            Ok(())
        }
        Command::Replay(args) => {
            let ReplayArgs {
                recording,
                output,
                model,
                config,
                realtime,
                fps,
                summary,
                preview,
                workdir,
                faults,
                deadline_ms,
                monitor_port,
                audit,
                flight_dir,
                set,
                infer_workers,
                standby,
                loops,
                annotate,
            } = *args;
            let set = overrides(&set)?;
            dataflow::check_replay_overrides(&set)?;
            let run = dataflow::load_config(model.as_deref(), config.as_deref(), set)?;
            if let Some(f) = fps
                && !(0.1..=1000.0).contains(&f)
            {
                eyre::bail!("--fps {f}: a camera rate from 0.1 to 1000");
            }
            let opts = dataflow::ReplayOptions {
                realtime,
                fps,
                preview,
                workdir,
                faults,
                deadline_ms,
                monitor_port,
                audit,
                flight_dir,
                infer_workers: infer_workers
                    .unwrap_or_else(|| dataflow::default_workers(&run.resolved.config)),
                standby,
                loops,
                stats: None,
            };
            let stats = dataflow::replay(&recording, &output, &run, &opts)?;
            eprintln!("{}: {}", output.display(), stats.describe());
            if let Some(out) = annotate {
                let n = annotate::annotate(&recording, &output, &out)?;
                eprintln!("{}: {} frames, {} boxes", out.display(), n.frames, n.boxes);
            }
            if let Some(path) = summary {
                std::fs::write(&path, serde_json::to_string_pretty(&stats)?)
                    .wrap_err_with(|| format!("writing {}", path.display()))?;
            }
            Ok(())
        }
        Command::TrackBench {
            data,
            seeds,
            iou_config,
            conf,
            bytetrack_conf,
        } => {
            let opts = trackbench::Options {
                data,
                seeds,
                iou_config,
                conf,
                bytetrack_conf,
            };
            let measured = trackbench::measure(&opts)?;
            print!("{}", trackbench::report(&opts, &measured));
            Ok(())
        }
        Command::Bench {
            recording,
            model,
            config,
            live,
            infer_workers,
        } => {
            let run = dataflow::load_config(model.as_deref(), config.as_deref(), Vec::new())?;
            if live {
                let workers = infer_workers
                    .unwrap_or_else(|| dataflow::default_workers(&run.resolved.config));
                bench::bench_live(&recording, &run, workers)
            } else {
                bench::bench(&recording, &run)
            }
        }
        Command::Record {
            output,
            device,
            seconds,
        } => record(&output, device, seconds),
        Command::TrackEval(args) => trackeval::run(&args),
        Command::Test {
            manifest,
            accept,
            tolerance,
            set,
            junit,
            shard,
            out_dir,
            infer_workers,
            frames,
        } => {
            let set = overrides(&set)?;
            dataflow::check_replay_overrides(&set)?;
            let opts = regress::TestOptions {
                tolerance,
                set,
                shard,
                accept,
                junit,
                out_dir,
                infer_workers,
                frames,
            };
            verdict(regress::run(&manifest, &opts))
        }
        Command::Diff {
            expected,
            actual,
            tolerance,
            config,
            conf_threshold,
            frames,
        } => {
            let thresholds = match (config, conf_threshold) {
                (Some(c), _) => regress::thresholds(&vigil_config::Config::load(&c)?),
                (None, t) => vigil_compare::Thresholds {
                    default: t,
                    ..vigil_compare::Thresholds::default()
                },
            };
            verdict(regress::diff(
                &expected,
                &actual,
                tolerance,
                &thresholds,
                frames,
            ))
        }
    }
}

/// `vigil test` and `vigil diff`: 1 says the detections differ (or a recording could not be
/// replayed), 2 that the comparison could not be made at all (a bad manifest, an unreadable
/// file), as test runners tell failures from errors.
fn could_not_run(e: eyre::Report) -> eyre::Result<()> {
    if e.downcast_ref::<cancel::Cancelled>().is_some() {
        return Err(e);
    }
    eprintln!("Error: {}", describe(&e));
    std::process::exit(2);
}

/// `--infer-workers`: a count of processes, at least one.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("at least one".to_owned()),
    }
}

/// `vigil test` / `vigil diff`'s verdict as an exit status (see [`could_not_run`]).
fn verdict(passed: eyre::Result<bool>) -> eyre::Result<()> {
    match passed {
        Ok(true) => Ok(()),
        Ok(false) => std::process::exit(1),
        Err(e) => could_not_run(e),
    }
}

/// `--set` values, in vigil.yml's terms.
fn overrides(set: &[String]) -> eyre::Result<Vec<vigil_config::Override>> {
    Ok(set.iter().map(|s| s.parse()).collect::<Result<_, _>>()?)
}

fn check(config: &Path, set: Vec<vigil_config::Override>) -> eyre::Result<()> {
    let run = dataflow::load_config(None, Some(config), set)?;
    let r = &run.resolved;
    println!("config:   {}", config.display());
    println!("model:    {}", r.config.model.path.display());
    println!(
        "input:    `{}` {:?}: {}x{} {}",
        r.model.input.name,
        r.model.input.shape,
        r.net_w,
        r.net_h,
        r.layout.as_str()
    );
    let outputs: Vec<String> = r.model.outputs.iter().map(ToString::to_string).collect();
    println!("outputs:  {}", outputs.join(", "));
    println!(
        "decoder:  {} ({})",
        r.decoder.name(),
        if r.config.model.decoder == vigil_config::Decoder::Auto {
            "picked from the outputs"
        } else {
            "as configured, fits the outputs"
        }
    );
    println!("provider: {:?}", r.config.model.provider);
    let t = &r.config.tracker;
    match t.kind {
        vigil_config::TrackerKind::ByteTrack => println!(
            "tracker:  bytetrack (detections above {} first, new tracks from {})",
            t.bytetrack.high_threshold.get(),
            t.bytetrack.new_track_threshold.get()
        ),
        vigil_config::TrackerKind::Iou => println!(
            "tracker:  iou (IoU ≥ {}, shadow {} frames, probation {})",
            t.iou_threshold.get(),
            t.max_age,
            t.probation_age
        ),
    }
    println!("ok");
    Ok(())
}

fn info(path: &Path) -> eyre::Result<()> {
    let rec = RecordingReader::open(path)?;
    let i = &rec.info;
    println!("recording:  {}", path.display());
    println!("frames:     {}", rec.frames.len());
    println!("duration:   {:.3} s", rec.duration_ns() as f64 / 1e9);
    println!("resolution: {}x{}", i.width, i.height);
    println!("fps:        {}", i.fps);
    println!("bytes:      {}", rec.bytes);
    println!("camera:     {}", i.camera);
    println!("software:   {}", i.software);
    if rec.torn {
        println!("torn:       yes (the writer stopped early; every complete frame is listed)");
    }
    if rec.orphans > 0 {
        println!(
            "malformed:  {} messages on channels never declared (not frames; skipped)",
            rec.orphans
        );
    }
    Ok(())
}

/// Writes `out` through `<out>.partial`, moved into place only once `write` succeeded (a
/// failure or an interruption leaves no half-written file under the name), and refuses an
/// `out` that is one of the inputs (it would be emptied before it is read).
pub(crate) fn write_new<T>(
    out: &Path,
    inputs: &[&Path],
    write: impl FnOnce(&Path) -> eyre::Result<T>,
) -> eyre::Result<T> {
    if let Ok(o) = std::fs::canonicalize(out) {
        for i in inputs {
            if std::fs::canonicalize(i).is_ok_and(|i| i == o) {
                eyre::bail!(
                    "{}: is also an input; write the result to another file",
                    out.display()
                );
            }
        }
    }
    let name = out
        .file_name()
        .ok_or_else(|| eyre::eyre!("{}: not a file name", out.display()))?;
    let folder = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !folder.is_dir() {
        eyre::bail!(
            "{}: the folder {} does not exist",
            out.display(),
            folder.display()
        );
    }
    let mut partial = name.to_owned();
    partial.push(".partial");
    let tmp = out.with_file_name(partial);
    match write(&tmp) {
        Ok(v) => {
            std::fs::rename(&tmp, out)
                .wrap_err_with(|| format!("moving {} to {}", tmp.display(), out.display()))?;
            Ok(v)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn concat(inputs: &[PathBuf], times: u32, output: &Path) -> eyre::Result<u64> {
    if inputs.is_empty() || times == 0 {
        eyre::bail!("nothing to write: give at least one recording and --times of at least 1");
    }
    let mut readers = inputs
        .iter()
        .map(|p| RecordingReader::open(p))
        .collect::<Result<Vec<_>, _>>()?;
    let first = &readers[0].info;
    for r in &readers[1..] {
        if (r.info.width, r.info.height) != (first.width, first.height) {
            eyre::bail!(
                "{}: {}x{}, the first recording is {}x{}",
                r.path().display(),
                r.info.width,
                r.info.height,
                first.width,
                first.height
            );
        }
    }
    let info = vigil_record::RecordingInfo {
        software: software(),
        ..first.clone()
    };
    let mut w = vigil_record::RecordingWriter::create(output, &info)?;
    // Each piece starts one frame interval after the last one ended, numbered on from it.
    let interval = (1e9 / info.fps.max(0.1)) as u64;
    let (mut seq_base, mut next_t) = (0u64, None::<u64>);
    for _ in 0..times {
        for r in &mut readers {
            let Some(start) = r.frames.iter().map(|f| f.timestamp_ns).min() else {
                continue;
            };
            let begin = next_t.unwrap_or(start);
            let mut next_seq = seq_base;
            for i in 0..r.frames.len() {
                let mut f = r.frame(i)?;
                let seq = seq_base + u64::from(f.seq);
                f.seq = u32::try_from(seq)
                    .map_err(|_| eyre::eyre!("{}: more than 2^32 frames", output.display()))?;
                f.timestamp_ns = begin
                    .checked_add(f.timestamp_ns - start)
                    .and_then(|t| Some((t, t.checked_add(interval)?)))
                    .map(|(t, next)| {
                        next_t = next_t.max(Some(next));
                        t
                    })
                    .ok_or_else(|| {
                        eyre::eyre!(
                            "{}: frame {i}: times past 2^64 ns once joined",
                            r.path().display()
                        )
                    })?;
                next_seq = next_seq.max(seq + 1);
                w.write_frame(&f)?;
            }
            seq_base = next_seq;
        }
    }
    Ok(w.finish()?)
}

fn record(output: &Path, device: PathBuf, seconds: f64) -> eyre::Result<()> {
    let cfg = vigil_camera::Config {
        device,
        ..vigil_camera::Config::default()
    };
    let mut cap = vigil_camera::Capture::open(&cfg)?;
    let info = vigil_record::RecordingInfo {
        camera: cfg.device.display().to_string(),
        width: cap.width,
        height: cap.height,
        fps: f64::from(cfg.fps),
        software: software(),
    };
    let mut w = vigil_record::RecordingWriter::create(output, &info)?;
    let start = std::time::Instant::now();
    while start.elapsed().as_secs_f64() < seconds {
        let f = cap.next_frame()?;
        w.write_frame(&vigil_record::RecordedFrame {
            seq: f.seq,
            timestamp_ns: f.timestamp_ns,
            jpeg: f.jpeg.to_vec(),
        })?;
    }
    let n = w.finish().wrap_err("finishing the recording")?;
    println!("{}: {n} frames", output.display());
    Ok(())
}

/// What recordings name as their writer.
fn software() -> String {
    format!("vigil {}", env!("CARGO_PKG_VERSION"))
}
