//! The preprocess node: camera JPEG → letterboxed, normalised network tensor. Frames that are
//! not their turn for inference (`VIGIL_INTERVAL`, by sequence number) and frames that fail to
//! decode go on as empty tensors, so every frame still reaches the end of the pipeline.

use dora_node_api::dora_core::config::DataId;
use dora_node_api::{DoraArray, DoraNode, Event, EventStream};
use eyre::WrapErr;
use vigil_detect::{Letterbox, TensorLayout};
use vigil_gpu::{DeviceLetterbox, Gpu, GpuError, Precision};
use vigil_msg::config::{ConfigError, Lookup};
use vigil_msg::{Latency, TensorMsg, decode_frame};
use vigil_vision::{ColorFormat, JpegCodec, PreprocessConfig, Preprocessor, RgbImage};

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub pre: PreprocessConfig,
    /// Infer every k-th frame by sequence number (`seq % k == 0`).
    pub interval: u64,
    /// Letterbox on the GPU (`VIGIL_PREPROCESS_DEVICE=cuda`), else on the CPU.
    pub cuda: bool,
    /// Infer processes the frames are dealt to (`VIGIL_WORKERS`): with more than one, frame
    /// `index` goes out on `tensor_{index % workers}`, else on `tensor`.
    pub workers: u64,
}

