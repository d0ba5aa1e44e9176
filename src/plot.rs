//! `vigil plot`: one self-contained HTML page (inline SVG; no script, nothing fetched) to
//! analyse a session from its output (one JSON line per frame) and, when given, its audit
//! database. Over one axis of frame numbers (`seq`) it draws the detections per class, the
//! frames without fresh detections by status, the audit's restarts, stalls, crash loops and
//! camera outages, and the lifetime of each track.
//!
//! Long sessions are binned so the page stays small whatever their length: at most
//! [`MAX_BINS`] bins (a point a series, a column of the status strip), [`MAX_TRACKS`] track
//! bars, [`MAX_EVENTS`] markers an audit lane. The same inputs give the same bytes: nothing
//! of the wall clock or of hash order goes in.
//!
//! The audit's times map onto the axis as it records them: a restart by the frame it died on
//! (`fault_seq`), a stall by its first frame (`first_seq`), and each ends at the first inferred
//! frame after it in the output. Frame timestamps (`*_ts_ns`: a crash loop, a restart whose
//! process left no word) go through the (seq, timestamp) pairs those rows give, at `--fps`
//! or the rate between them; wall-clock times (a camera outage) through the rows that carry
//! both clocks, a millisecond of wall time taken for one of frame time.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::Path;

use eyre::{WrapErr as _, bail, eyre};
use rusqlite::{Connection, OpenFlags};
use vigil_msg::FrameStatus;

/// Bins of the axis, at most: a point a series, a column of the status strip.
const MAX_BINS: u64 = 1000;
/// Track bars drawn, at most (the longest-lived).
const MAX_TRACKS: usize = 200;
/// Series of the detections chart, at most: the classes with the most detections, the rest
/// summed as one.
const MAX_SERIES: usize = 10;
/// Markers an audit lane, at most.
const MAX_EVENTS: usize = 2000;
/// Rows an audit table of the page, at most.
const MAX_ROWS: usize = 200;

/// The drawing's geometry, in SVG user units (pixels at 100 %).
const WIDTH: f64 = 1200.0;
const LEFT: f64 = 170.0;
const RIGHT: f64 = 20.0;
const PLOT_W: f64 = WIDTH - LEFT - RIGHT;
/// The detection lines break where no frame was inferred over this much of the axis.
const GAP_PX: f64 = 20.0;
/// Audit events closer than this share a label.
const CLUSTER_PX: f64 = 40.0;
/// The width of a character of a label, about.
const LABEL_PX: f64 = 6.4;
/// Matched runs of a track closer than this merge into one bar.
const MERGE_PX: f64 = 1.5;

const PALETTE: [&str; MAX_SERIES] = [
    "#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#17becf",
];
const OTHER_COLOUR: &str = "#8c8c8c";
const RESTART_COLOUR: &str = "#c0392b";
const STALL_COLOUR: &str = "#e67e22";
const CRASH_LOOP_COLOUR: &str = "#7b2cbf";
const OUTAGE_COLOUR: &str = "#555555";

fn status_colour(s: FrameStatus) -> &'static str {
    match s {
        FrameStatus::Inferred => "#59a14f",
        FrameStatus::Interval => "#9ecae1",
        FrameStatus::Busy => "#f5a623",
        FrameStatus::Missing => "#d62728",
        FrameStatus::BadFrame => "#8c564b",
        FrameStatus::Failed => "#7b2cbf",
    }
}

/// Writes the report; returns a one-line description of what it drew.
pub fn plot(
    output: &Path,
    audit: Option<&Path>,
    fps: Option<f64>,
    out: &Path,
) -> eyre::Result<String> {
    if let Some(f) = fps
        && !(0.1..=1000.0).contains(&f)
    {
        bail!("--fps {f}: a frame rate from 0.1 to 1000");
    }
    let session = Session::read(output)?;
    let audit = audit
        .map(|path| AuditLog::read(path).map(|log| (path, log)))
        .transpose()?;
    let report = Report::new(&session, audit.as_ref().map(|(_, log)| log), fps);
    let html = report
        .page(output, audit.as_ref().map(|(path, _)| *path))
        .map_err(|_| eyre!("formatting the report"))?;
    std::fs::write(out, html).wrap_err_with(|| format!("{}: writing the report", out.display()))?;
    Ok(format!("{}: {}", out.display(), report.describe()))
}

// ---------------------------------------------------------------------------------------
// The output file.

/// One frame of the output, reduced to what the page draws.
#[derive(Debug)]
struct Frame {
    seq: u64,
    /// Its line in the file (from 1).
    line: usize,
    status: FrameStatus,
    /// Detections by class.
    counts: Vec<(u32, u32)>,
    /// (track id, class, coasting).
    tracks: Vec<(u64, u32, bool)>,
}

/// One track over the session.
#[derive(Debug)]
struct TrackLife {
    class: u32,
    first: u64,
    last: u64,
    frames: u64,
    matched: u64,
    /// Runs of frames (first, last seq) on which it was matched, in order.
    runs: Vec<(u64, u64)>,
    /// The frame (position in seq order) it was last matched on.
    last_matched: Option<usize>,
}

#[derive(Debug)]
struct Session {
    /// In seq order.
    frames: Vec<Frame>,
    labels: BTreeMap<u32, String>,
    detections: BTreeMap<u32, u64>,
    tracks: BTreeMap<u64, TrackLife>,
    by_status: [u64; FrameStatus::ALL.len()],
}

impl Session {
    fn read(path: &Path) -> eyre::Result<Self> {
        let file = File::open(path).wrap_err_with(|| format!("{}: cannot open", path.display()))?;
        let mut frames = Vec::new();
        let mut labels = BTreeMap::new();
        for (n, text) in BufReader::new(file).lines().enumerate() {
            let n = n + 1;
            let text = text.wrap_err_with(|| format!("{}:{n}: cannot read", path.display()))?;
            if text.trim().is_empty() {
                continue;
            }
            let line: vigil_compare::Line = serde_json::from_str(&text)
                .wrap_err_with(|| format!("{}:{n}: not a vigil output line", path.display()))?;
            let status = FrameStatus::parse(&line.status).ok_or_else(|| {
                eyre!(
                    "{}:{n}: unknown status `{}` (a vigil output line says one of {})",
                    path.display(),
                    line.status,
                    FrameStatus::ALL.map(FrameStatus::as_str).join(", ")
                )
            })?;
            let mut counts = BTreeMap::<u32, u32>::new();
            for d in &line.detections {
                *counts.entry(d.class).or_default() += 1;
                if let Some(label) = &d.label {
                    labels.entry(d.class).or_insert_with(|| label.clone());
                }
            }
            frames.push(Frame {
                seq: line.seq,
                line: n,
                status,
                counts: counts.into_iter().collect(),
                tracks: line
                    .tracks
                    .iter()
                    .map(|t| (t.id, t.class, t.coasting))
                    .collect(),
            });
        }
        if frames.is_empty() {
            bail!("{}: empty: no frame lines", path.display());
        }
        // Written in frame order; sorted anyway (stable: the first of a pair comes first).
        frames.sort_by_key(|f| f.seq);
        for w in frames.windows(2) {
            if w[0].seq == w[1].seq {
                bail!(
                    "{}:{}: frame seq {} appears twice (first on line {})",
                    path.display(),
                    w[1].line,
                    w[1].seq,
                    w[0].line
                );
            }
        }
        let mut detections = BTreeMap::<u32, u64>::new();
        let mut tracks = BTreeMap::<u64, TrackLife>::new();
        let mut by_status = [0; FrameStatus::ALL.len()];
        for (i, f) in frames.iter().enumerate() {
            by_status[f.status as usize] += 1;
            for &(class, k) in &f.counts {
                *detections.entry(class).or_default() += u64::from(k);
            }
            for &(id, class, coasting) in &f.tracks {
                let t = tracks.entry(id).or_insert(TrackLife {
                    class,
                    first: f.seq,
                    last: f.seq,
                    frames: 0,
                    matched: 0,
                    runs: Vec::new(),
                    last_matched: None,
                });
                t.last = f.seq;
                t.frames += 1;
                if !coasting {
                    t.matched += 1;
                    match t.runs.last_mut() {
                        Some(run) if t.last_matched.is_some_and(|j| j + 1 == i) => run.1 = f.seq,
                        _ => t.runs.push((f.seq, f.seq)),
                    }
                    t.last_matched = Some(i);
                }
            }
        }
        Ok(Self {
            frames,
            labels,
            detections,
            tracks,
            by_status,
        })
    }

    fn first(&self) -> u64 {
        self.frames.first().map_or(0, |f| f.seq)
    }

    fn last(&self) -> u64 {
        self.frames.last().map_or(0, |f| f.seq)
    }

    fn label(&self, class: u32) -> String {
        self.labels
            .get(&class)
            .cloned()
            .unwrap_or_else(|| format!("class {class}"))
    }

    /// The first inferred frame after `seq`.
    fn inferred_after(&self, seq: u64) -> Option<u64> {
        let from = self.frames.partition_point(|f| f.seq <= seq);
        self.frames[from..]
            .iter()
            .find(|f| f.status == FrameStatus::Inferred)
            .map(|f| f.seq)
    }
}

// ---------------------------------------------------------------------------------------
// The audit database.

#[derive(Debug)]
struct RestartRow {
    node: String,
    at_unix_ms: i64,
    cause: String,
    exit_code: Option<i64>,
    signal: Option<i64>,
    fault_seq: Option<i64>,
    fault_ts_ns: i64,
    restart_ms: f64,
    first_detection_ms: Option<f64>,
    frames_without: Option<i64>,
    flight_recording: Option<String>,
}

#[derive(Debug)]
struct StallRow {
    node: String,
    at_unix_ms: i64,
    started_ts_ns: i64,
    first_seq: i64,
    ended_ts_ns: Option<i64>,
    duration_ms: Option<f64>,
    frames_without: Option<i64>,
}

