//! The wire format of every message between vigil's nodes: an Arrow array for the payload and
//! dora metadata parameters for the per-frame facts. Encoding and decoding live together here so
//! that both sides of every edge agree, and each has a round-trip test.
//!
//! | message      | payload (Arrow)                                   | parameters                        |
//! |--------------|---------------------------------------------------|-----------------------------------|
//! | frame        | `UInt8` — the camera's JPEG bytes, untouched       | header, `captured_unix_ns`        |
//! | tensor       | `Float32` — network input                          | header, letterbox, shape, layout  |
//! | detections   | struct {class u32, score f32, x1,y1,x2,y2 f32}     | header, `status` (+ `behind`)     |
//! | result       | struct {kind u8, id u64, class, score, hits, misses, lost, coasting, x1..y2} — the frame's detections (kind 0) and tracks (kind 1) | header, `status` |
//! | ready        | empty — an infer process is free for a frame          | `pid`, `received` (last frame it answered) |
//! | status       | empty — infer's `started` (with how its predecessor died) or `rejected` | `event`, `pid`, `fault_*` |
//! | status       | … or `paused` (a crash loop: restarts held back)        | `deaths`, `window_s`, `pause_ms`, `fault_cause` |
//! | status       | camera → monitor: `camera_down` / `camera_up` (an outage) | `why` / `outage_ms`, `attempts`  |
//! | roles        | empty — what preprocess makes of each infer process     | `roles`: `active,standby,down`, by process |
//! | shown        | empty — the preview showed this frame                  | header, `shown_total`             |
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
pub use vigil_frame::{
    DetectionsMsg, FaultReport, FrameHeader, FrameStatus, Latency, ResultMsg, Role, StatusMsg,
    Track,
};

/// Metadata keys.
pub mod keys {
    pub const SEQ: &str = "frame_seq";
    pub const INDEX: &str = "frame_index";
    pub const TIMESTAMP_NS: &str = "timestamp_ns";
    pub const WIDTH: &str = "width";
    pub const HEIGHT: &str = "height";
    pub const STATUS: &str = "status";
    pub const BEHIND: &str = "behind";
    pub const CAPTURED_NS: &str = "captured_unix_ns";
    pub const DETECT_US: &str = "detect_us";
    pub const RECEIVED: &str = "received";
    pub const SHAPE: &str = "shape";
    pub const LAYOUT: &str = "layout";
    pub const SCALE: &str = "letterbox_scale";
    pub const PAD: &str = "letterbox_pad";
    pub const NET_SIZE: &str = "net_size";
    pub const PREPROCESS_US: &str = "preprocess_us";
    pub const INFER_US: &str = "infer_us";
    pub const EVENT: &str = "event";
    pub const PID: &str = "pid";
    pub const FAULT_CAUSE: &str = "fault_cause";
    pub const FAULT_SEQ: &str = "fault_seq";
    pub const EXIT_CODE: &str = "exit_code";
    pub const SIGNAL: &str = "signal";
    pub const REJECTED: &str = "rejected_total";
    pub const SHOWN: &str = "shown_total";
    pub const DEATHS: &str = "deaths";
    pub const WINDOW_S: &str = "window_s";
    pub const PAUSE_MS: &str = "pause_ms";
    pub const ROLES: &str = "roles";
    pub const WHY: &str = "why";
    pub const OUTAGE_MS: &str = "outage_ms";
    pub const ATTEMPTS: &str = "attempts";
}

fn insert_latency(l: Latency, p: &mut MetadataParameters) {
    for (key, v) in [
        (keys::PREPROCESS_US, l.preprocess_us),
        (keys::INFER_US, l.infer_us),
        (keys::DETECT_US, l.detect_us),
    ] {
        if v > 0 {
            p.insert(key.into(), Parameter::Integer(v.into()));
        }
    }
    if l.captured_unix_ns > 0 {
        p.insert(
            keys::CAPTURED_NS.into(),
            Parameter::Integer(i64::try_from(l.captured_unix_ns).unwrap_or(i64::MAX)),
        );
    }
}

