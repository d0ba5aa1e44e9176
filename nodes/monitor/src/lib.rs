//! The monitor node: watches the pipeline from the side and never sits in its data path.
//!
//! - keeps pipeline health (`vigil-health`) from the camera frames, the preview's `shown`
//!   reports, infer's `status` and the tracker's results;
//! - writes the audit database (`VIGIL_AUDIT_DB`, `SQLite`; schema in [`audit`]): one row per
//!   process restart with its cause and recovery times, one per stall;
//! - runs the flight recorder ([`flight`]): on every restart, the camera frames from
//!   `VIGIL_FLIGHT_BEFORE_S` before the fault to `VIGIL_FLIGHT_AFTER_S` after it become a
//!   recording under `VIGIL_FLIGHT_DIR`, named in the restart's audit row;
//! - serves `GET /health` (JSON) and `GET /metrics` (Prometheus) on
//!   127.0.0.1:`VIGIL_MONITOR_PORT` (0: no server).

pub mod audit;
pub mod flight;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use dora_node_api::{DoraNode, Event, EventStream};
use eyre::WrapErr;
use vigil_health::{AuditEvent, Health};
use vigil_msg::config::{ConfigError, Lookup};
use vigil_msg::{decode_frame, decode_result, decode_shown, decode_status};

use crate::audit::Audit;
use crate::flight::FlightRecorder;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub audit_db: PathBuf,
    pub port: u16,
    pub flight_dir: PathBuf,
    pub before_ns: u64,
    pub after_ns: u64,
    /// The node whose restarts are reported on `status`.
    pub node: String,
}

impl Config {
    pub fn from_lookup(l: &impl Lookup) -> Result<Self, ConfigError> {
        let seconds = |key: &str, default: f64| -> Result<u64, ConfigError> {
            let v: f64 = l.parse_or(key, default)?;
            if (0.0..=120.0).contains(&v) {
                Ok((v * 1e9) as u64)
            } else {
                Err(ConfigError::new(
                    key,
                    &v.to_string(),
                    "expected 0..=120 seconds",
                ))
            }
        };
        Ok(Self {
            audit_db: l.parse_or("VIGIL_AUDIT_DB", PathBuf::from("state/audit.db"))?,
            port: l.parse_or("VIGIL_MONITOR_PORT", 9100u16)?,
            flight_dir: l.parse_or("VIGIL_FLIGHT_DIR", PathBuf::from("flight"))?,
            before_ns: seconds("VIGIL_FLIGHT_BEFORE_S", 5.0)?,
            after_ns: seconds("VIGIL_FLIGHT_AFTER_S", 3.0)?,
            node: l.parse_or("VIGIL_WATCHED_NODE", "infer".to_owned())?,
        })
    }
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

type Shared = Arc<Mutex<Health>>;

pub fn main() -> eyre::Result<()> {
    let cfg = Config::from_lookup(&vigil_msg::config::env_lookup())?;
    // Subscribe first: frames sent before a node has connected do not reach it.
    let (node, events) = DoraNode::init_from_env().wrap_err("monitor: connecting to dora")?;
    if let Some(dir) = cfg.audit_db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).wrap_err_with(|| format!("creating {}", dir.display()))?;
    }
    let audit = Audit::open(&cfg.audit_db, &cfg.node, unix_ms())
        .wrap_err_with(|| format!("monitor: opening {}", cfg.audit_db.display()))?;
    let shared: Shared = Arc::new(Mutex::new(Health::new(&cfg.node)));
    if cfg.port != 0 {
        let server = tiny_http::Server::http(("127.0.0.1", cfg.port))
            .map_err(|e| eyre::eyre!("monitor: binding 127.0.0.1:{}: {e}", cfg.port))?;
        tracing::info!("monitor at http://127.0.0.1:{}/metrics", cfg.port);
        let http = shared.clone();
        std::thread::spawn(move || serve(&server, &http));
    }
    run(&cfg, audit, &shared, node, events)
}

/// Wall time each recent camera frame arrived, for the pipeline latency.
const ARRIVALS: usize = 256;

