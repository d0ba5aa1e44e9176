//! The infer node: tensor → model → decode → NMS → detections in source pixels. Skipped frames
//! (empty tensors) pass through as empty, non-inferred detections so the tracker sees every
//! frame. This is the only node that touches an accelerator, so it is the one built to die
//! cleanly:
//!
//! - a sticky device error (CUDA error 700 and kin) is never retried in place: the node writes
//!   its last words and exits with [`EXIT_STICKY_DEVICE`] so dora restarts it with a fresh
//!   context;
//! - a watchdog ends it with [`EXIT_WATCHDOG`] when one inference overruns `VIGIL_DEADLINE_MS`;
//! - a fatal signal is recorded by a handler before the signal ends the process;
//! - a tensor or output holding NaN/inf is rejected and counted, the frame gets no detections;
//! - on start it reports how its predecessor ended on the `status` output;
//! - `VIGIL_FAULTS` injects any of those faults at given frames (see [`fault`]).

pub mod fault;
pub mod last_words;
mod watchdog;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dora_node_api::dora_core::config::DataId;
use dora_node_api::{DoraArray, DoraNode, Event, EventStream};
use eyre::WrapErr;
use vigil_detect::{
    ClassAttrs, Layout, NmsConfig, OutputTensor, PostprocessConfig, decoded_outputs, postprocess,
};
use vigil_infer::{Backend, InferError, OrtBackend, OrtConfig, Provider};
use vigil_msg::config::{ConfigError, Lookup};
use vigil_msg::{DetectionsMsg, StatusMsg, decode_tensor};

pub use fault::{Fault, FaultPlan};
pub use last_words::{EXIT_STICKY_DEVICE, EXIT_WATCHDOG, LastWords};
use watchdog::Watchdog;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub ort: OrtConfig,
    pub post: PostprocessConfig,
    /// One inference longer than this ends the process; `None` disables the watchdog.
    pub deadline: Option<Duration>,
    pub faults: FaultPlan,
    /// Where this node keeps its last words across restarts.
    pub last_words: PathBuf,
}

/// The watchdog's deadline unless `VIGIL_DEADLINE_MS` says otherwise.
pub const DEFAULT_DEADLINE_MS: u64 = 2000;

impl Config {
    pub fn from_lookup(l: &impl Lookup) -> Result<Self, ConfigError> {
        let layout = match l
            .get("VIGIL_DECODER")
            .unwrap_or_default()
            .to_ascii_lowercase()
            .as_str()
        {
            "" | "auto" => None,
            "ultralytics" => Some(Layout::UltralyticsRaw),
            "boxes" => Some(Layout::BoxesScoreClass),
            "split" => Some(Layout::SplitOutputs),
            other => {
                return Err(ConfigError::new(
                    "VIGIL_DECODER",
                    other,
                    "expected auto, ultralytics, boxes or split",
                ));
            }
        };
        let unit = |key: &str, default: f32| -> Result<f32, ConfigError> {
            let v: f32 = l.parse_or(key, default)?;
            if (0.0..=1.0).contains(&v) {
                Ok(v)
            } else {
                Err(ConfigError::new(key, &v.to_string(), "expected 0..=1"))
            }
        };
        let d = PostprocessConfig::default();
        let deadline_ms: u64 = l.parse_or("VIGIL_DEADLINE_MS", DEFAULT_DEADLINE_MS)?;
        let faults = l.get("VIGIL_FAULTS").unwrap_or_default();
        Ok(Self {
            deadline: (deadline_ms > 0).then(|| Duration::from_millis(deadline_ms)),
            faults: faults
                .parse()
                .map_err(|e| ConfigError::new("VIGIL_FAULTS", &faults, e))?,
            last_words: l.parse_or("VIGIL_LAST_WORDS", PathBuf::from("state/infer.lastwords"))?,
            ort: OrtConfig {
                model: l.parse_required("VIGIL_MODEL")?,
                provider: l.parse_or("VIGIL_PROVIDER", Provider::Cpu)?,
                threads: l.parse_or("VIGIL_THREADS", 0usize)?,
                library: l
                    .get("ORT_DYLIB_PATH")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from),
            },
            post: PostprocessConfig {
                layout,
                threshold: unit("VIGIL_CONF", d.threshold)?,
                nms: NmsConfig {
                    iou_threshold: unit("VIGIL_IOU", d.nms.iou_threshold)?,
                    top_k: l.parse_or("VIGIL_TOPK", d.nms.top_k)?,
                    class_agnostic: l.flag_or("VIGIL_CLASS_AGNOSTIC", d.nms.class_agnostic)?,
                    classes: {
                        let v = l.get("VIGIL_CLASS_ATTRS").unwrap_or_default();
                        parse_class_attrs(&v)
                            .map_err(|e| ConfigError::new("VIGIL_CLASS_ATTRS", &v, e))?
                    },
                },
            },
        })
    }
}