#[derive(Debug)]
struct CrashLoopRow {
    node: String,
    at_unix_ms: i64,
    at_ts_ns: i64,
    deaths: i64,
    window_s: i64,
    pause_ms: i64,
    cause: String,
}

#[derive(Debug)]
struct OutageRow {
    at_unix_ms: i64,
    why: String,
    resumed_unix_ms: Option<i64>,
    outage_ms: Option<i64>,
    attempts: Option<i64>,
}

/// The tables of the audit (see `vigil_monitor::audit`).
const AUDIT_TABLES: [&str; 5] = [
    "sessions",
    "process_restarts",
    "pipeline_stall_events",
    "crash_loops",
    "camera_outages",
];

/// One session's rows of an audit database: the newest session's, as a replay appends its
/// own to the file.
#[derive(Debug, Default)]
struct AuditLog {
    /// (the session drawn, sessions in the file).
    session: Option<(i64, u64)>,
    restarts: Vec<RestartRow>,
    stalls: Vec<StallRow>,
    crash_loops: Vec<CrashLoopRow>,
    outages: Vec<OutageRow>,
}

impl AuditLog {
    fn read(path: &Path) -> eyre::Result<Self> {
        let not_audit = || format!("{}: not a vigil audit database", path.display());
        let db = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .wrap_err_with(|| format!("{}: cannot open the audit database", path.display()))?;
        let tables: BTreeSet<String> = db
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .and_then(|mut q| q.query_map([], |r| r.get(0))?.collect())
            .wrap_err_with(not_audit)?;
        if !AUDIT_TABLES.iter().any(|t| tables.contains(*t)) {
            return Err(eyre!(
                "it has none of the tables {}",
                AUDIT_TABLES.join(", ")
            ))
            .wrap_err_with(not_audit);
        }
        let session = if tables.contains("sessions") {
            db.query_row("SELECT MAX(id), COUNT(*) FROM sessions", [], |r| {
                let n: i64 = r.get(1)?;
                Ok(r.get::<_, Option<i64>>(0)?
                    .map(|id| (id, u64::try_from(n).unwrap_or(0))))
            })
            .wrap_err_with(not_audit)?
        } else {
            None
        };
        let id = session.map(|(id, _)| id);
        let bad_table = |table: &str| format!("{}: table {table}", not_audit());
        let restarts = select(
            &db,
            &tables,
            id,
            "process_restarts",
            "node, at_unix_ms, cause, exit_code, signal, fault_seq, fault_ts_ns, restart_ms, first_detection_ms, frames_without_detections, flight_recording",
            |r| {
                Ok(RestartRow {
                    node: r.get(0)?,
                    at_unix_ms: r.get(1)?,
                    cause: r.get(2)?,
                    exit_code: r.get(3)?,
                    signal: r.get(4)?,
                    fault_seq: r.get(5)?,
                    fault_ts_ns: r.get(6)?,
                    restart_ms: r.get(7)?,
                    first_detection_ms: r.get(8)?,
                    frames_without: r.get(9)?,
                    flight_recording: r.get(10)?,
                })
            },
        )
        .wrap_err_with(|| bad_table("process_restarts"))?;
        let stalls = select(
            &db,
            &tables,
            id,
            "pipeline_stall_events",
            "node, at_unix_ms, started_ts_ns, first_seq, ended_ts_ns, duration_ms, frames_without_detections",
            |r| {
                Ok(StallRow {
                    node: r.get(0)?,
                    at_unix_ms: r.get(1)?,
                    started_ts_ns: r.get(2)?,
                    first_seq: r.get(3)?,
                    ended_ts_ns: r.get(4)?,
                    duration_ms: r.get(5)?,
                    frames_without: r.get(6)?,
                })
            },
        )
        .wrap_err_with(|| bad_table("pipeline_stall_events"))?;
        let crash_loops = select(
            &db,
            &tables,
            id,
            "crash_loops",
            "node, at_unix_ms, at_ts_ns, deaths, window_s, pause_ms, cause",
            |r| {
                Ok(CrashLoopRow {
                    node: r.get(0)?,
                    at_unix_ms: r.get(1)?,
                    at_ts_ns: r.get(2)?,
                    deaths: r.get(3)?,
                    window_s: r.get(4)?,
                    pause_ms: r.get(5)?,
                    cause: r.get(6)?,
                })
            },
        )
        .wrap_err_with(|| bad_table("crash_loops"))?;
        let outages = select(
            &db,
            &tables,
            id,
            "camera_outages",
            "at_unix_ms, why, resumed_unix_ms, outage_ms, attempts",
            |r| {
                Ok(OutageRow {
                    at_unix_ms: r.get(0)?,
                    why: r.get(1)?,
                    resumed_unix_ms: r.get(2)?,
                    outage_ms: r.get(3)?,
                    attempts: r.get(4)?,
                })
            },
        )
        .wrap_err_with(|| bad_table("camera_outages"))?;
        Ok(Self {
            session,
            restarts,
            stalls,
            crash_loops,
            outages,
        })
    }
}

/// The rows of `table` of `session` (all its rows without sessions), none where the table
/// is missing.
fn select<T>(
    db: &Connection,
    tables: &BTreeSet<String>,
    session: Option<i64>,
    table: &str,
    columns: &str,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    if !tables.contains(table) {
        return Ok(Vec::new());
    }
    let filter = if session.is_some() {
        " WHERE session_id = ?1"
    } else {
        ""
    };
    let mut q = db.prepare(&format!(
        "SELECT {columns} FROM {table}{filter} ORDER BY id"
    ))?;
    q.query_map(rusqlite::params_from_iter(session), row)?
        .collect()
}

/// Maps the audit's frame timestamps and wall-clock times onto frame seqs.
#[derive(Debug, Default)]
struct Clock {
    /// (frame timestamp, seq) pairs the audit and the output agree on, by timestamp.
    anchors: Vec<(i64, f64)>,
    /// Frames a nanosecond of frame time, from `--fps` or the anchors.
    per_ns: Option<f64>,
    /// (wall clock ms, frame timestamp) pairs, by wall clock.
    wall: Vec<(i64, i64)>,
}

impl Clock {
    fn new(s: &Session, log: &AuditLog, fps: Option<f64>) -> Self {
        let mut anchors = Vec::new();
        let mut wall = Vec::new();
        for r in &log.restarts {
            if let Some(seq) = r.fault_seq {
                anchors.push((r.fault_ts_ns, seq as f64));
            }
            wall.push((
                r.at_unix_ms,
                r.fault_ts_ns.saturating_add((r.restart_ms * 1e6) as i64),
            ));
        }
        for st in &log.stalls {
            anchors.push((st.started_ts_ns, st.first_seq as f64));
            if let (Some(end), Ok(first)) = (st.ended_ts_ns, u64::try_from(st.first_seq))
                && let Some(seq) = s.inferred_after(first)
            {
                anchors.push((end, seq as f64));
            }
            wall.push((st.at_unix_ms, st.started_ts_ns));
        }
        for c in &log.crash_loops {
            wall.push((c.at_unix_ms, c.at_ts_ns));
        }
        anchors.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        anchors.dedup_by_key(|a| a.0);
        wall.sort_unstable();
        wall.dedup_by_key(|w| w.0);
        let per_ns = fps.map(|f| f / 1e9).or_else(|| {
            let (a, b) = (anchors.first()?, anchors.last()?);
            let rate = (b.1 - a.1) / b.0.saturating_sub(a.0) as f64;
            (b.0 > a.0 && rate > 0.0 && rate.is_finite()).then_some(rate)
        });
        Self {
            anchors,
            per_ns,
            wall,
        }
    }

    /// The (fractional) seq of frame timestamp `ts`.
    fn seq_at(&self, ts: i64) -> Option<f64> {
        let i = self.anchors.partition_point(|a| a.0 < ts);
        if let Some(a) = self.anchors.get(i).filter(|a| a.0 == ts) {
            return Some(a.1);
        }
        if i > 0 && i < self.anchors.len() {
            let (a, b) = (self.anchors[i - 1], self.anchors[i]);
            return Some(a.1 + (b.1 - a.1) * ts.abs_diff(a.0) as f64 / b.0.abs_diff(a.0) as f64);
        }
        let a = if i == 0 {
            self.anchors.first()?
        } else {
            self.anchors.last()?
        };
        Some(a.1 + ts.saturating_sub(a.0) as f64 * self.per_ns?)
    }

    /// The frame timestamp at wall-clock time `ms`.
    fn ts_at_wall(&self, ms: i64) -> Option<i64> {
        let a = self.wall.iter().min_by_key(|w| w.0.abs_diff(ms))?;
        Some(a.1.saturating_add(ms.saturating_sub(a.0).saturating_mul(1_000_000)))
    }

    /// Frames in `ms` of frame time.
    fn frames_in(&self, ms: f64) -> Option<f64> {
        Some(ms * 1e6 * self.per_ns?)
    }
}

// ---------------------------------------------------------------------------------------
// Binning.

/// A bin's values: one per frame it holds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Stat {
    n: u32,
    sum: u64,
    min: u32,
    max: u32,
}

impl Stat {
    fn add(&mut self, v: u32) {
        if self.n == 0 {
            self.min = v;
            self.max = v;
        }
        self.n += 1;
        self.sum += u64::from(v);
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }

    fn mean(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum as f64 / f64::from(self.n)
        }
    }
}

/// The frame axis: frames `first..=last`, in bins of `bin` frames.
#[derive(Debug, Clone, Copy)]
struct Axis {
    first: u64,
    last: u64,
    bin: u64,
    fps: Option<f64>,
}

impl Axis {
    fn new(first: u64, last: u64, fps: Option<f64>) -> Self {
        let span = (last - first).saturating_add(1);
        Self {
            first,
            last,
            bin: span.div_ceil(MAX_BINS).max(1),
            fps,
        }
    }

    fn span(&self) -> u64 {
        (self.last - self.first).saturating_add(1)
    }

    fn bins(&self) -> usize {
        self.span().div_ceil(self.bin) as usize
    }

    fn bin_of(&self, seq: u64) -> usize {
        ((seq.clamp(self.first, self.last) - self.first) / self.bin) as usize
    }

