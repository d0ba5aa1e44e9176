//! The wire format of every message between vigil's nodes: an Arrow array for the payload and
//! dora metadata parameters for the per-frame facts. Encoding and decoding live together here so
//! that both sides of every edge agree, and each has a round-trip test.
//!
//! | message      | payload (Arrow)                                   | parameters                        |
//! |--------------|---------------------------------------------------|-----------------------------------|
//! | frame        | `UInt8` — the camera's JPEG bytes, untouched       | header                            |
//! | tensor       | `Float32` — network input, empty when skipped      | header, letterbox, shape, layout  |
//! | detections   | struct {class u32, score f32, x1,y1,x2,y2 f32}     | header, `inferred`                |
//! | result       | struct {kind u8, id u64, class, score, hits, misses, coasting, x1..y2} — the frame's detections (kind 0) and tracks (kind 1) | header, `inferred` |
//! | ack          | empty `UInt8`                                      | header                            |
//!
//! The header is `frame_seq`, `frame_index`, `timestamp_ns`, `width`, `height` — the source frame's facts,
//! which every message derived from that frame carries on. Boxes are in source pixels except
//! inside the tensor message, whose letterbox maps network pixels back.

pub mod config;

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float32Array, StructArray, UInt8Array, UInt32Array,
    UInt64Array,
};
use arrow::datatypes::{Field, Float32Type, UInt8Type, UInt32Type, UInt64Type};
pub use dora_message::metadata::{MetadataParameters, Parameter};
pub use vigil_detect::TensorLayout;
use vigil_detect::{BBox, Detection, Letterbox};
use vigil_track::Track;

/// Metadata keys.
pub mod keys {
    pub const SEQ: &str = "frame_seq";
    pub const INDEX: &str = "frame_index";
    pub const TIMESTAMP_NS: &str = "timestamp_ns";
    pub const WIDTH: &str = "width";
    pub const HEIGHT: &str = "height";
    pub const INFERRED: &str = "inferred";
    pub const SHAPE: &str = "shape";
    pub const LAYOUT: &str = "layout";
    pub const SCALE: &str = "letterbox_scale";
    pub const PAD: &str = "letterbox_pad";
    pub const NET_SIZE: &str = "net_size";
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MsgError {
    #[error("message lacks metadata key `{0}`")]
    MissingKey(&'static str),
    #[error("metadata key `{key}` holds {found}, expected {expected}")]
    BadKey {
        key: &'static str,
        found: String,
        expected: &'static str,
    },
    #[error("{message} payload is {found}, expected {expected}")]
    BadPayload {
        message: &'static str,
        found: String,
        expected: &'static str,
    },
}

/// The source frame's facts, carried by every message derived from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The capture driver's sequence number (or the recording's).
    pub seq: u64,
    /// The source's own frame counter: 0, 1, 2, … with no gaps, whatever `seq` does. Nodes
    /// that must see frames in order reorder and de-duplicate by it.
    pub index: u64,
    /// Capture time in nanoseconds, from the driver or the recording.
    pub timestamp_ns: u64,
    pub width: u32,
    pub height: u32,
}

impl FrameHeader {
    #[must_use]
    pub fn to_params(&self) -> MetadataParameters {
        let mut p = MetadataParameters::new();
        p.insert(keys::SEQ.into(), Parameter::Integer(self.seq as i64));
        p.insert(keys::INDEX.into(), Parameter::Integer(self.index as i64));
        p.insert(
            keys::TIMESTAMP_NS.into(),
            Parameter::Integer(self.timestamp_ns as i64),
        );
        p.insert(keys::WIDTH.into(), Parameter::Integer(self.width.into()));
        p.insert(keys::HEIGHT.into(), Parameter::Integer(self.height.into()));
        p
    }

