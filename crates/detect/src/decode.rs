//! Decoders from raw model outputs to candidate detections in network pixels.

use crate::geometry::{BBox, Detection};

/// One model output, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// The output layouts vigil decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Ultralytics raw export `[1, 4+nc, N]`: cx, cy, w, h, then one score per class.
    UltralyticsRaw,
    /// `[1, N, 6]`: x1, y1, x2, y2, score, class (DeepStream-Yolo heads, end-to-end exports).
    BoxesScoreClass,
    /// Three outputs, DeepStream-Yolo's older form: boxes `[1, N, 4]` (x1, y1, x2, y2), scores
    /// `[1, N, 1]`, classes `[1, N, 1]`. Scores and classes are told apart by name
    /// (`score…`, `class…`/`label…`), else taken in that order.
    SplitOutputs,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error(
        "model output `{name}` has shape {shape:?}, which no decoder understands (expected [1, 4+nc, N], [1, N, 6], or boxes [1, N, 4] + scores [1, N, 1] + classes [1, N, 1])"
    )]
    UnknownLayout { name: String, shape: Vec<usize> },
    #[error("model output `{name}` has shape {shape:?} but {len} values")]
    LengthMismatch {
        name: String,
        shape: Vec<usize>,
        len: usize,
    },
    #[error("model produced no outputs")]
    NoOutputs,
    #[error("model output `{name}` has shape {shape:?}, which the {layout:?} decoder cannot read")]
    WrongShape {
        name: String,
        shape: Vec<usize>,
        layout: Layout,
    },
}

impl Layout {
    /// Picks the decoder that fits an output's shape.
    pub fn detect(out: &OutputTensor) -> Result<Self, DecodeError> {
        match out.shape.as_slice() {
            [1, _, 6] => Ok(Self::BoxesScoreClass),
            [1, c, n] if *c >= 5 && n > c => Ok(Self::UltralyticsRaw),
            _ => Err(DecodeError::UnknownLayout {
                name: out.name.clone(),
                shape: out.shape.clone(),
            }),
        }
    }
}

impl Layout {
    /// The name vigil.yml uses for this decoder.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::UltralyticsRaw => "ultralytics",
            Self::BoxesScoreClass => "boxes",
            Self::SplitOutputs => "split",
        }
    }

    /// The output shape(s) this decoder reads, in words.
    #[must_use]
    pub fn expects(self) -> &'static str {
        match self {
            Self::UltralyticsRaw => "[1, 4+nc, N]",
            Self::BoxesScoreClass => "[1, N, 6]",
            Self::SplitOutputs => "boxes [1, N, 4] + scores [1, N, 1] + classes [1, N, 1]",
        }
    }
}

/// A model output as the model declares it: each dimension, `None` where dynamic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputShape {
    pub name: String,
    pub dims: Vec<Option<usize>>,
}

impl std::fmt::Display for OutputShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let dims: Vec<String> = self
            .dims
            .iter()
            .map(|d| d.map_or_else(|| "?".to_owned(), |d| d.to_string()))
            .collect();
        write!(f, "`{}` [{}]", self.name, dims.join(", "))
    }
}

/// No decoder (or not the one asked for) can read a model's outputs.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{}", describe_mismatch(*.wanted, .outputs))]
pub struct LayoutMismatch {
    /// The decoder asked for; `None` for auto.
    pub wanted: Option<Layout>,
    pub outputs: Vec<OutputShape>,
}

fn describe_mismatch(wanted: Option<Layout>, outputs: &[OutputShape]) -> String {
    let shapes: Vec<String> = outputs.iter().map(ToString::to_string).collect();
    let shapes = if shapes.is_empty() {
        "none".to_owned()
    } else {
        shapes.join(", ")
    };
    match wanted {
        Some(l) => format!(
            "decoder `{}` cannot read this model: it needs {}, the model's outputs are {shapes}",
            l.name(),
            l.expects()
        ),
        None => format!(
            "no decoder reads this model's outputs ({shapes}); vigil reads {}, {} or {}",
            Layout::UltralyticsRaw.expects(),
            Layout::BoxesScoreClass.expects(),
            Layout::SplitOutputs.expects()
        ),
    }
}

