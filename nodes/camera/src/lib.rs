//! The camera node: V4L2 capture of MJPEG frames, sent on `frame` byte for byte as the driver
//! delivered them, with the driver's sequence number and capture timestamp.
//!
//! When capture fails later on (unplugged, `EIO`, no frame within [`CAPTURE_TIMEOUT`]) the
//! device is reopened with back-off ([`reconnect`], a pure state machine) and capture resumes
//! by itself; each outage goes to the monitor on `status` (an audit row, `/health` degraded
//! meanwhile). No other node restarts. The first open must succeed: a wrong device path fails
//! before anything starts.
//!
//! [`Config`] and [`reconnect`] are tested without a camera; the capture test is `#[ignore]`d
//! and runs where `/dev/video0` exists (`cargo test -p vigil-camera -- --ignored`).

pub mod reconnect;

use std::path::PathBuf;
use std::time::Duration;

use dora_node_api::dora_core::config::DataId;
use dora_node_api::{DoraArray, DoraNode, Event, EventStream};
use eyre::WrapErr;
use v4l::buffer::Type;
use v4l::io::traits::CaptureStream;
use v4l::prelude::MmapStream;
use v4l::video::Capture as _;
use v4l::{Device, FourCC};
use vigil_msg::{Encode, Frame, FrameHeader, StatusMsg};

use crate::reconnect::{Action, Backoff, Failure, Reconnect, Report};

/// A camera that delivers no frame for this long is reopened.
pub const CAPTURE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub device: PathBuf,
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

impl Default for Config {
    /// The Logitech C920's MJPEG 720p mode.
    fn default() -> Self {
        Self {
            device: PathBuf::from("/dev/video0"),
            width: 1280,
            height: 720,
            fps: 30,
        }
    }
}

impl Config {
    /// The `camera` section.
    #[must_use]
    pub fn new(c: &vigil_config::Camera) -> Self {
        Self {
            device: c.device.clone(),
            width: c.width.get(),
            height: c.height.get(),
            fps: c.fps.get(),
        }
    }
}

/// An open MJPEG capture.
pub struct Capture {
    stream: MmapStream<'static>,
    pub width: u32,
    pub height: u32,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("width", &self.width)
            .field("height", &self.height)
            .finish_non_exhaustive()
    }
}

/// One captured frame, borrowed from the driver's buffer.
#[derive(Debug)]
pub struct Captured<'a> {
    pub seq: u32,
    pub timestamp_ns: u64,
    pub jpeg: &'a [u8],
}

impl Capture {
    pub fn open(cfg: &Config) -> eyre::Result<Self> {
        let dev = Device::with_path(&cfg.device)
            .wrap_err_with(|| format!("opening {}", cfg.device.display()))?;
        let mut fmt = dev.format().wrap_err("reading the capture format")?;
        (fmt.width, fmt.height, fmt.fourcc) = (cfg.width, cfg.height, FourCC::new(b"MJPG"));
        let fmt = dev.set_format(&fmt).wrap_err("setting MJPEG capture")?;
        if fmt.fourcc != FourCC::new(b"MJPG") {
            eyre::bail!(
                "{} does not offer MJPEG (it chose {})",
                cfg.device.display(),
                fmt.fourcc
            );
        }
        dev.set_params(&v4l::video::capture::Parameters::with_fps(cfg.fps))
            .wrap_err("setting the frame rate")?;
        let mut stream = MmapStream::with_buffers(&dev, Type::VideoCapture, 4)
            .wrap_err("starting the capture stream")?;
        stream.set_timeout(CAPTURE_TIMEOUT);
        Ok(Self {
            stream,
            width: fmt.width,
            height: fmt.height,
        })
    }

    pub fn next_frame(&mut self) -> std::io::Result<Captured<'_>> {
        let (buf, meta) = self.stream.next()?;
        let used = (meta.bytesused as usize).min(buf.len());
        let ts = meta.timestamp;
        let timestamp_ns = (ts.sec.max(0) as u64) * 1_000_000_000 + (ts.usec.max(0) as u64) * 1_000;
        Ok(Captured {
            seq: meta.sequence,
            timestamp_ns,
            jpeg: &buf[..used],
        })
    }
}

pub fn main() -> eyre::Result<()> {
    let cfg = Config::new(&vigil_config::from_env()?.camera);
    let capture = Capture::open(&cfg)?;
    let (node, events) = DoraNode::init_from_env().wrap_err("camera: connecting to dora")?;
    run(&cfg, capture, node, events)
}

fn unix_ms() -> u64 {
    vigil_msg::unix_now_ns() / 1_000_000
}

/// The driver numbers frames from 0 again after a reopen: sequence numbers sent on go on
/// rising across outages.
#[derive(Debug, Default)]
struct Sequence {
    offset: u64,
    last: Option<u64>,
}