/// Per-class overrides: `CLASS:conf=F,iou=F,topk=N;CLASS:…` (any of the three per class).
pub fn parse_class_attrs(s: &str) -> Result<BTreeMap<u32, ClassAttrs>, String> {
    let mut out = BTreeMap::new();
    for group in s.split(';').map(str::trim).filter(|g| !g.is_empty()) {
        let (class, attrs) = group
            .split_once(':')
            .ok_or_else(|| format!("`{group}` is not CLASS:key=value,…"))?;
        let class: u32 = class
            .trim()
            .parse()
            .map_err(|e| format!("`{group}`: class: {e}"))?;
        let mut a = ClassAttrs::default();
        for kv in attrs.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("`{kv}` is not key=value"))?;
            let unit = |v: &str| -> Result<f32, String> {
                v.trim()
                    .parse::<f32>()
                    .ok()
                    .filter(|x| (0.0..=1.0).contains(x))
                    .ok_or_else(|| format!("`{kv}`: expected 0..=1"))
            };
            match k.trim() {
                "conf" => a.threshold = Some(unit(v)?),
                "iou" => a.iou_threshold = Some(unit(v)?),
                "topk" => {
                    a.top_k = Some(v.trim().parse().map_err(|e| format!("`{kv}`: {e}"))?);
                }
                other => {
                    return Err(format!(
                        "unknown class attribute `{other}` (conf, iou, topk)"
                    ));
                }
            }
        }
        out.insert(class, a);
    }
    Ok(out)
}

pub fn main() -> eyre::Result<()> {
    let cfg = Config::from_lookup(&vigil_msg::config::env_lookup())?;
    let previous = last_words::take(&cfg.last_words)
        .wrap_err_with(|| format!("infer: reading {}", cfg.last_words.display()))?;
    if let Some(p) = &previous {
        tracing::warn!(cause = %p.cause, seq = p.seq, "infer: the previous process died");
    }
    let words = Arc::new(
        LastWords::arm(&cfg.last_words)
            .wrap_err_with(|| format!("infer: arming {}", cfg.last_words.display()))?,
    );
    let mut backend = OrtBackend::load(&cfg.ort)?;
    warm_up(&mut backend);
    tracing::info!(input = ?backend.input(), provider = ?cfg.ort.provider, "model loaded");
    let watchdog = cfg
        .deadline
        .map(|d| Watchdog::start(d, words.clone()))
        .transpose()
        .wrap_err("infer: starting the watchdog")?;
    let (mut node, events) = DoraNode::init_from_env().wrap_err("infer: connecting to dora")?;
    let died_at = previous.as_ref().map(|p| p.seq);
    send_status(
        &mut node,
        &StatusMsg::Started {
            pid: std::process::id(),
            previous,
        },
    )?;
    let mut run = Run {
        cfg: &cfg,
        words: &words,
        watchdog: watchdog.as_ref(),
        died_at,
        rejected: 0,
    };
    run.events(backend, node, events)
}

