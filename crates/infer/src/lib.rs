//! Inference behind a small trait: load a model, run a tensor, get raw outputs. The ONNX
//! Runtime backend loads `libonnxruntime.so` at run time (from the `onnxruntime` Python wheel
//! the setup step installs, found without any variable set by hand) and picks its execution
//! provider from config.

mod detector;
mod library;

use std::path::{Path, PathBuf};

pub use detector::{Detector, FrameError, warm_up};
pub use library::find_onnxruntime;
use ort::session::Session;
use ort::value::TensorRef;
use vigil_detect::{OutputShape, OutputTensor, TensorLayout};
/// The sticky-error table, shared with the GPU crate.
pub use vigil_device as device;

#[derive(Debug, thiserror::Error)]
pub enum InferError {
    #[error(
        "ONNX Runtime library not found; looked in: {looked}. Run the setup command or set ORT_DYLIB_PATH"
    )]
    LibraryNotFound { looked: String },
    #[error("loading ONNX Runtime from {path}: {detail}")]
    Library { path: PathBuf, detail: String },
    #[error("loading model {path}: {detail}")]
    Model { path: PathBuf, detail: String },
    #[error(
        "model {path} input `{name}` is {found}; vigil feeds one float32 image tensor [1,3,H,W] or [1,H,W,3]"
    )]
    UnsupportedInput {
        path: PathBuf,
        name: String,
        found: String,
    },
    #[error("input tensor has shape {got:?}, the model wants {expected:?}")]
    BadInputShape { expected: Vec<i64>, got: Vec<usize> },
    #[error("inference failed: {0}")]
    Run(String),
    /// The device reported an error that leaves its context unusable (see [`device`]).
    #[error("sticky device error, the process must restart: {0}")]
    StickyDevice(String),
    #[error("unknown execution provider `{0}` (cpu, cuda, tensorrt)")]
    UnknownProvider(String),
}

/// Where a model runs.
impl InferError {
    /// A run error, classified: sticky device errors apart from the rest.
    #[must_use]
    pub fn run(message: String) -> Self {
        if device::is_sticky_message(&message) {
            Self::StickyDevice(message)
        } else {
            Self::Run(message)
        }
    }

    /// True when no retry in this process can succeed.
    #[must_use]
    pub fn is_sticky(&self) -> bool {
        matches!(self, Self::StickyDevice(_))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Cpu,
    Cuda,
    #[serde(alias = "trt")]
    TensorRt,
}

impl std::str::FromStr for Provider {
    type Err = InferError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda),
            "tensorrt" | "trt" => Ok(Self::TensorRt),
            other => Err(InferError::UnknownProvider(other.to_owned())),
        }
    }
}

/// The model's single image input, as read from the model itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSpec {
    pub name: String,
    /// Dimensions, `-1` where dynamic.
    pub shape: Vec<i64>,
    pub layout: TensorLayout,
    /// Network width and height; `None` where the model leaves them dynamic.
    pub size: Option<(u32, u32)>,
}

impl InputSpec {
    fn from_shape(name: &str, shape: &[i64]) -> Option<Self> {
        let (layout, h, w) = match *shape {
            [_, 3, h, w] => (TensorLayout::Nchw, h, w),
            [_, h, w, 3] => (TensorLayout::Nhwc, h, w),
            _ => return None,
        };
        let size = (h > 0 && w > 0).then_some((w as u32, h as u32));
        Some(Self {
            name: name.to_owned(),
            shape: shape.to_vec(),
            layout,
            size,
        })
    }
}

/// A loaded model.
pub trait Backend {
    fn input(&self) -> &InputSpec;
    /// The outputs as the model declares them, in the model's order.
    fn outputs(&self) -> &[OutputShape];
    /// Runs one tensor of `shape` and returns every output, in the model's order.
    fn run(&mut self, shape: &[usize], data: &[f32]) -> Result<Vec<OutputTensor>, InferError>;
}

/// A borrowed backend is one too, so a [`Detector`] can be made around one for a while.
impl<B: Backend + ?Sized> Backend for &mut B {
    fn input(&self) -> &InputSpec {
        (**self).input()
    }
    fn outputs(&self) -> &[OutputShape] {
        (**self).outputs()
    }
    fn run(&mut self, shape: &[usize], data: &[f32]) -> Result<Vec<OutputTensor>, InferError> {
        (**self).run(shape, data)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrtConfig {
    pub model: PathBuf,
    pub provider: Provider,
    /// Intra-op threads; 0 lets ONNX Runtime choose.
    pub threads: usize,
    /// `libonnxruntime.so`; `None` searches for it.
    pub library: Option<PathBuf>,
}

/// ONNX Runtime allows one environment per process, and it lives as long as a handle to it:
/// the first load creates it (from the library that load found), every later one shares it.
fn environment(lib: &Path) -> Result<ort::environment::Environment, String> {
    static ENV: std::sync::OnceLock<Result<ort::environment::Environment, String>> =
        std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        ort::init_from(lib)
            .map_err(|e| e.to_string())?
            .with_name("vigil")
            .build()
            .map_err(|e| e.to_string())
    })
    .clone()
}

pub struct OrtBackend {
    session: Session,
    input: InputSpec,
    outputs: Vec<OutputShape>,
}

