//! `vigil.yml`: the whole configuration of a vigil run, typed, parsed once per process and read
//! the same way by every node of the device dataflow and of every replay.
//!
//! - [`Config`] has one section per concern (`model`, `preprocess`, `postprocess`, `tracker`,
//!   `infer`, `camera`, `preview`, `monitor`); unknown keys are errors naming file, line and key,
//!   and values are range-checked while parsing (so those errors carry a line too).
//! - [`Source`] is where a process gets it: a file (`VIGIL_CONFIG`) plus one-off overrides in
//!   vigil.yml's own terms (`tracker.max_age=40`, `VIGIL_SET`). Relative paths inside are
//!   relative to the file.
//! - [`resolve`] opens the model once and derives the facts that more than one node needs
//!   (input size and layout, the decoder that reads its outputs); a mismatch is an error there,
//!   before any frame flows.
//! - [`topology`] names the dataflow's nodes, ports and the few per-graph facts the graph
//!   builder hands a node; nodes and the builder share those names.

mod faults;
mod resolve;
pub mod topology;
mod values;

use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_yaml::Value;

pub use faults::{Fault, FaultPlan};
pub use resolve::{ModelFacts, ResolveError, Resolved, resolve};
pub use values::{NetSize, Seconds, Unit};
pub use vigil_detect::{Layout, TensorLayout};
pub use vigil_infer::{ConvSearch, CudaOptions, Provider, TensorRtOptions};
pub use vigil_vision::ColorFormat;

/// The environment variable naming the config file.
pub const CONFIG_ENV: &str = "VIGIL_CONFIG";
/// The environment variable carrying overrides: a JSON list of `key.path=value`.
pub const SET_ENV: &str = "VIGIL_SET";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A YAML or schema error; serde's message names the key and, for a file, the line.
    #[error("{origin}: {message}")]
    Parse { origin: String, message: String },
    #[error("--set {entry}: {reason}")]
    BadOverride { entry: String, reason: String },
    #[error("{key}: {reason}")]
    Invalid { key: &'static str, reason: String },
    #[error(
        "{old} is no longer read: settings live in vigil.yml now; set `{new}` there (the file \
         named by VIGIL_CONFIG) or pass --set {new}=…"
    )]
    Legacy { old: String, new: &'static str },
}

/// The whole configuration. Every section has defaults, so a file names only what differs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub model: Model,
    pub preprocess: Preprocess,
    pub postprocess: Postprocess,
    pub tracker: Tracker,
    pub infer: Infer,
    pub camera: Camera,
    pub preview: Preview,
    pub monitor: Monitor,
}

/// Which output decoder reads the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Decoder {
    /// Picked from the output shapes when the model is opened.
    #[default]
    Auto,
    Ultralytics,
    Boxes,
    Split,
}

