//! The replay node: plays a recording as the camera would, on the same `frame` output.
//!
//! - `lockstep` (default): lossless and in order, as fast as the pipeline goes. At most
//!   `VIGIL_WINDOW` frames are in flight, so no queue can overflow. The last node acknowledges
//!   on the `ack` input, cumulatively (`frame_index` = every frame up to it is written) and
//!   again on a timer. A frame not acknowledged within `VIGIL_RESEND_MS` is sent again: dora's
//!   data plane can drop a message (at start-up especially), and the downstream nodes drop
//!   duplicates by frame index, so a resend can only fill a gap.
//! - `realtime`: frames leave at their recorded timestamps; slow consumers drop, as live.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use dora_node_api::dora_core::config::DataId;
use dora_node_api::{DoraArray, DoraNode, Event};
use eyre::WrapErr;
use vigil_config::topology::{env, port};
use vigil_msg::config::{ConfigError, Lookup};
use vigil_msg::{Frame, FrameHeader};
use vigil_record::{RecordedFrame, Recording};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Lockstep,
    Realtime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub recording: PathBuf,
    pub mode: Mode,
    /// Frames in flight in lock-step mode.
    pub window: usize,
    /// Lock-step: resend a frame not acknowledged within this long.
    pub resend_after: Duration,
}

impl Config {
    pub fn from_lookup(l: &impl Lookup) -> Result<Self, ConfigError> {
        let mode = match l.get(env::MODE).unwrap_or_default().as_str() {
            "" | "lockstep" => Mode::Lockstep,
            "realtime" => Mode::Realtime,
            other => {
                return Err(ConfigError::new(
                    env::MODE,
                    other,
                    "expected lockstep or realtime",
                ));
            }
        };
        let window = l.parse_or(env::WINDOW, 4usize)?;
        if window == 0 {
            return Err(ConfigError::new(env::WINDOW, "0", "must be at least 1"));
        }
        let resend_ms = l.parse_or(env::RESEND_MS, 3000u64)?;
        Ok(Self {
            recording: l.parse_required(env::RECORDING)?,
            mode,
            window,
            resend_after: Duration::from_millis(resend_ms.max(1)),
        })
    }
}

pub fn main() -> eyre::Result<()> {
    let cfg = Config::from_lookup(&vigil_msg::config::env_lookup())?;
    let rec = Recording::open(&cfg.recording)?;
    if rec.torn {
        tracing::warn!(path = %cfg.recording.display(), frames = rec.frames.len(), "recording is torn; replaying every complete frame");
    }
    let (node, events) = DoraNode::init_from_env().wrap_err("replay: connecting to dora")?;
    run(&cfg, &rec, node, events)
}

fn send(node: &mut DoraNode, rec: &Recording, index: usize, f: &RecordedFrame) -> eyre::Result<()> {
    let header = FrameHeader {
        seq: u64::from(f.seq),
        index: index as u64,
        timestamp_ns: f.timestamp_ns,
        width: rec.info.width,
        height: rec.info.height,
    };
    let (params, data) = Frame {
        header,
        jpeg: &f.jpeg,
    }
    .encode();
    node.send_output(
        DataId::from(port::FRAME.to_owned()),
        params,
        DoraArray::from(data),
    )
    .wrap_err("replay: sending frame")
}

pub fn run(
    cfg: &Config,
    rec: &Recording,
    mut node: DoraNode,
    mut events: dora_node_api::EventStream,
) -> eyre::Result<()> {
    match cfg.mode {
        Mode::Lockstep => lockstep(cfg, rec, &mut node, &mut events)?,
        Mode::Realtime => {
            let start = Instant::now();
            let first = rec.frames.first().map_or(0, |f| f.timestamp_ns);
            for (i, f) in rec.frames.iter().enumerate() {
                let due = start + Duration::from_nanos(f.timestamp_ns.saturating_sub(first));
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                if let Ok(Event::Stop(_)) = events.try_recv() {
                    break;
                }
                send(&mut node, rec, i, f)?;
            }
        }
    }
    tracing::info!(frames = rec.frames.len(), "replay finished");
    Ok(())
}

fn lockstep(
    cfg: &Config,
    rec: &Recording,
    node: &mut DoraNode,
    events: &mut dora_node_api::EventStream,
) -> eyre::Result<()> {
    let total = rec.frames.len();
    // Frames sent and not yet acknowledged, by index, with when each was last sent.
    let mut in_flight: BTreeMap<usize, Instant> = BTreeMap::new();
    let (mut next, mut resent) = (0usize, 0u64);
    loop {
        while next < total && in_flight.len() < cfg.window {
            send(node, rec, next, &rec.frames[next])?;
            in_flight.insert(next, Instant::now());
            next += 1;
        }
        let Some(oldest) = in_flight.values().min().copied() else {
            break;
        };
        let wait = (oldest + cfg.resend_after).saturating_duration_since(Instant::now());
        match events.recv_timeout(wait) {
            Some(Event::Input { id, metadata, .. }) if id.as_str() == port::ACK => {
                if let Ok(h) = vigil_msg::decode_header(&metadata.parameters) {
                    in_flight.retain(|&i, _| i as u64 > h.index);
                }
            }
            Some(Event::Stop(_)) => break,
            Some(Event::InputClosed { id }) if id.as_str() == port::ACK => {
                eyre::bail!(
                    "replay: the acknowledging node exited with {} frames unacknowledged",
                    in_flight.len()
                )
            }
            _ => {}
        }
        let now = Instant::now();
        for (&i, sent) in &mut in_flight {
            if now.duration_since(*sent) >= cfg.resend_after {
                resent += 1;
                tracing::warn!(
                    index = i,
                    resent,
                    "replay: frame not acknowledged in time, sending it again"
                );
                send(node, rec, i, &rec.frames[i])?;
                *sent = now;
            }
        }
    }
    tracing::info!(resent, "lock-step replay acknowledged");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_errors() {
        let l = |k: &str| (k == "VIGIL_RECORDING").then(|| "a.mcap".to_owned());
        let c = Config::from_lookup(&l).expect("parses");
        assert_eq!((c.mode, c.window), (Mode::Lockstep, 4));
        let bad = |k: &str| match k {
            "VIGIL_RECORDING" => Some("a.mcap".to_owned()),
            "VIGIL_MODE" => Some("fast".to_owned()),
            _ => None,
        };
        assert!(
            Config::from_lookup(&bad)
                .expect_err("must fail")
                .to_string()
                .contains("VIGIL_MODE")
        );
        assert!(
            Config::from_lookup(&|_: &str| None)
                .expect_err("must fail")
                .to_string()
                .contains("VIGIL_RECORDING")
        );
    }
}
