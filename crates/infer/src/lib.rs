//! Inference behind a small trait: load a model, run a tensor, get raw outputs. The ONNX
//! Runtime backend loads `libonnxruntime.so` at run time (from the `onnxruntime` Python wheel
//! the setup step installs, found without any variable set by hand) and picks its execution
//! provider from config.

mod detector;
mod gpu;
mod library;

use std::path::{Path, PathBuf};

pub use detector::{Detector, FrameError, warm_up};
pub use gpu::{GpuBackend, LoadTimes};
pub use library::find_onnxruntime;
use ort::session::Session;
use ort::value::TensorRef;
use vigil_detect::{Detection, OutputShape, OutputTensor, TensorLayout};
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
    #[error("{0}: a GPU provider needs an NVIDIA GPU and its driver")]
    NoGpu(String),
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    #[default]
    Cpu,
    Cuda,
    #[serde(alias = "trt")]
    TensorRt,
}

impl Provider {
    /// True for the providers that run on an NVIDIA GPU.
    #[must_use]
    pub fn is_gpu(self) -> bool {
        matches!(self, Self::Cuda | Self::TensorRt)
    }
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

/// A decoded frame, RGB row after row, for a backend that letterboxes on its own device.
#[derive(Debug, Clone, Copy)]
pub struct RgbFrame<'a> {
    pub width: u32,
    pub height: u32,
    pub pixels: &'a [u8],
}

/// What a run on a frame gives back.
#[derive(Debug, Clone, PartialEq)]
pub enum Outputs {
    /// Every output, in the model's order, on the host.
    Raw(Vec<OutputTensor>),
    /// Decoded on the device: the candidates at or above the decoder's threshold, in network
    /// pixels and anchor order, before NMS (the raw outputs never left the device), and how
    /// many anchors held NaN or inf (none of them a candidate).
    Candidates {
        candidates: Vec<Detection>,
        nonfinite: u32,
    },
}

/// A loaded model.
pub trait Backend {
    fn input(&self) -> &InputSpec;
    /// The outputs as the model declares them, in the model's order.
    fn outputs(&self) -> &[OutputShape];
    /// Runs one tensor of `shape` and returns every output, in the model's order.
    fn run(&mut self, shape: &[usize], data: &[f32]) -> Result<Vec<OutputTensor>, InferError>;
    /// Runs one decoded frame, letterboxed by the backend itself (on its GPU). Backends that
    /// take host tensors only say so.
    fn run_frame(&mut self, frame: &RgbFrame<'_>) -> Result<Outputs, InferError> {
        let _ = frame;
        Err(InferError::Run(
            "this backend takes tensors made on the host, not frames".into(),
        ))
    }
    /// Makes the device fail for real (the `illegal@` drill): a wild-pointer write in this
    /// process's own GPU context. The error surfaces from the next device call.
    fn break_device(&mut self) -> Result<(), InferError> {
        Err(InferError::Run(
            "no GPU context in this process to break (illegal@ needs provider cuda or tensorrt)"
                .into(),
        ))
    }
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
    fn run_frame(&mut self, frame: &RgbFrame<'_>) -> Result<Outputs, InferError> {
        (**self).run_frame(frame)
    }
    fn break_device(&mut self) -> Result<(), InferError> {
        (**self).break_device()
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct OrtConfig {
    pub model: PathBuf,
    pub provider: Provider,
    /// Intra-op threads; 0 lets ONNX Runtime choose.
    pub threads: usize,
    /// `libonnxruntime.so`; `None` searches for it.
    pub library: Option<PathBuf>,
    /// The CUDA execution provider's settings (`cuda`, and `tensorrt`'s fallback).
    pub cuda: CudaOptions,
    /// The TensorRT execution provider's settings.
    pub tensorrt: TensorRtOptions,
}

/// cuDNN's choice of convolution algorithm when a session first meets a shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConvSearch {
    /// Times every algorithm (ONNX Runtime's default): the fastest kernels, seconds at start.
    Exhaustive,
    /// cuDNN's own ranking: near the fastest, milliseconds at start.
    #[default]
    Heuristic,
    /// One fixed algorithm: the least memory.
    Default,
}

/// `model.cuda` in vigil.yml.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CudaOptions {
    /// TF32 tensor-core maths in convolutions and matrix products: faster, but outputs move
    /// away from the CPU's (off by default: CPU and GPU detections agree).
    pub tf32: bool,
    pub conv_search: ConvSearch,
    /// Capture the model's kernels in a CUDA graph once and replay it for every frame (one
    /// launch instead of hundreds). Needs every node on the GPU and fixed output shapes; the
    /// GPU path binds the input and outputs at fixed device addresses, as it requires.
    pub cuda_graph: bool,
}

