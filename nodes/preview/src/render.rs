//! The preview's core, without dora: it keeps the latest camera frame and the latest tracks as
//! they came, and renders (JPEG decode, overlays, JPEG encode) only when a viewer asks for a
//! picture. A frame nobody asks for costs a copy of its bytes, nothing more; a frame is
//! rendered at most once however many viewers ask, and a viewer slower than the camera gets
//! the newest frame, so the frames it skips are never rendered.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use vigil_msg::FrameHeader;
use vigil_track::Track;
use vigil_vision::{JpegCodec, Overlay, RgbImage, VisionError, draw_overlay, overlays};

/// JPEG quality of the rendered pictures.
const QUALITY: i32 = 80;

/// The latest frame and tracks, and the rendered picture, shared by the node's event loop
/// (`on_frame`, `on_result`) and the HTTP threads (`picture`, `wait_newer`).
#[derive(Debug)]
pub struct Preview {
    labels: Vec<String>,
    latest: Mutex<Latest>,
    fresh: Condvar,
    renderer: Mutex<Renderer>,
    rendered: AtomicU64,
    corrupt: AtomicU64,
    viewers: AtomicUsize,
}

/// What came last, untouched.
#[derive(Debug, Default)]
struct Latest {
    /// Frames taken so far, which numbers them: the latest is frame `frames`.
    frames: u64,
    seq: u64,
    jpeg: Arc<Vec<u8>>,
    tracks: Arc<Vec<Track>>,
}

#[derive(Debug)]
struct Renderer {
    codec: JpegCodec,
    img: RgbImage,
    /// The newest frame looked at (0: none), rendered or found corrupt.
    frame: u64,
    jpeg: Arc<Vec<u8>>,
}

/// A rendered picture.
#[derive(Debug, Clone)]
pub struct Picture {
    /// The newest frame when it was made: a viewer waits for a frame newer than this.
    pub frame: u64,
    /// The latest frame with the latest tracks drawn; empty until a frame could be rendered.
    /// A frame that would not decode leaves the picture before it.
    pub jpeg: Arc<Vec<u8>>,
}

/// A connected viewer, counted while it lives.
#[derive(Debug)]
pub struct Viewer<'a>(&'a Preview);

