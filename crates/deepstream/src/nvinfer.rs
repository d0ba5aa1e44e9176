//! An nvinfer config (`config_infer_primary_yoloV8.txt`, the DeepStream-Yolo layout) → the
//! model, preprocess and postprocess sections of a [`Config`].
//!
//! Every key nvinfer and DeepStream-Yolo configs use is known: the ones that shape detections
//! are mapped, the ones that only concern `TensorRT` or the GPU are accepted, a few that vigil
//! handles differently are mapped with a warning, and unknown keys are warned about.

use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

use eyre::{bail, eyre};
use vigil_config::{ClassOverrides, ColorFormat, Config, Decoder, NetSize, TensorLayout};

use crate::ini::{self, Entry, Group};
use crate::paths;

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

/// An nvinfer config read: the sections it maps (with absolute paths) and the entries later
/// checks name in their messages.
#[derive(Debug, Clone)]
pub(crate) struct Nvinfer {
    pub config: Config,
    pub onnx: Entry,
    pub infer_dims: Option<Entry>,
    pub input_order: Option<Entry>,
    /// The `parse-bbox-func-name` that chose the decoder (none: picked from the outputs).
    pub parser: Option<Entry>,
}

/// Maps the groups of the nvinfer config `path`; `overrides` are `[property]` keys set
/// elsewhere that win over the file's (deepstream-app's `[primary-gie]`). Relative paths are
/// taken from `dir`.
pub(crate) fn map(
    path: &Path,
    groups: &[Group],
    overrides: &[Entry],
    dir: &Path,
    warnings: &mut Vec<String>,
) -> eyre::Result<Nvinfer> {
    let absolute = |e: &Entry| paths::anchored(dir, &paths::beside(&e.file, &e.value));
    let mut groups = groups.to_vec();
    if !overrides.is_empty() {
        if !groups.iter().any(|g| g.name == "property") {
            groups.insert(
                0,
                Group {
                    name: "property".into(),
                    line: 0,
                    entries: Vec::new(),
                },
            );
        }
        for g in groups.iter_mut().filter(|g| g.name == "property") {
            for o in overrides {
                ini::set(&mut g.entries, o.clone());
            }
        }
    }
    let mut c = Config::default();
    // nvinfer's defaults where they differ from vigil's: no aspect kept, black padding.
    c.preprocess.keep_aspect = false;
    c.preprocess.symmetric_padding = false;
    c.preprocess.pad_value = 0;
    c.preprocess.scale = 1.0;
    c.model.decoder = Decoder::Auto;
    let mut warn = |e: &Entry, why: &str| warnings.push(format!("{}: {why}", e.at()));
    let (mut onnx, mut engine, mut labels, mut classes_declared) = (None, None, None, None);
    let (mut infer_dims, mut input_order, mut parser) = (None, None, None);
    for group in &groups {
        let class = match group.name.as_str() {
            "property" => None,
            "class-attrs-all" => Some(None),
            g => {
                if let Some(Ok(id)) = g.strip_prefix("class-attrs-").map(str::parse::<u32>) {
                    Some(Some(id))
                } else {
                    for e in &group.entries {
                        warn(e, &format!("unknown group [{g}], ignored"));
                    }
                    continue;
                }
            }
        };
        for e in &group.entries {
            let k = e.key.as_str();
            if let Some(class) = class {
                let p = &mut c.postprocess;
                let mut attrs: Option<ClassOverrides> =
                    class.map(|id| p.classes.get(&id).copied().unwrap_or_default());
                match (k, attrs.as_mut()) {
                    ("pre-cluster-threshold", None) => p.conf_threshold = e.unit()?,
                    ("nms-iou-threshold", None) => p.iou_threshold = e.unit()?,
                    ("topk", None) => p.top_k = e.parse("a count")?,
                    ("pre-cluster-threshold", Some(a)) => a.conf_threshold = Some(e.unit()?),
                    ("nms-iou-threshold", Some(a)) => a.iou_threshold = Some(e.unit()?),
                    ("topk", Some(a)) => a.top_k = Some(e.parse("a count")?),
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
                    ) => {
                        warn(e, "not used by vigil (NMS clustering only), ignored");
                        continue;
                    }
                    _ => {
                        warn(e, "unknown key, ignored");
                        continue;
                    }
                }
                if let (Some(id), Some(a)) = (class, attrs) {
                    p.classes.insert(id, a);
                }
                continue;
            }
            match k {
                "net-scale-factor" => c.preprocess.scale = e.number()?,
                "offsets" => {
                    let v = e.list::<f32>().filter(|v| v.iter().all(|x| x.is_finite()));
                    c.preprocess.offsets = match v.as_deref() {
                        Some([a]) => [*a; 3],
                        Some([a, b, c]) => [*a, *b, *c],
                        _ => bail!("{}: expected one or three numbers separated by ;", e.at()),
                    };
                }
                "model-color-format" => {
                    c.preprocess.color = match e.value.as_str() {
                        "0" => ColorFormat::Rgb,
                        "1" => ColorFormat::Bgr,
                        "2" => ColorFormat::Gray,
                        _ => bail!("{}: expected 0 (RGB), 1 (BGR) or 2 (GRAY)", e.at()),
                    };
                }
                "maintain-aspect-ratio" => c.preprocess.keep_aspect = e.flag()?,
                "symmetric-padding" => c.preprocess.symmetric_padding = e.flag()?,
                "network-input-order" => {
                    c.preprocess.layout = Some(match e.value.as_str() {
                        "0" => TensorLayout::Nchw,
                        "1" => TensorLayout::Nhwc,
                        _ => bail!("{}: expected 0 (NCHW) or 1 (NHWC)", e.at()),
                    });
                    input_order = Some(e.clone());
                }
                "infer-dims" | "input-dims" => {
                    let dims = e
                        .list::<u32>()
                        .ok_or_else(|| eyre!("{}: expected C;H;W", e.at()))?;
                    let [_, h, w, ..] = dims.as_slice() else {
                        bail!("{}: expected C;H;W", e.at());
                    };
                    let side =
                        |v: u32| NetSize::try_from(v).map_err(|why| eyre!("{}: {why}", e.at()));
                    (c.preprocess.net_w, c.preprocess.net_h) = (Some(side(*w)?), Some(side(*h)?));
                    infer_dims = Some(e.clone());
                }
                "onnx-file" => onnx = Some(e.clone()),
                "labelfile-path" => labels = Some(e.clone()),
                "num-detected-classes" => {
                    classes_declared = Some((e.parse::<usize>("a count")?, e.clone()));
                }
                "interval" => {
                    let skip: u64 = e.parse("a frame count")?;
                    c.preprocess.interval = skip
                        .checked_add(1)
                        .and_then(NonZeroU64::new)
                        .ok_or_else(|| eyre!("{}: too large", e.at()))?;
                }
                "network-mode" => match e.value.as_str() {
                    "0" => {}
                    "1" | "2" => warn(
                        e,
                        "INT8/FP16 are TensorRT engine precisions; vigil runs the ONNX model as it is (FP32 on cpu/cuda)",
                    ),
                    _ => bail!("{}: expected 0 (FP32), 1 (INT8) or 2 (FP16)", e.at()),
                },
                "batch-size" => {
                    let b: u32 = e.parse("a count")?;
                    if b > 1 {
                        warn(e, "vigil infers one frame at a time (batch 1)");
                    }
                }
                "network-type" => {
                    if e.value != "0" {
                        bail!("{}: vigil runs detectors (0) only", e.at());
                    }
                }
                "cluster-mode" => {
                    if e.value != "2" {
                        warn(e, "vigil always clusters with greedy NMS (cluster-mode=2)");
                    }
                }
                "parse-bbox-func-name" => {
                    if let "NvDsInferParseYolo" | "NvDsInferParseYoloCuda" = e.value.as_str() {
                        c.model.decoder = Decoder::Boxes;
                        parser = Some(e.clone());
                    } else {
                        warn(
                            e,
                            &format!(
                                "parser {} unknown; the decoder is picked from the model's outputs",
                                e.value
                            ),
                        );
                        c.model.decoder = Decoder::Auto;
                        parser = None;
                    }
                }
                "model-engine-file" => engine = Some(e.clone()),
                k if ACCEPTED.contains(&k) => {}
                _ => warn(e, "unknown key, ignored"),
            }
        }
    }
    let onnx = match (onnx, engine) {
        (Some(o), Some(e)) => {
            warn(
                &e,
                &format!("a TensorRT engine; vigil runs onnx-file={}", o.value),
            );
            o
        }
        (Some(o), None) => o,
        (None, Some(e)) => bail!(
            "{}: a TensorRT engine, which vigil cannot load; add the onnx-file it was built from",
            e.at()
        ),
        (None, None) => bail!("{}: no onnx-file", path.display()),
    };
    c.model.path = absolute(&onnx)?;
    if let Some(l) = &labels {
        let file = absolute(l)?;
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                let count = text.lines().filter(|l| !l.trim().is_empty()).count();
                if let Some((n, e)) = classes_declared
                    && count != n
                {
                    warn(&e, &format!("but the label file has {count} names"));
                }
            }
            Err(err) => warn(l, &format!("{}: {err}", file.display())),
        }
        c.model.labels = Some(file);
    }
    Ok(Nvinfer {
        config: c,
        onnx,
        infer_dims,
        input_order,
        parser,
    })
}

/// Where a path entry points, for messages: as the user would name it.
pub(crate) fn named(e: &Entry) -> PathBuf {
    paths::beside(&e.file, &e.value)
}
