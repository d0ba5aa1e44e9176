//! `vigil replay`: the device dataflow (dataflow.yml, built in) with the replay node in place
//! of the camera and a sink at the end, run by the real dora runtime.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use eyre::{WrapErr, bail, eyre};
use serde_yaml::{Mapping, Value};
use vigil_infer::{Backend, OrtBackend, OrtConfig};

use crate::settings::Settings;

/// The device dataflow, as shipped.
pub const DEVICE_DATAFLOW: &str = include_str!("../dataflow.yml");

/// Frames in flight during a lock-step replay; every queue is sized above it, so none drops.
const WINDOW: usize = 4;

/// Restarts allowed to a failing node during a replay.
const REPLAY_MAX_RESTARTS: u64 = 2;

#[derive(Debug, Clone, Default)]
pub struct ReplayOptions {
    pub realtime: bool,
    /// Include the preview, serving on this port (0: render and report only).
    pub preview: Option<u16>,
    pub workdir: Option<PathBuf>,
    /// `VIGIL_FAULTS` for the infer node.
    pub faults: Option<String>,
    pub deadline_ms: Option<u64>,
    /// Include the monitor, serving on this port (0: no server).
    pub monitor_port: Option<u16>,
    pub audit: Option<PathBuf>,
    pub flight_dir: Option<PathBuf>,
    /// (node, key, value) settings applied last.
    pub set: Vec<(String, String, String)>,
    /// Infer processes sharing the frames (1: the dataflow as declared).
    pub infer_workers: usize,
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
}

/// `node.KEY=VALUE` → (node, key, value).
pub fn parse_set(s: &str) -> eyre::Result<(String, String, String)> {
    let (target, value) = s
        .split_once('=')
        .ok_or_else(|| eyre!("--set {s}: expected NODE.KEY=VALUE"))?;
    let (node, key) = target
        .split_once('.')
        .filter(|(n, k)| !n.is_empty() && !k.is_empty())
        .ok_or_else(|| eyre!("--set {s}: expected NODE.KEY=VALUE"))?;
    Ok((node.to_owned(), key.to_owned(), value.to_owned()))
}

/// The default model, relative to the project folder.
const DEFAULT_MODEL: &str = "models/centernet_mb3_coco.onnx";

/// Settings from `--config`, else from `--model` (and its sidecar), else the default model;
/// then the network input size and layout are read from the model where not set.
pub fn resolve_settings(model: Option<&Path>, config: Option<&Path>) -> eyre::Result<Settings> {
    let mut s = match (config, model) {
        (Some(c), m) => {
            let mut s = Settings::load(c)?;
            if let Some(m) = m {
                m.clone_into(&mut s.model.path);
            }
            s
        }
        (None, Some(m)) => Settings::for_model(m)?,
        (None, None) => Settings::for_model(&default_model()?)?,
    };
    if s.model.path.as_os_str().is_empty() {
        bail!("no model: give --model or set model.path in the config");
    }
    s.model.path = std::path::absolute(&s.model.path)?;
    s.model.labels = s.model.labels.map(std::path::absolute).transpose()?;
    let p = &mut s.preprocess;
    if p.net_w.is_none() || p.net_h.is_none() || p.layout.is_none() {
        let backend = OrtBackend::load(&OrtConfig {
            model: s.model.path.clone(),
            provider: vigil_infer::Provider::Cpu,
            threads: 1,
            library: None,
        })?;
        let input = backend.input();
        if p.net_w.is_none() || p.net_h.is_none() {
            let (w, h) = input.size.ok_or_else(|| {
                eyre!(
                    "{}: dynamic input size; set preprocess.net_w and net_h",
                    s.model.path.display()
                )
            })?;
            p.net_w.get_or_insert(w);
            p.net_h.get_or_insert(h);
        }
        p.layout
            .get_or_insert_with(|| input.layout.as_str().to_owned());
    }
    Ok(s)
}

/// The default model: in the working folder, or in the project the binary was built in.
fn default_model() -> eyre::Result<PathBuf> {
    let mut candidates = vec![PathBuf::from(DEFAULT_MODEL)];
    if let Ok(exe) = std::env::current_exe() {
        candidates.extend(
            exe.ancestors()
                .skip(1)
                .take(3)
                .map(|d| d.join(DEFAULT_MODEL)),
        );
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| eyre!("default model {DEFAULT_MODEL} not found; pass --model"))
}

