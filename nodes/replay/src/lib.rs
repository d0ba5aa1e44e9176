//! The replay node: plays a recording as the camera would, on the same `frame` output.
//!
//! - `lockstep` (default): lossless and in order, as fast as the pipeline goes. At most
//!   `VIGIL_WINDOW` frames are in flight, so no queue can overflow. The last node acknowledges
//!   on the `ack` input, cumulatively (`frame_index` = every frame up to it is written) and
//!   again on a timer. A frame not acknowledged within `VIGIL_RESEND_MS` is sent again: dora's
//!   data plane can drop a message (at start-up especially), and the downstream nodes drop
//!   duplicates by frame index, so a resend can only fill a gap.
//! - `realtime`: frames leave at their recorded timestamps (or at `VIGIL_FPS`), whatever the
//!   pipeline does with them, as a camera's would; the pipeline is live (the newest frame is
//!   inferred, the others say why not). The same acknowledgements and resends make sure every
//!   frame's line is written; the replay ends once all are acknowledged.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use dora_node_api::dora_core::config::DataId;
use dora_node_api::{DoraArray, DoraNode, Event};
use eyre::WrapErr;
use vigil_config::topology::{env, port};
use vigil_msg::config::{ConfigError, Lookup};
use vigil_msg::{Frame, FrameHeader};
use vigil_record::RecordingReader;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Lockstep,
    Realtime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub recording: PathBuf,
    pub mode: Mode,
    /// Frames in flight in lock-step mode.
    pub window: usize,
    /// Resend a frame not acknowledged within this long.
    pub resend_after: Duration,
    /// Realtime: play at this rate instead of the recorded timestamps.
    pub fps: Option<f64>,
    /// Play the recording this many times in a row (a soak), frame numbers and times going on.
    pub loops: u64,
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
        let fps = match l.get(env::FPS) {
            None => None,
            Some(v) => match v.parse::<f64>() {
                Ok(f) if (0.1..=1000.0).contains(&f) => Some(f),
                _ => return Err(ConfigError::new(env::FPS, &v, "a rate from 0.1 to 1000")),
            },
        };
        let loops = l.parse_or(env::LOOPS, 1u64)?;
        if loops == 0 {
            return Err(ConfigError::new(env::LOOPS, "0", "must be at least 1"));
        }
        Ok(Self {
            recording: l.parse_required(env::RECORDING)?,
            mode,
            window,
            resend_after: Duration::from_millis(resend_ms.max(1)),
            fps,
            loops,
        })
    }
}

pub fn main() -> eyre::Result<()> {
    let cfg = Config::from_lookup(&vigil_msg::config::env_lookup())?;
    let mut rec = RecordingReader::open(&cfg.recording)?;
    if rec.orphans > 0 {
        tracing::warn!(path = %cfg.recording.display(), messages = rec.orphans, "recording has messages on channels it never declared; skipped");
    }
    if rec.torn {
        tracing::warn!(path = %cfg.recording.display(), frames = rec.frames.len(), "recording is torn; replaying every complete frame");
    }
    let (node, events) = DoraNode::init_from_env().wrap_err("replay: connecting to dora")?;
    run(&cfg, &mut rec, node, events)
}

/// The recording, read as frames are needed.
type Reader = RecordingReader<std::io::BufReader<std::fs::File>>;

/// Sequence numbers one loop takes: each loop goes on numbering where the last ended.
fn seqs_per_loop(rec: &Reader) -> u64 {
    rec.frames
        .iter()
        .map(|f| u64::from(f.seq) + 1)
        .max()
        .unwrap_or(0)
}

