//! `vigil export OUT.jsonl -o detections.parquet`: an output as an Apache Parquet table for
//! offline analysis (DuckDB, pandas, Polars, Spark).
//!
//! One row per frame (`kind` = `frame`, carrying its status), per detection (`detection`) and
//! per track (`track`), all with the frame's `seq`, `timestamp_ns` (from the recording, when
//! given), `status` and `inferred`. The output is read into memory (as `vigil test` reads it);
//! the table is written in row groups of 4096 frames.
//!
//! `--format mot`: the tracks as a MOTChallenge result file instead (one line per track per
//! frame, frame = `seq` + 1, conf 1, coasting tracks included: they are what was shown), to
//! score a replay against ground truth with `vigil track-eval`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, RecordBatch, StringBuilder, UInt32Builder,
    UInt64Builder,
};
use arrow::datatypes::{DataType, Field, Schema};
use eyre::WrapErr;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use vigil_compare::{Line, Output};

/// Frames per row group.
const FRAMES_PER_GROUP: usize = 4096;

/// The table's columns.
#[must_use]
pub fn schema() -> Schema {
    let f = |name: &str, t: DataType, nullable: bool| Field::new(name, t, nullable);
    Schema::new(vec![
        f("seq", DataType::UInt64, false),
        f("timestamp_ns", DataType::UInt64, true),
        f("status", DataType::Utf8, false),
        f("inferred", DataType::Boolean, false),
        f("kind", DataType::Utf8, false),
        f("class", DataType::UInt32, true),
        f("label", DataType::Utf8, true),
        f("score", DataType::Float64, true),
        f("x1", DataType::Float64, true),
        f("y1", DataType::Float64, true),
        f("x2", DataType::Float64, true),
        f("y2", DataType::Float64, true),
        f("track_id", DataType::UInt64, true),
        f("coasting", DataType::Boolean, true),
    ])
}

#[derive(Default)]
struct Columns {
    seq: UInt64Builder,
    timestamp_ns: UInt64Builder,
    status: StringBuilder,
    inferred: BooleanBuilder,
    kind: StringBuilder,
    class: UInt32Builder,
    label: StringBuilder,
    score: Float64Builder,
    bbox: [Float64Builder; 4],
    track_id: UInt64Builder,
    coasting: BooleanBuilder,
    rows: u64,
}

impl Columns {
    fn frame_part(&mut self, line: &Line, t: Option<u64>, kind: &str) {
        self.seq.append_value(line.seq);
        self.timestamp_ns.append_option(t);
        self.status.append_value(&line.status);
        self.inferred.append_value(line.status == "inferred");
        self.kind.append_value(kind);
        self.rows += 1;
    }

    fn push(&mut self, line: &Line, t: Option<u64>, labels: &BTreeMap<u32, String>) {
        self.frame_part(line, t, "frame");
        self.class.append_null();
        self.label.append_null();
        self.score.append_null();
        for b in &mut self.bbox {
            b.append_null();
        }
        self.track_id.append_null();
        self.coasting.append_null();
        for d in &line.detections {
            self.frame_part(line, t, "detection");
            self.class.append_value(d.class);
            self.label.append_option(d.label.as_deref());
            self.score.append_value(d.score);
            for (b, v) in self.bbox.iter_mut().zip(d.bbox) {
                b.append_value(v);
            }
            self.track_id.append_null();
            self.coasting.append_null();
        }
        for tr in &line.tracks {
            self.frame_part(line, t, "track");
            self.class.append_value(tr.class);
            self.label.append_option(labels.get(&tr.class));
            self.score.append_null();
            for (b, v) in self.bbox.iter_mut().zip(tr.bbox) {
                b.append_value(v);
            }
            self.track_id.append_value(tr.id);
            self.coasting.append_value(tr.coasting);
        }
    }

    fn batch(&mut self, schema: &Arc<Schema>) -> eyre::Result<RecordBatch> {
        let [x1, y1, x2, y2] = &mut self.bbox;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.seq.finish()),
            Arc::new(self.timestamp_ns.finish()),
            Arc::new(self.status.finish()),
            Arc::new(self.inferred.finish()),
            Arc::new(self.kind.finish()),
            Arc::new(self.class.finish()),
            Arc::new(self.label.finish()),
            Arc::new(self.score.finish()),
            Arc::new(x1.finish()),
            Arc::new(y1.finish()),
            Arc::new(x2.finish()),
            Arc::new(y2.finish()),
            Arc::new(self.track_id.finish()),
            Arc::new(self.coasting.finish()),
        ];
        Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
    }
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exported {
    pub frames: u64,
    pub rows: u64,
}

/// Writes `output` (with timestamps from `recording`, if given) as Parquet to `out`.
pub fn export(output: &Path, recording: Option<&Path>, out: &Path) -> eyre::Result<Exported> {
    let lines = Output::read(output)?;
    let times: BTreeMap<u64, u64> = match recording {
        Some(r) => vigil_record::RecordingReader::open(r)?
            .frames
            .iter()
            .map(|f| (u64::from(f.seq), f.timestamp_ns))
            .collect(),
        None => BTreeMap::new(),
    };
    let labels = lines.labels();
    let schema = Arc::new(schema());
    let file =
        std::fs::File::create(out).wrap_err_with(|| format!("creating {}", out.display()))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_created_by(format!("vigil {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut w = ArrowWriter::try_new(file, Arc::clone(&schema), Some(props))
        .wrap_err_with(|| format!("writing {}", out.display()))?;
    let mut cols = Columns::default();
    let mut n = Exported { frames: 0, rows: 0 };
    for (i, line) in lines.frames.values().enumerate() {
        cols.push(line, times.get(&line.seq).copied(), &labels);
        n.frames += 1;
        if (i + 1) % FRAMES_PER_GROUP == 0 {
            w.write(&cols.batch(&schema)?)?;
            w.flush()?;
        }
    }
    w.write(&cols.batch(&schema)?)?;
    w.close()
        .wrap_err_with(|| format!("finishing {}", out.display()))?;
    n.rows = cols.rows;
    Ok(n)
}

/// Writes the tracks of `output` (of `class` only, if given) to `out` as MOTChallenge result
/// lines.
pub fn export_mot(output: &Path, class: Option<u32>, out: &Path) -> eyre::Result<Exported> {
    let lines = Output::read(output)?;
    let mut rows = Vec::new();
    for (seq, line) in &lines.frames {
        let frame = i64::try_from(*seq)
            .ok()
            .and_then(|s| s.checked_add(1))
            .ok_or_else(|| eyre::eyre!("{}: seq {seq} is too large", output.display()))?;
        for t in line
            .tracks
            .iter()
            .filter(|t| class.is_none_or(|c| c == t.class))
        {
            let [x1, y1, x2, y2] = t.bbox;
            rows.push(vigil_mot::Row {
                frame,
                id: i64::try_from(t.id).map_err(|_| {
                    eyre::eyre!("{}: track id {} is too large", output.display(), t.id)
                })?,
                left: x1,
                top: y1,
                width: x2 - x1,
                height: y2 - y1,
                conf: 1.0,
            });
        }
    }
    std::fs::write(out, vigil_mot::to_text(&rows))
        .wrap_err_with(|| format!("writing {}", out.display()))?;
    Ok(Exported {
        frames: lines.frames.len() as u64,
        rows: rows.len() as u64,
    })
}