/// A dataflow node's id.
fn node_id(node: &Value) -> Option<&str> {
    node.get("id").and_then(Value::as_str)
}

/// Points a dataflow input at `source`, keeping its other settings (queue size).
fn set_input_source(input: &mut Value, source: &str) {
    match input {
        Value::Mapping(m) => {
            m.insert(key("source"), key(source));
        }
        other => *other = key(source),
    }
}

/// The `source` of a dataflow input, written short (`node/output`) or long (`{source: …}`).
fn input_source(input: &Value) -> &str {
    match input {
        Value::String(s) => s.as_str(),
        other => other
            .get("source")
            .and_then(Value::as_str)
            .unwrap_or_default(),
    }
}

fn key(s: &str) -> Value {
    Value::String(s.to_owned())
}

/// Builds the replay dataflow from the device one.
pub fn replay_dataflow(
    device: &str,
    exe: &Path,
    recording: &Path,
    output: &Path,
    settings: &Settings,
    opts: &ReplayOptions,
) -> eyre::Result<String> {
    let mut doc: Value = serde_yaml::from_str(device).wrap_err("parsing the built-in dataflow")?;
    let env = settings.node_env();
    let nodes = doc
        .get_mut("nodes")
        .and_then(Value::as_sequence_mut)
        .ok_or_else(|| eyre!("dataflow has no nodes"))?;
    let queue = (WINDOW * 2) as u64;
    nodes.retain(|n| match node_id(n) {
        Some("preview") => opts.preview_port().is_some(),
        Some("monitor") => opts.monitor().is_some(),
        _ => true,
    });
    let present: Vec<String> = nodes
        .iter()
        .filter_map(|n| node_id(n).map(str::to_owned))
        .collect();
    // Parsed here too, so that a bad plan is refused before anything starts.
    let fatal_faults = match &opts.faults {
        Some(f) => f
            .parse::<vigil_infer_node::FaultPlan>()
            .map_err(|e| eyre!("--faults {f}: {e}"))?
            .fatal() as u64,
        None => 0,
    };
    let output_beside = |ext: &str| output.with_extension(ext);
    for node in nodes.iter_mut() {
        let node = node
            .as_mapping_mut()
            .ok_or_else(|| eyre!("dataflow node is not a mapping"))?;
        let id = node
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        node.insert(key("path"), key(&exe.display().to_string()));
        // A replay must end: restart a failing node a few times (and once per injected
        // fault), not forever as on the device.
        if node.contains_key("restart_policy") {
            node.insert(
                key("max_restarts"),
                Value::Number((REPLAY_MAX_RESTARTS + fatal_faults).into()),
            );
        }
        // Inputs from nodes this replay leaves out go too.
        if let Some(inputs) = node.get_mut("inputs").and_then(Value::as_mapping_mut) {
            inputs.retain(|_, input| {
                let source = input_source(input);
                source.starts_with("dora/")
                    || source
                        .split_once('/')
                        .is_some_and(|(from, _)| present.iter().any(|p| p == from))
            });
        }
        if id == "camera" {
            // The replay node takes the camera's place, under the camera's id.
            node.insert(key("args"), key("node replay"));
            let mut e = Mapping::new();
            e.insert(
                key("VIGIL_RECORDING"),
                key(&recording.display().to_string()),
            );
            e.insert(
                key("VIGIL_MODE"),
                key(if opts.realtime {
                    "realtime"
                } else {
                    "lockstep"
                }),
            );
            e.insert(key("VIGIL_WINDOW"), key(&WINDOW.to_string()));
            node.insert(key("env"), Value::Mapping(e));
            if !opts.realtime {
                let mut inputs = Mapping::new();
                inputs.insert(key("ack"), key("sink/ack"));
                node.insert(key("inputs"), Value::Mapping(inputs));
            }
            continue;
        }
        let node_env = node
            .entry(key("env"))
            .or_insert_with(|| Value::Mapping(Mapping::new()));
        if let (Some(e), Some(overrides)) = (node_env.as_mapping_mut(), env.get(id.as_str())) {
            for (k, v) in overrides {
                e.insert(key(k), key(v));
            }
            if id == "track" {
                e.insert(
                    key("VIGIL_ORDER"),
                    key(if opts.realtime { "live" } else { "strict" }),
                );
            }
            if id == "preview" {
                e.insert(
                    key("VIGIL_PREVIEW_PORT"),
                    key(&opts.preview_port().unwrap_or_default().to_string()),
                );
            }
        }
        if let Some(e) = node_env.as_mapping_mut() {
            match id.as_str() {
                "infer" => {
                    if let Some(f) = &opts.faults {
                        e.insert(key("VIGIL_FAULTS"), key(f));
                    }
                    if let Some(d) = opts.deadline_ms {
                        e.insert(key("VIGIL_DEADLINE_MS"), key(&d.to_string()));
                    }
                }
                "monitor" => {
                    let audit = opts
                        .audit
                        .clone()
                        .unwrap_or_else(|| output_beside("audit.db"));
                    let flight = opts
                        .flight_dir
                        .clone()
                        .unwrap_or_else(|| output_beside("flight"));
                    for (k, v) in [
                        ("VIGIL_AUDIT_DB", std::path::absolute(&audit)?),
                        ("VIGIL_FLIGHT_DIR", std::path::absolute(&flight)?),
                    ] {
                        e.insert(key(k), key(&v.display().to_string()));
                    }
                    e.insert(
                        key("VIGIL_MONITOR_PORT"),
                        key(&opts.monitor().unwrap_or_default().to_string()),
                    );
                }
                _ => {}
            }
            for (n, k, v) in &opts.set {
                if *n == id {
                    e.insert(key(k), key(v));
                }
            }
        }
        // Lock-step keeps at most WINDOW frames in the pipeline, so these queues never drop.
        if let Some(inputs) = node.get_mut("inputs").and_then(Value::as_mapping_mut)
            && id != "preview"
            && id != "monitor"
        {
            for (_, input) in inputs.iter_mut() {
                let source = input_source(input).to_owned();
                let mut m = Mapping::new();
                m.insert(key("source"), key(&source));
                m.insert(key("queue_size"), Value::Number(queue.into()));
                *input = Value::Mapping(m);
            }
        }
    }
    let sink: Value = serde_yaml::from_str(&format!(
        "id: sink\npath: {exe}\nargs: node sink\ninputs:\n  result: {{source: track/result, queue_size: {queue}}}\n  tick: dora/timer/millis/500\noutputs: [ack]\n",
        exe = serde_yaml::to_string(&exe.display().to_string())?.trim(),
    ))?;
    let mut sink = sink;
    if let Some(m) = sink.as_mapping_mut() {
        let mut e = Mapping::new();
        e.insert(key("VIGIL_OUT"), key(&output.display().to_string()));
        for (k, v) in env.get("sink").into_iter().flatten() {
            e.insert(key(k), key(v));
        }
        m.insert(key("env"), Value::Mapping(e));
    }
    nodes.push(sink);
    if opts.infer_workers > 1 {
        split_infer(nodes, opts.infer_workers)?;
    }
    Ok(serde_yaml::to_string(&doc)?)
}

