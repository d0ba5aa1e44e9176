//! An nvtracker low-level config (`config_tracker_IOU.yml`) → the settings vigil's IOU tracker
//! has.

use std::collections::BTreeMap;
use std::path::Path;

use eyre::{bail, eyre};
use vigil_config::{Config, Unit};

/// Reads `file` (named `shown` in messages) into `config.tracker`.
pub(crate) fn map(
    shown: &Path,
    file: &Path,
    config: &mut Config,
    warnings: &mut Vec<String>,
) -> eyre::Result<()> {
    let text =
        std::fs::read_to_string(file).map_err(|e| eyre!("reading {}: {e}", shown.display()))?;
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
        serde_yaml::from_str(&body).map_err(|e| eyre!("parsing {}: {e}", shown.display()))?;
    let line_of = |key: &str| {
        text.lines()
            .position(|l| l.trim_start().starts_with(&format!("{key}:")))
            .map_or(0, |i| i + 1)
    };
    for (section, v) in &doc {
        let Some(map) = v.as_mapping() else {
            warnings.push(format!(
                "{}: {section}: not a mapping, ignored",
                shown.display()
            ));
            continue;
        };
        for (k, v) in map {
            let key = k.as_str().unwrap_or_default();
            let at = || format!("{}:{}: {section}.{key}", shown.display(), line_of(key));
            let num = || {
                v.as_f64()
                    .ok_or_else(|| eyre!("{}: expected a number, found {v:?}", at()))
            };
            match (section.as_str(), key) {
                ("DataAssociator", "minMatchingScore4Iou") => {
                    let v = num()?;
                    if !(0.0..=1.0).contains(&v) {
                        bail!("{}: expected 0..=1", at());
                    }
                    // 0 would let boxes that do not overlap at all continue a track.
                    config.tracker.iou_threshold = Unit::try_from((v as f32).max(0.01))
                        .map_err(|why| eyre!("{}: {why}", at()))?;
                }
                ("TargetManagement", "maxShadowTrackingAge") => {
                    let v = num()?;
                    if v < 0.0 || v.fract() != 0.0 {
                        bail!("{}: expected a frame count", at());
                    }
                    config.tracker.max_age = v as u32;
                }
                ("BaseConfig", "minDetectorConfidence") => {
                    let v = num()? as f32;
                    let conf = config.postprocess.conf_threshold.get();
                    if v > conf {
                        warnings.push(format!(
                            "{}={v}: vigil tracks every detection it keeps (conf_threshold {conf})",
                            at()
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
                    "{}: not used by vigil's IOU tracker, ignored",
                    at()
                )),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iou_tracker_keys_map_and_bad_values_name_the_line() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("t.yml");
        std::fs::write(
            &file,
            "%YAML:1.0\nBaseConfig:\n  minDetectorConfidence: 0.5\nTargetManagement:\n  maxShadowTrackingAge: 12\n  frobnicate: 1\nDataAssociator:\n  minMatchingScore4Iou: 0\n",
        )
        .expect("write");
        let mut config = Config::default();
        let mut warnings = Vec::new();
        map(Path::new("t.yml"), &file, &mut config, &mut warnings).expect("maps");
        assert_eq!(config.tracker.max_age, 12);
        assert_eq!(
            Some(config.tracker.iou_threshold),
            Unit::try_from(0.01).ok(),
            "0 would match anything"
        );
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[0].starts_with("t.yml:3: BaseConfig.minDetectorConfidence=0.5"),
            "{warnings:?}"
        );
        assert!(
            warnings[1].starts_with("t.yml:6: TargetManagement.frobnicate"),
            "{warnings:?}"
        );

        std::fs::write(&file, "TargetManagement:\n  maxShadowTrackingAge: 1.5\n").expect("write");
        let err = map(Path::new("t.yml"), &file, &mut config, &mut warnings)
            .expect_err("not a count")
            .to_string();
        assert!(
            err.starts_with("t.yml:2: TargetManagement.maxShadowTrackingAge"),
            "{err}"
        );
    }
}
