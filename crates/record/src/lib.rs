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

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
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

/// Record framing (`opcode u8, length u64 LE, body`) checked before the MCAP reader sees the
/// bytes, for what that reader would panic on instead of returning an error (found by
/// fuzzing: an attachment whose body is shorter than its own header and CRC). A record that
/// runs past the end is left to the reader: that is a torn file, not a malformed one.
fn check_records(path: &Path, data: &[u8]) -> Result<(), RecordError> {
    const MAGIC: usize = 8;
    let mut at = MAGIC;
    while let Some(head) = data.get(at..at + 9) {
        let opcode = head[0];
        let mut len = [0u8; 8];
        len.copy_from_slice(&head[1..9]);
        let len = u64::from_le_bytes(len);
        let Some(body) = usize::try_from(len)
            .ok()
            .and_then(|l| data.get(at + 9..(at + 9).checked_add(l)?))
        else {
            return Ok(());
        };
        if opcode == mcap::records::op::ATTACHMENT {
            // log_time u64, create_time u64, name, media_type (u32 length + bytes each),
            // data length u64, data, crc u32.
            let string = |from: usize| -> Option<usize> {
                let n = u32::from_le_bytes(body.get(from..from + 4)?.try_into().ok()?);
                from.checked_add(4)?.checked_add(n as usize)
            };
            let header = string(16)
                .and_then(string)
                .and_then(|end| end.checked_add(8));
            if header.is_none_or(|h| h.saturating_add(4) > body.len()) {
                return Err(RecordError::BadRecord {
                    path: path.to_owned(),
                    offset: at,
                    detail: format!(
                        "attachment of {} bytes is shorter than its own header",
                        body.len()
                    ),
                });
            }
        }
        at += 9 + body.len();
    }
    Ok(())
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
        let schema = CompressedImage::get_schema().map_or_else(
            || {
                (
                    String::from("foxglove.CompressedImage"),
                    String::new(),
                    Cow::Borrowed(&[][..]),
                )
            },
            |s| (s.name, s.encoding, s.data),
        );
        let schema_id = mcap
            .add_schema(&schema.0, &schema.1, &schema.2)
            .map_err(mcap_err)?;
        let encoding = CompressedImage::get_message_encoding();
        let channel = mcap
            .add_channel(schema_id, TOPIC, &encoding, &BTreeMap::new())
            .map_err(mcap_err)?;
        mcap.flush().map_err(mcap_err)?;
        Ok(Self {
            path: path.to_owned(),
            mcap,
            channel,
            frames: 0,
        })
    }

    /// Appends one frame; it is on disk once this returns.
    pub fn write_frame(&mut self, frame: &RecordedFrame) -> Result<(), RecordError> {
        let mcap_err = |source| RecordError::Mcap {
            path: self.path.clone(),
            source,
        };
        let ts = frame.timestamp_ns;
        let image = CompressedImage {
            timestamp: Some(Timestamp::new(
                (ts / 1_000_000_000) as u32,
                (ts % 1_000_000_000) as u32,
            )),
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
        let header = MessageHeader {
            channel_id: self.channel,
            sequence: frame.seq,
            log_time: ts,
            publish_time: ts,
        };
        self.mcap
            .write_to_known_channel(&header, &buf)
            .map_err(mcap_err)?;
        self.mcap.flush().map_err(mcap_err)?;
        self.frames += 1;
        Ok(())
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

/// A recording read into memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    pub info: RecordingInfo,
    pub frames: Vec<RecordedFrame>,
    /// The file ends in the middle of a record (its writer was killed); every complete frame
    /// before the tear is in `frames`.
    pub torn: bool,
    pub bytes: u64,
}

impl Recording {
    pub fn open(path: &Path) -> Result<Self, RecordError> {
        let data = std::fs::read(path).map_err(|source| RecordError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &data)
    }

    pub fn parse(path: &Path, data: &[u8]) -> Result<Self, RecordError> {
        check_records(path, data)?;
        // The reader is third-party code: should it still panic on some malformed input, that
        // is this file's error, not the end of the process.
        std::panic::catch_unwind(|| Self::read(path, data)).unwrap_or_else(|_| {
            Err(RecordError::BadRecord {
                path: path.to_owned(),
                offset: 0,
                detail: "the MCAP reader failed on it".to_owned(),
            })
        })
    }

    fn read(path: &Path, data: &[u8]) -> Result<Self, RecordError> {
        let mcap_err = |source| RecordError::Mcap {
            path: path.to_owned(),
            source,
        };
        let reader = mcap::read::LinearReader::new_with_options(
            data,
            mcap::read::Options::IgnoreEndMagic.into(),
        )
        .map_err(mcap_err)?;
        let mut info = None;
        let mut image_channels = Vec::new();
        let mut frames = Vec::new();
        let mut torn = false;
        let mut footer = false;
        for record in reader {
            let Ok(record) = record else {
                torn = true;
                break;
            };
            match record {
                Record::Metadata(m) if m.name == METADATA_NAME => {
                    info = Some(RecordingInfo::from_metadata(path, &m.metadata)?);
                }
                Record::Channel(c) if c.topic == TOPIC => image_channels.push(c.id),
                Record::Message { header, data } if image_channels.contains(&header.channel_id) => {
                    let bad = |detail: String| RecordError::BadFrame {
                        path: path.to_owned(),
                        index: frames.len(),
                        detail,
                    };
                    let image = CompressedImage::decode(&*data).map_err(|e| bad(e.to_string()))?;
                    if image.format != "jpeg" {
                        return Err(bad(format!("format `{}`, expected `jpeg`", image.format)));
                    }
                    frames.push(RecordedFrame {
                        seq: header.sequence,
                        timestamp_ns: header.log_time,
                        jpeg: image.data.to_vec(),
                    });
                }
                Record::Footer(_) => footer = true,
                _ => {}
            }
        }
        let info = info.ok_or_else(|| RecordError::NoMetadata {
            path: path.to_owned(),
        })?;
        Ok(Self {
            info,
            frames,
            torn: torn || !footer,
            bytes: data.len() as u64,
        })
    }

    /// Time from the first frame to the last, in nanoseconds.
    #[must_use]
    pub fn duration_ns(&self) -> u64 {
        match (self.frames.first(), self.frames.last()) {
            (Some(a), Some(b)) => b.timestamp_ns.saturating_sub(a.timestamp_ns),
            _ => 0,
        }
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
    /// header made the MCAP reader panic on a slice.
    #[test]
    fn a_short_attachment_is_an_error_naming_the_file_not_a_panic() {
        let crash = include_bytes!(
            "../../../fuzz/regressions/mcap/crash-22fb1a3907c737c3cde958dbd6f0443e15c4f7e8"
        );
        let err = Recording::parse(Path::new("fuzzed.mcap"), crash).expect_err("malformed");
        let text = err.to_string();
        assert!(
            matches!(err, RecordError::BadRecord { .. }) && text.starts_with("fuzzed.mcap: "),
            "{text}"
        );
        assert!(text.contains("attachment"), "{text}");
    }
}