    /// The frames of bin `b`.
    fn bin_frames(&self, b: usize) -> (u64, u64) {
        let start = self.first + b as u64 * self.bin;
        (start, start.saturating_add(self.bin - 1).min(self.last))
    }

    fn px_per_frame(&self) -> f64 {
        PLOT_W / self.span() as f64
    }

    /// The x of the left edge of frame `seq` (fractional seqs in between).
    fn x(&self, seq: f64) -> f64 {
        LEFT + (seq - self.first as f64) * self.px_per_frame()
    }

    /// The x of the middle of bin `b`.
    fn bin_mid(&self, b: usize) -> f64 {
        let (a, z) = self.bin_frames(b);
        f64::midpoint(self.x(a as f64), self.x(z as f64 + 1.0))
    }

    /// About 8 ticks: at round times from the first frame with a frame rate, else at round
    /// seqs.
    fn ticks(&self) -> Vec<u64> {
        let span = self.span();
        if let (Some(fps), Some(step)) = (self.fps, self.time_step()) {
            let n = ((span - 1) as f64 / fps / step).floor() as u64;
            let mut ticks: Vec<u64> = (0..=n)
                .map(|k| {
                    self.first
                        .saturating_add((k as f64 * step * fps).round() as u64)
                })
                .filter(|&t| t <= self.last)
                .collect();
            ticks.dedup();
            return ticks;
        }
        let step = (nice_step(span as f64 / 8.0) as u64).max(1);
        let start = self.first.div_ceil(step).saturating_mul(step);
        (start..=self.last).step_by(step as usize).collect()
    }

    /// Seconds between ticks, with a frame rate.
    fn time_step(&self) -> Option<f64> {
        let fps = self.fps?;
        let raw = self.span() as f64 / fps / 8.0;
        let steps = [
            1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0,
        ];
        Some(if raw < 1.0 {
            nice_step(raw)
        } else {
            steps
                .into_iter()
                .find(|&s| s >= raw)
                .unwrap_or_else(|| nice_step(raw / 3600.0) * 3600.0)
        })
    }

    /// Grid lines from `top` to `bottom`.
    fn grid(&self, svg: &mut String, top: f64, bottom: f64) -> fmt::Result {
        for t in self.ticks() {
            let x = self.x(t as f64);
            writeln!(
                svg,
                r##"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="#e4e4e4"/>"##
            )?;
        }
        Ok(())
    }

    /// Tick labels below `y`: the seq, and with a frame rate the time from the first frame.
    /// Returns the height they take.
    fn labels(&self, svg: &mut String, y: f64) -> Result<f64, fmt::Error> {
        for t in self.ticks() {
            let x = self.x(t as f64);
            writeln!(
                svg,
                r##"<line x1="{x:.1}" y1="{y:.1}" x2="{x:.1}" y2="{:.1}" stroke="#999"/><text x="{x:.1}" y="{:.1}" class="tick">{t}</text>"##,
                y + 4.0,
                y + 15.0
            )?;
            if let (Some(fps), Some(step)) = (self.fps, self.time_step()) {
                let secs = (t - self.first) as f64 / fps;
                let total = self.span() as f64 / fps;
                writeln!(
                    svg,
                    r#"<text x="{x:.1}" y="{:.1}" class="tick secs">{}</text>"#,
                    y + 27.0,
                    fmt_secs(secs, step, total)
                )?;
            }
        }
        let caption = if self.fps.is_some() {
            "frame seq / time"
        } else {
            "frame seq"
        };
        writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" class="axis-name">{caption}</text>"#,
            LEFT - 8.0,
            y + 15.0
        )?;
        Ok(if self.fps.is_some() { 34.0 } else { 22.0 })
    }
}

/// 1, 2 or 5 × 10^k, the smallest at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let pow = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * pow)
        .find(|&s| s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * pow)
}

fn fmt_secs(secs: f64, step: f64, total: f64) -> String {
    if total >= 120.0 {
        let s = secs.round() as u64;
        if total >= 3600.0 {
            format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
        } else {
            format!("{}:{:02}", s / 60, s % 60)
        }
    } else {
        let decimals = if step >= 1.0 {
            0
        } else if step >= 0.1 {
            1
        } else {
            2
        };
        format!("{secs:.decimals$} s")
    }
}

/// Text for the page (HTML and its inline SVG): escaped as XML.
fn esc(s: &str) -> String {
    crate::regress::xml_escape(s)
}

fn seqs(a: u64, b: u64) -> String {
    if a == b {
        format!("seq {a}")
    } else {
        format!("seq {a}–{b}")
    }
}

fn plural(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

// ---------------------------------------------------------------------------------------
// The report.

/// A line of the detections chart: one class, or the classes past [`MAX_SERIES`] - 1.
#[derive(Debug)]
struct Series {
    name: String,
    colour: &'static str,
    total: u64,
}

/// An audit event placed on the axis.
#[derive(Debug)]
struct Placed {
    /// Where it starts, and where its span ends (a fractional seq past its last frame).
    at: f64,
    until: Option<f64>,
    label: String,
    details: String,
}

/// An audit lane: its events, and those it could not place.
#[derive(Debug)]
struct Lane {
    name: &'static str,
    colour: &'static str,
    marker: bool,
    placed: Vec<Placed>,
    unplaced: Vec<String>,
}

impl Lane {
    /// Labels where they fit, as (x, text): events closer than [`CLUSTER_PX`] share one
    /// (`SIGSEGV ×3`, or `3 restarts` when they differ), right of them, else inside their span.
    fn labels(&self, ax: &Axis) -> Vec<(f64, String)> {
        let mut events: Vec<&Placed> = self.placed.iter().take(MAX_EVENTS).collect();
        events.sort_by(|a, b| a.at.total_cmp(&b.at));
        // (from x, to x, events)
        let mut clusters: Vec<(f64, f64, Vec<&Placed>)> = Vec::new();
        for p in events {
            let x0 = ax.x(p.at);
            let mut x1 = p.until.map_or(x0, |u| ax.x(u)).max(x0 + 2.0);
            if self.marker {
                x1 = x1.max(ax.x(p.at + 0.5) + 5.0);
            }
            match clusters.last_mut() {
                Some(c) if x0 - c.1 < CLUSTER_PX => {
                    c.1 = c.1.max(x1);
                    c.2.push(p);
                }
                _ => clusters.push((x0, x1, vec![p])),
            }
        }
        let mut labels = Vec::new();
        for (i, (x0, x1, events)) in clusters.iter().enumerate() {
            let text = match events.as_slice() {
                [one] => one.label.clone(),
                [first, rest @ ..]
                    if self.marker && rest.iter().all(|p| p.label == first.label) =>
                {
                    format!("{} ×{}", first.label, events.len())
                }
                _ => format!("{} {}", events.len(), self.name),
            };
            if text.is_empty() {
                continue;
            }
            let width = text.chars().count() as f64 * LABEL_PX;
            let next = clusters.get(i + 1).map_or(LEFT + PLOT_W, |c| c.0);
            if x1 + 4.0 + width <= next - 2.0 {
                labels.push((x1 + 4.0, text));
            } else if x1 - x0 >= width + 8.0 {
                labels.push((x0 + 4.0, text));
            }
        }
        labels
    }
}

#[derive(Debug)]
struct Report<'a> {
    s: &'a Session,
    log: Option<&'a AuditLog>,
    ax: Axis,
    /// Classes by detections, the most first.
    classes: Vec<(u32, u64)>,
    series: Vec<Series>,
    /// Class → its series.
    series_of: BTreeMap<u32, usize>,
    lanes: Vec<Lane>,
}

impl<'a> Report<'a> {
    fn new(s: &'a Session, log: Option<&'a AuditLog>, fps: Option<f64>) -> Self {
        let ax = Axis::new(s.first(), s.last(), fps);
        let mut classes: Vec<(u32, u64)> = s.detections.iter().map(|(&c, &n)| (c, n)).collect();
        classes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let own = if classes.len() > MAX_SERIES {
            MAX_SERIES - 1
        } else {
            classes.len()
        };
        let mut series: Vec<Series> = classes[..own]
            .iter()
            .enumerate()
            .map(|(i, &(c, n))| Series {
                name: s.label(c),
                colour: PALETTE[i],
                total: n,
            })
            .collect();
        let mut series_of: BTreeMap<u32, usize> = classes[..own]
            .iter()
            .enumerate()
            .map(|(i, &(c, _))| (c, i))
            .collect();
        if classes.len() > own {
            let rest = &classes[own..];
            series.push(Series {
                name: format!("{} other classes", rest.len()),
                colour: OTHER_COLOUR,
                total: rest.iter().map(|r| r.1).sum(),
            });
            series_of.extend(rest.iter().map(|&(c, _)| (c, own)));
        }
        let lanes = log.map(|log| lanes(s, log, fps)).unwrap_or_default();
        Self {
            s,
            log,
            ax,
            classes,
            series,
            series_of,
            lanes,
        }
    }

