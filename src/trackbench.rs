//! `vigil track-bench`: the trackers measured against ground truth. For every sequence under
//! the data folder (MOTChallenge layout: `<name>/gt.txt`), every noise level and every
//! inference interval, detections are made from the ground truth with seeded noise
//! ([`crate::synth`]), each tracker runs on them as the track node runs it (matched on the
//! inferred frames, predicted on the others, every frame's shown tracks written as the
//! hypothesis), and `vigil_mot` scores the result against the ground truth. Counts are summed
//! over sequences and seeds before the rates are taken.
//!
//! The IOU tracker gets what the kiosk's detector gives it today (detections at or above its
//! `--conf`, 0.25 as its nvinfer `pre-cluster-threshold`) with the settings of the customer's
//! `config_tracker_IOU.yml`; ByteTrack gets detections down to its low threshold, as it is
//! meant to run, with its default thresholds (0.5, new tracks 0.6).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use eyre::{WrapErr, bail, eyre};
use vigil_detect::{BBox, Detection};
use vigil_mot::{MAX_DISTANCE, Metrics, Row, Sequence};
use vigil_track::{Tracker, TrackerConfig};

use crate::synth::{self, LEVELS, Noise, Truth};

/// Inference on every 1st, 2nd and 3rd frame.
pub const INTERVALS: [u32; 3] = [1, 2, 3];

pub struct Options {
    pub data: PathBuf,
    pub seeds: u64,
    pub iou_config: PathBuf,
    pub conf: f32,
    /// ByteTrack's detections start here (default: its low threshold).
    pub bytetrack_conf: Option<f32>,
}

/// One tracker as the benchmark runs it: its settings and the score its detections start at.
struct Contender {
    name: &'static str,
    config: TrackerConfig,
    min_score: f32,
}

/// Sums over sequences and seeds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub objects: u64,
    pub predictions: u64,
    pub misses: u64,
    pub false_positives: u64,
    pub switches: u64,
    pub fragmentations: u64,
    pub idtp: u64,
    /// Sum of 1 − IoU over matches.
    pub distance: f64,
    pub matched: u64,
}

impl Totals {
    fn add(&mut self, m: &Metrics) {
        self.objects += m.num_objects;
        self.predictions += m.num_predictions;
        self.misses += m.num_misses;
        self.false_positives += m.num_false_positives;
        self.switches += m.num_switches;
        self.fragmentations += m.num_fragmentations;
        self.idtp += m.idtp;
        if m.num_detections > 0 {
            self.distance += m.motp * m.num_detections as f64;
        }
        self.matched += m.num_detections;
    }

    #[must_use]
    pub fn mota(&self) -> f64 {
        1.0 - (self.misses + self.false_positives + self.switches) as f64
            / self.objects.max(1) as f64
    }

    #[must_use]
    pub fn idf1(&self) -> f64 {
        2.0 * self.idtp as f64 / (self.objects + self.predictions).max(1) as f64
    }

    /// motmetrics' MOTP: mean 1 − IoU of the matches.
    #[must_use]
    pub fn motp(&self) -> f64 {
        self.distance / self.matched.max(1) as f64
    }
}

/// One sequence's ground truth.
struct Sequenced {
    name: String,
    truth: Sequence,
    boxes: Vec<Truth>,
    last_frame: u32,
}

