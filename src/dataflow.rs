//! `vigil replay`: the device dataflow (dataflow.yml, built in) with the replay node in place
//! of the camera and a sink at the end, run by the real dora runtime. The replay graph is
//! built from the typed device graph; every node of it reads the same vigil.yml as on the
//! device, plus the overrides the replay itself owns, named in vigil.yml's own terms.

use std::io::BufRead;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use eyre::{WrapErr, bail, eyre};
use vigil_config::topology::{self, Dataflow, Input, NodeSpec, Order, env, node, port};
use vigil_config::{CONFIG_ENV, Override, Resolved, SET_ENV, Source};

/// The device dataflow, as shipped.
pub const DEVICE_DATAFLOW: &str = include_str!("../dataflow.yml");

/// Frames in flight during a lock-step replay; every queue is sized above it, so none drops.
const WINDOW: usize = 4;

/// Restarts allowed to a failing node during a replay.
const REPLAY_MAX_RESTARTS: u64 = 2;

/// The device's configuration, relative to the project folder.
pub const DEFAULT_CONFIG: &str = "vigil.yml";

/// Restarts a replay allows infer when a fault comes on every frame.
const REPLAY_LOOP_RESTARTS: u64 = 200;

/// The vigil.yml keys a replay sets itself, and the flag that sets each: every other setting
/// a replay node sees is the device's (and `--set` may not reach these).
pub const REPLAY_OWNED: &[(&str, &str)] = &[
    ("preview.port", "--preview"),
    ("monitor.port", "--monitor-port"),
    ("monitor.audit_db", "--audit"),
    ("monitor.flight_dir", "--flight-dir"),
    ("infer.faults", "--faults"),
    ("infer.deadline_ms", "--deadline-ms"),
    ("infer.state_dir", "--workdir"),
    ("infer.standby", "--standby"),
];

