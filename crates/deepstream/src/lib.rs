//! `vigil import-deepstream`: a customer's `DeepStream` configs → a `vigil.yml` that runs.
//!
//! The input is an nvinfer config (`config_infer_primary_yoloV8.txt`, the DeepStream-Yolo
//! layout) or a deepstream-app config (`deepstream_app_config.txt`, whose `[primary-gie]` and
//! `[tracker]` name the nvinfer and nvtracker configs), plus optionally an nvtracker IOU config.
//! They are mapped to a [`vigil_config::Config`]; keys vigil handles differently or not at all
//! are warnings, bad values are errors naming `file:line: key=value`. The model the config
//! names is then opened and checked as every vigil process will check it (input size, the
//! decoder that reads its outputs), so a config that cannot run fails here, naming the key.
//!
//! Paths in `DeepStream` configs are relative to the file that names them; the written
//! vigil.yml holds them relative to its own folder.
//!
//! [`import_to_file`] is the command; [`import_in`] the same with relative names taken from a
//! given folder instead of the current one; [`import`] maps and checks without writing.

mod app;
mod ini;
mod model;
mod nvinfer;
mod paths;
mod tracker;

use std::path::{Path, PathBuf};

use eyre::eyre;
use vigil_config::Config;

pub use model::ModelSummary;

/// What an import produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The configuration, its paths relative to the output's folder.
    pub config: Config,
    /// The files read, as named on the command line or in the file that named them: the
    /// deepstream-app config (if that was the input), the nvinfer config, the tracker config.
    pub sources: Vec<PathBuf>,
    /// Keys vigil handles differently or ignores, each `file:line: key=value: why`.
    pub warnings: Vec<String>,
    /// What the model said, where it could be opened (else a warning says why not).
    pub model: Option<ModelSummary>,
}

/// An nvtracker IOU config alone → the `tracker` section it makes, with the warnings it gives
/// (keys vigil does not use).
pub fn tracker_settings(file: &Path) -> eyre::Result<(vigil_config::Tracker, Vec<String>)> {
    let mut config = Config::default();
    let mut warnings = Vec::new();
    tracker::map(file, file, &mut config, &mut warnings)?;
    Ok((config.tracker, warnings))
}

/// `vigil import-deepstream CONFIG [--tracker T] -o OUTPUT`: reads `config` (an nvinfer or a
/// deepstream-app config) and `tracker`, checks the result against the model and writes it to
/// `output` as a vigil.yml with a header naming the sources. Relative names are taken from the
/// current folder.
pub fn import_to_file(
    config: &Path,
    tracker: Option<&Path>,
    output: &Path,
) -> eyre::Result<Report> {
    let cwd = std::env::current_dir().map_err(|e| eyre!("the current folder: {e}"))?;
    import_in(&cwd, config, tracker, output)
}

/// [`import_to_file`] with relative names taken from `dir`, as if run there.
pub fn import_in(
    dir: &Path,
    config: &Path,
    tracker: Option<&Path>,
    output: &Path,
) -> eyre::Result<Report> {
    let out = paths::anchored(dir, output)?;
    let report = import_at(dir, config, tracker, paths::folder(&out))?;
    write(&report, output, &out)?;
    Ok(report)
}

/// Reads, maps and checks without writing: paths in the result are relative to `out_dir`,
/// where the vigil.yml would go. Relative names are taken from the current folder.
pub fn import(config: &Path, tracker: Option<&Path>, out_dir: &Path) -> eyre::Result<Report> {
    import_at(Path::new(""), config, tracker, out_dir)
}

fn import_at(
    dir: &Path,
    config: &Path,
    tracker: Option<&Path>,
    out_dir: &Path,
) -> eyre::Result<Report> {
    let out_dir = paths::anchored(dir, out_dir)?;
    let mut warnings = Vec::new();
    let mut sources = vec![config.to_owned()];
    let groups = read_ini(dir, config)?;
    let (infer, groups, overrides, app_tracker) = if app::is_app(&groups) {
        let app = app::read(config, &groups, tracker.is_some(), &mut warnings)?;
        let groups =
            read_ini(dir, &app.infer).map_err(|e| eyre!("{}: {e}", app.infer_entry.at()))?;
        sources.push(app.infer.clone());
        (app.infer, groups, app.overrides, app.tracker)
    } else {
        (config.to_owned(), groups, Vec::new(), None)
    };
    let mut nv = nvinfer::map(&infer, &groups, &overrides, dir, &mut warnings)?;
    let model = model::check(&mut nv, &mut warnings)?;
    let mut config = nv.config;
    if let Some(t) = tracker.map(Path::to_owned).or(app_tracker) {
        tracker::map(&t, &paths::anchored(dir, &t)?, &mut config, &mut warnings)?;
        sources.push(t);
    }
    config.model.path = paths::relative(&config.model.path, &out_dir);
    if let Some(labels) = &mut config.model.labels {
        *labels = paths::relative(labels, &out_dir);
    }
    Ok(Report {
        config,
        sources,
        warnings,
        model,
    })
}

/// The groups of the INI file `shown` (relative to `dir`).
fn read_ini(dir: &Path, shown: &Path) -> eyre::Result<Vec<ini::Group>> {
    let text = std::fs::read_to_string(paths::anchored(dir, shown)?)
        .map_err(|e| eyre!("reading {}: {e}", shown.display()))?;
    ini::parse(shown, &text)
}

/// Writes the config to `out` (named `shown` in messages) as a vigil.yml, with a header saying
/// where it came from.
fn write(report: &Report, shown: &Path, out: &Path) -> eyre::Result<()> {
    let names: Vec<String> = report
        .sources
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let sources = match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
        _ => names.concat(),
    };
    let checked = report
        .model
        .map(|m| {
            format!(
                "# Checked against the model: input {}x{} {}, decoder {}.\n",
                m.net_w,
                m.net_h,
                m.layout.as_str(),
                m.decoder.name()
            )
        })
        .unwrap_or_default();
    let mut text =
        format!("# vigil.yml imported from {sources} by `vigil import-deepstream`.\n{checked}");
    text.push_str(&report.config.to_yaml()?);
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| eyre!("creating {}: {e}", dir.display()))?;
    }
    std::fs::write(out, text).map_err(|e| eyre!("writing {}: {e}", shown.display()))
}

#[cfg(test)]
mod tests;
