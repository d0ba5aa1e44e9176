//! The device: one context, one stream, the kernels, and owned buffers.
#![allow(unsafe_code)]

use std::sync::Arc;

use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtr, DriverError,
    LaunchConfig, PinnedHostSlice, PushKernelArg,
};
use vigil_detect::{BBox, Detection, Letterbox, TensorLayout};
use vigil_vision::{ColorFormat, PreprocessConfig};

use crate::coeffs::{Coefficients, bilinear_coefficients};

#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("{0} not found")]
    NoLibrary(&'static str),
    #[error("NVRTC compiling the kernels for {arch}: {detail}")]
    Compile { arch: &'static str, detail: String },
    /// A CUDA driver error; `sticky` ones leave the context unusable (see
    /// `vigil_device`): the process must exit and be restarted.
    #[error("CUDA {what}: {code:?} (error {number}){}", if *sticky { ", sticky: the process must restart" } else { "" })]
    Driver {
        what: &'static str,
        code: cudarc::driver::sys::CUresult,
        number: u32,
        sticky: bool,
    },
    #[error("{0}")]
    Input(String),
}

impl GpuError {
    #[must_use]
    pub fn is_sticky(&self) -> bool {
        matches!(self, Self::Driver { sticky: true, .. })
    }
}

fn driver(what: &'static str) -> impl Fn(DriverError) -> GpuError {
    move |e| {
        let number = e.0 as u32;
        GpuError::Driver {
            what,
            code: e.0,
            number,
            sticky: vigil_device::is_sticky_code(number),
        }
    }
}

/// f32 values somewhere in device memory this crate did not allocate (an ONNX Runtime tensor).
/// Made only by [`RawF32::new`] (unsafe: the maker vouches for the memory) or [`Gpu::raw`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawF32 {
    ptr: u64,
    len: usize,
}

impl RawF32 {
    /// # Safety
    /// `ptr` must address `len` f32 of device memory in this process's context on device 0,
    /// allocated for as long as the value is used with a [`Gpu`].
    #[must_use]
    pub unsafe fn new(ptr: u64, len: usize) -> Self {
        Self { ptr, len }
    }

    /// Values there.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Where [`Gpu::break_context`] writes: high in the 49-bit virtual address space, far from
/// anything a process maps.
pub const WILD_ADDRESS: u64 = 0x0001_dead_0000_0000;

/// Output precision of the network input tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    F32,
    F16,
}

impl Precision {
    #[must_use]
    pub fn bytes(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 => 2,
        }
    }
}

/// One direction's coefficients on the device.
struct DeviceCoeffs {
    starts: CudaSlice<i32>,
    sizes: CudaSlice<i32>,
    coeffs: CudaSlice<i16>,
    window: i32,
    precision: i32,
}

/// Letterbox state for one source size and configuration: coefficient tables and buffers,
/// uploaded once and reused frame after frame.
pub struct DeviceLetterbox {
    cfg: PreprocessConfig,
    precision: Precision,
    src_size: (u32, u32),
    pub letterbox: Letterbox,
    vert: Option<DeviceCoeffs>,
    horiz: Option<DeviceCoeffs>,
    /// Stands in for a direction that needs no resize.
    none: DeviceCoeffs,
    pinned: PinnedHostSlice<u8>,
    src: CudaSlice<u8>,
    /// The network input, written by the last [`Gpu::letterbox`]: f32 or f16 (as `u16`) bits.
    pub out: CudaSlice<u8>,
    /// Its host copy.
    host: Vec<u8>,
}

impl DeviceLetterbox {
    /// The frame size this state was made for.
    #[must_use]
    pub fn source_size(&self) -> (u32, u32) {
        self.src_size
    }
}

impl std::fmt::Debug for DeviceLetterbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceLetterbox")
            .field("letterbox", &self.letterbox)
            .field("precision", &self.precision)
            .finish_non_exhaustive()
    }
}

/// Decoded candidates, in anchor order (the order the CPU decoder produces).
pub type Candidates = Vec<Detection>;

/// What the device decoder found in one output.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub candidates: Candidates,
    /// Anchors holding NaN or inf (none of them is a candidate).
    pub nonfinite: u32,
}