/// Deals the frames to `workers` infer processes: preprocess sends frame `index` on
/// `tensor_{index % workers}`, each `infer_K` (one ONNX Runtime thread unless set) reads its
/// own, and the track node merges `detections_K` back into frame order.
fn split_infer(nodes: &mut Vec<Value>, workers: usize) -> eyre::Result<()> {
    let at = nodes
        .iter()
        .position(|n| node_id(n) == Some("infer"))
        .ok_or_else(|| eyre!("the dataflow has no infer node"))?;
    let infer = nodes.remove(at);
    for k in (0..workers).rev() {
        let mut w = infer.clone();
        let m = w
            .as_mapping_mut()
            .ok_or_else(|| eyre!("infer is not a mapping"))?;
        m.insert(key("id"), key(&format!("infer_{k}")));
        if let Some(input) = m
            .get_mut("inputs")
            .and_then(Value::as_mapping_mut)
            .and_then(|i| i.get_mut("tensor"))
        {
            set_input_source(input, &format!("preprocess/tensor_{k}"));
        }
        if let Some(env) = m.get_mut("env").and_then(Value::as_mapping_mut) {
            if env
                .get("VIGIL_THREADS")
                .and_then(Value::as_str)
                .is_none_or(|t| t == "0")
            {
                env.insert(key("VIGIL_THREADS"), key("1"));
            }
            env.insert(
                key("VIGIL_LAST_WORDS"),
                key(&format!("state/infer_{k}.lastwords")),
            );
        }
        nodes.insert(at, w);
    }
    for node in nodes.iter_mut() {
        let is_preprocess = node_id(node) == Some("preprocess");
        let Some(m) = node.as_mapping_mut() else {
            continue;
        };
        if is_preprocess {
            let outs: Vec<Value> = (0..workers).map(|k| key(&format!("tensor_{k}"))).collect();
            m.insert(key("outputs"), Value::Sequence(outs));
            if let Some(env) = m.get_mut("env").and_then(Value::as_mapping_mut) {
                env.insert(key("VIGIL_WORKERS"), key(&workers.to_string()));
            }
        }
        let Some(inputs) = m.get_mut("inputs").and_then(Value::as_mapping_mut) else {
            continue;
        };
        // `detections` / `status` from infer become `detections_K` / `status_K` from infer_K.
        for name in ["detections", "status"] {
            if let Some(input) = inputs.remove(name) {
                for k in 0..workers {
                    let mut i = input.clone();
                    set_input_source(&mut i, &format!("infer_{k}/{name}"));
                    inputs.insert(key(&format!("{name}_{k}")), i);
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
    settings: &Settings,
    opts: &ReplayOptions,
) -> eyre::Result<ReplayStats> {
    let recording = std::path::absolute(recording)?;
    let rec = vigil_record::Recording::open(&recording)?;
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
    let yaml = replay_dataflow(DEVICE_DATAFLOW, &exe, &recording, &output, settings, opts)?;
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
        .spawn()
        .wrap_err("starting `dora run` (is the dora CLI installed? run the setup command)")?;
    let log = collect(child.stdout.take(), child.stderr.take());
    let bar = indicatif::ProgressBar::new(rec.frames.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} frames {per_sec} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let (mut first, mut last) = (None, None);
    let mut seen = 0;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        let n = count_lines(&output);
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
            "the dataflow failed ({status}); {lines} of {} frames written. dora said:\n{}",
            rec.frames.len(),
            tail.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    if !opts.realtime && lines != rec.frames.len() as u64 {
        bail!(
            "lock-step replay wrote {lines} lines for {} frames",
            rec.frames.len()
        );
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
    })
}

/// What a replay did.
#[derive(Debug, Clone, Copy)]
pub struct ReplayStats {
    /// Lines written.
    pub frames: u64,
    /// Frames per second once results flowed (start-up and model loading excluded).
    pub steady_fps: Option<f64>,
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

    /// Checks that every input names a declared output of another node, and every node runs a
    /// known `vigil node` name; returns the node ids.
    pub fn check_dataflow(yaml: &str) -> eyre::Result<Vec<String>> {
        let doc: Value = serde_yaml::from_str(yaml)?;
        let nodes = doc
            .get("nodes")
            .and_then(Value::as_sequence)
            .ok_or_else(|| eyre!("no nodes"))?;
        let mut outputs: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for n in nodes {
            let id = node_id(n).ok_or_else(|| eyre!("node without id"))?;
            let outs = n
                .get("outputs")
                .and_then(Value::as_sequence)
                .map(|s| {
                    s.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            if outputs.insert(id.to_owned(), outs).is_some() {
                bail!("node id `{id}` declared twice");
            }
        }
        for n in nodes {
            let id = node_id(n).unwrap_or_default();
            let args = n.get("args").and_then(Value::as_str).unwrap_or_default();
            let known = |name: &str| {
                <crate::NodeName as clap::ValueEnum>::value_variants()
                    .iter()
                    .filter_map(clap::ValueEnum::to_possible_value)
                    .any(|v| v.get_name() == name)
            };
            if !args.strip_prefix("node ").is_some_and(known) {
                bail!("node `{id}` runs `{args}`, not a vigil node");
            }
            for (name, input) in n
                .get("inputs")
                .and_then(Value::as_mapping)
                .into_iter()
                .flatten()
            {
                let source = input_source(input);
                if source.starts_with("dora/timer/") {
                    continue;
                }
                let (from, out) = source
                    .split_once('/')
                    .ok_or_else(|| eyre!("node `{id}` input {name:?}: bad source `{source}`"))?;
                if !outputs
                    .get(from)
                    .is_some_and(|o| o.iter().any(|x| x == out))
                {
                    bail!("node `{id}` input {name:?} reads `{source}`, which no node declares");
                }
            }
        }
        Ok(outputs.into_keys().collect())
    }

    #[test]
    fn device_dataflow_is_consistent() {
        let ids = check_dataflow(DEVICE_DATAFLOW).expect("consistent");
        assert_eq!(
            ids,
            [
                "camera",
                "infer",
                "monitor",
                "preprocess",
                "preview",
                "track"
            ]
        );
        let doc: Value = serde_yaml::from_str(DEVICE_DATAFLOW).expect("yaml");
        for n in doc["nodes"].as_sequence().expect("nodes") {
            assert_eq!(
                n["path"].as_str(),
                Some("target/release/vigil"),
                "every node runs the one built binary"
            );
        }
        assert!(
            check_dataflow("nodes:\n  - id: a\n    args: node track\n    inputs:\n      x: b/y\n")
                .is_err()
        );
    }

    #[test]
    fn replay_dataflow_swaps_camera_for_replay_and_adds_the_sink() {
        let mut s = Settings::default();
        s.model.path = PathBuf::from("/m.onnx");
        let yaml = replay_dataflow(
            DEVICE_DATAFLOW,
            Path::new("/bin/vigil"),
            Path::new("/r.mcap"),
            Path::new("/o.jsonl"),
            &s,
            &ReplayOptions::default(),
        )
        .expect("builds");
        let ids = check_dataflow(&yaml).expect("consistent");
        assert_eq!(ids, ["camera", "infer", "preprocess", "sink", "track"]);
        let doc: Value = serde_yaml::from_str(&yaml).expect("yaml");
        let camera = &doc["nodes"][0];
        assert_eq!(camera["args"].as_str(), Some("node replay"));
        assert_eq!(camera["inputs"]["ack"].as_str(), Some("sink/ack"));
        let infer = doc["nodes"]
            .as_sequence()
            .expect("nodes")
            .iter()
            .find(|n| n["id"].as_str() == Some("infer"))
            .expect("infer");
        assert_eq!(infer["env"]["VIGIL_MODEL"].as_str(), Some("/m.onnx"));
        assert_eq!(infer["inputs"]["tensor"]["queue_size"].as_u64(), Some(8));
        assert_eq!(infer["restart_policy"].as_str(), Some("on-failure"));
        assert_eq!(infer["max_restarts"].as_u64(), Some(REPLAY_MAX_RESTARTS));

        let split = replay_dataflow(
            DEVICE_DATAFLOW,
            Path::new("/bin/vigil"),
            Path::new("/r.mcap"),
            Path::new("/o.jsonl"),
            &s,
            &ReplayOptions {
                infer_workers: 2,
                realtime: true,
                ..ReplayOptions::default()
            },
        )
        .expect("builds");
        let ids = check_dataflow(&split).expect("consistent");
        assert!(ids.contains(&"infer_0".to_owned()) && ids.contains(&"infer_1".to_owned()));
        assert!(!ids.contains(&"infer".to_owned()));
        let doc: Value = serde_yaml::from_str(&split).expect("yaml");
        let node = |id: &str| {
            doc["nodes"]
                .as_sequence()
                .expect("nodes")
                .iter()
                .find(|n| n["id"].as_str() == Some(id))
                .expect("node")
                .clone()
        };
        assert_eq!(
            node("infer_1")["inputs"]["tensor"]["source"].as_str(),
            Some("preprocess/tensor_1")
        );
        assert_eq!(node("infer_1")["env"]["VIGIL_THREADS"].as_str(), Some("1"));
        assert_eq!(
            node("track")["inputs"]["detections_1"]["source"].as_str(),
            Some("infer_1/detections")
        );
        assert_eq!(
            node("monitor")["inputs"]["status_0"].as_str(),
            Some("infer_0/status")
        );
    }
}
