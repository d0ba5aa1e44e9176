//! The audit database: a real `SQLite` file the kiosk keeps across runs.
//!
//! ```sql
//! sessions(id, started_unix_ms, ended_unix_ms, frames_in, frames_shown, frames_inferred,
//!          frames_missing, frames_rejected, preview_gaps)
//! process_restarts(id, session_id, node, at_unix_ms, cause, exit_code, signal, fault_seq,
//!          fault_ts_ns, restart_ms, first_detection_ms, frames_without_detections,
//!          flight_recording)
//! pipeline_stall_events(id, session_id, node, at_unix_ms, started_ts_ns, first_seq,
//!          ended_ts_ns, duration_ms, frames_without_detections)
//! crash_loops(id, session_id, node, at_unix_ms, at_ts_ns, deaths, window_s, pause_ms, cause)
//! camera_outages(id, session_id, at_unix_ms, why, resumed_unix_ms, outage_ms, attempts)
//! ```
//! Times `*_ts_ns` are frame timestamps; `*_unix_ms` wall clock; durations in frame time.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, params};
use vigil_health::{AuditEvent, Health, Restart};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    started_unix_ms INTEGER NOT NULL,
    ended_unix_ms INTEGER,
    frames_in INTEGER NOT NULL DEFAULT 0,
    frames_shown INTEGER NOT NULL DEFAULT 0,
    frames_inferred INTEGER NOT NULL DEFAULT 0,
    frames_missing INTEGER NOT NULL DEFAULT 0,
    frames_rejected INTEGER NOT NULL DEFAULT 0,
    preview_gaps INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS process_restarts (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    node TEXT NOT NULL,
    at_unix_ms INTEGER NOT NULL,
    cause TEXT NOT NULL,
    exit_code INTEGER,
    signal INTEGER,
    fault_seq INTEGER,
    fault_ts_ns INTEGER NOT NULL,
    restart_ms REAL NOT NULL,
    first_detection_ms REAL,
    frames_without_detections INTEGER,
    flight_recording TEXT
);
CREATE TABLE IF NOT EXISTS pipeline_stall_events (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    node TEXT NOT NULL,
    at_unix_ms INTEGER NOT NULL,
    started_ts_ns INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    ended_ts_ns INTEGER,
    duration_ms REAL,
    frames_without_detections INTEGER
);
CREATE TABLE IF NOT EXISTS crash_loops (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    node TEXT NOT NULL,
    at_unix_ms INTEGER NOT NULL,
    at_ts_ns INTEGER NOT NULL,
    deaths INTEGER NOT NULL,
    window_s INTEGER NOT NULL,
    pause_ms INTEGER NOT NULL,
    cause TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS camera_outages (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    at_unix_ms INTEGER NOT NULL,
    why TEXT NOT NULL,
    resumed_unix_ms INTEGER,
    outage_ms INTEGER,
    attempts INTEGER
);
";

/// One session's writer.
#[derive(Debug)]
pub struct Audit {
    db: Connection,
    session: i64,
    node: String,
    /// Health event keys → row ids.
    restarts: BTreeMap<u64, i64>,
    stalls: BTreeMap<u64, (i64, u64)>,
}

impl Audit {
    pub fn open(path: &Path, node: &str, now_unix_ms: i64) -> rusqlite::Result<Self> {
        let db = Connection::open(path)?;
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "NORMAL")?;
        db.execute_batch(SCHEMA)?;
        db.execute(
            "INSERT INTO sessions (started_unix_ms) VALUES (?1)",
            params![now_unix_ms],
        )?;
        Ok(Self {
            session: db.last_insert_rowid(),
            db,
            node: node.to_owned(),
            restarts: BTreeMap::new(),
            stalls: BTreeMap::new(),
        })
    }

    pub fn record(&mut self, e: &AuditEvent, now_unix_ms: i64) -> rusqlite::Result<()> {
        match e {
            AuditEvent::Restart(r) => self.restart(r, now_unix_ms),
            AuditEvent::Recovered {
                key,
                first_detection_ms,
                frames_without_detections,
            } => {
                if let Some(id) = self.restarts.get(key) {
                    self.db.execute(
                        "UPDATE process_restarts SET first_detection_ms = ?1, frames_without_detections = ?2 WHERE id = ?3",
                        params![first_detection_ms, *frames_without_detections as i64, id],
                    )?;
                }
                Ok(())
            }
            AuditEvent::StallStarted {
                key,
                started_ts_ns,
                first_seq,
            } => {
                self.db.execute(
                    "INSERT INTO pipeline_stall_events (session_id, node, at_unix_ms, started_ts_ns, first_seq) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![self.session, self.node, now_unix_ms, *started_ts_ns as i64, *first_seq as i64],
                )?;
                self.stalls
                    .insert(*key, (self.db.last_insert_rowid(), *started_ts_ns));
                Ok(())
            }
            AuditEvent::StallEnded {
                key,
                ended_ts_ns,
                frames_without_detections,
            } => {
                if let Some((id, started)) = self.stalls.remove(key) {
                    self.db.execute(
                        "UPDATE pipeline_stall_events SET ended_ts_ns = ?1, duration_ms = ?2, frames_without_detections = ?3 WHERE id = ?4",
                        params![
                            *ended_ts_ns as i64,
                            ended_ts_ns.saturating_sub(started) as f64 / 1e6,
                            *frames_without_detections as i64,
                            id
                        ],
                    )?;
                }
                Ok(())
            }
            AuditEvent::CrashLoop {
                node,
                deaths,
                window_s,
                pause_ms,
                cause,
                at_ts_ns,
            } => {
                self.db.execute(
                    "INSERT INTO crash_loops (session_id, node, at_unix_ms, at_ts_ns, deaths, window_s, pause_ms, cause) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        self.session,
                        node,
                        now_unix_ms,
                        *at_ts_ns as i64,
                        deaths,
                        window_s,
                        i64::try_from(*pause_ms).unwrap_or(i64::MAX),
                        cause
                    ],
                )?;
                Ok(())
            }
            AuditEvent::CameraDown { why } => {
                self.db.execute(
                    "INSERT INTO camera_outages (session_id, at_unix_ms, why) VALUES (?1, ?2, ?3)",
                    params![self.session, now_unix_ms, why],
                )?;
                Ok(())
            }
            AuditEvent::CameraUp {
                outage_ms,
                attempts,
            } => {
                self.db.execute(
                    "UPDATE camera_outages SET resumed_unix_ms = ?1, outage_ms = ?2, attempts = ?3 WHERE id = (SELECT MAX(id) FROM camera_outages WHERE session_id = ?4)",
                    params![
                        now_unix_ms,
                        i64::try_from(*outage_ms).unwrap_or(i64::MAX),
                        attempts,
                        self.session
                    ],
                )?;
                Ok(())
            }
        }
    }

    fn restart(&mut self, r: &Restart, now_unix_ms: i64) -> rusqlite::Result<()> {
        self.db.execute(
            "INSERT INTO process_restarts (session_id, node, at_unix_ms, cause, exit_code, signal, fault_seq, fault_ts_ns, restart_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                self.session,
                r.node,
                now_unix_ms,
                r.cause,
                r.exit_code,
                r.signal,
                r.fault_seq.map(|s| s as i64),
                r.fault_ts_ns as i64,
                r.restart_ms
            ],
        )?;
        self.restarts.insert(r.key, self.db.last_insert_rowid());
        Ok(())
    }

    /// Notes the flight recording of restart `key`.
    pub fn flight_recording(&mut self, key: u64, path: &Path) -> rusqlite::Result<()> {
        if let Some(id) = self.restarts.get(&key) {
            self.db.execute(
                "UPDATE process_restarts SET flight_recording = ?1 WHERE id = ?2",
                params![path.display().to_string(), id],
            )?;
        }
        Ok(())
    }

    /// Writes the session's counters (called periodically and at the end).
    pub fn session(&mut self, h: &Health, ended_unix_ms: Option<i64>) -> rusqlite::Result<()> {
        self.db.execute(
            "UPDATE sessions SET ended_unix_ms = ?1, frames_in = ?2, frames_shown = ?3, frames_inferred = ?4, frames_missing = ?5, frames_rejected = ?6, preview_gaps = ?7 WHERE id = ?8",
            params![
                ended_unix_ms,
                h.frames_in as i64,
                h.frames_shown as i64,
                h.inferred() as i64,
                h.missing() as i64,
                h.rejected as i64,
                h.preview_gaps as i64,
                self.session
            ],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_and_stall_rows_are_written_and_updated() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("audit.db");
        let mut a = Audit::open(&path, "infer", 1).expect("opens");
        let events = [
            AuditEvent::StallStarted {
                key: 1,
                started_ts_ns: 10_000_000,
                first_seq: 3,
            },
            AuditEvent::Restart(Restart {
                key: 2,
                node: "infer".into(),
                cause: "SIGSEGV".into(),
                exit_code: None,
                signal: Some(11),
                fault_seq: Some(3),
                fault_ts_ns: 10_000_000,
                restart_ms: 300.0,
            }),
            AuditEvent::StallEnded {
                key: 1,
                ended_ts_ns: 810_000_000,
                frames_without_detections: 24,
            },
            AuditEvent::Recovered {
                key: 2,
                first_detection_ms: 800.0,
                frames_without_detections: 24,
            },
        ];
        for e in &events {
            a.record(e, 2).expect("records");
        }
        a.flight_recording(2, Path::new("flight/x.mcap"))
            .expect("notes");
        drop(a);
        // A second session appends to the same file.
        Audit::open(&path, "infer", 3).expect("reopens");
        let db = Connection::open(&path).expect("opens");
        let row: (String, Option<i64>, f64, f64, String) = db
            .query_row(
                "SELECT cause, signal, restart_ms, first_detection_ms, flight_recording FROM process_restarts",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .expect("one row");
        assert_eq!(
            row,
            (
                "SIGSEGV".into(),
                Some(11),
                300.0,
                800.0,
                "flight/x.mcap".into()
            )
        );
        let stall: (f64, i64) = db
            .query_row(
                "SELECT duration_ms, frames_without_detections FROM pipeline_stall_events",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .expect("one row");
        assert_eq!(stall, (800.0, 24));
        let sessions: i64 = db
            .query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get(0))
            .expect("count");
        assert_eq!(sessions, 2);
    }
}