impl Config {
    pub fn from_lookup(l: &impl Lookup) -> Result<Self, ConfigError> {
        let d = PreprocessConfig::default();
        let layout = match l
            .get("VIGIL_LAYOUT")
            .unwrap_or_default()
            .to_ascii_lowercase()
            .as_str()
        {
            "" | "nchw" => TensorLayout::Nchw,
            "nhwc" => TensorLayout::Nhwc,
            other => {
                return Err(ConfigError::new(
                    "VIGIL_LAYOUT",
                    other,
                    "expected nchw or nhwc",
                ));
            }
        };
        let color = match l
            .get("VIGIL_COLOR")
            .unwrap_or_default()
            .to_ascii_lowercase()
            .as_str()
        {
            "" | "rgb" => ColorFormat::Rgb,
            "bgr" => ColorFormat::Bgr,
            "gray" | "grey" => ColorFormat::Gray,
            other => {
                return Err(ConfigError::new(
                    "VIGIL_COLOR",
                    other,
                    "expected rgb, bgr or gray",
                ));
            }
        };
        let offsets = match l.get("VIGIL_OFFSETS") {
            None => d.offsets,
            Some(v) => parse_offsets(&v).ok_or_else(|| {
                ConfigError::new(
                    "VIGIL_OFFSETS",
                    &v,
                    "expected three numbers, `;` or `,` separated",
                )
            })?,
        };
        let scale: f32 = l.parse_or("VIGIL_SCALE", d.scale)?;
        if !scale.is_finite() {
            return Err(ConfigError::new(
                "VIGIL_SCALE",
                &scale.to_string(),
                "must be finite",
            ));
        }
        let size = |key: &str, default: u32| -> Result<u32, ConfigError> {
            let v = l.parse_or(key, default)?;
            if (1..=8192).contains(&v) {
                Ok(v)
            } else {
                Err(ConfigError::new(key, &v.to_string(), "expected 1..=8192"))
            }
        };
        let interval = l.parse_or("VIGIL_INTERVAL", 1u64)?;
        if interval == 0 {
            return Err(ConfigError::new(
                "VIGIL_INTERVAL",
                "0",
                "must be at least 1",
            ));
        }
        Ok(Self {
            pre: PreprocessConfig {
                net_w: size("VIGIL_NET_W", d.net_w)?,
                net_h: size("VIGIL_NET_H", d.net_h)?,
                layout,
                color,
                scale,
                offsets,
                keep_aspect: l.flag_or("VIGIL_KEEP_ASPECT", d.keep_aspect)?,
                symmetric_padding: l.flag_or("VIGIL_SYMMETRIC_PADDING", d.symmetric_padding)?,
                pad_value: l.parse_or("VIGIL_PAD_VALUE", d.pad_value)?,
            },
            interval,
            workers: match l.parse_or("VIGIL_WORKERS", 1u64)? {
                0 => return Err(ConfigError::new("VIGIL_WORKERS", "0", "must be at least 1")),
                w => w,
            },
            cuda: match l
                .get("VIGIL_PREPROCESS_DEVICE")
                .unwrap_or_default()
                .to_ascii_lowercase()
                .as_str()
            {
                "" | "cpu" => false,
                "cuda" | "gpu" => true,
                other => {
                    return Err(ConfigError::new(
                        "VIGIL_PREPROCESS_DEVICE",
                        other,
                        "expected cpu or cuda",
                    ));
                }
            },
        })
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

fn parse_offsets(v: &str) -> Option<[f32; 3]> {
    let parts: Vec<f32> = v
        .split([';', ','])
        .map(|p| p.trim().parse().ok())
        .collect::<Option<_>>()?;
    match parts.as_slice() {
        [a] => Some([*a; 3]),
        [a, b, c] => Some([*a, *b, *c]),
        _ => None,
    }
}

pub fn main() -> eyre::Result<()> {
    let cfg = Config::from_lookup(&vigil_msg::config::env_lookup())?;
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
            .map(|i| DataId::from(format!("tensor_{i}")))
            .collect()
    } else {
        vec![DataId::from("tensor".to_owned())]
    };
    while let Some(event) = events.recv() {
        let Event::Input { id, metadata, data } = event else {
            if matches!(event, Event::Stop(_)) {
                break;
            }
            continue;
        };
        if id.as_str() != "frame" {
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
    fn config_reads_every_knob() {
        let l = |k: &str| {
            Some(
                match k {
                    "VIGIL_NET_W" => "512",
                    "VIGIL_NET_H" => "320",
                    "VIGIL_LAYOUT" => "NHWC",
                    "VIGIL_COLOR" => "bgr",
                    "VIGIL_SCALE" => "1.0",
                    "VIGIL_OFFSETS" => "1;2;3",
                    "VIGIL_KEEP_ASPECT" => "false",
                    "VIGIL_PAD_VALUE" => "0",
                    "VIGIL_INTERVAL" => "3",
                    _ => return None,
                }
                .to_owned(),
            )
        };
        let c = Config::from_lookup(&l).expect("parses");
        assert_eq!(
            (c.pre.net_w, c.pre.net_h, c.pre.layout, c.pre.color),
            (512, 320, TensorLayout::Nhwc, ColorFormat::Bgr)
        );
        assert!(!c.cuda);
        let gpu = |k: &str| (k == "VIGIL_PREPROCESS_DEVICE").then(|| "cuda".to_owned());
        assert!(Config::from_lookup(&gpu).expect("parses").cuda);
        let bad = |k: &str| (k == "VIGIL_PREPROCESS_DEVICE").then(|| "tpu".to_owned());
        assert!(Config::from_lookup(&bad).is_err());
        assert_eq!(
            (
                c.pre.offsets,
                c.pre.keep_aspect,
                c.pre.pad_value,
                c.interval
            ),
            ([1.0, 2.0, 3.0], false, 0, 3)
        );
    }

    #[test]
    fn bad_values_name_their_key() {
        for (key, value) in [
            ("VIGIL_LAYOUT", "chw"),
            ("VIGIL_OFFSETS", "1;2"),
            ("VIGIL_NET_W", "0"),
            ("VIGIL_INTERVAL", "0"),
            ("VIGIL_PAD_VALUE", "300"),
        ] {
            let l = move |k: &str| (k == key).then(|| value.to_owned());
            let err = Config::from_lookup(&l).expect_err(key);
            assert!(err.to_string().contains(key), "{err}");
        }
    }
}
