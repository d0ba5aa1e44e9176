//! `vigil import-deepstream`: an nvinfer config (`config_infer_primary_yoloV8.txt`, the
//! DeepStream-Yolo layout) and optionally an nvtracker IOU config → a `vigil.yml`.
//!
//! Every key nvinfer and DeepStream-Yolo configs use is known: the ones that shape detections
//! are mapped, the ones that only concern `TensorRT` or the GPU are accepted, a few that vigil
//! handles differently are mapped with a warning, and unknown keys are warned about. A bad
//! value is an error naming the file, line and key.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::path::{Component, Path, PathBuf};

use eyre::{bail, eyre};

use crate::settings::Settings;

/// What an import produced.
#[derive(Debug)]
pub struct Imported {
    pub settings: Settings,
    pub warnings: Vec<String>,
}

/// One `key=value` with where it stood.
#[derive(Debug, Clone)]
struct Entry {
    line: usize,
    key: String,
    value: String,
}

impl Entry {
    /// `file:line: key=value`, the head of every message about this entry.
    fn at(&self, path: &Path) -> String {
        format!(
            "{}:{}: {}={}",
            path.display(),
            self.line,
            self.key,
            self.value
        )
    }
}

/// Groups of an INI file (`GKeyFile` as nvinfer reads it), in file order.
fn parse_ini(path: &Path, text: &str) -> eyre::Result<Vec<(String, Vec<Entry>)>> {
    let mut groups: Vec<(String, Vec<Entry>)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            groups.push((name.trim().to_owned(), Vec::new()));
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            bail!(
                "{}:{}: `{line}` is neither [group] nor key=value",
                path.display(),
                i + 1
            );
        };
        let Some((_, entries)) = groups.last_mut() else {
            bail!(
                "{}:{}: `{line}` comes before any [group]",
                path.display(),
                i + 1
            );
        };
        // A trailing `# comment` after the value is not part of it.
        let value = value.split(" #").next().unwrap_or_default().trim();
        entries.push(Entry {
            line: i + 1,
            key: key.trim().to_owned(),
            value: value.to_owned(),
        });
    }
    Ok(groups)
}

/// Parses one value or names file, line, key and value.
fn value<T: std::str::FromStr>(path: &Path, e: &Entry, expected: &str) -> eyre::Result<T>
where
    T::Err: Display,
{
    e.value
        .parse()
        .map_err(|err| eyre!("{}: expected {expected} ({err})", e.at(path)))
}

fn flag(path: &Path, e: &Entry) -> eyre::Result<bool> {
    match e.value.as_str() {
        "0" | "false" => Ok(false),
        "1" | "true" => Ok(true),
        _ => bail!("{}: expected 0 or 1", e.at(path)),
    }
}

fn unit(path: &Path, e: &Entry) -> eyre::Result<f32> {
    let v: f32 = value(path, e, "a number")?;
    if !(0.0..=1.0).contains(&v) {
        bail!("{}: expected 0..=1", e.at(path));
    }
    Ok(v)
}

