// Compiled only for tests (`#[cfg(test)] mod tests;` in lib.rs): `expect` is how a test
// fails, naming what it expected.
// Values parsed from text are compared exactly on purpose.
#![allow(clippy::float_cmp)]

use super::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write");
    p
}

fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let pairs: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k| {
        pairs
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    }
}

#[test]
fn a_file_of_the_old_shape_loads_with_paths_relative_to_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(
        dir.path(),
        "v.yml",
        "model: { path: m.onnx, labels: l.txt, provider: cpu, threads: 0, decoder: auto }\n\
         preprocess: { color: rgb, scale: 0.00392157, offsets: [0, 0, 0], keep_aspect: true,\n\
                       symmetric_padding: true, pad_value: 114, interval: 3 }\n\
         postprocess: { conf_threshold: 0.25, iou_threshold: 0.45, top_k: 300, class_agnostic: false,\n\
                        classes: {2: {conf_threshold: 0.6}} }\n\
         tracker: { iou_threshold: 0.3, max_age: 15 }\n",
    );
    let c = Config::load(&path).expect("loads");
    assert_eq!(c.model.path, dir.path().join("m.onnx"));
    assert_eq!(c.model.labels, Some(dir.path().join("l.txt")));
    assert_eq!(c.preprocess.interval.get(), 3);
    assert_eq!(c.tracker.max_age, 15);
    assert_eq!(c.tracker.max_coast, 90, "new keys keep their defaults");
    assert_eq!(
        c.postprocess.classes[&2].conf_threshold.map(Unit::get),
        Some(0.6)
    );
    assert_eq!(c.monitor.audit_db, dir.path().join("state/audit.db"));
}

#[test]
fn errors_name_the_file_the_line_and_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unknown = write(dir.path(), "a.yml", "model:\n  path: m.onnx\n  pth: x\n");
    let e = Config::load(&unknown).expect_err("unknown key").to_string();
    assert!(
        e.contains("a.yml") && e.contains("pth") && e.contains("line 3"),
        "{e}"
    );
    let range = write(
        dir.path(),
        "b.yml",
        "model: {path: m.onnx}\npostprocess:\n  conf_threshold: 1.5\n",
    );
    let e = Config::load(&range).expect_err("range").to_string();
    assert!(
        e.contains("conf_threshold") && e.contains("1.5") && e.contains("line 3"),
        "{e}"
    );
    let variant = write(
        dir.path(),
        "c.yml",
        "model:\n  path: m.onnx\n  provider: npu\n",
    );
    let e = Config::load(&variant).expect_err("variant").to_string();
    assert!(
        e.contains("provider") && e.contains("npu") && e.contains("line 3"),
        "{e}"
    );
    let zero = write(
        dir.path(),
        "d.yml",
        "model: {path: m.onnx}\npreprocess: {interval: 0}\n",
    );
    assert!(Config::load(&zero).is_err());
    let plan = write(
        dir.path(),
        "f.yml",
        "model: {path: m.onnx}\ninfer:\n  faults: explode@3\n",
    );
    let e = Config::load(&plan).expect_err("bad plan").to_string();
    assert!(
        e.contains("infer.faults") && e.contains("explode") && e.contains("line 3"),
        "{e}"
    );
    let none = write(dir.path(), "e.yml", "tracker: {max_age: 3}\n");
    let e = Config::load(&none).expect_err("no model").to_string();
    assert!(e.contains("model.path"), "{e}");
}

#[test]
fn overrides_speak_vigil_yml_and_unknown_keys_fail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "v.yml", "model: {path: m.onnx}\n");
    let src = Source {
        file: Some(path.clone()),
        overrides: vec![
            "tracker.max_age=40".parse().expect("parses"),
            "preprocess.offsets=[1, 2, 3]".parse().expect("parses"),
            "postprocess.classes.2.top_k=5".parse().expect("parses"),
            "model.provider=cuda".parse().expect("parses"),
        ],
    };
    let c = src.load().expect("loads");
    assert_eq!(c.tracker.max_age, 40);
    assert_eq!(c.preprocess.offsets, [1.0, 2.0, 3.0]);
    assert_eq!(c.postprocess.classes[&2].top_k, Some(5));
    assert_eq!(c.model.provider, Provider::Cuda);

    let bad = Source {
        file: Some(path.clone()),
        overrides: vec!["tracker.max_agee=40".parse().expect("parses")],
    };
    let e = bad.load().expect_err("unknown").to_string();
    assert!(
        e.contains("tracker.max_agee=40") && e.contains("max_agee"),
        "{e}"
    );
    let e = "track.VIGIL_MAX_AGE=40"
        .parse::<Override>()
        .expect_err("legacy")
        .to_string();
    assert!(e.contains("tracker.max_age=40"), "{e}");
    assert!("max_age".parse::<Override>().is_err());
}

