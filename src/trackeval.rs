//! `vigil track-eval GT.txt RESULT.txt`: a tracker's output against ground truth, both
//! MOTChallenge 2D text, scored as motmetrics 1.4.0 scores them (`vigil_mot`): a readable
//! block, or with `--format json` one object under motmetrics' metric names.

use std::fmt::Write as _;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use eyre::WrapErr;
use vigil_mot::{Metrics, Sequence};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Ground truth: `frame,id,bb_left,bb_top,bb_width,bb_height,conf[,x,y[,z]]` lines.
    ground_truth: PathBuf,
    /// The tracker's output, in the same form (lines with conf below -1 left out, as motmetrics reads it).
    result: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Ground-truth lines whose conf is below this are left out (MOTChallenge marks boxes to
    /// ignore with 0).
    #[arg(long, default_value_t = vigil_mot::GROUND_TRUTH_MIN_CONFIDENCE)]
    min_confidence: f64,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum Format {
    Text,
    Json,
}

pub fn run(args: &Args) -> eyre::Result<()> {
    if !args.min_confidence.is_finite() {
        eyre::bail!("--min-confidence {}: a finite number", args.min_confidence);
    }
    let gt = read(&args.ground_truth, args.min_confidence)?;
    if gt.rows().is_empty() {
        eyre::bail!(
            "{}: no ground-truth box (none with conf at least {}): nothing to score against",
            args.ground_truth.display(),
            args.min_confidence
        );
    }
    let result = read(&args.result, vigil_mot::RESULT_MIN_CONFIDENCE)?;
    if result.rows().is_empty() {
        eprintln!(
            "warning: {}: no box in it: every ground-truth box is a miss",
            args.result.display()
        );
    }
    let m = vigil_mot::evaluate(&gt, &result, vigil_mot::MAX_DISTANCE);
    match args.format {
        // serde_json writes a NaN (motmetrics' 0/0) as null.
        Format::Json => println!("{}", serde_json::to_string_pretty(&m)?),
        Format::Text => print!("{}", text(args, &m)),
    }
    Ok(())
}

/// A MOTChallenge file, named by its path in errors.
pub(crate) fn read(path: &Path, min_confidence: f64) -> eyre::Result<Sequence> {
    if path.is_dir() {
        eyre::bail!("{}: a folder, not a MOTChallenge file", path.display());
    }
    let file = std::fs::File::open(path).wrap_err_with(|| format!("{}", path.display()))?;
    let name = path.display().to_string();
    Ok(vigil_mot::parse(
        &name,
        BufReader::new(file),
        min_confidence,
    )?)
}

fn text(args: &Args, m: &Metrics) -> String {
    let pct = |v: f64| format!("{:.1}%", 100.0 * v);
    let mut out = String::new();
    let mut line = |label: &str, value: String, note: &str| {
        let text = format!("{label:<18}{value:>8}  {note}");
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(
        "ground truth",
        m.num_objects.to_string(),
        &format!(
            "boxes of {} objects in {} frames ({})",
            m.num_unique_objects,
            m.num_frames,
            args.ground_truth.display()
        ),
    );
    line(
        "result",
        m.num_predictions.to_string(),
        &format!("boxes ({})", args.result.display()),
    );
    line(
        "MOTA",
        pct(m.mota),
        "1 − (misses + switches + false positives) / ground-truth boxes",
    );
    line(
        "MOTP",
        format!("{:.3}", m.motp),
        "mean 1 − IoU of the matched pairs, as motmetrics reports it (lower is better)",
    );
    line(
        "IDF1",
        pct(m.idf1),
        "ID measures: one hypothesis id per object id",
    );
    line("IDP", pct(m.idp), "");
    line("IDR", pct(m.idr), "");
    line("recall", pct(m.recall), "");
    line("precision", pct(m.precision), "");
    line("matches", m.num_matches.to_string(), "");
    line("switches", m.num_switches.to_string(), "");
    line("fragmentations", m.num_fragmentations.to_string(), "");
    line("false positives", m.num_false_positives.to_string(), "");
    line("misses", m.num_misses.to_string(), "");
    line(
        "mostly tracked",
        m.mostly_tracked.to_string(),
        "objects, ≥ 80% of their frames",
    );
    line("partially tracked", m.partially_tracked.to_string(), "");
    line(
        "mostly lost",
        m.mostly_lost.to_string(),
        "objects, < 20% of their frames",
    );
    line(
        "transfers",
        m.num_transfer.to_string(),
        &format!("ascends {}, migrates {}", m.num_ascend, m.num_migrate),
    );
    out
}