impl Decoder {
    /// The layout this choice insists on, `None` for auto.
    #[must_use]
    pub fn layout(self) -> Option<Layout> {
        match self {
            Self::Auto => None,
            Self::Ultralytics => Some(Layout::UltralyticsRaw),
            Self::Boxes => Some(Layout::BoxesScoreClass),
            Self::Split => Some(Layout::SplitOutputs),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Model {
    pub path: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<PathBuf>,
    pub provider: Provider,
    /// Intra-op threads; 0 lets ONNX Runtime choose.
    pub threads: usize,
    pub decoder: Decoder,
    /// The CUDA execution provider (`cuda`, and under `tensorrt`).
    pub cuda: CudaOptions,
    /// The TensorRT execution provider (`tensorrt`).
    pub tensorrt: TensorRtOptions,
}

impl Default for Model {
    fn default() -> Self {
        Self {
            path: PathBuf::new(),
            labels: None,
            provider: Provider::Cpu,
            threads: 0,
            decoder: Decoder::Auto,
            cuda: CudaOptions::default(),
            tensorrt: TensorRtOptions::default(),
        }
    }
}

/// Where the letterbox runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// On the GPU with a GPU provider, else on the CPU.
    #[default]
    Auto,
    /// In the preprocess node, on the CPU; the tensor travels to the infer node.
    Cpu,
    /// In the infer node, on its GPU: the preprocess node sends the decoded frame and vigil's
    /// kernel writes the model's input on the device. Needs a GPU provider.
    Cuda,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Preprocess {
    /// Network input size and layout: from the model; needed here only when the model leaves
    /// them dynamic (and, when given for a model that fixes them, they must agree).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net_w: Option<NetSize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub net_h: Option<NetSize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<TensorLayout>,
    pub color: ColorFormat,
    pub scale: f32,
    pub offsets: [f32; 3],
    pub keep_aspect: bool,
    pub symmetric_padding: bool,
    pub pad_value: u8,
    /// Infer every k-th frame (by sequence number).
    pub interval: NonZeroU64,
    pub device: Device,
    /// Decode the JPEG at 1/2, 1/4 or 1/8 scale in the IDCT when the letterboxed picture is at
    /// most that part of the frame (e.g. 1280x720 into 640x640 keeping aspect: 1/2, and the
    /// resize becomes a copy). Faster; pixels differ slightly from a full decode + bilinear
    /// resize, so off by default (parity with nvinfer and Ultralytics).
    pub reduced_decode: bool,
}

impl Default for Preprocess {
    fn default() -> Self {
        Self {
            net_w: None,
            net_h: None,
            layout: None,
            color: ColorFormat::Rgb,
            scale: 1.0 / 255.0,
            offsets: [0.0; 3],
            keep_aspect: true,
            symmetric_padding: true,
            pad_value: 114,
            interval: NonZeroU64::MIN,
            device: Device::Auto,
            reduced_decode: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Postprocess {
    pub conf_threshold: Unit,
    pub iou_threshold: Unit,
    pub top_k: usize,
    pub class_agnostic: bool,
    /// Per-class overrides by class id (nvinfer's `[class-attrs-N]`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub classes: BTreeMap<u32, ClassOverrides>,
}

impl Default for Postprocess {
    fn default() -> Self {
        Self {
            conf_threshold: Unit::new_const(0.25),
            iou_threshold: Unit::new_const(0.45),
            top_k: 300,
            class_agnostic: false,
            classes: BTreeMap::new(),
        }
    }
}

/// One class's overrides.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ClassOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conf_threshold: Option<Unit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iou_threshold: Option<Unit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<usize>,
}

/// Which tracker the track node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TrackerKind {
    /// nvtracker's IOU tracker: greedy `IoU` matching, probation, shadow tracking (what
    /// `vigil import-deepstream` sets: the customer's tracker).
    Iou,
    /// ByteTrack: a Kalman filter per track, high- then low-scored detections. The default:
    /// it scores better against ground truth (README, "Tracking").
    #[default]
    ByteTrack,
}

/// The tracker. `kind` picks it. `class_match`, `max_targets`, `min_confidence`, `max_coast`
/// and `coast_after_ms` apply to both; `iou_threshold`, `max_age`, `probation_age`,
/// `early_termination_age` and `new_target_overlap` to `iou` only (each imported from a
/// `config_tracker_IOU.yml` key); the `bytetrack` section to `bytetrack` only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tracker {
    pub kind: TrackerKind,
    /// Only a detection of a track's class continues it (`checkClassMatch`).
    pub class_match: bool,
    /// At most this many tracks, unshown ones included (`maxTargetsPerStream`).
    pub max_targets: usize,
    /// Detections scored below this are not tracked (`minDetectorConfidence`).
    pub min_confidence: Unit,
    /// iou: a detection continues a track at this `IoU` or more (`minMatchingScore4Iou`).
    pub iou_threshold: Unit,
    /// iou: inferred frames a missed track is kept, not shown (`maxShadowTrackingAge`).
    pub max_age: u32,
    /// iou: inferred frames a new track is held back before it is shown (`probationAge`).
    pub probation_age: u32,
    /// iou: a track still on probation missed this many inferred frames in a row ends
    /// (`earlyTerminationAge`; 0: never early).
    pub early_termination_age: u32,
    /// iou: a detection overlapping a track by more `IoU` than this starts no new one
    /// (`minIouDiff4NewTarget`; 1: never refused).
    pub new_target_overlap: Unit,
    pub bytetrack: ByteTrack,
    /// Frames a track is predicted for while the detector is down.
    pub max_coast: u32,
    /// Live: a frame whose detections have not come once a frame this much newer (frame time)
    /// was seen goes out without them.
    pub coast_after_ms: u64,
}

impl Default for Tracker {
    fn default() -> Self {
        Self {
            kind: TrackerKind::ByteTrack,
            class_match: true,
            max_targets: 150,
            min_confidence: Unit::new_const(0.0),
            iou_threshold: Unit::new_const(0.3),
            max_age: 30,
            probation_age: 0,
            early_termination_age: 1,
            new_target_overlap: Unit::new_const(1.0),
            bytetrack: ByteTrack::default(),
            max_coast: 90,
            coast_after_ms: 250,
        }
    }
}

/// ByteTrack's settings (its paper's names in brackets).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ByteTrack {
    /// Detections at least this sure are associated first (`track_thresh`).
    pub high_threshold: Unit,
    /// Detections from this up to `high_threshold` are associated second, with the tracks
    /// left; below it, ignored.
    pub low_threshold: Unit,
    /// A detection left over at least this sure starts a track.
    pub new_track_threshold: Unit,
    /// First association: a pair costing more than this (1 − `IoU` × score) is not made
    /// (`match_thresh`).
    pub match_threshold: Unit,
    /// Inferred frames a lost track is kept to be found again (`track_buffer`).
    pub track_buffer: u32,
}

impl Default for ByteTrack {
    fn default() -> Self {
        Self {
            high_threshold: Unit::new_const(0.5),
            low_threshold: Unit::new_const(0.1),
            new_track_threshold: Unit::new_const(0.6),
            match_threshold: Unit::new_const(0.8),
            track_buffer: 30,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Infer {
    /// One inference running longer than this ends the process for a restart (0: no
    /// watchdog).
    pub deadline_ms: u64,
    /// Fault injection for drills and tests, e.g. `abort@300,segv@600,sticky@900`.
    pub faults: FaultPlan,
    /// Where each infer process keeps its last words and its deaths across restarts
    /// (`<state_dir>/<node id>.lastwords`, `.deaths`).
    pub state_dir: PathBuf,
    /// Infer processes held in reserve, loaded and warm (dataflow.yml runs two: one active,
    /// one standby); 0: every infer process of the graph gets frames.
    pub standby: u32,
    /// Live: when the active process has held its frame longer than this (frame time: the
    /// camera's frames tick it) and a frame waits, the waiting frame goes to the standby (a
    /// hang costs one frame, not the watchdog's deadline); 0: only a death hands over. Below
    /// one frame interval it acts on the first frame that comes while the detector is busy.
    pub takeover_ms: u64,
    /// The crash-loop breaker.
    pub crash_loop: CrashLoop,
}

impl Default for Infer {
    fn default() -> Self {
        Self {
            deadline_ms: 2000,
            faults: FaultPlan::default(),
            state_dir: PathBuf::from("state"),
            standby: 1,
            takeover_ms: 150,
            crash_loop: CrashLoop::default(),
        }
    }
}

/// A process that keeps dying is not restarted at once forever: after `deaths` deaths within
/// `window_s` seconds it waits `pause_s` before loading the model again, twice as long at
/// each further trip (up to `max_pause_s`), back to `pause_s` once it has run `window_s`
/// seconds without a trip. Meanwhile `/health` says `degraded` and why; camera and preview go
/// on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CrashLoop {
    pub deaths: std::num::NonZeroU32,
    pub window_s: std::num::NonZeroU32,
    pub pause_s: std::num::NonZeroU32,
    pub max_pause_s: std::num::NonZeroU32,
}

impl CrashLoop {
    /// Deaths each process remembers, so the most `deaths` may be.
    pub const MAX_DEATHS: u32 = 32;
}

impl Default for CrashLoop {
    fn default() -> Self {
        let n = |v| std::num::NonZeroU32::new(v).unwrap_or(std::num::NonZeroU32::MIN);
        Self {
            deaths: n(5),
            window_s: n(60),
            pause_s: n(10),
            max_pause_s: n(300),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Camera {
    pub device: PathBuf,
    pub width: std::num::NonZeroU32,
    pub height: std::num::NonZeroU32,
    pub fps: std::num::NonZeroU32,
}

impl Default for Camera {
    /// The Logitech C920's MJPEG 720p mode.
    fn default() -> Self {
        Self {
            device: PathBuf::from("/dev/video0"),
            width: std::num::NonZeroU32::new(1280).unwrap_or(std::num::NonZeroU32::MIN),
            height: std::num::NonZeroU32::new(720).unwrap_or(std::num::NonZeroU32::MIN),
            fps: std::num::NonZeroU32::new(30).unwrap_or(std::num::NonZeroU32::MIN),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Preview {
    /// MJPEG over HTTP on 127.0.0.1:port (0: render only, no server).
    pub port: u16,
}

impl Default for Preview {
    fn default() -> Self {
        Self { port: 8090 }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Monitor {
    /// `/health` and `/metrics` on 127.0.0.1:port (0: no server).
    pub port: u16,
    /// The `SQLite` audit database, appended to across runs.
    pub audit_db: PathBuf,
    /// Where flight recordings go.
    pub flight_dir: PathBuf,
    /// A flight recording holds the frames from this long before a fault …
    pub flight_before_s: Seconds,
    /// … to this long after it.
    pub flight_after_s: Seconds,
    /// Flight recordings kept on disk, in MiB: past it the oldest are removed (0: no limit).
    pub flight_budget_mb: u64,
}

impl Default for Monitor {
    fn default() -> Self {
        Self {
            port: 9100,
            audit_db: PathBuf::from("state/audit.db"),
            flight_dir: PathBuf::from("flight"),
            flight_before_s: Seconds::new_const(5.0),
            flight_after_s: Seconds::new_const(3.0),
            flight_budget_mb: 512,
        }
    }
}

/// The configuration this process was started with (`VIGIL_CONFIG`, `VIGIL_SET`).
pub fn from_env() -> Result<Config, ConfigError> {
    Source::from_lookup(|k| std::env::var(k).ok())?.load()
}

/// One override in vigil.yml's terms: `tracker.max_age=40`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub path: Vec<String>,
    /// The value as written; read as YAML (`40`, `true`, `[0, 0, 0]`, `cuda`).
    pub value: String,
}

impl std::str::FromStr for Override {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| ConfigError::BadOverride {
            entry: s.to_owned(),
            reason: reason.to_owned(),
        };
        let (key, value) = s
            .split_once('=')
            .ok_or_else(|| bad("expected SECTION.KEY=VALUE, e.g. tracker.max_age=40"))?;
        let key = key.trim();
        if let Some(new) = legacy_key(key.rsplit('.').next().unwrap_or(key)) {
            return Err(bad(&format!(
                "settings are vigil.yml keys now: write --set {new}={value}"
            )));
        }
        let path: Vec<String> = key.split('.').map(|p| p.trim().to_owned()).collect();
        if path.len() < 2 || path.iter().any(String::is_empty) {
            return Err(bad("expected SECTION.KEY=VALUE, e.g. tracker.max_age=40"));
        }
        Ok(Self {
            path,
            value: value.to_owned(),
        })
    }
}

/// The keys whose values are paths. In a file they are relative to the file; given on a
/// command line, relative to the folder it runs in ([`Override::relative_to`]).
pub const PATH_KEYS: &[&str] = &[
    "model.path",
    "model.labels",
    "infer.state_dir",
    "monitor.audit_db",
    "monitor.flight_dir",
];

impl Override {
    /// `section.key`.
    #[must_use]
    pub fn key(&self) -> String {
        self.path.join(".")
    }

    /// The same override with a relative path value made absolute against `dir` (for a
    /// command line's `--set`, whose paths are relative to where it runs).
    #[must_use]
    pub fn relative_to(mut self, dir: &Path) -> Self {
        if PATH_KEYS.contains(&self.key().as_str())
            && let Ok(Value::String(v)) = serde_yaml::from_str::<Value>(&self.value)
            && Path::new(&v).is_relative()
        {
            self.value =
                serde_json::to_string(&dir.join(v).display().to_string()).unwrap_or_default();
        }
        self
    }
}

impl std::fmt::Display for Override {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.path.join("."), self.value)
    }
}

/// Where a process's configuration comes from: a file, then overrides, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Source {
    pub file: Option<PathBuf>,
    pub overrides: Vec<Override>,
}

impl Source {
    /// The source a node was started with: `VIGIL_CONFIG` and `VIGIL_SET` from `lookup`
    /// (the process environment in nodes, a map in tests). A setting from the time each node
    /// read its own `VIGIL_*` variables is refused, naming the vigil.yml key that replaced it.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        for (old, new) in LEGACY {
            if lookup(old).is_some() {
                return Err(ConfigError::Legacy {
                    old: (*old).to_owned(),
                    new,
                });
            }
        }
        let file = lookup(CONFIG_ENV)
            .filter(|v| !v.trim().is_empty())
            .map(PathBuf::from);
        let overrides = match lookup(SET_ENV).filter(|v| !v.trim().is_empty()) {
            None => Vec::new(),
            Some(json) => {
                let entries: Vec<String> =
                    serde_json::from_str(&json).map_err(|e| ConfigError::Parse {
                        origin: SET_ENV.to_owned(),
                        message: format!("expected a JSON list of KEY=VALUE strings: {e}"),
                    })?;
                entries
                    .iter()
                    .map(|e| e.parse())
                    .collect::<Result<_, _>>()?
            }
        };
        Ok(Self { file, overrides })
    }

    /// `VIGIL_SET`'s value for these overrides (`None` when there are none).
    #[must_use]
    pub fn overrides_env(&self) -> Option<String> {
        (!self.overrides.is_empty()).then(|| {
            serde_json::to_string(
                &self
                    .overrides
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>(),
            )
            .unwrap_or_default()
        })
    }

    /// Reads and parses the file, applies the overrides, checks every value, and makes the
    /// paths inside relative to the file's folder.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let (mut tree, origin) = match &self.file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                let tree: Value = if text.trim().is_empty() {
                    Value::Mapping(serde_yaml::Mapping::new())
                } else {
                    serde_yaml::from_str(&text).map_err(|e| ConfigError::Parse {
                        origin: path.display().to_string(),
                        message: e.to_string(),
                    })?
                };
                // Parsed alone first, so that an error in the file names its line.
                Config::deserialize(tree.clone()).map_err(|e| ConfigError::Parse {
                    origin: path.display().to_string(),
                    message: located(&text, &e),
                })?;
                (tree, path.display().to_string())
            }
            None => (
                Value::Mapping(serde_yaml::Mapping::new()),
                "defaults".to_owned(),
            ),
        };
        for o in &self.overrides {
            apply(&mut tree, o)?;
            serde_path_to_error::deserialize::<_, Config>(tree.clone()).map_err(|e| {
                ConfigError::BadOverride {
                    entry: o.to_string(),
                    reason: format!("{}: {}", e.path(), e.inner()),
                }
            })?;
        }
        let mut cfg = Config::deserialize(tree).map_err(|e| ConfigError::Parse {
            origin,
            message: e.to_string(),
        })?;
        cfg.validate()?;
        if let Some(dir) = self.file.as_deref().and_then(Path::parent) {
            cfg.rebase(dir);
        }
        Ok(cfg)
    }
}

/// The error of parsing `text` as a config, with the full key (`postprocess.conf_threshold`)
/// and the line: `serde_yaml` alone names only the section for a value out of range, and
/// loses the line when parsing from a tree.
fn located(text: &str, tree_error: &serde_yaml::Error) -> String {
    match serde_path_to_error::deserialize::<_, Config>(serde_yaml::Deserializer::from_str(text)) {
        Err(e) => format!("{}: {}", e.path(), e.inner()),
        Ok(_) => tree_error.to_string(),
    }
}

/// Sets `o.path` in the YAML tree, making sections as needed.
fn apply(tree: &mut Value, o: &Override) -> Result<(), ConfigError> {
    let value: Value = serde_yaml::from_str(&o.value).map_err(|e| ConfigError::BadOverride {
        entry: o.to_string(),
        reason: e.to_string(),
    })?;
    let mut at = tree;
    for (i, part) in o.path.iter().enumerate() {
        if at.is_null() {
            *at = Value::Mapping(serde_yaml::Mapping::new());
        }
        let map = at
            .as_mapping_mut()
            .ok_or_else(|| ConfigError::BadOverride {
                entry: o.to_string(),
                reason: format!("`{}` is not a section", o.path[..i].join(".")),
            })?;
        // Class ids under postprocess.classes are numbers in the file.
        let key = match part.parse::<u64>() {
            Ok(n) => Value::Number(n.into()),
            Err(_) => Value::String(part.clone()),
        };
        if i + 1 == o.path.len() {
            map.insert(key, value);
            return Ok(());
        }
        at = map.entry(key).or_insert(Value::Null);
    }
    Ok(())
}

impl Config {
    /// True when the letterbox runs on the infer node's GPU (`preprocess.device`, `auto`
    /// following the provider).
    #[must_use]
    pub fn letterbox_on_gpu(&self) -> bool {
        match self.preprocess.device {
            Device::Auto => self.model.provider.is_gpu(),
            Device::Cpu => false,
            Device::Cuda => true,
        }
    }

