//! `vigil.yml`: one file for a whole run — model, preprocessing, decoding, tracking — turned
//! into the `env:` of each node. Paths inside are relative to the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use eyre::WrapErr;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub model: ModelSettings,
    pub preprocess: PreprocessSettings,
    pub postprocess: PostprocessSettings,
    pub tracker: TrackerSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelSettings {
    pub path: PathBuf,
    pub labels: Option<PathBuf>,
    /// cpu, cuda or tensorrt.
    pub provider: String,
    /// Intra-op threads; 0 lets ONNX Runtime choose.
    pub threads: usize,
    /// auto, ultralytics, boxes or split.
    pub decoder: String,
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self {
            path: PathBuf::new(),
            labels: None,
            provider: "cpu".into(),
            threads: 0,
            decoder: "auto".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PreprocessSettings {
    /// Network input size and layout; read from the model when not given.
    pub net_w: Option<u32>,
    pub net_h: Option<u32>,
    pub layout: Option<String>,
    /// rgb, bgr or gray.
    pub color: String,
    pub scale: f32,
    pub offsets: [f32; 3],
    pub keep_aspect: bool,
    pub symmetric_padding: bool,
    pub pad_value: u8,
    /// Infer every k-th frame.
    pub interval: u64,
}

impl Default for PreprocessSettings {
    fn default() -> Self {
        Self {
            net_w: None,
            net_h: None,
            layout: None,
            color: "rgb".into(),
            scale: 1.0 / 255.0,
            offsets: [0.0; 3],
            keep_aspect: true,
            symmetric_padding: true,
            pad_value: 114,
            interval: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PostprocessSettings {
    pub conf_threshold: f32,
    pub iou_threshold: f32,
    pub top_k: usize,
    pub class_agnostic: bool,
    /// Per-class overrides by class id.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub classes: BTreeMap<u32, ClassSettings>,
}

/// One class's overrides (nvinfer's `[class-attrs-N]`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ClassSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conf_threshold: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iou_threshold: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_k: Option<usize>,
}

impl ClassSettings {
    fn env(&self) -> String {
        let mut parts = Vec::new();
        if let Some(v) = self.conf_threshold {
            parts.push(format!("conf={v}"));
        }
        if let Some(v) = self.iou_threshold {
            parts.push(format!("iou={v}"));
        }
        if let Some(v) = self.top_k {
            parts.push(format!("topk={v}"));
        }
        parts.join(",")
    }
}

impl Default for PostprocessSettings {
    fn default() -> Self {
        Self {
            conf_threshold: 0.25,
            iou_threshold: 0.45,
            top_k: 300,
            class_agnostic: false,
            classes: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrackerSettings {
    pub iou_threshold: f32,
    pub max_age: u32,
}

impl Default for TrackerSettings {
    fn default() -> Self {
        Self {
            iou_threshold: 0.3,
            max_age: 30,
        }
    }
}

impl Settings {
    /// Reads a settings file; relative paths in it become relative to its folder.
    pub fn load(path: &Path) -> eyre::Result<Self> {
        let text = std::fs::read_to_string(path)
            .wrap_err_with(|| format!("reading {}", path.display()))?;
        let mut s: Self =
            serde_yaml::from_str(&text).wrap_err_with(|| format!("parsing {}", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        if !s.model.path.as_os_str().is_empty() {
            s.model.path = dir.join(&s.model.path);
        }
        s.model.labels = s.model.labels.map(|l| dir.join(l));
        Ok(s)
    }

    /// The settings for a model: its `<stem>.yml` beside it when there is one, else defaults.
    pub fn for_model(model: &Path) -> eyre::Result<Self> {
        let sidecar = model.with_extension("yml");
        let mut s = if sidecar.is_file() {
            Self::load(&sidecar)?
        } else {
            Self::default()
        };
        model.clone_into(&mut s.model.path);
        Ok(s)
    }

    /// The `env:` of each node, by node id.
    pub fn node_env(&self) -> BTreeMap<&'static str, BTreeMap<String, String>> {
        let p = &self.preprocess;
        let mut pre = BTreeMap::from([
            ("VIGIL_COLOR".to_owned(), p.color.clone()),
            ("VIGIL_SCALE".to_owned(), p.scale.to_string()),
            (
                "VIGIL_OFFSETS".to_owned(),
                p.offsets.map(|o| o.to_string()).join(";"),
            ),
            ("VIGIL_KEEP_ASPECT".to_owned(), p.keep_aspect.to_string()),
            (
                "VIGIL_SYMMETRIC_PADDING".to_owned(),
                p.symmetric_padding.to_string(),
            ),
            ("VIGIL_PAD_VALUE".to_owned(), p.pad_value.to_string()),
            ("VIGIL_INTERVAL".to_owned(), p.interval.to_string()),
        ]);
        for (key, value) in [
            ("VIGIL_NET_W", p.net_w.map(|v| v.to_string())),
            ("VIGIL_NET_H", p.net_h.map(|v| v.to_string())),
            ("VIGIL_LAYOUT", p.layout.clone()),
        ] {
            if let Some(v) = value {
                pre.insert(key.to_owned(), v);
            }
        }
        let m = &self.model;
        let q = &self.postprocess;
        let infer = BTreeMap::from([
            ("VIGIL_MODEL".to_owned(), m.path.display().to_string()),
            ("VIGIL_PROVIDER".to_owned(), m.provider.clone()),
            ("VIGIL_THREADS".to_owned(), m.threads.to_string()),
            ("VIGIL_DECODER".to_owned(), m.decoder.clone()),
            ("VIGIL_CONF".to_owned(), q.conf_threshold.to_string()),
            ("VIGIL_IOU".to_owned(), q.iou_threshold.to_string()),
            ("VIGIL_TOPK".to_owned(), q.top_k.to_string()),
            (
                "VIGIL_CLASS_AGNOSTIC".to_owned(),
                q.class_agnostic.to_string(),
            ),
            (
                "VIGIL_CLASS_ATTRS".to_owned(),
                q.classes
                    .iter()
                    .map(|(c, a)| format!("{c}:{}", a.env()))
                    .collect::<Vec<_>>()
                    .join(";"),
            ),
        ]);
        let track = BTreeMap::from([
            (
                "VIGIL_TRACK_IOU".to_owned(),
                self.tracker.iou_threshold.to_string(),
            ),
            ("VIGIL_MAX_AGE".to_owned(), self.tracker.max_age.to_string()),
        ]);
        let labels: BTreeMap<String, String> = m
            .labels
            .iter()
            .map(|l| ("VIGIL_LABELS".to_owned(), l.display().to_string()))
            .collect();
        BTreeMap::from([
            ("preprocess", pre),
            ("infer", infer),
            ("track", track),
            ("preview", labels.clone()),
            ("sink", labels),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_paths_are_relative_to_the_file_and_unknown_keys_fail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("v.yml");
        std::fs::write(
            &path,
            "model:\n  path: m.onnx\n  labels: l.txt\npreprocess:\n  interval: 3\n",
        )
        .expect("write");
        let s = Settings::load(&path).expect("loads");
        assert_eq!(s.model.path, dir.path().join("m.onnx"));
        assert_eq!(s.preprocess.interval, 3);
        assert_eq!(s.node_env()["preprocess"]["VIGIL_INTERVAL"], "3");
        assert_eq!(
            s.node_env()["sink"]["VIGIL_LABELS"],
            dir.path().join("l.txt").display().to_string()
        );
        std::fs::write(&path, "model:\n  pth: m.onnx\n").expect("write");
        let err = format!("{:#}", Settings::load(&path).expect_err("unknown key"));
        assert!(err.contains("pth"), "{err}");
    }
}