/// One inference on zeros, so the first real frame does not pay for lazy initialisation (and
/// a restarted node is back at full speed at once). Skipped for dynamic input sizes.
fn warm_up(backend: &mut impl Backend) {
    let shape: Vec<usize> = backend
        .input()
        .shape
        .iter()
        .map(|&d| usize::try_from(d).unwrap_or(0))
        .collect();
    if shape.iter().all(|&d| d > 0) {
        let zeros = vec![0.0f32; shape.iter().product()];
        if let Err(e) = backend.run(&shape, &zeros) {
            tracing::warn!(error = %e, "infer: warm-up run failed");
        }
    }
}

fn send_status(node: &mut DoraNode, status: &StatusMsg) -> eyre::Result<()> {
    let (params, array) = status.encode();
    node.send_output(
        DataId::from("status".to_owned()),
        params,
        DoraArray::from(array),
    )
    .wrap_err("infer: sending status")
}

struct Run<'a> {
    cfg: &'a Config,
    words: &'a LastWords,
    watchdog: Option<&'a Watchdog>,
    /// The frame the previous process died on.
    died_at: Option<u64>,
    rejected: u64,
}

/// Why a frame got no detections.
enum Failure {
    /// NaN or inf in the tensor or the outputs.
    NonFinite(&'static str),
    Other(String),
}

impl Run<'_> {
    fn events(
        &mut self,
        mut backend: impl Backend,
        mut node: DoraNode,
        mut events: EventStream,
    ) -> eyre::Result<()> {
        let output = DataId::from("detections".to_owned());
        let mut failed = 0u64;
        while let Some(event) = events.recv() {
            let Event::Input { id, metadata, data } = event else {
                if matches!(event, Event::Stop(_)) {
                    break;
                }
                continue;
            };
            if id.as_str() != "tensor" {
                continue;
            }
            let tensor = match decode_tensor(&metadata.parameters, data.as_array().as_ref()) {
                Ok(t) => t,
                Err(e) => {
                    failed += 1;
                    tracing::error!(error = %e, failed, "infer: dropping malformed tensor message");
                    continue;
                }
            };
            let mut msg = DetectionsMsg {
                header: tensor.header,
                inferred: false,
                detections: Vec::new(),
                latency: tensor.latency,
            };
            if !tensor.is_skipped() {
                let started = Instant::now();
                match self.infer(&mut backend, &tensor) {
                    Ok(dets) => (msg.inferred, msg.detections) = (true, dets),
                    Err(Failure::NonFinite(what)) => {
                        self.rejected += 1;
                        tracing::error!(
                            seq = tensor.header.seq,
                            rejected = self.rejected,
                            "infer: {what} holds NaN or inf; frame rejected"
                        );
                        send_status(
                            &mut node,
                            &StatusMsg::Rejected {
                                header: tensor.header,
                                total: self.rejected,
                            },
                        )?;
                    }
                    Err(Failure::Other(e)) => {
                        failed += 1;
                        tracing::error!(seq = tensor.header.seq, error = %e, failed, "infer: frame has no detections");
                    }
                }
                msg.latency.infer_us = u32::try_from(started.elapsed().as_micros())
                    .unwrap_or(u32::MAX)
                    .max(1);
            }
            let (params, array) = msg.encode();
            node.send_output(output.clone(), params, DoraArray::from(array))
                .wrap_err("infer: sending detections")?;
        }
        tracing::info!(failed, rejected = self.rejected, "infer finished");
        Ok(())
    }

