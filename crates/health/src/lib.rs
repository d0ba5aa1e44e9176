//! Pipeline health with no I/O. Fed what the monitor node sees — camera frames, frames the
//! preview showed, the infer node's status, the tracker's results — it keeps the counters and
//! latency histograms behind `/metrics` and turns them into audit events: process restarts
//! (with cause, time to restart and time to the first detection after the fault) and stalls
//! (runs of frames that went out without detections).
//!
//! Its clock is frame time: the timestamp of the newest camera frame seen. Recovery times are
//! measured on that clock, so they mean the same live and in a realtime replay.

mod histogram;

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

pub use histogram::Histogram;
use vigil_frame::{FrameHeader, FrameStatus, ResultMsg, Role, StatusMsg};

/// A process restart, as first known (when the new process reports in).
#[derive(Debug, Clone, PartialEq)]
pub struct Restart {
    /// Identifies the restart in later events.
    pub key: u64,
    pub node: String,
    pub cause: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// The frame the process died on, and its timestamp.
    pub fault_seq: Option<u64>,
    pub fault_ts_ns: u64,
    /// Frame time from the fault until the new process reported in.
    pub restart_ms: f64,
}

/// Something the audit must record.
#[derive(Debug, Clone, PartialEq)]
pub enum AuditEvent {
    Restart(Restart),
    /// Detections resumed after restart `key`.
    Recovered {
        key: u64,
        first_detection_ms: f64,
        frames_without_detections: u64,
    },
    StallStarted {
        key: u64,
        started_ts_ns: u64,
        first_seq: u64,
    },
    StallEnded {
        key: u64,
        ended_ts_ns: u64,
        frames_without_detections: u64,
    },
    /// A process tripped the crash-loop breaker: it holds back for `pause_ms`.
    CrashLoop {
        node: String,
        deaths: u32,
        window_s: u32,
        pause_ms: u64,
        cause: String,
        at_ts_ns: u64,
    },
    /// The camera stopped delivering and is being reopened.
    CameraDown {
        why: String,
    },
    /// … and delivers again.
    CameraUp {
        outage_ms: u64,
        attempts: u32,
    },
}

#[derive(Debug, Clone)]
struct Open {
    key: u64,
    fault_seq: u64,
    fault_ts_ns: u64,
    frames_without: u64,
}

#[derive(Debug, Clone)]
struct Stall {
    key: u64,
    frames: u64,
}

/// See the crate docs.
#[derive(Debug, Clone)]
pub struct Health {
    pub frames_in: u64,
    pub frames_shown: u64,
    pub results: u64,
    /// Results by frame status, in [`FrameStatus::ALL`] order.
    pub by_status: [u64; FrameStatus::ALL.len()],
    pub rejected: u64,
    /// Frames the camera sent that the preview never showed: gaps in what it reported.
    pub preview_gaps: u64,
    /// Frames the camera had sent that the preview had not shown, at its first report.
    unshown_before_first: Option<u64>,
    clock_ns: u64,
    newest_index: Option<u64>,
    newest_result: Option<u64>,
    recent: VecDeque<(u64, u64)>,
    /// Seqs of recent frames that went out without detections.
    recent_missing: VecDeque<u64>,
    /// Processes started, per node.
    starts: BTreeMap<String, u64>,
    next_key: u64,
    open: Vec<Open>,
    stall: Option<Stall>,
    /// Restarts by (node, cause).
    restarts: BTreeMap<(String, String), u64>,
    stalls: u64,
    latency: BTreeMap<&'static str, Histogram>,
    /// Seqs of recent inferred frames, with the frame time their result came at.
    recent_inferred: VecDeque<(u64, u64)>,
    /// Infer processes by index, as the preprocess node deals to them.
    roles: Vec<Role>,
    /// Processes holding back after a crash loop, and why.
    paused: BTreeMap<String, String>,
    crash_loops: u64,
    /// Why the camera is down, while it is.
    camera_down: Option<String>,
    camera_outages: u64,
}

