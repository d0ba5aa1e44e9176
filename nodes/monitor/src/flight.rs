//! The flight recorder: the last seconds of camera frames in a ring; on a fault, those from
//! `before` ahead of it up to `after` past it are written as a normal recording, which
//! `vigil replay` plays like any other.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use vigil_msg::FrameHeader;
use vigil_record::{RecordError, RecordedFrame, RecordingInfo, RecordingWriter};

/// A recording still taking frames.
struct Active {
    writer: RecordingWriter,
    until_ns: u64,
}

pub struct FlightRecorder {
    dir: PathBuf,
    before_ns: u64,
    after_ns: u64,
    /// Frames kept: `before` plus the time a fault may take to be known.
    keep_ns: u64,
    ring: VecDeque<(FrameHeader, Vec<u8>)>,
    active: Vec<Active>,
}

impl std::fmt::Debug for FlightRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlightRecorder")
            .field("dir", &self.dir)
            .field("ring", &self.ring.len())
            .field("active", &self.active.len())
            .finish_non_exhaustive()
    }
}

/// How late a fault may be reported and still find its frames in the ring.
const REPORT_SLACK_NS: u64 = 5_000_000_000;

impl FlightRecorder {
    #[must_use]
    pub fn new(dir: &Path, before_ns: u64, after_ns: u64) -> Self {
        Self {
            dir: dir.to_owned(),
            before_ns,
            after_ns,
            keep_ns: before_ns + REPORT_SLACK_NS,
            ring: VecDeque::new(),
            active: Vec::new(),
        }
    }

    /// A camera frame: into the ring and every open recording. Returns the recordings this
    /// frame completed.
    pub fn frame(
        &mut self,
        h: FrameHeader,
        jpeg: &[u8],
    ) -> Vec<Result<(PathBuf, u64), RecordError>> {
        let mut done = Vec::new();
        let mut i = 0;
        while i < self.active.len() {
            let a = &mut self.active[i];
            let wrote = a.writer.write_frame(&recorded(&h, jpeg.to_vec()));
            if wrote.is_err() || h.timestamp_ns >= a.until_ns {
                let a = self.active.swap_remove(i);
                let path = a.writer.path().to_owned();
                done.push(wrote.and_then(|()| a.writer.finish().map(|n| (path, n))));
            } else {
                i += 1;
            }
        }
        while self
            .ring
            .front()
            .is_some_and(|(f, _)| f.timestamp_ns + self.keep_ns < h.timestamp_ns)
        {
            self.ring.pop_front();
        }
        self.ring.push_back((h, jpeg.to_vec()));
        done
    }

    /// Starts the recording of a fault at `fault_ts_ns`, named `name`; writes what the ring
    /// holds of the time before it at once.
    pub fn fault(&mut self, name: &str, fault_ts_ns: u64) -> Result<PathBuf, RecordError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| RecordError::Io {
            path: self.dir.clone(),
            source: e,
        })?;
        let path = self.dir.join(format!("{name}.mcap"));
        let (w, hgt) = self
            .ring
            .back()
            .map_or((0, 0), |(h, _)| (h.width, h.height));
        let span = match (self.ring.front(), self.ring.back()) {
            (Some((a, _)), Some((b, _))) => b.timestamp_ns.saturating_sub(a.timestamp_ns),
            _ => 0,
        };
        let fps = if span > 0 {
            (self.ring.len() - 1) as f64 * 1e9 / span as f64
        } else {
            0.0
        };
        let mut writer = RecordingWriter::create(
            &path,
            &RecordingInfo {
                camera: format!("flight recorder: {name}"),
                width: w,
                height: hgt,
                fps,
                software: format!("vigil {}", env!("CARGO_PKG_VERSION")),
            },
        )?;
        let from = fault_ts_ns.saturating_sub(self.before_ns);
        for (h, jpeg) in self.ring.iter().filter(|(h, _)| h.timestamp_ns >= from) {
            writer.write_frame(&recorded(h, jpeg.clone()))?;
        }
        self.active.push(Active {
            writer,
            until_ns: fault_ts_ns + self.after_ns,
        });
        Ok(path)
    }

    /// Closes every open recording (the stream has ended).
    pub fn finish(&mut self) -> Vec<Result<(PathBuf, u64), RecordError>> {
        self.active
            .drain(..)
            .map(|a| {
                let path = a.writer.path().to_owned();
                a.writer.finish().map(|n| (path, n))
            })
            .collect()
    }
}

