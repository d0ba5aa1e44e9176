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
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error(
        "model output `{name}` has shape {shape:?}, which no decoder understands (expected [1, 4+nc, N] or [1, N, 6])"
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
    let out = outputs
        .iter()
        .find(|o| Layout::detect(o).is_ok_and(|l| layout.is_none_or(|want| want == l)))
        .unwrap_or(first);
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
    fn unknown_shape_is_named_in_the_error() {
        let err = decode(&[tensor(&[2, 3], vec![0.0; 6])], None, 0.3).expect_err("no decoder");
        assert!(err.to_string().contains("[2, 3]"), "{err}");
    }

    proptest! {
        /// Decoders are total: arbitrary shapes and values give Ok or Err, never a panic, and
        /// every decoded detection is finite.
        #[test]
        fn decoders_are_total(
            shape in prop::collection::vec(0usize..12, 0..4),
            values in prop::collection::vec(prop::num::f32::ANY, 0..200),
            raw in any::<bool>(),
        ) {
            let layout = if raw { Layout::UltralyticsRaw } else { Layout::BoxesScoreClass };
            for l in [None, Some(layout)] {
                if let Ok(dets) = decode(&[tensor(&shape, values.clone())], l, 0.25) {
                    prop_assert!(dets.iter().all(|d| d.bbox.is_finite() && d.score.is_finite()));
                }
            }
        }
    }
}
