//! A deepstream-app config (`deepstream_app_config.txt`): where its nvinfer and nvtracker
//! configs are, and the `[primary-gie]` keys that win over the nvinfer config's (deepstream-app
//! sets them on the element after its `config-file-path`).
//!
//! The groups that only concern sources, sinks, display and muxing are accepted and ignored;
//! other groups are warned about.

use std::path::{Path, PathBuf};

use eyre::bail;

use crate::ini::{Entry, Group};
use crate::paths;

/// What a deepstream-app config says about detection.
#[derive(Debug)]
pub(crate) struct App {
    /// `[primary-gie] config-file=`, as the user would name it.
    pub infer: PathBuf,
    pub infer_entry: Entry,
    /// `[primary-gie]` keys that win over the nvinfer config's `[property]`.
    pub overrides: Vec<Entry>,
    /// `[tracker] ll-config-file=` where the tracker is enabled, as the user would name it.
    pub tracker: Option<PathBuf>,
}

/// Groups of a deepstream-app config that do not concern detection.
fn ignored(group: &str) -> bool {
    matches!(
        group,
        "application" | "tiled-display" | "osd" | "streammux" | "tests" | "img-save"
    ) || ["source", "sink", "message-converter", "message-consumer"]
        .iter()
        .any(|p| group.starts_with(p))
}

/// `[primary-gie]` keys nvinfer's own config maps, set by deepstream-app on the element.
const OVERRIDES: &[&str] = &[
    "interval",
    "batch-size",
    "model-engine-file",
    "labelfile-path",
];

/// `[primary-gie]` keys that only concern the GPU, other elements or the display.
const GIE_ACCEPTED: &[&str] = &[
    "gpu-id",
    "gie-unique-id",
    "nvbuf-memory-type",
    "input-tensor-meta",
    "operate-on-gie-id",
    "operate-on-class-ids",
    "infer-raw-output-dir",
];

/// `[tracker]` keys that only concern the GPU, the display or the tracker library.
const TRACKER_ACCEPTED: &[&str] = &[
    "ll-lib-file",
    "tracker-width",
    "tracker-height",
    "gpu-id",
    "enable-batch-process",
    "enable-past-frame",
    "display-tracking-id",
    "tracking-id-reset-mode",
    "tracking-surface-type",
    "tracker-surface-type",
    "compute-hw",
    "user-meta-pool-size",
    "sub-batches",
    "sub-batch-err-recovery-trial-cnt",
];

/// True for a deepstream-app config: no nvinfer `[property]`, and groups only it has.
pub(crate) fn is_app(groups: &[Group]) -> bool {
    !groups.iter().any(|g| g.name == "property")
        && groups
            .iter()
            .any(|g| g.name == "primary-gie" || g.name == "tracker" || ignored(&g.name))
}

/// Reads the app config `path`. With `tracker_given` (an explicit `--tracker`), `[tracker]`
/// names no file.
pub(crate) fn read(
    path: &Path,
    groups: &[Group],
    tracker_given: bool,
    warnings: &mut Vec<String>,
) -> eyre::Result<App> {
    let (mut gie, mut enabled, mut infer) = (None, false, None);
    let (mut overrides, mut tracker) = (Vec::new(), None);
    for g in groups {
        let name = g.name.as_str();
        if name == "primary-gie" {
            gie = Some(g);
            for e in &g.entries {
                let k = e.key.as_str();
                match k {
                    "enable" => enabled = e.flag()?,
                    "config-file" => infer = Some(e.clone()),
                    "plugin-type" => {
                        if e.value != "0" {
                            bail!(
                                "{}: vigil reads nvinfer configs (plugin-type=0), not nvinferserver's",
                                e.at()
                            );
                        }
                    }
                    k if OVERRIDES.contains(&k) => overrides.push(e.clone()),
                    k if GIE_ACCEPTED.contains(&k)
                        || k.starts_with("bbox-border-color")
                        || k.starts_with("bbox-bg-color") => {}
                    _ => warn(warnings, e, "unknown key, ignored"),
                }
            }
        } else if name == "tracker" {
            tracker = tracker_file(path, g, tracker_given, warnings)?;
        } else if !ignored(name) {
            let why = if name.starts_with("secondary-gie") {
                "vigil runs the primary detector only"
            } else {
                "not used by vigil"
            };
            warnings.push(format!(
                "{}:{}: [{name}]: {why}, ignored",
                path.display(),
                g.line
            ));
        }
    }
    let Some(gie) = gie else {
        bail!(
            "{}: no [primary-gie]: vigil imports the primary detector",
            path.display()
        );
    };
    if !enabled {
        bail!(
            "{}:{}: [primary-gie] is not enabled (enable=1): deepstream-app would run no detector, and vigil needs one",
            path.display(),
            gie.line
        );
    }
    let Some(infer_entry) = infer else {
        bail!(
            "{}:{}: [primary-gie] has no config-file (the nvinfer config)",
            path.display(),
            gie.line
        );
    };
    Ok(App {
        infer: paths::beside(path, &infer_entry.value),
        infer_entry,
        overrides,
        tracker,
    })
}

fn warn(warnings: &mut Vec<String>, e: &Entry, why: &str) {
    warnings.push(format!("{}: {why}", e.at()));
}

/// The low-level config an enabled `[tracker]` names.
fn tracker_file(
    path: &Path,
    g: &Group,
    tracker_given: bool,
    warnings: &mut Vec<String>,
) -> eyre::Result<Option<PathBuf>> {
    let (mut enabled, mut file) = (false, None);
    for e in &g.entries {
        let k = e.key.as_str();
        match k {
            "enable" => enabled = e.flag()?,
            "ll-config-file" => file = Some(e),
            k if TRACKER_ACCEPTED.contains(&k) => {}
            _ => warn(warnings, e, "unknown key, ignored"),
        }
    }
    if tracker_given {
        return Ok(None);
    }
    // vigil's dataflow always tracks: without a config its tracker keeps vigil's defaults.
    let head = format!("{}:{}: [tracker]", path.display(), g.line);
    if !enabled {
        warnings.push(format!(
            "{head} is not enabled, no tracker config read; vigil always tracks, with its defaults"
        ));
        return Ok(None);
    }
    let Some(e) = file else {
        warnings.push(format!(
            "{head} has no ll-config-file; vigil's tracker keeps its defaults"
        ));
        return Ok(None);
    };
    // One file per sub-batch; vigil runs one stream, with the first.
    let mut names = e.value.split(';').map(str::trim).filter(|n| !n.is_empty());
    let Some(first) = names.next() else {
        bail!("{}: expected a file name", e.at());
    };
    if names.next().is_some() {
        warn(
            warnings,
            e,
            &format!("one config per sub-batch; vigil reads {first}"),
        );
    }
    Ok(Some(paths::beside(path, first)))
}
