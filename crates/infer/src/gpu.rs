//! The GPU path of one process, end to end on the device: the decoded frame goes up through
//! pinned memory, vigil's letterbox kernel writes the network input straight into the model's
//! input tensor (allocated on the device by ONNX Runtime and bound to the session), ONNX
//! Runtime's CUDA (or TensorRT) execution provider runs on the same stream, and an
//! Ultralytics raw output is decoded by vigil's kernel where it lies: only the candidates come
//! back to the host, for NMS. Every CUDA and ONNX Runtime error is classified; a sticky one
//! (error 700 and kin) ends the process (see [`crate::device`]).

#![allow(unsafe_code)] // device addresses handed between ONNX Runtime and the kernels

use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::IoBinding;
use ort::value::{DynTensorValueType, Tensor};
use vigil_detect::{Layout, OutputShape, OutputTensor};
use vigil_gpu::{DecodeBuffers, DeviceLetterbox, Gpu, GpuError, Precision, RawF32};
use vigil_vision::PreprocessConfig;

use crate::{Backend, InferError, InputSpec, OrtBackend, OrtConfig, Outputs, RgbFrame};

/// Room for candidates per frame in the device decoder (an 8400-anchor YOLOv8 at a 0.25
/// threshold gives a few hundred).
const CANDIDATES: usize = 8400;

impl From<GpuError> for InferError {
    fn from(e: GpuError) -> Self {
        match e {
            e if e.is_sticky() => Self::StickyDevice(e.to_string()),
            e @ GpuError::NoLibrary(lib) if lib.contains("libcuda") => Self::NoGpu(e.to_string()),
            e => Self::Run(e.to_string()),
        }
    }
}

/// What runs on the device once the model's input and decoder are known.
struct Bound {
    binding: IoBinding,
    /// The model's input tensor on the device; the binding holds it, the kernel writes it.
    _input: Tensor<f32>,
    /// With a CUDA graph, the outputs' tensors, at addresses fixed for the graph's life.
    _outputs: Vec<Tensor<f32>>,
    input_ptr: RawF32,
    shape: Vec<usize>,
    pre: PreprocessConfig,
    letterbox: Option<DeviceLetterbox>,
    /// Set when the model's raw output is decoded on the device, with the threshold.
    decode: Option<(DecodeBuffers, f32)>,
    /// The decoder: only the outputs it reads come back to the host.
    layout: Layout,
    /// The model's input with the bound shape.
    input: InputSpec,
    /// Which outputs the decoder reads, by the shapes of the first run.
    read: Option<Vec<bool>>,
}

/// Which of a run's outputs (name, shape, …) the decoder for `layout` reads; the split
/// layout's three are matched by their lengths too, so all of them come back.
fn outputs_read(
    raw: &[(String, Vec<usize>, RawF32, ort::value::DynTensor)],
    layout: Layout,
) -> Vec<bool> {
    if layout == Layout::SplitOutputs {
        return vec![true; raw.len()];
    }
    let stubs: Vec<OutputTensor> = raw
        .iter()
        .map(|(name, shape, ..)| OutputTensor {
            name: name.clone(),
            shape: shape.clone(),
            data: Vec::new(),
        })
        .collect();
    let read = vigil_detect::decoded_outputs(&stubs, Some(layout));
    stubs
        .iter()
        .map(|o| read.iter().any(|r| r.name == o.name))
        .collect()
}

/// ONNX Runtime on a GPU, fed by vigil's kernels on the same stream.
pub struct GpuBackend {
    // Fields drop in this order: the device tensors, then the allocator that made them, then
    // the session it belongs to, and last the context and stream they all run on.
    bound: Option<Bound>,
    allocator: Allocator,
    device_memory: MemoryInfo<'static>,
    ort: OrtBackend,
    cuda_graph: bool,
    gpu: Gpu,
    /// How long opening the device (context, kernels) and creating the session took.
    pub load_times: LoadTimes,
}

/// Where a GPU process's start goes (what a standby process pays ahead of time).
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadTimes {
    /// The CUDA context and vigil's kernels.
    pub device: std::time::Duration,
    /// ONNX Runtime's session with its GPU provider.
    pub session: std::time::Duration,
}

impl std::fmt::Debug for GpuBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuBackend")
            .field("gpu", &self.gpu)
            .field("ort", &self.ort)
            .field("bound", &self.bound.is_some())
            .finish_non_exhaustive()
    }
}

fn ort_err(what: &str) -> impl Fn(ort::Error) -> InferError + '_ {
    move |e| InferError::run(format!("{what}: {e}"))
}

