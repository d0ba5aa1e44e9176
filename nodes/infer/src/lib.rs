//! The infer node: tensor → model → decode → NMS → detections in source pixels. It asks for
//! work: `ready` once the model is loaded and warm, after every answer, and again every 100 ms
//! while it waits (a lost `ready` costs a tick, not the detector), so the preprocessor prepares
//! a frame only for a free detector. This is the only node that touches an accelerator, so it
//! is the one built to die cleanly:
//!
//! - a sticky device error (CUDA error 700 and kin) is never retried in place: the node writes
//!   its last words and exits with [`EXIT_STICKY_DEVICE`] so dora restarts it with a fresh
//!   context;
//! - a watchdog ends it with [`EXIT_WATCHDOG`] when one inference overruns `infer.deadline_ms`;
//! - a fatal signal is recorded by a handler before the signal ends the process;
//! - a tensor or output holding NaN/inf is rejected and counted, the frame gets no detections;
//! - on start it reports how its predecessor ended on the `status` output;
//! - `infer.faults` injects any of those faults at given frames (see [`fault`]), `illegal@N` a
//!   real one: a wild-pointer write in this process's own CUDA context.
//!
//! With a GPU provider this process owns the GPU end to end ([`vigil_infer::GpuBackend`]):
//! frames arrive decoded, vigil's kernel letterboxes them into the model's input on the
//! device, ONNX Runtime runs on the same stream, Ultralytics outputs are decoded there.

pub mod crash_loop;
pub mod fault;
pub mod last_words;
pub mod watchdog;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dora_node_api::dora_core::config::DataId;
use dora_node_api::{DoraArray, DoraNode, Event, EventStream};
use eyre::WrapErr;
use vigil_config::topology::port;
use vigil_config::{ModelFacts, Resolved, Unit};
use vigil_detect::{ClassAttrs, NmsConfig, PostprocessConfig};
use vigil_infer::{Backend, Detector, FrameError, GpuBackend, OrtBackend, OrtConfig, RgbFrame};
use vigil_msg::{
    DetectionsMsg, Encode, FrameStatus, Ready, StatusMsg, TensorData, TensorMsg, decode_tensor,
};

pub use fault::{Fault, FaultPlan, Faulty, Ledger};
pub use last_words::{EXIT_STICKY_DEVICE, EXIT_WATCHDOG, LastWords};
pub use watchdog::{Watchdog, Watched};

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub ort: OrtConfig,
    pub post: PostprocessConfig,
    /// One inference longer than this ends the process; `None` disables the watchdog.
    pub deadline: Option<Duration>,
    pub faults: FaultPlan,
    /// Where this node keeps its last words across restarts.
    pub last_words: PathBuf,
    /// … its deaths, for the crash-loop breaker.
    pub deaths: PathBuf,
    /// … and where the faults injected by any infer process of the dataflow are marked.
    pub fault_ledger: PathBuf,
    pub crash_loop: vigil_config::CrashLoop,
}