/// Refuses `--set` on a key the replay owns, naming the flag to use instead.
pub fn check_replay_overrides(set: &[Override]) -> eyre::Result<()> {
    for o in set {
        if let Some((key, flag)) = REPLAY_OWNED.iter().find(|(k, _)| *k == o.key()) {
            bail!("--set {o}: a replay sets {key} itself; use {flag}");
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    pub realtime: bool,
    /// Include the preview, serving on this port (0: render and report only).
    pub preview: Option<u16>,
    pub workdir: Option<PathBuf>,
    /// `infer.faults` for this replay.
    pub faults: Option<String>,
    pub deadline_ms: Option<u64>,
    /// Include the monitor, serving on this port (0: no server).
    pub monitor_port: Option<u16>,
    pub audit: Option<PathBuf>,
    pub flight_dir: Option<PathBuf>,
    /// Infer processes sharing the frames.
    pub infer_workers: usize,
    /// Warm infer processes held in reserve besides them (`None`: vigil.yml's
    /// `infer.standby`).
    pub standby: Option<u32>,
    /// Realtime: play at this rate instead of the recorded times.
    pub fps: Option<f64>,
    /// Play the recording this many times in a row (0 and 1: once).
    pub loops: u64,
    /// Where the sink writes the run's summary (frames by status, latency).
    pub stats: Option<PathBuf>,
}

impl ReplayOptions {
    /// The preview port, if the preview runs: asked for, or implied by a realtime replay.
    fn preview_port(&self) -> Option<u16> {
        self.preview.or(self.realtime.then_some(0))
    }

    fn monitor(&self) -> Option<u16> {
        self.monitor_port
            .or((self.realtime || self.faults.is_some()).then_some(0))
    }

    /// This replay's own settings, as overrides (paths beside `output` by default; infer's
    /// last words in the replay's own folder, so that replays never share them).
    fn overrides(
        &self,
        output: &Path,
        workdir: &Path,
        with_monitor: bool,
    ) -> eyre::Result<Vec<Override>> {
        let mut out = Vec::new();
        let mut set = |key: &str, value: String| {
            debug_assert!(REPLAY_OWNED.iter().any(|(k, _)| *k == key), "{key}");
            out.push(Override {
                path: key.split('.').map(str::to_owned).collect(),
                value,
            });
        };
        if let Some(p) = self.preview_port() {
            set("preview.port", p.to_string());
        }
        if with_monitor {
            set(
                "monitor.port",
                self.monitor().unwrap_or_default().to_string(),
            );
            let audit = self
                .audit
                .clone()
                .unwrap_or_else(|| output.with_extension("audit.db"));
            let flight = self
                .flight_dir
                .clone()
                .unwrap_or_else(|| output.with_extension("flight"));
            set(
                "monitor.audit_db",
                yaml_string(&std::path::absolute(audit)?),
            );
            set(
                "monitor.flight_dir",
                yaml_string(&std::path::absolute(flight)?),
            );
        }
        // Faults only where this replay asks for them, whatever vigil.yml drills.
        set(
            "infer.faults",
            serde_json::to_string(self.faults.as_deref().unwrap_or_default())?,
        );
        if let Some(d) = self.deadline_ms {
            set("infer.deadline_ms", d.to_string());
        }
        if let Some(n) = self.standby {
            set("infer.standby", n.to_string());
        }
        set(
            "infer.state_dir",
            yaml_string(&std::path::absolute(workdir.join("state"))?),
        );
        Ok(out)
    }
}

/// A path as a YAML value (JSON strings are YAML).
fn yaml_string(p: &Path) -> String {
    serde_json::to_string(&p.display().to_string()).unwrap_or_default()
}

/// A run's configuration: where it comes from (what every node is handed) and what it
/// resolved to before anything started.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub source: Source,
    pub resolved: Resolved,
}

/// The configuration of a run: `--config`, else `--model`'s `<stem>.yml` beside it (or
/// defaults), else the project's vigil.yml; `--model` replaces the model, `--set` applies
/// last. The model is opened once here and checked against the settings, so a configuration
/// that cannot work fails before dora starts.
pub fn load_config(
    model: Option<&Path>,
    config: Option<&Path>,
    set: Vec<Override>,
) -> eyre::Result<RunConfig> {
    let mut source = Source::default();
    match (config, model) {
        (Some(c), _) => source.file = Some(std::path::absolute(c)?),
        (None, Some(m)) => {
            let sidecar = m.with_extension("yml");
            if !sidecar.is_file() {
                bail!(
                    "--model {}: no {} beside it to say how to feed it and read it; give \
                     --config with a vigil.yml for this model",
                    m.display(),
                    sidecar.display()
                );
            }
            source.file = Some(std::path::absolute(sidecar)?);
        }
        (None, None) => source.file = Some(default_config()?),
    }
    if let Some(m) = model {
        source.overrides.push(Override {
            path: vec!["model".into(), "path".into()],
            value: yaml_string(&std::path::absolute(m)?),
        });
    }
    // Paths given on the command line are relative to where it runs.
    let cwd = std::env::current_dir()?;
    source
        .overrides
        .extend(set.into_iter().map(|o| o.relative_to(&cwd)));
    let config = source.load()?;
    for w in config.warnings() {
        eprintln!("warning: {w}");
    }
    if let Some(labels) = &config.model.labels {
        std::fs::read_to_string(labels)
            .wrap_err_with(|| format!("model.labels: reading {}", labels.display()))?;
    }
    let resolved = vigil_config::resolve(config)?;
    check_gpu(resolved.config.model.provider)?;
    Ok(RunConfig { source, resolved })
}

/// A GPU provider needs a GPU: said before anything starts, not by an infer node that fails.
pub fn check_gpu(provider: vigil_config::Provider) -> eyre::Result<()> {
    if !provider.is_gpu() {
        return Ok(());
    }
    let name = format!("{provider:?}").to_lowercase();
    match vigil_gpu::devices() {
        Ok(0) => eyre::bail!("model.provider {name}: the CUDA driver sees no GPU on this machine"),
        Ok(_) => Ok(()),
        Err(e) => eyre::bail!("model.provider {name}: {e}: no NVIDIA GPU can be used here"),
    }
}

/// The project's vigil.yml: in the working folder, or in the project the binary was built in.
fn default_config() -> eyre::Result<PathBuf> {
    let mut candidates = vec![PathBuf::from(DEFAULT_CONFIG)];
    if let Ok(exe) = std::env::current_exe() {
        candidates.extend(
            exe.ancestors()
                .skip(1)
                .take(3)
                .map(|d| d.join(DEFAULT_CONFIG)),
        );
    }
    let found = candidates
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| eyre!("{DEFAULT_CONFIG} not found; pass --config or --model"))?;
    Ok(std::path::absolute(found)?)
}

/// `VIGIL_CONFIG` and `VIGIL_SET` for a node of this run.
fn config_env(node: &mut NodeSpec, source: &Source) {
    node.env.remove(CONFIG_ENV);
    node.env.remove(SET_ENV);
    if let Some(f) = &source.file {
        node.env.insert(CONFIG_ENV.into(), f.display().to_string());
    }
    if let Some(set) = source.overrides_env() {
        node.env.insert(SET_ENV.into(), set);
    }
}