    /// Runs one tensor. Fatal faults, injected or real, end the process from in here.
    fn infer(
        &self,
        backend: &mut impl Backend,
        tensor: &vigil_msg::TensorMsg<'_>,
    ) -> Result<Vec<vigil_detect::Detection>, Failure> {
        let seq = tensor.header.seq;
        LastWords::working_on(seq);
        if !tensor.data.iter().all(|v| v.is_finite()) {
            return Err(Failure::NonFinite("input tensor"));
        }
        let fault = self.cfg.faults.at(seq, self.died_at);
        if let Some(f) = fault {
            tracing::warn!(seq, fault = %f, "infer: injecting fault");
        }
        if let Some(w) = self.watchdog {
            w.arm();
        }
        let outputs = match fault {
            Some(Fault::Abort) => std::process::abort(),
            Some(Fault::Segv) => last_words::segfault(),
            Some(Fault::Hang) => loop {
                std::thread::sleep(Duration::from_hours(1));
            },
            Some(Fault::Sticky) => Err(InferError::StickyDevice(
                "injected fault: CUDA error 700 cudaErrorIllegalAddress: an illegal memory access was encountered".into(),
            )),
            Some(Fault::Garbage) => backend.run(&tensor.shape, tensor.data).map(|mut outs| {
                poison(&mut outs);
                outs
            }),
            None => backend.run(&tensor.shape, tensor.data),
        };
        if let Some(w) = self.watchdog {
            w.disarm();
        }
        let outputs = match outputs {
            Ok(o) => o,
            Err(e) if e.is_sticky() => {
                tracing::error!(seq, error = %e, "infer: sticky device error; exiting for a clean restart");
                self.words.exit(EXIT_STICKY_DEVICE)
            }
            Err(e) => return Err(Failure::Other(e.to_string())),
        };
        // Only what the decoder reads: a model's other outputs (heatmaps) can be large.
        let read = decoded_outputs(&outputs, self.cfg.post.layout);
        if !read.iter().all(|o| o.data.iter().all(|v| v.is_finite())) {
            return Err(Failure::NonFinite("model output"));
        }
        postprocess(&outputs, &self.cfg.post, &tensor.letterbox)
            .map_err(|e| Failure::Other(e.to_string()))
    }
}

/// What a broken device hands back: NaN and inf everywhere.
fn poison(outputs: &mut [OutputTensor]) {
    for o in outputs {
        for (i, v) in o.data.iter_mut().enumerate() {
            *v = if i % 2 == 0 { f32::NAN } else { f32::INFINITY };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_parses_and_bounds_thresholds() {
        let l = |k: &str| match k {
            "VIGIL_MODEL" => Some("m.onnx".to_owned()),
            "VIGIL_CONF" => Some("0.4".to_owned()),
            "VIGIL_DECODER" => Some("boxes".to_owned()),
            _ => None,
        };
        let c = Config::from_lookup(&l).expect("parses");
        assert_eq!(
            (c.post.threshold, c.post.layout),
            (0.4, Some(Layout::BoxesScoreClass))
        );
        let bad = |k: &str| match k {
            "VIGIL_MODEL" => Some("m.onnx".to_owned()),
            "VIGIL_IOU" => Some("1.5".to_owned()),
            _ => None,
        };
        assert!(
            Config::from_lookup(&bad)
                .expect_err("must fail")
                .to_string()
                .contains("VIGIL_IOU")
        );
        assert_eq!(c.deadline, Some(Duration::from_millis(DEFAULT_DEADLINE_MS)));
        let faults = |k: &str| match k {
            "VIGIL_MODEL" => Some("m.onnx".to_owned()),
            "VIGIL_FAULTS" => Some("segv@3,hang@9".to_owned()),
            "VIGIL_DEADLINE_MS" => Some("0".to_owned()),
            _ => None,
        };
        let c = Config::from_lookup(&faults).expect("parses");
        assert_eq!((c.faults.fatal(), c.deadline), (2, None));
        let bad = |k: &str| match k {
            "VIGIL_MODEL" => Some("m.onnx".to_owned()),
            "VIGIL_FAULTS" => Some("explode@3".to_owned()),
            _ => None,
        };
        let err = Config::from_lookup(&bad)
            .expect_err("must fail")
            .to_string();
        assert!(
            err.contains("VIGIL_FAULTS") && err.contains("explode"),
            "{err}"
        );
    }
}
