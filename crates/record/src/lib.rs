//! vigil recordings, format v1: an MCAP file that Foxglove opens unchanged.
//!
//! - One channel, [`TOPIC`], of `foxglove.CompressedImage` (protobuf, format `jpeg`): each
//!   message holds a camera frame's bytes untouched. The MCAP message `sequence` is the
//!   camera's sequence number; `log_time` and `publish_time` are the capture time in ns, and so
//!   is the image's own `timestamp`.
//! - One metadata record, [`METADATA_NAME`], written before any frame: format version, camera,
//!   width, height, fps, software version.
//! - Unchunked, so every frame is a complete record on disk as soon as it is flushed: a
//!   recorder that is killed leaves a file whose frames up to the tear all read back. The
//!   reader reports such a file as torn instead of failing.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use foxglove::schemas::{CompressedImage, Timestamp};
use foxglove::{Decode, Encode};
use mcap::records::{MessageHeader, Metadata, Record};

/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// The channel camera frames are written to.
pub const TOPIC: &str = "/camera/image";
/// The name of the metadata record describing the recording.
pub const METADATA_NAME: &str = "vigil.recording";

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a readable MCAP file: {source}")]
    Mcap {
        path: PathBuf,
        source: mcap::McapError,
    },
    #[error("{path}: no `{METADATA_NAME}` metadata record; not a vigil recording")]
    NoMetadata { path: PathBuf },
    #[error("{path}: recording format version {found}, this vigil reads version {supported}")]
    UnsupportedVersion {
        path: PathBuf,
        found: String,
        supported: u32,
    },
    #[error("{path}: metadata key `{key}` is `{value}`, expected {expected}")]
    BadMetadata {
        path: PathBuf,
        key: &'static str,
        value: String,
        expected: &'static str,
    },
    #[error("{path}: frame {index} is not a foxglove.CompressedImage: {detail}")]
    BadFrame {
        path: PathBuf,
        index: usize,
        detail: String,
    },
    #[error("{path}: malformed MCAP record at byte {offset}: {detail}")]
    BadRecord {
        path: PathBuf,
        offset: usize,
        detail: String,
    },
}

/// A frame time in ns as a protobuf timestamp (what the frames and their annotations carry).
#[must_use]
pub fn timestamp(ns: u64) -> Timestamp {
    Timestamp::new((ns / 1_000_000_000) as u32, (ns % 1_000_000_000) as u32)
}

/// Time from the first frame to the last, in nanoseconds.
fn span(first: Option<u64>, last: Option<u64>) -> u64 {
    match (first, last) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => 0,
    }
}

/// What a recording says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingInfo {
    /// Where the frames came from: a device path, or the imported folder.
    pub camera: String,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    /// The software and version that wrote the file.
    pub software: String,
}

impl RecordingInfo {
    fn to_metadata(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("format_version".to_owned(), FORMAT_VERSION.to_string()),
            ("camera".to_owned(), self.camera.clone()),
            ("width".to_owned(), self.width.to_string()),
            ("height".to_owned(), self.height.to_string()),
            ("fps".to_owned(), self.fps.to_string()),
            ("software".to_owned(), self.software.clone()),
        ])
    }

    fn from_metadata(path: &Path, m: &BTreeMap<String, String>) -> Result<Self, RecordError> {
        let get = |key: &'static str| m.get(key).map_or("", String::as_str);
        let version = get("format_version");
        if version != FORMAT_VERSION.to_string() {
            return Err(RecordError::UnsupportedVersion {
                path: path.to_owned(),
                found: version.to_owned(),
                supported: FORMAT_VERSION,
            });
        }
        let parse = |key: &'static str, expected| {
            get(key)
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| RecordError::BadMetadata {
                    path: path.to_owned(),
                    key,
                    value: get(key).to_owned(),
                    expected,
                })
        };
        Ok(Self {
            camera: get("camera").to_owned(),
            width: parse("width", "a pixel count")? as u32,
            height: parse("height", "a pixel count")? as u32,
            fps: parse("fps", "a frame rate")?,
            software: get("software").to_owned(),
        })
    }
}

/// One recorded camera frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedFrame {
    pub seq: u32,
    pub timestamp_ns: u64,
    pub jpeg: Vec<u8>,
}

