//! The imported config checked against the model it names, at import time: the model is
//! opened once (ONNX Runtime on the CPU) and [`Resolved::from_facts`] derives what the nodes
//! will derive later, so a config that cannot run is an error now, naming the nvinfer key.

use eyre::{bail, eyre};
use vigil_config::{Decoder, Layout, ModelFacts, NetSize, ResolveError, Resolved, TensorLayout};
use vigil_infer::{Backend, InferError, OrtBackend, OrtConfig, Provider};

use crate::nvinfer::{Nvinfer, named};

/// What the model says, checked against the imported config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSummary {
    pub net_w: u32,
    pub net_h: u32,
    pub layout: TensorLayout,
    /// The decoder that reads the model's outputs.
    pub decoder: Layout,
}

/// Opens the model and checks the config against it. A model that is not there yet, or no
/// ONNX Runtime to open it with, is a warning: the file can still be written.
pub(crate) fn check(
    nv: &mut Nvinfer,
    warnings: &mut Vec<String>,
) -> eyre::Result<Option<ModelSummary>> {
    let path = nv.config.model.path.clone();
    if !path.is_file() {
        warnings.push(format!(
            "{}: {} not found, so not checked against this config (input size, decoder); put the model there before running vigil",
            nv.onnx.at(),
            named(&nv.onnx).display()
        ));
        return Ok(None);
    }
    let mut backend = match OrtBackend::load(&OrtConfig {
        model: path,
        provider: Provider::Cpu,
        threads: 1,
        library: None,
        ..OrtConfig::default()
    }) {
        Ok(b) => b,
        Err(e @ (InferError::LibraryNotFound { .. } | InferError::Library { .. })) => {
            warnings.push(format!("{}: the model was not checked: {e}", nv.onnx.at()));
            return Ok(None);
        }
        Err(e) => bail!("{}: {e}", nv.onnx.at()),
    };
    let facts = ModelFacts::of(&backend);
    let layout = facts.input.layout;
    let mut run = |w: u32, h: u32| {
        let (w, h) = (w as usize, h as usize);
        let shape = match layout {
            TensorLayout::Nchw => [1, 3, h, w],
            TensorLayout::Nhwc => [1, h, w, 3],
        };
        let outputs = backend.run(&shape, &vec![0.0; 3 * w * h]).ok()?;
        let shapes: Vec<String> = outputs
            .iter()
            .map(|o| format!("`{}` {:?}", o.name, o.shape))
            .collect();
        Some(shapes.join(", "))
    };
    decide(nv, &facts, &mut run).map(Some)
}

/// One run of the model at a width and height: its output shapes, for messages.
pub(crate) type Run<'a> = dyn FnMut(u32, u32) -> Option<String> + 'a;

/// Checks the config against what the model declares; `run` gives the output shapes of one
/// run at a size, for messages. A model whose input size is dynamic, with no infer-dims, is
/// checked for the rest at a stand-in size, so that one import names every problem.
pub(crate) fn decide(
    nv: &mut Nvinfer,
    facts: &ModelFacts,
    run: &mut Run<'_>,
) -> eyre::Result<ModelSummary> {
    match resolve(nv, facts) {
        Ok(r) => Ok(ModelSummary {
            net_w: r.net_w,
            net_h: r.net_h,
            layout: r.layout,
            decoder: r.decoder,
        }),
        Err(e @ ResolveError::DynamicSize { .. }) => {
            let mut message = explain(nv, facts, e, &mut |_, _| None);
            let mut probe = nv.clone();
            let stand_in = NetSize::try_from(640).ok();
            (probe.config.preprocess.net_w, probe.config.preprocess.net_h) = (stand_in, stand_in);
            if let Err(e) = resolve(&mut probe, facts) {
                message = format!("{message}\n{}", explain(nv, facts, e, &mut |_, _| None));
            }
            Err(eyre!(message))
        }
        Err(e) => Err(eyre!(explain(nv, facts, e, run))),
    }
}