fn latency_from_params(p: &MetadataParameters) -> Latency {
    let us = |key| match p.get(key) {
        Some(Parameter::Integer(v)) => u32::try_from(*v).unwrap_or(0),
        _ => 0,
    };
    Latency {
        captured_unix_ns: match p.get(keys::CAPTURED_NS) {
            Some(Parameter::Integer(v)) => u64::try_from(*v).unwrap_or(0),
            _ => 0,
        },
        preprocess_us: us(keys::PREPROCESS_US),
        infer_us: us(keys::INFER_US),
        detect_us: us(keys::DETECT_US),
    }
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

fn insert_status(s: FrameStatus, p: &mut MetadataParameters) {
    p.insert(keys::STATUS.into(), Parameter::String(s.as_str().into()));
}

fn status(p: &MetadataParameters) -> Result<FrameStatus, MsgError> {
    match get(p, keys::STATUS)? {
        Parameter::String(s) => FrameStatus::parse(s).ok_or_else(|| {
            bad(
                keys::STATUS,
                format!("{s:?}"),
                "inferred, interval, busy, missing, bad_frame or failed",
            )
        }),
        other => Err(bad(keys::STATUS, format!("{other:?}"), "a string")),
    }
}

/// A frame header as message metadata.
#[must_use]
pub fn header_params(h: &FrameHeader) -> MetadataParameters {
    let mut p = MetadataParameters::new();
    p.insert(keys::SEQ.into(), Parameter::Integer(h.seq as i64));
    p.insert(keys::INDEX.into(), Parameter::Integer(h.index as i64));
    p.insert(
        keys::TIMESTAMP_NS.into(),
        Parameter::Integer(h.timestamp_ns as i64),
    );
    p.insert(keys::WIDTH.into(), Parameter::Integer(h.width.into()));
    p.insert(keys::HEIGHT.into(), Parameter::Integer(h.height.into()));
    p
}

/// The frame header a message's metadata carries.
pub fn decode_header(p: &MetadataParameters) -> Result<FrameHeader, MsgError> {
    Ok(FrameHeader {
        seq: int(p, keys::SEQ)? as u64,
        index: int(p, keys::INDEX)? as u64,
        timestamp_ns: int(p, keys::TIMESTAMP_NS)? as u64,
        width: u32::try_from(int(p, keys::WIDTH)?)
            .map_err(|_| bad(keys::WIDTH, "out of range", "a u32"))?,
        height: u32::try_from(int(p, keys::HEIGHT)?)
            .map_err(|_| bad(keys::HEIGHT, "out of range", "a u32"))?,
    })
}

/// A message as dora sends it: metadata parameters and an Arrow payload.
pub trait Encode {
    fn encode(&self) -> (MetadataParameters, ArrayRef);
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
    /// When it was captured (or played), Unix ns; 0: unknown. A measurement, never an input.
    pub captured_unix_ns: u64,
    pub jpeg: &'a [u8],
}

impl Frame<'_> {
    #[must_use]
    pub fn encode(&self) -> (MetadataParameters, ArrayRef) {
        let mut p = header_params(&self.header);
        insert_latency(
            Latency {
                captured_unix_ns: self.captured_unix_ns,
                ..Latency::default()
            },
            &mut p,
        );
        (p, Arc::new(UInt8Array::from(self.jpeg.to_vec())))
    }
}

/// Now, as Unix time in nanoseconds (0 if the clock is before 1970): for the capture stamp.
#[must_use]
pub fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Reads a frame without copying its bytes.
pub fn decode_frame<'a>(
    p: &MetadataParameters,
    data: &'a dyn Array,
) -> Result<Frame<'a>, MsgError> {
    Ok(Frame {
        header: decode_header(p)?,
        captured_unix_ns: latency_from_params(p).captured_unix_ns,
        jpeg: frame_bytes(data)?,
    })
}