/// Appends frames to a new recording.
pub struct RecordingWriter {
    path: PathBuf,
    mcap: mcap::Writer<BufWriter<File>>,
    channel: u16,
    frames: u64,
}

impl std::fmt::Debug for RecordingWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingWriter")
            .field("path", &self.path)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl RecordingWriter {
    pub fn create(path: &Path, info: &RecordingInfo) -> Result<Self, RecordError> {
        let io = |source| RecordError::Io {
            path: path.to_owned(),
            source,
        };
        let mcap_err = |source| RecordError::Mcap {
            path: path.to_owned(),
            source,
        };
        let file = BufWriter::new(File::create(path).map_err(io)?);
        let opts = mcap::WriteOptions::new()
            .use_chunks(false)
            .profile("")
            .library(info.software.clone());
        let mut mcap = opts.create(file).map_err(mcap_err)?;
        mcap.write_metadata(&Metadata {
            name: METADATA_NAME.to_owned(),
            metadata: info.to_metadata(),
        })
        .map_err(mcap_err)?;
        let mut w = Self {
            path: path.to_owned(),
            mcap,
            channel: 0,
            frames: 0,
        };
        w.channel = w.add_foxglove_channel::<CompressedImage>(TOPIC)?;
        w.mcap.flush().map_err(mcap_err)?;
        Ok(w)
    }

    /// Appends one frame; it is on disk once this returns.
    pub fn write_frame(&mut self, frame: &RecordedFrame) -> Result<(), RecordError> {
        let image = CompressedImage {
            timestamp: Some(timestamp(frame.timestamp_ns)),
            frame_id: "camera".to_owned(),
            data: frame.jpeg.clone().into(),
            format: "jpeg".to_owned(),
        };
        let mut buf = Vec::with_capacity(frame.jpeg.len() + 64);
        image.encode(&mut buf).map_err(|e| RecordError::BadFrame {
            path: self.path.clone(),
            index: self.frames as usize,
            detail: e.to_string(),
        })?;
        self.write_message(self.channel, frame.seq, frame.timestamp_ns, &buf)?;
        self.mcap.flush().map_err(|source| RecordError::Mcap {
            path: self.path.clone(),
            source,
        })?;
        self.frames += 1;
        Ok(())
    }

    /// Adds a channel of foxglove messages of type `T` beside the frames (e.g.
    /// `foxglove.ImageAnnotations`); the writer of an annotated copy uses it.
    pub fn add_foxglove_channel<T: Encode>(&mut self, topic: &str) -> Result<u16, RecordError> {
        let mcap_err = |source| RecordError::Mcap {
            path: self.path.clone(),
            source,
        };
        let schema = T::get_schema().ok_or_else(|| RecordError::BadMetadata {
            path: self.path.clone(),
            key: "schema",
            value: topic.to_owned(),
            expected: "a foxglove message type with a schema",
        })?;
        let schema_id = self
            .mcap
            .add_schema(&schema.name, &schema.encoding, &schema.data)
            .map_err(mcap_err)?;
        self.mcap
            .add_channel(
                schema_id,
                topic,
                &T::get_message_encoding(),
                &BTreeMap::new(),
            )
            .map_err(mcap_err)
    }

    /// Adds a channel of JSON messages described by a JSON Schema.
    pub fn add_json_channel(
        &mut self,
        topic: &str,
        schema_name: &str,
        json_schema: &str,
    ) -> Result<u16, RecordError> {
        let mcap_err = |source| RecordError::Mcap {
            path: self.path.clone(),
            source,
        };
        let schema_id = self
            .mcap
            .add_schema(schema_name, "jsonschema", json_schema.as_bytes())
            .map_err(mcap_err)?;
        self.mcap
            .add_channel(schema_id, topic, "json", &BTreeMap::new())
            .map_err(mcap_err)
    }

    /// Writes one message on a channel added above, stamped like the frame it belongs to.
    pub fn write_message(
        &mut self,
        channel: u16,
        seq: u32,
        timestamp_ns: u64,
        data: &[u8],
    ) -> Result<(), RecordError> {
        let header = MessageHeader {
            channel_id: channel,
            sequence: seq,
            log_time: timestamp_ns,
            publish_time: timestamp_ns,
        };
        self.mcap
            .write_to_known_channel(&header, data)
            .map_err(|source| RecordError::Mcap {
                path: self.path.clone(),
                source,
            })
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    #[must_use]
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Writes the summary and footer. A file without them is still readable (see [`Recording`]).
    pub fn finish(mut self) -> Result<u64, RecordError> {
        let mcap_err = |source| RecordError::Mcap {
            path: self.path.clone(),
            source,
        };
        self.mcap.finish().map_err(mcap_err)?;
        let mut inner = self.mcap.into_inner();
        inner.flush().map_err(|source| RecordError::Io {
            path: self.path.clone(),
            source,
        })?;
        Ok(self.frames)
    }
}

/// Where one frame lies in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameEntry {
    pub seq: u32,
    pub timestamp_ns: u64,
    /// The message's data (an encoded `foxglove.CompressedImage`): offset and length.
    offset: u64,
    len: u64,
}