/// [`Resolved::from_facts`]. `NvDsInferParseYolo` reads DeepStream-Yolo's `[1, N, 6]` head, or
/// its three outputs in exports made before DeepStream-Yolo's 7.1 update: the decoder follows
/// the model where it has the older form.
fn resolve(nv: &mut Nvinfer, facts: &ModelFacts) -> Result<Resolved, ResolveError> {
    let resolved = Resolved::from_facts(nv.config.clone(), facts.clone());
    if matches!(resolved, Err(ResolveError::Decoder { .. }))
        && nv.parser.is_some()
        && nv.config.model.decoder == Decoder::Boxes
    {
        let mut split = nv.config.clone();
        split.model.decoder = Decoder::Split;
        if let Ok(r) = Resolved::from_facts(split, facts.clone()) {
            nv.config.model.decoder = Decoder::Split;
            return Ok(r);
        }
    }
    resolved
}

/// A resolve error in the nvinfer config's terms, naming the entry to change.
fn explain(nv: &Nvinfer, facts: &ModelFacts, e: ResolveError, run: &mut Run<'_>) -> String {
    let model = named(&nv.onnx);
    let model = model.display();
    match e {
        ResolveError::DynamicSize { input, .. } => format!(
            "{}: the input size of {model} is dynamic ({input:?}) and the config has no infer-dims; \
             set infer-dims=3;H;W to the size the model was exported for (e.g. infer-dims=3;640;640)",
            nv.onnx.at()
        ),
        ResolveError::Disagrees {
            key,
            configured,
            input,
            model_says,
            ..
        } => {
            let entry = if key == "preprocess.layout" {
                nv.input_order.as_ref()
            } else {
                nv.infer_dims.as_ref()
            };
            format!(
                "{}: but the input of {model} is {input:?} ({} {model_says}, not {configured})",
                entry.unwrap_or(&nv.onnx).at(),
                key.trim_start_matches("preprocess.")
            )
        }
        ResolveError::Decoder { mismatch, .. } => {
            let p = &nv.config.preprocess;
            let size = facts
                .input
                .size
                .or(p.net_w.zip(p.net_h).map(|(w, h)| (w.get(), h.get())));
            let ran = size
                .and_then(|(w, h)| Some((w, h, run(w, h)?)))
                .map(|(w, h, shapes)| format!(" (one run at {w}x{h} gives {shapes})"))
                .unwrap_or_default();
            match &nv.parser {
                Some(parser) => format!(
                    "{}: {mismatch}{ran}; the parser reads models exported by DeepStream-Yolo's \
                     utils/export_*.py, and {model} is not one",
                    parser.at()
                ),
                None => format!("{}: {model}: {mismatch}{ran}", nv.onnx.at()),
            }
        }
        ResolveError::Model(e) => format!("{}: {e}", nv.onnx.at()),
        e @ ResolveError::CudaGraph { .. } => format!("{}: {e}", nv.onnx.at()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use vigil_detect::OutputShape;
    use vigil_infer::InputSpec;

    use super::*;
    use crate::{ini, nvinfer};

    fn mapped(text: &str) -> Nvinfer {
        let path = Path::new("c.txt");
        let groups = ini::parse(path, text).expect("parses");
        nvinfer::map(path, &groups, &[], Path::new("/nowhere"), &mut Vec::new()).expect("maps")
    }

    fn facts(input: &[i64], outputs: &[(&str, &[Option<usize>])]) -> ModelFacts {
        let size = match *input {
            [_, _, h, w] if h > 0 && w > 0 => Some((w as u32, h as u32)),
            _ => None,
        };
        ModelFacts {
            input: InputSpec {
                name: "images".into(),
                shape: input.to_vec(),
                layout: TensorLayout::Nchw,
                size,
            },
            outputs: outputs
                .iter()
                .map(|(name, dims)| OutputShape {
                    name: (*name).into(),
                    dims: dims.to_vec(),
                })
                .collect(),
        }
    }

    const HEAD: &[Option<usize>] = &[None, None, Some(6)];
    const RAW: &[Option<usize>] = &[None, Some(22), None];
    const YOLO: &str = "[property]\nonnx-file=m.onnx\nparse-bbox-func-name=NvDsInferParseYolo\n";

    #[test]
    fn a_dynamic_input_size_needs_infer_dims() {
        let dynamic = facts(&[-1, 3, -1, -1], &[("output", HEAD)]);
        let err = decide(&mut mapped(YOLO), &dynamic, &mut |_, _| None)
            .expect_err("no size")
            .to_string();
        assert!(
            err.starts_with("c.txt:2: onnx-file=m.onnx: the input size of m.onnx is dynamic")
                && err.contains("set infer-dims=3;H;W"),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "nothing else is wrong: {err}");
        let with_dims = format!("{YOLO}infer-dims=3;480;640\n");
        let ok = decide(&mut mapped(&with_dims), &dynamic, &mut |_, _| None).expect("sized");
        assert_eq!(
            (ok.net_w, ok.net_h, ok.decoder),
            (640, 480, Layout::BoxesScoreClass)
        );
    }

    #[test]
    fn a_decoder_that_cannot_read_the_model_names_the_parser_and_the_shapes() {
        let raw = facts(&[1, 3, 320, 320], &[("output0", RAW)]);
        let mut ran = None;
        let err = decide(&mut mapped(YOLO), &raw, &mut |w, h| {
            ran = Some((w, h));
            Some("`output0` [1, 22, 2100]".into())
        })
        .expect_err("boxes cannot read a raw export")
        .to_string();
        assert_eq!(ran, Some((320, 320)));
        assert!(
            err.starts_with("c.txt:3: parse-bbox-func-name=NvDsInferParseYolo: decoder `boxes`")
                && err.contains("`output0` [?, 22, ?]")
                && err.contains("[1, 22, 2100]"),
            "{err}"
        );
        // Dynamic too: both problems at once.
        let dynamic = facts(&[-1, 3, -1, -1], &[("output0", RAW)]);
        let err = decide(&mut mapped(YOLO), &dynamic, &mut |_, _| None)
            .expect_err("two problems")
            .to_string();
        assert!(
            err.contains("infer-dims=3;H;W") && err.contains("decoder `boxes`"),
            "{err}"
        );
        // Without a parser the decoder is picked from the outputs.
        let auto = decide(
            &mut mapped("[property]\nonnx-file=m.onnx\n"),
            &raw,
            &mut |_, _| None,
        )
        .expect("auto");
        assert_eq!(auto.decoder, Layout::UltralyticsRaw);
    }

    #[test]
    fn the_yolo_parser_reads_the_older_three_outputs() {
        let three = facts(
            &[1, 3, 320, 320],
            &[
                ("boxes", &[None, None, Some(4)]),
                ("scores", &[None, None, Some(1)]),
                ("classes", &[None, None, Some(1)]),
            ],
        );
        let mut nv = mapped(YOLO);
        let ok = decide(&mut nv, &three, &mut |_, _| None).expect("split");
        assert_eq!(ok.decoder, Layout::SplitOutputs);
        assert_eq!(nv.config.model.decoder, Decoder::Split);
    }

    #[test]
    fn infer_dims_and_input_order_must_agree_with_the_model() {
        let fixed = facts(&[1, 3, 320, 320], &[("output", HEAD)]);
        let err = decide(
            &mut mapped(&format!("{YOLO}infer-dims=3;640;640\n")),
            &fixed,
            &mut |_, _| None,
        )
        .expect_err("640 is not 320")
        .to_string();
        assert!(
            err.starts_with(
                "c.txt:4: infer-dims=3;640;640: but the input of m.onnx is [1, 3, 320, 320]"
            ),
            "{err}"
        );
        let err = decide(
            &mut mapped(&format!("{YOLO}network-input-order=1\n")),
            &fixed,
            &mut |_, _| None,
        )
        .expect_err("nhwc is not nchw")
        .to_string();
        assert!(
            err.starts_with("c.txt:4: network-input-order=1: but the input of m.onnx"),
            "{err}"
        );
    }
}