/// A frame message's JPEG bytes, without copying them.
pub fn frame_bytes(data: &dyn Array) -> Result<&[u8], MsgError> {
    data.as_primitive_opt::<UInt8Type>()
        .map(|b| b.values().as_ref())
        .ok_or_else(|| payload_err("frame", data, "UInt8"))
}

// ---------------------------------------------------------------------------------------------
// tensor

/// What goes to the detector for one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TensorData<'a> {
    /// The network input, letterboxed and normalised on the host (shape: the model's input).
    F32(&'a [f32]),
    /// The decoded frame, RGB, row after row (shape `[height, width, 3]`): the infer node
    /// letterboxes it on its GPU, straight into the model's input.
    Rgb8(&'a [u8]),
}

/// A network input (or the frame the detector makes it from) and how it maps to the frame.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorMsg<'a> {
    pub header: FrameHeader,
    pub letterbox: Letterbox,
    pub shape: Vec<usize>,
    pub layout: TensorLayout,
    pub data: TensorData<'a>,
    pub latency: Latency,
}

impl TensorMsg<'_> {
    #[must_use]
    pub fn encode(&self) -> (MetadataParameters, ArrayRef) {
        let mut p = header_params(&self.header);
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
        insert_latency(self.latency, &mut p);
        let array: ArrayRef = match self.data {
            TensorData::F32(v) => Arc::new(Float32Array::from(v.to_vec())),
            TensorData::Rgb8(v) => Arc::new(UInt8Array::from(v.to_vec())),
        };
        (p, array)
    }
}

pub fn decode_tensor<'a>(
    p: &MetadataParameters,
    data: &'a dyn Array,
) -> Result<TensorMsg<'a>, MsgError> {
    let header = decode_header(p)?;
    let values = if let Some(v) = data.as_primitive_opt::<Float32Type>() {
        TensorData::F32(v.values())
    } else if let Some(v) = data.as_primitive_opt::<UInt8Type>() {
        TensorData::Rgb8(v.values())
    } else {
        return Err(payload_err("tensor", data, "Float32 or UInt8 (RGB)"));
    };
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
    let (len, rgb_shape) = match values {
        TensorData::F32(v) => (v.len(), None),
        TensorData::Rgb8(v) => (
            v.len(),
            Some([header.height as usize, header.width as usize, 3]),
        ),
    };
    if len != shape.iter().product::<usize>() {
        return Err(payload_err("tensor", data, "as many values as its shape"));
    }
    if let Some(want) = rgb_shape
        && shape != want
    {
        return Err(bad(
            keys::SHAPE,
            format!("{shape:?}"),
            "[height, width, 3]: an RGB frame of the header's size",
        ));
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
        data: values,
        latency: latency_from_params(p),
    })
}

// ---------------------------------------------------------------------------------------------
// detections and tracks

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

impl Encode for DetectionsMsg {
    fn encode(&self) -> (MetadataParameters, ArrayRef) {
        let mut p = header_params(&self.header);
        insert_status(self.status, &mut p);
        if let Some(b) = self.behind {
            p.insert(
                keys::BEHIND.into(),
                Parameter::Integer(i64::try_from(b).unwrap_or(i64::MAX)),
            );
        }
        insert_latency(self.latency, &mut p);
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
        header: decode_header(p)?,
        status: status(p)?,
        behind: match p.get(keys::BEHIND) {
            None => None,
            Some(_) => Some(int(p, keys::BEHIND)? as u64),
        },
        detections,
        latency: latency_from_params(p),
    })
}