/// Records larger than this, other than messages, are not read (a vigil recording's are a few
/// hundred bytes); messages larger than this are bad frames.
const MAX_RECORD: u64 = 64 << 20;

/// A recording read as it is needed: opening it scans the file once for its metadata and
/// where each frame lies (24 bytes per frame kept), and each frame is read from the file
/// when asked for, so memory does not grow with the footage. A file whose writer was killed
/// reads up to the tear, reported as `torn`.
pub struct RecordingReader<R> {
    path: PathBuf,
    source: R,
    pub info: RecordingInfo,
    pub frames: Vec<FrameEntry>,
    /// The file ends in the middle of a record or without its footer (its writer was
    /// killed); every complete frame before the tear is in `frames`.
    pub torn: bool,
    pub bytes: u64,
    /// Messages on a channel the file never declared before them (malformed; not frames).
    pub orphans: u64,
}

impl<R> std::fmt::Debug for RecordingReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingReader")
            .field("path", &self.path)
            .field("info", &self.info)
            .field("frames", &self.frames.len())
            .field("torn", &self.torn)
            .finish_non_exhaustive()
    }
}

impl RecordingReader<std::io::BufReader<File>> {
    pub fn open(path: &Path) -> Result<Self, RecordError> {
        let file = File::open(path).map_err(|source| RecordError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::new(path, std::io::BufReader::new(file))
    }
}

/// Reads as much of `buf` as the source has; returns how much that was.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

impl<R: Read + Seek> RecordingReader<R> {
    /// Scans `source` (named `path` in errors).
    pub fn new(path: &Path, mut source: R) -> Result<Self, RecordError> {
        let io = |source| RecordError::Io {
            path: path.to_owned(),
            source,
        };
        let bad = |offset: u64, detail: String| RecordError::BadRecord {
            path: path.to_owned(),
            offset: offset as usize,
            detail,
        };
        let bytes = source.seek(SeekFrom::End(0)).map_err(io)?;
        source.seek(SeekFrom::Start(0)).map_err(io)?;
        let mut magic = [0u8; 8];
        if read_up_to(&mut source, &mut magic).map_err(io)? < 8 || magic != mcap::MAGIC {
            return Err(RecordError::Mcap {
                path: path.to_owned(),
                source: mcap::McapError::BadMagic,
            });
        }
        let (mut info, mut channels, mut frames) = (None, Vec::new(), Vec::new());
        // Every channel declared so far (frames are on `channels`, the others carry
        // annotations and the like).
        let (mut declared, mut orphans) = (Vec::new(), 0u64);
        let (mut at, mut torn, mut footer) = (8u64, false, false);
        loop {
            let mut head = [0u8; 9];
            let got = read_up_to(&mut source, &mut head).map_err(io)?;
            if got < 9 {
                // At the very end, or (torn) in the middle of a record's opening.
                torn |= got > 0;
                break;
            }
            let op = head[0];
            let mut len = [0u8; 8];
            len.copy_from_slice(&head[1..]);
            let len = u64::from_le_bytes(len);
            let body_at = at + 9;
            let Some(end) = body_at.checked_add(len).filter(|&e| e <= bytes) else {
                torn = true;
                break;
            };
            match op {
                mcap::records::op::MESSAGE => {
                    // channel u16, sequence u32, log_time u64, publish_time u64, data.
                    if len < 22 {
                        return Err(bad(at, format!("message record of {len} bytes")));
                    }
                    let mut h = [0u8; 22];
                    source.read_exact(&mut h).map_err(io)?;
                    let channel = u16::from_le_bytes([h[0], h[1]]);
                    if !declared.contains(&channel) {
                        orphans += 1;
                    } else if channels.contains(&channel) {
                        let mut seq = [0u8; 4];
                        seq.copy_from_slice(&h[2..6]);
                        let mut t = [0u8; 8];
                        t.copy_from_slice(&h[6..14]);
                        frames.push(FrameEntry {
                            seq: u32::from_le_bytes(seq),
                            timestamp_ns: u64::from_le_bytes(t),
                            offset: body_at + 22,
                            len: len - 22,
                        });
                    }
                }
                mcap::records::op::METADATA | mcap::records::op::CHANNEL => {
                    if len > MAX_RECORD {
                        return Err(bad(
                            at,
                            format!("a metadata or channel record of {len} bytes"),
                        ));
                    }
                    let mut body = vec![0u8; len as usize];
                    source.read_exact(&mut body).map_err(io)?;
                    // Third-party parsing: should it panic on some malformed record, that is
                    // this file's error, not the end of the process.
                    let record = std::panic::catch_unwind(|| {
                        mcap::parse_record(op, &body).map(mcap::records::Record::into_owned)
                    })
                    .map_err(|_| bad(at, "the MCAP reader failed on it".to_owned()))?
                    .map_err(|e| bad(at, e.to_string()))?;
                    match record {
                        Record::Metadata(m) if m.name == METADATA_NAME => {
                            info = Some(RecordingInfo::from_metadata(path, &m.metadata)?);
                        }
                        Record::Channel(c) => {
                            declared.push(c.id);
                            if c.topic == TOPIC {
                                channels.push(c.id);
                            }
                        }
                        _ => {}
                    }
                }
                mcap::records::op::CHUNK => {
                    return Err(bad(
                        at,
                        "a chunk: vigil recordings are unchunked (format v1); this file was \
                         written by another tool"
                            .to_owned(),
                    ));
                }
                mcap::records::op::FOOTER => {
                    // The last record; the closing magic follows it.
                    footer = true;
                    break;
                }
                _ => {}
            }
            source.seek(SeekFrom::Start(end)).map_err(io)?;
            at = end;
        }
        let info = info.ok_or_else(|| RecordError::NoMetadata {
            path: path.to_owned(),
        })?;
        Ok(Self {
            path: path.to_owned(),
            source,
            info,
            frames,
            torn: torn || !footer,
            bytes,
            orphans,
        })
    }