impl Config {
    /// This node's view of vigil.yml (`model`, `postprocess`, `infer`); `node_id` names its
    /// last-words file, so each of several workers keeps its own. The decoder is the one the
    /// config names until the model is open ([`Resolved`] then fixes it).
    #[must_use]
    pub fn new(c: &vigil_config::Config, node_id: &str) -> Self {
        let q = &c.postprocess;
        Self {
            deadline: (c.infer.deadline_ms > 0).then(|| Duration::from_millis(c.infer.deadline_ms)),
            faults: c.infer.faults.clone(),
            last_words: c.infer.state_dir.join(format!("{node_id}.lastwords")),
            deaths: c.infer.state_dir.join(format!("{node_id}.deaths")),
            fault_ledger: c.infer.state_dir.clone(),
            crash_loop: c.infer.crash_loop.clone(),
            ort: OrtConfig {
                model: c.model.path.clone(),
                provider: c.model.provider,
                threads: c.model.threads,
                // Found from `ORT_DYLIB_PATH`, the project's .venv or python3.
                library: None,
                cuda: c.model.cuda,
                tensorrt: c.model.tensorrt.clone(),
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
        }
    }
}

/// Who this process is in the running dataflow.
struct Identity {
    node: String,
    dataflow: String,
    /// How many times dora restarted this node before this process (0: the first).
    restarts: u32,
}

impl Identity {
    /// From the config dora starts the node with (`infer`, a first start, when started by
    /// hand), read before connecting.
    fn from_dora() -> eyre::Result<Self> {
        Ok(vigil_msg::config::dora_node()
            .wrap_err("infer: reading its node config")?
            .map_or_else(
                || Self {
                    node: vigil_config::topology::node::INFER.to_owned(),
                    dataflow: "by-hand".to_owned(),
                    restarts: 0,
                },
                |c| Self {
                    node: c.node_id.to_string(),
                    dataflow: c.dataflow_id.to_string(),
                    restarts: c.restart_count,
                },
            ))
    }
}

/// Tells the monitor (`status`).
fn send_status(node: &mut DoraNode, status: &StatusMsg) -> eyre::Result<()> {
    let (params, array) = status.encode();
    node.send_output(
        DataId::from(port::STATUS.to_owned()),
        params,
        DoraArray::from(array),
    )
    .wrap_err("infer: sending status")
}

/// What the crash-loop breaker decided for a starting process.
enum Breaker {
    /// Go on: load the model, then connect.
    Go,
    /// It held back, connected meanwhile: load the model and serve on this connection.
    HeldBack(Box<(DoraNode, EventStream)>),
    /// The dataflow stopped while it held back.
    Stopped,
}

/// A process started again by dora records the death it replaces; when the breaker trips it
/// connects, says so on `status` and holds back, leaving early (cleanly) if the dataflow stops.
fn crash_loop_breaker(
    cfg: &Config,
    me: &Identity,
    previous: Option<&vigil_msg::FaultReport>,
) -> eyre::Result<Breaker> {
    if me.restarts == 0 {
        return Ok(Breaker::Go);
    }
    // The breaker must not be what stops the detector: a history it cannot read or write is
    // logged and taken as empty.
    let mut history = crash_loop::History::load(&cfg.deaths, &me.dataflow).unwrap_or_else(|e| {
        tracing::error!(path = %cfg.deaths.display(), error = %e, "infer: deaths not readable; counting afresh");
        crash_loop::History::new(&me.dataflow)
    });
    let now = vigil_msg::unix_now_ns() / 1_000_000;
    history.death(
        now,
        previous.map_or("died without last words", |p| p.cause.as_str()),
    );
    let pause = history.decide(&cfg.crash_loop, now);
    if let Err(e) = history.save(&cfg.deaths) {
        tracing::error!(path = %cfg.deaths.display(), error = %e, "infer: deaths not written");
    }
    let Some(pause) = pause else {
        return Ok(Breaker::Go);
    };
    tracing::error!(
        deaths = pause.deaths,
        window_s = pause.window_s,
        pause_ms = pause.pause_ms,
        cause = %pause.cause,
        "infer: crash loop; holding back before loading the model again"
    );
    let (mut node, mut events) = DoraNode::init_from_env().wrap_err("infer: connecting to dora")?;
    send_status(
        &mut node,
        &StatusMsg::Paused {
            deaths: pause.deaths,
            window_s: pause.window_s,
            pause_ms: pause.pause_ms,
            cause: pause.cause.clone(),
        },
    )?;
    let until = Instant::now() + Duration::from_millis(pause.pause_ms);
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        match events.recv_timeout(left) {
            // `None`: the event stream closed.
            None | Some(Event::Stop(_)) => return Ok(Breaker::Stopped),
            Some(Event::InputClosed { id }) if id.as_str() == port::TENSOR => {
                return Ok(Breaker::Stopped);
            }
            _ => {}
        }
    }
    Ok(Breaker::HeldBack(Box::new((node, events))))
}

