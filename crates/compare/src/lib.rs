//! Compares two vigil outputs (JSONL, one line per frame) frame by frame: what `vigil diff`
//! prints and what `vigil test` judges recordings by.
//!
//! Per frame (by `seq`), detections of the same class are paired greedily, the highest IoU
//! first (ties by position, so the result never depends on anything but the two files); a
//! pair overlapping by at least [`PAIR_IOU`] is the same object. A pair within the
//! [`Tolerance`] is *matched*, one outside it *moved*; an expected detection left unpaired is
//! *missing*, an actual one *extra* — unless its score lies within the score tolerance of its
//! class's confidence threshold: then it is a *near-threshold flip* (a box one backend keeps
//! and the other drops by a hair), counted apart. Tracks are paired the same way, and an
//! expected track whose actual id differs from the one it had before is a *track-id change*
//! (ids themselves may be numbered differently: only a change of the pairing counts, as an
//! ID switch does in CLEAR MOT).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Two boxes of the same class overlapping this much are the same object (moved, if not
/// within tolerance).
pub const PAIR_IOU: f64 = 0.5;

/// The widest band above a class's threshold in which a detection on one side only counts as
/// a near-threshold flip, whatever the profile's score bound.
pub const FLIP_WINDOW: f64 = 0.05;

#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a vigil output line: {detail}")]
    BadLine {
        path: PathBuf,
        line: usize,
        detail: String,
    },
    #[error("{path}:{line}: frame seq {seq} appears twice")]
    DuplicateSeq {
        path: PathBuf,
        line: usize,
        seq: u64,
    },
}

/// One detection of an output line.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Detection {
    pub class: u32,
    #[serde(default)]
    pub label: Option<String>,
    pub score: f64,
    #[serde(rename = "box")]
    pub bbox: [f64; 4],
}

/// One track of an output line.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Track {
    pub id: u64,
    pub class: u32,
    #[serde(rename = "box")]
    pub bbox: [f64; 4],
    #[serde(default)]
    pub coasting: bool,
}

/// One frame's line.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Line {
    pub seq: u64,
    pub status: String,
    #[serde(default)]
    pub detections: Vec<Detection>,
    #[serde(default)]
    pub tracks: Vec<Track>,
    /// The line as written (exact comparison).
    #[serde(skip)]
    pub raw: String,
}

/// An output file, by frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    pub frames: BTreeMap<u64, Line>,
}

impl Output {
    /// Each class's label, the first its detections carry.
    #[must_use]
    pub fn labels(&self) -> BTreeMap<u32, String> {
        let mut labels = BTreeMap::new();
        for d in self.frames.values().flat_map(|l| &l.detections) {
            if let Some(l) = &d.label {
                labels.entry(d.class).or_insert_with(|| l.clone());
            }
        }
        labels
    }

    pub fn read(path: &Path) -> Result<Self, CompareError> {
        let text = std::fs::read_to_string(path).map_err(|source| CompareError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Self, CompareError> {
        let mut frames = BTreeMap::new();
        for (n, raw) in text.lines().enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            let mut line: Line = serde_json::from_str(raw).map_err(|e| CompareError::BadLine {
                path: path.to_owned(),
                line: n + 1,
                detail: e.to_string(),
            })?;
            raw.clone_into(&mut line.raw);
            let seq = line.seq;
            if frames.insert(seq, line).is_some() {
                return Err(CompareError::DuplicateSeq {
                    path: path.to_owned(),
                    line: n + 1,
                    seq,
                });
            }
        }
        Ok(Self { frames })
    }
}

/// How far two outputs may differ and still pass.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Profile {
    /// The same backend: byte-identical lines, the determinism vigil promises.
    Exact,
    /// Another backend (CPU vs CUDA vs TensorRT FP16): pairs within IoU and score bounds,
    /// near-threshold flips counted apart.
    CrossBackend,
    /// Bounds of one's own.
    Custom { iou: f64, score: f64 },
}

impl Profile {
    /// The name (`exact`, `cross-backend`) or `iou=0.8,score=0.1`.
    #[must_use]
    pub fn name(&self) -> String {
        match self {
            Self::Exact => "exact".to_owned(),
            Self::CrossBackend => "cross-backend".to_owned(),
            Self::Custom { iou, score } => format!("iou={iou},score={score}"),
        }
    }