    /// Reads a file with no overrides.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Source {
            file: Some(path.to_owned()),
            overrides: Vec::new(),
        }
        .load()
    }

    /// Checks what the types alone do not.
    fn validate(&self) -> Result<(), ConfigError> {
        let deaths = self.infer.crash_loop.deaths.get();
        if deaths > CrashLoop::MAX_DEATHS {
            return Err(ConfigError::Invalid {
                key: "infer.crash_loop.deaths",
                reason: format!(
                    "{deaths}: at most {} (the deaths each process remembers)",
                    CrashLoop::MAX_DEATHS
                ),
            });
        }
        let p = &self.preprocess;
        if !p.scale.is_finite() {
            return Err(ConfigError::Invalid {
                key: "preprocess.scale",
                reason: format!("{} is not a finite number", p.scale),
            });
        }
        if p.offsets.iter().any(|o| !o.is_finite()) {
            return Err(ConfigError::Invalid {
                key: "preprocess.offsets",
                reason: format!("{:?} holds a non-finite number", p.offsets),
            });
        }
        let gpu = self.model.provider.is_gpu();
        if p.device == Device::Cuda && !gpu {
            return Err(ConfigError::Invalid {
                key: "preprocess.device",
                reason: format!(
                    "cuda letterboxes on the infer node's GPU, but model.provider is {:?}: set model.provider to cuda or tensorrt, or preprocess.device to cpu",
                    self.model.provider
                )
                .to_lowercase(),
            });
        }
        if !gpu && self.infer.faults.has(Fault::Illegal) {
            return Err(ConfigError::Invalid {
                key: "infer.faults",
                reason: "illegal@ breaks the infer process's CUDA context: it needs model.provider cuda or tensorrt".to_owned(),
            });
        }
        let b = &self.tracker.bytetrack;
        if b.low_threshold.get() > b.high_threshold.get() {
            return Err(ConfigError::Invalid {
                key: "tracker.bytetrack.low_threshold",
                reason: format!(
                    "{} is above tracker.bytetrack.high_threshold {}",
                    b.low_threshold.get(),
                    b.high_threshold.get()
                ),
            });
        }
        if self.tracker.max_targets == 0 {
            return Err(ConfigError::Invalid {
                key: "tracker.max_targets",
                reason: "0 would track nothing".to_owned(),
            });
        }
        if self.model.path.as_os_str().is_empty() {
            return Err(ConfigError::Invalid {
                key: "model.path",
                reason: "no model: set model.path (or pass --model)".to_owned(),
            });
        }
        Ok(())
    }

    /// Settings that are valid but do nothing as combined: a key of the tracker not chosen,
    /// ByteTrack thresholds that leave a stage without detections. Each names its keys.
    #[must_use]
    pub fn warnings(&self) -> Vec<String> {
        let t = &self.tracker;
        let d = Tracker::default();
        let mut out = Vec::new();
        let iou_keys = [
            ("iou_threshold", t.iou_threshold != d.iou_threshold),
            ("max_age", t.max_age != d.max_age),
            ("probation_age", t.probation_age != d.probation_age),
            (
                "early_termination_age",
                t.early_termination_age != d.early_termination_age,
            ),
            (
                "new_target_overlap",
                t.new_target_overlap != d.new_target_overlap,
            ),
        ];
        match t.kind {
            TrackerKind::ByteTrack => {
                for (key, set) in iou_keys {
                    if set {
                        out.push(format!(
                            "tracker.{key} is set but applies to tracker.kind iou only; kind is bytetrack"
                        ));
                    }
                }
                let (b, conf) = (&t.bytetrack, self.postprocess.conf_threshold.get());
                if conf >= b.high_threshold.get() {
                    out.push(format!(
                        "postprocess.conf_threshold {conf} is at or above tracker.bytetrack.high_threshold {}: ByteTrack's second association gets no detections",
                        b.high_threshold.get()
                    ));
                }
                if b.new_track_threshold.get() < b.high_threshold.get() {
                    out.push(format!(
                        "tracker.bytetrack.new_track_threshold {} is below high_threshold {}: new tracks start only from detections above high_threshold",
                        b.new_track_threshold.get(),
                        b.high_threshold.get()
                    ));
                }
            }
            TrackerKind::Iou => {
                if t.bytetrack != d.bytetrack {
                    out.push(
                        "tracker.bytetrack is set but applies to tracker.kind bytetrack only; kind is iou"
                            .to_owned(),
                    );
                }
            }
        }
        out
    }

    /// Relative paths inside become relative to `dir`.
    fn rebase(&mut self, dir: &Path) {
        let rebase = |p: &mut PathBuf| {
            if p.is_relative() && !p.as_os_str().is_empty() {
                *p = dir.join(&*p);
            }
        };
        rebase(&mut self.model.path);
        rebase(&mut self.model.tensorrt.cache_dir);
        if let Some(l) = &mut self.model.labels {
            rebase(l);
        }
        rebase(&mut self.infer.state_dir);
        rebase(&mut self.monitor.audit_db);
        rebase(&mut self.monitor.flight_dir);
    }

    /// The file text, as `vigil import-deepstream` writes it.
    pub fn to_yaml(&self) -> Result<String, ConfigError> {
        serde_yaml::to_string(self).map_err(|e| ConfigError::Parse {
            origin: "vigil.yml".to_owned(),
            message: e.to_string(),
        })
    }
}