    pub fn from_params(p: &MetadataParameters) -> Result<Self, MsgError> {
        Ok(Self {
            seq: int(p, keys::SEQ)? as u64,
            index: int(p, keys::INDEX)? as u64,
            timestamp_ns: int(p, keys::TIMESTAMP_NS)? as u64,
            width: u32::try_from(int(p, keys::WIDTH)?)
                .map_err(|_| bad(keys::WIDTH, "out of range", "a u32"))?,
            height: u32::try_from(int(p, keys::HEIGHT)?)
                .map_err(|_| bad(keys::HEIGHT, "out of range", "a u32"))?,
        })
    }
}

fn bad(key: &'static str, found: impl Into<String>, expected: &'static str) -> MsgError {
    MsgError::BadKey {
        key,
        found: found.into(),
        expected,
    }
}

fn get<'a>(p: &'a MetadataParameters, key: &'static str) -> Result<&'a Parameter, MsgError> {
    p.get(key).ok_or(MsgError::MissingKey(key))
}

fn int(p: &MetadataParameters, key: &'static str) -> Result<i64, MsgError> {
    match get(p, key)? {
        Parameter::Integer(v) => Ok(*v),
        other => Err(bad(key, format!("{other:?}"), "an integer")),
    }
}

fn float_list(p: &MetadataParameters, key: &'static str, len: usize) -> Result<Vec<f64>, MsgError> {
    match get(p, key)? {
        Parameter::ListFloat(v) if v.len() == len => Ok(v.clone()),
        other => Err(bad(key, format!("{other:?}"), "a list of floats")),
    }
}

fn int_list(p: &MetadataParameters, key: &'static str) -> Result<Vec<i64>, MsgError> {
    match get(p, key)? {
        Parameter::ListInt(v) => Ok(v.clone()),
        other => Err(bad(key, format!("{other:?}"), "a list of integers")),
    }
}

fn boolean(p: &MetadataParameters, key: &'static str) -> Result<bool, MsgError> {
    match get(p, key)? {
        Parameter::Bool(v) => Ok(*v),
        other => Err(bad(key, format!("{other:?}"), "a bool")),
    }
}

fn payload_err(message: &'static str, data: &dyn Array, expected: &'static str) -> MsgError {
    MsgError::BadPayload {
        message,
        found: format!("{} of {} rows", data.data_type(), data.len()),
        expected,
    }
}

// ---------------------------------------------------------------------------------------------
// frame

/// A camera frame: the JPEG bytes exactly as the camera sent them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    pub header: FrameHeader,
    pub jpeg: &'a [u8],
}

impl Frame<'_> {
    #[must_use]
    pub fn encode(&self) -> (MetadataParameters, ArrayRef) {
        (
            self.header.to_params(),
            Arc::new(UInt8Array::from(self.jpeg.to_vec())),
        )
    }
}

/// Reads a frame without copying its bytes.
pub fn decode_frame<'a>(
    p: &MetadataParameters,
    data: &'a dyn Array,
) -> Result<Frame<'a>, MsgError> {
    let bytes = data
        .as_primitive_opt::<UInt8Type>()
        .ok_or_else(|| payload_err("frame", data, "UInt8"))?;
    Ok(Frame {
        header: FrameHeader::from_params(p)?,
        jpeg: bytes.values(),
    })
}

// ---------------------------------------------------------------------------------------------
// tensor

/// A network input tensor and how it was made from the frame. `data` is empty for frames the
/// preprocessor skipped (not this frame's turn for inference).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorMsg<'a> {
    pub header: FrameHeader,
    pub letterbox: Letterbox,
    pub shape: Vec<usize>,
    pub layout: TensorLayout,
    pub data: &'a [f32],
}

impl TensorMsg<'_> {
    #[must_use]
    pub fn is_skipped(&self) -> bool {
        self.data.is_empty()
    }

    #[must_use]
    pub fn encode(&self) -> (MetadataParameters, ArrayRef) {
        let mut p = self.header.to_params();
        let lb = &self.letterbox;
        p.insert(
            keys::SHAPE.into(),
            Parameter::ListInt(self.shape.iter().map(|&d| d as i64).collect()),
        );
        p.insert(
            keys::LAYOUT.into(),
            Parameter::String(self.layout.as_str().into()),
        );
        p.insert(
            keys::SCALE.into(),
            Parameter::ListFloat(vec![lb.scale_x.into(), lb.scale_y.into()]),
        );
        p.insert(
            keys::PAD.into(),
            Parameter::ListInt(vec![lb.pad_x.into(), lb.pad_y.into()]),
        );
        p.insert(
            keys::NET_SIZE.into(),
            Parameter::ListInt(vec![lb.dst_w.into(), lb.dst_h.into()]),
        );
        (p, Arc::new(Float32Array::from(self.data.to_vec())))
    }
}