/// Builds the replay dataflow from the device one.
pub fn replay_dataflow(
    device: &Dataflow,
    exe: &Path,
    recording: &Path,
    output: &Path,
    workdir: &Path,
    source: &Source,
    opts: &ReplayOptions,
) -> eyre::Result<Dataflow> {
    let queue = WINDOW * 2;
    let mut nodes: Vec<NodeSpec> = device
        .nodes
        .iter()
        .filter(|n| match n.id.as_str() {
            node::PREVIEW => opts.preview_port().is_some(),
            node::MONITOR => opts.monitor().is_some(),
            _ => true,
        })
        .cloned()
        .collect();
    fold_infer(&mut nodes)?;
    let present: Vec<String> = nodes.iter().map(|n| n.id.clone()).collect();
    // Parsed here too, so that a bad plan is refused before anything starts.
    let fatal_faults = match &opts.faults {
        Some(f) => f
            .parse::<vigil_infer_node::FaultPlan>()
            .map_err(|e| eyre!("--faults {f}: {e}"))?
            .fatal()
            // A fault on every frame: the crash-loop breaker bounds the restarts.
            .map_or(REPLAY_LOOP_RESTARTS, |n| n as u64),
        None => 0,
    };
    let mut source = source.clone();
    source.overrides.extend(opts.overrides(
        output,
        workdir,
        present.iter().any(|p| p == node::MONITOR),
    )?);
    for n in &mut nodes {
        n.path = exe.display().to_string();
        // A replay must end: restart a failing node a few times (and once per injected
        // fault), not forever as on the device.
        if n.restart_policy.is_some() {
            n.max_restarts = Some(REPLAY_MAX_RESTARTS + fatal_faults);
        }
        // Inputs from nodes this replay leaves out go too.
        n.inputs.retain(|_, i| {
            i.from_node()
                .is_none_or(|from| present.iter().any(|p| p == from))
        });
        config_env(n, &source);
        match n.id.as_str() {
            node::CAMERA => {
                // The replay node takes the camera's place, under the camera's id.
                n.args = Some(format!("node {}", node::REPLAY));
                n.env
                    .insert(env::RECORDING.into(), recording.display().to_string());
                n.env.insert(
                    env::MODE.into(),
                    if opts.realtime {
                        "realtime"
                    } else {
                        "lockstep"
                    }
                    .into(),
                );
                n.env.insert(env::WINDOW.into(), WINDOW.to_string());
                if let Some(fps) = opts.fps {
                    n.env.insert(env::FPS.into(), fps.to_string());
                }
                if opts.loops > 1 {
                    n.env.insert(env::LOOPS.into(), opts.loops.to_string());
                }
                // Acknowledged in both modes: every frame's line is written.
                n.inputs.clear();
                n.inputs.insert(
                    port::ACK.into(),
                    Input::Source(topology::source(node::SINK, port::ACK)),
                );
                continue;
            }
            node::TRACK | node::PREPROCESS | node::INFER => {
                let order = if opts.realtime {
                    Order::Live
                } else {
                    Order::Strict
                };
                n.env.insert(env::ORDER.into(), order.as_str().into());
            }
            _ => {}
        }
        // Lock-step keeps at most WINDOW frames in the pipeline, so these queues never drop;
        // a realtime replay keeps the device's queues (it is the device's pacing under test).
        if !opts.realtime && n.id != node::PREVIEW && n.id != node::MONITOR {
            for input in n.inputs.values_mut() {
                if input.from_node().is_some() {
                    *input = Input::Queued {
                        source: input.source().to_owned(),
                        queue_size: Some(queue),
                    };
                }
            }
        }
    }
    let mut sink = NodeSpec {
        id: node::SINK.into(),
        path: exe.display().to_string(),
        args: Some(format!("node {}", node::SINK)),
        inputs: [
            (
                port::RESULT.to_owned(),
                Input::Queued {
                    source: topology::source(node::TRACK, port::RESULT),
                    // Realtime: the track node may release a burst after a wait.
                    queue_size: Some(if opts.realtime { 64 } else { queue }),
                },
            ),
            (
                port::TICK.to_owned(),
                Input::Source("dora/timer/millis/500".into()),
            ),
        ]
        .into(),
        outputs: vec![port::ACK.into()],
        env: [(env::OUT.to_owned(), output.display().to_string())]
            .into_iter()
            .chain(
                opts.stats
                    .as_ref()
                    .map(|p| (env::STATS.to_owned(), p.display().to_string())),
            )
            .collect(),
        restart_policy: None,
        max_restarts: None,
        restart_delay: None,
        max_restart_delay: None,
    };
    config_env(&mut sink, &source);
    nodes.push(sink);
    let standby = source.load()?.infer.standby as usize;
    let processes = opts.infer_workers.max(1) + standby;
    if processes > 1 {
        split_infer(&mut nodes, processes, opts.infer_workers.max(1))?;
    }
    let flow = Dataflow { nodes };
    flow.check()
        .map_err(|e| eyre!("the replay dataflow: {e}"))?;
    Ok(flow)
}

/// Is `id` one of the graph's infer processes (`infer`, `infer_K`)?
fn is_infer(id: &str) -> bool {
    topology::split_worker_port(id).0 == node::INFER
}

/// The graph with its infer processes folded into one `infer` node (the first of them, its
/// ports plain): what [`split_infer`] deals out again.
fn fold_infer(nodes: &mut Vec<NodeSpec>) -> eyre::Result<()> {
    let at = nodes
        .iter()
        .position(|n| is_infer(&n.id))
        .ok_or_else(|| eyre!("the dataflow has no infer node"))?;
    let mut infer = nodes.remove(at);
    nodes.retain(|n| !is_infer(&n.id));
    infer.id = node::INFER.into();
    if let Some(input) = infer.inputs.get_mut(port::TENSOR) {
        *input = input.with_source(topology::source(node::PREPROCESS, port::TENSOR));
    }
    nodes.insert(at, infer);
    for n in nodes.iter_mut() {
        if n.id == node::PREPROCESS {
            let tensors = n
                .outputs
                .iter()
                .filter(|o| topology::split_worker_port(o).0 == port::TENSOR)
                .count();
            n.outputs
                .retain(|o| topology::split_worker_port(o).0 != port::TENSOR);
            if tensors > 0 {
                n.outputs.insert(0, port::TENSOR.into());
            }
        }
        // `detections_K` from infer_K … become one `detections` from infer.
        let folded: Vec<(String, Input)> = n
            .inputs
            .iter()
            .filter(|(_, i)| i.from_node().is_some_and(is_infer))
            .map(|(name, i)| {
                let base = topology::split_worker_port(name).0.to_owned();
                let from = i.source().rsplit('/').next().unwrap_or_default().to_owned();
                (base, i.with_source(topology::source(node::INFER, &from)))
            })
            .collect();
        n.inputs.retain(|_, i| !i.from_node().is_some_and(is_infer));
        for (name, input) in folded {
            n.inputs.entry(name).or_insert(input);
        }
    }
    Ok(())
}