impl GpuBackend {
    /// Opens device 0 (its primary context, the one ONNX Runtime uses too), compiles the
    /// kernels and loads the model with `cfg`'s GPU provider on this crate's stream.
    pub fn load(cfg: &OrtConfig) -> Result<Self, InferError> {
        let started = std::time::Instant::now();
        let gpu = Gpu::open(0)?;
        let device = started.elapsed();
        let ort = OrtBackend::load_on(cfg, Some(gpu.raw_stream()))?;
        let session = started.elapsed().saturating_sub(device);
        let device_memory = MemoryInfo::new(
            AllocationDevice::CUDA,
            0,
            AllocatorType::Device,
            MemoryType::Default,
        )
        .map_err(ort_err("describing device memory"))?;
        let allocator = Allocator::new(&ort.session, device_memory.clone())
            .map_err(ort_err("the session's device allocator"))?;
        tracing::info!(device = gpu.name(), provider = ?cfg.provider, "GPU backend: model loaded");
        Ok(Self {
            bound: None,
            ort,
            device_memory,
            allocator,
            cuda_graph: cfg.cuda.cuda_graph,
            gpu,
            load_times: LoadTimes { device, session },
        })
    }

    /// The device's name and compute capability.
    #[must_use]
    pub fn device_name(&self) -> &str {
        self.gpu.name()
    }

    /// Binds the model's input (made by the letterbox `pre` describes) and outputs on the
    /// device. With `decoder` the Ultralytics raw layout and a model of one output, that
    /// output is decoded on the device at `threshold`.
    pub fn bind(
        &mut self,
        pre: PreprocessConfig,
        decoder: Layout,
        threshold: f32,
    ) -> Result<(), InferError> {
        self.bound = None;
        let shape = pre.shape();
        let input = &self.ort.input;
        let fits = shape.len() == input.shape.len()
            && shape
                .iter()
                .zip(&input.shape)
                .all(|(&g, &e)| e < 0 || g as i64 == e);
        if !fits {
            return Err(InferError::BadInputShape {
                expected: input.shape.clone(),
                got: shape,
            });
        }
        let shape_i64: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let (pre_w, pre_h) = (pre.net_w, pre.net_h);
        let input = input.clone();
        let mut tensor = Tensor::<f32>::new(&self.allocator, shape.clone())
            .map_err(ort_err("allocating the input on the device"))?;
        // SAFETY: the tensor holds that many f32 on device 0 (allocated for this shape by the
        // session's CUDA allocator) and lives in `Bound` as long as the address is used.
        let input_ptr =
            unsafe { RawF32::new(tensor.data_ptr_mut() as u64, shape.iter().product()) };
        let mut binding = self
            .ort
            .session
            .create_binding()
            .map_err(ort_err("binding"))?;
        binding
            .bind_input(input.name.as_str(), &tensor)
            .map_err(ort_err("binding the input"))?;
        let mut fixed = Vec::new();
        for o in &self.ort.outputs {
            if self.cuda_graph {
                let dims: Option<Vec<usize>> = o.dims.iter().copied().collect();
                let dims = dims.ok_or_else(|| {
                    InferError::Run(format!(
                        "model.cuda.cuda_graph needs fixed output shapes; `{}` is {:?}",
                        o.name, o.dims
                    ))
                })?;
                let t = Tensor::<f32>::new(&self.allocator, dims)
                    .map_err(ort_err("allocating an output on the device"))?;
                binding
                    .bind_output(o.name.as_str(), &mut *fixed.push_mut(t))
                    .map_err(ort_err("binding an output"))?;
            } else {
                binding
                    .bind_output_to_device(o.name.as_str(), &self.device_memory)
                    .map_err(ort_err("binding an output"))?;
            }
        }
        let decode = (decoder == Layout::UltralyticsRaw && self.ort.outputs.len() == 1)
            .then(|| self.gpu.decode_buffers(CANDIDATES).map(|b| (b, threshold)))
            .transpose()?;
        self.bound = Some(Bound {
            binding,
            _input: tensor,
            _outputs: fixed,
            input_ptr,
            shape,
            pre,
            letterbox: None,
            decode,
            layout: decoder,
            input: InputSpec {
                shape: shape_i64,
                size: Some((pre_w, pre_h)),
                ..input.clone()
            },
            read: None,
        });
        Ok(())
    }

    /// The model's input as the last run left it on the device (to check the letterbox
    /// against the host's, value for value).
    pub fn input_on_host(&mut self, out: &mut Vec<f32>) -> Result<(), InferError> {
        let src = self.bound()?.input_ptr;
        Ok(self.gpu.download_raw(src, out)?)
    }

    /// True when the model's output is decoded on the device.
    #[must_use]
    pub fn decodes_on_device(&self) -> bool {
        self.bound.as_ref().is_some_and(|b| b.decode.is_some())
    }

    fn bound(&mut self) -> Result<&mut Bound, InferError> {
        self.bound.as_mut().ok_or_else(|| {
            InferError::Run("the GPU backend runs once its input is bound (bind)".into())
        })
    }