/// Device buffers the decode kernel compacts candidates into; made once, reused (see
/// [`crate::Pool`]).
pub struct DecodeBuffers {
    cand: CudaSlice<f32>,
    count: CudaSlice<u32>,
    capacity: usize,
}

impl DecodeBuffers {
    /// Candidates these buffers hold.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl std::fmt::Debug for DecodeBuffers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodeBuffers")
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

pub struct Gpu {
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    _module: Arc<CudaModule>,
    letterbox: CudaFunction,
    decode: CudaFunction,
    wild: CudaFunction,
    name: String,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpu")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// How many NVIDIA GPUs this machine's driver sees (0 or more), or why it cannot be asked.
/// Touches only the driver library (`cuInit`), no device.
pub fn devices() -> Result<usize, GpuError> {
    // SAFETY: only tries to dlopen the driver library by its usual names.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(GpuError::NoLibrary("the CUDA driver (libcuda.so)"));
    }
    cudarc::driver::result::init().map_err(driver("initialising the driver"))?;
    let n = CudaContext::device_count().map_err(driver("counting devices"))?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// The NVRTC target for a compute capability.
fn arch_of(cc: (i32, i32)) -> &'static str {
    match cc {
        (8, 7) => "sm_87",
        (9, 0) => "sm_90",
        (8, 9) => "sm_89",
        (8, 6) => "sm_86",
        (8, 0) => "sm_80",
        (7, 5) => "sm_75",
        (7, 2) => "sm_72",
        // Unknown: portable PTX the driver compiles for the device.
        _ => "compute_75",
    }
}

impl Gpu {
    /// Opens device `ordinal` and compiles the kernels for it. Never touches the driver when
    /// its library is absent.
    pub fn open(ordinal: usize) -> Result<Self, GpuError> {
        // SAFETY: only tries to dlopen the driver library by its usual names.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(GpuError::NoLibrary("the CUDA driver (libcuda.so)"));
        }
        let ctx = CudaContext::new(ordinal).map_err(driver("opening the device"))?;
        let name = ctx.name().map_err(driver("reading the device name"))?;
        let cc = ctx
            .compute_capability()
            .map_err(driver("reading the compute capability"))?;
        // NVRTC where it is installed; else PTX compiled elsewhere for this device
        // (`VIGIL_GPU_PTX`, e.g. made by `ci/gpu-check build`).
        let ptx = match std::env::var_os("VIGIL_GPU_PTX") {
            Some(path) if !crate::nvrtc_present() => std::fs::read_to_string(&path)
                .map(cudarc::nvrtc::Ptx::from_src)
                .map_err(|e| GpuError::Input(format!("VIGIL_GPU_PTX: {e}")))?,
            _ => crate::compile(arch_of(cc))?,
        };
        let module = ctx
            .load_module(ptx)
            .map_err(driver("loading the kernels"))?;
        let f = |n: &str| module.load_function(n).map_err(driver("finding a kernel"));
        Ok(Self {
            stream: ctx.new_stream().map_err(driver("creating a stream"))?,
            letterbox: f("letterbox")?,
            decode: f("decode_ultralytics")?,
            wild: f("wild_write")?,
            _module: module,
            ctx,
            name: format!("{name} (sm_{}{})", cc.0, cc.1),
        })
    }

    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    #[must_use]
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// The stream's handle, for another library (ONNX Runtime's CUDA execution provider) to
    /// run its work in order with this crate's kernels.
    #[must_use]
    pub fn raw_stream(&self) -> *mut () {
        self.stream.cu_stream().cast()
    }

    /// A device slice's address, as the kernels taking [`RawF32`] read it.
    ///
    /// # Safety
    /// The slice must outlive every use of the result.
    #[must_use]
    pub unsafe fn raw(&self, slice: &CudaSlice<f32>) -> RawF32 {
        let (ptr, _sync) = slice.device_ptr(&self.stream);
        RawF32 {
            ptr,
            len: slice.len(),
        }
    }

    /// Copies host values to `dst` (device memory of at least `src.len()` values) and waits.
    pub fn upload_raw(&self, src: &[f32], dst: RawF32) -> Result<(), GpuError> {
        if src.len() > dst.len {
            return Err(GpuError::Input(format!(
                "{} values do not fit a device buffer of {}",
                src.len(),
                dst.len
            )));
        }
        let up = driver("uploading a tensor");
        // SAFETY: `dst` holds at least `src.len()` f32 (checked); the copy is waited for before
        // `src` can go away.
        unsafe {
            cudarc::driver::result::memcpy_htod_async(dst.ptr, src, self.stream.cu_stream())
                .map_err(&up)?;
        }
        self.stream.synchronize().map_err(up)
    }