/// A result: one row per detection (`kind` 0) or track (`kind` 1); `id`, `hits`, `misses` are
/// 0 on detection rows.
impl Encode for ResultMsg {
    fn encode(&self) -> (MetadataParameters, ArrayRef) {
        let mut p = header_params(&self.header);
        insert_status(self.status, &mut p);
        insert_latency(self.latency, &mut p);
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
                        lost: 0,
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
                "lost",
                Arc::new(rows.iter().map(|r| r.1.lost).collect::<UInt32Array>()),
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
        "Struct{kind, id, class, score, hits, misses, lost, x1, y1, x2, y2}",
    )?;
    let kind_col = c.col("kind")?;
    let kind = kind_col
        .as_primitive_opt::<UInt8Type>()
        .ok_or_else(|| payload_err("result", kind_col, "UInt8 column"))?
        .values();
    let (id, class, score) = (c.u64("id")?, c.u32("class")?, c.f32("score")?);
    let (hits, misses, lost) = (c.u32("hits")?, c.u32("misses")?, c.u32("lost")?);
    let mut msg = ResultMsg {
        header: decode_header(p)?,
        status: status(p)?,
        detections: Vec::new(),
        tracks: Vec::new(),
        latency: latency_from_params(p),
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
                lost: lost[i],
            });
        }
    }
    Ok(msg)
}

/// An acknowledgement that the frame `header.seq` has left the pipeline.
#[must_use]
pub fn encode_ack(header: &FrameHeader) -> (MetadataParameters, ArrayRef) {
    (
        header_params(header),
        Arc::new(UInt8Array::from(Vec::<u8>::new())),
    )
}

// ---------------------------------------------------------------------------------------------
// ready (infer → preprocess)

/// An infer process asking for work: it is free, and the last frame it answered (if any) is
/// `received`. Sent on start, after every answer and again while it waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    pub pid: u32,
    pub received: Option<u64>,
}

impl Encode for Ready {
    fn encode(&self) -> (MetadataParameters, ArrayRef) {
        let mut p = MetadataParameters::new();
        p.insert(keys::PID.into(), Parameter::Integer(self.pid.into()));
        if let Some(r) = self.received {
            p.insert(
                keys::RECEIVED.into(),
                Parameter::Integer(i64::try_from(r).unwrap_or(i64::MAX)),
            );
        }
        (p, Arc::new(UInt8Array::from(Vec::<u8>::new())))
    }
}

pub fn decode_ready(p: &MetadataParameters) -> Result<Ready, MsgError> {
    Ok(Ready {
        pid: u32::try_from(int(p, keys::PID)?)
            .map_err(|_| bad(keys::PID, "out of range", "a u32"))?,
        received: match p.get(keys::RECEIVED) {
            None => None,
            Some(_) => Some(int(p, keys::RECEIVED)? as u64),
        },
    })
}

// ---------------------------------------------------------------------------------------------
// status (infer → monitor) and shown (preview → monitor)

