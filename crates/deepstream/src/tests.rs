// Compiled only for tests (`#[cfg(test)] mod tests;` in lib.rs): `expect` is how a test
// fails, naming what it expected.
//! Whole imports: the customer's fixtures, DeepStream-Yolo's own configs run from their own
//! folder with bare file names, deepstream-app configs, and the model checks on real models.

use std::fs;

use vigil_config::{ClassOverrides, ColorFormat, Decoder, Layout, NetSize, TensorLayout, Unit};

use super::*;

/// The project folder.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const INFER: &str = "config_infer_primary_yoloV8.txt";
const APP: &str = "deepstream_app_config.txt";
/// The DeepStream-Yolo `[1, N, 6]` twin of the `YOLOv8n` export, its three-output twin, and the
/// raw Ultralytics export (`[1, 22, N]`). All three leave the input size dynamic.
const HEAD: &str = "nudenet_yolov8n_320n_dsy.onnx";
const THREE: &str = "nudenet_yolov8n_320n_dsy3.onnx";
const RAW: &str = "nudenet_yolov8n_320n.onnx";

/// A folder as a DeepStream-Yolo user has it: the project's configs and labels, with the one
/// edit its docs/YOLOv8.md asks for, and `model` (from models/) as the `yolov8s.onnx` its
/// config names.
fn deepstream_yolo(model: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tmp");
    for f in [INFER, APP, "labels.txt"] {
        fs::copy(
            root().join("tests/fixtures/deepstream-yolo").join(f),
            dir.path().join(f),
        )
        .expect("copy fixture");
    }
    edit(
        dir.path(),
        APP,
        "config-file=config_infer_primary.txt",
        "config-file=config_infer_primary_yoloV8.txt",
    );
    if let Some(m) = model {
        fs::copy(
            root().join("models").join(m),
            dir.path().join("yolov8s.onnx"),
        )
        .expect("model");
    }
    dir
}

fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = fs::read_to_string(&path).expect("read");
    assert!(text.contains(from), "{file} has no `{from}`");
    fs::write(&path, text.replacen(from, to, 1)).expect("write");
}

/// What the import error says: set infer-dims for the dynamic-size model.
fn set_infer_dims(dir: &Path, file: &str) {
    edit(
        dir,
        file,
        "symmetric-padding=1\n",
        "symmetric-padding=1\ninfer-dims=3;320;320\n",
    );
}

#[test]
fn deepstream_yolos_own_config_imports_from_its_own_folder() {
    let dir = deepstream_yolo(Some(HEAD));
    let run = || import_in(dir.path(), Path::new(INFER), None, Path::new("vigil.yml"));
    let err = run().expect_err("dynamic input size").to_string();
    assert!(
        err.starts_with("config_infer_primary_yoloV8.txt:5: onnx-file=yolov8s.onnx: the input size of yolov8s.onnx is dynamic")
            && err.contains("set infer-dims=3;H;W"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "the [1, N, 6] head fits: {err}");
    assert!(!dir.path().join("vigil.yml").exists());

    set_infer_dims(dir.path(), INFER);
    let report = run().expect("imports");
    assert_eq!(
        report.warnings,
        [
            "config_infer_primary_yoloV8.txt:6: model-engine-file=model_b1_gpu0_fp32.engine: a TensorRT engine; vigil runs onnx-file=yolov8s.onnx"
        ]
    );
    assert_eq!(report.sources, [PathBuf::from(INFER)]);
    assert_eq!(
        report.model,
        Some(ModelSummary {
            net_w: 320,
            net_h: 320,
            layout: TensorLayout::Nchw,
            decoder: Layout::BoxesScoreClass,
        })
    );
    let c = &report.config;
    assert_eq!(c.model.path, PathBuf::from("yolov8s.onnx"));
    assert_eq!(c.model.labels, Some(PathBuf::from("labels.txt")));
    assert_eq!(c.model.decoder, Decoder::Boxes);
    assert!(c.preprocess.keep_aspect && c.preprocess.symmetric_padding);
    assert_eq!(
        (c.preprocess.pad_value, c.preprocess.interval.get()),
        (0, 1)
    );
    assert_eq!(
        (c.postprocess.conf_threshold.get(), c.postprocess.top_k),
        (0.25, 300)
    );

    // The written file loads as every vigil process will load it.
    let yml = dir.path().join("vigil.yml");
    let text = fs::read_to_string(&yml).expect("written");
    assert!(
        text.starts_with("# vigil.yml imported from config_infer_primary_yoloV8.txt by `vigil import-deepstream`.\n# Checked against the model: input 320x320 nchw, decoder boxes.\n"),
        "{text}"
    );
    let loaded = Config::load(&yml).expect("loads");
    assert_eq!(loaded.model.path, dir.path().join("yolov8s.onnx"));
    assert_eq!(
        (&loaded.preprocess, &loaded.postprocess, &loaded.tracker),
        (&c.preprocess, &c.postprocess, &c.tracker)
    );
}

#[test]
fn the_deepstream_app_config_leads_to_its_nvinfer_config() {
    let dir = deepstream_yolo(Some(HEAD));
    set_infer_dims(dir.path(), INFER);
    let report =
        import_in(dir.path(), Path::new(APP), None, Path::new("out/vigil.yml")).expect("imports");
    assert_eq!(
        report.sources,
        [PathBuf::from(APP), PathBuf::from(INFER)],
        "no [tracker] in it"
    );
    // [application], [tiled-display], [source0], [sink0], [osd], [streammux], [tests] and the
    // [primary-gie] keys are all known.
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0].starts_with("config_infer_primary_yoloV8.txt:6: model-engine-file"),
        "{:?}",
        report.warnings
    );
    assert_eq!(report.config.model.path, PathBuf::from("../yolov8s.onnx"));
    let text = fs::read_to_string(dir.path().join("out/vigil.yml")).expect("written");
    assert!(
        text.starts_with(
            "# vigil.yml imported from deepstream_app_config.txt and config_infer_primary_yoloV8.txt by"
        ),
        "{text}"
    );
}