pub fn decode_tensor<'a>(
    p: &MetadataParameters,
    data: &'a dyn Array,
) -> Result<TensorMsg<'a>, MsgError> {
    let header = FrameHeader::from_params(p)?;
    let values = data
        .as_primitive_opt::<Float32Type>()
        .ok_or_else(|| payload_err("tensor", data, "Float32"))?;
    let shape: Vec<usize> = int_list(p, keys::SHAPE)?
        .into_iter()
        .map(|d| d.max(0) as usize)
        .collect();
    let layout = match get(p, keys::LAYOUT)? {
        Parameter::String(s) if s == "nchw" => TensorLayout::Nchw,
        Parameter::String(s) if s == "nhwc" => TensorLayout::Nhwc,
        other => {
            return Err(bad(
                keys::LAYOUT,
                format!("{other:?}"),
                "\"nchw\" or \"nhwc\"",
            ));
        }
    };
    let scale = float_list(p, keys::SCALE, 2)?;
    let pad = int_list(p, keys::PAD)?;
    let net = int_list(p, keys::NET_SIZE)?;
    let (&[pad_x, pad_y], &[dst_w, dst_h]) = (pad.as_slice(), net.as_slice()) else {
        return Err(bad(
            keys::PAD,
            format!("{pad:?} / {net:?}"),
            "two integers each",
        ));
    };
    let data = values.values();
    if !data.is_empty() && data.len() != shape.iter().product::<usize>() {
        return Err(payload_err("tensor", values, "as many values as its shape"));
    }
    Ok(TensorMsg {
        header,
        letterbox: Letterbox {
            src_w: header.width,
            src_h: header.height,
            dst_w: dst_w as u32,
            dst_h: dst_h as u32,
            scale_x: scale[0] as f32,
            scale_y: scale[1] as f32,
            pad_x: pad_x as u32,
            pad_y: pad_y as u32,
        },
        shape,
        layout,
        data,
    })
}

// ---------------------------------------------------------------------------------------------
// detections and tracks

/// One frame's detections in source pixels. `inferred` is false for skipped frames.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectionsMsg {
    pub header: FrameHeader,
    pub inferred: bool,
    pub detections: Vec<Detection>,
}

fn f32_col<T>(rows: &[T], f: impl Fn(&T) -> f32) -> ArrayRef {
    Arc::new(rows.iter().map(f).collect::<Float32Array>())
}

fn struct_array(columns: Vec<(&str, ArrayRef)>) -> ArrayRef {
    let fields: Vec<(Arc<Field>, ArrayRef)> = columns
        .into_iter()
        .map(|(name, col)| {
            (
                Arc::new(Field::new(name, col.data_type().clone(), false)),
                col,
            )
        })
        .collect();
    Arc::new(StructArray::from(fields))
}

fn box_columns<T>(rows: &[T], b: impl Fn(&T) -> BBox) -> Vec<(&'static str, ArrayRef)> {
    vec![
        ("x1", f32_col(rows, |r| b(r).x1)),
        ("y1", f32_col(rows, |r| b(r).y1)),
        ("x2", f32_col(rows, |r| b(r).x2)),
        ("y2", f32_col(rows, |r| b(r).y2)),
    ]
}

struct Columns<'a> {
    message: &'static str,
    s: &'a StructArray,
}

impl<'a> Columns<'a> {
    fn new(
        message: &'static str,
        data: &'a dyn Array,
        expected: &'static str,
    ) -> Result<Self, MsgError> {
        match data.as_struct_opt() {
            Some(s) => Ok(Self { message, s }),
            None => Err(payload_err(message, data, expected)),
        }
    }