impl Encode for StatusMsg {
    fn encode(&self) -> (MetadataParameters, ArrayRef) {
        let mut p = MetadataParameters::new();
        match self {
            Self::Started { pid, previous } => {
                p.insert(keys::EVENT.into(), Parameter::String("started".into()));
                p.insert(keys::PID.into(), Parameter::Integer((*pid).into()));
                if let Some(f) = previous {
                    p.insert(keys::FAULT_CAUSE.into(), Parameter::String(f.cause.clone()));
                    p.insert(keys::FAULT_SEQ.into(), Parameter::Integer(f.seq as i64));
                    if let Some(c) = f.exit_code {
                        p.insert(keys::EXIT_CODE.into(), Parameter::Integer(c.into()));
                    }
                    if let Some(s) = f.signal {
                        p.insert(keys::SIGNAL.into(), Parameter::Integer(s.into()));
                    }
                }
            }
            Self::Rejected { header, total } => {
                p = header_params(header);
                p.insert(keys::EVENT.into(), Parameter::String("rejected".into()));
                p.insert(keys::REJECTED.into(), Parameter::Integer(*total as i64));
            }
            Self::Paused {
                deaths,
                window_s,
                pause_ms,
                cause,
            } => {
                p.insert(keys::EVENT.into(), Parameter::String("paused".into()));
                p.insert(keys::DEATHS.into(), Parameter::Integer((*deaths).into()));
                p.insert(
                    keys::WINDOW_S.into(),
                    Parameter::Integer((*window_s).into()),
                );
                p.insert(
                    keys::PAUSE_MS.into(),
                    Parameter::Integer(i64::try_from(*pause_ms).unwrap_or(i64::MAX)),
                );
                p.insert(keys::FAULT_CAUSE.into(), Parameter::String(cause.clone()));
            }
            Self::CameraDown { why } => {
                p.insert(keys::EVENT.into(), Parameter::String("camera_down".into()));
                p.insert(keys::WHY.into(), Parameter::String(why.clone()));
            }
            Self::CameraUp {
                outage_ms,
                attempts,
            } => {
                p.insert(keys::EVENT.into(), Parameter::String("camera_up".into()));
                p.insert(
                    keys::OUTAGE_MS.into(),
                    Parameter::Integer(i64::try_from(*outage_ms).unwrap_or(i64::MAX)),
                );
                p.insert(
                    keys::ATTEMPTS.into(),
                    Parameter::Integer((*attempts).into()),
                );
            }
        }
        (p, Arc::new(UInt8Array::from(Vec::<u8>::new())))
    }
}

pub fn decode_status(p: &MetadataParameters) -> Result<StatusMsg, MsgError> {
    let small = |key: &'static str| -> Result<Option<i32>, MsgError> {
        p.get(key)
            .map(|_| i32::try_from(int(p, key)?).map_err(|_| bad(key, "out of range", "an i32")))
            .transpose()
    };
    match get(p, keys::EVENT)? {
        Parameter::String(e) if e == "started" => Ok(StatusMsg::Started {
            pid: u32::try_from(int(p, keys::PID)?)
                .map_err(|_| bad(keys::PID, "out of range", "a u32"))?,
            previous: match p.get(keys::FAULT_CAUSE) {
                Some(Parameter::String(cause)) => Some(FaultReport {
                    cause: cause.clone(),
                    seq: int(p, keys::FAULT_SEQ)? as u64,
                    exit_code: small(keys::EXIT_CODE)?,
                    signal: small(keys::SIGNAL)?,
                }),
                _ => None,
            },
        }),
        Parameter::String(e) if e == "rejected" => Ok(StatusMsg::Rejected {
            header: decode_header(p)?,
            total: int(p, keys::REJECTED)? as u64,
        }),
        Parameter::String(e) if e == "paused" => Ok(StatusMsg::Paused {
            deaths: u32::try_from(int(p, keys::DEATHS)?)
                .map_err(|_| bad(keys::DEATHS, "out of range", "a u32"))?,
            window_s: u32::try_from(int(p, keys::WINDOW_S)?)
                .map_err(|_| bad(keys::WINDOW_S, "out of range", "a u32"))?,
            pause_ms: u64::try_from(int(p, keys::PAUSE_MS)?)
                .map_err(|_| bad(keys::PAUSE_MS, "negative", "a u64"))?,
            cause: match get(p, keys::FAULT_CAUSE)? {
                Parameter::String(c) => c.clone(),
                other => return Err(bad(keys::FAULT_CAUSE, format!("{other:?}"), "a string")),
            },
        }),
        Parameter::String(e) if e == "camera_down" => Ok(StatusMsg::CameraDown {
            why: match get(p, keys::WHY)? {
                Parameter::String(w) => w.clone(),
                other => return Err(bad(keys::WHY, format!("{other:?}"), "a string")),
            },
        }),
        Parameter::String(e) if e == "camera_up" => Ok(StatusMsg::CameraUp {
            outage_ms: u64::try_from(int(p, keys::OUTAGE_MS)?)
                .map_err(|_| bad(keys::OUTAGE_MS, "negative", "a u64"))?,
            attempts: u32::try_from(int(p, keys::ATTEMPTS)?)
                .map_err(|_| bad(keys::ATTEMPTS, "out of range", "a u32"))?,
        }),
        other => Err(bad(
            keys::EVENT,
            format!("{other:?}"),
            "\"started\", \"rejected\", \"paused\", \"camera_down\" or \"camera_up\"",
        )),
    }
}