#[test]
fn a_raw_ultralytics_export_behind_the_yolo_parser_is_an_error() {
    let dir = deepstream_yolo(Some(RAW));
    let run = || import_in(dir.path(), Path::new(APP), None, Path::new("vigil.yml"));
    let err = run().expect_err("dynamic and unreadable").to_string();
    assert!(
        err.contains("infer-dims=3;H;W") && err.contains("decoder `boxes` cannot read"),
        "both problems at once: {err}"
    );
    set_infer_dims(dir.path(), INFER);
    let err = run().expect_err("unreadable").to_string();
    assert!(
        err.starts_with("config_infer_primary_yoloV8.txt:21: parse-bbox-func-name=NvDsInferParseYolo: decoder `boxes` cannot read this model")
            && err.contains("`output0` [?, 22, ?]")
            && err.contains("`output0` [1, 22, 2100]")
            && err.contains("yolov8s.onnx is not one"),
        "{err}"
    );
    assert!(!dir.path().join("vigil.yml").exists(), "nothing written");
}

#[test]
fn the_yolo_parser_in_front_of_an_older_three_output_export_reads_it_split() {
    let dir = deepstream_yolo(Some(THREE));
    set_infer_dims(dir.path(), INFER);
    let report =
        import_in(dir.path(), Path::new(INFER), None, Path::new("vigil.yml")).expect("imports");
    assert_eq!(report.config.model.decoder, Decoder::Split);
    assert_eq!(report.model.map(|m| m.decoder), Some(Layout::SplitOutputs));
}

#[test]
fn a_model_not_there_yet_is_a_warning_and_the_file_is_written() {
    let dir = deepstream_yolo(None);
    let report =
        import_in(dir.path(), Path::new(INFER), None, Path::new("vigil.yml")).expect("imports");
    assert_eq!(report.model, None);
    assert!(
        report.warnings.iter().any(|w| w.starts_with(
            "config_infer_primary_yoloV8.txt:5: onnx-file=yolov8s.onnx: yolov8s.onnx not found"
        )),
        "{:?}",
        report.warnings
    );
    assert!(dir.path().join("vigil.yml").is_file());
}

