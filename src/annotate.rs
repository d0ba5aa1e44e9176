//! `vigil replay … --annotate OUT.mcap` and `vigil annotate REC OUT.jsonl -o OUT.mcap`: the
//! recording's frames plus, stamped like each frame, its boxes as `foxglove.ImageAnnotations`
//! (detections with label and score, tracks with their id) and its output line on a JSON
//! channel, so Foxglove draws the boxes over the video as it opens the file. The frames
//! channel and metadata are a vigil recording's: the annotated file replays like the original.

use std::path::Path;

use eyre::WrapErr;
use foxglove::Encode as _;
use foxglove::schemas::{
    Color, ImageAnnotations, Point2, PointsAnnotation, TextAnnotation, Timestamp, points_annotation,
};
use vigil_compare::{Line, Output};
use vigil_record::{RecordingReader, RecordingWriter};

/// Boxes and labels, drawn over `vigil_record::TOPIC`.
pub const ANNOTATIONS_TOPIC: &str = "/vigil/annotations";
/// Each frame's output line, as written (JSON).
pub const DETECTIONS_TOPIC: &str = "/vigil/detections";

/// The JSON Schema of an output line (README: "An output line").
const LINE_SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "title": "vigil output line",
  "type": "object",
  "required": ["seq", "status", "detections", "tracks"],
  "properties": {
    "seq": {"type": "integer"},
    "status": {"enum": ["inferred", "interval", "busy", "missing", "bad_frame", "failed"]},
    "detections": {"type": "array", "items": {"type": "object", "properties": {
      "class": {"type": "integer"}, "label": {"type": "string"}, "score": {"type": "number"},
      "box": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}}}},
    "tracks": {"type": "array", "items": {"type": "object", "properties": {
      "id": {"type": "integer"}, "class": {"type": "integer"}, "coasting": {"type": "boolean"},
      "box": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}}}}
  }
}"#;

/// Distinct colours by class id.
const PALETTE: [(f64, f64, f64); 10] = [
    (0.12, 0.47, 0.71),
    (1.0, 0.5, 0.05),
    (0.17, 0.63, 0.17),
    (0.84, 0.15, 0.16),
    (0.58, 0.4, 0.74),
    (0.55, 0.34, 0.29),
    (0.89, 0.47, 0.76),
    (0.5, 0.5, 0.5),
    (0.74, 0.74, 0.13),
    (0.09, 0.75, 0.81),
];

fn colour(class: u32, alpha: f64) -> Color {
    let (r, g, b) = PALETTE[class as usize % PALETTE.len()];
    Color { r, g, b, a: alpha }
}

fn rect(b: &[f64; 4]) -> Vec<Point2> {
    vec![
        Point2 { x: b[0], y: b[1] },
        Point2 { x: b[2], y: b[1] },
        Point2 { x: b[2], y: b[3] },
        Point2 { x: b[0], y: b[3] },
    ]
}

fn text(ts: Timestamp, x: f64, y: f64, s: String, class: u32) -> TextAnnotation {
    TextAnnotation {
        timestamp: Some(ts),
        position: Some(Point2 { x, y }),
        text: s,
        font_size: 14.0,
        text_color: Some(Color {
            r: 1.0,
            g: 1.0,
            b: 1.0,
            a: 1.0,
        }),
        background_color: Some(colour(class, 0.8)),
        metadata: Vec::new(),
    }
}

/// One frame's annotations: each detection's box with `label score` above it, each track's
/// box (fainter while coasting) with `#id` inside it.
#[must_use]
pub fn annotations(
    line: &Line,
    timestamp_ns: u64,
    labels: &std::collections::BTreeMap<u32, String>,
) -> ImageAnnotations {
    let ts = vigil_record::timestamp(timestamp_ns);
    let label = |class: u32| {
        labels
            .get(&class)
            .cloned()
            .unwrap_or_else(|| format!("class {class}"))
    };
    let mut a = ImageAnnotations {
        timestamp: Some(ts),
        ..ImageAnnotations::default()
    };
    for d in &line.detections {
        a.points.push(PointsAnnotation {
            timestamp: Some(ts),
            r#type: points_annotation::Type::LineLoop as i32,
            points: rect(&d.bbox),
            outline_color: Some(colour(d.class, 1.0)),
            thickness: 2.0,
            ..PointsAnnotation::default()
        });
        let name = d.label.clone().unwrap_or_else(|| label(d.class));
        a.texts.push(text(
            ts,
            d.bbox[0],
            d.bbox[1] - 2.0,
            format!("{name} {:.2}", d.score),
            d.class,
        ));
    }
    for t in &line.tracks {
        a.points.push(PointsAnnotation {
            timestamp: Some(ts),
            r#type: points_annotation::Type::LineLoop as i32,
            points: rect(&t.bbox),
            outline_color: Some(colour(t.class, if t.coasting { 0.35 } else { 0.7 })),
            thickness: 1.0,
            ..PointsAnnotation::default()
        });
        let coasting = if t.coasting { " (coasting)" } else { "" };
        a.texts.push(text(
            ts,
            t.bbox[0] + 2.0,
            t.bbox[3] - 2.0,
            format!("#{} {}{coasting}", t.id, label(t.class)),
            t.class,
        ));
    }
    a
}

/// What an annotated copy holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Annotated {
    pub frames: u64,
    /// Frames with an output line (the others carry no annotations).
    pub with_line: u64,
    pub boxes: u64,
}

/// Writes `recording` with `output`'s boxes into `out` (through `crate::write_new`: never
/// over an input, never half-written), a frame at a time.
pub fn annotate(recording: &Path, output: &Path, out: &Path) -> eyre::Result<Annotated> {
    crate::write_new(out, &[recording, output], |tmp| {
        write(recording, output, tmp)
    })
}

fn write(recording: &Path, output: &Path, out: &Path) -> eyre::Result<Annotated> {
    let mut rec = RecordingReader::open(recording)?;
    let lines = Output::read(output)?;
    // Labels by class, from the detections that carry them (tracks carry the class only).
    let labels = lines.labels();
    let mut w = RecordingWriter::create(out, &rec.info)?;
    let ann = w.add_foxglove_channel::<ImageAnnotations>(ANNOTATIONS_TOPIC)?;
    let det = w.add_json_channel(DETECTIONS_TOPIC, "vigil.OutputLine", LINE_SCHEMA)?;
    let mut n = Annotated {
        frames: 0,
        with_line: 0,
        boxes: 0,
    };
    let mut buf = Vec::new();
    for i in 0..rec.frames.len() {
        let frame = rec.frame(i)?;
        w.write_frame(&frame)?;
        n.frames += 1;
        let Some(line) = lines.frames.get(&u64::from(frame.seq)) else {
            continue;
        };
        let a = annotations(line, frame.timestamp_ns, &labels);
        n.boxes += (line.detections.len() + line.tracks.len()) as u64;
        buf.clear();
        a.encode(&mut buf)
            .wrap_err_with(|| format!("encoding frame {}'s annotations", frame.seq))?;
        w.write_message(ann, frame.seq, frame.timestamp_ns, &buf)?;
        w.write_message(det, frame.seq, frame.timestamp_ns, line.raw.as_bytes())?;
        n.with_line += 1;
    }
    w.finish()?;
    Ok(n)
}
