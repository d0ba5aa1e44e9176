//! GPU-only tests, `#[ignore]`d: they need an NVIDIA GPU and ONNX Runtime GPU
//! (`ORT_DYLIB_PATH`). `ci/gpu-proof` runs them on the GPU machine with `--ignored`.

use std::path::PathBuf;

use vigil_detect::{Layout, Letterbox};
use vigil_infer::{
    Backend, CudaOptions, GpuBackend, InferError, OrtConfig, Outputs, Provider, RgbFrame,
};
use vigil_vision::{PreprocessConfig, Preprocessor, RgbImage};

fn centernet() -> (OrtConfig, PreprocessConfig) {
    // The project root: `VIGIL_ROOT` where the binary runs elsewhere than it was built.
    let root = std::env::var_os("VIGIL_ROOT").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."),
        PathBuf::from,
    );
    (
        OrtConfig {
            model: root.join("models/centernet_mb3_coco.onnx"),
            provider: Provider::Cuda,
            cuda: CudaOptions::default(),
            ..OrtConfig::default()
        },
        PreprocessConfig::plain_resize(512, 512),
    )
}

/// A 1280×720 frame with structure in it (gradients and edges).
fn frame() -> RgbImage {
    let (w, h) = (1280u32, 720u32);
    let mut pixels = Vec::with_capacity((w * h * 3) as usize);
    for y in 0..h {
        for x in 0..w {
            let edge = if (x / 40 + y / 40) % 2 == 0 { 60 } else { 0 };
            pixels.extend([
                ((x * 255 / w) as u8).saturating_add(edge),
                (y * 255 / h) as u8,
                ((x ^ y) & 0xff) as u8,
            ]);
        }
    }
    RgbImage {
        width: w,
        height: h,
        pixels,
    }
}

#[test]
#[ignore = "needs an NVIDIA GPU and ONNX Runtime GPU (ORT_DYLIB_PATH)"]
fn the_model_input_written_on_the_device_equals_the_host_tensor() {
    let (ort, pre) = centernet();
    let mut gpu = GpuBackend::load(&ort).expect("GPU backend");
    gpu.bind(pre.clone(), Layout::BoxesScoreClass, 0.3)
        .expect("bind");
    let img = frame();
    let out = gpu
        .run_frame(&RgbFrame {
            width: img.width,
            height: img.height,
            pixels: &img.pixels,
        })
        .expect("runs");
    assert!(matches!(out, Outputs::Raw(ref o) if o.len() == 1 && o[0].shape == [1, 100, 6]));
    let mut on_device = Vec::new();
    gpu.input_on_host(&mut on_device).expect("download");
    let mut host = Vec::new();
    let lb: Letterbox = Preprocessor::new(pre)
        .expect("pre")
        .run_rgb(&img, &mut host)
        .expect("cpu letterbox");
    assert_eq!(lb.dst_w, 512);
    assert_eq!(on_device.len(), host.len());
    let differ = on_device
        .iter()
        .zip(&host)
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count();
    assert_eq!(differ, 0, "values differing between device and host");
}

#[test]
#[ignore = "needs an NVIDIA GPU and ONNX Runtime GPU (ORT_DYLIB_PATH)"]
fn a_wild_pointer_write_is_a_real_sticky_error_700() {
    let (ort, pre) = centernet();
    let mut gpu = GpuBackend::load(&ort).expect("GPU backend");
    gpu.bind(pre, Layout::BoxesScoreClass, 0.3).expect("bind");
    let img = frame();
    let frame = RgbFrame {
        width: img.width,
        height: img.height,
        pixels: &img.pixels,
    };
    gpu.run_frame(&frame).expect("runs before");
    gpu.break_device().expect("the kernel launches");
    let err = gpu.run_frame(&frame).expect_err("the context is broken");
    assert!(
        matches!(err, InferError::StickyDevice(_)),
        "not classified sticky: {err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("700") || text.to_lowercase().contains("illegal"),
        "{text}"
    );
    assert!(
        gpu.run_frame(&frame).is_err(),
        "sticky: every later call fails"
    );
}