    /// Copies `src` into `out` (resized to fit) once the stream's work before it is done.
    pub fn download_raw(&self, src: RawF32, out: &mut Vec<f32>) -> Result<(), GpuError> {
        out.clear();
        out.resize(src.len, 0.0);
        let down = driver("downloading an output");
        // SAFETY: `out` holds `src.len` f32 and is not touched until the stream is waited for.
        unsafe {
            cudarc::driver::result::memcpy_dtoh_async(
                out.as_mut_slice(),
                src.ptr,
                self.stream.cu_stream(),
            )
            .map_err(&down)?;
        }
        self.stream.synchronize().map_err(down)
    }

    /// Breaks this process's CUDA context for real, to drill recovery: a kernel writes through
    /// [`WILD_ADDRESS`]. Nothing waits here; the device reports error 700
    /// (`CUDA_ERROR_ILLEGAL_ADDRESS`, sticky) to whatever next waits on the context — this
    /// crate's calls and ONNX Runtime's alike.
    pub fn break_context(&self) -> Result<(), GpuError> {
        let mut b = self.stream.launch_builder(&self.wild);
        b.arg(&WILD_ADDRESS);
        // SAFETY: memory safety on the host is not at stake: the kernel writes one word at an
        // address no allocation holds, which the device refuses (and the context is lost, by
        // design). No host memory is passed.
        unsafe {
            b.launch(LaunchConfig {
                grid_dim: (1, 1, 1),
                block_dim: (1, 1, 1),
                shared_mem_bytes: 0,
            })
        }
        .map_err(driver("launching the wild-pointer kernel"))?;
        Ok(())
    }

    fn upload(&self, c: &Coefficients) -> Result<DeviceCoeffs, GpuError> {
        let s = &self.stream;
        let up = driver("uploading coefficients");
        Ok(DeviceCoeffs {
            starts: s.clone_htod(&c.starts).map_err(&up)?,
            sizes: s.clone_htod(&c.sizes).map_err(&up)?,
            coeffs: s.clone_htod(&c.coeffs).map_err(&up)?,
            window: c.window as i32,
            precision: i32::from(c.precision),
        })
    }

    /// Buffers and tables for frames of `src_w`×`src_h` under `cfg`.
    pub fn letterbox_for(
        &self,
        src_w: u32,
        src_h: u32,
        cfg: &PreprocessConfig,
        precision: Precision,
    ) -> Result<DeviceLetterbox, GpuError> {
        if src_w == 0 || src_h == 0 || cfg.net_w == 0 || cfg.net_h == 0 {
            return Err(GpuError::Input(format!(
                "cannot letterbox {src_w}x{src_h} into {}x{}",
                cfg.net_w, cfg.net_h
            )));
        }
        let lb = Letterbox::fit(
            src_w,
            src_h,
            cfg.net_w,
            cfg.net_h,
            cfg.keep_aspect,
            cfg.symmetric_padding,
        );
        let (iw, ih) = lb.inner_size();
        let vert = (ih != src_h)
            .then(|| self.upload(&bilinear_coefficients(src_h, ih)))
            .transpose()?;
        let horiz = (iw != src_w)
            .then(|| self.upload(&bilinear_coefficients(src_w, iw)))
            .transpose()?;
        let alloc = driver("allocating device memory");
        let frame = src_w as usize * src_h as usize * 3;
        let out = cfg.color.channels() * cfg.net_w as usize * cfg.net_h as usize;
        Ok(DeviceLetterbox {
            cfg: cfg.clone(),
            precision,
            src_size: (src_w, src_h),
            letterbox: lb,
            vert,
            horiz,
            // SAFETY: the pinned buffer is written in full before every upload.
            pinned: unsafe { self.ctx.alloc_pinned::<u8>(frame) }.map_err(&alloc)?,
            src: self.stream.alloc_zeros::<u8>(frame).map_err(&alloc)?,
            none: DeviceCoeffs {
                starts: self.stream.alloc_zeros::<i32>(1).map_err(&alloc)?,
                sizes: self.stream.alloc_zeros::<i32>(1).map_err(&alloc)?,
                coeffs: self.stream.alloc_zeros::<i16>(1).map_err(&alloc)?,
                window: 0,
                precision: 1,
            },
            out: self
                .stream
                .alloc_zeros::<u8>(out * precision.bytes())
                .map_err(&alloc)?,
            host: vec![0; out * precision.bytes()],
        })
    }