/// preprocess → monitor: the role of each infer process, by process index.
#[must_use]
pub fn encode_roles(roles: &[Role]) -> (MetadataParameters, ArrayRef) {
    let mut p = MetadataParameters::new();
    let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    p.insert(keys::ROLES.into(), Parameter::String(names.join(",")));
    (p, Arc::new(UInt8Array::from(Vec::<u8>::new())))
}

pub fn decode_roles(p: &MetadataParameters) -> Result<Vec<Role>, MsgError> {
    let Parameter::String(s) = get(p, keys::ROLES)? else {
        return Err(bad(keys::ROLES, "not a string", "a string"));
    };
    s.split(',')
        .map(|r| {
            Role::parse(r).ok_or_else(|| bad(keys::ROLES, r.to_owned(), "active, standby or down"))
        })
        .collect()
}

/// The preview's word that it has shown a frame; `total` counts every frame shown so far, so a
/// lost message loses no count.
#[must_use]
pub fn encode_shown(header: &FrameHeader, total: u64) -> (MetadataParameters, ArrayRef) {
    let mut p = header_params(header);
    p.insert(keys::SHOWN.into(), Parameter::Integer(total as i64));
    (p, Arc::new(UInt8Array::from(Vec::<u8>::new())))
}

pub fn decode_shown(p: &MetadataParameters) -> Result<(FrameHeader, u64), MsgError> {
    Ok((decode_header(p)?, int(p, keys::SHOWN)? as u64))
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
        let frame = Frame {
            header: H,
            captured_unix_ns: 1_764_000_000_000_000_000,
            jpeg: &jpeg,
        };
        let (p, a) = frame.encode();
        assert_eq!(decode_frame(&p, a.as_ref()).expect("decodes"), frame);
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
            data: TensorData::F32(&data),
            latency: Latency {
                preprocess_us: 612,
                ..Latency::default()
            },
        };
        let (p, a) = msg.encode();
        assert_eq!(decode_tensor(&p, a.as_ref()).expect("decodes"), msg);
    }

    #[test]
    fn an_rgb_frame_for_the_gpu_round_trips_and_must_match_its_header() {
        let h = FrameHeader {
            width: 4,
            height: 2,
            ..H
        };
        let pixels: Vec<u8> = (0..24).collect();
        let mut msg = TensorMsg {
            header: h,
            letterbox: Letterbox::fit(4, 2, 8, 8, true, true),
            shape: vec![2, 4, 3],
            layout: TensorLayout::Nchw,
            data: TensorData::Rgb8(&pixels),
            latency: Latency::default(),
        };
        let (p, a) = msg.encode();
        assert_eq!(decode_tensor(&p, a.as_ref()).expect("decodes"), msg);
        msg.shape = vec![4, 2, 3];
        let (p, a) = msg.encode();
        let err = decode_tensor(&p, a.as_ref()).expect_err("transposed");
        assert!(err.to_string().contains("shape"), "{err}");
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
            data: TensorData::F32(&data),
            latency: Latency {
                preprocess_us: 612,
                ..Latency::default()
            },
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
            status: FrameStatus::Inferred,
            behind: None,
            detections: vec![d, d],
            latency: Latency {
                captured_unix_ns: 1_764_000_000_000_000_000,
                preprocess_us: 612,
                infer_us: 25_000,
                detect_us: 31_000,
            },
        };
        let (p, a) = msg.encode();
        assert_eq!(decode_detections(&p, a.as_ref()).expect("decodes"), msg);
        for status in FrameStatus::ALL {
            let mut empty = DetectionsMsg::not_inferred(H, status, Latency::default());
            empty.behind = (status == FrameStatus::Busy).then_some(2);
            let (p, a) = empty.encode();
            assert_eq!(decode_detections(&p, a.as_ref()).expect("decodes"), empty);
        }

        let t = Track {
            id: 7,
            class: 0,
            score: 0.5,
            bbox: d.bbox,
            hits: 4,
            misses: 1,
            lost: 2,
        };
        let msg = ResultMsg {
            header: H,
            status: FrameStatus::Inferred,
            detections: vec![d],
            tracks: vec![t, t],
            latency: Latency {
                preprocess_us: 1,
                infer_us: 2,
                ..Latency::default()
            },
        };
        let (p, a) = msg.encode();
        assert_eq!(decode_result(&p, a.as_ref()).expect("decodes"), msg);
        let missing = ResultMsg {
            status: FrameStatus::Missing,
            detections: vec![],
            ..msg
        };
        let (p, a) = missing.encode();
        assert_eq!(decode_result(&p, a.as_ref()).expect("decodes"), missing);
        let (mut p, a) = missing.encode();
        p.insert(keys::STATUS.into(), Parameter::String("asleep".into()));
        let err = decode_result(&p, a.as_ref()).expect_err("unknown status");
        assert!(err.to_string().contains("status"), "{err}");
    }

    #[test]
    fn ready_round_trips() {
        for r in [
            Ready {
                pid: 7,
                received: None,
            },
            Ready {
                pid: 7,
                received: Some(0),
            },
            Ready {
                pid: 9,
                received: Some(1234),
            },
        ] {
            let (p, _) = r.encode();
            assert_eq!(decode_ready(&p).expect("decodes"), r);
        }
    }

    #[test]
    fn status_and_shown_round_trip() {
        for msg in [
            StatusMsg::Started {
                pid: 4242,
                previous: None,
            },
            StatusMsg::Started {
                pid: 4243,
                previous: Some(FaultReport {
                    cause: "SIGSEGV".into(),
                    seq: 300,
                    exit_code: None,
                    signal: Some(11),
                }),
            },
            StatusMsg::Rejected {
                header: H,
                total: 2,
            },
            StatusMsg::Paused {
                deaths: 5,
                window_s: 60,
                pause_ms: 10_000,
                cause: "SIGSEGV".into(),
            },
            StatusMsg::CameraDown {
                why: "the camera is gone (No such device)".into(),
            },
            StatusMsg::CameraUp {
                outage_ms: 2_500,
                attempts: 4,
            },
        ] {
            let (p, _) = msg.encode();
            assert_eq!(decode_status(&p).expect("decodes"), msg);
        }
        let (p, _) = encode_shown(&H, 900);
        assert_eq!(decode_shown(&p).expect("decodes"), (H, 900));
        let mut bad = MetadataParameters::new();
        bad.insert(keys::EVENT.into(), Parameter::String("exploded".into()));
        assert!(decode_status(&bad).is_err());
        let roles = [Role::Active, Role::Standby, Role::Down];
        let (p, _) = encode_roles(&roles);
        assert_eq!(decode_roles(&p).expect("decodes"), roles);
        let mut bad = MetadataParameters::new();
        bad.insert(keys::ROLES.into(), Parameter::String("active,boss".into()));
        let err = decode_roles(&bad).expect_err("unknown role").to_string();
        assert!(err.contains("boss"), "{err}");
    }

    #[test]
    fn missing_key_and_wrong_payload_are_named() {
        let (mut p, a) = Frame {
            header: H,
            captured_unix_ns: 0,
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
            captured_unix_ns: 0,
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