/// Shares the frames between `processes` infer processes: each `infer_K` (one ONNX Runtime
/// thread unless vigil.yml sets threads) asks for work on `ready_K` and gets it on `tensor_K`,
/// and the track node merges `detections_K` back into frame order. Those of them vigil.yml
/// holds in reserve (`infer.standby`) are sent frames only when an active one is gone.
fn split_infer(nodes: &mut Vec<NodeSpec>, processes: usize, workers: usize) -> eyre::Result<()> {
    let at = nodes
        .iter()
        .position(|n| n.id == node::INFER)
        .ok_or_else(|| eyre!("the dataflow has no infer node"))?;
    let infer = nodes.remove(at);
    for k in (0..processes).rev() {
        let mut w = infer.clone();
        w.id = topology::worker_id(k);
        if let Some(input) = w.inputs.get_mut(port::TENSOR) {
            *input = input.with_source(topology::source(
                node::PREPROCESS,
                &topology::worker_port(port::TENSOR, k),
            ));
        }
        // Several at work: one ONNX Runtime thread each, unless vigil.yml says how many.
        let mut source = Source::from_lookup(|key| w.env.get(key).cloned())?;
        if workers > 1 && source.load()?.model.threads == 0 {
            source.overrides.push("model.threads=1".parse()?);
            config_env(&mut w, &source);
        }
        nodes.insert(at, w);
    }
    for n in nodes.iter_mut() {
        if n.id == node::PREPROCESS {
            let at = n
                .outputs
                .iter()
                .position(|o| o == port::TENSOR)
                .unwrap_or(0);
            n.outputs.retain(|o| o != port::TENSOR);
            for k in (0..processes).rev() {
                n.outputs.insert(at, topology::worker_port(port::TENSOR, k));
            }
        }
        // `detections` / `status` / `ready` from infer become `detections_K` / `status_K` /
        // `ready_K` from infer_K.
        for name in [port::DETECTIONS, port::STATUS, port::READY] {
            if let Some(input) = n.inputs.remove(name) {
                for k in 0..processes {
                    n.inputs.insert(
                        topology::worker_port(name, k),
                        input.with_source(topology::source(&topology::worker_id(k), name)),
                    );
                }
            }
        }
    }
    Ok(())
}