/// The decoder that will read outputs of these declared shapes: `wanted` when it can, else
/// (for auto) the one [`decode`] would pick. Auto needs the dimensions that tell the layouts
/// apart; a decoder named explicitly also accepts an output whose telling dimensions are
/// dynamic.
pub fn choose_layout(
    outputs: &[OutputShape],
    wanted: Option<Layout>,
) -> Result<Layout, LayoutMismatch> {
    let is = |d: Option<usize>, v: usize| d.is_none_or(|d| d == v);
    let three = |o: &OutputShape| o.dims.len() == 3 && is(o.dims[0], 1);
    let split = || {
        outputs.iter().any(|b| {
            three(b)
                && b.dims[2] == Some(4)
                && outputs
                    .iter()
                    .filter(|o| {
                        three(o)
                            && o.dims[2] == Some(1)
                            && (o.dims[1].is_none()
                                || b.dims[1].is_none()
                                || o.dims[1] == b.dims[1])
                    })
                    .count()
                    >= 2
        })
    };
    let single = |o: &OutputShape| -> Option<Layout> {
        if !three(o) {
            return None;
        }
        match (o.dims[1], o.dims[2]) {
            (_, Some(6)) => Some(Layout::BoxesScoreClass),
            (Some(c), n) if c >= 5 && n.is_none_or(|n| n > c) => Some(Layout::UltralyticsRaw),
            _ => None,
        }
    };
    // Asked for by name, a three-dimensional output whose telling dimensions are dynamic may
    // be read: the run-time shapes decide, frame by frame.
    let could_be = |o: &OutputShape, l: Layout| {
        three(o)
            && match l {
                Layout::BoxesScoreClass => o.dims[2].is_none_or(|d| d == 6),
                _ => o.dims[1].is_none_or(|c| c >= 5),
            }
    };
    let found = match wanted {
        Some(Layout::SplitOutputs) => split().then_some(Layout::SplitOutputs),
        Some(l) => outputs
            .iter()
            .any(|o| single(o) == Some(l) || (single(o).is_none() && could_be(o, l)))
            .then_some(l),
        None if split() => Some(Layout::SplitOutputs),
        None => outputs.iter().find_map(single),
    };
    found.ok_or_else(|| LayoutMismatch {
        wanted,
        outputs: outputs.to_vec(),
    })
}

/// The three outputs of the [`Layout::SplitOutputs`] form, if the model has them:
/// (boxes, scores, classes).
fn split_outputs(outputs: &[OutputTensor]) -> Option<[&OutputTensor; 3]> {
    let fits = |o: &&OutputTensor, w: usize| {
        matches!(o.shape.as_slice(), [1, _, last] if *last == w)
            && o.shape.iter().product::<usize>() == o.data.len()
    };
    let boxes = outputs.iter().find(|o| fits(o, 4))?;
    let n = boxes.shape[1];
    let ones: Vec<&OutputTensor> = outputs
        .iter()
        .filter(|o| fits(o, 1) && o.shape[1] == n)
        .collect();
    let named = |words: &[&str]| {
        ones.iter().copied().find(|o| {
            words
                .iter()
                .any(|w| o.name.to_ascii_lowercase().contains(w))
        })
    };
    match (
        named(&["score", "conf"]),
        named(&["class", "label"]),
        ones.as_slice(),
    ) {
        (Some(s), Some(c), _) => Some([boxes, s, c]),
        (_, _, [s, c, ..]) => Some([boxes, s, c]),
        _ => None,
    }
}

fn split_for(outputs: &[OutputTensor], layout: Option<Layout>) -> Option<[&OutputTensor; 3]> {
    layout
        .is_none_or(|l| l == Layout::SplitOutputs)
        .then(|| split_outputs(outputs))
        .flatten()
}

fn single_for(outputs: &[OutputTensor], layout: Option<Layout>) -> Option<&OutputTensor> {
    outputs
        .iter()
        .find(|o| Layout::detect(o).is_ok_and(|l| layout.is_none_or(|want| want == l)))
}

/// The outputs [`decode`] reads for `layout` (others, such as heatmaps, it never looks at).
#[must_use]
pub fn decoded_outputs(outputs: &[OutputTensor], layout: Option<Layout>) -> Vec<&OutputTensor> {
    match split_for(outputs, layout) {
        Some(three) => three.to_vec(),
        None => single_for(outputs, layout)
            .or(outputs.first())
            .into_iter()
            .collect(),
    }
}