    /// Uploads an RGB frame (through pinned memory) and writes the network input into
    /// `lb.out`, on this device's stream. Nothing waits: read `lb.out` on the same stream.
    pub fn letterbox(&self, lb: &mut DeviceLetterbox, rgb: &[u8]) -> Result<(), GpuError> {
        self.upload_frame(lb, rgb)?;
        self.letterbox_kernels(lb)
    }

    /// Uploads an RGB frame and writes the network input straight into `dst`, device memory
    /// another library owns (the model's input tensor), on this device's stream.
    pub fn letterbox_into(
        &self,
        lb: &mut DeviceLetterbox,
        rgb: &[u8],
        dst: RawF32,
    ) -> Result<(), GpuError> {
        let need = lb.out.len() / 4;
        if lb.precision != Precision::F32 || dst.len < need {
            return Err(GpuError::Input(format!(
                "the model input holds {} f32, the letterbox writes {need} {:?}",
                dst.len, lb.precision
            )));
        }
        self.upload_frame(lb, rgb)?;
        self.launch_letterbox(lb, Some(dst.ptr))
    }

    fn upload_frame(&self, lb: &mut DeviceLetterbox, rgb: &[u8]) -> Result<(), GpuError> {
        let (w, h) = lb.src_size;
        if rgb.len() != w as usize * h as usize * 3 {
            return Err(GpuError::Input(format!(
                "frame has {} bytes, {w}x{h} RGB needs {}",
                rgb.len(),
                w as usize * h as usize * 3
            )));
        }
        let copy = driver("uploading the frame");
        lb.pinned
            .as_mut_slice()
            .map_err(&copy)?
            .copy_from_slice(rgb);
        self.stream
            .memcpy_htod(&lb.pinned, &mut lb.src)
            .map_err(&copy)
    }

    /// The kernel alone, on the frame already on the device (the last one uploaded).
    pub fn letterbox_kernels(&self, lb: &mut DeviceLetterbox) -> Result<(), GpuError> {
        self.launch_letterbox(lb, None)
    }

