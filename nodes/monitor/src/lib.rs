//! The monitor node: watches the pipeline from the side and never sits in its data path.
//!
//! - keeps pipeline health (`vigil-health`) from the camera frames, the preview's `shown`
//!   reports, infer's `status` and the tracker's results;
//! - writes the audit database (`monitor.audit_db`, `SQLite`; schema in [`audit`]): one row per
//!   process restart with its cause and recovery times, one per stall;
//! - runs the flight recorder ([`flight`]): on every restart, the camera frames from
//!   `monitor.flight_before_s` before the fault to `monitor.flight_after_s` after it become a
//!   recording under `monitor.flight_dir`, named in the restart's audit row;
//! - serves `GET /health` (JSON) and `GET /metrics` (Prometheus) on
//!   127.0.0.1:`monitor.port` (0: no server).

pub mod audit;
pub mod flight;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use dora_node_api::{DoraNode, Event, EventStream};
use eyre::WrapErr;
use vigil_config::topology;
use vigil_health::{AuditEvent, Health};
use vigil_msg::{decode_frame, decode_result, decode_roles, decode_shown, decode_status};

use crate::audit::Audit;
use crate::flight::FlightRecorder;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub audit_db: PathBuf,
    pub port: u16,
    pub flight_dir: PathBuf,
    pub before_ns: u64,
    pub after_ns: u64,
    /// Flight recordings kept on disk (bytes; 0: no limit).
    pub flight_budget: u64,
    /// The node whose restarts are reported on `status`.
    pub node: String,
}

impl Config {
    /// The `monitor` section.
    #[must_use]
    pub fn new(m: &vigil_config::Monitor) -> Self {
        Self {
            audit_db: m.audit_db.clone(),
            port: m.port,
            flight_dir: m.flight_dir.clone(),
            before_ns: m.flight_before_s.as_nanos(),
            after_ns: m.flight_after_s.as_nanos(),
            flight_budget: m.flight_budget_mb.saturating_mul(1 << 20),
            node: topology::node::INFER.to_owned(),
        }
    }
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

type Shared = Arc<Mutex<Health>>;

pub fn main() -> eyre::Result<()> {
    let cfg = Config::new(&vigil_config::from_env()?.monitor);
    // Subscribe first: frames sent before a node has connected do not reach it.
    let (node, events) = DoraNode::init_from_env().wrap_err("monitor: connecting to dora")?;
    if let Some(dir) = cfg.audit_db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).wrap_err_with(|| format!("creating {}", dir.display()))?;
    }
    let audit = Audit::open(&cfg.audit_db, &cfg.node, unix_ms())
        .wrap_err_with(|| format!("monitor: opening {}", cfg.audit_db.display()))?;
    let shared: Shared = Arc::new(Mutex::new(Health::new()));
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
            topology::port::FRAME => match decode_frame(p, data.as_array().as_ref()) {
                Ok(f) => {
                    health.frame(&f.header);
                    if arrivals.len() == ARRIVALS {
                        arrivals.pop_front();
                    }
                    arrivals.push_back((f.header.index, Instant::now()));
                    for done in flight.frame(f.header, f.jpeg) {
                        log_flight(done, cfg);
                    }
                    Ok(Vec::new())
                }
                Err(e) => Err(e),
            },
            topology::port::CAMERA_STATUS => {
                decode_status(p).map(|s| health.status(topology::node::CAMERA, &s))
            }
            topology::port::ROLES => decode_roles(p).map(|roles| {
                health.roles(roles);
                Vec::new()
            }),
            topology::port::SHOWN => decode_shown(p).map(|(h, total)| {
                health.shown(&h, total);
                Vec::new()
            }),
            s if s.starts_with(topology::port::STATUS) => {
                // `status` from `infer`, `status_K` from `infer_K`.
                let node = match topology::split_worker_port(s) {
                    (_, Some(k)) => topology::worker_id(k),
                    (_, None) => cfg.node.clone(),
                };
                decode_status(p).map(|s| health.status(&node, &s))
            }
            topology::port::RESULT => decode_result(p, data.as_array().as_ref()).map(|r| {
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
        log_flight(done, cfg);
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

/// Logs a finished flight recording and keeps the folder within its budget.
fn log_flight(done: Result<(PathBuf, u64), vigil_record::RecordError>, cfg: &Config) {
    match done {
        Ok((path, frames)) => {
            tracing::info!(path = %path.display(), frames, "monitor: flight recording written");
            if cfg.flight_budget == 0 {
                return;
            }
            // Audit rows keep naming recordings removed here; the file is gone, the row stays.
            match flight::enforce_budget(&cfg.flight_dir, cfg.flight_budget) {
                Ok(removed) => {
                    for p in removed {
                        tracing::info!(path = %p.display(), "monitor: oldest flight recording removed (over monitor.flight_budget_mb)");
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "monitor: keeping flight recordings within budget");
                }
            }
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
                    if h.degraded().is_some() { 503 } else { 200 },
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

    /// One HTTP/1.0 GET: (status code, body).
    fn get(port: u16, path: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
        write!(c, "GET {path} HTTP/1.0\r\n\r\n").expect("request");
        let mut text = String::new();
        c.read_to_string(&mut text).expect("response");
        let code = text
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("status line");
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned());
        (code, body.unwrap_or_default())
    }

    #[test]
    fn health_and_metrics_over_real_http_and_503_while_degraded() {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("binds");
        let port = server.server_addr().to_ip().expect("ip").port();
        let shared: Shared = Arc::new(Mutex::new(Health::new()));
        let http = shared.clone();
        std::thread::spawn(move || serve(&server, &http));
        let frame = |index: u64, missing: bool| {
            let header = vigil_msg::FrameHeader {
                seq: index,
                index,
                timestamp_ns: index * 33_333_333,
                width: 640,
                height: 480,
            };
            let mut h = shared.lock().expect("lock");
            h.frame(&header);
            h.result(
                &vigil_msg::ResultMsg {
                    header,
                    status: if missing {
                        vigil_msg::FrameStatus::Missing
                    } else {
                        vigil_msg::FrameStatus::Inferred
                    },
                    detections: Vec::new(),
                    tracks: Vec::new(),
                    latency: vigil_msg::Latency::default(),
                },
                None,
            );
        };
        frame(0, false);
        let (code, body) = get(port, "/health");
        assert_eq!(code, 200, "{body}");
        assert!(
            body.contains("\"status\":\"ok\"") && body.contains("\"frames_in\":1"),
            "{body}"
        );
        let (code, metrics) = get(port, "/metrics");
        assert_eq!(code, 200);
        assert!(metrics.contains("vigil_frames_in_total 1"), "{metrics}");
        // Frames going out without detections: degraded, 503.
        frame(1, true);
        frame(2, true);
        let (code, body) = get(port, "/health");
        assert_eq!(code, 503, "{body}");
        assert!(body.contains("degraded"), "{body}");
        assert_eq!(get(port, "/nothing").0, 404);
    }

    #[test]
    fn config_comes_from_the_monitor_section() {
        let c = Config::new(&vigil_config::Monitor::default());
        assert_eq!(
            (c.port, c.before_ns, c.after_ns, c.node.as_str()),
            (9100, 5_000_000_000, 3_000_000_000, "infer")
        );
        assert_eq!(c.flight_budget, 512 << 20);
    }
}