fn load(dir: &Path) -> eyre::Result<Vec<Sequenced>> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .wrap_err_with(|| format!("reading {}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("gt.txt").is_file())
        .collect();
    names.sort();
    if names.is_empty() {
        bail!(
            "{}: no sequence (a folder with gt.txt) in it; `bash ci/setup` fetches TUD-Campus and TUD-Stadtmitte there",
            dir.display()
        );
    }
    names
        .iter()
        .map(|p| {
            let file = p.join("gt.txt");
            let shown = file.display().to_string();
            let truth = crate::trackeval::read(&file, vigil_mot::GROUND_TRUTH_MIN_CONFIDENCE)?;
            let mut boxes = Vec::new();
            for r in truth.rows() {
                // The parser refuses frames below 1.
                let frame = u32::try_from(r.frame)
                    .map_err(|_| eyre!("{shown}: frame {} is too large", r.frame))?;
                let id =
                    u64::try_from(r.id).map_err(|_| eyre!("{shown}: id {} is negative", r.id))?;
                boxes.push(Truth {
                    frame,
                    id,
                    bbox: BBox::new(
                        r.left as f32,
                        r.top as f32,
                        (r.left + r.width) as f32,
                        (r.top + r.height) as f32,
                    ),
                });
            }
            let last_frame = boxes.iter().map(|b| b.frame).max().unwrap_or(0);
            Ok(Sequenced {
                name: p
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
                truth,
                boxes,
                last_frame,
            })
        })
        .collect()
}

/// The tracker run over one sequence's detections, inferring every `interval`-th frame
/// (frames 1, 1 + interval, …): every frame's shown tracks as MOTChallenge rows.
fn run(
    contender: &Contender,
    detections: &BTreeMap<u32, Vec<Detection>>,
    last_frame: u32,
    interval: u32,
) -> Vec<Row> {
    let mut tracker = Tracker::new(contender.config);
    let mut rows = Vec::new();
    for frame in 1..=last_frame {
        let tracks = if (frame - 1) % interval == 0 {
            let dets: Vec<Detection> = detections
                .get(&frame)
                .into_iter()
                .flatten()
                .filter(|d| d.score >= contender.min_score)
                .copied()
                .collect();
            tracker.update(&dets)
        } else {
            tracker.predict()
        };
        for t in tracks {
            let b = t.bbox;
            rows.push(Row {
                frame: i64::from(frame),
                id: i64::try_from(t.id).unwrap_or(i64::MAX),
                left: f64::from(b.x1),
                top: f64::from(b.y1),
                width: f64::from(b.x2 - b.x1),
                height: f64::from(b.y2 - b.y1),
                conf: f64::from(t.score),
            });
        }
    }
    rows
}

/// One line of the table.
pub struct Line {
    pub noise: &'static str,
    pub interval: u32,
    pub tracker: &'static str,
    pub totals: Totals,
}

fn contenders(opts: &Options) -> eyre::Result<Vec<Contender>> {
    let (iou, warnings) = vigil_deepstream::tracker_settings(&opts.iou_config)?;
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let bytetrack = vigil_config::Tracker {
        kind: vigil_config::TrackerKind::ByteTrack,
        ..vigil_config::Tracker::default()
    };
    Ok(vec![
        Contender {
            name: "IOU (nvtracker)",
            config: vigil_track_node::tracker_config(&iou),
            min_score: opts.conf,
        },
        Contender {
            name: "ByteTrack",
            config: vigil_track_node::tracker_config(&bytetrack),
            min_score: opts
                .bytetrack_conf
                .unwrap_or_else(|| bytetrack.bytetrack.low_threshold.get()),
        },
    ])
}

/// What was measured: the sequences' names and every line of the table.
pub struct Measured {
    pub sequences: Vec<String>,
    pub lines: Vec<Line>,
}

/// Every line of the table: noise level × interval × tracker.
pub fn measure(opts: &Options) -> eyre::Result<Measured> {
    if opts.seeds == 0 {
        bail!("--seeds: at least 1");
    }
    let sequences = load(&opts.data)?;
    let contenders = contenders(opts)?;
    let mut lines = Vec::new();
    for (level, noise) in LEVELS.iter().enumerate() {
        // Each (sequence, seed) gets its detections once; every tracker and interval sees them.
        let mut inputs = Vec::new();
        for (s, seq) in sequences.iter().enumerate() {
            for seed in 0..opts.seeds {
                let key = ((level as u64) << 48) | ((s as u64) << 32) | seed;
                inputs.push((seq, synth::detections(&seq.boxes, noise, key)));
            }
        }
        for interval in INTERVALS {
            for c in &contenders {
                let mut totals = Totals::default();
                for (seq, dets) in &inputs {
                    let rows = run(c, dets, seq.last_frame, interval);
                    let hyp = Sequence::from_rows(&seq.name, rows)?;
                    let m = vigil_mot::evaluate(&seq.truth, &hyp, MAX_DISTANCE);
                    totals.add(&m);
                }
                lines.push(Line {
                    noise: noise.name,
                    interval,
                    tracker: c.name,
                    totals,
                });
            }
        }
    }
    Ok(Measured {
        sequences: sequences.into_iter().map(|s| s.name).collect(),
        lines,
    })
}

/// The table in Markdown, then the goal per noise level at inference on every 2nd and every
/// 3rd frame: ByteTrack with at most half the IOU tracker's ID switches and a higher IDF1.
#[must_use]
pub fn report(opts: &Options, measured: &Measured) -> String {
    let mut out = String::new();
    let (names, lines) = (&measured.sequences, &measured.lines);
    let _ = writeln!(
        out,
        "Sequences: {}; {} seed(s) each; IOU tracker: {} with detections ≥ {}; ByteTrack: its defaults (thresholds 0.5 / 0.6) with detections > {}.\n",
        names.join(", "),
        opts.seeds,
        opts.iou_config.display(),
        opts.conf,
        opts.bytetrack_conf
            .map_or_else(|| "its low threshold".to_owned(), |c| c.to_string()),
    );
    let _ = writeln!(
        out,
        "| noise | infer every | tracker | MOTA | IDF1 | ID switches | fragmentations | MOTP (1−IoU) | FP | FN |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
    for l in lines {
        let t = &l.totals;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.3} | {:.3} | {} | {} | {:.3} | {} | {} |",
            l.noise,
            l.interval,
            l.tracker,
            t.mota(),
            t.idf1(),
            t.switches,
            t.fragmentations,
            t.motp(),
            t.false_positives,
            t.misses
        );
    }
    // vigil's interval k infers every k-th frame; nvinfer's `interval=N` skips N frames
    // between inferences (every (N+1)-th frame: the kiosk's interval=2 is every 3rd).
    for every in [2, 3] {
        let _ = writeln!(out);
        for noise in LEVELS.iter().map(|n: &Noise| n.name) {
            let at = |tracker: &str| {
                lines
                    .iter()
                    .find(|l| l.noise == noise && l.interval == every && l.tracker == tracker)
                    .map(|l| l.totals)
            };
            if let (Some(iou), Some(bt)) = (at("IOU (nvtracker)"), at("ByteTrack")) {
                let half = 2 * bt.switches <= iou.switches;
                let better = bt.idf1() > iou.idf1();
                let _ = writeln!(
                    out,
                    "every {every} frames (nvinfer interval={}), {noise} noise: ID switches ByteTrack {} vs IOU {} ({}), IDF1 {:.3} vs {:.3} ({}): goal {}",
                    every - 1,
                    bt.switches,
                    iou.switches,
                    if half {
                        "at most half"
                    } else {
                        "more than half"
                    },
                    bt.idf1(),
                    iou.idf1(),
                    if better { "higher" } else { "not higher" },
                    if half && better { "met" } else { "NOT met" }
                );
            }
        }
    }
    out
}
