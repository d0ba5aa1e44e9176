//! The preprocess node: camera JPEG → letterboxed, normalised network tensor. Frames that are
//! not their turn for inference (`preprocess.interval`, by sequence number) and frames that fail to
//! decode go on as empty tensors, so every frame still reaches the end of the pipeline.

use dora_node_api::dora_core::config::DataId;
use dora_node_api::{DoraArray, DoraNode, Event, EventStream};
use eyre::WrapErr;
use vigil_config::topology::{self, port};
use vigil_config::{Device, Resolved};
use vigil_detect::Letterbox;
use vigil_gpu::{DeviceLetterbox, Gpu, GpuError, Precision};
use vigil_msg::config::{ConfigError, Lookup};
use vigil_msg::{Latency, TensorMsg, decode_frame};
use vigil_vision::{JpegCodec, PreprocessConfig, Preprocessor, RgbImage};

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub pre: PreprocessConfig,
    /// Infer every k-th frame by sequence number (`seq % k == 0`).
    pub interval: u64,
    /// Letterbox on the GPU (`preprocess.device: cuda`), else on the CPU.
    pub cuda: bool,
    /// Infer processes the frames are dealt to (a graph fact, `VIGIL_WORKERS`): with more
    /// than one, frame `index` goes out on `tensor_{index % workers}`, else on `tensor`.
    pub workers: u64,
}

impl Config {
    /// The `preprocess` section, with the network input the model fixes.
    #[must_use]
    pub fn new(r: &Resolved, workers: u64) -> Self {
        let p = &r.config.preprocess;
        Self {
            pre: PreprocessConfig {
                net_w: r.net_w,
                net_h: r.net_h,
                layout: r.layout,
                color: p.color,
                scale: p.scale,
                offsets: p.offsets,
                keep_aspect: p.keep_aspect,
                symmetric_padding: p.symmetric_padding,
                pad_value: p.pad_value,
            },
            interval: p.interval.get(),
            cuda: p.device == Device::Cuda,
            workers,
        }
    }

    /// The graph's facts for this node: how many infer workers it deals to.
    pub fn workers(l: &impl Lookup) -> Result<u64, ConfigError> {
        match l.parse_or(topology::env::WORKERS, 1u64)? {
            0 => Err(ConfigError::new(
                topology::env::WORKERS,
                "0",
                "must be at least 1",
            )),
            w => Ok(w),
        }
    }
}

/// The GPU letterbox, with its state for the current frame size.
struct GpuPath {
    gpu: Gpu,
    codec: JpegCodec,
    frame: RgbImage,
    state: Option<DeviceLetterbox>,
}

impl GpuPath {
    /// The GPU path, or `None` (said once in the log) where there is no usable GPU.
    fn open() -> Option<Self> {
        match Gpu::open(0).and_then(|gpu| {
            let codec = JpegCodec::new(90).map_err(|e| GpuError::Input(e.to_string()))?;
            Ok(Self {
                gpu,
                codec,
                frame: RgbImage::default(),
                state: None,
            })
        }) {
            Ok(p) => {
                tracing::info!(device = p.gpu.name(), "preprocess: letterbox on the GPU");
                Some(p)
            }
            Err(e) => {
                tracing::warn!(error = %e, "preprocess: no GPU path; letterbox on the CPU");
                None
            }
        }
    }

    /// JPEG (CPU) → letterbox on the device → the tensor on the host, as the CPU path
    /// makes it (bit-identical).
    fn run(
        &mut self,
        cfg: &PreprocessConfig,
        jpeg: &[u8],
        out: &mut Vec<f32>,
    ) -> eyre::Result<Letterbox> {
        self.codec.decode_into(jpeg, &mut self.frame)?;
        let (w, h) = (self.frame.width, self.frame.height);
        let state = match &mut self.state {
            Some(s) if s.source_size() == (w, h) => s,
            slot => slot.insert(self.gpu.letterbox_for(w, h, cfg, Precision::F32)?),
        };
        self.gpu.letterbox(state, &self.frame.pixels)?;
        self.gpu.download_into(state, out)?;
        Ok(state.letterbox)
    }
}

