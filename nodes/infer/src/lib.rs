//! The infer node: tensor → model → decode → NMS → detections in source pixels. Skipped frames
//! (empty tensors) pass through as empty, non-inferred detections so the tracker sees every
//! frame. This is the only node that touches an accelerator, so it is the one built to die
//! cleanly:
//!
//! - a sticky device error (CUDA error 700 and kin) is never retried in place: the node writes
//!   its last words and exits with [`EXIT_STICKY_DEVICE`] so dora restarts it with a fresh
//!   context;
//! - a watchdog ends it with [`EXIT_WATCHDOG`] when one inference overruns `infer.deadline_ms`;
//! - a fatal signal is recorded by a handler before the signal ends the process;
//! - a tensor or output holding NaN/inf is rejected and counted, the frame gets no detections;
//! - on start it reports how its predecessor ended on the `status` output;
//! - `infer.faults` injects any of those faults at given frames (see [`fault`]).

pub mod fault;
pub mod last_words;
mod watchdog;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dora_node_api::dora_core::config::DataId;
use dora_node_api::{DoraArray, DoraNode, Event, EventStream};
use eyre::WrapErr;
use vigil_config::topology::port;
use vigil_config::{ModelFacts, Resolved, Unit};
use vigil_detect::{
    ClassAttrs, NmsConfig, OutputTensor, PostprocessConfig, decoded_outputs, postprocess,
};
use vigil_infer::{Backend, InferError, OrtBackend, OrtConfig};
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

impl Config {
    /// This node's view of vigil.yml (`model`, `postprocess`, `infer`); `node_id` names its
    /// last-words file, so each of several workers keeps its own. The decoder is the one the
    /// config names until the model is open ([`Resolved`] then fixes it).
    pub fn new(c: &vigil_config::Config, node_id: &str) -> eyre::Result<Self> {
        let q = &c.postprocess;
        let faults = c
            .infer
            .faults
            .parse()
            .map_err(|e| eyre::eyre!("infer.faults={:?}: {e}", c.infer.faults))?;
        Ok(Self {
            deadline: (c.infer.deadline_ms > 0).then(|| Duration::from_millis(c.infer.deadline_ms)),
            faults,
            last_words: c.infer.state_dir.join(format!("{node_id}.lastwords")),
            ort: OrtConfig {
                model: c.model.path.clone(),
                provider: c.model.provider,
                threads: c.model.threads,
                library: std::env::var_os("ORT_DYLIB_PATH")
                    .filter(|v| !v.is_empty())
                    .map(PathBuf::from),
            },
            post: PostprocessConfig {
                layout: c.model.decoder.layout(),
                threshold: q.conf_threshold.get(),
                nms: NmsConfig {
                    iou_threshold: q.iou_threshold.get(),
                    top_k: q.top_k,
                    class_agnostic: q.class_agnostic,
                    classes: q
                        .classes
                        .iter()
                        .map(|(&class, o)| {
                            (
                                class,
                                ClassAttrs {
                                    threshold: o.conf_threshold.map(Unit::get),
                                    iou_threshold: o.iou_threshold.map(Unit::get),
                                    top_k: o.top_k,
                                },
                            )
                        })
                        .collect(),
                },
            },
        })
    }
}

pub fn main() -> eyre::Result<()> {
    let config = vigil_config::from_env()?;
    let (mut node, events) = DoraNode::init_from_env().wrap_err("infer: connecting to dora")?;
    let mut cfg = Config::new(&config, node.id().as_ref())?;
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
    // The same checks as before the dataflow started, on the model as this process opened it.
    let resolved = Resolved::from_facts(config, ModelFacts::of(&backend))?;
    cfg.post.layout = Some(resolved.decoder);
    warm_up(&mut backend);
    tracing::info!(input = ?backend.input(), provider = ?cfg.ort.provider, decoder = resolved.decoder.name(), "model loaded");
    let watchdog = cfg
        .deadline
        .map(|d| Watchdog::start(d, words.clone()))
        .transpose()
        .wrap_err("infer: starting the watchdog")?;
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
        DataId::from(port::STATUS.to_owned()),
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
        let output = DataId::from(port::DETECTIONS.to_owned());
        let (mut failed, mut inferred) = (0u64, 0u64);
        let mut first_error: Option<String> = None;
        while let Some(event) = events.recv() {
            let Event::Input { id, metadata, data } = event else {
                if matches!(event, Event::Stop(_)) {
                    break;
                }
                continue;
            };
            if id.as_str() != port::TENSOR {
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
                    Ok(dets) => {
                        inferred += 1;
                        (msg.inferred, msg.detections) = (true, dets);
                    }
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
                        first_error.get_or_insert_with(|| e.clone());
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
        tracing::info!(failed, inferred, rejected = self.rejected, "infer finished");
        // A run in which no frame could be inferred is a failure, not an empty result.
        let attempted = inferred + failed + self.rejected;
        if attempted > 0 && inferred == 0 {
            let why = first_error.unwrap_or_else(|| "NaN or inf in the tensor or outputs".into());
            eyre::bail!(
                "infer: none of the {attempted} frames could be inferred; the first error: {why}"
            );
        }
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
    fn the_node_reads_its_sections_of_vigil_yml() {
        let mut c = vigil_config::Config::default();
        c.model.path = "m.onnx".into();
        c.model.decoder = vigil_config::Decoder::Boxes;
        c.postprocess.conf_threshold = Unit::try_from(0.4).expect("unit");
        c.postprocess.classes.insert(
            2,
            vigil_config::ClassOverrides {
                top_k: Some(5),
                ..Default::default()
            },
        );
        let cfg = Config::new(&c, "infer_1").expect("reads");
        assert_eq!(
            (cfg.post.threshold, cfg.post.layout),
            (0.4, Some(vigil_detect::Layout::BoxesScoreClass))
        );
        assert_eq!(cfg.post.nms.classes[&2].top_k, Some(5));
        assert_eq!(cfg.deadline, Some(Duration::from_secs(2)));
        assert_eq!(cfg.last_words, PathBuf::from("state/infer_1.lastwords"));
        c.infer.faults = "segv@3,hang@9".into();
        c.infer.deadline_ms = 0;
        let cfg = Config::new(&c, "infer").expect("reads");
        assert_eq!((cfg.faults.fatal(), cfg.deadline), (2, None));
        c.infer.faults = "explode@3".into();
        let err = Config::new(&c, "infer").expect_err("bad plan").to_string();
        assert!(
            err.contains("infer.faults") && err.contains("explode"),
            "{err}"
        );
    }
}