impl std::fmt::Debug for OrtBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtBackend")
            .field("input", &self.input)
            .field("outputs", &self.outputs)
            .finish_non_exhaustive()
    }
}

impl OrtBackend {
    pub fn load(cfg: &OrtConfig) -> Result<Self, InferError> {
        let lib = match &cfg.library {
            Some(p) => p.clone(),
            None => find_onnxruntime()?,
        };
        let lib_err = |detail: String| InferError::Library {
            path: lib.clone(),
            detail,
        };
        let env = environment(&lib).map_err(lib_err)?;
        let model_err = |detail: String| InferError::Model {
            path: cfg.model.clone(),
            detail,
        };
        let mut builder = Session::builder(&env).map_err(|e| model_err(e.to_string()))?;
        if cfg.threads > 0 {
            builder = builder
                .with_intra_threads(cfg.threads)
                .map_err(|e| model_err(e.to_string()))?;
        }
        builder = match cfg.provider {
            Provider::Cpu => builder,
            Provider::Cuda => builder
                .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
                .map_err(|e| model_err(format!("CUDA execution provider: {e}")))?,
            Provider::TensorRt => builder
                .with_execution_providers([ort::ep::TensorRT::default().build().error_on_failure()])
                .map_err(|e| model_err(format!("TensorRT execution provider: {e}")))?,
        };
        let session = builder
            .commit_from_file(&cfg.model)
            .map_err(|e| model_err(e.to_string()))?;
        let input = Self::image_input(&session, &cfg.model)?;
        let outputs = session
            .outputs()
            .iter()
            .map(|o| OutputShape {
                name: o.name().to_owned(),
                dims: o
                    .dtype()
                    .tensor_shape()
                    .map(|s| s.iter().map(|&d| usize::try_from(d).ok()).collect())
                    .unwrap_or_default(),
            })
            .collect();
        Ok(Self {
            session,
            input,
            outputs,
        })
    }

    fn image_input(session: &Session, path: &Path) -> Result<InputSpec, InferError> {
        let unsupported = |name: &str, found: String| InferError::UnsupportedInput {
            path: path.to_owned(),
            name: name.to_owned(),
            found,
        };
        let [outlet] = session.inputs() else {
            return Err(unsupported(
                "*",
                format!("{} inputs", session.inputs().len()),
            ));
        };
        let dtype = outlet.dtype();
        let shape: Vec<i64> = dtype.tensor_shape().map(|s| s.to_vec()).unwrap_or_default();
        if dtype.tensor_type() != Some(ort::value::TensorElementType::Float32) {
            return Err(unsupported(outlet.name(), format!("{dtype:?}")));
        }
        InputSpec::from_shape(outlet.name(), &shape)
            .ok_or_else(|| unsupported(outlet.name(), format!("shape {shape:?}")))
    }
}

impl Backend for OrtBackend {
    fn input(&self) -> &InputSpec {
        &self.input
    }

    fn outputs(&self) -> &[OutputShape] {
        &self.outputs
    }

    fn run(&mut self, shape: &[usize], data: &[f32]) -> Result<Vec<OutputTensor>, InferError> {
        let fits = shape.len() == self.input.shape.len()
            && shape
                .iter()
                .zip(&self.input.shape)
                .all(|(&g, &e)| e < 0 || g as i64 == e)
            && shape.iter().product::<usize>() == data.len();
        if !fits {
            return Err(InferError::BadInputShape {
                expected: self.input.shape.clone(),
                got: shape.to_vec(),
            });
        }
        let dims: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let tensor =
            TensorRef::from_array_view((dims, data)).map_err(|e| InferError::Run(e.to_string()))?;
        let outputs = self
            .session
            .run(ort::inputs![self.input.name.as_str() => tensor])
            .map_err(|e| InferError::run(e.to_string()))?;
        let mut result = Vec::with_capacity(self.outputs.len());
        for (name, value) in &outputs {
            let (shape, values) = value
                .try_extract_tensor::<f32>()
                .map_err(|e| InferError::run(format!("output `{name}`: {e}")))?;
            result.push(OutputTensor {
                name: name.to_owned(),
                shape: shape.iter().map(|&d| d.max(0) as usize).collect(),
                data: values.to_vec(),
            });
        }
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_layout_and_size_come_from_the_shape() {
        let nchw = InputSpec::from_shape("images", &[1, 3, 320, 320]).expect("nchw");
        assert_eq!(
            (nchw.layout, nchw.size),
            (TensorLayout::Nchw, Some((320, 320)))
        );
        let nhwc = InputSpec::from_shape("x", &[1, 512, 640, 3]).expect("nhwc");
        assert_eq!(
            (nhwc.layout, nhwc.size),
            (TensorLayout::Nhwc, Some((640, 512)))
        );
        assert_eq!(
            InputSpec::from_shape("d", &[-1, 3, -1, -1])
                .expect("dynamic")
                .size,
            None
        );
        assert!(InputSpec::from_shape("bad", &[1, 4, 8, 8]).is_none());
    }

    #[test]
    fn provider_names_parse_and_unknown_is_named() {
        assert_eq!("CUDA".parse::<Provider>().expect("cuda"), Provider::Cuda);
        assert!(
            "npu"
                .parse::<Provider>()
                .expect_err("must fail")
                .to_string()
                .contains("npu")
        );
    }
}
