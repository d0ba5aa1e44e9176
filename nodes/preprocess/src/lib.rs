//! The preprocess node: camera JPEG → letterboxed, normalised network tensor (or, when the
//! letterbox runs on the infer node's GPU, the decoded RGB frame), paced by the
//! detector ([`pacer`]): a frame is decoded and letterboxed only when an infer process has
//! asked for work. Every frame not sent to the detector — not its turn
//! (`preprocess.interval`, by sequence number), the detector busy or down, a JPEG that does not
//! decode — goes to the track node on `skipped`, with the reason, so every frame still
//! reaches the end of the pipeline and says what happened to it.

pub mod pacer;

use dora_node_api::dora_core::config::DataId;
use dora_node_api::{DoraArray, DoraNode, Event, EventStream};
use eyre::WrapErr;
use vigil_config::Resolved;
use vigil_config::topology::{self, Order, port};
use vigil_detect::Letterbox;
use vigil_msg::config::{ConfigError, Lookup};
use vigil_msg::{
    DetectionsMsg, Encode, FrameHeader, FrameStatus, Latency, TensorData, TensorMsg, decode_frame,
    decode_ready,
};

pub use pacer::{Action, Mode, Pacer};
use vigil_vision::{PreprocessConfig, Preprocessor};

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub pre: PreprocessConfig,
    /// Infer every k-th frame by sequence number (`seq % k == 0`).
    pub interval: u64,
    /// The infer node letterboxes on its GPU: send decoded frames, not tensors.
    pub gpu_letterbox: bool,
    /// Infer processes asking for frames (a graph fact: this node's `tensor` outputs): with
    /// more than one, process K asks on `ready_K` and gets its frames on `tensor_K`.
    pub workers: u64,
    /// Of those, held in reserve (`infer.standby`).
    pub standby: u64,
    /// Live: a frame held longer than this by an active process goes to a standby.
    pub takeover_ns: Option<u64>,
    /// Live (the newest frame) or strict (every frame): the graph's order, `VIGIL_ORDER`.
    pub mode: Mode,
}

impl Config {
    /// The `preprocess` section, with the network input the model fixes.
    #[must_use]
    pub fn new(r: &Resolved, workers: u64, order: Order) -> Self {
        let infer = &r.config.infer;
        Self {
            pre: r.preprocess_config(),
            interval: r.config.preprocess.interval.get(),
            gpu_letterbox: r.config.letterbox_on_gpu(),
            workers,
            standby: infer.standby.into(),
            takeover_ns: (infer.takeover_ms > 0)
                .then(|| infer.takeover_ms.saturating_mul(1_000_000)),
            mode: match order {
                Order::Live => Mode::Live,
                Order::Strict => Mode::Strict,
            },
        }
    }

    /// The graph's fact for this node: how many infer processes it deals to (one `tensor`
    /// output each), and that at least one of them is left when `standby` stand by.
    pub fn workers<'a>(
        outputs: impl IntoIterator<Item = &'a str>,
        standby: u32,
    ) -> Result<u64, ConfigError> {
        let n = outputs
            .into_iter()
            .filter(|o| topology::split_worker_port(o).0 == port::TENSOR)
            .count() as u64;
        if n == 0 {
            return Err(ConfigError::new(
                "outputs",
                "",
                "the preprocess node has no `tensor` output",
            ));
        }
        if u64::from(standby) >= n {
            return Err(ConfigError::new(
                "infer.standby",
                &standby.to_string(),
                format!(
                    "the dataflow has {n} infer process(es); at least one must be active (add infer_K nodes or lower infer.standby)"
                ),
            ));
        }
        Ok(n)
    }
}

pub fn main() -> eyre::Result<()> {
    let resolved = vigil_config::resolve(vigil_config::from_env()?)?;
    let env = vigil_msg::config::env_lookup();
    let order = env.parse_or(topology::env::ORDER, Order::Live)?;
    let outputs: Vec<String> = vigil_msg::config::dora_node()?.map_or_else(
        || vec![port::TENSOR.to_owned()],
        |c| {
            c.run_config
                .outputs
                .iter()
                .map(ToString::to_string)
                .collect()
        },
    );
    let workers = Config::workers(
        outputs.iter().map(String::as_str),
        resolved.config.infer.standby,
    )?;
    let cfg = Config::new(&resolved, workers, order);
    let (node, events) = DoraNode::init_from_env().wrap_err("preprocess: connecting to dora")?;
    run(&cfg, node, events)
}

/// What the node counts, logged at the end.
#[derive(Debug, Default)]
struct Counts {
    /// Frames sent to an infer process.
    sent: u64,
    skipped: [u64; FrameStatus::ALL.len()],
    bad_messages: u64,
}