    /// (minimum IoU, maximum |Δscore|) of a matched pair.
    #[must_use]
    pub fn bounds(&self) -> (f64, f64) {
        match *self {
            Self::Exact => (1.0, 0.0),
            Self::CrossBackend => (0.9, 0.05),
            Self::Custom { iou, score } => (iou, score),
        }
    }

    /// How close to its class's threshold an unpaired detection must score to be a
    /// near-threshold flip: the score bound, at most [`FLIP_WINDOW`] (0 under `exact`).
    #[must_use]
    pub fn flip_window(&self) -> f64 {
        self.bounds().1.min(FLIP_WINDOW)
    }
}

impl std::str::FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "exact" => return Ok(Self::Exact),
            "cross-backend" => return Ok(Self::CrossBackend),
            _ => {}
        }
        let bad = || {
            format!(
                "tolerance `{s}`: expected exact, cross-backend, or iou=A,score=B \
                 (IoU from {PAIR_IOU} to 1, score difference from 0 to 1, each once)"
            )
        };
        let (mut iou, mut score) = (None, None);
        for part in s.split(',') {
            let (k, v) = part.split_once('=').ok_or_else(bad)?;
            let v: f64 = v.trim().parse().map_err(|_| bad())?;
            let (slot, low) = match k.trim() {
                "iou" => (&mut iou, PAIR_IOU),
                "score" => (&mut score, 0.0),
                _ => return Err(bad()),
            };
            if !(low..=1.0).contains(&v) || slot.replace(v).is_some() {
                return Err(bad());
            }
        }
        match (iou, score) {
            (Some(iou), Some(score)) => Ok(Self::Custom { iou, score }),
            _ => Err(bad()),
        }
    }
}

/// Each class's confidence threshold, to tell near-threshold flips from real differences.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thresholds {
    /// `None`: unknown, so no difference is taken for a flip.
    pub default: Option<f64>,
    pub per_class: BTreeMap<u32, f64>,
}

impl Thresholds {
    fn of(&self, class: u32) -> Option<f64> {
        self.per_class.get(&class).copied().or(self.default)
    }
}

/// One difference within a frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Missing(Detection),
    Extra(Detection),
    Moved {
        expected: Detection,
        actual: Detection,
        iou: f64,
    },
    /// Unpaired, scoring within the score tolerance of its class's threshold.
    Flip {
        only_in_expected: bool,
        detection: Detection,
        threshold: f64,
    },
    TrackIdChange {
        expected_id: u64,
        actual_id: u64,
        before: u64,
    },
    /// A track on one side only.
    TrackAlone {
        only_in_expected: bool,
        track: Track,
    },
}

/// A frame that differs.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameDiff {
    pub seq: u64,
    /// (expected, actual) when the statuses differ; `None` for a line missing on one side.
    pub status: Option<(Option<String>, Option<String>)>,
    pub changes: Vec<Change>,
    /// The lines, when they differ in nothing counted above (a label, a track's box or its
    /// coasting mark).
    pub lines: Option<(String, String)>,
}

/// The comparison of an actual output with the expected one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub frames_expected: usize,
    pub frames_actual: usize,
    /// Frames on one side only.
    pub lines_missing: usize,
    pub lines_extra: usize,
    pub identical_lines: usize,
    pub status_changes: usize,
    pub detections_expected: usize,
    pub detections_actual: usize,
    pub matched: usize,
    pub missing: usize,
    pub extra: usize,
    pub moved: usize,
    pub flips: usize,
    pub track_id_changes: usize,
    /// Tracks on one side only (none paired on the other), not counting those that follow a
    /// near-threshold flip's box.
    pub tracks_missing: usize,
    pub tracks_extra: usize,
    /// The lowest IoU and the largest |Δscore| among paired detections.
    pub min_iou: Option<f64>,
    pub max_dscore: Option<f64>,
    /// Every frame that differs beyond the profile's tolerance or has a near-threshold flip
    /// (under `exact`, every frame whose line differs), in frame order.
    pub diffs: Vec<FrameDiff>,
}

