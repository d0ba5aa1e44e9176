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
    // Another nvtracker algorithm's sections: importing it as IOU would change trackers
    // behind the user's back.
    if let Some(other) = doc.keys().find(|k| OTHER_TRACKERS.contains(&k.as_str())) {
        bail!(
            "{}:{}: {other}: this is the config of another nvtracker algorithm (NvSORT, NvDCF or NvDeepSORT), not the IOU tracker's; vigil maps config_tracker_IOU.yml only: import without --tracker and choose tracker.kind bytetrack (a Kalman tracker) or iou",
            shown.display(),
            line_of(other)
        );
    }
    if doc.is_empty() {
        warnings.push(format!(
            "{}: no settings in it; the IOU tracker runs with vigil's defaults",
            shown.display()
        ));
    }
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
                    let v = unit()?.get();
                    if v < 0.01 {
                        // 0 would let boxes that do not overlap at all continue a track.
                        warnings.push(format!(
                            "{}={v}: vigil continues a target only on some overlap: tracker.iou_threshold 0.01",
                            at()
                        ));
                    }
                    t.iou_threshold = Unit::try_from(v.max(0.01))
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
                // The IOU associator (0), greedy (0), no score but IoU (0), no weight but
                // IoU's (0): what vigil does.
                (
                    "DataAssociator",
                    "dataAssociatorType"
                    | "associationMatcherType"
                    | "minMatchingScore4Overall"
                    | "minMatchingScore4SizeSimilarity"
                    | "matchingScoreWeight4SizeSimilarity"
                    | "matchingScoreWeight4VisualSimilarity",
                ) if num()? == 0.0 => {}
                ("DataAssociator", "associationMatcherType") => warnings.push(format!(
                    "{}={}: vigil's IOU tracker matches greedily (0), as nvtracker's default",
                    at(),
                    num()?
                )),
                // The weights only scale a score that is IoU alone when the others are 0.
                ("DataAssociator", "matchingScoreWeight4Iou") => {
                    num()?;
                }
                (
                    "DataAssociator",
                    "matchingScoreWeight4SizeSimilarity" | "matchingScoreWeight4VisualSimilarity",
                ) => warnings.push(format!(
                    "{}={}: vigil's IOU tracker ranks pairs by IoU alone, so pairs may be matched in another order",
                    at(),
                    num()?
                )),
                // One stream, boxes as the detector gave them, ids from a counter that never
                // repeats within a run: nothing for these to change.
                ("TargetManagement", "enableBboxUnClipping" | "preserveStreamUpdateOrder")
                | ("TrajectoryManagement", "useUniqueID") => {}
                ("DataAssociator", "dataAssociatorType") => {
                    bail!("{}: only 0 (the IOU data associator) is known", at())
                }
                _ => warnings.push(format!("{}: {}", at(), unknown(section, key))),
            }
        }
    }
    Ok(())
}

/// Sections only the other nvtracker algorithms have.
const OTHER_TRACKERS: &[&str] = &[
    "StateEstimator",
    "VisualTracker",
    "ReID",
    "Segmenter",
    "ObjectModelProjection",
    "MultiViewAssociator",
];

/// Every key the IOU tracker's config may hold, by section.
const KNOWN: &[(&str, &str)] = &[
    ("BaseConfig", "minDetectorConfidence"),
    ("TargetManagement", "maxTargetsPerStream"),
    ("TargetManagement", "minIouDiff4NewTarget"),
    ("TargetManagement", "probationAge"),
    ("TargetManagement", "maxShadowTrackingAge"),
    ("TargetManagement", "earlyTerminationAge"),
    ("TargetManagement", "enableBboxUnClipping"),
    ("TargetManagement", "preserveStreamUpdateOrder"),
    ("TrajectoryManagement", "useUniqueID"),
    ("DataAssociator", "dataAssociatorType"),
    ("DataAssociator", "associationMatcherType"),
    ("DataAssociator", "checkClassMatch"),
    ("DataAssociator", "minMatchingScore4Overall"),
    ("DataAssociator", "minMatchingScore4SizeSimilarity"),
    ("DataAssociator", "minMatchingScore4Iou"),
    ("DataAssociator", "matchingScoreWeight4Iou"),
    ("DataAssociator", "matchingScoreWeight4SizeSimilarity"),
    ("DataAssociator", "matchingScoreWeight4VisualSimilarity"),
];