#[test]
fn a_node_reads_the_file_and_overrides_from_its_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "v.yml", "model: {path: m.onnx}\n");
    let src = Source {
        file: Some(path.clone()),
        overrides: vec!["infer.deadline_ms=500".parse().expect("parses")],
    };
    let set = src.overrides_env().expect("some");
    let p = path.display().to_string();
    let again = Source::from_lookup(lookup(&[(CONFIG_ENV, &p), (SET_ENV, &set)])).expect("reads");
    assert_eq!(again, src);
    assert_eq!(again.load().expect("loads").infer.deadline_ms, 500);

    let e = Source::from_lookup(lookup(&[(CONFIG_ENV, &p), ("VIGIL_MAX_AGE", "30")]))
        .expect_err("legacy")
        .to_string();
    assert!(
        e.contains("VIGIL_MAX_AGE") && e.contains("tracker.max_age"),
        "{e}"
    );
}

#[test]
fn a_written_config_reads_back_the_same() {
    let mut c = Config::default();
    c.model.path = PathBuf::from("/m.onnx");
    c.postprocess.classes.insert(
        1,
        ClassOverrides {
            top_k: Some(3),
            ..ClassOverrides::default()
        },
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write(dir.path(), "v.yml", &c.to_yaml().expect("yaml"));
    let mut back = Config::load(&path).expect("loads");
    // Relative defaults are rebased on the file's folder.
    back.infer.state_dir = c.infer.state_dir.clone();
    back.monitor.audit_db = c.monitor.audit_db.clone();
    back.monitor.flight_dir = c.monitor.flight_dir.clone();
    back.model.tensorrt.cache_dir = c.model.tensorrt.cache_dir.clone();
    assert_eq!(back, c);
}

fn facts(input: &[i64], outputs: &[(&str, &[Option<usize>])]) -> ModelFacts {
    let layout = if input.get(1) == Some(&3) {
        TensorLayout::Nchw
    } else {
        TensorLayout::Nhwc
    };
    let (h, w) = match layout {
        TensorLayout::Nchw => (input[2], input[3]),
        TensorLayout::Nhwc => (input[1], input[2]),
    };
    ModelFacts {
        input: vigil_infer::InputSpec {
            name: "images".to_owned(),
            shape: input.to_vec(),
            layout,
            size: (w > 0 && h > 0).then_some((w as u32, h as u32)),
        },
        outputs: outputs
            .iter()
            .map(|(n, d)| vigil_detect::OutputShape {
                name: (*n).to_owned(),
                dims: d.to_vec(),
            })
            .collect(),
    }
}

#[test]
fn the_model_decides_size_layout_and_decoder() {
    let mut c = Config::default();
    c.model.path = PathBuf::from("y.onnx");
    let raw = facts(
        &[1, 3, 320, 320],
        &[("output0", &[Some(1), Some(22), Some(2100)])],
    );
    let r = Resolved::from_facts(c.clone(), raw.clone()).expect("resolves");
    assert_eq!((r.net_w, r.net_h, r.layout), (320, 320, TensorLayout::Nchw));
    assert_eq!(r.decoder, Layout::UltralyticsRaw);

    // The DeepStream-Yolo parser's decoder in front of a raw export: refused, naming both.
    c.model.decoder = Decoder::Boxes;
    let e = Resolved::from_facts(c.clone(), raw.clone())
        .expect_err("mismatch")
        .to_string();
    assert!(
        e.contains("y.onnx") && e.contains("`boxes`") && e.contains("[1, 22, 2100]"),
        "{e}"
    );
    c.model.decoder = Decoder::Auto;

    c.preprocess.net_w = Some(NetSize::try_from(640).expect("size"));
    let e = Resolved::from_facts(c.clone(), raw)
        .expect_err("size")
        .to_string();
    assert!(
        e.contains("preprocess.net_w") && e.contains("640") && e.contains("320"),
        "{e}"
    );

    let dynamic = facts(&[-1, 3, -1, -1], &[("output", &[None, None, Some(6)])]);
    c.preprocess.net_w = None;
    let e = Resolved::from_facts(c.clone(), dynamic.clone())
        .expect_err("dynamic")
        .to_string();
    assert!(e.contains("net_w") && e.contains("dynamic"), "{e}");
    c.preprocess.net_w = Some(NetSize::try_from(416).expect("size"));
    c.preprocess.net_h = Some(NetSize::try_from(384).expect("size"));
    let r = Resolved::from_facts(c, dynamic).expect("from the config");
    assert_eq!(
        (r.net_w, r.net_h, r.decoder),
        (416, 384, Layout::BoxesScoreClass)
    );
}

#[test]
fn gpu_only_settings_need_a_gpu_provider_before_anything_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let load = |extra: &str| {
        let path = write(
            dir.path(),
            "v.yml",
            &format!("model:\n  path: m.onnx\n{extra}"),
        );
        Config::load(&path)
    };
    let e = load("preprocess:\n  device: cuda\n")
        .expect_err("cuda letterbox on the cpu provider")
        .to_string();
    assert!(
        e.contains("preprocess.device") && e.contains("model.provider"),
        "{e}"
    );
    let e = load("infer:\n  faults: illegal@5\n")
        .expect_err("illegal@ on the cpu provider")
        .to_string();
    assert!(e.contains("infer.faults") && e.contains("illegal@"), "{e}");
    let c =
        load("  provider: cuda\ninfer:\n  faults: illegal@5,segv@9\n").expect("on a GPU provider");
    assert!(c.letterbox_on_gpu(), "auto follows the provider");
    assert!(c.infer.faults.has(Fault::Illegal));
    assert_eq!(c.model.cuda, CudaOptions::default());
    assert!(!c.model.cuda.tf32, "TF32 off: CPU and GPU detections agree");
    assert!(c.model.tensorrt.fp16);
    assert!(
        c.model.tensorrt.cache_dir.starts_with(dir.path()),
        "the TensorRT cache is relative to vigil.yml: {}",
        c.model.tensorrt.cache_dir.display()
    );
    let c = load("  provider: tensorrt\n  tensorrt:\n    fp16: false\n    cache_dir: /var/cache/trt\npreprocess:\n  device: cpu\n")
        .expect("tensorrt settings");
    assert!(!c.letterbox_on_gpu() && !c.model.tensorrt.fp16);
    assert_eq!(c.model.tensorrt.cache_dir, PathBuf::from("/var/cache/trt"));
}

