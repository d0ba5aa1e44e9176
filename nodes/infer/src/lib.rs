//! The infer node: tensor → model → decode → NMS → detections in source pixels. Skipped frames
//! (empty tensors) pass through as empty, non-inferred detections so the tracker sees every
//! frame. This is the only node that touches an accelerator.

use std::path::PathBuf;

use dora_node_api::dora_core::config::DataId;
use dora_node_api::{DoraArray, DoraNode, Event, EventStream};
use eyre::WrapErr;
use vigil_detect::{Layout, NmsConfig, PostprocessConfig, postprocess};
use vigil_infer::{Backend, OrtBackend, OrtConfig, Provider};
use vigil_msg::config::{ConfigError, Lookup};
use vigil_msg::{DetectionsMsg, decode_tensor};

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub ort: OrtConfig,
    pub post: PostprocessConfig,
}

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
            other => {
                return Err(ConfigError::new(
                    "VIGIL_DECODER",
                    other,
                    "expected auto, ultralytics or boxes",
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
        Ok(Self {
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
                },
            },
        })
    }
}

pub fn main() -> eyre::Result<()> {
    let cfg = Config::from_lookup(&vigil_msg::config::env_lookup())?;
    let backend = OrtBackend::load(&cfg.ort)?;
    tracing::info!(input = ?backend.input(), provider = ?cfg.ort.provider, "model loaded");
    let (node, events) = DoraNode::init_from_env().wrap_err("infer: connecting to dora")?;
    run(&cfg, backend, node, events)
}

pub fn run(
    cfg: &Config,
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
        };
        if !tensor.is_skipped() {
            let result = backend
                .run(&tensor.shape, tensor.data)
                .map_err(|e| e.to_string())
                .and_then(|outputs| {
                    postprocess(&outputs, &cfg.post, &tensor.letterbox).map_err(|e| e.to_string())
                });
            match result {
                Ok(dets) => (msg.inferred, msg.detections) = (true, dets),
                Err(e) => {
                    failed += 1;
                    tracing::error!(seq = tensor.header.seq, error = %e, failed, "infer: frame has no detections");
                }
            }
        }
        let (params, array) = msg.encode();
        node.send_output(output.clone(), params, DoraArray::from(array))
            .wrap_err("infer: sending detections")?;
    }
    tracing::info!(failed, "infer finished");
    Ok(())
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
    }
}