pub fn run(
    cfg: &Config,
    mut audit: Audit,
    shared: &Shared,
    _node: DoraNode,
    mut events: EventStream,
) -> eyre::Result<()> {
    let mut flight = FlightRecorder::new(&cfg.flight_dir, cfg.before_ns, cfg.after_ns);
    let mut arrivals: VecDeque<(u64, Instant)> = VecDeque::with_capacity(ARRIVALS);
    let mut bad = 0u64;
    let mut last_session_write = Instant::now();
    while let Some(event) = events.recv() {
        let Event::Input { id, metadata, data } = event else {
            if matches!(event, Event::Stop(_)) {
                break;
            }
            continue;
        };
        let p = &metadata.parameters;
        let mut health = shared.lock().unwrap_or_else(PoisonError::into_inner);
        let recorded = match id.as_str() {
            "frame" => match decode_frame(p, data.as_array().as_ref()) {
                Ok(f) => {
                    health.frame(&f.header);
                    if arrivals.len() == ARRIVALS {
                        arrivals.pop_front();
                    }
                    arrivals.push_back((f.header.index, Instant::now()));
                    for done in flight.frame(f.header, f.jpeg) {
                        log_flight(done);
                    }
                    Ok(Vec::new())
                }
                Err(e) => Err(e),
            },
            "shown" => decode_shown(p).map(|(h, total)| {
                health.shown(&h, total);
                Vec::new()
            }),
            s if s.starts_with("status") => {
                // `status` from `infer`, `status_K` from `infer_K`.
                let node = s
                    .strip_prefix("status_")
                    .map_or_else(|| cfg.node.clone(), |k| format!("{}_{k}", cfg.node));
                decode_status(p).map(|s| health.status(&node, &s))
            }
            "result" => decode_result(p, data.as_array().as_ref()).map(|r| {
                let pipeline_us = arrivals
                    .iter()
                    .find(|(i, _)| *i == r.header.index)
                    .map(|(_, t)| u64::try_from(t.elapsed().as_micros()).unwrap_or(u64::MAX));
                health.result(&r, pipeline_us)
            }),
            _ => continue,
        };
        let events = match recorded {
            Ok(e) => e,
            Err(e) => {
                bad += 1;
                tracing::error!(input = id.as_str(), error = %e, bad, "monitor: dropping malformed message");
                continue;
            }
        };
        for e in &events {
            tracing::warn!(event = ?e, "monitor");
            audit
                .record(e, unix_ms())
                .wrap_err("monitor: writing the audit")?;
            if let AuditEvent::Restart(r) = e {
                let name = format!(
                    "{}-{}-seq{}",
                    r.key,
                    r.cause.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
                    r.fault_seq
                        .map_or_else(|| "unknown".to_owned(), |s| s.to_string())
                );
                match flight.fault(&name, r.fault_ts_ns) {
                    Ok(path) => {
                        let path = std::path::absolute(&path).unwrap_or(path);
                        audit
                            .flight_recording(r.key, &path)
                            .wrap_err("monitor: writing the audit")?;
                    }
                    Err(e) => tracing::error!(error = %e, "monitor: flight recording not started"),
                }
            }
        }
        if last_session_write.elapsed().as_secs() >= 1 {
            audit
                .session(&health, None)
                .wrap_err("monitor: writing the audit")?;
            last_session_write = Instant::now();
        }
    }
    for done in flight.finish() {
        log_flight(done);
    }
    let health = shared.lock().unwrap_or_else(PoisonError::into_inner);
    audit
        .session(&health, Some(unix_ms()))
        .wrap_err("monitor: writing the audit")?;
    tracing::info!(
        frames_in = health.frames_in,
        frames_shown = health.frames_shown,
        restarts = health.restarts(),
        bad,
        "monitor finished"
    );
    Ok(())
}

fn log_flight(done: Result<(PathBuf, u64), vigil_record::RecordError>) {
    match done {
        Ok((path, frames)) => {
            tracing::info!(path = %path.display(), frames, "monitor: flight recording written");
        }
        Err(e) => tracing::error!(error = %e, "monitor: flight recording failed"),
    }
}

fn serve(server: &tiny_http::Server, shared: &Shared) {
    for request in server.incoming_requests() {
        let (body, kind, status) = {
            let h = shared.lock().unwrap_or_else(PoisonError::into_inner);
            match request.url() {
                "/metrics" => (h.prometheus(), "text/plain; version=0.0.4", 200),
                "/health" => (
                    h.health_json(),
                    "application/json",
                    if h.stalled() { 503 } else { 200 },
                ),
                _ => ("not found".to_owned(), "text/plain", 404),
            }
        };
        let header = tiny_http::Header::from_bytes("Content-Type", kind)
            .unwrap_or_else(|()| unreachable!("static header"));
        let response = tiny_http::Response::from_string(body)
            .with_status_code(status)
            .with_header(header);
        if let Err(e) = request.respond(response) {
            tracing::debug!(error = %e, "monitor: client went away");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_bad_values() {
        let c = Config::from_lookup(&|_: &str| None).expect("defaults");
        assert_eq!((c.port, c.before_ns), (9100, 5_000_000_000));
        let bad = |k: &str| (k == "VIGIL_FLIGHT_AFTER_S").then(|| "-1".to_owned());
        let err = Config::from_lookup(&bad).expect_err("bad").to_string();
        assert!(err.contains("VIGIL_FLIGHT_AFTER_S"), "{err}");
    }
}
