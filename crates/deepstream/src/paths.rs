//! Paths as `DeepStream` reads them (relative to the file that names them) and as vigil.yml
//! holds them (relative to the vigil.yml). A bare file name has the empty path as its parent;
//! every helper here treats that as the current folder.

use std::path::{Component, Path, PathBuf};

use eyre::eyre;

/// `value`, a path written in `file`, as the user would name it: beside `file` when relative.
pub(crate) fn beside(file: &Path, value: &str) -> PathBuf {
    let v = Path::new(value);
    match file.parent() {
        Some(dir) if v.is_relative() && !dir.as_os_str().is_empty() => dir.join(v),
        _ => v.to_owned(),
    }
}

/// `path` made absolute, a relative one taken from `dir` (itself taken from the current
/// folder when relative), with `.` and `..` resolved by name.
pub(crate) fn anchored(dir: &Path, path: &Path) -> eyre::Result<PathBuf> {
    let joined = dir.join(path);
    let joined = if joined.as_os_str().is_empty() {
        Path::new(".")
    } else {
        joined.as_path()
    };
    std::path::absolute(joined)
        .map(|p| normalize(&p))
        .map_err(|e| eyre!("{}: {e}", path.display()))
}

/// The folder an absolute file path is in.
pub(crate) fn folder(file: &Path) -> &Path {
    file.parent().unwrap_or(file)
}

/// `path` with `.` and `..` resolved by name (the file need not exist).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `path` relative to `base` (both absolute).
pub(crate) fn relative(path: &Path, base: &Path) -> PathBuf {
    let (path, base) = (normalize(path), normalize(base));
    let p: Vec<Component> = path.components().collect();
    let b: Vec<Component> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for c in &p[common..] {
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_climb_out_and_down() {
        assert_eq!(
            relative(Path::new("/a/b/m.onnx"), Path::new("/a/c/d")),
            PathBuf::from("../../b/m.onnx")
        );
        assert_eq!(
            relative(Path::new("/a/m.onnx"), Path::new("/a")),
            PathBuf::from("m.onnx")
        );
        assert_eq!(
            relative(Path::new("/a/b/../m.onnx"), Path::new("/a/./c")),
            PathBuf::from("../m.onnx")
        );
    }

    /// The bug of `vigil import-deepstream x.txt -o vigil.yml` run in x.txt's folder:
    /// `Path::new("x.txt").parent()` is `Some("")`, which cannot be made absolute.
    #[test]
    fn bare_file_names_are_in_the_current_folder() {
        assert_eq!(Path::new("x.txt").parent(), Some(Path::new("")));
        assert_eq!(
            beside(Path::new("x.txt"), "m.onnx"),
            PathBuf::from("m.onnx")
        );
        assert_eq!(
            beside(Path::new("cfg/x.txt"), "m.onnx"),
            PathBuf::from("cfg/m.onnx")
        );
        assert_eq!(
            beside(Path::new("cfg/x.txt"), "/abs/m.onnx"),
            PathBuf::from("/abs/m.onnx")
        );
        let dir = Path::new("/work/here");
        let config = anchored(dir, Path::new("x.txt")).expect("absolute");
        assert_eq!(config, PathBuf::from("/work/here/x.txt"));
        assert_eq!(folder(&config), dir);
        assert_eq!(
            anchored(dir, &beside(Path::new("x.txt"), "../m.onnx")).expect("absolute"),
            PathBuf::from("/work/m.onnx")
        );
        let output = anchored(dir, Path::new("vigil.yml")).expect("absolute");
        assert_eq!(relative(&config, folder(&output)), PathBuf::from("x.txt"));
        // With no base folder at all, the current one.
        let cwd = std::env::current_dir().expect("cwd");
        assert_eq!(
            anchored(Path::new(""), Path::new("x.txt")).expect("absolute"),
            cwd.join("x.txt")
        );
        assert_eq!(
            anchored(Path::new(""), Path::new("")).expect("absolute"),
            cwd
        );
    }
}