pub fn main() -> eyre::Result<()> {
    // Everything that can fail on a bad config or model happens before connecting to dora:
    // a node that fails before it connects fails the dataflow, one that fails after goes
    // through the restart policy (forever on the device).
    let config = vigil_config::from_env()?;
    let me = Identity::from_dora()?;
    let mut cfg = Config::new(&config, &me.node);
    let previous = last_words::take(&cfg.last_words)
        .wrap_err_with(|| format!("infer: reading {}", cfg.last_words.display()))?;
    if let Some(p) = &previous {
        tracing::warn!(cause = %p.cause, seq = p.seq, "infer: the previous process died");
    }
    let connected = match crash_loop_breaker(&cfg, &me, previous.as_ref())? {
        Breaker::Go => None,
        Breaker::HeldBack(connected) => Some(*connected),
        Breaker::Stopped => {
            tracing::info!("infer: the dataflow stopped while holding back");
            return Ok(());
        }
    };
    let words = Arc::new(
        LastWords::arm(&cfg.last_words)
            .wrap_err_with(|| format!("infer: arming {}", cfg.last_words.display()))?,
    );
    let serving = Serving {
        previous,
        words: &words,
        ledger: Ledger::new(cfg.fault_ledger.clone(), &me.dataflow),
        connected,
    };
    if cfg.ort.provider.is_gpu() {
        let mut backend = GpuBackend::load(&cfg.ort)?;
        // The same checks as before the dataflow started, on the model as this process opened it.
        let resolved = Resolved::from_facts(config, ModelFacts::of(&backend))?;
        cfg.post.layout = Some(resolved.decoder);
        backend.bind(
            resolved.preprocess_config(),
            resolved.decoder,
            cfg.post.lowest_threshold(),
        )?;
        tracing::info!(
            device = backend.device_name(),
            context_ms = backend.load_times.device.as_millis(),
            session_ms = backend.load_times.session.as_millis(),
            letterbox_on_gpu = resolved.config.letterbox_on_gpu(),
            decode_on_gpu = backend.decodes_on_device() && resolved.config.letterbox_on_gpu(),
            "infer: the GPU path"
        );
        serve(backend, &cfg, &resolved, serving)
    } else {
        let backend = OrtBackend::load(&cfg.ort)?;
        let resolved = Resolved::from_facts(config, ModelFacts::of(&backend))?;
        cfg.post.layout = Some(resolved.decoder);
        serve(backend, &cfg, &resolved, serving)
    }
}

/// What a process brings to serving besides its model.
struct Serving<'a> {
    /// How its predecessor ended.
    previous: Option<vigil_msg::FaultReport>,
    words: &'a Arc<LastWords>,
    ledger: Ledger,
    /// Already connected to dora (it held back first).
    connected: Option<(DoraNode, EventStream)>,
}

/// Warms the loaded model up, arms the watchdog and the faults, connects to dora and serves.
fn serve<B: Backend>(
    mut backend: B,
    cfg: &Config,
    resolved: &Resolved,
    serving: Serving<'_>,
) -> eyre::Result<()> {
    let Serving {
        previous,
        words,
        ledger,
        connected,
    } = serving;
    // On the bare backend: no injected fault, no watchdog (a first run may build engines).
    let warm = Instant::now();
    // A CUDA graph is captured on the run after the first.
    let runs = if cfg.ort.cuda.cuda_graph { 2 } else { 1 };
    for _ in 0..runs {
        if let Err(e) = vigil_infer::warm_up(&mut backend) {
            tracing::warn!(error = %e, "infer: warm-up run failed");
        }
    }
    tracing::info!(input = ?backend.input(), provider = ?cfg.ort.provider, decoder = resolved.decoder.name(), warm_up_ms = warm.elapsed().as_millis(), "model loaded");
    let watchdog = cfg
        .deadline
        .map(|d| Watchdog::start(d, words.clone()))
        .transpose()
        .wrap_err("infer: starting the watchdog")?;
    let died_at = previous.as_ref().map(|p| p.seq);
    // Lock-step (strict order): a fault on its planned frame only, whichever process gets it.
    let order = vigil_msg::config::Lookup::parse_or(
        &vigil_msg::config::env_lookup(),
        vigil_config::topology::env::ORDER,
        vigil_config::topology::Order::Live,
    )?;
    let exact = order == vigil_config::topology::Order::Strict;
    let faulty = Faulty::new(backend, cfg.faults.clone(), died_at, exact).with_ledger(ledger);
    let mut detector = Detector::new(Watched::new(faulty, watchdog), cfg.post.clone());
    let (mut node, events) = match connected {
        Some(c) => c,
        None => DoraNode::init_from_env().wrap_err("infer: connecting to dora")?,
    };
    send_status(
        &mut node,
        &StatusMsg::Started {
            pid: std::process::id(),
            previous,
        },
    )?;
    let mut run = Run::new(Some(words));
    run.events(&mut detector, node, events)
}