/// Camera frames remembered for looking up a fault frame's timestamp.
const RECENT: usize = 1024;

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    /// Health of a pipeline; restarts are told apart by the node that reports them.
    #[must_use]
    pub fn new() -> Self {
        Self {
            frames_in: 0,
            frames_shown: 0,
            results: 0,
            by_status: [0; FrameStatus::ALL.len()],
            rejected: 0,
            preview_gaps: 0,
            unshown_before_first: None,
            clock_ns: 0,
            newest_index: None,
            newest_result: None,
            recent: VecDeque::with_capacity(RECENT),
            recent_missing: VecDeque::new(),
            starts: BTreeMap::new(),
            next_key: 1,
            open: Vec::new(),
            stall: None,
            restarts: BTreeMap::new(),
            stalls: 0,
            latency: BTreeMap::new(),
            recent_inferred: VecDeque::new(),
            roles: Vec::new(),
            paused: BTreeMap::new(),
            crash_loops: 0,
            camera_down: None,
            camera_outages: 0,
        }
    }

    fn key(&mut self) -> u64 {
        self.next_key += 1;
        self.next_key - 1
    }

    /// The newest camera frame time seen.
    #[must_use]
    pub fn clock_ns(&self) -> u64 {
        self.clock_ns
    }

    /// True while frames go out without detections.
    #[must_use]
    pub fn stalled(&self) -> bool {
        self.stall.is_some()
    }

    /// Why the pipeline is degraded (frames without detections, a process held back by the
    /// crash-loop breaker), or `None` while it is well.
    #[must_use]
    pub fn degraded(&self) -> Option<String> {
        let mut why: Vec<String> = self
            .camera_down
            .iter()
            .map(|w| format!("camera: {w}; reopening"))
            .chain(self.paused.values().cloned())
            .collect();
        if self.stalled() {
            why.push("frames are going out without detections".to_owned());
        }
        (!why.is_empty()).then(|| why.join("; "))
    }

    /// The infer processes' roles by index (`infer_K`, `infer` alone), from the preprocess
    /// node.
    pub fn roles(&mut self, roles: Vec<Role>) {
        self.roles = roles;
    }

    #[must_use]
    pub fn restarts(&self) -> u64 {
        self.restarts.values().sum()
    }

    pub fn frame(&mut self, h: &FrameHeader) {
        // A frame sent again (a replay resends what was not acknowledged) is not a new one.
        if self.newest_index.is_some_and(|n| h.index <= n) {
            return;
        }
        self.newest_index = Some(h.index);
        self.frames_in += 1;
        self.clock_ns = self.clock_ns.max(h.timestamp_ns);
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back((h.seq, h.timestamp_ns));
    }

    /// The preview reported showing frame `h`, `total` frames so far.
    pub fn shown(&mut self, h: &FrameHeader, total: u64) {
        self.frames_shown = self.frames_shown.max(total);
        // Frames up to this one that the preview did not show, by its own count: a lost
        // `shown` message is not a lost frame. Frames before the preview's first report
        // (sent before it connected) are not its gaps.
        let unshown = (h.index + 1).saturating_sub(total);
        let before = *self.unshown_before_first.get_or_insert(unshown);
        self.preview_gaps = self.preview_gaps.max(unshown.saturating_sub(before));
    }

    fn ts_of(&self, seq: u64) -> Option<u64> {
        self.recent
            .iter()
            .rev()
            .find(|(s, _)| *s == seq)
            .map(|(_, t)| *t)
    }

    /// A status message from `node` (one of the detector's processes).
    pub fn status(&mut self, node: &str, s: &StatusMsg) -> Vec<AuditEvent> {
        match s {
            StatusMsg::Rejected { total, .. } => {
                self.rejected = self.rejected.max(*total);
                Vec::new()
            }
            StatusMsg::Paused {
                deaths,
                window_s,
                pause_ms,
                cause,
            } => {
                self.crash_loops += 1;
                self.paused.insert(
                    node.to_owned(),
                    format!(
                        "{node}: {deaths} deaths within {window_s} s (the last: {cause}); restarts held back for {:.0} s",
                        *pause_ms as f64 / 1000.0
                    ),
                );
                vec![AuditEvent::CrashLoop {
                    node: node.to_owned(),
                    deaths: *deaths,
                    window_s: *window_s,
                    pause_ms: *pause_ms,
                    cause: cause.clone(),
                    at_ts_ns: self.clock_ns,
                }]
            }
            StatusMsg::CameraDown { why } => {
                self.camera_outages += 1;
                self.camera_down = Some(why.clone());
                vec![AuditEvent::CameraDown { why: why.clone() }]
            }
            StatusMsg::CameraUp {
                outage_ms,
                attempts,
            } => {
                self.camera_down = None;
                vec![AuditEvent::CameraUp {
                    outage_ms: *outage_ms,
                    attempts: *attempts,
                }]
            }
            StatusMsg::Started { previous, .. } => {
                self.paused.remove(node);
                let starts = self.starts.entry(node.to_owned()).or_default();
                *starts += 1;
                let first = *starts == 1;
                let (cause, exit_code, signal, fault_seq) = match previous {
                    Some(p) => (p.cause.clone(), p.exit_code, p.signal, Some(p.seq)),
                    // The first start, or a predecessor that left no word.
                    None if first => return Vec::new(),
                    None => ("died without last words".to_owned(), None, None, None),
                };
                let fault_ts_ns = fault_seq
                    .and_then(|s| self.ts_of(s))
                    .unwrap_or(self.clock_ns);
                let key = self.key();
                *self
                    .restarts
                    .entry((node.to_owned(), cause.clone()))
                    .or_default() += 1;
                // Frames already out without detections since the fault count too.
                let since = fault_seq.unwrap_or_else(|| {
                    self.recent
                        .iter()
                        .find(|(_, t)| *t >= fault_ts_ns)
                        .map_or(0, |(s, _)| *s)
                });
                let restart = AuditEvent::Restart(Restart {
                    key,
                    node: node.to_owned(),
                    cause,
                    exit_code,
                    signal,
                    fault_seq,
                    fault_ts_ns,
                    restart_ms: ms(self.clock_ns.saturating_sub(fault_ts_ns)),
                });
                // With a standby, detections may have resumed long before the dead process
                // came back to say how it died.
                let resumed = self
                    .recent_inferred
                    .iter()
                    .find(|(s, _)| *s > since && fault_seq.is_none_or(|f| *s > f))
                    .copied();
                let missing_until = |end: u64| {
                    self.recent_missing
                        .iter()
                        .filter(|&&s| s >= since && s < end)
                        .count() as u64
                };
                if let Some((seq, at)) = resumed {
                    return vec![
                        restart,
                        AuditEvent::Recovered {
                            key,
                            first_detection_ms: ms(at.saturating_sub(fault_ts_ns)),
                            frames_without_detections: missing_until(seq),
                        },
                    ];
                }
                self.open.push(Open {
                    key,
                    fault_seq: fault_seq.unwrap_or(0),
                    fault_ts_ns,
                    frames_without: missing_until(u64::MAX),
                });
                vec![restart]
            }
        }
    }

    /// A tracker result; `pipeline_us` is the wall time from the camera frame to it, where
    /// the caller could measure it.
    pub fn result(&mut self, r: &ResultMsg, pipeline_us: Option<u64>) -> Vec<AuditEvent> {
        // A result sent again (for a frame a replay resent) is not a new one.
        if self.newest_result.is_some_and(|n| r.header.index <= n) {
            return Vec::new();
        }
        self.newest_result = Some(r.header.index);
        self.results += 1;
        for (stage, us) in [
            ("preprocess", u64::from(r.latency.preprocess_us)),
            ("infer", u64::from(r.latency.infer_us)),
            ("detect", u64::from(r.latency.detect_us)),
            ("pipeline", pipeline_us.unwrap_or(0)),
        ] {
            if us > 0 {
                self.latency
                    .entry(stage)
                    .or_insert_with(Histogram::latency)
                    .observe(us as f64 / 1e6);
            }
        }
        self.by_status[r.status as usize] += 1;
        let mut events = Vec::new();
        if r.status == FrameStatus::Missing {
            if self.recent_missing.len() == RECENT {
                self.recent_missing.pop_front();
            }
            self.recent_missing.push_back(r.header.seq);
            for o in &mut self.open {
                o.frames_without += 1;
            }
            if let Some(s) = &mut self.stall {
                s.frames += 1;
            } else {
                let key = self.key();
                self.stalls += 1;
                self.stall = Some(Stall { key, frames: 1 });
                events.push(AuditEvent::StallStarted {
                    key,
                    started_ts_ns: r.header.timestamp_ns,
                    first_seq: r.header.seq,
                });
            }
        }
        if r.inferred() {
            if self.recent_inferred.len() == RECENT {
                self.recent_inferred.pop_front();
            }
            self.recent_inferred
                .push_back((r.header.seq, self.clock_ns));
            if let Some(s) = self.stall.take() {
                events.push(AuditEvent::StallEnded {
                    key: s.key,
                    ended_ts_ns: r.header.timestamp_ns,
                    frames_without_detections: s.frames,
                });
            }
            let clock = self.clock_ns;
            self.open.retain(|o| {
                if r.header.seq <= o.fault_seq {
                    return true;
                }
                events.push(AuditEvent::Recovered {
                    key: o.key,
                    first_detection_ms: ms(clock.saturating_sub(o.fault_ts_ns)),
                    frames_without_detections: o.frames_without,
                });
                false
            });
        }
        events
    }

    /// Frames the detector ran on.
    #[must_use]
    pub fn inferred(&self) -> u64 {
        self.by_status[FrameStatus::Inferred as usize]
    }

    /// Frames that went out without detections because the detector was down.
    #[must_use]
    pub fn missing(&self) -> u64 {
        self.by_status[FrameStatus::Missing as usize]
    }

    /// `/health`: one JSON object.
    #[must_use]
    pub fn health_json(&self) -> String {
        let processes: Vec<String> = self
            .roles
            .iter()
            .enumerate()
            .map(|(k, r)| {
                let node = if self.roles.len() == 1 {
                    "infer".to_owned()
                } else {
                    format!("infer_{k}")
                };
                let role = if self.paused.contains_key(&node) {
                    "paused"
                } else {
                    r.as_str()
                };
                format!("{{\"node\":\"{node}\",\"role\":\"{role}\"}}")
            })
            .collect();
        let standby_ready = self.roles.contains(&Role::Standby);
        let degraded = self.degraded();
        format!(
            "{{\"status\":\"{}\",\"reason\":{},\"frames_in\":{},\"frames_shown\":{},\"frames_inferred\":{},\"frames_missing\":{},\"restarts\":{},\"stalls\":{},\"crash_loops\":{},\"recovering\":{},\"infer\":[{}],\"standby_ready\":{standby_ready}}}",
            if degraded.is_some() { "degraded" } else { "ok" },
            degraded.map_or_else(|| "null".to_owned(), |r| format!("\"{}\"", escape(&r))),
            self.frames_in,
            self.frames_shown,
            self.inferred(),
            self.missing(),
            self.restarts(),
            self.stalls,
            self.crash_loops,
            self.open.len(),
            processes.join(","),
        )
    }

    /// `/metrics`: Prometheus text exposition format 0.0.4.
    #[must_use]
    pub fn prometheus(&self) -> String {
        let mut o = String::new();
        let mut counter = |name: &str, help: &str, samples: &[(String, u64)]| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, v) in samples {
                let _ = writeln!(o, "{name}{labels} {v}");
            }
        };
        counter(
            "vigil_frames_in_total",
            "Camera frames seen.",
            &[(String::new(), self.frames_in)],
        );
        counter(
            "vigil_frames_shown_total",
            "Frames the preview rendered.",
            &[(String::new(), self.frames_shown)],
        );
        counter(
            "vigil_frames_dropped_total",
            "Frames lost on the way, by where.",
            &[
                ("{stage=\"preview\"}".to_owned(), self.preview_gaps),
                ("{stage=\"detector\"}".to_owned(), self.missing()),
            ],
        );
        counter(
            "vigil_frames_inferred_total",
            "Frames the detector ran on.",
            &[(String::new(), self.inferred())],
        );
        let by_status: Vec<(String, u64)> = FrameStatus::ALL
            .iter()
            .zip(self.by_status)
            .map(|(s, n)| (format!("{{status=\"{}\"}}", s.as_str()), n))
            .collect();
        counter(
            "vigil_frames_total",
            "Frames out of the tracker, by what the detector did with them.",
            &by_status,
        );
        counter(
            "vigil_frames_rejected_total",
            "Frames whose tensor or outputs held NaN/inf.",
            &[(String::new(), self.rejected)],
        );
        let restarts: Vec<(String, u64)> = self
            .restarts
            .iter()
            .map(|((node, cause), n)| {
                (
                    format!("{{node=\"{}\",cause=\"{}\"}}", escape(node), escape(cause)),
                    *n,
                )
            })
            .collect();
        counter(
            "vigil_restarts_total",
            "Process restarts, by node and cause.",
            &restarts,
        );
        counter(
            "vigil_stalls_total",
            "Runs of frames that went out without detections.",
            &[(String::new(), self.stalls)],
        );
        counter(
            "vigil_camera_outages_total",
            "Times the camera stopped delivering and was reopened.",
            &[(String::new(), self.camera_outages)],
        );
        counter(
            "vigil_crash_loops_total",
            "Times an infer process held back its restart after dying too often.",
            &[(String::new(), self.crash_loops)],
        );
        let _ = writeln!(
            o,
            "# HELP vigil_standby_ready Infer processes standing by, loaded and warm.\n# TYPE vigil_standby_ready gauge\nvigil_standby_ready {}",
            self.roles.iter().filter(|r| **r == Role::Standby).count()
        );
        let name = "vigil_stage_latency_seconds";
        let _ = writeln!(
            o,
            "# HELP {name} Time spent per stage (detect: from capture to the frame's detections at the tracker; pipeline: from capture to the result at the monitor).\n# TYPE {name} histogram"
        );
        for (stage, h) in &self.latency {
            h.write(&mut o, name, &format!("stage=\"{stage}\""));
        }
        o
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_frame::{FaultReport, Latency};

    fn h(seq: u64) -> FrameHeader {
        FrameHeader {
            seq,
            index: seq,
            timestamp_ns: seq * 33_333_333,
            width: 640,
            height: 480,
        }
    }

    fn result(seq: u64, inferred: bool, missing: bool) -> ResultMsg {
        ResultMsg {
            header: h(seq),
            status: match (inferred, missing) {
                (true, _) => FrameStatus::Inferred,
                (false, true) => FrameStatus::Missing,
                (false, false) => FrameStatus::Interval,
            },
            detections: Vec::new(),
            tracks: Vec::new(),
            latency: if inferred {
                Latency {
                    preprocess_us: 600,
                    infer_us: 25_000,
                    detect_us: 31_000,
                    ..Latency::default()
                }
            } else {
                Latency::default()
            },
        }
    }

    #[test]
    fn a_fault_gives_one_restart_one_stall_and_a_recovery_time_in_frame_time() {
        let mut m = Health::new();
        let started = |previous| StatusMsg::Started { pid: 1, previous };
        assert!(
            m.status("infer", &started(None)).is_empty(),
            "first start is no restart"
        );
        assert!(
            m.status("infer_1", &started(None)).is_empty(),
            "nor is a second worker's"
        );
        for s in 0..=10 {
            m.frame(&h(s));
            m.result(&result(s, true, false), Some(40_000));
        }
        // The node dies on frame 11; frames 11..=20 go out without detections.
        for s in 11..=20 {
            m.frame(&h(s));
            let ev = m.result(&result(s, false, true), None);
            assert_eq!(
                matches!(ev.first(), Some(AuditEvent::StallStarted { .. })),
                s == 11
            );
        }
        let ev = m.status(
            "infer",
            &started(Some(FaultReport {
                cause: "SIGSEGV".into(),
                seq: 11,
                exit_code: None,
                signal: Some(11),
            })),
        );
        let AuditEvent::Restart(r) = &ev[0] else {
            panic!("{ev:?}")
        };
        assert_eq!(
            (r.cause.as_str(), r.fault_ts_ns),
            ("SIGSEGV", 11 * 33_333_333)
        );
        assert!(
            (r.restart_ms - 9.0 * 33.333_333).abs() < 1e-3,
            "{}",
            r.restart_ms
        );
        for s in 21..=23 {
            m.frame(&h(s));
        }
        let ev = m.result(&result(21, true, false), None);
        assert!(matches!(
            ev[0],
            AuditEvent::StallEnded {
                frames_without_detections: 10,
                ..
            }
        ));
        let AuditEvent::Recovered {
            first_detection_ms,
            frames_without_detections,
            ..
        } = ev[1]
        else {
            panic!("{ev:?}")
        };
        assert_eq!(frames_without_detections, 10);
        assert!((first_detection_ms - 12.0 * 33.333_333).abs() < 1e-3);
        let text = m.prometheus();
        assert!(
            text.contains("vigil_restarts_total{node=\"infer\",cause=\"SIGSEGV\"} 1"),
            "{text}"
        );
        assert!(text.contains("vigil_frames_in_total 24"), "{text}");
        m.frame(&h(20));
        assert_eq!(m.frames_in, 24, "a frame sent again is not counted twice");
        let results = m.results;
        m.result(&result(20, false, true), None);
        assert_eq!(m.results, results, "nor its result");
        // A worker's restart is reported under the worker's own name.
        m.status(
            "infer_1",
            &started(Some(FaultReport {
                cause: "SIGSEGV".into(),
                seq: 22,
                exit_code: None,
                signal: Some(11),
            })),
        );
        let text = m.prometheus();
        assert!(
            text.contains("vigil_restarts_total{node=\"infer_1\",cause=\"SIGSEGV\"} 1")
                && text.contains("vigil_restarts_total{node=\"infer\",cause=\"SIGSEGV\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("vigil_stage_latency_seconds_count{stage=\"infer\"} 12")
                && text.contains("vigil_stage_latency_seconds_count{stage=\"detect\"} 12"),
            "{text}"
        );
        assert!(
            text.contains("vigil_frames_total{status=\"inferred\"} 12")
                && text.contains("vigil_frames_total{status=\"missing\"} 10")
                && text.contains("vigil_frames_total{status=\"busy\"} 0"),
            "{text}"
        );
        assert!(m.health_json().contains("\"status\":\"ok\""));
    }

    #[test]
    fn preview_gaps_are_counted_and_lost_shown_messages_lose_no_count() {
        let mut m = Health::new();
        m.shown(&h(0), 1);
        m.shown(&h(1), 2);
        m.shown(&h(4), 5); // the messages for 2 and 3 were lost on the way, not the frames
        assert_eq!((m.frames_shown, m.preview_gaps), (5, 0));
        m.shown(&h(7), 6); // 5 and 6 were not shown
        assert_eq!((m.frames_shown, m.preview_gaps), (6, 2));
        m.shown(&h(6), 6); // a late report changes nothing
        assert_eq!(m.preview_gaps, 2);
        let mut late = Health::new();
        late.shown(&h(10), 1); // connected at frame 10
        late.shown(&h(11), 2);
        assert_eq!(late.preview_gaps, 0);
    }

    #[test]
    fn with_a_standby_recovery_counts_from_frames_already_answered() {
        let mut m = Health::new();
        let started = |previous| StatusMsg::Started { pid: 1, previous };
        m.status("infer_0", &started(None));
        m.status("infer_1", &started(None));
        m.roles(vec![Role::Active, Role::Standby]);
        assert!(m.health_json().contains(
            "\"infer\":[{\"node\":\"infer_0\",\"role\":\"active\"},{\"node\":\"infer_1\",\"role\":\"standby\"}],\"standby_ready\":true"
        ));
        for s in 0..10 {
            m.frame(&h(s));
            m.result(&result(s, true, false), None);
        }
        // infer_0 dies on frame 10; the standby answers 11 onwards, long before the dead
        // process is back to say how it died.
        m.roles(vec![Role::Down, Role::Active]);
        m.frame(&h(10));
        m.result(&result(10, false, true), None);
        for s in 11..40 {
            m.frame(&h(s));
            m.result(&result(s, true, false), None);
        }
        assert!(m.health_json().contains("\"standby_ready\":false"));
        let ev = m.status(
            "infer_0",
            &started(Some(FaultReport {
                cause: "SIGSEGV".into(),
                seq: 10,
                exit_code: None,
                signal: Some(11),
            })),
        );
        assert!(matches!(ev[0], AuditEvent::Restart(_)), "{ev:?}");
        let AuditEvent::Recovered {
            first_detection_ms,
            frames_without_detections,
            ..
        } = ev[1]
        else {
            panic!("{ev:?}")
        };
        assert_eq!(frames_without_detections, 1);
        assert!(
            (first_detection_ms - 33.333_333).abs() < 1e-3,
            "{first_detection_ms}"
        );
    }

    #[test]
    fn a_crash_loop_and_a_camera_outage_degrade_health_with_the_reason() {
        let mut m = Health::new();
        m.frame(&h(0));
        assert!(m.degraded().is_none());
        let ev = m.status(
            "infer_1",
            &StatusMsg::Paused {
                deaths: 5,
                window_s: 60,
                pause_ms: 10_000,
                cause: "SIGSEGV".into(),
            },
        );
        assert!(matches!(ev[0], AuditEvent::CrashLoop { deaths: 5, .. }));
        let why = m.degraded().expect("degraded");
        assert!(
            why.contains(
                "infer_1: 5 deaths within 60 s (the last: SIGSEGV); restarts held back for 10 s"
            ),
            "{why}"
        );
        m.roles(vec![Role::Active, Role::Down]);
        assert!(
            m.health_json().contains("\"role\":\"paused\""),
            "{}",
            m.health_json()
        );
        m.status(
            "infer_1",
            &StatusMsg::Started {
                pid: 9,
                previous: None,
            },
        );
        assert!(m.degraded().is_none(), "back: well again");
        let ev = m.status(
            "camera",
            &StatusMsg::CameraDown {
                why: "the camera is gone (No such device)".into(),
            },
        );
        assert_eq!(ev.len(), 1);
        assert!(
            m.degraded()
                .expect("down")
                .starts_with("camera: the camera is gone")
        );
        assert!(m.prometheus().contains("vigil_camera_outages_total 1"));
        m.status(
            "camera",
            &StatusMsg::CameraUp {
                outage_ms: 1200,
                attempts: 3,
            },
        );
        assert!(m.degraded().is_none());
    }
}