/// Why a key is not used: it is not nvtracker's (with the nearest one that is), it belongs in
/// another section, or it is one vigil's IOU tracker has no use for.
fn unknown(section: &str, key: &str) -> String {
    if KNOWN.contains(&(section, key)) {
        return "not used by vigil's IOU tracker (it matches on IoU alone), ignored".to_owned();
    }
    if let Some((home, _)) = KNOWN.iter().find(|(s, k)| *k == key && *s != section) {
        return format!("belongs in {home}, not {section}: ignored");
    }
    let nearest = KNOWN
        .iter()
        .map(|(s, k)| (edits(key, k), *s, *k))
        .min_by_key(|(d, _, _)| *d);
    match nearest {
        Some((d, s, k)) if d <= 3 => format!("unknown key, ignored (did you mean {s}.{k}?)"),
        _ => "not used by vigil's IOU tracker, ignored".to_owned(),
    }
}

/// Levenshtein distance, case-insensitive.
fn edits(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (
        a.to_lowercase().chars().collect(),
        b.to_lowercase().chars().collect(),
    );
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
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
        assert_eq!(warnings.len(), 4, "{warnings:?}");
        // Sections in name order, keys in file order.
        assert!(
            warnings[0]
                .starts_with("t.yml:9: DataAssociator.minMatchingScore4Iou=0: vigil continues"),
            "{warnings:?}"
        );
        assert!(
            warnings[1].starts_with("t.yml:11: DataAssociator.associationMatcherType=1"),
            "{warnings:?}"
        );
        assert!(
            warnings[2].starts_with("t.yml:12: DataAssociator.minMatchingScore4SizeSimilarity: not used by vigil's IOU tracker (it matches on IoU alone)"),
            "{warnings:?}"
        );
        assert!(
            warnings[3].starts_with(
                "t.yml:6: TargetManagement.frobnicate: not used by vigil's IOU tracker, ignored"
            ),
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

    #[test]
    fn nvidias_stock_iou_file_imports_and_mistakes_are_named() {
        // DeepStream's sample config_tracker_IOU.yml keys, probation 4, IoU floor 0.
        let (config, warnings) = import(
            "%YAML:1.0\nBaseConfig:\n  minDetectorConfidence: 0\nTargetManagement:\n  preserveStreamUpdateOrder: 0\n  maxTargetsPerStream: 150\n  minIouDiff4NewTarget: 0.5\n  probationAge: 4\n  maxShadowTrackingAge: 38\n  earlyTerminationAge: 1\nTrajectoryManagement:\n  useUniqueID: 0\nDataAssociator:\n  dataAssociatorType: 0\n  associationMatcherType: 0\n  checkClassMatch: 1\n  minMatchingScore4Overall: 0.0\n  minMatchingScore4SizeSimilarity: 0.0\n  minMatchingScore4Iou: 0.0\n  matchingScoreWeight4SizeSimilarity: 0.0\n  matchingScoreWeight4Iou: 1.0\n",
        );
        let t = config.expect("maps").tracker;
        assert_eq!(t.probation_age, 4);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("t.yml:19: DataAssociator.minMatchingScore4Iou=0: vigil continues a target only on some overlap"),
            "{warnings:?}"
        );
        // A typo, a key in the wrong section, an empty file.
        let (_, w) =
            import("TargetManagement:\n  maxShadowTrackAge: 5\n  minDetectorConfidence: 0.2\n");
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].ends_with("(did you mean TargetManagement.maxShadowTrackingAge?)"),
            "{w:?}"
        );
        assert!(
            w[1].ends_with("belongs in BaseConfig, not TargetManagement: ignored"),
            "{w:?}"
        );
        let (_, w) = import("%YAML:1.0\n");
        assert!(w[0].contains("no settings in it"), "{w:?}");
        // Another tracker's config is refused, naming the section.
        let err = import("%YAML:1.0\nBaseConfig:\n  minDetectorConfidence: 0\nStateEstimator:\n  stateEstimatorType: 1\n")
            .0
            .expect_err("NvDCF")
            .to_string();
        assert!(
            err.starts_with(
                "t.yml:4: StateEstimator: this is the config of another nvtracker algorithm"
            ),
            "{err}"
        );
    }
}