    /// The letterbox kernel into `dst`, or into `lb.out` when `None`.
    fn launch_letterbox(&self, lb: &mut DeviceLetterbox, dst: Option<u64>) -> Result<(), GpuError> {
        let (w, _) = lb.src_size;
        let (iw, ih) = lb.letterbox.inner_size();
        let c = &lb.cfg;
        let (net_w, net_h) = (c.net_w as i32, c.net_h as i32);
        let v = lb.vert.as_ref().unwrap_or(&lb.none);
        let hz = lb.horiz.as_ref().unwrap_or(&lb.none);
        let (vresize, hresize) = (i32::from(lb.vert.is_some()), i32::from(lb.horiz.is_some()));
        let (src_w, inner_w, inner_h) = (w as i32, iw as i32, ih as i32);
        let (pad_x, pad_y) = (lb.letterbox.pad_x as i32, lb.letterbox.pad_y as i32);
        let pad = f32::from(c.pad_value);
        let color: i32 = match c.color {
            ColorFormat::Rgb => 0,
            ColorFormat::Bgr => 1,
            ColorFormat::Gray => 2,
        };
        let layout: i32 = match c.layout {
            TensorLayout::Nchw => 0,
            TensorLayout::Nhwc => 1,
        };
        let half = i32::from(lb.precision == Precision::F16);
        let block = 128u32;
        let cfg = LaunchConfig {
            grid_dim: (c.net_w.div_ceil(block), c.net_h, 1),
            block_dim: (block, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut b = self.stream.launch_builder(&self.letterbox);
        b.arg(&lb.src)
            .arg(&src_w)
            .arg(&inner_w)
            .arg(&inner_h)
            .arg(&pad_x)
            .arg(&pad_y)
            .arg(&net_w)
            .arg(&net_h)
            .arg(&v.starts)
            .arg(&v.sizes)
            .arg(&v.coeffs)
            .arg(&v.window)
            .arg(&v.precision)
            .arg(&vresize)
            .arg(&hz.starts)
            .arg(&hz.sizes)
            .arg(&hz.coeffs)
            .arg(&hz.window)
            .arg(&hz.precision)
            .arg(&hresize)
            .arg(&pad)
            .arg(&c.scale)
            .arg(&c.offsets[0])
            .arg(&c.offsets[1])
            .arg(&c.offsets[2])
            .arg(&color)
            .arg(&layout)
            .arg(&half);
        match &dst {
            Some(ptr) => b.arg(ptr),
            None => b.arg(&mut lb.out),
        };
        // SAFETY: the arguments match the kernel's signature; the coefficient tables index
        // rows and columns inside the frame (they are built for its size), and `out` (or
        // `dst`, checked by the caller) holds channels × net_w × net_h elements of the
        // precision.
        unsafe { b.launch(cfg) }.map_err(driver("launching a kernel"))?;
        Ok(())
    }

    /// The network input of the last letterbox, as f32 on the host (f16 widened), into `out`;
    /// frame after frame it allocates nothing.
    pub fn download_into(
        &self,
        lb: &mut DeviceLetterbox,
        out: &mut Vec<f32>,
    ) -> Result<(), GpuError> {
        self.stream
            .memcpy_dtoh(&lb.out, &mut lb.host)
            .map_err(driver("downloading the tensor"))?;
        out.clear();
        match lb.precision {
            Precision::F32 => out.extend(
                lb.host
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
            ),
            Precision::F16 => out.extend(
                lb.host
                    .chunks_exact(2)
                    .map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]]))),
            ),
        }
        Ok(())
    }

    /// [`Gpu::download_into`] a new vector.
    pub fn download(&self, lb: &mut DeviceLetterbox) -> Result<Vec<f32>, GpuError> {
        let mut out = Vec::new();
        self.download_into(lb, &mut out)?;
        Ok(out)
    }

    /// Buffers for up to `capacity` candidates.
    pub fn decode_buffers(&self, capacity: usize) -> Result<DecodeBuffers, GpuError> {
        let alloc = driver("allocating device memory");
        Ok(DecodeBuffers {
            cand: self
                .stream
                .alloc_zeros::<f32>(capacity.max(1) * 7)
                .map_err(&alloc)?,
            count: self.stream.alloc_zeros::<u32>(2).map_err(&alloc)?,
            capacity,
        })
    }

    /// Launches the decode of an Ultralytics raw output `[1, 4+nc, n]` already on the
    /// device into `bufs`; nothing waits.
    pub fn decode_kernel(
        &self,
        raw: RawF32,
        classes: usize,
        n: usize,
        threshold: f32,
        bufs: &mut DecodeBuffers,
    ) -> Result<(), GpuError> {
        if raw.len < (4 + classes) * n {
            return Err(GpuError::Input(format!(
                "raw output has {} values, [1, {}, {n}] needs {}",
                raw.len,
                4 + classes,
                (4 + classes) * n
            )));
        }
        self.stream
            .memset_zeros(&mut bufs.count)
            .map_err(driver("clearing the counter"))?;
        let (n_i, c_i, cap) = (n as i32, classes as i32, bufs.capacity as u32);
        let mut b = self.stream.launch_builder(&self.decode);
        b.arg(&raw.ptr)
            .arg(&n_i)
            .arg(&c_i)
            .arg(&threshold)
            .arg(&mut bufs.cand)
            .arg(&mut bufs.count)
            .arg(&cap);
        // SAFETY: `raw` holds (4 + classes) × n values (checked above); the kernel writes at
        // most `capacity` rows of 7 into `cand`.
        unsafe { b.launch(LaunchConfig::for_num_elems(n as u32)) }
            .map_err(driver("launching a kernel"))?;
        Ok(())
    }

    /// Decodes on the device; only the candidates scoring at least `threshold` come back,
    /// in anchor order.
    pub fn decode_ultralytics(
        &self,
        raw: RawF32,
        classes: usize,
        n: usize,
        threshold: f32,
        bufs: &mut DecodeBuffers,
    ) -> Result<Decoded, GpuError> {
        self.decode_kernel(raw, classes, n, threshold, bufs)?;
        let back = driver("downloading candidates");
        let counts = self.stream.clone_dtoh(&bufs.count).map_err(&back)?;
        let (found, nonfinite) = (counts[0] as usize, counts[1]);
        let kept = found.min(bufs.capacity);
        if found > bufs.capacity {
            return Err(GpuError::Input(format!(
                "{found} candidates, room for {}: raise the capacity",
                bufs.capacity
            )));
        }
        let rows = self
            .stream
            .clone_dtoh(&bufs.cand.slice(..kept * 7))
            .map_err(&back)?;
        let mut out: Vec<(u32, Detection)> = rows
            .chunks_exact(7)
            .map(|r| {
                (
                    r[6] as u32,
                    Detection {
                        class: r[5] as u32,
                        score: r[4],
                        bbox: BBox::new(r[0], r[1], r[2], r[3]),
                    },
                )
            })
            .collect();
        out.sort_by_key(|(anchor, _)| *anchor);
        Ok(Decoded {
            candidates: out.into_iter().map(|(_, d)| d).collect(),
            nonfinite,
        })
    }

    /// Uploads host values (for tests and checks).
    pub fn upload_f32(&self, v: &[f32]) -> Result<CudaSlice<f32>, GpuError> {
        self.stream.clone_htod(v).map_err(driver("uploading"))
    }

    /// Waits for the stream.
    pub fn synchronize(&self) -> Result<(), GpuError> {
        self.stream.synchronize().map_err(driver("synchronizing"))
    }

    /// Times `f` on the stream with CUDA events, in milliseconds.
    pub fn time_ms(&self, f: impl FnOnce() -> Result<(), GpuError>) -> Result<f32, GpuError> {
        let ev = driver("timing");
        let flags = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT);
        let start = self.ctx.new_event(flags).map_err(&ev)?;
        let end = self.ctx.new_event(flags).map_err(&ev)?;
        start.record(&self.stream).map_err(&ev)?;
        f()?;
        end.record(&self.stream).map_err(&ev)?;
        end.synchronize().map_err(&ev)?;
        start.elapsed_ms(&end).map_err(&ev)
    }

    /// Device-to-device copy of `bytes` bytes, for the bandwidth reference.
    pub fn copy_ms(&self, bytes: usize) -> Result<f32, GpuError> {
        let alloc = driver("allocating device memory");
        let a = self.stream.alloc_zeros::<u8>(bytes).map_err(&alloc)?;
        let mut b = self.stream.alloc_zeros::<u8>(bytes).map_err(&alloc)?;
        self.time_ms(|| {
            self.stream
                .memcpy_dtod(&a, &mut b)
                .map_err(driver("copying"))
        })
    }
}