#[test]
fn primary_gie_keys_win_and_the_tracker_group_names_the_tracker_config() {
    let dir = tempfile::tempdir().expect("tmp");
    let d = dir.path();
    fs::create_dir_all(d.join("nvinfer")).expect("mkdir");
    fs::create_dir_all(d.join("trk")).expect("mkdir");
    let fixtures = root().join("tests/fixtures");
    for f in [INFER, "labels.txt"] {
        fs::copy(
            fixtures.join("deepstream-yolo").join(f),
            d.join("nvinfer").join(f),
        )
        .expect("copy");
    }
    set_infer_dims(&d.join("nvinfer"), INFER);
    edit(&d.join("nvinfer"), INFER, "interval=0", "interval=1");
    fs::copy(
        root().join("models").join(HEAD),
        d.join("nvinfer/yolov8s.onnx"),
    )
    .expect("model");
    fs::copy(
        fixtures.join("deepstream/config_tracker_IOU.yml"),
        d.join("trk/config_tracker_IOU.yml"),
    )
    .expect("copy");
    fs::write(
        d.join("app.txt"),
        "[application]\nenable-perf-measurement=1\n\n\
         [primary-gie]\nenable=1\ngpu-id=0\nconfig-file=nvinfer/config_infer_primary_yoloV8.txt\n\
         interval=4\nmodel-engine-file=app_b1.engine\nbbox-border-color0=1;0;0;1\nfrobnicate=2\n\n\
         [tracker]\nenable=1\ntracker-width=640\n\
         ll-lib-file=/opt/nvidia/deepstream/deepstream/lib/libnvds_nvmultiobjecttracker.so\n\
         ll-config-file=trk/config_tracker_IOU.yml\n\n\
         [secondary-gie0]\nenable=1\n\n[sink0]\nenable=1\n",
    )
    .expect("write");
    let run = |tracker: Option<&Path>| {
        import_in(d, Path::new("app.txt"), tracker, Path::new("vigil.yml"))
    };
    let report = run(None).expect("imports");
    assert_eq!(
        report.sources,
        [
            PathBuf::from("app.txt"),
            PathBuf::from("nvinfer/config_infer_primary_yoloV8.txt"),
            PathBuf::from("trk/config_tracker_IOU.yml"),
        ]
    );
    assert_eq!(
        report.config.preprocess.interval.get(),
        5,
        "[primary-gie] interval=4 wins over the nvinfer config's 1"
    );
    assert_eq!(report.config.tracker.max_age, 38);
    assert_eq!(
        report.config.model.path,
        PathBuf::from("nvinfer/yolov8s.onnx")
    );
    assert_eq!(
        report.config.model.labels,
        Some(PathBuf::from("nvinfer/labels.txt"))
    );
    assert_eq!(
        report.warnings,
        [
            "app.txt:11: frobnicate=2: unknown key, ignored",
            "app.txt:19: [secondary-gie0]: vigil runs the primary detector only, ignored",
            "app.txt:9: model-engine-file=app_b1.engine: a TensorRT engine; vigil runs onnx-file=yolov8s.onnx",
        ]
    );

    // An explicit --tracker wins.
    fs::write(
        d.join("t.yml"),
        "TargetManagement:\n  maxShadowTrackingAge: 7\n",
    )
    .expect("write");
    let report = run(Some(Path::new("t.yml"))).expect("imports");
    assert_eq!(report.config.tracker.max_age, 7);
    assert_eq!(report.sources.last(), Some(&PathBuf::from("t.yml")));

    // enable=0: no tracker config.
    edit(
        d,
        "app.txt",
        "enable=1\ntracker-width",
        "enable=0\ntracker-width",
    );
    let report = run(None).expect("imports");
    assert_eq!(report.sources.len(), 2);
    assert_eq!(report.config.tracker.max_age, 30, "vigil's default");
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.starts_with("app.txt:13: [tracker] is not enabled")),
        "{:?}",
        report.warnings
    );
}

#[test]
fn app_config_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().expect("tmp");
    let app = |text: &str| {
        fs::write(dir.path().join("app.txt"), text).expect("write");
        import_in(dir.path(), Path::new("app.txt"), None, Path::new("v.yml"))
            .expect_err("must fail")
            .to_string()
    };
    let err = app("[application]\n\n[primary-gie]\nenable=0\nconfig-file=x.txt\n");
    assert!(
        err.starts_with("app.txt:3: [primary-gie] is not enabled"),
        "{err}"
    );
    let err = app("[primary-gie]\nenable=1\nplugin-type=1\nconfig-file=x.txt\n");
    assert!(
        err.starts_with("app.txt:3: plugin-type=1: vigil reads nvinfer"),
        "{err}"
    );
    let err = app("[primary-gie]\nenable=1\nconfig-file=nowhere.txt\n");
    assert!(
        err.starts_with("app.txt:3: config-file=nowhere.txt: reading nowhere.txt:"),
        "{err}"
    );
    let err = app("[application]\nenable-perf-measurement=1\n");
    assert!(err.contains("no [primary-gie]"), "{err}");
}