/// Decodes the model's detection output into candidates scoring at least `threshold`, in
/// network pixels. The output used is the first whose shape fits `layout` (or, for `None`,
/// any known layout), so models with extra outputs (heatmaps, features) work as they are.
/// Non-finite candidates are skipped.
pub fn decode(
    outputs: &[OutputTensor],
    layout: Option<Layout>,
    threshold: f32,
) -> Result<Vec<Detection>, DecodeError> {
    let first = outputs.first().ok_or(DecodeError::NoOutputs)?;
    if let Some([b, s, c]) = split_for(outputs, layout) {
        let mut found = Vec::new();
        for ((bx, &score), &class) in b.data.chunks_exact(4).zip(&s.data).zip(&c.data) {
            if score >= threshold && score.is_finite() {
                push_valid(
                    &mut found,
                    class,
                    score,
                    BBox::new(bx[0], bx[1], bx[2], bx[3]),
                );
            }
        }
        return Ok(found);
    }
    let out = single_for(outputs, layout).unwrap_or(first);
    let expected: usize = out.shape.iter().product();
    if expected != out.data.len() {
        return Err(DecodeError::LengthMismatch {
            name: out.name.clone(),
            shape: out.shape.clone(),
            len: out.data.len(),
        });
    }
    let layout = match layout {
        Some(l) => l,
        None => Layout::detect(out)?,
    };
    let wrong = || DecodeError::WrongShape {
        name: out.name.clone(),
        shape: out.shape.clone(),
        layout,
    };
    let mut found = Vec::new();
    match (layout, out.shape.as_slice()) {
        (Layout::UltralyticsRaw, &[1, c, n]) if c >= 5 => {
            let row = |r: usize| &out.data[r * n..(r + 1) * n];
            for i in 0..n {
                let (mut best, mut class) = (f32::NEG_INFINITY, 0);
                for k in 0..c - 4 {
                    let s = row(4 + k)[i];
                    if s > best {
                        (best, class) = (s, k);
                    }
                }
                if best >= threshold && best.is_finite() {
                    let bbox = BBox::from_center(row(0)[i], row(1)[i], row(2)[i], row(3)[i]);
                    push_valid(&mut found, class as f32, best, bbox);
                }
            }
        }
        (Layout::BoxesScoreClass, &[1, _, 6]) => {
            for r in out.data.chunks_exact(6) {
                if r[4] >= threshold && r[4].is_finite() {
                    push_valid(&mut found, r[5], r[4], BBox::new(r[0], r[1], r[2], r[3]));
                }
            }
        }
        _ => return Err(wrong()),
    }
    Ok(found)
}

