//! An nvtracker low-level config (`config_tracker_IOU.yml`) → vigil's IOU tracker settings
//! (`tracker.kind: iou`), every target-management and association key of nvtracker's IOU
//! tracker mapped to the setting that does the same.

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
    config.tracker.kind = vigil_config::TrackerKind::Iou;
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
            let count = || {
                let v = num()?;
                if v < 0.0 || v.fract() != 0.0 || v > f64::from(u32::MAX) {
                    bail!("{}: expected a frame count, found {v}", at());
                }
                Ok(v as u32)
            };
            let unit = || {
                let v = num()?;
                Unit::try_from(v as f32).map_err(|why| eyre!("{}: {why}", at()))
            };
            let flag = || match num()? {
                0.0 => Ok(false),
                1.0 => Ok(true),
                v => Err(eyre!("{}: expected 0 or 1, found {v}", at())),
            };
            let t = &mut config.tracker;
            match (section.as_str(), key) {
                ("DataAssociator", "minMatchingScore4Iou") => {
                    // 0 would let boxes that do not overlap at all continue a track.
                    t.iou_threshold = Unit::try_from(unit()?.get().max(0.01))
                        .map_err(|why| eyre!("{}: {why}", at()))?;
                }
                ("TargetManagement", "maxShadowTrackingAge") => t.max_age = count()?,
                ("TargetManagement", "probationAge") => t.probation_age = count()?,
                ("TargetManagement", "earlyTerminationAge") => t.early_termination_age = count()?,
                ("TargetManagement", "minIouDiff4NewTarget") => t.new_target_overlap = unit()?,
                ("TargetManagement", "maxTargetsPerStream") => {
                    let n = count()?;
                    if n == 0 {
                        bail!("{}: 0 would track nothing", at());
                    }
                    t.max_targets = n as usize;
                }
                ("BaseConfig", "minDetectorConfidence") => t.min_confidence = unit()?,
                ("DataAssociator", "checkClassMatch") => t.class_match = flag()?,
                // The IOU associator (0), greedy (0), no score but IoU (0): what vigil does.
                (
                    "DataAssociator",
                    "dataAssociatorType"
                    | "associationMatcherType"
                    | "minMatchingScore4Overall"
                    | "minMatchingScore4SizeSimilarity",
                ) if num()? == 0.0 => {}
                ("DataAssociator", "associationMatcherType") => warnings.push(format!(
                    "{}={}: vigil's IOU tracker matches greedily (0), as nvtracker's default",
                    at(),
                    num()?
                )),
                // One stream, boxes as the detector gave them: nothing for these to change.
                ("TargetManagement", "enableBboxUnClipping" | "preserveStreamUpdateOrder") => {}
                ("DataAssociator", "dataAssociatorType") => {
                    bail!("{}: only 0 (the IOU data associator) is known", at())
                }
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

    fn import(text: &str) -> (eyre::Result<Config>, Vec<String>) {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("t.yml");
        std::fs::write(&file, text).expect("write");
        let mut config = Config::default();
        let mut warnings = Vec::new();
        let r = map(Path::new("t.yml"), &file, &mut config, &mut warnings);
        (r.map(|()| config), warnings)
    }

    #[test]
    fn the_customers_file_maps_every_key_without_a_warning() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/deepstream/config_tracker_IOU.yml"
        ))
        .expect("fixture");
        let (config, warnings) = import(&text);
        let t = config.expect("maps").tracker;
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(t.kind, vigil_config::TrackerKind::Iou);
        assert_eq!(
            (
                t.max_targets,
                t.new_target_overlap.get(),
                t.probation_age,
                t.max_age,
                t.early_termination_age,
                t.class_match,
                t.min_confidence.get(),
                t.iou_threshold.get(),
            ),
            (150, 0.5, 0, 38, 1, true, 0.0, 0.3)
        );
    }

    #[test]
    fn iou_tracker_keys_map_and_bad_values_name_the_line() {
        let (config, warnings) = import(
            "%YAML:1.0\nBaseConfig:\n  minDetectorConfidence: 0.5\nTargetManagement:\n  maxShadowTrackingAge: 12\n  frobnicate: 1\n  probationAge: 3\nDataAssociator:\n  minMatchingScore4Iou: 0\n  checkClassMatch: 0\n  associationMatcherType: 1\n  minMatchingScore4SizeSimilarity: 0.6\n",
        );
        let t = config.expect("maps").tracker;
        assert_eq!((t.max_age, t.probation_age, t.class_match), (12, 3, false));
        assert_eq!(Some(t.min_confidence), Unit::try_from(0.5).ok());
        assert_eq!(
            Some(t.iou_threshold),
            Unit::try_from(0.01).ok(),
            "0 would match anything"
        );
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        // Sections in name order, keys in file order.
        assert!(
            warnings[0].starts_with("t.yml:11: DataAssociator.associationMatcherType=1"),
            "{warnings:?}"
        );
        assert!(
            warnings[1].starts_with("t.yml:12: DataAssociator.minMatchingScore4SizeSimilarity"),
            "{warnings:?}"
        );
        assert!(
            warnings[2].starts_with("t.yml:6: TargetManagement.frobnicate"),
            "{warnings:?}"
        );
        for (text, what) in [
            (
                "TargetManagement:\n  maxShadowTrackingAge: 1.5\n",
                "TargetManagement.maxShadowTrackingAge",
            ),
            (
                "TargetManagement:\n  probationAge: -1\n",
                "TargetManagement.probationAge",
            ),
            (
                "TargetManagement:\n  maxTargetsPerStream: 0\n",
                "TargetManagement.maxTargetsPerStream",
            ),
            (
                "TargetManagement:\n  minIouDiff4NewTarget: 1.5\n",
                "TargetManagement.minIouDiff4NewTarget",
            ),
            (
                "DataAssociator:\n  checkClassMatch: 2\n",
                "DataAssociator.checkClassMatch",
            ),
            (
                "DataAssociator:\n  dataAssociatorType: 1\n",
                "DataAssociator.dataAssociatorType",
            ),
            (
                "BaseConfig:\n  minDetectorConfidence: yes\n",
                "BaseConfig.minDetectorConfidence",
            ),
        ] {
            let err = import(text).0.expect_err(what).to_string();
            assert!(err.starts_with(&format!("t.yml:2: {what}")), "{err}");
        }
    }
}