/// The customer's files, as tests/deepstream.rs imports them with the binary.
#[test]
fn the_customers_configs_import_with_paths_relative_to_the_output() {
    let dir = tempfile::tempdir().expect("tmp");
    let yml = dir.path().join("cfg").join("vigil.yml");
    let report = import_in(
        &root(),
        Path::new("tests/fixtures/deepstream/config_infer_primary_yoloV8.txt"),
        Some(Path::new(
            "tests/fixtures/deepstream/config_tracker_IOU.yml",
        )),
        &yml,
    )
    .expect("imports");
    assert!(
        report.warnings.iter().any(|w| w.starts_with(
            "tests/fixtures/deepstream/config_infer_primary_yoloV8.txt:29: custom-network-config=yolov8n.cfg"
        )),
        "{:?}",
        report.warnings
    );
    assert_eq!(
        report.model.map(|m| (m.net_w, m.decoder)),
        Some((320, Layout::BoxesScoreClass))
    );
    let doc: serde_yaml::Value =
        serde_yaml::from_str(&fs::read_to_string(&yml).expect("written")).expect("yaml");
    assert_eq!(doc["model"]["decoder"].as_str(), Some("boxes"));
    assert_eq!(doc["preprocess"]["interval"].as_u64(), Some(3));
    assert_eq!(doc["preprocess"]["pad_value"].as_u64(), Some(0));
    assert_eq!(doc["preprocess"]["keep_aspect"].as_bool(), Some(true));
    assert_eq!(
        doc["postprocess"]["classes"][12]["iou_threshold"].as_f64(),
        Some(0.5)
    );
    assert_eq!(doc["tracker"]["max_age"].as_u64(), Some(38));
    let loaded = Config::load(&yml).expect("loads");
    assert!(
        loaded.model.path.is_file(),
        "{}",
        loaded.model.path.display()
    );
    assert!(loaded.model.labels.is_some_and(|l| l.is_file()));
}

#[test]
fn every_mapped_key_lands_and_bad_values_name_file_line_and_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let cfg = dir.path().join("config_infer.txt");
    fs::write(
        &cfg,
        "[property]\nnet-scale-factor=0.0039215697906911373\noffsets=1;2;3\nmodel-color-format=1\nonnx-file=m.onnx\nmaintain-aspect-ratio=1\nsymmetric-padding=1\ninterval=2\ninfer-dims=3;640;480\nnetwork-input-order=0\nparse-bbox-func-name=NvDsInferParseYolo\nfrobnicate=1\n\n[class-attrs-all]\npre-cluster-threshold=0.3\nnms-iou-threshold=0.5\ntopk=100\n\n[class-attrs-2]\npre-cluster-threshold=0.6\n",
    )
    .expect("write");
    let got = import(&cfg, None, dir.path()).expect("imports");
    let c = got.config;
    assert_eq!(c.model.path, PathBuf::from("m.onnx"));
    assert_eq!(
        (c.preprocess.color, c.preprocess.offsets),
        (ColorFormat::Bgr, [1.0, 2.0, 3.0])
    );
    assert!(c.preprocess.keep_aspect && c.preprocess.symmetric_padding);
    assert_eq!(
        (c.preprocess.pad_value, c.preprocess.interval.get()),
        (0, 3)
    );
    assert_eq!(
        (
            c.preprocess.net_w.map(NetSize::get),
            c.preprocess.net_h.map(NetSize::get)
        ),
        (Some(480), Some(640))
    );
    assert_eq!(c.preprocess.layout, Some(TensorLayout::Nchw));
    assert_eq!(c.model.decoder, Decoder::Boxes);
    assert_eq!(
        (c.postprocess.conf_threshold.get(), c.postprocess.top_k),
        (0.3, 100)
    );
    assert_eq!(
        c.postprocess.classes[&2],
        ClassOverrides {
            conf_threshold: Unit::try_from(0.6).ok(),
            ..ClassOverrides::default()
        }
    );
    assert_eq!(got.warnings.len(), 2, "{:?}", got.warnings);
    assert!(
        got.warnings[0].contains("config_infer.txt:12: frobnicate=1: unknown key"),
        "{:?}",
        got.warnings
    );
    assert!(
        got.warnings[1].contains(":5: onnx-file=m.onnx:") && got.warnings[1].contains("not found"),
        "{:?}",
        got.warnings
    );

    let bad = |text: &str| {
        fs::write(&cfg, text).expect("write");
        import(&cfg, None, dir.path())
            .expect_err("must fail")
            .to_string()
    };
    let err = bad("[property]\nonnx-file=m.onnx\nnet-scale-factor=abc\n");
    assert!(
        err.contains("config_infer.txt:3: net-scale-factor=abc"),
        "{err}"
    );
    let err = bad("[property]\nmodel-engine-file=m.engine\n");
    assert!(err.contains("onnx-file"), "{err}");
    let err = bad("[property]\nonnx-file=m.onnx\ninfer-dims=3;0;640\n");
    assert!(
        err.contains("config_infer.txt:3: infer-dims=3;0;640"),
        "{err}"
    );
    let err = bad("[class-attrs-all]\npre-cluster-threshold=1.5\n");
    assert!(
        err.contains("config_infer.txt:2: pre-cluster-threshold=1.5: expected 0..=1"),
        "{err}"
    );
}