    fn col(&self, name: &'static str) -> Result<&'a ArrayRef, MsgError> {
        self.s.column_by_name(name).ok_or(MsgError::BadPayload {
            message: self.message,
            found: format!("{}", self.s.data_type()),
            expected: name,
        })
    }

    fn f32(&self, name: &'static str) -> Result<&'a [f32], MsgError> {
        let c = self.col(name)?;
        Ok(c.as_primitive_opt::<Float32Type>()
            .ok_or_else(|| payload_err(self.message, c, "Float32 column"))?
            .values())
    }

    fn u32(&self, name: &'static str) -> Result<&'a [u32], MsgError> {
        let c = self.col(name)?;
        Ok(c.as_primitive_opt::<UInt32Type>()
            .ok_or_else(|| payload_err(self.message, c, "UInt32 column"))?
            .values())
    }

    fn u64(&self, name: &'static str) -> Result<&'a [u64], MsgError> {
        let c = self.col(name)?;
        Ok(c.as_primitive_opt::<UInt64Type>()
            .ok_or_else(|| payload_err(self.message, c, "UInt64 column"))?
            .values())
    }

    fn boxes(&self) -> Result<Vec<BBox>, MsgError> {
        let (x1, y1, x2, y2) = (
            self.f32("x1")?,
            self.f32("y1")?,
            self.f32("x2")?,
            self.f32("y2")?,
        );
        Ok((0..self.s.len())
            .map(|i| BBox::new(x1[i], y1[i], x2[i], y2[i]))
            .collect())
    }
}

impl DetectionsMsg {
    #[must_use]
    pub fn encode(&self) -> (MetadataParameters, ArrayRef) {
        let mut p = self.header.to_params();
        p.insert(keys::INFERRED.into(), Parameter::Bool(self.inferred));
        let d = &self.detections;
        let mut cols: Vec<(&str, ArrayRef)> = vec![
            (
                "class",
                Arc::new(d.iter().map(|x| x.class).collect::<UInt32Array>()),
            ),
            ("score", f32_col(d, |x| x.score)),
        ];
        cols.extend(box_columns(d, |x| x.bbox));
        (p, struct_array(cols))
    }
}

pub fn decode_detections(
    p: &MetadataParameters,
    data: &dyn Array,
) -> Result<DetectionsMsg, MsgError> {
    let c = Columns::new("detections", data, "Struct{class, score, x1, y1, x2, y2}")?;
    let (class, score) = (c.u32("class")?, c.f32("score")?);
    let detections = c
        .boxes()?
        .into_iter()
        .enumerate()
        .map(|(i, bbox)| Detection {
            class: class[i],
            score: score[i],
            bbox,
        })
        .collect();
    Ok(DetectionsMsg {
        header: FrameHeader::from_params(p)?,
        inferred: boolean(p, keys::INFERRED)?,
        detections,
    })
}

/// One frame's outcome as the tracker left it: the frame's detections and the live tracks,
/// in one message so that they can never be separated on the way. One row per detection
/// (`kind` 0) or track (`kind` 1); `id`, `hits`, `misses` are 0 on detection rows.
#[derive(Debug, Clone, PartialEq)]
pub struct ResultMsg {
    pub header: FrameHeader,
    pub inferred: bool,
    pub detections: Vec<Detection>,
    pub tracks: Vec<Track>,
}

impl ResultMsg {
    #[must_use]
    pub fn encode(&self) -> (MetadataParameters, ArrayRef) {
        let mut p = self.header.to_params();
        p.insert(keys::INFERRED.into(), Parameter::Bool(self.inferred));
        let rows: Vec<(u8, Track)> = self
            .detections
            .iter()
            .map(|d| {
                (
                    0u8,
                    Track {
                        id: 0,
                        class: d.class,
                        score: d.score,
                        bbox: d.bbox,
                        hits: 0,
                        misses: 0,
                    },
                )
            })
            .chain(self.tracks.iter().map(|t| (1u8, *t)))
            .collect();
        let mut cols: Vec<(&str, ArrayRef)> = vec![
            (
                "kind",
                Arc::new(rows.iter().map(|r| r.0).collect::<UInt8Array>()),
            ),
            (
                "id",
                Arc::new(rows.iter().map(|r| r.1.id).collect::<UInt64Array>()),
            ),
            (
                "class",
                Arc::new(rows.iter().map(|r| r.1.class).collect::<UInt32Array>()),
            ),
            ("score", f32_col(&rows, |r| r.1.score)),
            (
                "hits",
                Arc::new(rows.iter().map(|r| r.1.hits).collect::<UInt32Array>()),
            ),
            (
                "misses",
                Arc::new(rows.iter().map(|r| r.1.misses).collect::<UInt32Array>()),
            ),
            (
                "coasting",
                Arc::new(
                    rows.iter()
                        .map(|r| Some(r.0 == 1 && r.1.coasting()))
                        .collect::<BooleanArray>(),
                ),
            ),
        ];
        cols.extend(box_columns(&rows, |r| r.1.bbox));
        (p, struct_array(cols))
    }
}

pub fn decode_result(p: &MetadataParameters, data: &dyn Array) -> Result<ResultMsg, MsgError> {
    let c = Columns::new(
        "result",
        data,
        "Struct{kind, id, class, score, hits, misses, x1, y1, x2, y2}",
    )?;
    let kind_col = c.col("kind")?;
    let kind = kind_col
        .as_primitive_opt::<UInt8Type>()
        .ok_or_else(|| payload_err("result", kind_col, "UInt8 column"))?
        .values();
    let (id, class, score) = (c.u64("id")?, c.u32("class")?, c.f32("score")?);
    let (hits, misses) = (c.u32("hits")?, c.u32("misses")?);
    let mut msg = ResultMsg {
        header: FrameHeader::from_params(p)?,
        inferred: boolean(p, keys::INFERRED)?,
        detections: Vec::new(),
        tracks: Vec::new(),
    };
    for (i, bbox) in c.boxes()?.into_iter().enumerate() {
        if kind[i] == 0 {
            msg.detections.push(Detection {
                class: class[i],
                score: score[i],
                bbox,
            });
        } else {
            msg.tracks.push(Track {
                id: id[i],
                class: class[i],
                score: score[i],
                bbox,
                hits: hits[i],
                misses: misses[i],
            });
        }
    }
    Ok(msg)
}

/// An acknowledgement that the frame `header.seq` has left the pipeline.
#[must_use]
pub fn encode_ack(header: &FrameHeader) -> (MetadataParameters, ArrayRef) {
    (
        header.to_params(),
        Arc::new(UInt8Array::from(Vec::<u8>::new())),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: FrameHeader = FrameHeader {
        seq: 41,
        index: 3,
        timestamp_ns: 1_700_000_000_123,
        width: 1280,
        height: 720,
    };

    #[test]
    fn frame_round_trips_bytes_untouched() {
        let jpeg = [0xFF, 0xD8, 1, 2, 3, 0xFF, 0xD9];
        let (p, a) = Frame {
            header: H,
            jpeg: &jpeg,
        }
        .encode();
        let back = decode_frame(&p, a.as_ref()).expect("decodes");
        assert_eq!(
            back,
            Frame {
                header: H,
                jpeg: &jpeg
            }
        );
    }

    #[test]
    fn tensor_round_trips_with_letterbox() {
        let lb = Letterbox::fit(1280, 720, 4, 4, true, true);
        let data = vec![0.5f32; 48];
        let msg = TensorMsg {
            header: H,
            letterbox: lb,
            shape: vec![1, 3, 4, 4],
            layout: TensorLayout::Nchw,
            data: &data,
        };
        let (p, a) = msg.encode();
        assert_eq!(decode_tensor(&p, a.as_ref()).expect("decodes"), msg);
    }

    #[test]
    fn tensor_with_wrong_length_is_rejected() {
        let lb = Letterbox::fit(1280, 720, 4, 4, true, true);
        let data = vec![0.5f32; 47];
        let msg = TensorMsg {
            header: H,
            letterbox: lb,
            shape: vec![1, 3, 4, 4],
            layout: TensorLayout::Nchw,
            data: &data,
        };
        let (p, a) = msg.encode();
        assert!(matches!(
            decode_tensor(&p, a.as_ref()),
            Err(MsgError::BadPayload { .. })
        ));
    }

    #[test]
    fn detections_and_tracks_round_trip() {
        let d = Detection {
            class: 3,
            score: 0.75,
            bbox: BBox::new(1.0, 2.0, 30.5, 40.25),
        };
        let msg = DetectionsMsg {
            header: H,
            inferred: true,
            detections: vec![d, d],
        };
        let (p, a) = msg.encode();
        assert_eq!(decode_detections(&p, a.as_ref()).expect("decodes"), msg);
        let empty = DetectionsMsg {
            header: H,
            inferred: false,
            detections: vec![],
        };
        let (p, a) = empty.encode();
        assert_eq!(decode_detections(&p, a.as_ref()).expect("decodes"), empty);

        let t = Track {
            id: 7,
            class: 0,
            score: 0.5,
            bbox: d.bbox,
            hits: 4,
            misses: 1,
        };
        let msg = ResultMsg {
            header: H,
            inferred: true,
            detections: vec![d],
            tracks: vec![t, t],
        };
        let (p, a) = msg.encode();
        assert_eq!(decode_result(&p, a.as_ref()).expect("decodes"), msg);
    }

    #[test]
    fn missing_key_and_wrong_payload_are_named() {
        let (mut p, a) = Frame {
            header: H,
            jpeg: &[1],
        }
        .encode();
        p.remove(keys::SEQ);
        assert_eq!(
            decode_frame(&p, a.as_ref()),
            Err(MsgError::MissingKey(keys::SEQ))
        );
        let (p, _) = Frame {
            header: H,
            jpeg: &[1],
        }
        .encode();
        let wrong = Float32Array::from(vec![1.0]);
        assert!(
            decode_frame(&p, &wrong)
                .expect_err("must fail")
                .to_string()
                .contains("Float32")
        );
        assert!(decode_detections(&p, &wrong).is_err());
    }
}