pub fn run(cfg: &Config, mut node: DoraNode, mut events: EventStream) -> eyre::Result<()> {
    let mut pre = Preprocessor::new(cfg.pre.clone())?;
    if cfg.gpu_letterbox {
        tracing::info!("preprocess: sending decoded frames; the infer node letterboxes on its GPU");
        if cfg.pre.reduced_decode {
            tracing::warn!(
                "preprocess: reduced_decode applies to the CPU letterbox only; frames are decoded in full for the GPU"
            );
        }
    }
    let mut tensor = Vec::new();
    let mut counts = Counts::default();
    let workers = usize::try_from(cfg.workers).unwrap_or(1);
    let tensors: Vec<DataId> = (0..workers)
        .map(|k| DataId::from(topology::port_of(port::TENSOR, k, workers)))
        .collect();
    let readies: Vec<String> = (0..workers)
        .map(|k| topology::port_of(port::READY, k, workers))
        .collect();
    let skipped = DataId::from(port::SKIPPED.to_owned());
    let roles_port = DataId::from(port::ROLES.to_owned());
    // A waiting frame is its payload (shared memory, not copied) and its capture stamp.
    let mut pacer: Pacer<(DoraArray, u64)> = Pacer::new(cfg.mode, cfg.interval, workers)
        .with_standby(usize::try_from(cfg.standby).unwrap_or(0), cfg.takeover_ns);
    // infer_K is process K (`infer` alone when there is one).
    let process_of = |node: &str| -> Option<usize> {
        if workers == 1 {
            return (node == topology::node::INFER).then_some(0);
        }
        (0..workers).find(|&k| topology::worker_id(k) == node)
    };
    let mut actions = Vec::new();
    while let Some(event) = events.recv() {
        match event {
            Event::Input { id, metadata, data } => {
                let p = &metadata.parameters;
                if id.as_str() == port::FRAME {
                    let captured = decode_frame(p, data.as_array().as_ref())
                        .map(|f| (f.header, f.captured_unix_ns));
                    match captured {
                        Ok((h, captured)) => pacer.frame(h, (data, captured), &mut actions),
                        Err(e) => {
                            counts.bad_messages += 1;
                            tracing::error!(error = %e, bad_messages = counts.bad_messages, "preprocess: dropping malformed frame message");
                        }
                    }
                } else if let Some(k) = readies.iter().position(|r| r == id.as_str()) {
                    match decode_ready(p) {
                        Ok(r) => pacer.ready(k, r, &mut actions),
                        Err(e) => tracing::error!(error = %e, "preprocess: malformed ready"),
                    }
                }
            }
            // The frames ended: nothing more to wait for (the infer processes' readies never
            // close by themselves, they wait for this node's tensors to close).
            Event::InputClosed { id } if id.as_str() == port::FRAME => break,
            Event::InputClosed { id } => {
                if let Some(k) = readies.iter().position(|r| r == id.as_str()) {
                    tracing::warn!(worker = id.as_str(), "preprocess: an infer process is gone");
                    pacer.down(k, &mut actions);
                }
            }
            // dora says so the moment an infer process exits (before it restarts it): its
            // frame is lost, the next goes to a standby.
            Event::NodeRestarted { id }
            | Event::NodeFailed {
                source_node_id: id, ..
            } => {
                if let Some(k) = process_of(id.as_ref()) {
                    tracing::warn!(node = %id, "preprocess: an infer process died");
                    pacer.down(k, &mut actions);
                }
            }
            Event::Stop(_) => break,
            _ => {}
        }
        if let Some(roles) = pacer.roles_changed() {
            tracing::info!(roles = ?roles, "preprocess: infer processes");
            let (params, array) = vigil_msg::encode_roles(&roles);
            node.send_output(roles_port.clone(), params, DoraArray::from(array))
                .wrap_err("preprocess: sending roles")?;
        }
        // A frame that fails to prepare frees its worker, which may take the next at once.
        while !actions.is_empty() {
            for action in std::mem::take(&mut actions) {
                match action {
                    Action::Skip {
                        header,
                        status,
                        behind,
                    } => {
                        send_skip(&mut node, &skipped, &mut counts, header, status, behind)?;
                    }
                    Action::Dispatch {
                        worker,
                        header,
                        frame,
                    } => {
                        let started = std::time::Instant::now();
                        let (data, captured_unix_ns) = frame;
                        let made = prepare(cfg, &mut pre, &data, &mut tensor);
                        let (letterbox, shape, payload) = match made {
                            Ok(made) => made,
                            Err(e) => {
                                let status = FrameStatus::BadFrame;
                                send_skip(&mut node, &skipped, &mut counts, header, status, None)?;
                                let bad = counts.skipped[status as usize];
                                tracing::error!(seq = header.seq, error = %e, bad_frames = bad, "preprocess: frame not inferred");
                                pacer.failed(worker, &mut actions);
                                continue;
                            }
                        };
                        counts.sent += 1;
                        let msg = TensorMsg {
                            header,
                            letterbox,
                            shape,
                            layout: cfg.pre.layout,
                            data: payload,
                            latency: Latency {
                                captured_unix_ns,
                                preprocess_us: micros(started.elapsed()),
                                ..Latency::default()
                            },
                        };
                        let (params, array) = msg.encode();
                        node.send_output(tensors[worker].clone(), params, DoraArray::from(array))
                            .wrap_err("preprocess: sending tensor")?;
                    }
                }
            }
        }
    }
    pacer.finish(&mut actions);
    for action in actions {
        if let Action::Skip {
            header,
            status,
            behind,
        } = action
        {
            send_skip(&mut node, &skipped, &mut counts, header, status, behind)?;
        }
    }
    let by_status: Vec<String> = FrameStatus::ALL
        .iter()
        .zip(counts.skipped)
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| format!("{}={n}", s.as_str()))
        .collect();
    tracing::info!(
        sent = counts.sent,
        not_sent = by_status.join(" "),
        lost_on_the_way = pacer.lost(),
        takeovers = pacer.takeovers(),
        bad_messages = counts.bad_messages,
        "preprocess finished"
    );
    Ok(())
}