pub fn main() -> eyre::Result<()> {
    let resolved = vigil_config::resolve(vigil_config::from_env()?)?;
    let cfg = Config::new(
        &resolved,
        Config::workers(&vigil_msg::config::env_lookup())?,
    );
    let (node, events) = DoraNode::init_from_env().wrap_err("preprocess: connecting to dora")?;
    run(&cfg, node, events)
}

pub fn run(cfg: &Config, mut node: DoraNode, mut events: EventStream) -> eyre::Result<()> {
    let mut pre = Preprocessor::new(cfg.pre.clone())?;
    let mut gpu = if cfg.cuda { GpuPath::open() } else { None };
    let mut tensor = Vec::new();
    let (mut corrupt, mut bad_messages) = (0u64, 0u64);
    let outputs: Vec<DataId> = if cfg.workers > 1 {
        (0..cfg.workers)
            .map(|i| DataId::from(topology::worker_port(port::TENSOR, i as usize)))
            .collect()
    } else {
        vec![DataId::from(port::TENSOR.to_owned())]
    };
    while let Some(event) = events.recv() {
        let Event::Input { id, metadata, data } = event else {
            if matches!(event, Event::Stop(_)) {
                break;
            }
            continue;
        };
        if id.as_str() != port::FRAME {
            continue;
        }
        let frame = match decode_frame(&metadata.parameters, data.as_array().as_ref()) {
            Ok(f) => f,
            Err(e) => {
                bad_messages += 1;
                tracing::error!(error = %e, bad_messages, "preprocess: dropping malformed frame message");
                continue;
            }
        };
        let h = frame.header;
        let mut letterbox = Letterbox::fit(
            h.width,
            h.height,
            cfg.pre.net_w,
            cfg.pre.net_h,
            cfg.pre.keep_aspect,
            cfg.pre.symmetric_padding,
        );
        tensor.clear();
        let started = std::time::Instant::now();
        if h.seq % cfg.interval == 0 {
            let done = match &mut gpu {
                Some(g) => match g.run(&cfg.pre, frame.jpeg, &mut tensor) {
                    Err(e)
                        if e.downcast_ref::<GpuError>()
                            .is_some_and(GpuError::is_sticky) =>
                    {
                        // The context is gone: exit so dora restarts this node afresh.
                        return Err(e.wrap_err("preprocess: sticky CUDA error"));
                    }
                    other => other,
                },
                None => pre.run_jpeg(frame.jpeg, &mut tensor).map_err(Into::into),
            };
            match done {
                Ok(lb) => letterbox = lb,
                Err(e) => {
                    corrupt += 1;
                    tensor.clear();
                    tracing::error!(seq = h.seq, error = %e, corrupt, "preprocess: frame skipped");
                }
            }
        }
        let msg = TensorMsg {
            header: h,
            letterbox,
            shape: cfg.pre.shape(),
            layout: cfg.pre.layout,
            data: &tensor,
            latency: Latency {
                preprocess_us: if tensor.is_empty() {
                    0
                } else {
                    micros(started.elapsed())
                },
                infer_us: 0,
            },
        };
        let (params, array) = msg.encode();
        let output = &outputs[(h.index % outputs.len() as u64) as usize];
        node.send_output(output.clone(), params, DoraArray::from(array))
            .wrap_err("preprocess: sending tensor")?;
    }
    tracing::info!(corrupt, bad_messages, "preprocess finished");
    Ok(())
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
        c.preprocess.device = Device::Cuda;
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
        let cfg = Config::new(&r, 2);
        assert_eq!(cfg.pre.shape(), [1, 320, 512, 3]);
        assert_eq!((cfg.interval, cfg.cuda, cfg.workers), (3, true, 2));
    }

    #[test]
    fn workers_are_a_graph_fact_and_zero_is_refused() {
        assert_eq!(Config::workers(&|_: &str| None), Ok(1));
        let two = |k: &str| (k == topology::env::WORKERS).then(|| "2".to_owned());
        assert_eq!(Config::workers(&two), Ok(2));
        let zero = |k: &str| (k == topology::env::WORKERS).then(|| "0".to_owned());
        assert!(Config::workers(&zero).is_err());
    }
}