/// The `VIGIL_*` variables nodes read before vigil.yml was the one configuration, and the key
/// that replaced each.
pub const LEGACY: &[(&str, &str)] = &[
    ("VIGIL_MODEL", "model.path"),
    ("VIGIL_LABELS", "model.labels"),
    ("VIGIL_PROVIDER", "model.provider"),
    ("VIGIL_THREADS", "model.threads"),
    ("VIGIL_DECODER", "model.decoder"),
    ("VIGIL_NET_W", "preprocess.net_w"),
    ("VIGIL_NET_H", "preprocess.net_h"),
    ("VIGIL_LAYOUT", "preprocess.layout"),
    ("VIGIL_COLOR", "preprocess.color"),
    ("VIGIL_SCALE", "preprocess.scale"),
    ("VIGIL_OFFSETS", "preprocess.offsets"),
    ("VIGIL_KEEP_ASPECT", "preprocess.keep_aspect"),
    ("VIGIL_SYMMETRIC_PADDING", "preprocess.symmetric_padding"),
    ("VIGIL_PAD_VALUE", "preprocess.pad_value"),
    ("VIGIL_INTERVAL", "preprocess.interval"),
    ("VIGIL_PREPROCESS_DEVICE", "preprocess.device"),
    ("VIGIL_CONF", "postprocess.conf_threshold"),
    ("VIGIL_IOU", "postprocess.iou_threshold"),
    ("VIGIL_TOPK", "postprocess.top_k"),
    ("VIGIL_CLASS_AGNOSTIC", "postprocess.class_agnostic"),
    ("VIGIL_CLASS_ATTRS", "postprocess.classes"),
    ("VIGIL_TRACK_IOU", "tracker.iou_threshold"),
    ("VIGIL_MAX_AGE", "tracker.max_age"),
    ("VIGIL_MAX_COAST", "tracker.max_coast"),
    ("VIGIL_COAST_AFTER_MS", "tracker.coast_after_ms"),
    ("VIGIL_DEADLINE_MS", "infer.deadline_ms"),
    ("VIGIL_FAULTS", "infer.faults"),
    ("VIGIL_LAST_WORDS", "infer.state_dir"),
    ("VIGIL_DEVICE", "camera.device"),
    ("VIGIL_WIDTH", "camera.width"),
    ("VIGIL_HEIGHT", "camera.height"),
    ("VIGIL_FPS", "camera.fps"),
    ("VIGIL_PREVIEW_PORT", "preview.port"),
    ("VIGIL_MONITOR_PORT", "monitor.port"),
    ("VIGIL_AUDIT_DB", "monitor.audit_db"),
    ("VIGIL_FLIGHT_DIR", "monitor.flight_dir"),
    ("VIGIL_FLIGHT_BEFORE_S", "monitor.flight_before_s"),
    ("VIGIL_FLIGHT_AFTER_S", "monitor.flight_after_s"),
];

/// The vigil.yml key that replaced a legacy `VIGIL_*` name.
#[must_use]
pub fn legacy_key(old: &str) -> Option<&'static str> {
    LEGACY.iter().find(|(o, _)| *o == old).map(|(_, n)| *n)
}

#[cfg(test)]
mod tests;