/// How long a waiting process goes before it asks for work again.
const ASK_AGAIN: Duration = Duration::from_millis(100);

/// What one tensor message turns into: its detections, and a status when it was rejected.
#[derive(Debug)]
pub struct Outcome {
    pub detections: DetectionsMsg,
    pub status: Option<StatusMsg>,
}

/// The node's loop state, apart from dora: tensors in, messages out.
pub struct Run<'a> {
    /// Where a sticky device error is written before the process exits (`None` in tests,
    /// where a sticky error panics instead).
    words: Option<&'a LastWords>,
    inferred: u64,
    failed: u64,
    rejected: u64,
    first_error: Option<String>,
}

impl<'a> Run<'a> {
    #[must_use]
    pub fn new(words: Option<&'a LastWords>) -> Self {
        Self {
            words,
            inferred: 0,
            failed: 0,
            rejected: 0,
            first_error: None,
        }
    }

    fn events<B: Backend>(
        &mut self,
        detector: &mut Detector<Watched<Faulty<B>>>,
        mut node: DoraNode,
        mut events: EventStream,
    ) -> eyre::Result<()> {
        let detections = DataId::from(port::DETECTIONS.to_owned());
        let status = DataId::from(port::STATUS.to_owned());
        let ready_port = DataId::from(port::READY.to_owned());
        let mut malformed = 0u64;
        let mut ready = Ready {
            pid: std::process::id(),
            received: None,
        };
        let mut asked = Instant::now();
        let ask = |node: &mut DoraNode, ready: &Ready| -> eyre::Result<Instant> {
            let (params, array) = ready.encode();
            node.send_output(ready_port.clone(), params, DoraArray::from(array))
                .wrap_err("infer: sending ready")?;
            Ok(Instant::now())
        };
        ask(&mut node, &ready)?;
        while let Some(event) = events.recv() {
            let (id, metadata, data) = match event {
                Event::Input { id, metadata, data } => (id, metadata, data),
                Event::InputClosed { id } if id.as_str() == port::TENSOR => break,
                Event::Stop(_) => break,
                _ => continue,
            };
            if id.as_str() == port::TICK {
                // Ticks that queued up during an inference are not a wait.
                if asked.elapsed() >= ASK_AGAIN {
                    asked = ask(&mut node, &ready)?;
                }
                continue;
            }
            if id.as_str() != port::TENSOR {
                continue;
            }
            let tensor = match decode_tensor(&metadata.parameters, data.as_array().as_ref()) {
                Ok(t) => t,
                Err(e) => {
                    malformed += 1;
                    tracing::error!(error = %e, malformed, "infer: dropping malformed tensor message");
                    continue;
                }
            };
            let out = self.on_tensor(detector, &tensor);
            if let Some(s) = &out.status {
                let (params, array) = s.encode();
                node.send_output(status.clone(), params, DoraArray::from(array))
                    .wrap_err("infer: sending status")?;
            }
            let (params, array) = out.detections.encode();
            node.send_output(detections.clone(), params, DoraArray::from(array))
                .wrap_err("infer: sending detections")?;
            ready.received = Some(tensor.header.index);
            asked = ask(&mut node, &ready)?;
        }
        self.finish(malformed)
    }

