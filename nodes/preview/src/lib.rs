//! The preview node: draws the latest tracks onto camera frames and serves them as an MJPEG
//! stream on 127.0.0.1. It takes frames straight from the camera and overlays whatever tracks
//! it has, so it never waits for inference. Every camera frame is rendered (whether or not
//! anyone watches, so what is counted is what a viewer would get) and reported on the `shown`
//! output with a running total, which the monitor compares with the frames the camera sent.
//!
//! - `GET /` a page showing the stream
//! - `GET /stream` `multipart/x-mixed-replace` MJPEG
//! - `GET /frame.jpg` the latest rendered frame

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use dora_node_api::dora_core::config::DataId;
use dora_node_api::{DoraArray, DoraNode, Event, EventStream};
use eyre::WrapErr;
use vigil_config::topology::port;
use vigil_msg::{decode_frame, decode_result, encode_shown};
use vigil_track::Track;
use vigil_vision::{JpegCodec, RgbImage, draw_overlay, overlays};

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

/// The latest rendered frame, shared with the HTTP threads.
#[derive(Debug, Default)]
struct Latest {
    generation: u64,
    jpeg: Arc<Vec<u8>>,
}

type Shared = Arc<(Mutex<Latest>, Condvar)>;

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
    let shared: Shared = Arc::default();
    // Port 0: render and report, serve nothing (replays in CI).
    if cfg.port != 0 {
        let server = tiny_http::Server::http(("127.0.0.1", cfg.port))
            .map_err(|e| eyre::eyre!("preview: binding 127.0.0.1:{}: {e}", cfg.port))?;
        tracing::info!("preview at http://127.0.0.1:{}/", cfg.port);
        let http_shared = shared.clone();
        std::thread::spawn(move || serve(&server, &http_shared));
    }
    run(&labels, &shared, node, events)
}

fn run(
    labels: &[String],
    shared: &Shared,
    mut node: DoraNode,
    mut events: EventStream,
) -> eyre::Result<()> {
    let shown = DataId::from(port::SHOWN.to_owned());
    let mut codec = JpegCodec::new(80)?;
    let mut tracks: Vec<Track> = Vec::new();
    let mut img = RgbImage::default();
    let (mut rendered, mut corrupt) = (0u64, 0u64);
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
                if let Ok(t) = decode_result(&metadata.parameters, array) {
                    tracks = t.tracks;
                }
            }
            port::FRAME => {
                let Ok(frame) = decode_frame(&metadata.parameters, array) else {
                    continue;
                };
                if let Err(e) = codec.decode_into(frame.jpeg, &mut img) {
                    corrupt += 1;
                    tracing::warn!(seq = frame.header.seq, error = %e, corrupt, "preview: frame not shown");
                    continue;
                }
                draw_overlay(&mut img, &overlays(&tracks, labels));
                let jpeg = codec.encode(&img)?;
                let mut latest = shared.0.lock().unwrap_or_else(PoisonError::into_inner);
                latest.generation += 1;
                latest.jpeg = Arc::new(jpeg);
                rendered += 1;
                shared.1.notify_all();
                drop(latest);
                let (params, array) = encode_shown(&frame.header, rendered);
                node.send_output(shown.clone(), params, DoraArray::from(array))
                    .wrap_err("preview: sending shown")?;
            }
            _ => {}
        }
    }
    tracing::info!(rendered, corrupt, "preview finished");
    Ok(())
}

const PAGE: &str = "<!doctype html><title>vigil preview</title><body style=\"margin:0;background:#111\">\
<img src=\"/stream\" style=\"max-width:100%\" alt=\"vigil preview\"></body>";