/// Keys nvinfer or DeepStream-Yolo configs carry that only concern `TensorRT`, the GPU or
/// other `DeepStream` elements: accepted, nothing to map.
const ACCEPTED: &[&str] = &[
    "gpu-id",
    "gie-unique-id",
    "process-mode",
    "custom-lib-path",
    "engine-create-func-name",
    "workspace-size",
    "int8-calib-file",
    "output-blob-names",
    "force-implicit-batch-dim",
    "operate-on-gie-id",
    "operate-on-class-ids",
    "filter-out-class-ids",
    "output-tensor-meta",
    "scaling-filter",
    "scaling-compute-hw",
    "uff-input-blob-name",
];

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
fn relative(path: &Path, base: &Path) -> PathBuf {
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

/// Reads an nvinfer config (and a tracker config) into settings whose paths are relative to
/// `out_dir`, where the vigil.yml will be written.
pub fn import(config: &Path, tracker: Option<&Path>, out_dir: &Path) -> eyre::Result<Imported> {
    let text =
        std::fs::read_to_string(config).map_err(|e| eyre!("reading {}: {e}", config.display()))?;
    let groups = parse_ini(config, &text)?;
    let config_dir = std::path::absolute(config.parent().unwrap_or(Path::new(".")))?;
    let out_dir = std::path::absolute(out_dir)?;
    let beside = |v: &str| relative(&config_dir.join(v), &out_dir);
    let mut s = Settings::default();
    // nvinfer's defaults where they differ from vigil's: no aspect kept, black padding.
    s.preprocess.keep_aspect = false;
    s.preprocess.symmetric_padding = false;
    s.preprocess.pad_value = 0;
    s.preprocess.scale = 1.0;
    s.model.decoder = "auto".into();
    let mut warnings = Vec::new();
    let mut warn = |e: &Entry, why: &str| {
        warnings.push(format!("{}: {why}", e.at(config)));
    };
    let (mut onnx, mut engine, mut classes_declared) = (None, None, None);
    for (group, entries) in &groups {
        let class = match group.as_str() {
            "property" => None,
            "class-attrs-all" => Some(None),
            g => {
                if let Some(Ok(c)) = g.strip_prefix("class-attrs-").map(str::parse::<u32>) {
                    Some(Some(c))
                } else {
                    for e in entries {
                        warn(e, &format!("unknown group [{group}], ignored"));
                    }
                    continue;
                }
            }
        };
        for e in entries {
            let k = e.key.as_str();
            if let Some(class) = class {
                let mut attrs = class.map(|c| *s.postprocess.classes.entry(c).or_default());
                match (k, attrs.as_mut()) {
                    ("pre-cluster-threshold", None) => {
                        s.postprocess.conf_threshold = unit(config, e)?;
                    }
                    ("nms-iou-threshold", None) => s.postprocess.iou_threshold = unit(config, e)?,
                    ("topk", None) => s.postprocess.top_k = value(config, e, "a count")?,
                    ("pre-cluster-threshold", Some(a)) => a.conf_threshold = Some(unit(config, e)?),
                    ("nms-iou-threshold", Some(a)) => a.iou_threshold = Some(unit(config, e)?),
                    ("topk", Some(a)) => a.top_k = Some(value(config, e, "a count")?),
                    (
                        "post-cluster-threshold"
                        | "eps"
                        | "minBoxes"
                        | "group-threshold"
                        | "dbscan-min-score"
                        | "detected-min-w"
                        | "detected-min-h"
                        | "detected-max-w"
                        | "detected-max-h"
                        | "roi-top-offset"
                        | "roi-bottom-offset"
                        | "border-color"
                        | "bg-color",
                        _,
                    ) => warn(e, "not used by vigil (NMS clustering only), ignored"),
                    _ => warn(e, "unknown key, ignored"),
                }
                if let (Some(c), Some(a)) = (class, attrs) {
                    s.postprocess.classes.insert(c, a);
                }
                continue;
            }
            match k {
                "net-scale-factor" => s.preprocess.scale = value(config, e, "a number")?,
                "offsets" => {
                    let v: Option<Vec<f32>> = e
                        .value
                        .split(';')
                        .filter(|x| !x.trim().is_empty())
                        .map(|x| x.trim().parse().ok())
                        .collect();
                    s.preprocess.offsets = match v.as_deref() {
                        Some([a]) => [*a; 3],
                        Some([a, b, c]) => [*a, *b, *c],
                        _ => bail!(
                            "{}: expected one or three numbers separated by ;",
                            e.at(config)
                        ),
                    };
                }
                "model-color-format" => {
                    s.preprocess.color = match e.value.as_str() {
                        "0" => "rgb",
                        "1" => "bgr",
                        "2" => "gray",
                        _ => bail!("{}: expected 0 (RGB), 1 (BGR) or 2 (GRAY)", e.at(config)),
                    }
                    .into();
                }
                "maintain-aspect-ratio" => s.preprocess.keep_aspect = flag(config, e)?,
                "symmetric-padding" => s.preprocess.symmetric_padding = flag(config, e)?,
                "network-input-order" => {
                    s.preprocess.layout = Some(
                        match e.value.as_str() {
                            "0" => "nchw",
                            "1" => "nhwc",
                            _ => bail!("{}: expected 0 (NCHW) or 1 (NHWC)", e.at(config)),
                        }
                        .into(),
                    );
                }
                "infer-dims" | "input-dims" => {
                    let dims: Vec<u32> = e
                        .value
                        .split(';')
                        .filter(|x| !x.trim().is_empty())
                        .map(|x| x.trim().parse().ok())
                        .collect::<Option<_>>()
                        .ok_or_else(|| eyre!("{}: expected C;H;W", e.at(config)))?;
                    let [_, h, w, ..] = dims.as_slice() else {
                        bail!("{}: expected C;H;W", e.at(config));
                    };
                    (s.preprocess.net_w, s.preprocess.net_h) = (Some(*w), Some(*h));
                }
                "onnx-file" => onnx = Some(e.clone()),
                "labelfile-path" => s.model.labels = Some(beside(&e.value)),
                "num-detected-classes" => {
                    classes_declared = Some((value::<usize>(config, e, "a count")?, e.clone()));
                }
                "interval" => {
                    let skip: u64 = value(config, e, "a frame count")?;
                    s.preprocess.interval = skip + 1;
                }
                "network-mode" => match e.value.as_str() {
                    "0" => {}
                    "1" | "2" => warn(
                        e,
                        "INT8/FP16 are TensorRT engine precisions; vigil runs the ONNX model as it is (FP32 on cpu/cuda)",
                    ),
                    _ => bail!("{}: expected 0 (FP32), 1 (INT8) or 2 (FP16)", e.at(config)),
                },
                "batch-size" => {
                    let b: u32 = value(config, e, "a count")?;
                    if b > 1 {
                        warn(e, "vigil infers one frame at a time (batch 1)");
                    }
                }
                "network-type" => {
                    if e.value != "0" {
                        bail!("{}: vigil runs detectors (0) only", e.at(config));
                    }
                }
                "cluster-mode" => {
                    if e.value != "2" {
                        warn(e, "vigil always clusters with greedy NMS (cluster-mode=2)");
                    }
                }
                "parse-bbox-func-name" => {
                    s.model.decoder = match e.value.as_str() {
                        "NvDsInferParseYolo" | "NvDsInferParseYoloCuda" => "boxes".into(),
                        other => {
                            warn(
                                e,
                                &format!(
                                    "parser {other} unknown; the decoder is picked from the model's outputs"
                                ),
                            );
                            "auto".into()
                        }
                    };
                }
                "model-engine-file" => engine = Some(e.clone()),
                k if ACCEPTED.contains(&k) => {}
                _ => warn(e, "unknown key, ignored"),
            }
        }
    }
    match (onnx, engine) {
        (Some(o), Some(e)) => {
            s.model.path = beside(&o.value);
            warnings.push(format!(
                "{}: a TensorRT engine; vigil runs onnx-file={}",
                e.at(config),
                o.value
            ));
        }
        (Some(o), None) => s.model.path = beside(&o.value),
        (None, Some(e)) => bail!(
            "{}: a TensorRT engine, which vigil cannot load; add the onnx-file it was built from",
            e.at(config)
        ),
        (None, None) => bail!("{}: no onnx-file", config.display()),
    }
    if let (Some((n, e)), Some(labels)) = (classes_declared, &s.model.labels) {
        let count = std::fs::read_to_string(out_dir.join(labels))
            .map_or(n, |t| t.lines().filter(|l| !l.trim().is_empty()).count());
        if count != n {
            warnings.push(format!(
                "{}: but the label file has {count} names",
                e.at(config)
            ));
        }
    }
    if let Some(t) = tracker {
        import_tracker(t, &mut s, &mut warnings)?;
    }
    Ok(Imported {
        settings: s,
        warnings,
    })
}

/// Reads the nvtracker settings vigil's IOU tracker has.
fn import_tracker(path: &Path, s: &mut Settings, warnings: &mut Vec<String>) -> eyre::Result<()> {
    let text =
        std::fs::read_to_string(path).map_err(|e| eyre!("reading {}: {e}", path.display()))?;
    // OpenCV-style files open with a `%YAML:1.0` directive that YAML 1.2 parsers refuse.
    let body: String = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("%YAML") {
                ""
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let doc: BTreeMap<String, serde_yaml::Value> =
        serde_yaml::from_str(&body).map_err(|e| eyre!("parsing {}: {e}", path.display()))?;
    let line_of = |key: &str| {
        text.lines()
            .position(|l| l.trim_start().starts_with(&format!("{key}:")))
            .map_or(0, |i| i + 1)
    };
    for (section, v) in &doc {
        let Some(map) = v.as_mapping() else {
            warnings.push(format!(
                "{}: {section}: not a mapping, ignored",
                path.display()
            ));
            continue;
        };
        for (k, v) in map {
            let key = k.as_str().unwrap_or_default();
            let num = || {
                v.as_f64().ok_or_else(|| {
                    eyre!(
                        "{}:{}: {section}.{key}: expected a number, found {v:?}",
                        path.display(),
                        line_of(key)
                    )
                })
            };
            match (section.as_str(), key) {
                ("DataAssociator", "minMatchingScore4Iou") => {
                    let v = num()?;
                    if !(0.0..=1.0).contains(&v) {
                        bail!(
                            "{}:{}: {section}.{key}: expected 0..=1",
                            path.display(),
                            line_of(key)
                        );
                    }
                    // 0 would let boxes that do not overlap at all continue a track.
                    s.tracker.iou_threshold = (v as f32).max(0.01);
                }
                ("TargetManagement", "maxShadowTrackingAge") => {
                    let v = num()?;
                    if v < 0.0 || v.fract() != 0.0 {
                        bail!(
                            "{}:{}: {section}.{key}: expected a frame count",
                            path.display(),
                            line_of(key)
                        );
                    }
                    s.tracker.max_age = v as u32;
                }
                ("BaseConfig", "minDetectorConfidence") => {
                    let v = num()? as f32;
                    if v > s.postprocess.conf_threshold {
                        warnings.push(format!(
                            "{}:{}: {section}.{key}={v}: vigil tracks every detection it keeps (conf_threshold {})",
                            path.display(),
                            line_of(key),
                            s.postprocess.conf_threshold
                        ));
                    }
                }
                (
                    "TargetManagement",
                    "maxTargetsPerStream"
                    | "minIouDiff4NewTarget"
                    | "probationAge"
                    | "earlyTerminationAge"
                    | "enableBboxUnClipping"
                    | "preserveStreamUpdateOrder",
                )
                | (
                    "DataAssociator",
                    "dataAssociatorType"
                    | "associationMatcherType"
                    | "checkClassMatch"
                    | "minMatchingScore4Overall"
                    | "minMatchingScore4SizeSimilarity",
                ) => {}
                _ => warnings.push(format!(
                    "{}:{}: {section}.{key}: not used by vigil's IOU tracker, ignored",
                    path.display(),
                    line_of(key)
                )),
            }
        }
    }
    Ok(())
}

/// Writes settings as a vigil.yml, with a header saying where they came from.
pub fn write(settings: &Settings, sources: &[&Path], out: &Path) -> eyre::Result<()> {
    let mut text = format!(
        "# vigil.yml imported from {} by `vigil import-deepstream`.\n",
        sources
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" and ")
    );
    text.push_str(&serde_yaml::to_string(settings)?);
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| eyre!("creating {}: {e}", dir.display()))?;
    }
    std::fs::write(out, text).map_err(|e| eyre!("writing {}: {e}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::ClassSettings as Cs;

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

    #[test]
    fn every_mapped_key_lands_and_bad_values_name_file_line_and_key() {
        let dir = tempfile::tempdir().expect("tmp");
        let cfg = dir.path().join("config_infer.txt");
        std::fs::write(
            &cfg,
            "[property]\nnet-scale-factor=0.0039215697906911373\noffsets=1;2;3\nmodel-color-format=1\nonnx-file=m.onnx\nmaintain-aspect-ratio=1\nsymmetric-padding=1\ninterval=2\ninfer-dims=3;640;480\nnetwork-input-order=0\nparse-bbox-func-name=NvDsInferParseYolo\nfrobnicate=1\n\n[class-attrs-all]\npre-cluster-threshold=0.3\nnms-iou-threshold=0.5\ntopk=100\n\n[class-attrs-2]\npre-cluster-threshold=0.6\n",
        )
        .expect("write");
        let got = import(&cfg, None, dir.path()).expect("imports");
        let s = got.settings;
        assert_eq!(s.model.path, PathBuf::from("m.onnx"));
        assert_eq!(
            (s.preprocess.color.as_str(), s.preprocess.offsets),
            ("bgr", [1.0, 2.0, 3.0])
        );
        assert!(s.preprocess.keep_aspect && s.preprocess.symmetric_padding);
        assert_eq!((s.preprocess.pad_value, s.preprocess.interval), (0, 3));
        assert_eq!(
            (s.preprocess.net_w, s.preprocess.net_h),
            (Some(480), Some(640))
        );
        assert_eq!(s.model.decoder, "boxes");
        assert_eq!(
            (s.postprocess.conf_threshold, s.postprocess.top_k),
            (0.3, 100)
        );
        assert_eq!(
            s.postprocess.classes[&2],
            Cs {
                conf_threshold: Some(0.6),
                ..Cs::default()
            }
        );
        assert_eq!(got.warnings.len(), 1, "{:?}", got.warnings);
        assert!(
            got.warnings[0].contains(":12: frobnicate=1"),
            "{:?}",
            got.warnings
        );

        std::fs::write(&cfg, "[property]\nonnx-file=m.onnx\nnet-scale-factor=abc\n")
            .expect("write");
        let err = import(&cfg, None, dir.path())
            .expect_err("bad value")
            .to_string();
        assert!(
            err.contains("config_infer.txt:3: net-scale-factor=abc"),
            "{err}"
        );
        std::fs::write(&cfg, "[property]\nmodel-engine-file=m.engine\n").expect("write");
        let err = import(&cfg, None, dir.path())
            .expect_err("engine only")
            .to_string();
        assert!(err.contains("onnx-file"), "{err}");
    }
}