/// Runs the replay and returns how many frames were written.
pub fn replay(
    recording: &Path,
    output: &Path,
    run: &RunConfig,
    opts: &ReplayOptions,
) -> eyre::Result<ReplayStats> {
    let recording = std::path::absolute(recording)?;
    let frames = vigil_record::RecordingReader::open(&recording)?
        .frames
        .len() as u64;
    let output = std::path::absolute(output)?;
    let exe = std::env::current_exe().wrap_err("finding the vigil binary")?;
    let tmp;
    let workdir = if let Some(w) = &opts.workdir {
        std::fs::create_dir_all(w)?;
        std::path::absolute(w)?
    } else {
        tmp = tempfile::tempdir()?;
        tmp.path().to_owned()
    };
    let device = Dataflow::parse(DEVICE_DATAFLOW).wrap_err("parsing the built-in dataflow")?;
    let mut opts = opts.clone();
    let stats_path = opts
        .stats
        .get_or_insert_with(|| workdir.join("stats.json"))
        .clone();
    let _ = std::fs::remove_file(&stats_path);
    let yaml = replay_dataflow(
        &device,
        &exe,
        &recording,
        &output,
        &workdir,
        &run.source,
        &opts,
    )?
    .to_yaml()?;
    let flow = workdir.join("replay.yml");
    std::fs::write(&flow, yaml)?;
    if let Some(port) = opts.preview {
        eprintln!("preview: http://127.0.0.1:{port}/");
    }
    let mut child = Command::new(dora_cli())
        .args(["run", "--log-level", "warn"])
        .arg(&flow)
        .current_dir(&workdir)
        // Node errors are reported in the tail below; backtraces would push them out of it.
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a terminal's Ctrl-C reaches vigil alone, which stops the
        // whole dataflow (`crate::cancel`).
        .process_group(0)
        .spawn()
        .wrap_err("starting `dora run` (is the dora CLI installed? run the setup command)")?;
    let log = collect(child.stdout.take(), child.stderr.take());
    let mut guard = crate::cancel::TreeGuard {
        root: child.id(),
        armed: true,
    };
    let expected = frames * opts.loops.max(1);
    let bar = indicatif::ProgressBar::new(expected);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} frames {per_sec} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (mut first, mut last) = (None, None);
    let mut seen = 0;
    let mut counter = LineCounter::default();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            guard.armed = false;
            break status;
        }
        if let Some(sig) = crate::cancel::requested() {
            bar.finish_and_clear();
            guard.armed = false;
            let stopped = crate::cancel::kill_tree(child.id());
            let _ = child.wait();
            let lines = count_lines(&output);
            let left = if stopped.left > 0 {
                format!(" ({} would not stop)", stopped.left)
            } else {
                String::new()
            };
            eprintln!(
                "stopping: the dataflow's {} processes stopped{left}; {lines} of {expected} frames were written to {}",
                stopped.killed,
                output.display()
            );
            return Err(crate::cancel::Cancelled(sig).into());
        }
        let n = counter.count(&output);
        if n > seen {
            let now = std::time::Instant::now();
            first.get_or_insert((now, n));
            last = Some((now, n));
            seen = n;
        }
        bar.set_position(n);
        std::thread::sleep(Duration::from_millis(20));
    };
    bar.finish_and_clear();
    let log = log.join().unwrap_or_default();
    let lines = count_lines(&output);
    // Counted, skipped bad frames are not a failure; a node that exits non-zero makes
    // `dora run` exit non-zero, and lock-step below also demands every frame.
    if !status.success() {
        let tail: Vec<&String> = log
            .iter()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        bail!(
            "the dataflow failed ({status}); {lines} of {expected} frames written. dora said:\n{}",
            tail.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    if lines != expected {
        bail!("the replay wrote {lines} lines for {expected} frames");
    }
    let summary = std::fs::read_to_string(&stats_path)
        .ok()
        .and_then(|s| serde_json::from_str::<vigil_sink::Stats>(&s).ok());
    // A run in which no frame could be inferred is a failure, not an empty result (infer
    // says so too, but a restarted process would have the last word).
    if let Some(s) = &summary {
        let count = |k: &str| s.status.get(k).copied().unwrap_or(0);
        if lines > 0 && count("inferred") == 0 {
            let why = infer_error(&workdir).map_or(String::new(), |e| format!("; {e}"));
            let by: Vec<String> = s
                .status
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            bail!(
                "none of the {lines} frames could be inferred ({}){why}",
                by.join(", ")
            );
        }
    }
    let steady_fps = match (first, last) {
        (Some((t0, n0)), Some((t1, n1))) if n1 > n0 && t1 > t0 => {
            Some((n1 - n0) as f64 / (t1 - t0).as_secs_f64())
        }
        _ => None,
    };
    Ok(ReplayStats {
        frames: lines,
        steady_fps,
        summary,
    })
}

/// The infer processes' own account of why nothing could be inferred, from dora's node logs.
fn infer_error(workdir: &Path) -> Option<String> {
    let runs = std::fs::read_dir(workdir.join("out")).ok()?;
    let mut logs: Vec<PathBuf> = runs
        .filter_map(Result::ok)
        .filter_map(|run| std::fs::read_dir(run.path()).ok())
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("log_infer"))
        })
        .collect();
    logs.sort();
    logs.iter().find_map(|p| {
        std::fs::read_to_string(p).ok()?.lines().find_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).ok()?;
            let msg = v["msg"].as_str()?;
            msg.contains("the first error:")
                .then(|| msg.trim_start_matches("Error: ").to_owned())
        })
    })
}

/// What a replay did (`vigil replay --summary` writes it as JSON).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReplayStats {
    /// Lines written.
    pub frames: u64,
    /// Frames per second once results flowed (start-up and model loading excluded).
    #[serde(rename = "fps")]
    pub steady_fps: Option<f64>,
    /// The sink's summary: frames by status, capture → detections latency.
    pub summary: Option<vigil_sink::Stats>,
}

impl ReplayStats {
    /// One line for people: frames by status and the latency to detections.
    #[must_use]
    pub fn describe(&self) -> String {
        use std::fmt::Write as _;
        let mut out = format!("{} frames", self.frames);
        if let Some(fps) = self.steady_fps {
            let _ = write!(out, " at {fps:.1} fps");
        }
        if let Some(s) = &self.summary {
            let parts: Vec<String> = s
                .status
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            let _ = write!(out, " ({})", parts.join(", "));
            if let Some(p) = s.detect_ms {
                let _ = write!(
                    out,
                    "; capture → detections p50 {:.1} ms, p99 {:.1} ms",
                    p.p50, p.p99
                );
            }
        }
        out
    }
}

/// How many infer processes a replay runs unless told: one per core for the CPU provider
/// (each one ONNX Runtime thread, unless vigil.yml sets `model.threads`, then cores / threads),
/// at most 4; one for an accelerator, which a single process keeps busy.
#[must_use]
pub fn default_workers(config: &vigil_config::Config) -> usize {
    if config.model.provider != vigil_config::Provider::Cpu {
        return 1;
    }
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let threads = config.model.threads.max(1);
    (cores / threads).clamp(1, 4)
}