/// Tells the track node, and counts, that a frame is not inferred and why.
fn send_skip(
    node: &mut DoraNode,
    port: &DataId,
    counts: &mut Counts,
    header: FrameHeader,
    status: FrameStatus,
    behind: Option<u64>,
) -> eyre::Result<()> {
    counts.skipped[status as usize] += 1;
    let msg = DetectionsMsg {
        behind,
        ..DetectionsMsg::not_inferred(header, status, Latency::default())
    };
    let (params, array) = msg.encode();
    node.send_output(port.clone(), params, DoraArray::from(array))
        .wrap_err("preprocess: sending a skipped frame")
}

/// The frame's tensor (or, for the GPU letterbox, its decoded pixels) with its shape and
/// letterbox, or why the frame cannot be inferred (a JPEG that does not decode).
fn prepare<'a>(
    cfg: &Config,
    pre: &'a mut Preprocessor,
    data: &DoraArray,
    out: &'a mut Vec<f32>,
) -> eyre::Result<(Letterbox, Vec<usize>, TensorData<'a>)> {
    let array = data.as_array();
    let frame = vigil_msg::frame_bytes(array.as_ref())?;
    if cfg.gpu_letterbox {
        let (img, lb) = pre.decode_jpeg(frame)?;
        let shape = vec![img.height as usize, img.width as usize, 3];
        return Ok((lb, shape, TensorData::Rgb8(&img.pixels)));
    }
    out.clear();
    let lb = pre.run_jpeg(frame, out)?;
    Ok((lb, cfg.pre.shape(), TensorData::F32(out)))
}

fn micros(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_and_the_model_make_the_config() {
        let mut c = vigil_config::Config::default();
        c.model.path = "m.onnx".into();
        c.preprocess.color = vigil_vision::ColorFormat::Bgr;
        c.preprocess.interval = std::num::NonZeroU64::new(3).expect("3");
        c.preprocess.device = vigil_config::Device::Cuda;
        let r = Resolved {
            config: c,
            net_w: 512,
            net_h: 320,
            layout: vigil_detect::TensorLayout::Nhwc,
            decoder: vigil_detect::Layout::BoxesScoreClass,
            model: vigil_config::ModelFacts {
                input: vigil_infer::InputSpec {
                    name: "x".into(),
                    shape: vec![1, 320, 512, 3],
                    layout: vigil_detect::TensorLayout::Nhwc,
                    size: Some((512, 320)),
                },
                outputs: Vec::new(),
            },
        };
        let cfg = Config::new(&r, 2, Order::Strict);
        assert_eq!(cfg.pre.shape(), [1, 320, 512, 3]);
        assert_eq!(
            (cfg.interval, cfg.gpu_letterbox, cfg.workers, cfg.mode),
            (3, true, 2, Mode::Strict)
        );
    }

    #[test]
    fn workers_are_the_graphs_tensor_outputs_and_one_must_stay_active() {
        let two = ["skipped", "tensor_0", "tensor_1", "roles"];
        assert_eq!(Config::workers(two, 1), Ok(2));
        assert_eq!(Config::workers(["tensor", "skipped"], 0), Ok(1));
        let err = Config::workers(["tensor", "skipped"], 1).expect_err("none active");
        assert_eq!(err.key, "infer.standby");
        assert!(err.reason.contains("1 infer process"), "{err}");
        assert!(Config::workers(["skipped", "tensor_x", "tensors"], 0).is_err());
    }
}