impl Drop for Viewer<'_> {
    fn drop(&mut self) {
        self.0.viewers.fetch_sub(1, Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Preview {
    pub fn new(labels: Vec<String>) -> Result<Self, VisionError> {
        Ok(Self {
            labels,
            latest: Mutex::default(),
            fresh: Condvar::new(),
            renderer: Mutex::new(Renderer {
                codec: JpegCodec::new(QUALITY)?,
                img: RgbImage::default(),
                frame: 0,
                jpeg: Arc::default(),
            }),
            rendered: AtomicU64::new(0),
            corrupt: AtomicU64::new(0),
            viewers: AtomicUsize::new(0),
        })
    }

    /// The latest result's tracks, drawn on the pictures from now on.
    pub fn on_result(&self, tracks: Vec<Track>) {
        lock(&self.latest).tracks = Arc::new(tracks);
    }

    /// Takes a camera frame as the one on display and returns how many frames have been taken
    /// so far, or `None` (counted as corrupt) when the bytes are not a JPEG. Only the bytes
    /// are kept: decoding waits until a viewer asks, so a corrupt JPEG body is found then.
    pub fn on_frame(&self, header: &FrameHeader, jpeg: &[u8]) -> Option<u64> {
        if !jpeg.starts_with(&[0xFF, 0xD8]) {
            self.corrupt.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let mut latest = lock(&self.latest);
        // Reuse the last frame's buffer unless a render is still reading it.
        match Arc::get_mut(&mut latest.jpeg) {
            Some(buf) => {
                buf.clear();
                buf.extend_from_slice(jpeg);
            }
            None => latest.jpeg = Arc::new(jpeg.to_vec()),
        }
        latest.frames += 1;
        latest.seq = header.seq;
        let frames = latest.frames;
        drop(latest);
        self.fresh.notify_all();
        Some(frames)
    }

    /// The latest frame with the latest tracks drawn, rendered now unless it already was.
    pub fn picture(&self) -> Picture {
        let mut r = lock(&self.renderer);
        let (frame, seq, jpeg, tracks) = {
            let l = lock(&self.latest);
            (l.frames, l.seq, l.jpeg.clone(), l.tracks.clone())
        };
        if frame != r.frame {
            // A frame that fails is not tried again.
            r.frame = frame;
            match r.render(&jpeg, &overlays(&tracks, &self.labels)) {
                Ok(()) => {
                    self.rendered.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    let corrupt = self.corrupt.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::warn!(seq, error = %e, corrupt, "preview: frame not rendered");
                }
            }
        }
        Picture {
            frame: r.frame,
            jpeg: r.jpeg.clone(),
        }
    }

    /// Blocks until a frame newer than `seen` has come, or `timeout` has passed; returns the
    /// newest frame's number.
    pub fn wait_newer(&self, seen: u64, timeout: Duration) -> u64 {
        let latest = lock(&self.latest);
        let (latest, _) = self
            .fresh
            .wait_timeout_while(latest, timeout, |l| l.frames <= seen)
            .unwrap_or_else(PoisonError::into_inner);
        latest.frames
    }

    /// Counts a viewer until the returned guard is dropped.
    pub fn viewer(&self) -> Viewer<'_> {
        self.viewers.fetch_add(1, Ordering::Relaxed);
        Viewer(self)
    }

    /// Viewers connected now.
    pub fn viewers(&self) -> usize {
        self.viewers.load(Ordering::Relaxed)
    }

    /// Frames taken so far (the latest frame's number).
    pub fn frames(&self) -> u64 {
        lock(&self.latest).frames
    }

    /// Frames rendered so far (decoded, drawn on and encoded).
    pub fn rendered(&self) -> u64 {
        self.rendered.load(Ordering::Relaxed)
    }

    /// Frames found not to be a readable JPEG, on arrival or when rendered.
    pub fn corrupt(&self) -> u64 {
        self.corrupt.load(Ordering::Relaxed)
    }
}

impl Renderer {
    fn render(&mut self, jpeg: &[u8], overlays: &[Overlay]) -> Result<(), VisionError> {
        self.codec.decode_into(jpeg, &mut self.img)?;
        draw_overlay(&mut self.img, overlays);
        self.jpeg = Arc::new(self.codec.encode(&self.img)?);
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    use vigil_detect::BBox;
    use vigil_msg::FrameHeader;
    use vigil_track::Track;
    use vigil_vision::{JpegCodec, RgbImage};

    pub const W: u32 = 64;
    pub const H: u32 = 48;

    /// A camera frame of one grey level.
    pub fn frame(grey: u8) -> Vec<u8> {
        let img = RgbImage {
            width: W,
            height: H,
            pixels: vec![grey; (W * H * 3) as usize],
        };
        JpegCodec::new(95)
            .expect("codec")
            .encode(&img)
            .expect("encodes")
    }

    pub fn header(seq: u64) -> FrameHeader {
        FrameHeader {
            seq,
            index: seq,
            timestamp_ns: seq * 33_333_333,
            width: W,
            height: H,
        }
    }

    /// One track of class 0, drawn in red with its left edge at x = 10..12, y = 10..40.
    pub fn track() -> Track {
        Track {
            id: 7,
            class: 0,
            score: 0.9,
            bbox: BBox {
                x1: 10.0,
                y1: 10.0,
                x2: 50.0,
                y2: 40.0,
            },
            hits: 3,
            misses: 0,
            lost: 0,
        }
    }

    /// Mean (red, green) of the box's left edge, and of a pixel away from the box, in a
    /// rendered picture.
    pub fn edge_and_background(jpeg: &[u8]) -> ([f32; 2], [f32; 2]) {
        let img = JpegCodec::new(95)
            .expect("codec")
            .decode(jpeg)
            .expect("decodes");
        assert_eq!((img.width, img.height), (W, H));
        let px = |x: u32, y: u32| {
            let i = ((y * W + x) * 3) as usize;
            [f32::from(img.pixels[i]), f32::from(img.pixels[i + 1])]
        };
        let edge = (16..36)
            .map(|y| px(10, y))
            .fold([0.0; 2], |a, p| [a[0] + p[0] / 20.0, a[1] + p[1] / 20.0]);
        (edge, px(30, 25))
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{edge_and_background, frame, header, track};
    use super::*;

    #[test]
    fn frames_nobody_asks_for_are_never_rendered() {
        let p = Preview::new(Vec::new()).expect("preview");
        p.on_result(vec![track()]);
        let jpeg = frame(128);
        for seq in 0..50 {
            assert_eq!(p.on_frame(&header(seq), &jpeg), Some(seq + 1));
        }
        assert_eq!((p.frames(), p.rendered(), p.corrupt()), (50, 0, 0));
    }

    #[test]
    fn a_picture_is_the_newest_frame_rendered_once_with_the_latest_tracks() {
        let p = Preview::new(Vec::new()).expect("preview");
        assert!(p.picture().jpeg.is_empty(), "no frame, no picture");
        assert_eq!(p.rendered(), 0);
        for (seq, grey) in [(0, 40), (1, 80), (2, 200)] {
            p.on_frame(&header(seq), &frame(grey));
        }
        p.on_result(vec![track()]);
        let first = p.picture();
        assert_eq!((first.frame, p.rendered()), (3, 1), "only the newest of 3");
        let (edge, background) = edge_and_background(&first.jpeg);
        assert!((background[0] - 200.0).abs() < 8.0, "{background:?}");
        assert!(edge[0] > edge[1] + 80.0, "the red box is drawn: {edge:?}");
        let again = p.picture();
        assert!(Arc::ptr_eq(&first.jpeg, &again.jpeg));
        assert_eq!(p.rendered(), 1, "asking again renders nothing new");
    }

    #[test]
    fn not_a_jpeg_is_not_shown_and_a_corrupt_body_keeps_the_last_picture() {
        let p = Preview::new(Vec::new()).expect("preview");
        assert_eq!(p.on_frame(&header(0), b"garbage"), None);
        assert_eq!((p.frames(), p.corrupt()), (0, 1));
        p.on_frame(&header(1), &frame(90));
        let good = p.picture();
        let mut torn = frame(90);
        torn.truncate(20);
        assert_eq!(p.on_frame(&header(2), &torn), Some(2));
        let after = p.picture();
        assert_eq!((after.frame, p.rendered(), p.corrupt()), (2, 1, 2));
        assert!(Arc::ptr_eq(&good.jpeg, &after.jpeg));
        p.picture();
        assert_eq!(p.corrupt(), 2, "a corrupt frame is tried once");
    }
}