/// `model.tensorrt` in vigil.yml.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TensorRtOptions {
    /// Build FP16 engines (the kiosk's setting).
    pub fp16: bool,
    /// Engine and timing caches: a restarted process loads its engine instead of building it.
    pub cache_dir: PathBuf,
}

impl Default for TensorRtOptions {
    fn default() -> Self {
        Self {
            fp16: true,
            cache_dir: PathBuf::from("state/tensorrt"),
        }
    }
}

impl OrtConfig {
    #[allow(unsafe_code)]
    fn cuda_ep(&self, stream: Option<*mut ()>) -> ort::ep::CUDA {
        use ort::ep::cuda::ConvAlgorithmSearch;
        let ep = ort::ep::CUDA::default()
            .with_device_id(0)
            .with_tf32(self.cuda.tf32)
            .with_cuda_graph(self.cuda.cuda_graph)
            .with_conv_algorithm_search(match self.cuda.conv_search {
                ConvSearch::Exhaustive => ConvAlgorithmSearch::Exhaustive,
                ConvSearch::Heuristic => ConvAlgorithmSearch::Heuristic,
                ConvSearch::Default => ConvAlgorithmSearch::Default,
            });
        match stream {
            // SAFETY: the stream belongs to this process's context on device 0 and outlives
            // the session (the GPU backend drops the session first).
            Some(s) => unsafe { ep.with_compute_stream(s) },
            None => ep,
        }
    }

    #[allow(unsafe_code)]
    fn tensorrt_ep(&self, stream: Option<*mut ()>) -> ort::ep::TensorRT {
        let t = &self.tensorrt;
        let dir = t.cache_dir.display().to_string();
        let ep = ort::ep::TensorRT::default()
            .with_device_id(0)
            .with_fp16(t.fp16)
            .with_engine_cache(true)
            .with_engine_cache_path(&dir)
            .with_timing_cache(true)
            .with_timing_cache_path(&dir);
        match stream {
            // SAFETY: as for CUDA above.
            Some(s) => unsafe { ep.with_compute_stream(s) },
            None => ep,
        }
    }
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
        Self::load_on(cfg, None)
    }

    /// Loads the model with its GPU provider running on `stream` (a CUDA stream of this
    /// process's context on device 0) when one is given.
    pub fn load_on(cfg: &OrtConfig, stream: Option<*mut ()>) -> Result<Self, InferError> {
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
        // Idle ONNX Runtime threads block instead of spinning: the detector shares the cores
        // with the other nodes and with its standby (whose model load after a fault must not
        // starve the process at work).
        let mut builder = Session::builder(&env)
            .map_err(|e| model_err(e.to_string()))?
            .with_intra_op_spinning(false)
            .map_err(|e| model_err(e.to_string()))?;
        if cfg.threads > 0 {
            builder = builder
                .with_intra_threads(cfg.threads)
                .map_err(|e| model_err(e.to_string()))?;
        }
        builder = match cfg.provider {
            Provider::Cpu => builder,
            Provider::Cuda => builder
                .with_execution_providers([cfg.cuda_ep(stream).build().error_on_failure()])
                .map_err(|e| model_err(format!("CUDA execution provider: {e}")))?,
            // TensorRT, then CUDA for what TensorRT does not take, then the CPU.
            Provider::TensorRt => {
                std::fs::create_dir_all(&cfg.tensorrt.cache_dir).map_err(|e| {
                    model_err(format!(
                        "TensorRT cache folder {}: {e}",
                        cfg.tensorrt.cache_dir.display()
                    ))
                })?;
                builder
                    .with_execution_providers([
                        cfg.tensorrt_ep(stream).build().error_on_failure(),
                        cfg.cuda_ep(stream).build().error_on_failure(),
                    ])
                    .map_err(|e| model_err(format!("TensorRT execution provider: {e}")))?
            }
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
