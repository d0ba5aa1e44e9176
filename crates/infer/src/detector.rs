//! The per-frame core every caller shares — the infer node, `vigil bench`, the parity tests
//! and the GPU check: a tensor → the model → its decoded outputs checked → NMS → detections in
//! source pixels.

use vigil_detect::{
    DecodeError, Detection, Letterbox, OutputTensor, PostprocessConfig, decoded_outputs,
    postprocess, postprocess_candidates,
};

use crate::{Backend, InferError, Outputs, RgbFrame};

/// Why a frame got no detections.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// NaN or inf in what the model was given or in what the decoder reads: the frame is
    /// rejected, nothing is decoded from it.
    #[error("{0} holds NaN or inf")]
    NonFinite(&'static str),
    #[error(transparent)]
    Backend(#[from] InferError),
    #[error(transparent)]
    Decode(#[from] DecodeError),
}

/// A loaded model and what turns its outputs into detections.
#[derive(Debug)]
pub struct Detector<B> {
    backend: B,
    post: PostprocessConfig,
}

impl<B: Backend> Detector<B> {
    pub fn new(backend: B, post: PostprocessConfig) -> Self {
        Self { backend, post }
    }

    pub fn backend(&self) -> &B {
        &self.backend
    }

    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    pub fn post(&self) -> &PostprocessConfig {
        &self.post
    }

    /// One frame's detections, in source pixels through `letterbox`.
    pub fn detect(
        &mut self,
        shape: &[usize],
        tensor: &[f32],
        letterbox: &Letterbox,
    ) -> Result<Vec<Detection>, FrameError> {
        if !tensor.iter().all(|v| v.is_finite()) {
            return Err(FrameError::NonFinite("input tensor"));
        }
        let outputs = self.backend.run(shape, tensor)?;
        self.finish_raw(&outputs, letterbox)
    }

    /// One decoded frame's detections, the backend letterboxing it on its device (`letterbox`
    /// says how, as the host would have).
    pub fn detect_frame(
        &mut self,
        frame: &RgbFrame<'_>,
        letterbox: &Letterbox,
    ) -> Result<Vec<Detection>, FrameError> {
        match self.backend.run_frame(frame)? {
            Outputs::Raw(outputs) => self.finish_raw(&outputs, letterbox),
            Outputs::Candidates {
                candidates,
                nonfinite,
            } => {
                let finite = candidates
                    .iter()
                    .all(|d| d.score.is_finite() && d.bbox.is_finite());
                if nonfinite > 0 || !finite {
                    return Err(FrameError::NonFinite("model output"));
                }
                Ok(postprocess_candidates(candidates, &self.post, letterbox))
            }
        }
    }

    fn finish_raw(
        &self,
        outputs: &[OutputTensor],
        letterbox: &Letterbox,
    ) -> Result<Vec<Detection>, FrameError> {
        // Only what the decoder reads: a model's other outputs (heatmaps) can be large.
        let read = decoded_outputs(outputs, self.post.layout);
        if !read.iter().all(|o| o.data.iter().all(|v| v.is_finite())) {
            return Err(FrameError::NonFinite("model output"));
        }
        Ok(postprocess(outputs, &self.post, letterbox)?)
    }
}

/// One run on zeros, so the first real frame does not pay for lazy initialisation (and a
/// restarted process is at full speed at once). Skipped for dynamic input sizes.
pub fn warm_up(backend: &mut impl Backend) -> Result<(), InferError> {
    let shape: Vec<usize> = backend
        .input()
        .shape
        .iter()
        .map(|&d| usize::try_from(d).unwrap_or(0))
        .collect();
    if shape.iter().all(|&d| d > 0) {
        let zeros = vec![0.0f32; shape.iter().product()];
        backend.run(&shape, &zeros)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InputSpec;
    use vigil_detect::{OutputShape, OutputTensor, TensorLayout};

    /// Answers every run with one `[1, 2, 6]` output: a box at (10,10)-(20,20) scoring `score`.
    struct Fake {
        input: InputSpec,
        score: f32,
        fail: bool,
    }

    impl Backend for Fake {
        fn input(&self) -> &InputSpec {
            &self.input
        }
        fn outputs(&self) -> &[OutputShape] {
            &[]
        }
        fn run(&mut self, _: &[usize], _: &[f32]) -> Result<Vec<OutputTensor>, InferError> {
            if self.fail {
                return Err(InferError::Run("out of memory".into()));
            }
            Ok(vec![OutputTensor {
                name: "out".into(),
                shape: vec![1, 2, 6],
                data: vec![
                    10.0, 10.0, 20.0, 20.0, self.score, 0.0, //
                    0.0, 0.0, 1.0, 1.0, 0.01, 1.0,
                ],
            }])
        }
    }

    fn detector(score: f32, fail: bool) -> Detector<Fake> {
        Detector::new(
            Fake {
                input: InputSpec {
                    name: "x".into(),
                    shape: vec![1, 3, 4, 4],
                    layout: TensorLayout::Nchw,
                    size: Some((4, 4)),
                },
                score,
                fail,
            },
            PostprocessConfig::default(),
        )
    }

    #[test]
    fn a_frame_becomes_detections_and_bad_ones_say_why() {
        let lb = Letterbox::fit(4, 4, 4, 4, false, false);
        let tensor = vec![0.5; 48];
        let dets = detector(0.9, false)
            .detect(&[1, 3, 4, 4], &tensor, &lb)
            .expect("detects");
        assert_eq!(dets.len(), 1, "the 0.01 candidate is under the threshold");
        assert!((dets[0].score - 0.9).abs() < 1e-6);

        let mut nan = tensor.clone();
        nan[7] = f32::NAN;
        assert!(matches!(
            detector(0.9, false).detect(&[1, 3, 4, 4], &nan, &lb),
            Err(FrameError::NonFinite("input tensor"))
        ));
        assert!(matches!(
            detector(f32::INFINITY, false).detect(&[1, 3, 4, 4], &tensor, &lb),
            Err(FrameError::NonFinite("model output"))
        ));
        let err = detector(0.9, true)
            .detect(&[1, 3, 4, 4], &tensor, &lb)
            .expect_err("fails");
        assert!(err.to_string().contains("out of memory"), "{err}");
    }

    /// A backend that decodes on its device: candidates in network pixels, and how many
    /// anchors held NaN or inf.
    struct OnDevice(Vec<Detection>, u32, InputSpec);

    impl Backend for OnDevice {
        fn input(&self) -> &InputSpec {
            &self.2
        }
        fn outputs(&self) -> &[OutputShape] {
            &[]
        }
        fn run(&mut self, _: &[usize], _: &[f32]) -> Result<Vec<OutputTensor>, InferError> {
            Err(InferError::Run("frames only".into()))
        }
        fn run_frame(&mut self, _: &RgbFrame<'_>) -> Result<Outputs, InferError> {
            Ok(Outputs::Candidates {
                candidates: self.0.clone(),
                nonfinite: self.1,
            })
        }
    }

    #[test]
    fn candidates_decoded_on_the_device_get_thresholds_nms_and_source_pixels() {
        use vigil_detect::{BBox, ClassAttrs};
        let spec = InputSpec {
            name: "x".into(),
            shape: vec![1, 3, 8, 8],
            layout: TensorLayout::Nchw,
            size: Some((8, 8)),
        };
        let det = |class, score, x| Detection {
            class,
            score,
            bbox: BBox::new(x, 2.0, x + 2.0, 4.0),
        };
        // Two overlapping boxes of class 0 (NMS keeps one), class 1 under its own threshold.
        let cands = vec![det(0, 0.9, 1.0), det(0, 0.8, 1.1), det(1, 0.5, 5.0)];
        let mut post = PostprocessConfig::default();
        post.nms.classes.insert(
            1,
            ClassAttrs {
                threshold: Some(0.6),
                ..ClassAttrs::default()
            },
        );
        // A 16x16 frame letterboxed into 8x8: boxes double on the way back.
        let lb = Letterbox::fit(16, 16, 8, 8, true, true);
        let pixels = vec![0u8; 16 * 16 * 3];
        let frame = RgbFrame {
            width: 16,
            height: 16,
            pixels: &pixels,
        };
        let mut d = Detector::new(OnDevice(cands.clone(), 0, spec.clone()), post.clone());
        let dets = d.detect_frame(&frame, &lb).expect("detects");
        assert_eq!(dets.len(), 1, "{dets:?}");
        assert_eq!(
            (dets[0].class, dets[0].bbox),
            (0, BBox::new(2.0, 4.0, 6.0, 8.0))
        );
        let mut bad = Detector::new(OnDevice(cands, 3, spec), post);
        assert!(matches!(
            bad.detect_frame(&frame, &lb),
            Err(FrameError::NonFinite("model output"))
        ));
    }
}