fn push_valid(found: &mut Vec<Detection>, class: f32, score: f32, bbox: BBox) {
    let class_ok = class.is_finite() && class >= 0.0 && class <= u32::MAX as f32;
    if class_ok && bbox.is_finite() && bbox.x2 >= bbox.x1 && bbox.y2 >= bbox.y1 {
        found.push(Detection {
            class: class as u32,
            score,
            bbox,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tensor(shape: &[usize], data: Vec<f32>) -> OutputTensor {
        OutputTensor {
            name: "out".into(),
            shape: shape.to_vec(),
            data,
        }
    }

    #[test]
    fn raw_layout_takes_best_class_and_converts_centres() {
        // 2 classes, 8 anchors; anchor 3 is class 1 at 0.9.
        let (c, n) = (6, 8);
        let mut d = vec![0.0; c * n];
        for (row, v) in [
            (0, 50.0),
            (1, 40.0),
            (2, 20.0),
            (3, 10.0),
            (4, 0.2),
            (5, 0.9),
        ] {
            d[row * n + 3] = v;
        }
        let got = decode(&[tensor(&[1, c, n], d)], None, 0.5).expect("decodes");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].class, 1);
        assert_eq!(got[0].bbox, BBox::new(40.0, 35.0, 60.0, 45.0));
    }

    #[test]
    fn six_column_layout_skips_low_scores_and_nan() {
        let d = vec![
            1.0,
            2.0,
            3.0,
            4.0,
            0.8,
            2.0, //
            1.0,
            2.0,
            3.0,
            4.0,
            0.1,
            2.0, //
            f32::NAN,
            2.0,
            3.0,
            4.0,
            0.9,
            2.0,
        ];
        let got = decode(&[tensor(&[1, 3, 6], d)], None, 0.3).expect("decodes");
        assert_eq!(
            got,
            vec![Detection {
                class: 2,
                score: 0.8,
                bbox: BBox::new(1.0, 2.0, 3.0, 4.0)
            }]
        );
    }

    #[test]
    fn the_output_that_fits_is_chosen() {
        let heatmap = tensor(&[1, 128, 128, 4], vec![0.0; 128 * 128 * 4]);
        let dets = tensor(&[1, 1, 6], vec![1.0, 2.0, 3.0, 4.0, 0.9, 0.0]);
        let got = decode(&[heatmap, dets], None, 0.5).expect("decodes");
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn three_outputs_are_found_by_shape_and_told_apart_by_name() {
        let boxes = OutputTensor {
            name: "boxes".into(),
            shape: vec![1, 2, 4],
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        };
        let classes = OutputTensor {
            name: "classes".into(),
            shape: vec![1, 2, 1],
            data: vec![3.0, 1.0],
        };
        let scores = OutputTensor {
            name: "scores".into(),
            shape: vec![1, 2, 1],
            data: vec![0.9, 0.1],
        };
        // Classes listed first: the names decide.
        let got = decode(&[boxes, classes, scores], None, 0.5).expect("decodes");
        assert_eq!(
            got,
            vec![Detection {
                class: 3,
                score: 0.9,
                bbox: BBox::new(1.0, 2.0, 3.0, 4.0)
            }]
        );
    }

    #[test]
    fn decoded_outputs_leave_the_others_out() {
        let heatmap = tensor(&[1, 128, 128, 4], vec![f32::NAN; 128 * 128 * 4]);
        let dets = tensor(&[1, 1, 6], vec![1.0, 2.0, 3.0, 4.0, 0.9, 0.0]);
        let outs = [heatmap, dets];
        let read = decoded_outputs(&outs, None);
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].shape, vec![1, 1, 6]);
    }

    #[test]
    fn unknown_shape_is_named_in_the_error() {
        let err = decode(&[tensor(&[2, 3], vec![0.0; 6])], None, 0.3).expect_err("no decoder");
        assert!(err.to_string().contains("[2, 3]"), "{err}");
    }

    fn shape(name: &str, dims: &[Option<usize>]) -> OutputShape {
        OutputShape {
            name: name.to_owned(),
            dims: dims.to_vec(),
        }
    }

    #[test]
    fn declared_shapes_pick_the_decoder_and_a_mismatch_names_both() {
        let raw = [shape("output0", &[Some(1), Some(22), Some(2100)])];
        assert_eq!(choose_layout(&raw, None), Ok(Layout::UltralyticsRaw));
        let err = choose_layout(&raw, Some(Layout::BoxesScoreClass)).expect_err("mismatch");
        let text = err.to_string();
        assert!(
            text.contains("`boxes`")
                && text.contains("[1, N, 6]")
                && text.contains("[1, 22, 2100]"),
            "{text}"
        );
        let dsy = [shape("output", &[None, None, Some(6)])];
        assert_eq!(choose_layout(&dsy, None), Ok(Layout::BoxesScoreClass));
        assert!(choose_layout(&dsy, Some(Layout::UltralyticsRaw)).is_err());
        let three = [
            shape("boxes", &[None, Some(2100), Some(4)]),
            shape("scores", &[None, Some(2100), Some(1)]),
            shape("classes", &[None, Some(2100), Some(1)]),
        ];
        assert_eq!(choose_layout(&three, None), Ok(Layout::SplitOutputs));
        assert_eq!(
            choose_layout(&three, Some(Layout::SplitOutputs)),
            Ok(Layout::SplitOutputs)
        );
        // All dynamic: auto cannot tell, a decoder asked for by name is let through.
        let unknown = [shape("out", &[None, None, None])];
        assert!(choose_layout(&unknown, None).is_err());
        assert_eq!(
            choose_layout(&unknown, Some(Layout::UltralyticsRaw)),
            Ok(Layout::UltralyticsRaw)
        );
        assert_eq!(
            choose_layout(&unknown, Some(Layout::BoxesScoreClass)),
            Ok(Layout::BoxesScoreClass)
        );
        let heatmap = [shape("hm", &[Some(1), Some(80), Some(128), Some(128)])];
        assert!(choose_layout(&heatmap, None).is_err());
    }

    proptest! {
        /// Decoders are total: arbitrary shapes and values give Ok or Err, never a panic, and
        /// every decoded detection is finite; three outputs of consistent shapes always decode
        /// with the split decoder (so its case is exercised, not skipped).
        #[test]
        fn decoders_are_total(
            shape in prop::collection::vec(0usize..12, 0..4),
            values in prop::collection::vec(prop::num::f32::ANY, 0..200),
            raw in any::<bool>(),
        ) {
            let layout = if raw { Layout::UltralyticsRaw } else { Layout::BoxesScoreClass };
            let n = values.len() / 6;
            let split = [
                tensor(&shape, values.clone()),
                tensor(&[1, n, 4], values[..4 * n].to_vec()),
                tensor(&[1, n, 1], values[4 * n..5 * n].to_vec()),
                tensor(&[1, n, 1], values[5 * n..6 * n].to_vec()),
            ];
            for l in [None, Some(layout), Some(Layout::SplitOutputs)] {
                for outs in [&split[..1], &split[..]] {
                    if let Ok(dets) = decode(outs, l, 0.25) {
                        prop_assert!(dets.iter().all(|d| d.bbox.is_finite() && d.score.is_finite()));
                    }
                }
            }
            let three = decode(&split[1..], Some(Layout::SplitOutputs), 0.25);
            prop_assert!(three.is_ok(), "{three:?}");
            prop_assert!(three.iter().flatten().all(|d| d.bbox.is_finite() && d.score.is_finite()));
        }
    }
}