impl Report {
    /// Whether `actual` passes against `expected` under the profile.
    #[must_use]
    pub fn passed(&self, profile: Profile) -> bool {
        let same_frames =
            self.frames_expected > 0 && self.lines_missing == 0 && self.lines_extra == 0;
        match profile {
            Profile::Exact => same_frames && self.identical_lines == self.frames_expected,
            Profile::CrossBackend | Profile::Custom { .. } => {
                same_frames
                    && self.status_changes == 0
                    && self.missing == 0
                    && self.extra == 0
                    && self.moved == 0
                    && self.track_id_changes == 0
                    && self.tracks_missing == 0
                    && self.tracks_extra == 0
            }
        }
    }

    /// One line: frames and each kind of difference.
    #[must_use]
    pub fn summary(&self) -> String {
        let mut s = format!("{} frames", self.frames_expected);
        if self.frames_actual != self.frames_expected {
            let _ = write!(s, " expected, {} written", self.frames_actual);
        }
        let _ = write!(
            s,
            ", {} identical; detections {} expected / {} actual: {} matched, {} missing, {} extra, \
             {} moved, {} near-threshold flips; {} status changes, {} track-id changes",
            self.identical_lines,
            self.detections_expected,
            self.detections_actual,
            self.matched,
            self.missing,
            self.extra,
            self.moved,
            self.flips,
            self.status_changes,
            self.track_id_changes,
        );
        if self.tracks_missing + self.tracks_extra > 0 {
            let _ = write!(
                s,
                ", tracks {} missing / {} extra",
                self.tracks_missing, self.tracks_extra
            );
        }
        if let (Some(iou), Some(ds)) = (self.min_iou, self.max_dscore) {
            let _ = write!(s, "; lowest IoU {iou:.3}, largest |Δscore| {ds:.4}");
        }
        s
    }

    /// The first `max` differing frames, in words: those with a difference beyond the
    /// tolerance first, then those with near-threshold flips only.
    #[must_use]
    pub fn describe_diffs(&self, max: usize) -> String {
        let (beyond, flips_only): (Vec<&FrameDiff>, Vec<&FrameDiff>) =
            self.diffs.iter().partition(|d| !d.flips_only());
        let mut out = String::new();
        for d in beyond.iter().chain(&flips_only).take(max) {
            let _ = writeln!(out, "{}", d.describe());
        }
        if self.diffs.len() > max {
            let _ = writeln!(
                out,
                "… and {} more differing frames ({} beyond the tolerance in all)",
                self.diffs.len() - max,
                beyond.len()
            );
        }
        out
    }
}

fn fmt_box(b: &[f64; 4]) -> String {
    format!("[{:.1}, {:.1}, {:.1}, {:.1}]", b[0], b[1], b[2], b[3])
}

fn name(d: &Detection) -> String {
    d.label
        .clone()
        .unwrap_or_else(|| format!("class {}", d.class))
}

impl FrameDiff {
    /// Nothing here but near-threshold flips (allowed by every profile that has them).
    #[must_use]
    pub fn flips_only(&self) -> bool {
        self.status.is_none()
            && self.lines.is_none()
            && self
                .changes
                .iter()
                .all(|c| matches!(c, Change::Flip { .. }))
    }

    /// This frame's differences, one per line, for people.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut out = format!("frame {}:", self.seq);
        match &self.status {
            Some((Some(e), Some(a))) => {
                let _ = write!(out, " status {e} → {a}");
            }
            Some((Some(_), None)) => out.push_str(" line missing from the actual output"),
            Some((None, Some(_))) => out.push_str(" line not in the expected output"),
            _ => {}
        }
        for c in &self.changes {
            out.push_str("\n  ");
            match c {
                Change::Missing(d) => {
                    let _ = write!(
                        out,
                        "- missing  {} {:.2} at {}",
                        name(d),
                        d.score,
                        fmt_box(&d.bbox)
                    );
                }
                Change::Extra(d) => {
                    let _ = write!(
                        out,
                        "+ extra    {} {:.2} at {}",
                        name(d),
                        d.score,
                        fmt_box(&d.bbox)
                    );
                }
                Change::Moved {
                    expected,
                    actual,
                    iou,
                } => {
                    let _ = write!(
                        out,
                        "~ moved    {} {:.4} → {:.4}, IoU {iou:.3}: {} → {}",
                        name(expected),
                        expected.score,
                        actual.score,
                        fmt_box(&expected.bbox),
                        fmt_box(&actual.bbox)
                    );
                }
                Change::Flip {
                    only_in_expected,
                    detection,
                    threshold,
                } => {
                    let _ = write!(
                        out,
                        "≈ flip     {} {:.4} (threshold {threshold}) only in the {} output at {}",
                        name(detection),
                        detection.score,
                        if *only_in_expected {
                            "expected"
                        } else {
                            "actual"
                        },
                        fmt_box(&detection.bbox)
                    );
                }
                Change::TrackIdChange {
                    expected_id,
                    actual_id,
                    before,
                } => {
                    let _ = write!(
                        out,
                        "# track    expected id {expected_id} is now actual id {actual_id} (was {before})"
                    );
                }
                Change::TrackAlone {
                    only_in_expected,
                    track,
                } => {
                    let _ = write!(
                        out,
                        "# track    #{} (class {}) only in the {} output at {}",
                        track.id,
                        track.class,
                        if *only_in_expected {
                            "expected"
                        } else {
                            "actual"
                        },
                        fmt_box(&track.bbox)
                    );
                }
            }
        }
        if let Some((e, a)) = &self.lines {
            let _ = write!(out, "\n  expected: {e}\n  actual:   {a}");
        }
        out
    }
}