#[test]
fn a_cuda_graph_over_dynamic_outputs_is_refused_before_anything_starts() {
    let mut c = Config::default();
    c.model.path = PathBuf::from("/m.onnx");
    c.model.provider = Provider::Cuda;
    c.model.cuda.cuda_graph = true;
    c.preprocess.net_w = Some(NetSize::try_from(320).expect("size"));
    c.preprocess.net_h = Some(NetSize::try_from(320).expect("size"));
    let dynamic = facts(&[-1, 3, -1, -1], &[("output0", &[None, Some(22), None])]);
    let e = Resolved::from_facts(c.clone(), dynamic.clone())
        .expect_err("dynamic outputs")
        .to_string();
    assert!(
        e.contains("cuda_graph") && e.contains("`output0` [?, 22, ?]"),
        "{e}"
    );
    let fixed = facts(
        &[1, 3, 320, 320],
        &[("output0", &[Some(1), Some(22), Some(2100)])],
    );
    Resolved::from_facts(c.clone(), fixed).expect("fixed outputs");
    c.model.provider = Provider::Cpu;
    Resolved::from_facts(c, dynamic).expect("no CUDA graph on the CPU");
}

#[test]
fn tracker_settings_that_do_nothing_are_warned_about() {
    let mut c = Config::default();
    assert!(c.warnings().is_empty(), "{:?}", c.warnings());
    c.tracker.max_age = 40;
    c.tracker.bytetrack.new_track_threshold = Unit::new_const(0.3);
    c.postprocess.conf_threshold = Unit::new_const(0.5);
    let w = c.warnings();
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(
        w[0].starts_with("tracker.max_age is set but applies to tracker.kind iou"),
        "{w:?}"
    );
    assert!(
        w[1].starts_with("postprocess.conf_threshold 0.5 is at or above"),
        "{w:?}"
    );
    assert!(
        w[2].starts_with("tracker.bytetrack.new_track_threshold 0.3"),
        "{w:?}"
    );
    c.tracker.kind = TrackerKind::Iou;
    let w = c.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with("tracker.bytetrack is set but applies to tracker.kind bytetrack"));
    // The shipped vigil.yml warns about nothing.
    let shipped =
        Config::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../vigil.yml"))
            .expect("loads");
    assert!(shipped.warnings().is_empty(), "{:?}", shipped.warnings());
}