    fn colour_of(&self, class: u32) -> &'static str {
        self.series_of
            .get(&class)
            .and_then(|&i| self.series.get(i))
            .map_or(OTHER_COLOUR, |s| s.colour)
    }

    /// Per series and bin: detections a frame, over the inferred frames.
    fn class_stats(&self) -> Vec<Vec<Stat>> {
        let mut stats = vec![vec![Stat::default(); self.ax.bins()]; self.series.len()];
        let mut counts = vec![0u32; self.series.len()];
        for f in &self.s.frames {
            if f.status != FrameStatus::Inferred {
                continue;
            }
            counts.fill(0);
            for (class, k) in &f.counts {
                if let Some(&i) = self.series_of.get(class) {
                    counts[i] += k;
                }
            }
            let b = self.ax.bin_of(f.seq);
            for (st, &k) in stats.iter_mut().zip(&counts) {
                st[b].add(k);
            }
        }
        stats
    }

    /// Per bin: frames by status.
    fn status_bins(&self) -> Vec<[u32; FrameStatus::ALL.len()]> {
        let mut bins = vec![[0u32; FrameStatus::ALL.len()]; self.ax.bins()];
        for f in &self.s.frames {
            bins[self.ax.bin_of(f.seq)][f.status as usize] += 1;
        }
        bins
    }

    /// Where restarts happened: dashed lines across every chart.
    fn guides(&self, svg: &mut String, top: f64, bottom: f64) -> fmt::Result {
        let Some(restarts) = self.lanes.first() else {
            return Ok(());
        };
        for p in restarts.placed.iter().take(MAX_EVENTS) {
            let x = self.ax.x(p.at + 0.5);
            writeln!(
                svg,
                r#"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="{RESTART_COLOUR}" stroke-opacity="0.45" stroke-dasharray="3,3"/>"#
            )?;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        let mut d = format!(
            "{} ({}), {} of {}, {}",
            plural(self.s.frames.len() as u64, "frame", "frames"),
            seqs(self.s.first(), self.s.last()),
            plural(
                self.s.detections.values().sum::<u64>(),
                "detection",
                "detections"
            ),
            plural(self.s.detections.len() as u64, "class", "classes"),
            plural(self.s.tracks.len() as u64, "track", "tracks"),
        );
        if self.ax.bin > 1 {
            let _ = write!(d, " in bins of {} frames", self.ax.bin);
        }
        if let Some(log) = self.log {
            let _ = write!(
                d,
                "; audit{}: {}, {}, {}, {}",
                log.session
                    .map(|(id, _)| format!(" session {id}"))
                    .unwrap_or_default(),
                plural(log.restarts.len() as u64, "restart", "restarts"),
                plural(log.stalls.len() as u64, "stall", "stalls"),
                plural(log.crash_loops.len() as u64, "crash loop", "crash loops"),
                plural(log.outages.len() as u64, "camera outage", "camera outages"),
            );
            let unplaced: usize = self.lanes.iter().map(|l| l.unplaced.len()).sum();
            if unplaced > 0 {
                let _ = write!(d, " ({unplaced} not placed on the axis)");
            }
        }
        d
    }

    fn page(&self, output: &Path, audit: Option<&Path>) -> Result<String, fmt::Error> {
        let mut h = String::new();
        let name = output.file_name().map_or_else(
            || output.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        writeln!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>vigil: {}</title>\n<style>{STYLE}</style>\n</head>\n<body>",
            esc(&name)
        )?;
        writeln!(h, "<h1>vigil session: {}</h1>", esc(&name))?;
        self.header(&mut h, output, audit)?;
        self.detections_panel(&mut h)?;
        self.status_panel(&mut h)?;
        if self.log.is_some() {
            self.audit_panel(&mut h)?;
        }
        self.tracks_panel(&mut h)?;
        writeln!(h, "</body>\n</html>")?;
        Ok(h)
    }

    fn header(&self, h: &mut String, output: &Path, audit: Option<&Path>) -> fmt::Result {
        let s = self.s;
        write!(
            h,
            r#"<p class="src">output <code>{}</code>"#,
            esc(&output.display().to_string())
        )?;
        if let (Some(path), Some(log)) = (audit, self.log) {
            write!(
                h,
                r" · audit <code>{}</code>",
                esc(&path.display().to_string())
            )?;
            if let Some((id, n)) = log.session {
                write!(h, " (session {id}, the newest of {n})")?;
            }
        }
        if let Some(fps) = self.ax.fps {
            write!(h, " · {fps} fps")?;
        }
        writeln!(h, "</p>\n<table class=\"totals\">")?;
        let n = s.frames.len() as u64;
        write!(
            h,
            "<tr><th>frames</th><td>{n} ({})",
            seqs(s.first(), s.last())
        )?;
        if let Some(fps) = self.ax.fps {
            let secs = self.ax.span() as f64 / fps;
            if secs >= 120.0 {
                write!(h, ", {} ({secs:.0} s)", fmt_secs(secs, 1.0, secs))?;
            } else {
                write!(h, ", {secs:.1} s")?;
            }
        }
        writeln!(h, "</td></tr>")?;
        write!(h, "<tr><th>by status</th><td>")?;
        for st in FrameStatus::ALL {
            let k = s.by_status[st as usize];
            write!(
                h,
                r#"<span class="item"><span class="sw" style="background:{}"></span>{} {k} ({:.1} %)</span>"#,
                status_colour(st),
                st.as_str(),
                k as f64 * 100.0 / n as f64
            )?;
        }
        writeln!(h, "</td></tr>")?;
        write!(
            h,
            "<tr><th>detections</th><td>{}",
            s.detections.values().sum::<u64>()
        )?;
        for (i, (c, k)) in self.classes.iter().enumerate() {
            write!(
                h,
                r#"{}<span class="item"><span class="sw" style="background:{}"></span>{} {k}</span>"#,
                if i == 0 { ": " } else { "" },
                self.colour_of(*c),
                esc(&s.label(*c))
            )?;
        }
        writeln!(h, "</td></tr>")?;
        let mut by_class = BTreeMap::<u32, u64>::new();
        for t in s.tracks.values() {
            *by_class.entry(t.class).or_default() += 1;
        }
        let mut by_class: Vec<(u32, u64)> = by_class.into_iter().collect();
        by_class.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        write!(h, "<tr><th>tracks</th><td>{}", s.tracks.len())?;
        for (i, (c, k)) in by_class.iter().enumerate() {
            write!(
                h,
                r"{}<span class='item'>{} {k}</span>",
                if i == 0 { ": " } else { "" },
                esc(&s.label(*c))
            )?;
        }
        writeln!(h, "</td></tr>")?;
        match self.log {
            Some(log) => {
                let mut causes = BTreeMap::<&str, u64>::new();
                for r in &log.restarts {
                    *causes.entry(r.cause.as_str()).or_default() += 1;
                }
                write!(h, "<tr><th>restarts</th><td>{}", log.restarts.len())?;
                for (i, (cause, k)) in causes.iter().enumerate() {
                    write!(
                        h,
                        r"{}<span class='item'>{} ×{k}</span>",
                        if i == 0 { ": " } else { "" },
                        esc(cause)
                    )?;
                }
                writeln!(h, "</td></tr>")?;
                writeln!(
                    h,
                    "<tr><th>audit</th><td>{} · {} · {}</td></tr>",
                    plural(log.stalls.len() as u64, "stall", "stalls"),
                    plural(log.crash_loops.len() as u64, "crash loop", "crash loops"),
                    plural(log.outages.len() as u64, "camera outage", "camera outages"),
                )?;
            }
            None => writeln!(
                h,
                "<tr><th>restarts</th><td>no audit database given (<code>--audit</code>)</td></tr>"
            )?,
        }
        writeln!(h, "</table>")
    }

    fn svg_open(h: &mut String, height: f64, label: &str) -> fmt::Result {
        writeln!(
            h,
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height:.0}" width="{WIDTH}" height="{height:.0}" role="img" aria-label="{}">"#,
            esc(label)
        )
    }

    fn bin_note(&self) -> String {
        if self.ax.bin == 1 {
            "per frame".to_owned()
        } else {
            let mut note = format!("in bins of {} frames", self.ax.bin);
            if let Some(fps) = self.ax.fps {
                let _ = write!(note, " ({:.2} s)", self.ax.bin as f64 / fps);
            }
            note
        }
    }

    fn detections_panel(&self, h: &mut String) -> fmt::Result {
        let ax = &self.ax;
        let stats = self.class_stats();
        writeln!(h, "<section>\n<h2>Detections per class</h2>")?;
        writeln!(
            h,
            r#"<p class="note">Detections a frame over the inferred frames, {}{}; frames not inferred have none and are left out (see the next chart), and a line breaks where none was inferred over {GAP_PX:.0} px.</p>"#,
            self.bin_note(),
            if ax.bin > 1 {
                ": the bold line is the mean, the faint one the most in a frame"
            } else {
                ""
            }
        )?;
        write!(h, r#"<div class="legend">"#)?;
        for (se, st) in self.series.iter().zip(&stats) {
            let peak = st.iter().map(|b| b.max).max().unwrap_or(0);
            write!(
                h,
                r#"<span class="item"><span class="sw" style="background:{}"></span>{}: {}, at most {peak} a frame</span>"#,
                se.colour,
                esc(&se.name),
                plural(se.total, "detection", "detections")
            )?;
        }
        if self.series.is_empty() {
            write!(h, "<span class=\"item\">no detections</span>")?;
        }
        writeln!(h, "</div>")?;
        let (top, plot_h) = (10.0, 180.0);
        let bottom = top + plot_h;
        let mut svg = String::new();
        let peak = stats
            .iter()
            .flat_map(|s| s.iter().map(|b| b.max))
            .max()
            .unwrap_or(0)
            .max(1);
        let ystep = (nice_step(f64::from(peak) / 4.0) as u32).max(1);
        let ymax = f64::from(peak.div_ceil(ystep) * ystep);
        let y = |v: f64| bottom - v / ymax * plot_h;
        ax.grid(&mut svg, top, bottom)?;
        let mut v = 0;
        while f64::from(v) <= ymax {
            let yy = y(f64::from(v));
            writeln!(
                svg,
                r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{:.1}" y2="{yy:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" class="ylab">{v}</text>"##,
                LEFT + PLOT_W,
                LEFT - 6.0,
                yy + 4.0
            )?;
            v += ystep;
        }
        writeln!(
            svg,
            r#"<text x="20" y="{:.1}" class="lane">detections / frame</text>"#,
            top + plot_h / 2.0
        )?;
        self.guides(&mut svg, top, bottom)?;
        let gap_bins = (GAP_PX / (ax.px_per_frame() * ax.bin as f64)).floor() as usize;
        // A polyline through the bins with inferred frames, broken across long gaps.
        let line = |st: &[Stat], value: &dyn Fn(&Stat) -> f64| -> Result<String, fmt::Error> {
            let mut d = String::new();
            let mut prev: Option<usize> = None;
            let mut alone = false;
            for (b, bin) in st.iter().enumerate() {
                if bin.n == 0 {
                    continue;
                }
                let c = match prev {
                    Some(p) if b - p - 1 <= gap_bins => 'L',
                    _ => 'M',
                };
                if c == 'M' && alone {
                    d.push_str("h0.1");
                }
                alone = c == 'M';
                write!(d, "{c}{:.1},{:.1}", ax.bin_mid(b), y(value(bin)))?;
                prev = Some(b);
            }
            if alone {
                d.push_str("h0.1");
            }
            Ok(d)
        };
        if ax.bin > 1 {
            for (se, st) in self.series.iter().zip(&stats).rev() {
                writeln!(
                    svg,
                    r#"<path d="{}" fill="none" stroke="{}" stroke-opacity="0.45" stroke-width="1" stroke-linejoin="round" stroke-linecap="round"/>"#,
                    line(st, &|b| f64::from(b.max))?,
                    se.colour
                )?;
            }
        }
        for (se, st) in self.series.iter().zip(&stats).rev() {
            writeln!(
                svg,
                r#"<path d="{}" fill="none" stroke="{}" stroke-width="1.8" stroke-linejoin="round" stroke-linecap="round"><title>{}</title></path>"#,
                line(st, &Stat::mean)?,
                se.colour,
                esc(&se.name)
            )?;
        }
        // A tooltip per bin.
        writeln!(svg, r##"<g fill="#000" fill-opacity="0">"##)?;
        for b in 0..ax.bins() {
            let (a, z) = ax.bin_frames(b);
            let n = stats.first().map_or(0, |s| s[b].n);
            let mut tip = seqs(a, z);
            if ax.bin > 1 {
                let _ = write!(tip, " ({n} inferred)");
            }
            if n == 0 {
                tip.push_str(": no frame inferred");
            } else {
                for (i, (se, st)) in self.series.iter().zip(&stats).enumerate() {
                    let sep = if i == 0 { ": " } else { ", " };
                    if ax.bin > 1 {
                        let _ = write!(
                            tip,
                            "{sep}{} {:.1} (max {})",
                            se.name,
                            st[b].mean(),
                            st[b].max
                        );
                    } else {
                        let _ = write!(tip, "{sep}{} {}", se.name, st[b].max);
                    }
                }
            }
            writeln!(
                svg,
                r#"<rect x="{:.1}" y="{top:.1}" width="{:.2}" height="{plot_h:.1}"><title>{}</title></rect>"#,
                ax.x(a as f64),
                ax.x(z as f64 + 1.0) - ax.x(a as f64),
                esc(&tip)
            )?;
        }
        writeln!(svg, "</g>")?;
        let axis_h = ax.labels(&mut svg, bottom)?;
        Self::svg_open(h, bottom + axis_h + 4.0, "detections per class")?;
        h.push_str(&svg);
        writeln!(h, "</svg>\n</section>")
    }

    fn status_panel(&self, h: &mut String) -> fmt::Result {
        let ax = &self.ax;
        let s = self.s;
        let not_inferred: u64 = s.by_status[1..].iter().sum();
        writeln!(h, "<section>\n<h2>Frames without fresh detections</h2>")?;
        writeln!(
            h,
            r#"<p class="note">The share of frames not inferred, {}, by why: {} of {} frames.</p>"#,
            self.bin_note(),
            not_inferred,
            s.frames.len()
        )?;
        write!(h, r#"<div class="legend">"#)?;
        for st in &FrameStatus::ALL[1..] {
            write!(
                h,
                r#"<span class="item"><span class="sw" style="background:{}"></span>{} {}</span>"#,
                status_colour(*st),
                st.as_str(),
                s.by_status[*st as usize]
            )?;
        }
        writeln!(
            h,
            r#"<span class="item dim">(inferred {})</span></div>"#,
            s.by_status[FrameStatus::Inferred as usize]
        )?;
        let (top, strip_h) = (8.0, 60.0);
        let bottom = top + strip_h;
        let mut svg = String::new();
        writeln!(
            svg,
            r##"<rect x="{LEFT}" y="{top}" width="{PLOT_W}" height="{strip_h}" fill="#f4f7f4" stroke="#ccc"/>"##
        )?;
        ax.grid(&mut svg, top, bottom)?;
        for (v, label) in [(0.0, "0 %"), (0.5, "50 %"), (1.0, "100 %")] {
            writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" class="ylab">{label}</text>"#,
                LEFT - 6.0,
                bottom - v * strip_h + 4.0
            )?;
        }
        writeln!(
            svg,
            r#"<text x="20" y="{:.1}" class="lane">not inferred</text>"#,
            top + strip_h / 2.0 + 4.0
        )?;
        if not_inferred == 0 {
            writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" class="none">every frame was inferred</text>"#,
                LEFT + 8.0,
                top + strip_h / 2.0 + 4.0
            )?;
        }
        let bins = self.status_bins();
        let mut b = 0;
        while b < bins.len() {
            // Bins alike in a row are drawn as one.
            let mut e = b;
            while e + 1 < bins.len() && bins[e + 1] == bins[b] {
                e += 1;
            }
            let counts = &bins[b];
            let total: u32 = counts.iter().sum();
            let missed: u32 = counts[1..].iter().sum();
            if missed > 0 && total > 0 {
                let (first, _) = ax.bin_frames(b);
                let (_, last) = ax.bin_frames(e);
                let mut tip = seqs(first, last);
                if e > b {
                    let _ = write!(tip, " ({} bins alike)", e - b + 1);
                }
                let _ = write!(tip, ": {} a bin", plural(total, "frame", "frames"));
                for st in FrameStatus::ALL {
                    let k = counts[st as usize];
                    if k > 0 {
                        let _ = write!(tip, ", {} {k}", st.as_str());
                    }
                }
                writeln!(svg, "<g><title>{}</title>", esc(&tip))?;
                let (x0, x1) = (ax.x(first as f64), ax.x(last as f64 + 1.0));
                let mut yy = bottom;
                for st in &FrameStatus::ALL[1..] {
                    let k = counts[*st as usize];
                    if k == 0 {
                        continue;
                    }
                    let hh = f64::from(k) / f64::from(total) * strip_h;
                    yy -= hh;
                    writeln!(
                        svg,
                        r#"<rect x="{x0:.1}" y="{yy:.1}" width="{:.2}" height="{hh:.2}" fill="{}"/>"#,
                        (x1 - x0).max(0.6),
                        status_colour(*st)
                    )?;
                }
                writeln!(svg, "</g>")?;
            }
            b = e + 1;
        }
        self.guides(&mut svg, top, bottom)?;
        let axis_h = ax.labels(&mut svg, bottom)?;
        Self::svg_open(h, bottom + axis_h + 4.0, "frames without fresh detections")?;
        h.push_str(&svg);
        writeln!(h, "</svg>\n</section>")
    }

    fn audit_panel(&self, h: &mut String) -> fmt::Result {
        let ax = &self.ax;
        writeln!(
            h,
            "<section>\n<h2>Audit: restarts, stalls, crash loops, camera outages</h2>"
        )?;
        writeln!(
            h,
            r#"<p class="note">Hover a mark for its row. A restart is marked at the frame its process died on, its band reaching the first frame inferred after it; a stall spans its frames without detections until the next inferred frame; a crash loop spans the pause of its restarts; a camera outage, timed by the wall clock, the time until the camera came back.</p>"#
        )?;
        let (top, lane_h) = (8.0, 28.0);
        let bottom = top + lane_h * self.lanes.len() as f64;
        let mut svg = String::new();
        ax.grid(&mut svg, top, bottom)?;
        for (i, lane) in self.lanes.iter().enumerate() {
            let y0 = top + lane_h * i as f64;
            let mid = y0 + lane_h / 2.0;
            writeln!(
                svg,
                r##"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="#ddd"/><text x="20" y="{:.1}" class="lane">{} ({})</text>"##,
                y0 + lane_h,
                LEFT + PLOT_W,
                y0 + lane_h,
                mid + 4.0,
                lane.name,
                lane.placed.len() + lane.unplaced.len()
            )?;
            if lane.placed.is_empty() {
                writeln!(
                    svg,
                    r#"<text x="{:.1}" y="{:.1}" class="none">{}</text>"#,
                    LEFT + 6.0,
                    mid + 4.0,
                    if lane.unplaced.is_empty() {
                        "none"
                    } else {
                        "none placed (see below)"
                    }
                )?;
            }
            for p in lane.placed.iter().take(MAX_EVENTS) {
                let x = ax.x(p.at);
                writeln!(svg, "<g><title>{}</title>", esc(&p.details))?;
                if let Some(until) = p.until {
                    writeln!(
                        svg,
                        r#"<rect x="{x:.1}" y="{:.1}" width="{:.2}" height="{:.1}" fill="{}" fill-opacity="{}"/>"#,
                        y0 + 6.0,
                        (ax.x(until) - x).max(2.0),
                        lane_h - 12.0,
                        lane.colour,
                        if lane.marker { "0.25" } else { "0.7" }
                    )?;
                }
                if lane.marker {
                    let xm = ax.x(p.at + 0.5);
                    writeln!(
                        svg,
                        r#"<line x1="{xm:.1}" y1="{:.1}" x2="{xm:.1}" y2="{:.1}" stroke="{c}" stroke-width="2"/><path d="M{:.1},{:.1}h10l-5,7z" fill="{c}"/>"#,
                        y0 + 3.0,
                        y0 + lane_h - 3.0,
                        xm - 5.0,
                        y0 + 2.0,
                        c = lane.colour
                    )?;
                }
                writeln!(svg, "</g>")?;
            }
            for (x, label) in lane.labels(ax) {
                writeln!(
                    svg,
                    r#"<text x="{x:.1}" y="{:.1}" class="mark">{}</text>"#,
                    mid + 4.0,
                    esc(&label)
                )?;
            }
            if lane.placed.len() > MAX_EVENTS {
                writeln!(
                    svg,
                    r#"<text x="{:.1}" y="{:.1}" class="none" text-anchor="end">{} more not drawn</text>"#,
                    LEFT + PLOT_W - 4.0,
                    mid + 4.0,
                    lane.placed.len() - MAX_EVENTS
                )?;
            }
        }
        let axis_h = ax.labels(&mut svg, bottom)?;
        Self::svg_open(h, bottom + axis_h + 4.0, "audit events")?;
        h.push_str(&svg);
        writeln!(h, "</svg>")?;
        let unplaced: Vec<&String> = self.lanes.iter().flat_map(|l| &l.unplaced).collect();
        if !unplaced.is_empty() {
            writeln!(
                h,
                r#"<p class="note">Not placed on the axis (outside the output's frames, or no frame time to map them by{}):</p><ul class="unplaced">"#,
                if ax.fps.is_none() { "; try --fps" } else { "" }
            )?;
            for u in unplaced.iter().take(MAX_ROWS) {
                writeln!(h, "<li>{}</li>", esc(u))?;
            }
            if unplaced.len() > MAX_ROWS {
                writeln!(h, "<li>… and {} more</li>", unplaced.len() - MAX_ROWS)?;
            }
            writeln!(h, "</ul>")?;
        }
        if let Some(log) = self.log {
            Self::audit_tables(h, log)?;
        }
        writeln!(h, "</section>")
    }

    fn audit_tables(h: &mut String, log: &AuditLog) -> fmt::Result {
        fn table<T>(
            h: &mut String,
            title: &str,
            head: &[&str],
            rows: &[T],
            cells: impl Fn(&T) -> Vec<String>,
        ) -> fmt::Result {
            if rows.is_empty() {
                return Ok(());
            }
            writeln!(
                h,
                "<details><summary>{title}: {}</summary><table class=\"rows\"><tr>",
                plural(rows.len() as u64, "row", "rows")
            )?;
            for c in head {
                write!(h, "<th>{c}</th>")?;
            }
            writeln!(h, "</tr>")?;
            for r in rows.iter().take(MAX_ROWS) {
                write!(h, "<tr>")?;
                for c in cells(r) {
                    write!(h, "<td>{}</td>", esc(&c))?;
                }
                writeln!(h, "</tr>")?;
            }
            if rows.len() > MAX_ROWS {
                writeln!(
                    h,
                    "<tr><td colspan=\"{}\">… and {} more</td></tr>",
                    head.len(),
                    rows.len() - MAX_ROWS
                )?;
            }
            writeln!(h, "</table></details>")
        }
        let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
        let optf = |v: Option<f64>| v.map(|v| format!("{v:.0}")).unwrap_or_default();
        table(
            h,
            "process_restarts",
            &[
                "node",
                "cause",
                "exit code",
                "signal",
                "fault seq",
                "restart ms",
                "first detection ms",
                "frames without detections",
                "flight recording",
            ],
            &log.restarts,
            |r| {
                vec![
                    r.node.clone(),
                    r.cause.clone(),
                    opt(r.exit_code),
                    opt(r.signal),
                    opt(r.fault_seq),
                    format!("{:.0}", r.restart_ms),
                    optf(r.first_detection_ms),
                    opt(r.frames_without),
                    r.flight_recording.clone().unwrap_or_default(),
                ]
            },
        )?;
        table(
            h,
            "pipeline_stall_events",
            &[
                "node",
                "first seq",
                "duration ms",
                "frames without detections",
            ],
            &log.stalls,
            |r| {
                vec![
                    r.node.clone(),
                    r.first_seq.to_string(),
                    optf(r.duration_ms),
                    opt(r.frames_without),
                ]
            },
        )?;
        table(
            h,
            "crash_loops",
            &["node", "deaths", "window s", "pause ms", "cause"],
            &log.crash_loops,
            |r| {
                vec![
                    r.node.clone(),
                    r.deaths.to_string(),
                    r.window_s.to_string(),
                    r.pause_ms.to_string(),
                    r.cause.clone(),
                ]
            },
        )?;
        table(
            h,
            "camera_outages",
            &["why", "outage ms", "attempts"],
            &log.outages,
            |r| vec![r.why.clone(), opt(r.outage_ms), opt(r.attempts)],
        )
    }

    fn tracks_panel(&self, h: &mut String) -> fmt::Result {
        let ax = &self.ax;
        let s = self.s;
        let mut shown: Vec<(&u64, &TrackLife)> = s.tracks.iter().collect();
        shown.sort_by(|a, b| {
            (b.1.last - b.1.first)
                .cmp(&(a.1.last - a.1.first))
                .then(a.0.cmp(b.0))
        });
        let left_out = shown.len().saturating_sub(MAX_TRACKS);
        shown.truncate(MAX_TRACKS);
        shown.sort_by_key(|(id, t)| (t.first, **id));
        writeln!(h, "<section>\n<h2>Track lifetimes</h2>")?;
        write!(
            h,
            r#"<p class="note">A bar per track from the first to the last frame it is in, solid where a detection matched it, light where it coasted; coloured by class as above. "#
        )?;
        if left_out > 0 {
            write!(
                h,
                "The {MAX_TRACKS} longest-lived of {} tracks: {left_out} shorter ones are left out.",
                s.tracks.len()
            )?;
        } else {
            write!(h, "{}.", plural(s.tracks.len() as u64, "track", "tracks"))?;
        }
        writeln!(h, "</p>")?;
        let n = shown.len().max(1);
        let row = (640.0 / n as f64).clamp(3.0, 16.0);
        let top = 6.0;
        let bottom = top + row * n as f64;
        let mut svg = String::new();
        ax.grid(&mut svg, top, bottom)?;
        self.guides(&mut svg, top, bottom)?;
        if shown.is_empty() {
            writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" class="none">no tracks</text>"#,
                LEFT + 6.0,
                top + row / 2.0 + 4.0
            )?;
        }
        let merge = (MERGE_PX / ax.px_per_frame()).floor() as u64;
        let bar = (row * 0.72).max(2.0);
        for (i, (id, t)) in shown.iter().enumerate() {
            let y0 = top + row * i as f64 + (row - bar) / 2.0;
            let colour = self.colour_of(t.class);
            let label = s.label(t.class);
            writeln!(
                svg,
                "<g><title>track {id} ({}): {}, in {} frames, matched in {}</title>",
                esc(&label),
                seqs(t.first, t.last),
                t.frames,
                t.matched
            )?;
            let (x0, x1) = (ax.x(t.first as f64), ax.x(t.last as f64 + 1.0));
            writeln!(
                svg,
                r#"<rect x="{x0:.1}" y="{y0:.1}" width="{:.2}" height="{bar:.1}" fill="{colour}" fill-opacity="0.3"/>"#,
                (x1 - x0).max(1.0)
            )?;
            let mut d = String::new();
            let mut run: Option<(u64, u64)> = None;
            let flush = |d: &mut String, (a, z): (u64, u64)| {
                let (xa, xz) = (ax.x(a as f64), ax.x(z as f64 + 1.0));
                write!(
                    d,
                    "M{xa:.1},{y0:.1}h{:.2}v{bar:.1}h{:.2}z",
                    (xz - xa).max(0.8),
                    -(xz - xa).max(0.8)
                )
            };
            for &(a, z) in &t.runs {
                run = match run {
                    Some((ra, rz)) if a <= rz.saturating_add(merge).saturating_add(1) => {
                        Some((ra, z))
                    }
                    Some(r) => {
                        flush(&mut d, r)?;
                        Some((a, z))
                    }
                    None => Some((a, z)),
                };
            }
            if let Some(r) = run {
                flush(&mut d, r)?;
            }
            if !d.is_empty() {
                writeln!(svg, r#"<path d="{d}" fill="{colour}"/>"#)?;
            }
            if row >= 10.0 {
                writeln!(
                    svg,
                    r#"<text x="{:.1}" y="{:.1}" class="ylab">#{id} {}</text>"#,
                    LEFT - 6.0,
                    y0 + bar / 2.0 + 3.5,
                    esc(&label)
                )?;
            }
            writeln!(svg, "</g>")?;
        }
        if row < 10.0 && !shown.is_empty() {
            writeln!(
                svg,
                r#"<text x="20" y="{:.1}" class="lane">tracks, by first frame</text>"#,
                top + 12.0
            )?;
        }
        let axis_h = ax.labels(&mut svg, bottom)?;
        Self::svg_open(h, bottom + axis_h + 4.0, "track lifetimes")?;
        h.push_str(&svg);
        writeln!(h, "</svg>\n</section>")
    }
}

/// The audit's rows as lanes of events on the frame axis: restarts first (their guides cross
/// every chart), then stalls, crash loops, camera outages.
fn lanes(s: &Session, log: &AuditLog, fps: Option<f64>) -> Vec<Lane> {
    let clock = Clock::new(s, log, fps);
    let (first, last) = (s.first() as f64, s.last() as f64 + 1.0);
    let inside = |at: f64| at >= first && at < last;
    let seq = |v: i64| u64::try_from(v).ok();
    let mut restarts = Lane {
        name: "restarts",
        colour: RESTART_COLOUR,
        marker: true,
        placed: Vec::new(),
        unplaced: Vec::new(),
    };
    for r in &log.restarts {
        let mut details = format!("restart of {}: {}", r.node, r.cause);
        match (r.exit_code, r.signal) {
            (Some(c), _) => {
                let _ = write!(details, " (exit code {c})");
            }
            (None, Some(sig)) => {
                let _ = write!(details, " (signal {sig})");
            }
            (None, None) => {}
        }
        let at = r
            .fault_seq
            .and_then(seq)
            .map(|q| q as f64)
            .or_else(|| clock.seq_at(r.fault_ts_ns).map(f64::floor));
        match r.fault_seq {
            Some(q) => {
                let _ = write!(details, "; died on frame seq {q}");
            }
            None => details.push_str("; the frame it died on is not known"),
        }
        let _ = write!(details, "; back after {:.0} ms of frame time", r.restart_ms);
        if let Some(ms) = r.first_detection_ms {
            let _ = write!(details, ", first detection after {ms:.0} ms");
        }
        if let Some(k) = r.frames_without {
            let _ = write!(
                details,
                ", {} without detections",
                plural(k.max(0) as u64, "frame", "frames")
            );
        }
        if let Some(f) = &r.flight_recording {
            let _ = write!(details, "; flight recording {f}");
        }
        match at.filter(|&a| inside(a)) {
            Some(at) => {
                let until = s
                    .inferred_after(at as u64)
                    .map(|q| q as f64)
                    .filter(|&u| u > at + 1.0);
                restarts.placed.push(Placed {
                    at,
                    until,
                    label: r.cause.clone(),
                    details,
                });
            }
            None => restarts.unplaced.push(details),
        }
    }
    let mut stalls = Lane {
        name: "stalls",
        colour: STALL_COLOUR,
        marker: false,
        placed: Vec::new(),
        unplaced: Vec::new(),
    };
    for st in &log.stalls {
        let mut details = format!(
            "stall ({}): frames without detections from seq {}",
            st.node, st.first_seq
        );
        match (st.duration_ms, st.frames_without) {
            (Some(ms), Some(k)) => {
                let _ = write!(
                    details,
                    " for {ms:.0} ms of frame time, {}",
                    plural(k.max(0) as u64, "frame", "frames")
                );
            }
            (Some(ms), None) => {
                let _ = write!(details, " for {ms:.0} ms of frame time");
            }
            _ => details.push_str(", not ended when the audit was last written"),
        }
        let at = seq(st.first_seq).map(|q| q as f64).filter(|&a| inside(a));
        match at {
            Some(at) => {
                let until = if st.ended_ts_ns.is_some() {
                    s.inferred_after(at as u64)
                        .map(|q| q as f64)
                        .or_else(|| st.ended_ts_ns.and_then(|t| clock.seq_at(t)))
                } else {
                    Some(last)
                };
                stalls.placed.push(Placed {
                    at,
                    until: Some(until.unwrap_or(at + 1.0).clamp(at + 1.0, last)),
                    label: st
                        .frames_without
                        .map(|k| plural(k.max(0) as u64, "frame", "frames"))
                        .unwrap_or_default(),
                    details,
                });
            }
            None => stalls.unplaced.push(details),
        }
    }
    let mut loops = Lane {
        name: "crash loops",
        colour: CRASH_LOOP_COLOUR,
        marker: true,
        placed: Vec::new(),
        unplaced: Vec::new(),
    };
    for c in &log.crash_loops {
        let details = format!(
            "crash loop of {}: {} deaths within {} s (the last: {}); restarts held back for {:.1} s",
            c.node,
            c.deaths,
            c.window_s,
            c.cause,
            c.pause_ms as f64 / 1000.0
        );
        match clock
            .seq_at(c.at_ts_ns)
            .map(f64::floor)
            .filter(|&a| inside(a))
        {
            Some(at) => loops.placed.push(Placed {
                at,
                until: clock
                    .frames_in(c.pause_ms as f64)
                    .map(|k| (at + k).min(last)),
                label: format!("{} deaths", c.deaths),
                details,
            }),
            None => loops.unplaced.push(details),
        }
    }
    let mut outages = Lane {
        name: "camera outages",
        colour: OUTAGE_COLOUR,
        marker: false,
        placed: Vec::new(),
        unplaced: Vec::new(),
    };
    for o in &log.outages {
        let mut details = format!("camera down: {}", o.why);
        match (o.outage_ms, o.attempts) {
            (Some(ms), Some(k)) => {
                let _ = write!(
                    details,
                    "; back after {ms} ms, {}",
                    plural(k.max(0) as u64, "attempt", "attempts")
                );
            }
            (Some(ms), None) => {
                let _ = write!(details, "; back after {ms} ms");
            }
            _ => details.push_str("; not back when the audit was last written"),
        }
        let at = clock
            .ts_at_wall(o.at_unix_ms)
            .and_then(|t| clock.seq_at(t))
            .filter(|&a| inside(a));
        match at {
            Some(at) => {
                let end_ms = o
                    .resumed_unix_ms
                    .or_else(|| o.outage_ms.map(|ms| o.at_unix_ms.saturating_add(ms)));
                let until = match end_ms {
                    Some(end) => clock
                        .ts_at_wall(end)
                        .and_then(|t| clock.seq_at(t))
                        .unwrap_or(at + 1.0),
                    None => last,
                };
                outages.placed.push(Placed {
                    at,
                    until: Some(until.clamp(at + 1.0, last)),
                    label: o.why.clone(),
                    details,
                });
            }
            None => outages.unplaced.push(details),
        }
    }
    vec![restarts, stalls, loops, outages]
}

const STYLE: &str = "
body { font: 14px/1.4 system-ui, -apple-system, 'Segoe UI', sans-serif; color: #222; margin: 16px 24px; max-width: 1220px; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 22px 0 2px; }
p.src { color: #555; margin: 0 0 10px; }
p.note { color: #555; margin: 2px 0 6px; font-size: 13px; }
code { font-size: 12px; }
table.totals { border-collapse: collapse; }
table.totals th { text-align: left; padding: 2px 14px 2px 0; vertical-align: top; font-weight: 600; white-space: nowrap; }
table.totals td { padding: 2px 0; }
.item { display: inline-block; margin-right: 14px; white-space: nowrap; }
.dim { color: #777; }
.sw { display: inline-block; width: 11px; height: 11px; margin-right: 5px; vertical-align: -1px; border-radius: 2px; }
.legend { font-size: 13px; margin: 4px 0 2px; }
svg { display: block; max-width: 100%; height: auto; }
svg text { font-family: system-ui, sans-serif; }
svg .tick { font-size: 11px; fill: #555; text-anchor: middle; }
svg .secs { fill: #888; }
svg .axis-name { font-size: 11px; fill: #777; text-anchor: end; }
svg .ylab { font-size: 11px; fill: #555; text-anchor: end; }
svg .lane { font-size: 12px; fill: #333; }
svg .none { font-size: 12px; fill: #999; }
svg .mark { font-size: 11px; fill: #222; paint-order: stroke; stroke: #fff; stroke-width: 3px; stroke-linejoin: round; }
details { margin: 6px 0; font-size: 13px; }
table.rows { border-collapse: collapse; margin: 4px 0; }
table.rows th, table.rows td { border: 1px solid #ddd; padding: 2px 6px; text-align: left; }
ul.unplaced { font-size: 13px; color: #555; }
";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// An output line: detections as (class, label), tracks as (id, class, coasting).
    fn line(
        seq: u64,
        status: &str,
        dets: &[(u32, Option<&str>)],
        tracks: &[(u64, u32, bool)],
    ) -> String {
        let detections: Vec<_> = dets
            .iter()
            .map(|(c, l)| {
                let mut d = json!({"class": c, "score": 0.5, "box": [1.0, 2.0, 3.0, 4.0]});
                if let Some(l) = l {
                    d["label"] = json!(l);
                }
                d
            })
            .collect();
        let tracks: Vec<_> = tracks
            .iter()
            .map(|(id, c, coasting)| {
                let mut t = json!({"id": id, "class": c, "box": [1.0, 2.0, 3.0, 4.0]});
                if *coasting {
                    t["coasting"] = json!(true);
                }
                t
            })
            .collect();
        json!({"seq": seq, "status": status, "detections": detections, "tracks": tracks})
            .to_string()
    }

    fn write(dir: &Path, name: &str, lines: &[String]) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, lines.join("\n") + "\n").expect("writes");
        path
    }

    fn render(output: &Path, audit: Option<&Path>, fps: Option<f64>) -> (String, String) {
        let out = output.with_extension("html");
        let description = plot(output, audit, fps, &out).expect("plots");
        (std::fs::read_to_string(&out).expect("reads"), description)
    }

    #[test]
    fn binning_keeps_the_max() {
        let dir = tempfile::tempdir().expect("tmp");
        let lines: Vec<String> = (0..3000)
            .map(|seq| {
                let k = if seq == 1234 { 9 } else { 1 };
                line(seq, "inferred", &vec![(0, Some("person")); k], &[])
            })
            .collect();
        let path = write(dir.path(), "o.jsonl", &lines);
        let s = Session::read(&path).expect("reads");
        let r = Report::new(&s, None, None);
        assert_eq!(r.ax.bin, 3);
        let stats = r.class_stats();
        let b = r.ax.bin_of(1234);
        assert_eq!((stats[0][b].max, stats[0][b].min, stats[0][b].n), (9, 1, 3));
        assert!((stats[0][b].mean() - 11.0 / 3.0).abs() < 1e-9);
        assert!(
            stats[0]
                .iter()
                .enumerate()
                .all(|(i, st)| i == b || st.max == 1)
        );
        let (page, _) = render(&path, None, None);
        assert!(
            page.contains("at most 9 a frame"),
            "the legend gives the peak"
        );
    }

    #[test]
    fn a_long_session_gives_a_bounded_page() {
        let dir = tempfile::tempdir().expect("tmp");
        let statuses = [
            "inferred",
            "interval",
            "busy",
            "missing",
            "inferred",
            "failed",
            "bad_frame",
        ];
        let lines: Vec<String> = (0..10_000u64)
            .map(|seq| {
                let status = statuses[(seq % 7) as usize];
                let dets: Vec<(u32, Option<&str>)> = (0..(seq % 5) as u32)
                    .map(|c| (c * 3, Some("thing")))
                    .collect();
                // 500 tracks of 100 frames, alive 5 at a time, coasting every third frame.
                let tracks: Vec<(u64, u32, bool)> = (0..5)
                    .map(|k| (seq / 100 * 5 + k, (k % 3) as u32, seq % 3 == 0))
                    .collect();
                line(seq, status, &dets, &tracks)
            })
            .collect();
        let path = write(dir.path(), "long.jsonl", &lines);
        let (page, description) = render(&path, None, Some(30.0));
        assert!(page.len() < 1_500_000, "{} bytes", page.len());
        for path in page.split("<path d=\"").skip(1) {
            let d = &path[..path.find('"').expect("closed")];
            let points = d.matches(['M', 'L']).count();
            assert!(points <= 2 * MAX_BINS as usize, "{points} points in a path");
        }
        assert!(
            page.contains("300 shorter ones are left out"),
            "{description}"
        );
        assert_eq!(page.matches("<g><title>track ").count(), MAX_TRACKS);
        assert!(description.contains("10000 frames"), "{description}");
        assert!(!page.contains("<script"));
        assert!(
            !page
                .replace("http://www.w3.org/2000/svg", "")
                .contains("http"),
            "nothing fetched"
        );
    }

    #[test]
    fn the_legend_names_every_class() {
        let dir = tempfile::tempdir().expect("tmp");
        let lines = vec![
            line(
                0,
                "inferred",
                &[(0, Some("person")), (2, Some("car"))],
                &[(1, 0, false)],
            ),
            line(1, "busy", &[], &[(1, 0, true)]),
            line(
                2,
                "inferred",
                &[(7, None), (0, Some("person"))],
                &[(1, 0, false), (2, 7, false)],
            ),
        ];
        let path = write(dir.path(), "o.jsonl", &lines);
        let (page, description) = render(&path, None, None);
        for label in [
            "person: 2 detections",
            "car: 1 detection,",
            "class 7: 1 detection,",
        ] {
            assert!(page.contains(label), "{label} missing");
        }
        assert!(page.contains("busy 1"));
        assert!(page.contains("track 1 (person): seq 0–2, in 3 frames, matched in 2"));
        assert!(
            description.ends_with(": 3 frames (seq 0–2), 4 detections of 3 classes, 2 tracks"),
            "{description}"
        );
    }

    #[test]
    fn more_classes_than_colours_are_summed() {
        let dir = tempfile::tempdir().expect("tmp");
        let dets: Vec<(u32, Option<&str>)> = (0..14).map(|c| (c, None)).collect();
        let path = write(dir.path(), "o.jsonl", &[line(0, "inferred", &dets, &[])]);
        let (page, _) = render(&path, None, None);
        assert!(page.contains("5 other classes: 5 detections,"));
        assert!(page.contains("class 13 1"), "the header lists every class");
    }

    #[test]
    fn seqs_far_apart_stay_on_the_axis() {
        let dir = tempfile::tempdir().expect("tmp");
        let lines = [
            line(0, "inferred", &[(0, None)], &[(1, 0, false)]),
            line(u64::MAX, "missing", &[], &[(1, 0, true)]),
        ];
        let path = write(dir.path(), "far.jsonl", &lines);
        let (page, description) = render(&path, None, Some(30.0));
        assert!(description.contains("2 frames"), "{description}");
        assert!(page.contains("missing 1"));
    }

    #[test]
    fn the_same_inputs_give_the_same_bytes() {
        let dir = tempfile::tempdir().expect("tmp");
        let lines: Vec<String> = (0..50)
            .map(|seq| {
                line(
                    seq,
                    "inferred",
                    &[(seq as u32 % 4, None)],
                    &[(seq / 10, 1, false)],
                )
            })
            .collect();
        let path = write(dir.path(), "o.jsonl", &lines);
        assert_eq!(
            render(&path, None, Some(25.0)),
            render(&path, None, Some(25.0))
        );
    }

    #[test]
    fn an_audit_restart_is_drawn_where_the_process_died() {
        let dir = tempfile::tempdir().expect("tmp");
        let lines: Vec<String> = (0..100)
            .map(|seq| {
                let status = if (40..44).contains(&seq) {
                    "missing"
                } else {
                    "inferred"
                };
                line(seq, status, &[], &[])
            })
            .collect();
        let path = write(dir.path(), "o.jsonl", &lines);
        let db = dir.path().join("o.audit.db");
        // The schema as the monitor writes it, and this session's rows.
        drop(vigil_monitor::audit::Audit::open(&db, "infer", 1_000).expect("creates"));
        let conn = Connection::open(&db).expect("opens");
        let frame_ns = 33_333_333i64;
        conn.execute(
            "INSERT INTO process_restarts (session_id, node, at_unix_ms, cause, signal, fault_seq, fault_ts_ns, restart_ms, first_detection_ms, frames_without_detections) VALUES (1, 'infer_0', 5000, 'SIGSEGV', 11, 40, ?1, 120.0, 140.0, 4)",
            [40 * frame_ns],
        )
        .expect("restart");
        conn.execute(
            "INSERT INTO pipeline_stall_events (session_id, node, at_unix_ms, started_ts_ns, first_seq, ended_ts_ns, duration_ms, frames_without_detections) VALUES (1, 'infer', 4900, ?1, 40, ?2, 133.3, 4)",
            [40 * frame_ns, 44 * frame_ns],
        )
        .expect("stall");
        conn.execute(
            "INSERT INTO crash_loops (session_id, node, at_unix_ms, at_ts_ns, deaths, window_s, pause_ms, cause) VALUES (1, 'infer_1', 6000, ?1, 5, 60, 1000, 'SIGABRT')",
            [70 * frame_ns],
        )
        .expect("crash loop");
        conn.execute(
            "INSERT INTO camera_outages (session_id, at_unix_ms, why) VALUES (1, 9999999, 'unplugged')",
            [],
        )
        .expect("outage");
        drop(conn);
        let (page, description) = render(&path, Some(&db), None);
        assert!(
            page.contains("<title>restart of infer_0: SIGSEGV (signal 11); died on frame seq 40;"),
            "{page}"
        );
        assert!(
            page.contains(r#"class="mark">SIGSEGV</text>"#),
            "the marker is labelled"
        );
        assert!(page.contains("stall (infer): frames without detections from seq 40 for 133 ms"));
        // The crash loop is placed by frame time, through the restart's and stall's seqs.
        let x = Axis::new(0, 99, None).x(70.5);
        assert!(
            page.contains(&format!(r#"<line x1="{x:.1}""#)),
            "crash loop at seq 70"
        );
        assert!(
            page.contains("<li>camera down: unplugged; not back"),
            "placed nowhere"
        );
        assert!(
            description.contains("1 restart, 1 stall, 1 crash loop, 1 camera outage"),
            "{description}"
        );
        assert!(page.contains("SIGSEGV ×1"));
    }

    #[test]
    fn an_audit_without_rows_is_fine_and_a_stranger_is_an_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = write(dir.path(), "o.jsonl", &[line(0, "inferred", &[], &[])]);
        let db = dir.path().join("empty.audit.db");
        drop(vigil_monitor::audit::Audit::open(&db, "infer", 1).expect("creates"));
        let (page, description) = render(&path, Some(&db), None);
        assert!(description.contains("0 restarts"), "{description}");
        assert!(page.contains(r#"class="none">none</text>"#));

        let partial = dir.path().join("partial.db");
        let conn = Connection::open(&partial).expect("opens");
        conn.execute_batch("CREATE TABLE crash_loops (id INTEGER PRIMARY KEY, session_id INTEGER, node TEXT, at_unix_ms INTEGER, at_ts_ns INTEGER, deaths INTEGER, window_s INTEGER, pause_ms INTEGER, cause TEXT);")
            .expect("creates");
        drop(conn);
        render(&path, Some(&partial), None);

        let odd = dir.path().join("odd.db");
        let conn = Connection::open(&odd).expect("opens");
        conn.execute_batch("CREATE TABLE process_restarts (id INTEGER PRIMARY KEY, cause TEXT);")
            .expect("creates");
        drop(conn);
        let e = plot(&path, Some(&odd), None, &dir.path().join("r.html")).expect_err("refused");
        assert!(
            format!("{e:#}").contains("odd.db: not a vigil audit database: table process_restarts"),
            "{e:#}"
        );

        for (name, bytes) in [
            ("stranger.db", &b"not a database at all, just text"[..]),
            ("nothing.db", b""),
        ] {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).expect("writes");
            let e = plot(&path, Some(&p), None, &dir.path().join("r.html")).expect_err("refused");
            let msg = format!("{e:#}");
            assert!(
                msg.contains(&format!("{name}: not a vigil audit database")),
                "{msg}"
            );
        }
        let e = plot(
            &path,
            Some(&dir.path().join("absent.db")),
            None,
            &dir.path().join("r.html"),
        )
        .expect_err("refused");
        assert!(format!("{e:#}").contains("absent.db"), "{e:#}");
    }

    #[test]
    fn a_bad_line_is_an_error_naming_file_and_line() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = write(
            dir.path(),
            "bad.jsonl",
            &[
                line(0, "inferred", &[], &[]),
                "{\"seq\":1,\"status\":".into(),
            ],
        );
        let e = plot(&path, None, None, &dir.path().join("r.html")).expect_err("refused");
        assert!(
            format!("{e:#}").contains("bad.jsonl:2: not a vigil output line"),
            "{e:#}"
        );

        let path = write(dir.path(), "status.jsonl", &[line(0, "asleep", &[], &[])]);
        let e = plot(&path, None, None, &dir.path().join("r.html")).expect_err("refused");
        assert!(
            format!("{e:#}").contains("status.jsonl:1: unknown status `asleep`"),
            "{e:#}"
        );

        let path = write(
            dir.path(),
            "twice.jsonl",
            &[line(3, "inferred", &[], &[]), line(3, "busy", &[], &[])],
        );
        let e = plot(&path, None, None, &dir.path().join("r.html")).expect_err("refused");
        assert!(
            format!("{e:#}").contains("twice.jsonl:2: frame seq 3 appears twice"),
            "{e:#}"
        );

        let path = dir.path().join("empty.jsonl");
        std::fs::write(&path, "\n").expect("writes");
        let e = plot(&path, None, None, &dir.path().join("r.html")).expect_err("refused");
        assert!(format!("{e:#}").contains("empty.jsonl: empty"), "{e:#}");

        let e = plot(&path, None, Some(0.0), &dir.path().join("r.html")).expect_err("refused");
        assert!(format!("{e:#}").contains("--fps 0"), "{e:#}");
    }
}
