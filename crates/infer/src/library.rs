//! Finding `libonnxruntime.so` without the user setting anything.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::InferError;

/// Looks, in order, at `ORT_DYLIB_PATH`, the project's `.venv` (next to the running binary's
/// `target/` folder or in the working directory), then asks `python3` where its `onnxruntime`
/// package lives.
pub fn find_onnxruntime() -> Result<PathBuf, InferError> {
    let mut looked = Vec::new();
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        looked.push(format!("ORT_DYLIB_PATH={}", p.display()));
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).take(4).map(Path::to_path_buf));
    }
    if let Ok(cwd) = std::env::current_dir() {
        roots.push(cwd);
    }
    for root in roots {
        let venv_lib = root.join(".venv").join("lib");
        looked.push(venv_lib.display().to_string());
        let Ok(entries) = std::fs::read_dir(&venv_lib) else {
            continue;
        };
        let mut pythons: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
        pythons.sort();
        for py in pythons {
            if let Some(lib) = in_capi(&py.join("site-packages").join("onnxruntime")) {
                return Ok(lib);
            }
        }
    }
    looked.push("python3 -c 'import onnxruntime'".into());
    let out = Command::new("python3")
        .args([
            "-c",
            "import onnxruntime, os; print(os.path.dirname(onnxruntime.__file__))",
        ])
        .output();
    if let Ok(out) = out
        && out.status.success()
        && let Some(lib) = in_capi(Path::new(String::from_utf8_lossy(&out.stdout).trim()))
    {
        return Ok(lib);
    }
    Err(InferError::LibraryNotFound {
        looked: looked.join(", "),
    })
}

/// `onnxruntime/capi/libonnxruntime.so*` inside a package folder, newest name first.
fn in_capi(package: &Path) -> Option<PathBuf> {
    let mut libs: Vec<PathBuf> = std::fs::read_dir(package.join("capi"))
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so"))
        })
        .collect();
    libs.sort();
    libs.pop()
}