    /// One tensor: its detections (none, `failed`, when the model could not run on it).
    /// Fatal faults, injected or real, end the process from in here.
    pub fn on_tensor<B: Backend>(
        &mut self,
        detector: &mut Detector<Watched<Faulty<B>>>,
        tensor: &TensorMsg<'_>,
    ) -> Outcome {
        let mut out = Outcome {
            detections: DetectionsMsg::not_inferred(
                tensor.header,
                FrameStatus::Failed,
                tensor.latency,
            ),
            status: None,
        };
        let seq = tensor.header.seq;
        let started = Instant::now();
        LastWords::working_on(seq);
        detector.backend_mut().inner_mut().set_frame(seq);
        let detected = match tensor.data {
            TensorData::F32(data) => detector.detect(&tensor.shape, data, &tensor.letterbox),
            TensorData::Rgb8(pixels) => detector.detect_frame(
                &RgbFrame {
                    width: tensor.header.width,
                    height: tensor.header.height,
                    pixels,
                },
                &tensor.letterbox,
            ),
        };
        match detected {
            Ok(dets) => {
                self.inferred += 1;
                (out.detections.status, out.detections.detections) = (FrameStatus::Inferred, dets);
            }
            Err(FrameError::NonFinite(what)) => {
                self.rejected += 1;
                self.first_error
                    .get_or_insert_with(|| format!("{what} holds NaN or inf"));
                tracing::error!(
                    seq,
                    rejected = self.rejected,
                    "infer: {what} holds NaN or inf; frame rejected"
                );
                out.status = Some(StatusMsg::Rejected {
                    header: tensor.header,
                    total: self.rejected,
                });
            }
            Err(FrameError::Backend(e)) if e.is_sticky() => {
                tracing::error!(seq, error = %e, "infer: sticky device error; exiting for a clean restart");
                match self.words {
                    Some(w) => w.exit(EXIT_STICKY_DEVICE),
                    None => panic!("sticky device error in a test: {e}"),
                }
            }
            Err(e) => {
                self.failed += 1;
                self.first_error.get_or_insert_with(|| e.to_string());
                tracing::error!(seq, error = %e, failed = self.failed, "infer: frame has no detections");
            }
        }
        out.detections.latency.infer_us = u32::try_from(started.elapsed().as_micros())
            .unwrap_or(u32::MAX)
            .max(1);
        out
    }