/// IEEE half → single.
#[must_use]
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = u32::from((h >> 10) & 0x1f);
    let frac = u32::from(h & 0x3ff);
    let bits = match (exp, frac) {
        (0, 0) => sign,
        (0, f) => {
            // Subnormal: normalise.
            let shift = f.leading_zeros() - 21;
            sign | ((113 - shift) << 23) | (((f << shift) & 0x3ff) << 13)
        }
        (31, 0) => sign | 0x7f80_0000,
        (31, f) => sign | 0x7f80_0000 | (f << 13),
        (e, f) => sign | ((e + 112) << 23) | (f << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_widening_is_exact() {
        for (h, f) in [
            (0x3c00u16, 1.0f32),
            (0xc000, -2.0),
            (0x3555, 0.333_251_95),
            (0x0001, 5.960_464_5e-8),
            (0x7bff, 65504.0),
        ] {
            assert_eq!(f16_to_f32(h).to_bits(), f.to_bits(), "{h:#x}");
        }
        assert!(f16_to_f32(0x7e00).is_nan());
    }

    #[test]
    fn opening_without_a_driver_is_an_error_not_a_panic() {
        // On machines without libcuda this names the library; with one it opens a device.
        match Gpu::open(0) {
            Ok(gpu) => assert!(!gpu.name().is_empty()),
            Err(e) => assert!(
                matches!(e, GpuError::NoLibrary(_) | GpuError::Driver { .. }),
                "{e}"
            ),
        }
    }
}