/// Intersection over union of two `[x1, y1, x2, y2]` boxes.
#[must_use]
pub fn iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let ix = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let iy = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = ix * iy;
    let area = |r: &[f64; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - inter;
    if union > 0.0 { inter / union } else { 0.0 }
}

/// Pairs items of the same class, highest IoU first (at least [`PAIR_IOU`]); ties go to the
/// earlier expected, then the earlier actual item.
fn pair(e: &[(u32, [f64; 4])], a: &[(u32, [f64; 4])]) -> Vec<(usize, usize, f64)> {
    let mut candidates: Vec<(usize, usize, f64)> = Vec::new();
    for (i, (ci, bi)) in e.iter().enumerate() {
        for (j, (cj, bj)) in a.iter().enumerate() {
            let v = iou(bi, bj);
            if ci == cj && v >= PAIR_IOU {
                candidates.push((i, j, v));
            }
        }
    }
    candidates.sort_by(|x, y| y.2.total_cmp(&x.2).then(x.0.cmp(&y.0)).then(x.1.cmp(&y.1)));
    let (mut used_e, mut used_a) = (vec![false; e.len()], vec![false; a.len()]);
    let mut pairs = Vec::new();
    for (i, j, v) in candidates {
        if !used_e[i] && !used_a[j] {
            used_e[i] = true;
            used_a[j] = true;
            pairs.push((i, j, v));
        }
    }
    pairs.sort_by_key(|p| (p.0, p.1));
    pairs
}

/// Marks the tracks that follow detection `d` (same class, overlapping as a pair would).
fn mark_followers(set: &mut std::collections::BTreeSet<u64>, tracks: &[Track], d: &Detection) {
    for t in tracks {
        if t.class == d.class && iou(&t.bbox, &d.bbox) >= PAIR_IOU {
            set.insert(t.id);
        }
    }
}

