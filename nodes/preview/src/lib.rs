//! The preview node: draws the latest tracks onto camera frames and serves them as an MJPEG
//! stream on 127.0.0.1. It takes frames straight from the camera and overlays whatever tracks
//! it has, so it never waits for inference. Every camera frame is reported on the `shown`
//! output with a running total (the frame reached the preview and is the one on display),
//! which the monitor compares with the frames the camera sent. Pictures are rendered only for
//! the clients that ask (`render::Preview`): with nobody watching, a frame costs a copy of its
//! bytes, no JPEG decode, drawing or encode. `shown` also carries `rendered_total`, the frames
//! rendered so far.
//!
//! - `GET /` a page showing the stream
//! - `GET /stream` `multipart/x-mixed-replace` MJPEG
//! - `GET /frame.jpg` the latest frame, rendered on request

mod http;
mod render;

use std::path::PathBuf;
use std::sync::Arc;

use dora_node_api::dora_core::config::DataId;
use dora_node_api::{DoraArray, DoraNode, Event, EventStream};
use eyre::WrapErr;
use vigil_config::topology::port;
use vigil_msg::{Parameter, decode_frame, decode_result, encode_shown};

pub use http::serve;
pub use render::{Picture, Preview, Viewer};

/// Extra metadata key of `shown`: frames rendered so far (decoders of `shown` ignore it).
pub const RENDERED_KEY: &str = "rendered_total";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub port: u16,
    pub labels: Option<PathBuf>,
}

impl Config {
    /// The `preview` section and the model's labels.
    #[must_use]
    pub fn new(c: &vigil_config::Config) -> Self {
        Self {
            port: c.preview.port,
            labels: c.model.labels.clone(),
        }
    }
}

pub fn main() -> eyre::Result<()> {
    let cfg = Config::new(&vigil_config::from_env()?);
    // Subscribe first: frames sent before a node has connected do not reach it.
    let (node, events) = DoraNode::init_from_env().wrap_err("preview: connecting to dora")?;
    let labels = match &cfg.labels {
        Some(p) => std::fs::read_to_string(p)
            .wrap_err_with(|| format!("reading labels {}", p.display()))?
            .lines()
            .map(str::to_owned)
            .collect(),
        None => Vec::new(),
    };
    let preview = Arc::new(Preview::new(labels).wrap_err("preview: JPEG codec")?);
    // Port 0: report, serve nothing (replays in CI).
    if cfg.port != 0 {
        let server = tiny_http::Server::http(("127.0.0.1", cfg.port))
            .map_err(|e| eyre::eyre!("preview: binding 127.0.0.1:{}: {e}", cfg.port))?;
        tracing::info!("preview at http://127.0.0.1:{}/", cfg.port);
        let http = preview.clone();
        std::thread::spawn(move || serve(&server, &http));
    }
    run(&preview, node, events)
}

fn run(preview: &Preview, mut node: DoraNode, mut events: EventStream) -> eyre::Result<()> {
    let shown = DataId::from(port::SHOWN.to_owned());
    let mut newest: Option<u64> = None;
    while let Some(event) = events.recv() {
        let Event::Input { id, metadata, data } = event else {
            if matches!(event, Event::Stop(_)) {
                break;
            }
            continue;
        };
        let array = data.as_array().as_ref();
        match id.as_str() {
            port::RESULT => {
                if let Ok(r) = decode_result(&metadata.parameters, array) {
                    preview.on_result(r.tracks);
                }
            }
            port::FRAME => {
                let Ok(frame) = decode_frame(&metadata.parameters, array) else {
                    continue;
                };
                // A frame sent again (a replay resends what was not acknowledged) is no new
                // frame on display.
                if newest.is_some_and(|n| frame.header.index <= n) {
                    continue;
                }
                newest = Some(frame.header.index);
                let Some(total) = preview.on_frame(&frame.header, frame.jpeg) else {
                    let (seq, corrupt) = (frame.header.seq, preview.corrupt());
                    tracing::warn!(seq, corrupt, "preview: not a JPEG, frame not shown");
                    continue;
                };
                let (mut params, array) = encode_shown(&frame.header, total);
                params.insert(
                    RENDERED_KEY.into(),
                    Parameter::Integer(preview.rendered() as i64),
                );
                node.send_output(shown.clone(), params, DoraArray::from(array))
                    .wrap_err("preview: sending shown")?;
            }
            _ => {}
        }
    }
    tracing::info!(
        shown = preview.frames(),
        rendered = preview.rendered(),
        corrupt = preview.corrupt(),
        "preview finished"
    );
    Ok(())
}