/// The dora CLI: `VIGIL_DORA`, else the project's `.venv/bin/dora` (the setup step puts it
/// there), else `dora` on the PATH.
fn dora_cli() -> PathBuf {
    if let Some(p) = std::env::var_os("VIGIL_DORA") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let roots = exe
        .ancestors()
        .skip(1)
        .take(4)
        .map(Path::to_path_buf)
        .chain(std::env::current_dir().ok());
    for root in roots {
        let candidate = root.join(".venv").join("bin").join("dora");
        if candidate.is_file() {
            return candidate;
        }
    }
    PathBuf::from("dora")
}

fn count_lines(path: &Path) -> u64 {
    std::fs::File::open(path).map_or(0, |f| std::io::BufReader::new(f).lines().count() as u64)
}

/// Lines of a growing file, reading only what was added since the last look (a soak's output
/// grows to 100 000 lines: counting them all 50 times a second would cost a core).
#[derive(Debug, Default)]
struct LineCounter {
    read: u64,
    lines: u64,
}

impl LineCounter {
    fn count(&mut self, path: &Path) -> u64 {
        use std::io::{Read, Seek, SeekFrom};
        let Ok(mut f) = std::fs::File::open(path) else {
            return self.lines;
        };
        // Written anew (the sink truncates an old output): count from the start.
        if f.metadata().is_ok_and(|m| m.len() < self.read) {
            *self = Self::default();
        }
        if f.seek(SeekFrom::Start(self.read)).is_err() {
            return self.lines;
        }
        let mut buf = Vec::new();
        if f.read_to_end(&mut buf).is_ok() {
            // Count up to the last complete line; a partial one is read again next time.
            if let Some(end) = buf.iter().rposition(|&b| b == b'\n') {
                self.lines += buf[..=end].split(|&b| b == b'\n').count() as u64 - 1;
                self.read += end as u64 + 1;
            }
        }
        self.lines
    }
}