impl Sequence {
    fn of(&mut self, driver: u32) -> u64 {
        let mut seq = u64::from(driver) + self.offset;
        if let Some(last) = self.last
            && seq <= last
        {
            self.offset += last + 1 - seq;
            seq = last + 1;
        }
        self.last = Some(seq);
        seq
    }
}

/// Why opening failed, as the state machine classifies it.
fn open_failure(e: &eyre::Report) -> Failure {
    e.chain()
        .find_map(|c| c.downcast_ref::<std::io::Error>())
        .map_or_else(|| Failure::Driver(format!("{e:#}")), Failure::of)
}

pub fn run(
    cfg: &Config,
    capture: Capture,
    mut node: DoraNode,
    mut events: EventStream,
) -> eyre::Result<()> {
    let output = DataId::from(vigil_config::topology::port::FRAME.to_owned());
    let status = DataId::from(vigil_config::topology::port::STATUS.to_owned());
    let mut capture = Some(capture);
    let mut reconnect = Reconnect::new(Backoff::default());
    let report = |node: &mut DoraNode, r: Option<Report>| -> eyre::Result<()> {
        let Some(r) = r else { return Ok(()) };
        let msg = match r {
            Report::Down { why, .. } => {
                tracing::error!(device = %cfg.device.display(), %why, "camera: capture stopped; reopening");
                StatusMsg::CameraDown { why }
            }
            Report::Up {
                outage_ms,
                attempts,
                ..
            } => {
                tracing::warn!(outage_ms, attempts, "camera: capture resumed");
                StatusMsg::CameraUp {
                    outage_ms,
                    attempts,
                }
            }
        };
        let (params, array) = msg.encode();
        node.send_output(status.clone(), params, DoraArray::from(array))
            .wrap_err("camera: sending status")
    };
    let mut index = 0u64;
    let mut seqs = Sequence::default();
    loop {
        match reconnect.next() {
            Action::Capture => {
                if let Ok(Event::Stop(_)) = events.try_recv() {
                    return Ok(());
                }
                let Some(cap) = capture.as_mut() else {
                    report(
                        &mut node,
                        reconnect.failed(unix_ms(), &Failure::Driver("not open".into())),
                    )?;
                    continue;
                };
                let (width, height) = (cap.width, cap.height);
                match cap.next_frame() {
                    Ok(f) => {
                        let header = FrameHeader {
                            seq: seqs.of(f.seq),
                            index,
                            timestamp_ns: f.timestamp_ns,
                            width,
                            height,
                        };
                        let (params, data) = Frame {
                            header,
                            captured_unix_ns: vigil_msg::unix_now_ns(),
                            jpeg: f.jpeg,
                        }
                        .encode();
                        node.send_output(output.clone(), params, DoraArray::from(data))
                            .wrap_err("camera: sending frame")?;
                        index += 1;
                        report(&mut node, reconnect.frame(unix_ms()))?;
                    }
                    Err(e) => {
                        capture = None;
                        report(&mut node, reconnect.failed(unix_ms(), &Failure::of(&e)))?;
                    }
                }
            }
            Action::Reopen { after_ms } => {
                // Wait, but leave at once if the dataflow stops (`None`: the stream closed).
                if let None | Some(Event::Stop(_)) =
                    events.recv_timeout(Duration::from_millis(after_ms))
                {
                    return Ok(());
                }
                reconnect.reopening();
                match Capture::open(cfg) {
                    Ok(c) => {
                        capture = Some(c);
                        reconnect.reopened();
                    }
                    Err(e) => report(&mut node, reconnect.failed(unix_ms(), &open_failure(&e)))?,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_go_on_rising_when_the_driver_starts_again() {
        let mut s = Sequence::default();
        let seqs: Vec<u64> = [5, 6, 7, 0, 1, 2, 0, 9]
            .into_iter()
            .map(|d| s.of(d))
            .collect();
        assert_eq!(seqs, [5, 6, 7, 8, 9, 10, 11, 20]);
    }

    #[test]
    fn the_camera_section_is_the_c920_720p_mode_by_default() {
        let c = Config::new(&vigil_config::Camera::default());
        assert_eq!(
            (c.device.to_str(), c.width, c.height, c.fps),
            (Some("/dev/video0"), 1280, 720, 30)
        );
        assert_eq!(c, Config::default());
    }

    /// Needs a UVC camera at /dev/video0.
    #[test]
    #[ignore = "needs a camera at /dev/video0"]
    fn captures_mjpeg_frames_with_increasing_sequence() {
        let mut cap = Capture::open(&Config::default()).expect("camera opens");
        let a = cap.next_frame().expect("frame").seq;
        let f = cap.next_frame().expect("frame");
        assert!(f.seq > a);
        assert_eq!(&f.jpeg[..2], &[0xFF, 0xD8]);
    }
}
