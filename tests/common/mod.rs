//! Helpers the end-to-end tests share.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The project folder.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The built `vigil` binary.
pub fn vigil() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
}

/// `vigil import` of `copies` copies of `image` (relative to the project) at `fps` into a
/// recording in `dir`, as a user would make one.
pub fn recording_of(image: &str, copies: usize, fps: u32, dir: &Path) -> PathBuf {
    let images = dir.join("images");
    std::fs::create_dir_all(&images).expect("mkdir");
    for i in 0..copies {
        std::fs::copy(root().join(image), images.join(format!("f{i}.jpg"))).expect("copy");
    }
    let rec = dir.join("imported.mcap");
    let out = vigil()
        .arg("import")
        .arg(&images)
        .arg("-o")
        .arg(&rec)
        .args(["--fps", &fps.to_string()])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    rec
}