    /// The end of the stream: a run in which no frame could be inferred is a failure, not an
    /// empty result.
    fn finish(&self, malformed: u64) -> eyre::Result<()> {
        let (inferred, failed, rejected) = (self.inferred, self.failed, self.rejected);
        tracing::info!(inferred, failed, rejected, malformed, "infer finished");
        let attempted = inferred + failed + rejected;
        if attempted > 0 && inferred == 0 {
            let why = self.first_error.as_deref().unwrap_or("unknown");
            eyre::bail!(
                "infer: none of the {attempted} frames could be inferred; the first error: {why}"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model whose one output is a `[1, 1, 6]` box scoring the tensor's first value; a
    /// first value of -1 makes the run fail.
    struct Echo(vigil_infer::InputSpec);

    impl Backend for Echo {
        fn input(&self) -> &vigil_infer::InputSpec {
            &self.0
        }
        fn outputs(&self) -> &[vigil_detect::OutputShape] {
            &[]
        }
        fn run(
            &mut self,
            _: &[usize],
            data: &[f32],
        ) -> Result<Vec<vigil_detect::OutputTensor>, vigil_infer::InferError> {
            if data[0] < 0.0 {
                return Err(vigil_infer::InferError::Run("the model fell over".into()));
            }
            Ok(vec![vigil_detect::OutputTensor {
                name: "out".into(),
                shape: vec![1, 1, 6],
                data: vec![1.0, 1.0, 3.0, 3.0, data[0], 0.0],
            }])
        }
    }

    fn tensor(seq: u64, data: &[f32]) -> TensorMsg<'_> {
        TensorMsg {
            header: vigil_msg::FrameHeader {
                seq,
                index: seq,
                timestamp_ns: seq * 1000,
                width: 4,
                height: 4,
            },
            letterbox: vigil_detect::Letterbox::fit(4, 4, 4, 4, false, false),
            shape: vec![1, 4, 4, 3],
            layout: vigil_detect::TensorLayout::Nhwc,
            data: TensorData::F32(data),
            latency: vigil_msg::Latency::default(),
        }
    }

    /// The 4x4 NHWC input every fake model here takes.
    fn spec() -> vigil_infer::InputSpec {
        vigil_infer::InputSpec {
            name: "x".into(),
            shape: vec![1, 4, 4, 3],
            layout: vigil_detect::TensorLayout::Nhwc,
            size: Some((4, 4)),
        }
    }

    #[test]
    fn the_loop_infers_rejects_and_counts_without_dora() {
        let echo = Echo(spec());
        let plan: FaultPlan = "garbage@4".parse().expect("plan");
        let mut detector = Detector::new(
            Watched::new(Faulty::new(echo, plan, None, true), None),
            PostprocessConfig::default(),
        );
        let mut run = Run::new(None);
        let mut data = vec![0.9f32; 48];

        let out = run.on_tensor(&mut detector, &tensor(0, &data));
        assert!(out.detections.inferred() && out.status.is_none());
        assert_eq!(out.detections.detections.len(), 1);
        assert!(out.detections.latency.infer_us > 0);

        data[5] = f32::NAN;
        let nan = run.on_tensor(&mut detector, &tensor(2, &data));
        assert_eq!(nan.detections.status, FrameStatus::Failed);
        assert!(matches!(
            nan.status,
            Some(StatusMsg::Rejected { total: 1, .. })
        ));

        data[5] = 0.9;
        data[0] = -1.0;
        let failed = run.on_tensor(&mut detector, &tensor(3, &data));
        assert!(failed.detections.status == FrameStatus::Failed && failed.status.is_none());

        data[0] = 0.9;
        let garbage = run.on_tensor(&mut detector, &tensor(4, &data));
        assert!(matches!(
            garbage.status,
            Some(StatusMsg::Rejected { total: 2, .. })
        ));
        assert_eq!((run.inferred, run.failed, run.rejected), (1, 1, 2));
        run.finish(0).expect("one frame inferred: a success");
    }

    /// [`Echo`] on a device that a wild write breaks for good, as CUDA does; it takes decoded
    /// frames too, as the GPU backend does.
    struct Fragile(Echo, bool);

    impl Backend for Fragile {
        fn input(&self) -> &vigil_infer::InputSpec {
            self.0.input()
        }
        fn outputs(&self) -> &[vigil_detect::OutputShape] {
            &[]
        }
        fn run(
            &mut self,
            shape: &[usize],
            data: &[f32],
        ) -> Result<Vec<vigil_detect::OutputTensor>, vigil_infer::InferError> {
            if self.1 {
                return Err(vigil_infer::InferError::run(
                    "CUDA failure 700: an illegal memory access was encountered".into(),
                ));
            }
            self.0.run(shape, data)
        }
        /// A decoded frame: [`Echo`]'s box, scoring the first pixel / 255.
        fn run_frame(
            &mut self,
            frame: &RgbFrame<'_>,
        ) -> Result<vigil_infer::Outputs, vigil_infer::InferError> {
            let score = [f32::from(frame.pixels[0]) / 255.0];
            self.run(&[], &score).map(vigil_infer::Outputs::Raw)
        }
        fn break_device(&mut self) -> Result<(), vigil_infer::InferError> {
            self.1 = true;
            Ok(())
        }
    }

    #[test]
    fn illegal_breaks_the_device_and_the_real_error_that_follows_is_sticky() {
        let plan: FaultPlan = "illegal@2".parse().expect("plan");
        let mut faulty = Faulty::new(Fragile(Echo(spec()), false), plan.clone(), None, true);
        let data = vec![0.9f32; 48];
        faulty.set_frame(1);
        faulty.run(&[1, 4, 4, 3], &data).expect("before the fault");
        faulty.set_frame(2);
        let err = faulty.run(&[1, 4, 4, 3], &data).expect_err("broken");
        assert!(err.is_sticky(), "{err}");
        faulty.set_frame(3);
        assert!(faulty.run(&[1, 4, 4, 3], &data).is_err(), "for good");
        // A backend with no GPU context says so instead of pretending.
        let mut cpu = Faulty::new(Echo(spec()), plan, None, true);
        cpu.set_frame(2);
        let err = cpu.run(&[1, 4, 4, 3], &data).expect_err("no device");
        assert!(
            !err.is_sticky() && err.to_string().contains("illegal@"),
            "{err}"
        );
    }

    #[test]
    fn decoded_frames_go_to_the_device_path_with_faults_and_rejection() {
        let plan: FaultPlan = "garbage@2,illegal@3".parse().expect("plan");
        let mut detector = Detector::new(
            Watched::new(
                Faulty::new(Fragile(Echo(spec()), false), plan, None, true),
                None,
            ),
            PostprocessConfig::default(),
        );
        let mut run = Run::new(None);
        let pixels = vec![230u8; 4 * 4 * 3];
        let msg = |seq| TensorMsg {
            data: TensorData::Rgb8(&pixels),
            shape: vec![4, 4, 3],
            ..tensor(seq, &[])
        };
        let out = run.on_tensor(&mut detector, &msg(1));
        assert!(out.detections.inferred(), "{:?}", out.detections.status);
        assert!((out.detections.detections[0].score - 230.0 / 255.0).abs() < 1e-6);
        let garbage = run.on_tensor(&mut detector, &msg(2));
        assert!(matches!(
            garbage.status,
            Some(StatusMsg::Rejected { total: 1, .. })
        ));
        // illegal@3: the wild write, then the frame's own run meets the broken device.
        let backend = detector.backend_mut().inner_mut();
        backend.set_frame(3);
        let pixels3 = [0u8; 48];
        let err = backend
            .run_frame(&RgbFrame {
                width: 4,
                height: 4,
                pixels: &pixels3,
            })
            .expect_err("broken");
        assert!(err.is_sticky(), "{err}");
    }

    #[test]
    fn a_run_that_inferred_nothing_fails_naming_the_first_error() {
        let mut run = Run::new(None);
        run.failed = 3;
        run.first_error = Some("the model fell over".into());
        let err = run.finish(0).expect_err("nothing inferred").to_string();
        assert!(
            err.contains("none of the 3 frames") && err.contains("the model fell over"),
            "{err}"
        );
        Run::new(None)
            .finish(0)
            .expect("no frame attempted is no failure");
    }

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
        let cfg = Config::new(&c, "infer_1");
        assert_eq!(
            (cfg.post.threshold, cfg.post.layout),
            (0.4, Some(vigil_detect::Layout::BoxesScoreClass))
        );
        assert_eq!(cfg.post.nms.classes[&2].top_k, Some(5));
        assert_eq!(cfg.deadline, Some(Duration::from_secs(2)));
        assert_eq!(cfg.last_words, PathBuf::from("state/infer_1.lastwords"));
        c.infer.faults = "segv@3,hang@9".parse().expect("plan");
        c.infer.deadline_ms = 0;
        let cfg = Config::new(&c, "infer");
        assert_eq!((cfg.faults.fatal(), cfg.deadline), (Some(2), None));
    }
}