    /// Runs the session on what the input tensor holds; `decode`: the device decoder's turn.
    fn run_bound(&mut self, decode: bool) -> Result<Outputs, InferError> {
        let Some(bound) = self.bound.as_mut() else {
            return Err(InferError::Run(
                "the GPU backend's input is not bound".into(),
            ));
        };
        let mut outputs = self
            .ort
            .session
            .run_binding(&bound.binding)
            .map_err(|e| InferError::run(e.to_string()))?;
        let mut raw = Vec::with_capacity(self.ort.outputs.len());
        for o in &self.ort.outputs {
            let value = outputs
                .remove(o.name.as_str())
                .ok_or_else(|| InferError::Run(format!("output `{}` missing", o.name)))?;
            if value.dtype().tensor_type() != Some(ort::value::TensorElementType::Float32) {
                return Err(InferError::Run(format!(
                    "output `{}` is {:?}; vigil reads float32 outputs",
                    o.name,
                    value.dtype()
                )));
            }
            let shape: Vec<usize> = value
                .dtype()
                .tensor_shape()
                .map(|s| s.iter().map(|&d| d.max(0) as usize).collect())
                .unwrap_or_default();
            let tensor = value
                .downcast::<DynTensorValueType>()
                .map_err(ort_err("reading an output"))?;
            // SAFETY: a float32 output (checked above) of this shape, on the device it was bound
            // to; the tensor is kept beside the address until the frame is done with it.
            let ptr = unsafe { RawF32::new(tensor.data_ptr() as u64, shape.iter().product()) };
            raw.push((o.name.clone(), shape, ptr, tensor));
        }
        if decode && let Some((bufs, threshold)) = bound.decode.as_mut() {
            let (_, shape, ptr, _) = &raw[0];
            let [1, c, n] = shape[..] else {
                return Err(InferError::Run(format!(
                    "output `{}` is {shape:?}, the device decoder reads [1, 4+classes, anchors]",
                    raw[0].0
                )));
            };
            if bufs.capacity() < n {
                // At most one candidate per anchor.
                *bufs = self.gpu.decode_buffers(n)?;
            }
            let decoded =
                self.gpu
                    .decode_ultralytics(*ptr, c.saturating_sub(4), n, *threshold, bufs)?;
            return Ok(Outputs::Candidates {
                candidates: decoded.candidates,
                nonfinite: decoded.nonfinite,
            });
        }
        // Only what the decoder reads comes back (CenterNet's heatmaps stay on the device).
        let layout = bound.layout;
        let read = bound.read.get_or_insert_with(|| outputs_read(&raw, layout));
        let mut host = Vec::with_capacity(raw.len());
        for ((name, shape, ptr, _), &wanted) in raw.into_iter().zip(read.iter()) {
            if wanted {
                let mut data = Vec::new();
                self.gpu.download_raw(ptr, &mut data)?;
                host.push(OutputTensor { name, shape, data });
            }
        }
        Ok(Outputs::Raw(host))
    }
}

impl Backend for GpuBackend {
    /// The model's input as bound (its dynamic sizes fixed by the letterbox), so the warm-up
    /// runs the very shape frames will have.
    fn input(&self) -> &InputSpec {
        self.bound.as_ref().map_or(&self.ort.input, |b| &b.input)
    }

    fn outputs(&self) -> &[OutputShape] {
        &self.ort.outputs
    }

    /// A tensor made on the host (the warm-up, a CPU-letterboxed frame): uploaded into the
    /// bound input, outputs back on the host.
    fn run(&mut self, shape: &[usize], data: &[f32]) -> Result<Vec<OutputTensor>, InferError> {
        let bound = self.bound()?;
        if shape != bound.shape || data.len() != bound.input_ptr.len() {
            return Err(InferError::BadInputShape {
                expected: bound.shape.iter().map(|&d| d as i64).collect(),
                got: shape.to_vec(),
            });
        }
        let dst = bound.input_ptr;
        self.gpu.upload_raw(data, dst)?;
        match self.run_bound(false)? {
            Outputs::Raw(outs) => Ok(outs),
            Outputs::Candidates { .. } => {
                Err(InferError::Run("decoded where raw was asked".into()))
            }
        }
    }

    fn run_frame(&mut self, frame: &RgbFrame<'_>) -> Result<Outputs, InferError> {
        let Self { bound, gpu, .. } = self;
        let Some(bound) = bound.as_mut() else {
            return Err(InferError::Run(
                "the GPU backend's input is not bound".into(),
            ));
        };
        let (w, h) = (frame.width, frame.height);
        let lb = match &mut bound.letterbox {
            Some(lb) if lb.source_size() == (w, h) => lb,
            slot => slot.insert(gpu.letterbox_for(w, h, &bound.pre, Precision::F32)?),
        };
        gpu.letterbox_into(lb, frame.pixels, bound.input_ptr)?;
        self.run_bound(true)
    }

    fn break_device(&mut self) -> Result<(), InferError> {
        tracing::warn!(
            device = self.gpu.name(),
            "infer: writing through a wild device pointer (the illegal@ drill)"
        );
        Ok(self.gpu.break_context()?)
    }
}
