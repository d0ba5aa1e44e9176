//! The preview's HTTP server: a page, the MJPEG stream and a snapshot, each picture rendered
//! by the core when a client asks for it.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::render::Preview;

const PAGE: &str = "<!doctype html><title>vigil preview</title><body style=\"margin:0;background:#111\">\
<img src=\"/stream\" style=\"max-width:100%\" alt=\"vigil preview\"></body>";

const STREAM_HEAD: &str = "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=vigilframe\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n";

/// How long a stream waits for a new frame before it sends the last picture again, which is
/// also how soon it finds out that a client of a stalled camera has gone.
const RESEND: Duration = Duration::from_secs(5);

/// Answers requests until the server is dropped; each stream gets its own thread.
pub fn serve(server: &tiny_http::Server, preview: &Arc<Preview>) {
    for request in server.incoming_requests() {
        let url = request.url().to_owned();
        let result = match url.as_str() {
            "/" => request.respond(
                tiny_http::Response::from_string(PAGE)
                    .with_header(header("Content-Type", "text/html")),
            ),
            "/frame.jpg" => {
                let jpeg = preview.picture().jpeg;
                if jpeg.is_empty() {
                    request.respond(
                        tiny_http::Response::from_string("no frame yet").with_status_code(503),
                    )
                } else {
                    request.respond(
                        tiny_http::Response::from_data(jpeg.to_vec())
                            .with_header(header("Content-Type", "image/jpeg")),
                    )
                }
            }
            "/stream" => {
                let preview = preview.clone();
                std::thread::spawn(move || stream(request, &preview));
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

/// Sends the newest picture each time a frame newer than the last one sent has come, until the
/// client goes: a client slower than the camera skips frames, which are then never rendered.
fn stream(request: tiny_http::Request, preview: &Preview) {
    let viewer = preview.viewer();
    tracing::info!(viewers = preview.viewers(), "preview: viewer connected");
    let mut w = request.into_writer();
    let mut ok = w
        .write_all(STREAM_HEAD.as_bytes())
        .and_then(|()| w.flush())
        .is_ok();
    let mut seen = 0;
    while ok {
        preview.wait_newer(seen, RESEND);
        let picture = preview.picture();
        seen = picture.frame;
        if picture.jpeg.is_empty() {
            continue;
        }
        let part = format!(
            "--vigilframe\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            picture.jpeg.len()
        );
        ok = w
            .write_all(part.as_bytes())
            .and_then(|()| w.write_all(&picture.jpeg))
            .and_then(|()| w.write_all(b"\r\n"))
            .and_then(|()| w.flush())
            .is_ok();
    }
    drop(viewer);
    tracing::info!(viewers = preview.viewers(), "preview: viewer left");
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::net::TcpStream;
    use std::time::Instant;

    use super::*;
    use crate::render::fixtures::{edge_and_background, frame, header, track};

    fn start() -> (u16, Arc<Preview>) {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("binds");
        let port = server.server_addr().to_ip().expect("ip").port();
        let preview = Arc::new(Preview::new(Vec::new()).expect("preview"));
        let http = preview.clone();
        std::thread::spawn(move || serve(&server, &http));
        (port, preview)
    }

    fn connect(port: u16, path: &str) -> TcpStream {
        let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connects");
        c.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(c, "GET {path} HTTP/1.0\r\n\r\n").expect("request");
        c
    }

    /// Sends one HTTP/1.0 GET and reads until `until` appears in the response (or it ends).
    fn get(port: u16, path: &str, until: &[u8]) -> Vec<u8> {
        let mut c = connect(port, path);
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

    fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
        hay.windows(needle.len()).position(|w| w == needle)
    }

    /// An MJPEG client: reads the stream's parts one by one.
    struct Client {
        c: TcpStream,
        buf: Vec<u8>,
    }

    impl Client {
        /// Connects and checks the response's head.
        fn new(port: u16) -> Self {
            let mut client = Self {
                c: connect(port, "/stream"),
                buf: Vec::new(),
            };
            let end = loop {
                if let Some(end) = find(&client.buf, b"\r\n\r\n") {
                    break end + 4;
                }
                client.read();
            };
            let head = String::from_utf8_lossy(&client.buf[..end]).into_owned();
            assert!(
                head.starts_with("HTTP/1.1 200 ")
                    && head.contains("multipart/x-mixed-replace; boundary=vigilframe"),
                "{head}"
            );
            client.buf.drain(..end);
            client
        }

        fn read(&mut self) {
            let mut chunk = [0u8; 8192];
            let n = self.c.read(&mut chunk).expect("the stream goes on");
            assert!(n > 0, "the stream ended");
            self.buf.extend_from_slice(&chunk[..n]);
        }

        /// The next part's JPEG.
        fn part(&mut self) -> Vec<u8> {
            loop {
                if let Some(start) = find(&self.buf, b"--vigilframe\r\n") {
                    let rest = &self.buf[start..];
                    if let Some(end) = find(rest, b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&rest[..end]).into_owned();
                        assert!(head.contains("Content-Type: image/jpeg"), "{head}");
                        let len: usize = head
                            .split("Content-Length: ")
                            .nth(1)
                            .and_then(|v| v.trim().parse().ok())
                            .expect("content length");
                        let body = start + end + 4;
                        if self.buf.len() >= body + len {
                            let jpeg = self.buf[body..body + len].to_vec();
                            self.buf.drain(..body + len);
                            return jpeg;
                        }
                    }
                }
                self.read();
            }
        }
    }

    /// Waits (at most 10 s) until `cond` holds.
    fn until(what: &str, mut cond: impl FnMut() -> bool) {
        let start = Instant::now();
        while !cond() {
            assert!(start.elapsed() < Duration::from_secs(10), "never: {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn page_snapshot_and_404_over_real_http() {
        let (port, preview) = start();
        let page = String::from_utf8_lossy(&get(port, "/", b"</body>")).into_owned();
        assert!(
            page.starts_with("HTTP/1.")
                && page.contains(" 200 ")
                && page.contains("<img src=\"/stream\""),
            "{page}"
        );
        let none = String::from_utf8_lossy(&get(port, "/frame.jpg", b"no frame yet")).into_owned();
        assert!(none.contains(" 503 "), "{none}");
        preview.on_result(vec![track()]);
        for seq in 0..5 {
            preview.on_frame(&header(seq), &frame(128));
        }
        assert_eq!(preview.rendered(), 0, "nobody asked yet");
        let snap = get(port, "/frame.jpg", b"\xff\xd9");
        let body = find(&snap, b"\r\n\r\n").expect("head ends") + 4;
        assert!(String::from_utf8_lossy(&snap[..body]).contains(" 200 "));
        let (edge, _) = edge_and_background(&snap[body..]);
        assert!(edge[0] > edge[1] + 80.0, "the box is drawn: {edge:?}");
        assert_eq!(
            preview.rendered(),
            1,
            "the snapshot rendered the latest frame"
        );
        get(port, "/frame.jpg", b"\xff\xd9");
        assert_eq!(preview.rendered(), 1, "no newer frame, nothing rendered");
        let missing = String::from_utf8_lossy(&get(port, "/nope", b"not found")).into_owned();
        assert!(missing.contains(" 404 "), "{missing}");
    }

    /// With no client, frames cost no render; a streaming client gets every frame it keeps up
    /// with, each rendered once with the tracks drawn; once it leaves, rendering stops.
    #[test]
    fn renders_only_while_a_client_streams() {
        let (port, preview) = start();
        preview.on_result(vec![track()]);
        let jpeg = frame(128);
        let mut seq = 0;
        let mut push = |n: u64| {
            for _ in 0..n {
                let shown = preview.on_frame(&header(seq), &jpeg);
                seq += 1;
                assert_eq!(shown, Some(seq), "every frame is shown");
            }
        };

        push(100);
        assert_eq!((preview.frames(), preview.rendered()), (100, 0));

        let mut a = Client::new(port);
        until("the client is counted", || preview.viewers() == 1);
        // Connecting gets the frame on display now, rendered for it.
        let (edge, _) = edge_and_background(&a.part());
        assert!(edge[0] > edge[1] + 80.0, "the box is drawn: {edge:?}");
        assert_eq!(preview.rendered(), 1);
        let mut b = Client::new(port);
        b.part();
        until("both clients are counted", || preview.viewers() == 2);
        assert_eq!(
            preview.rendered(),
            1,
            "the second client got the same render"
        );
        for _ in 0..10 {
            push(1);
            let (pa, pb) = (a.part(), b.part());
            assert_eq!(pa, pb);
        }
        assert_eq!(preview.rendered(), 11, "once per frame for two clients");

        drop((a, b));
        let left = preview.rendered();
        // A stream finds its client gone when a write fails, so the next frame or two may
        // still be rendered for it.
        until("the clients are found gone", || {
            push(1);
            std::thread::sleep(Duration::from_millis(10));
            preview.viewers() == 0
        });
        let stopped = preview.rendered();
        assert!(
            stopped - left <= 4,
            "{} renders for gone clients",
            stopped - left
        );
        push(100);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(preview.rendered(), stopped, "no client, no rendering");
        assert_eq!(preview.frames(), seq);
    }
}