/// Compares `actual` with `expected` under `profile`.
#[must_use]
pub fn compare(
    expected: &Output,
    actual: &Output,
    profile: Profile,
    thresholds: &Thresholds,
) -> Report {
    let (min_iou, max_ds) = profile.bounds();
    let window = profile.flip_window();
    let mut r = Report {
        frames_expected: expected.frames.len(),
        frames_actual: actual.frames.len(),
        ..Report::default()
    };
    // Which actual track id each expected track id went with last.
    let mut e2a: BTreeMap<u64, u64> = BTreeMap::new();
    // Tracks (by side: expected, actual) that followed a near-threshold flip's box: on one
    // side only as a consequence of the flip, not counted against the tracker.
    let mut after_flip: [std::collections::BTreeSet<u64>; 2] = Default::default();
    let seqs: std::collections::BTreeSet<u64> = expected
        .frames
        .keys()
        .chain(actual.frames.keys())
        .copied()
        .collect();
    for seq in seqs {
        let (e, a) = match (expected.frames.get(&seq), actual.frames.get(&seq)) {
            (Some(e), Some(a)) => (e, a),
            (e, a) => {
                if e.is_some() {
                    r.lines_missing += 1;
                } else {
                    r.lines_extra += 1;
                }
                r.diffs.push(FrameDiff {
                    seq,
                    status: Some((e.map(|l| l.status.clone()), a.map(|l| l.status.clone()))),
                    changes: Vec::new(),
                    lines: None,
                });
                continue;
            }
        };
        let mut diff = FrameDiff {
            seq,
            status: None,
            changes: Vec::new(),
            lines: None,
        };
        if e.raw == a.raw {
            r.identical_lines += 1;
        }
        if e.status != a.status {
            r.status_changes += 1;
            diff.status = Some((Some(e.status.clone()), Some(a.status.clone())));
        }
        r.detections_expected += e.detections.len();
        r.detections_actual += a.detections.len();
        let key = |d: &Detection| (d.class, d.bbox);
        let pairs = pair(
            &e.detections.iter().map(key).collect::<Vec<_>>(),
            &a.detections.iter().map(key).collect::<Vec<_>>(),
        );
        let (mut paired_e, mut paired_a) = (
            vec![false; e.detections.len()],
            vec![false; a.detections.len()],
        );
        for &(i, j, v) in &pairs {
            paired_e[i] = true;
            paired_a[j] = true;
            let (de, da) = (&e.detections[i], &a.detections[j]);
            let ds = (de.score - da.score).abs();
            r.min_iou = Some(r.min_iou.map_or(v, |m: f64| m.min(v)));
            r.max_dscore = Some(r.max_dscore.map_or(ds, |m: f64| m.max(ds)));
            if v >= min_iou && ds <= max_ds {
                r.matched += 1;
            } else {
                r.moved += 1;
                diff.changes.push(Change::Moved {
                    expected: de.clone(),
                    actual: da.clone(),
                    iou: v,
                });
            }
        }
        let flip = |d: &Detection| {
            thresholds
                .of(d.class)
                .filter(|t| window > 0.0 && (d.score - t).abs() <= window)
        };
        let sides = [
            (&e.detections, &paired_e, &e.tracks),
            (&a.detections, &paired_a, &a.tracks),
        ];
        for (side, (dets, paired, tracks)) in sides.into_iter().enumerate() {
            let in_expected = side == 0;
            for (d, _) in dets.iter().zip(paired.iter()).filter(|(_, p)| !**p) {
                if let Some(threshold) = flip(d) {
                    r.flips += 1;
                    mark_followers(&mut after_flip[side], tracks, d);
                    diff.changes.push(Change::Flip {
                        only_in_expected: in_expected,
                        detection: d.clone(),
                        threshold,
                    });
                } else if in_expected {
                    r.missing += 1;
                    diff.changes.push(Change::Missing(d.clone()));
                } else {
                    r.extra += 1;
                    diff.changes.push(Change::Extra(d.clone()));
                }
            }
        }
        let tkey = |t: &Track| (t.class, t.bbox);
        let track_pairs = pair(
            &e.tracks.iter().map(tkey).collect::<Vec<_>>(),
            &a.tracks.iter().map(tkey).collect::<Vec<_>>(),
        );
        for (side, tracks) in [(0usize, &e.tracks), (1, &a.tracks)] {
            for (k, t) in tracks.iter().enumerate() {
                let paired = track_pairs
                    .iter()
                    .any(|p| if side == 0 { p.0 == k } else { p.1 == k });
                if paired || after_flip[side].contains(&t.id) {
                    continue;
                }
                if side == 0 {
                    r.tracks_missing += 1;
                } else {
                    r.tracks_extra += 1;
                }
                diff.changes.push(Change::TrackAlone {
                    only_in_expected: side == 0,
                    track: t.clone(),
                });
            }
        }
        for &(i, j, _) in &track_pairs {
            let (te, ta) = (e.tracks[i].id, a.tracks[j].id);
            if let Some(before) = e2a.insert(te, ta).filter(|&b| b != ta) {
                r.track_id_changes += 1;
                diff.changes.push(Change::TrackIdChange {
                    expected_id: te,
                    actual_id: ta,
                    before,
                });
            }
        }
        if diff.status.is_some() || !diff.changes.is_empty() {
            r.diffs.push(diff);
        } else if e.raw != a.raw && profile == Profile::Exact {
            // Exact: differences within tolerance are differences all the same.
            diff.lines = Some((e.raw.clone(), a.raw.clone()));
            r.diffs.push(diff);
        }
    }
    r
}

#[cfg(test)]
mod tests;