/// Keeps the flight recordings in `dir` (`*.mcap`) within `budget_bytes`: the oldest (by
/// modification time, then name) are removed until the rest fit; the newest is always kept.
/// Returns what was removed.
pub fn enforce_budget(dir: &Path, budget_bytes: u64) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<(std::time::SystemTime, PathBuf, u64)> = Vec::new();
    // An entry that cannot be read (removed meanwhile) is not counted.
    for entry in std::fs::read_dir(dir)?.filter_map(Result::ok) {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "mcap")
            && let Ok(meta) = entry.metadata()
            && let Ok(modified) = meta.modified()
        {
            files.push((modified, path, meta.len()));
        }
    }
    files.sort();
    let mut total: u64 = files.iter().map(|(_, _, len)| len).sum();
    let mut removed = Vec::new();
    let keep_newest = files.len().saturating_sub(1);
    for (_, path, len) in files.into_iter().take(keep_newest) {
        if total <= budget_bytes {
            break;
        }
        match std::fs::remove_file(&path) {
            Ok(()) => {
                total -= len;
                removed.push(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => total -= len,
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

fn recorded(h: &FrameHeader, jpeg: Vec<u8>) -> RecordedFrame {
    RecordedFrame {
        seq: h.seq as u32,
        timestamp_ns: h.timestamp_ns,
        jpeg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(seq: u64) -> FrameHeader {
        FrameHeader {
            seq,
            index: seq,
            timestamp_ns: seq * 100_000_000,
            width: 8,
            height: 8,
        }
    }

    #[test]
    fn a_fault_records_the_seconds_around_it_as_a_normal_recording() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = 1_000_000_000;
        let mut f = FlightRecorder::new(dir.path(), s, s / 2);
        for seq in 0..30 {
            assert!(f.frame(h(seq), &[seq as u8]).is_empty());
        }
        // Fault at frame 25 (2.5 s), reported now: frames 15..=29 come from the ring.
        let path = f.fault("1-SIGSEGV", 25 * s / 10).expect("starts");
        let mut done = Vec::new();
        for seq in 30..40 {
            done.extend(f.frame(h(seq), &[seq as u8]));
        }
        let (p, n) = done.pop().expect("one").expect("finished");
        assert_eq!(
            (p, n),
            (path.clone(), 16),
            "15..=29 from the ring, 30 closes it"
        );
        let rec = vigil_record::Recording::open(&path).expect("reads back");
        let seqs: Vec<u32> = rec.frames.iter().map(|fr| fr.seq).collect();
        assert_eq!(seqs, (15..=30).collect::<Vec<_>>());
    }

    #[test]
    fn past_the_budget_the_oldest_recordings_go() {
        let dir = tempfile::tempdir().expect("tmp");
        for (i, name) in ["1-a.mcap", "2-b.mcap", "3-c.mcap"].iter().enumerate() {
            std::fs::write(dir.path().join(name), vec![0u8; 1000]).expect("write");
            let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(i as u64);
            std::fs::File::options()
                .write(true)
                .open(dir.path().join(name))
                .and_then(|f| f.set_modified(t))
                .expect("mtime");
        }
        std::fs::write(dir.path().join("notes.txt"), vec![0u8; 5000]).expect("write");
        assert!(enforce_budget(dir.path(), 3000).expect("ok").is_empty());
        let removed = enforce_budget(dir.path(), 2500).expect("ok");
        assert_eq!(removed, [dir.path().join("1-a.mcap")]);
        // The newest stays even alone over the budget; other files are not recordings.
        enforce_budget(dir.path(), 10).expect("ok");
        assert!(dir.path().join("3-c.mcap").exists());
        assert!(!dir.path().join("2-b.mcap").exists());
        assert!(dir.path().join("notes.txt").exists());
    }
}
