//! vigil's GPU path: NVRTC kernels for letterbox + normalise (bit-identical to the CPU path)
//! and YOLO output decoding with candidate compaction, device buffers with Rust ownership,
//! and every CUDA error classified (sticky → the process must restart).
//!
//! Built with `cudarc` and `dynamic-loading`: the same binary builds and runs without CUDA.
//! [`Gpu::open`] checks that the driver library is present before touching it and says why
//! not when it is not, so callers fall back to the CPU path with a clear log line.

pub mod coeffs;
mod device;
pub mod pool;

pub use device::{
    Candidates, DecodeBuffers, Decoded, DeviceLetterbox, Gpu, GpuError, Precision, RawF32,
    WILD_ADDRESS, devices, f16_to_f32,
};
pub use pool::{Lease, Pool};

/// The kernels' CUDA C source.
pub const KERNELS: &str = include_str!("kernels.cu");

/// The kernel entry points.
pub const KERNEL_NAMES: [&str; 3] = ["letterbox", "decode_ultralytics", "wild_write"];

/// The architectures CI compiles for: Jetson Orin (`sm_87`) and H100 (`sm_90`).
pub const ARCHES: [&str; 2] = ["sm_87", "sm_90"];

/// True when NVRTC can be loaded.
#[must_use]
pub fn nvrtc_present() -> bool {
    // SAFETY: only tries to dlopen the library by its usual names.
    #[allow(unsafe_code)]
    unsafe {
        cudarc::nvrtc::sys::is_culib_present()
    }
}

/// Compiles the kernels to PTX for `arch` (e.g. `sm_87`).
pub fn compile(arch: &'static str) -> Result<cudarc::nvrtc::Ptx, GpuError> {
    if !nvrtc_present() {
        return Err(GpuError::NoLibrary(
            "NVRTC (libnvrtc.so), which compiles vigil's kernels (or set VIGIL_GPU_PTX to their PTX for this GPU, made by `vigil-gpu-ptx`)",
        ));
    }
    cudarc::nvrtc::compile_ptx_with_opts(
        KERNELS,
        cudarc::nvrtc::CompileOptions {
            arch: Some(arch),
            name: Some("vigil_kernels.cu".into()),
            ..Default::default()
        },
    )
    .map_err(|e| GpuError::Compile {
        arch,
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kernel compiles with NVRTC for the Orin and the H100. NVRTC comes from the `PyPI`
    /// `nvidia-cuda-nvrtc-cu12` wheel the setup command puts in `.venv`; when the library is
    /// not on the loader path yet, the test runs itself again with it there.
    #[test]
    fn kernels_compile_for_orin_and_h100() {
        if !nvrtc_present() && std::env::var_os("VIGIL_NVRTC_RETRY").is_none() {
            let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
            let lib = std::fs::read_dir(root.join(".venv/lib"))
                .expect(".venv: run the setup command")
                .filter_map(Result::ok)
                .map(|e| e.path().join("site-packages/nvidia/cuda_nvrtc/lib"))
                .find(|p| p.is_dir())
                .expect("nvidia-cuda-nvrtc-cu12 in .venv: run the setup command");
            let status = std::process::Command::new(std::env::current_exe().expect("exe"))
                .args(["--exact", "tests::kernels_compile_for_orin_and_h100"])
                .env("LD_LIBRARY_PATH", &lib)
                .env("VIGIL_NVRTC_RETRY", "1")
                .status()
                .expect("runs");
            assert!(
                status.success(),
                "compiling with NVRTC from {}",
                lib.display()
            );
            return;
        }
        for arch in ARCHES {
            let ptx = compile(arch).unwrap_or_else(|e| panic!("{e}"));
            let text = ptx.to_src();
            for name in KERNEL_NAMES {
                assert!(text.contains(&format!(".entry {name}")), "{arch}: {name}");
            }
            assert!(text.contains(&format!(".target {arch}")), "{arch}");
        }
    }
}
