//! The facts about the model that more than one node needs, derived from the model itself by
//! one function: its input size and layout, and the decoder that reads its outputs.

use std::path::PathBuf;

use vigil_detect::{Layout, LayoutMismatch, OutputShape, TensorLayout, choose_layout};
use vigil_infer::{Backend, InferError, InputSpec, OrtBackend, OrtConfig, Provider};

use crate::Config;

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(transparent)]
    Model(#[from] InferError),
    #[error("{model}: {mismatch}")]
    Decoder {
        model: PathBuf,
        mismatch: LayoutMismatch,
    },
    #[error("{model}: {key} is {configured} but the model's input {input:?} says {model_says}")]
    Disagrees {
        model: PathBuf,
        key: &'static str,
        configured: String,
        input: Vec<i64>,
        model_says: String,
    },
    #[error(
        "{model}: the input size is dynamic ({input:?}); set preprocess.net_w and preprocess.net_h"
    )]
    DynamicSize { model: PathBuf, input: Vec<i64> },
    #[error(
        "{model}: model.cuda.cuda_graph needs fixed output shapes; {output} has dynamic ones (set cuda_graph: false)"
    )]
    CudaGraph { model: PathBuf, output: String },
}

/// What the model says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFacts {
    pub input: InputSpec,
    pub outputs: Vec<OutputShape>,
}

impl ModelFacts {
    #[must_use]
    pub fn of(backend: &impl Backend) -> Self {
        Self {
            input: backend.input().clone(),
            outputs: backend.outputs().to_vec(),
        }
    }
}

/// A configuration with the model's facts derived and checked against it.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub config: Config,
    pub net_w: u32,
    pub net_h: u32,
    pub layout: TensorLayout,
    /// The decoder that reads the model's outputs.
    pub decoder: Layout,
    pub model: ModelFacts,
}

/// Opens the model once (ONNX Runtime on the CPU, one thread, whatever provider the config
/// runs it on later) and derives the facts with [`Resolved::from_facts`].
pub fn resolve(config: Config) -> Result<Resolved, ResolveError> {
    let backend = OrtBackend::load(&OrtConfig {
        model: config.model.path.clone(),
        provider: Provider::Cpu,
        threads: 1,
        library: None,
        ..OrtConfig::default()
    })?;
    let facts = ModelFacts::of(&backend);
    Resolved::from_facts(config, facts)
}

impl Resolved {
    /// The letterbox and normalisation the `preprocess` section and the model's input make
    /// (the same wherever it runs: the preprocess node on the CPU or the infer node's GPU).
    #[must_use]
    pub fn preprocess_config(&self) -> vigil_vision::PreprocessConfig {
        let p = &self.config.preprocess;
        vigil_vision::PreprocessConfig {
            net_w: self.net_w,
            net_h: self.net_h,
            layout: self.layout,
            color: p.color,
            scale: p.scale,
            offsets: p.offsets,
            keep_aspect: p.keep_aspect,
            symmetric_padding: p.symmetric_padding,
            pad_value: p.pad_value,
            reduced_decode: p.reduced_decode,
        }
    }

    /// Input size and layout from the model (from the config where the model leaves them
    /// dynamic; where both give them they must agree), and the decoder checked against the
    /// declared output shapes.
    pub fn from_facts(config: Config, model: ModelFacts) -> Result<Self, ResolveError> {
        let path = config.model.path.clone();
        let p = &config.preprocess;
        let input = &model.input;
        let disagrees = |key, configured: String, model_says: String| ResolveError::Disagrees {
            model: path.clone(),
            key,
            configured,
            input: input.shape.clone(),
            model_says,
        };
        let (net_w, net_h) = match (input.size, p.net_w, p.net_h) {
            (Some((w, h)), cw, ch) => {
                for (key, c, m) in [("preprocess.net_w", cw, w), ("preprocess.net_h", ch, h)] {
                    if let Some(c) = c
                        && c.get() != m
                    {
                        return Err(disagrees(key, c.get().to_string(), m.to_string()));
                    }
                }
                (w, h)
            }
            (None, Some(w), Some(h)) => (w.get(), h.get()),
            (None, _, _) => {
                return Err(ResolveError::DynamicSize {
                    model: path,
                    input: input.shape.clone(),
                });
            }
        };
        if let Some(l) = p.layout
            && l != input.layout
        {
            return Err(disagrees(
                "preprocess.layout",
                l.as_str().to_owned(),
                input.layout.as_str().to_owned(),
            ));
        }
        // The model's image input has three channels (the only kind vigil opens).
        if p.color.channels() != 3 {
            return Err(disagrees(
                "preprocess.color",
                format!("{:?} ({} channel)", p.color, p.color.channels()).to_lowercase(),
                "3 channels".to_owned(),
            ));
        }
        if config.model.cuda.cuda_graph
            && config.model.provider.is_gpu()
            && let Some(o) = model
                .outputs
                .iter()
                .find(|o| o.dims.iter().any(Option::is_none))
        {
            return Err(ResolveError::CudaGraph {
                model: path,
                output: o.to_string(),
            });
        }
        let decoder =
            choose_layout(&model.outputs, config.model.decoder.layout()).map_err(|mismatch| {
                ResolveError::Decoder {
                    model: path.clone(),
                    mismatch,
                }
            })?;
        Ok(Self {
            net_w,
            net_h,
            layout: input.layout,
            decoder,
            model,
            config,
        })
    }
}