fn serve(server: &tiny_http::Server, shared: &Shared) {
    for request in server.incoming_requests() {
        let url = request.url().to_owned();
        let result = match url.as_str() {
            "/" => request.respond(
                tiny_http::Response::from_string(PAGE)
                    .with_header(header("Content-Type", "text/html")),
            ),
            "/frame.jpg" => {
                let jpeg = shared
                    .0
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .jpeg
                    .clone();
                request.respond(
                    tiny_http::Response::from_data(jpeg.to_vec())
                        .with_header(header("Content-Type", "image/jpeg")),
                )
            }
            "/stream" => {
                let shared = shared.clone();
                std::thread::spawn(move || stream(request, &shared));
                Ok(())
            }
            _ => {
                request.respond(tiny_http::Response::from_string("not found").with_status_code(404))
            }
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, url, "preview: client went away");
        }
    }
}

fn header(name: &str, value: &str) -> tiny_http::Header {
    tiny_http::Header {
        field: name
            .parse()
            .unwrap_or_else(|()| unreachable!("static header name")),
        value: value.parse().unwrap_or_default(),
    }
}

fn stream(request: tiny_http::Request, shared: &Shared) {
    let (lock, cvar) = &**shared;
    let mut w = request.into_writer();
    let mut seen = 0u64;
    let head = "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=vigilframe\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";
    let mut ok = w.write_all(head.as_bytes()).is_ok();
    while ok {
        let jpeg = {
            let mut latest = lock.lock().unwrap_or_else(PoisonError::into_inner);
            while latest.generation == seen {
                let (l, timeout) = cvar
                    .wait_timeout(latest, Duration::from_secs(5))
                    .unwrap_or_else(PoisonError::into_inner);
                latest = l;
                if timeout.timed_out() {
                    break;
                }
            }
            seen = latest.generation;
            latest.jpeg.clone()
        };
        if jpeg.is_empty() {
            continue;
        }
        let part = format!(
            "--vigilframe\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            jpeg.len()
        );
        ok = w
            .write_all(part.as_bytes())
            .and_then(|()| w.write_all(&jpeg))
            .and_then(|()| w.write_all(b"\r\n"))
            .and_then(|()| w.flush())
            .is_ok();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends one HTTP/1.0 GET and reads until `until` appears in the response (or it ends).
    fn get(port: u16, path: &str, until: &[u8]) -> Vec<u8> {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects");
        c.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(c, "GET {path} HTTP/1.0\r\n\r\n").expect("request");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !got.windows(until.len()).any(|w| w == until) {
            match c.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        got
    }

    #[test]
    fn page_stream_frame_and_404_over_real_http() {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("binds");
        let port = server.server_addr().to_ip().expect("ip").port();
        let shared: Shared = Arc::default();
        let http = shared.clone();
        std::thread::spawn(move || serve(&server, &http));
        let jpeg = b"\xff\xd8 a frame \xff\xd9".to_vec();
        {
            let mut latest = shared.0.lock().expect("lock");
            latest.generation = 1;
            latest.jpeg = Arc::new(jpeg.clone());
        }
        shared.1.notify_all();
        let page = String::from_utf8_lossy(&get(port, "/", b"</body>")).into_owned();
        assert!(
            page.starts_with("HTTP/1.")
                && page.contains(" 200 ")
                && page.contains("<img src=\"/stream\""),
            "{page}"
        );
        let frame = get(port, "/frame.jpg", b"\xff\xd9");
        assert!(String::from_utf8_lossy(&frame).contains(" 200 "));
        assert!(frame.ends_with(&jpeg));
        let stream = get(port, "/stream", b"\xff\xd9");
        let text = String::from_utf8_lossy(&stream);
        assert!(
            text.contains("multipart/x-mixed-replace; boundary=vigilframe")
                && text.contains("--vigilframe\r\nContent-Type: image/jpeg")
                && stream.windows(jpeg.len()).any(|w| w == jpeg.as_slice()),
            "{text}"
        );
        let missing = String::from_utf8_lossy(&get(port, "/nope", b"not found")).into_owned();
        assert!(missing.contains(" 404 "), "{missing}");
    }
}