    /// Frame `index` (in file order), read from the file.
    pub fn frame(&mut self, index: usize) -> Result<RecordedFrame, RecordError> {
        let bad = |detail: String| RecordError::BadFrame {
            path: self.path.clone(),
            index,
            detail,
        };
        let e = *self
            .frames
            .get(index)
            .ok_or_else(|| bad(format!("the recording has {} frames", self.frames.len())))?;
        if e.len > MAX_RECORD {
            return Err(bad(format!("{} bytes", e.len)));
        }
        let mut data = vec![0u8; e.len as usize];
        self.source
            .seek(SeekFrom::Start(e.offset))
            .and_then(|_| self.source.read_exact(&mut data))
            .map_err(|source| RecordError::Io {
                path: self.path.clone(),
                source,
            })?;
        let image = CompressedImage::decode(&*data).map_err(|e| bad(e.to_string()))?;
        if image.format != "jpeg" {
            return Err(bad(format!("format `{}`, expected `jpeg`", image.format)));
        }
        Ok(RecordedFrame {
            seq: e.seq,
            timestamp_ns: e.timestamp_ns,
            jpeg: image.data.to_vec(),
        })
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Time from the first frame to the last, in nanoseconds.
    #[must_use]
    pub fn duration_ns(&self) -> u64 {
        span(
            self.frames.first().map(|f| f.timestamp_ns),
            self.frames.last().map(|f| f.timestamp_ns),
        )
    }
}

/// A recording read into memory, every frame (small files: tests, benchmarks; replays use
/// [`RecordingReader`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub info: RecordingInfo,
    pub frames: Vec<RecordedFrame>,
    /// See [`RecordingReader::torn`].
    pub torn: bool,
    pub bytes: u64,
}

impl Recording {
    pub fn open(path: &Path) -> Result<Self, RecordError> {
        Self::read_all(RecordingReader::open(path)?)
    }

