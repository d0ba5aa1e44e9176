//! Decode + NMS of one frame of the customer's model size: a `YOLOv8` raw output of 8400
//! candidates × 8 classes (`[1, 12, 8400]`), and the same through a DeepStream-Yolo head
//! (`[1, 8400, 6]`). Prints milliseconds per frame next to a naive O(N²) NMS over the very same
//! candidates (the full pairwise `IoU` matrix first, then the greedy pass), measured in this run.
//!
//! `cargo bench -p vigil-detect`

use std::hint::black_box;
use std::time::{Duration, Instant};

use vigil_detect::{Detection, Layout, NmsConfig, OutputTensor, decode, nms};

const ANCHORS: usize = 8400;
const CLASSES: usize = 8;

/// A small deterministic generator (no wall clock, no OS randomness).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 40) as f32) / ((1u64 << 24) as f32)
    }
}

/// A busy scene: 40 objects, each seen by ~25 anchors with jittered boxes and high scores;
/// every other anchor holds background noise under 0.05.
fn raw_output() -> OutputTensor {
    let mut rng = Lcg(7);
    let mut data = vec![0.0f32; (4 + CLASSES) * ANCHORS];
    let mut set = |row: usize, i: usize, v: f32| data[row * ANCHORS + i] = v;
    for i in 0..ANCHORS {
        let (cx, cy) = (rng.next() * 640.0, rng.next() * 640.0);
        let (w, h) = (8.0 + rng.next() * 40.0, 8.0 + rng.next() * 40.0);
        for (r, v) in [cx, cy, w, h].into_iter().enumerate() {
            set(r, i, v);
        }
        for c in 0..CLASSES {
            set(4 + c, i, rng.next() * 0.05);
        }
    }
    for obj in 0..40 {
        let (cx, cy) = (40.0 + rng.next() * 560.0, 40.0 + rng.next() * 560.0);
        let (w, h) = (30.0 + rng.next() * 120.0, 30.0 + rng.next() * 200.0);
        let class = obj % CLASSES;
        for _ in 0..25 {
            let i = (rng.next() * ANCHORS as f32) as usize % ANCHORS;
            let mut j = |s: f32| (rng.next() - 0.5) * s;
            let b = [cx + j(12.0), cy + j(12.0), w + j(16.0), h + j(16.0)];
            for (r, v) in b.into_iter().enumerate() {
                set(r, i, v);
            }
            set(4 + class, i, 0.3 + rng.next() * 0.65);
        }
    }
    OutputTensor {
        name: "output0".into(),
        shape: vec![1, 4 + CLASSES, ANCHORS],
        data,
    }
}

/// The same candidates as a DeepStream-Yolo head emits them.
fn dsy_output(raw: &OutputTensor) -> OutputTensor {
    let at = |r: usize, i: usize| raw.data[r * ANCHORS + i];
    let mut data = Vec::with_capacity(ANCHORS * 6);
    for i in 0..ANCHORS {
        let (mut best, mut class) = (f32::NEG_INFINITY, 0);
        for c in 0..CLASSES {
            if at(4 + c, i) > best {
                (best, class) = (at(4 + c, i), c);
            }
        }
        let (cx, cy, w, h) = (at(0, i), at(1, i), at(2, i), at(3, i));
        data.extend([
            cx - w / 2.0,
            cy - h / 2.0,
            cx + w / 2.0,
            cy + h / 2.0,
            best,
            class as f32,
        ]);
    }
    OutputTensor {
        name: "output".into(),
        shape: vec![1, ANCHORS, 6],
        data,
    }
}

/// Greedy NMS the naive way: every pairwise `IoU` computed up front.
fn naive_nms(c: &[Detection], iou: f32, top_k: usize) -> Vec<Detection> {
    let n = c.len();
    let mut m = vec![0.0f32; n * n];
    for i in 0..n {
        for j in 0..n {
            m[i * n + j] = c[i].bbox.iou(&c[j].bbox);
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| c[b].score.total_cmp(&c[a].score).then(a.cmp(&b)));
    let mut kept: Vec<usize> = Vec::new();
    for i in order {
        if kept.len() >= top_k {
            break;
        }
        if !kept
            .iter()
            .any(|&k| c[k].class == c[i].class && m[k * n + i] > iou)
        {
            kept.push(i);
        }
    }
    kept.into_iter().map(|i| c[i]).collect()
}

/// Median time of `f` over enough runs to fill about half a second.
fn time<T>(mut f: impl FnMut() -> T) -> Duration {
    let start = Instant::now();
    let mut runs = Vec::new();
    while start.elapsed() < Duration::from_millis(500) || runs.len() < 10 {
        let t = Instant::now();
        black_box(f());
        runs.push(t.elapsed());
    }
    runs.sort();
    runs[runs.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() -> Result<(), vigil_detect::DecodeError> {
    let raw = raw_output();
    let dsy = dsy_output(&raw);
    let cfg = NmsConfig::default();
    println!(
        "decode + NMS, {ANCHORS} candidates x {CLASSES} classes, IoU {}, top-k {}",
        cfg.iou_threshold, cfg.top_k
    );
    println!(
        "{:<34} {:>6} {:>12} {:>14} {:>8}",
        "layout / threshold", "kept", "vigil ms", "naive O(N²) ms", "ratio"
    );
    for threshold in [0.25f32, 0.01] {
        for (name, out, layout) in [
            ("ultralytics [1,12,8400]", &raw, Layout::UltralyticsRaw),
            ("deepstream-yolo [1,8400,6]", &dsy, Layout::BoxesScoreClass),
        ] {
            let outs = std::slice::from_ref(out);
            let vigil = || decode(outs, Some(layout), threshold).map(|c| nms(&c, &cfg));
            let naive = || {
                decode(outs, Some(layout), threshold)
                    .map(|c| naive_nms(&c, cfg.iou_threshold, cfg.top_k))
            };
            let candidates = decode(outs, Some(layout), threshold)?;
            let ours = vigil()?;
            assert_eq!(ours, naive()?, "both passes keep the same boxes");
            let fast = time(vigil);
            let slow = time(naive);
            println!(
                "{:<34} {:>6} {:>12.3} {:>14.3} {:>7.1}x   ({} candidates)",
                format!("{name} @{threshold}"),
                ours.len(),
                ms(fast),
                ms(slow),
                ms(slow) / ms(fast),
                candidates.len()
            );
        }
    }
    Ok(())
}