/// Gathers the child's output lines on background threads.
fn collect(
    stdout: Option<std::process::ChildStdout>,
    stderr: Option<std::process::ChildStderr>,
) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let err = stderr.map(|e| {
            std::thread::spawn(move || {
                std::io::BufReader::new(e)
                    .lines()
                    .map_while(Result::ok)
                    .collect::<Vec<_>>()
            })
        });
        let mut lines: Vec<String> = stdout
            .map(|o| {
                std::io::BufReader::new(o)
                    .lines()
                    .map_while(Result::ok)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(e) = err {
            lines.extend(e.join().unwrap_or_default());
        }
        lines
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use vigil_config::Config;

    fn root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    fn device() -> Dataflow {
        Dataflow::parse(DEVICE_DATAFLOW).expect("dataflow.yml parses")
    }

    /// The config a node of `flow` loads, its working folder being `cwd` (dora starts nodes
    /// in the dataflow's folder).
    fn config_of(flow: &Dataflow, id: &str, cwd: &Path) -> Config {
        let n = flow.node(id).expect("node");
        let source = Source::from_lookup(|k| {
            n.env.get(k).map(|v| {
                if k == CONFIG_ENV {
                    cwd.join(v).display().to_string()
                } else {
                    v.clone()
                }
            })
        })
        .expect("source");
        source.load().expect("loads")
    }

    /// Dotted key → value of everything in a config.
    fn flat(c: &Config) -> BTreeMap<String, String> {
        fn walk(prefix: &str, v: &serde_yaml::Value, out: &mut BTreeMap<String, String>) {
            match v {
                serde_yaml::Value::Mapping(m) => {
                    for (k, v) in m {
                        let k = serde_yaml::to_string(k).unwrap_or_default();
                        let k = k.trim();
                        let key = if prefix.is_empty() {
                            k.to_owned()
                        } else {
                            format!("{prefix}.{k}")
                        };
                        walk(&key, v, out);
                    }
                }
                other => {
                    out.insert(
                        prefix.to_owned(),
                        serde_yaml::to_string(other).unwrap_or_default(),
                    );
                }
            }
        }
        let mut out = BTreeMap::new();
        walk("", &serde_yaml::to_value(c).expect("value"), &mut out);
        out
    }

    fn differing(a: &Config, b: &Config) -> Vec<String> {
        let (a, b) = (flat(a), flat(b));
        a.keys()
            .chain(b.keys())
            .filter(|k| a.get(*k) != b.get(*k))
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    fn replay_of(opts: &ReplayOptions) -> Dataflow {
        let source = Source {
            file: Some(root().join(DEFAULT_CONFIG)),
            overrides: Vec::new(),
        };
        replay_dataflow(
            &device(),
            Path::new("/bin/vigil"),
            Path::new("/r.mcap"),
            Path::new("/o.jsonl"),
            Path::new("/work"),
            &source,
            opts,
        )
        .expect("builds")
    }

    #[test]
    fn device_dataflow_is_only_the_graph() {
        let flow = device();
        flow.check().expect("every input names a declared output");
        let ids: Vec<&str> = flow.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                node::CAMERA,
                node::PREPROCESS,
                "infer_0",
                "infer_1",
                node::TRACK,
                node::PREVIEW,
                node::MONITOR
            ]
        );
        let known: Vec<String> = <crate::NodeName as clap::ValueEnum>::value_variants()
            .iter()
            .filter_map(clap::ValueEnum::to_possible_value)
            .map(|v| v.get_name().to_owned())
            .collect();
        for n in &flow.nodes {
            assert_eq!(
                n.path, "target/release/vigil",
                "every node runs the one binary"
            );
            let runs = if is_infer(&n.id) { node::INFER } else { &n.id };
            assert_eq!(n.vigil_node(), Some(runs));
            assert!(known.iter().any(|k| Some(k.as_str()) == n.vigil_node()));
            // No setting lives in dataflow.yml: each node names vigil.yml and nothing else.
            assert_eq!(
                n.env,
                BTreeMap::from([(CONFIG_ENV.to_owned(), DEFAULT_CONFIG.to_owned())]),
                "node {}",
                n.id
            );
        }
        let bad = Dataflow::parse("nodes:\n  - id: a\n    path: x\n    inputs:\n      x: b/y\n")
            .expect("parses");
        assert!(bad.check().is_err());
        // Two infer processes, one of them standing by (vigil.yml), as the preprocess node
        // counts them from its outputs.
        let pre = flow.node(node::PREPROCESS).expect("preprocess");
        let standby = config_of(&flow, node::PREPROCESS, &root()).infer.standby;
        assert_eq!(
            vigil_preprocess::Config::workers(pre.outputs.iter().map(String::as_str), standby),
            Ok(2)
        );
        assert_eq!(standby, 1);
        let monitor = flow.node(node::MONITOR).expect("monitor");
        assert_eq!(monitor.inputs[port::ROLES].source(), "preprocess/roles");
    }

    #[test]
    fn every_node_of_a_replay_sees_the_config_the_device_runs() {
        let dev = device();
        let device_config = config_of(&dev, "infer_0", &root());
        // A lock-step replay (one process at work, one standing by, as on the device): the
        // one difference is where infer keeps its last words (in the replay's own folder, so
        // that replays never read each other's).
        let lockstep = replay_of(&ReplayOptions::default());
        assert_eq!(
            config_of(&dev, "infer_1", &root()),
            device_config,
            "both infer processes read one config"
        );
        for id in [node::PREPROCESS, "infer_0", "infer_1", node::TRACK] {
            let on_device = if id == "infer_1" { "infer_0" } else { id };
            assert_eq!(
                config_of(&dev, on_device, &root()),
                device_config,
                "every device node reads one config"
            );
            let replayed = config_of(&lockstep, id, Path::new("/elsewhere"));
            assert_eq!(
                differing(&device_config, &replayed),
                ["infer.state_dir"],
                "node {id}"
            );
            assert_eq!(replayed.infer.state_dir, Path::new("/work/state"));
        }
        for id in [node::SINK, node::CAMERA] {
            assert_eq!(
                differing(&device_config, &config_of(&lockstep, id, Path::new("/"))),
                ["infer.state_dir"]
            );
        }
        // A realtime replay with faults also runs preview and monitor; what differs is only
        // what the replay owns (its ports, its audit file, the injected faults).
        let realtime = replay_of(&ReplayOptions {
            realtime: true,
            faults: Some("segv@3".into()),
            ..ReplayOptions::default()
        });
        for id in [
            node::PREPROCESS,
            "infer_0",
            "infer_1",
            node::TRACK,
            node::PREVIEW,
            node::MONITOR,
        ] {
            let diff = differing(
                &config_of(&dev, id, &root()),
                &config_of(&realtime, id, Path::new("/")),
            );
            assert!(
                diff.iter()
                    .all(|k| REPLAY_OWNED.iter().any(|(owned, _)| owned == k)),
                "node {id}: {diff:?}"
            );
            assert!(diff.contains(&"infer.faults".to_owned()), "{diff:?}");
        }
        // Split over workers: each worker runs one ONNX Runtime thread, nothing else moves.
        let split = replay_of(&ReplayOptions {
            infer_workers: 2,
            ..ReplayOptions::default()
        });
        for k in 0..3 {
            let diff = differing(
                &device_config,
                &config_of(&split, &topology::worker_id(k), Path::new("/")),
            );
            assert_eq!(diff, ["infer.state_dir", "model.threads"]);
        }
        assert!(
            split.node("infer_3").is_none(),
            "two at work, one standing by"
        );
        // `--standby 0`: the replay owns the key, and the graph has no process to spare.
        let alone = replay_of(&ReplayOptions {
            standby: Some(0),
            ..ReplayOptions::default()
        });
        assert!(alone.node(node::INFER).is_some() && alone.node("infer_1").is_none());
        assert_eq!(
            differing(
                &device_config,
                &config_of(&alone, node::INFER, Path::new("/"))
            ),
            ["infer.standby", "infer.state_dir"]
        );
    }

    #[test]
    fn the_line_counter_reads_only_what_was_added() {
        use std::io::Write as _;
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("out.jsonl");
        let mut c = LineCounter::default();
        assert_eq!(c.count(&p), 0, "no file yet");
        let mut f = std::fs::File::create(&p).expect("create");
        write!(f, "a\nb\nhalf").expect("write");
        assert_eq!(c.count(&p), 2, "a partial line is not a line");
        write!(f, " done\nc\n").expect("write");
        assert_eq!(c.count(&p), 4);
        assert_eq!(count_lines(&p), 4);
        std::fs::write(&p, "new\n").expect("truncate");
        assert_eq!(c.count(&p), 1, "an output written anew is counted anew");
    }

    #[test]
    fn set_may_not_reach_what_the_replay_owns_and_its_paths_are_relative_to_the_caller() {
        let faults: Override = "infer.faults=segv@3".parse().expect("parses");
        let err = check_replay_overrides(&[faults])
            .expect_err("owned")
            .to_string();
        assert!(err.contains("--faults"), "{err}");
        let fine: Override = "tracker.max_age=40".parse().expect("parses");
        check_replay_overrides(&[fine]).expect("not owned");
        let labels: Override = "model.labels=l.txt".parse().expect("parses");
        assert_eq!(
            labels.relative_to(Path::new("/here")).value,
            "\"/here/l.txt\""
        );
        let age: Override = "tracker.max_age=40".parse().expect("parses");
        assert_eq!(age.clone().relative_to(Path::new("/here")), age);
    }

    #[test]
    fn replay_dataflow_swaps_camera_for_replay_and_adds_the_sink() {
        let flow = replay_of(&ReplayOptions {
            standby: Some(0),
            ..ReplayOptions::default()
        });
        let ids: Vec<&str> = flow.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                node::CAMERA,
                node::PREPROCESS,
                node::INFER,
                node::TRACK,
                node::SINK
            ]
        );
        let camera = flow.node(node::CAMERA).expect("camera");
        assert_eq!(camera.vigil_node(), Some(node::REPLAY));
        assert_eq!(camera.inputs[port::ACK].source(), "sink/ack");
        let infer = flow.node(node::INFER).expect("infer");
        assert_eq!(
            infer.inputs[port::TENSOR],
            Input::Queued {
                source: "preprocess/tensor".into(),
                queue_size: Some(8)
            }
        );
        assert_eq!(infer.restart_policy.as_deref(), Some("on-failure"));
        assert_eq!(infer.max_restarts, Some(REPLAY_MAX_RESTARTS));
        assert_eq!(
            flow.node(node::TRACK).expect("track").env[env::ORDER],
            "strict"
        );
        // What the generated file says is what the typed graph holds.
        let yaml = flow.to_yaml().expect("yaml");
        assert_eq!(Dataflow::parse(&yaml).expect("parses"), flow);

        let split = replay_of(&ReplayOptions {
            infer_workers: 2,
            realtime: true,
            ..ReplayOptions::default()
        });
        assert!(split.node("infer_0").is_some() && split.node("infer_1").is_some());
        assert!(split.node(node::INFER).is_none());
        assert_eq!(
            split.node("infer_1").expect("w").inputs[port::TENSOR].source(),
            "preprocess/tensor_1"
        );
        assert_eq!(
            split.node(node::TRACK).expect("t").inputs["detections_1"].source(),
            "infer_1/detections"
        );
        assert_eq!(
            split.node(node::MONITOR).expect("m").inputs["status_0"].source(),
            "infer_0/status"
        );
        // Each worker asks for its own frames; frames not sent still reach the tracker.
        let pre = split.node(node::PREPROCESS).expect("p");
        assert_eq!(pre.inputs["ready_1"].source(), "infer_1/ready");
        assert_eq!(
            pre.outputs,
            ["tensor_0", "tensor_1", "tensor_2", "skipped", "roles"]
        );
        assert_eq!(pre.env[env::ORDER], "live");
        assert_eq!(
            split.node(node::TRACK).expect("t").inputs[port::SKIPPED].source(),
            "preprocess/skipped"
        );
        // Every process holds the plan; whichever meets a fault first injects it (the fault
        // ledger in the state folder), so each comes once, standby or not.
        for realtime in [true, false] {
            let flow = replay_of(&ReplayOptions {
                infer_workers: 2,
                realtime,
                faults: Some("segv@30".into()),
                ..ReplayOptions::default()
            });
            let faults = |id| config_of(&flow, id, &root()).infer.faults.to_string();
            assert_eq!(
                (faults("infer_0"), faults("infer_2")),
                ("segv@30".into(), "segv@30".into())
            );
            assert_eq!(
                flow.node("infer_1").expect("w").env[env::ORDER],
                if realtime { "live" } else { "strict" }
            );
        }
        // Realtime: acknowledged too (every line written), and the device's own queues.
        let camera = split.node(node::CAMERA).expect("camera");
        assert_eq!(camera.inputs[port::ACK].source(), "sink/ack");
        assert_eq!(
            split.node("infer_0").expect("w").inputs[port::TENSOR],
            Input::Queued {
                source: "preprocess/tensor_0".into(),
                queue_size: Some(1)
            }
        );
        assert!(
            replay_dataflow(
                &device(),
                Path::new("/bin/vigil"),
                Path::new("/r.mcap"),
                Path::new("/o.jsonl"),
                Path::new("/work"),
                &Source::default(),
                &ReplayOptions {
                    faults: Some("explode@3".into()),
                    ..ReplayOptions::default()
                },
            )
            .is_err(),
            "a bad fault plan is refused before anything starts"
        );
    }
}