    pub fn parse(path: &Path, data: &[u8]) -> Result<Self, RecordError> {
        Self::read_all(RecordingReader::new(path, std::io::Cursor::new(data))?)
    }

    fn read_all<R: Read + Seek>(mut r: RecordingReader<R>) -> Result<Self, RecordError> {
        let frames = (0..r.frames.len())
            .map(|i| r.frame(i))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            info: r.info,
            frames,
            torn: r.torn,
            bytes: r.bytes,
        })
    }

    /// Time from the first frame to the last, in nanoseconds.
    #[must_use]
    pub fn duration_ns(&self) -> u64 {
        span(
            self.frames.first().map(|f| f.timestamp_ns),
            self.frames.last().map(|f| f.timestamp_ns),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> RecordingInfo {
        RecordingInfo {
            camera: "/dev/video0".into(),
            width: 4,
            height: 2,
            fps: 30.0,
            software: "vigil test".into(),
        }
    }

    fn frame(i: u32) -> RecordedFrame {
        RecordedFrame {
            seq: i,
            timestamp_ns: 1_000_000_000 + u64::from(i) * 33_333_333,
            jpeg: vec![0xFF, 0xD8, i as u8, 0xFF, 0xD9],
        }
    }

    fn write(path: &Path, n: u32, finish: bool) {
        let mut w = RecordingWriter::create(path, &info()).expect("create");
        for i in 0..n {
            w.write_frame(&frame(i)).expect("write");
        }
        if finish {
            assert_eq!(w.finish().expect("finish"), u64::from(n));
        } else {
            // As if the process were killed: no summary, no footer, nothing more written.
            std::mem::forget(w);
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.mcap");
        write(&path, 5, true);
        let rec = Recording::open(&path).expect("opens");
        assert_eq!(rec.info, info());
        assert_eq!(rec.frames, (0..5).map(frame).collect::<Vec<_>>());
        assert!(!rec.torn);
        assert_eq!(rec.duration_ns(), 4 * 33_333_333);
    }

    #[test]
    fn torn_file_keeps_every_complete_frame() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("torn.mcap");
        write(&path, 6, false); // dropped unfinished: no summary, no footer
        let full = std::fs::read(&path).expect("read");
        let rec = Recording::parse(&path, &full).expect("unfinished file reads");
        assert!(rec.torn);
        assert_eq!(rec.frames.len(), 6);
        // Cut into the last frame's record: the five before it survive.
        let cut = Recording::parse(&path, &full[..full.len() - 3]).expect("torn file reads");
        assert!(cut.torn);
        assert_eq!(cut.frames, (0..5).map(frame).collect::<Vec<_>>());
    }

    #[test]
    fn garbage_and_foreign_files_are_named_errors() {
        let p = Path::new("x.mcap");
        let err = Recording::parse(p, b"not an mcap file at all").expect_err("garbage");
        assert!(err.to_string().contains("x.mcap"), "{err}");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("plain.mcap");
        let mut w = mcap::Writer::new(std::io::BufWriter::new(
            File::create(&path).expect("create"),
        ))
        .expect("writer");
        w.finish().expect("finish");
        drop(w);
        let err = Recording::open(&path).expect_err("no metadata");
        assert!(err.to_string().contains(METADATA_NAME), "{err}");
    }

    /// Found by fuzzing (`ci/fuzz`, target `mcap`): an attachment record shorter than its own
    /// header made the MCAP reader panic on a slice. Attachments are now skipped unread; the
    /// file is still refused, by name.
    #[test]
    fn a_short_attachment_is_an_error_naming_the_file_not_a_panic() {
        let crash = include_bytes!(
            "../../../fuzz/regressions/mcap/crash-22fb1a3907c737c3cde958dbd6f0443e15c4f7e8"
        );
        let err = Recording::parse(Path::new("fuzzed.mcap"), crash).expect_err("malformed");
        assert!(
            matches!(err, RecordError::NoMetadata { .. })
                && err.to_string().starts_with("fuzzed.mcap: "),
            "{err}"
        );
    }

    /// Appends one raw record (`opcode, length, body`) to `data`.
    fn record(data: &mut Vec<u8>, op: u8, len: u64, body: &[u8]) {
        data.push(op);
        data.extend_from_slice(&len.to_le_bytes());
        data.extend_from_slice(body);
    }

    /// The file's bytes up to (not including) its first message record.
    fn head_of(path: &Path) -> Vec<u8> {
        let data = std::fs::read(path).expect("read");
        let r = RecordingReader::open(path).expect("opens");
        // The first frame's data starts 22 bytes into its message body, after the 9-byte
        // record opening.
        data[..r.frames[0].offset as usize - 22 - 9].to_vec()
    }

    #[test]
    fn lengths_past_the_end_and_cut_openings_are_tears_not_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.mcap");
        write(&path, 2, true);
        let head = head_of(&path);
        for tail in [
            // A message claiming u64::MAX bytes, one claiming one byte past the end, a record
            // opening cut after 4 bytes.
            {
                let mut d = head.clone();
                record(&mut d, mcap::records::op::MESSAGE, u64::MAX, &[0; 30]);
                d
            },
            {
                let mut d = head.clone();
                record(&mut d, mcap::records::op::MESSAGE, 31, &[0; 30]);
                d
            },
            {
                let mut d = head.clone();
                d.extend_from_slice(&[mcap::records::op::MESSAGE, 1, 0, 0]);
                d
            },
        ] {
            let r = RecordingReader::new(&path, std::io::Cursor::new(&tail)).expect("reads");
            assert!(r.torn);
            assert!(r.frames.is_empty());
        }
    }

    #[test]
    fn a_message_on_an_undeclared_channel_is_counted_not_taken_for_a_frame() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.mcap");
        write(&path, 1, true);
        let mut d = head_of(&path);
        // channel 77 (never declared), sequence 5, times 0: 22 bytes, then 3 bytes of data.
        let mut body = vec![77, 0, 5, 0, 0, 0];
        body.extend_from_slice(&[0; 16]);
        body.extend_from_slice(b"abc");
        record(&mut d, mcap::records::op::MESSAGE, body.len() as u64, &body);
        let r = RecordingReader::new(&path, std::io::Cursor::new(&d)).expect("reads");
        assert_eq!((r.frames.len(), r.orphans), (0, 1));
    }

    #[test]
    fn a_chunked_file_and_a_short_message_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.mcap");
        write(&path, 1, true);
        let head = head_of(&path);
        let mut chunked = head.clone();
        record(&mut chunked, mcap::records::op::CHUNK, 4, &[0; 4]);
        let err = RecordingReader::new(&path, std::io::Cursor::new(&chunked)).expect_err("chunk");
        assert!(err.to_string().contains("unchunked"), "{err}");
        let mut short = head;
        record(&mut short, mcap::records::op::MESSAGE, 5, &[0; 5]);
        let err = RecordingReader::new(&path, std::io::Cursor::new(&short)).expect_err("short");
        assert!(matches!(err, RecordError::BadRecord { .. }), "{err}");
        assert!(
            err.to_string().starts_with(&path.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn frames_are_read_from_the_file_when_asked_for() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.mcap");
        write(&path, 5, true);
        let mut r = RecordingReader::open(&path).expect("opens");
        assert_eq!((r.frames.len(), r.torn), (5, false));
        assert_eq!(r.frames[3].seq, 3);
        // Any order, any number of times (a resend reads a frame again).
        for i in [4, 0, 4, 2] {
            assert_eq!(r.frame(i).expect("reads"), frame(i as u32));
        }
        let err = r.frame(5).expect_err("no such frame");
        assert!(err.to_string().contains("has 5 frames"), "{err}");
    }

    #[test]
    fn a_frame_that_is_not_an_image_is_an_error_naming_it_when_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.mcap");
        write(&path, 3, true);
        let mut data = std::fs::read(&path).expect("read");
        let r = RecordingReader::open(&path).expect("opens");
        let e = r.frames[1];
        // Corrupt the second frame's protobuf: a field tag of 0 is invalid.
        for b in &mut data[e.offset as usize..(e.offset + e.len) as usize] {
            *b = 0;
        }
        let mut r = RecordingReader::new(&path, std::io::Cursor::new(&data)).expect("scans");
        assert!(r.frame(0).is_ok() && r.frame(2).is_ok());
        let err = r.frame(1).expect_err("corrupt");
        assert!(
            matches!(err, RecordError::BadFrame { index: 1, .. }),
            "{err}"
        );
    }
}