/// Sends frame `index` (of the recording played in loops of `seqs` sequence numbers) with its
/// frame-time stamp, read from the file now. A frame that cannot be read goes out without
/// bytes: preprocess counts it `bad_frame` and its line says so.
fn send(
    node: &mut DoraNode,
    rec: &mut Reader,
    seqs: u64,
    index: usize,
    timestamp_ns: u64,
    unreadable: &mut std::collections::BTreeSet<usize>,
) -> eyre::Result<()> {
    let n = rec.frames.len().max(1);
    let f = rec.frames[index % n];
    let jpeg = rec.frame(index % n).map_or_else(
        |e| {
            // Once per frame of the file, however often it is sent (loops, resends).
            if unreadable.insert(index % n) {
                tracing::error!(unreadable = unreadable.len(), "{e}; sent as a bad frame");
            }
            Vec::new()
        },
        |fr| fr.jpeg,
    );
    let header = FrameHeader {
        seq: u64::from(f.seq) + (index / n) as u64 * seqs,
        index: index as u64,
        timestamp_ns,
        width: rec.info.width,
        height: rec.info.height,
    };
    let (params, data) = Frame {
        header,
        captured_unix_ns: vigil_msg::unix_now_ns(),
        jpeg: &jpeg,
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
    rec: &mut Reader,
    mut node: DoraNode,
    mut events: dora_node_api::EventStream,
) -> eyre::Result<()> {
    let timeline = Timeline::new(cfg, rec);
    play(cfg, rec, &timeline, &mut node, &mut events)?;
    tracing::info!(frames = timeline.total, "replay finished");
    Ok(())
}

/// When each frame of the replay is stamped and may leave, computed per frame (a soak's
/// `--loop` plays millions: nothing is kept per frame).
struct Timeline {
    /// Frames in the whole replay (the recording times the loops).
    total: usize,
    frames: u64,
    first: u64,
    /// How long one loop lasts: the recording plus one frame interval.
    period: u64,
    fps: Option<f64>,
    realtime: bool,
    /// Frames in flight at most.
    window: usize,
}

impl Timeline {
    fn new(cfg: &Config, rec: &Reader) -> Self {
        let first = rec.frames.first().map_or(0, |f| f.timestamp_ns);
        let last = rec
            .frames
            .iter()
            .map(|f| f.timestamp_ns)
            .max()
            .unwrap_or(first);
        let n = rec.frames.len() as u64;
        // A loop lasts the recording plus one frame interval (the mean one; the recorded
        // rate's for a single frame).
        let span = last.saturating_sub(first);
        let interval = if n > 1 {
            span / (n - 1)
        } else {
            (1e9 / rec.info.fps.max(0.1)) as u64
        };
        Self {
            total: usize::try_from(n.saturating_mul(cfg.loops)).unwrap_or(usize::MAX),
            frames: n,
            first,
            period: span.saturating_add(interval.max(1)),
            fps: cfg.fps,
            realtime: cfg.mode == Mode::Realtime,
            window: match cfg.mode {
                Mode::Lockstep => cfg.window,
                Mode::Realtime => usize::MAX,
            },
        }
    }

    /// Frame `i`'s timestamp: as recorded, or where a camera at `fps` puts it (frame time is
    /// the camera's: at 60 fps frames are stamped 16.7 ms apart).
    fn stamp(&self, rec: &Reader, i: usize) -> u64 {
        let i = i as u64;
        match self.fps {
            Some(fps) => self.first + (i as f64 * 1e9 / fps).round() as u64,
            None => rec.frames[(i % self.frames) as usize]
                .timestamp_ns
                .saturating_add((i / self.frames).saturating_mul(self.period)),
        }
    }

    /// When frame `i` may leave, from the start: lock-step as soon as the window allows.
    fn offset(&self, rec: &Reader, i: usize) -> Option<Duration> {
        (self.realtime && i < self.total)
            .then(|| Duration::from_nanos(self.stamp(rec, i).saturating_sub(self.first)))
    }
}

/// Sends every frame once its offset has passed and fewer than `window` are unacknowledged;
/// the last node acknowledges cumulatively; a frame not acknowledged within
/// `resend_after` is sent again. Returns once every frame is acknowledged.
fn play(
    cfg: &Config,
    rec: &mut Reader,
    t: &Timeline,
    node: &mut DoraNode,
    events: &mut dora_node_api::EventStream,
) -> eyre::Result<()> {
    let (total, window) = (t.total, t.window);
    let seqs = seqs_per_loop(rec);
    let start = Instant::now();
    // Frames sent and not yet acknowledged, by index, with when each was last sent.
    let mut in_flight: BTreeMap<usize, Instant> = BTreeMap::new();
    let (mut next, mut resent) = (0usize, 0u64);
    let mut unreadable = std::collections::BTreeSet::new();
    loop {
        let now = Instant::now();
        while next < total
            && in_flight.len() < window
            && t.offset(rec, next).is_none_or(|o| start + o <= now)
        {
            let stamp = t.stamp(rec, next);
            send(node, rec, seqs, next, stamp, &mut unreadable)?;
            in_flight.insert(next, Instant::now());
            next += 1;
        }
        let resend_due = in_flight.values().min().map(|&t| t + cfg.resend_after);
        let next_due = t
            .offset(rec, next)
            .filter(|_| in_flight.len() < window)
            .map(|o| start + o);
        // Nothing in flight and nothing left to send: every frame is acknowledged.
        let Some(wake) = [resend_due, next_due].into_iter().flatten().min() else {
            break;
        };
        if let Some(event) = events.recv_timeout(wake.saturating_duration_since(Instant::now()))
            && !on_event(event, &mut in_flight)?
        {
            break;
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
                let stamp = t.stamp(rec, i);
                send(node, rec, seqs, i, stamp, &mut unreadable)?;
                *sent = now;
            }
        }
    }
    tracing::info!(resent, unreadable = unreadable.len(), "replay acknowledged");
    Ok(())
}

/// Takes an acknowledgement; false when the replay must stop.
fn on_event(event: Event, in_flight: &mut BTreeMap<usize, Instant>) -> eyre::Result<bool> {
    match event {
        Event::Input { id, metadata, .. } if id.as_str() == port::ACK => {
            if let Ok(h) = vigil_msg::decode_header(&metadata.parameters) {
                in_flight.retain(|&i, _| i as u64 > h.index);
            }
            Ok(true)
        }
        Event::Stop(_) => Ok(false),
        Event::InputClosed { id } if id.as_str() == port::ACK => eyre::bail!(
            "replay: the acknowledging node exited with {} frames unacknowledged",
            in_flight.len()
        ),
        _ => Ok(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_errors() {
        let l = |k: &str| (k == "VIGIL_RECORDING").then(|| "a.mcap".to_owned());
        let c = Config::from_lookup(&l).expect("parses");
        assert_eq!((c.mode, c.window, c.fps), (Mode::Lockstep, 4, None));
        let fps = |k: &str| match k {
            "VIGIL_RECORDING" => Some("a.mcap".to_owned()),
            "VIGIL_FPS" => Some("0".to_owned()),
            _ => None,
        };
        assert!(Config::from_lookup(&fps).is_err(), "a rate of 0 is refused");
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
