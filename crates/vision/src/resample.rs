//! Bilinear resize of packed RGB (8 bits a channel), integer for integer what
//! `fast_image_resize`'s `Interpolation(Bilinear)` computes — its coefficients in 16-bit fixed
//! point, the vertical pass first, each pass rounded and clamped to u8 — but one output row at a
//! time through a one-row buffer instead of a whole intermediate image, with every output's
//! two taps precomputed per size, and the exact halving (720p → 640×360) as a rounding mean.
//! `vigil-gpu`'s `coeffs.rs` computes the same tables for the device.

/// One axis: output `i` is `(init + w[i][0]·p[t[i]] + w[i][1]·p[t[i] + 1]) >> precision`,
/// clamped to u8.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Axis {
    /// The first of the two adjacent inputs of each output. An output with one tap gets a
    /// neighbour of weight 0 (all outputs read input 0 alone where there is one input).
    first: Vec<usize>,
    /// In 16-bit fixed point, under 2^15 (so a product with a byte fits 23 bits): kept as
    /// i16 so that the compiler multiplies 16-bit lanes.
    weights: Vec<[i16; 2]>,
    /// `weights`, each repeated for the three channels of a pixel (the horizontal pass).
    lanes: Vec<[i16; 2]>,
    precision: u8,
    /// Every output is the rounded mean of inputs `2i` and `2i + 1`: the exact halving.
    halving: bool,
}

fn bilinear(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

impl Axis {
    /// `in_size` → `out_size` (both > 0); `None` where an output would need more than two
    /// taps, which bilinear interpolation never does.
    fn new(in_size: u32, out_size: u32) -> Option<Self> {
        let scale = f64::from(in_size) / f64::from(out_size);
        // Interpolation: the kernel is not widened when shrinking (no antialiasing).
        let radius = 1.0f64;
        let mut values: Vec<[f64; 2]> = Vec::with_capacity(out_size as usize);
        let mut taps = Vec::with_capacity(out_size as usize);
        for out_x in 0..out_size {
            let in_center = (f64::from(out_x) + 0.5) * scale;
            let x_min = (in_center - radius).floor().max(0.0) as u32;
            let x_max = (in_center + radius).ceil().min(f64::from(in_size)) as u32;
            let center = in_center - 0.5;
            let mut start = x_min;
            let mut ws: Vec<f64> = Vec::with_capacity(3);
            let mut sum = 0.0;
            for x in x_min..x_max {
                let w = bilinear(f64::from(x) - center);
                if x == start && w == 0.0 {
                    start += 1;
                } else {
                    ws.push(w);
                    sum += w;
                }
            }
            while ws.last() == Some(&0.0) {
                ws.pop();
            }
            if sum != 0.0 {
                for w in &mut ws {
                    *w /= sum;
                }
            }
            let (start, last) = (start as usize, in_size as usize - 1);
            match ws[..] {
                [] => {
                    values.push([0.0; 2]);
                    taps.push(start.min(last.saturating_sub(1)));
                }
                [a] if start < last => {
                    values.push([a, 0.0]);
                    taps.push(start);
                }
                [a] => {
                    // The last input: weight 0 on the one before it, where there is one.
                    values.push(if last == 0 { [a, 0.0] } else { [0.0, a] });
                    taps.push(last.saturating_sub(1));
                }
                [a, b] => {
                    values.push([a, b]);
                    taps.push(start);
                }
                _ => return None,
            }
        }
        // 16-bit fixed point: the most bits that keep the largest weight under 2^15.
        let max_weight = values.iter().flatten().copied().fold(0.0f64, f64::max);
        let mut precision = 0u8;
        for p in 0..(32 - 8 - 2) {
            precision = p;
            if (max_weight * f64::from(1u32 << (p + 1))).round() as i32 >= (1 << 15) {
                break;
            }
        }
        let k = f64::from(1u32 << precision);
        let weights: Vec<[i16; 2]> = values
            .iter()
            .map(|w| w.map(|v| (v * k).round() as i16))
            .collect();
        let half = 1i16 << precision.saturating_sub(1);
        let halving = precision > 0
            && taps.iter().enumerate().all(|(i, &t)| t == 2 * i)
            && weights.iter().all(|w| *w == [half, half]);
        let lanes = weights.iter().flat_map(|&w| [w; 3]).collect();
        Some(Self {
            first: taps,
            weights,
            lanes,
            precision,
            halving,
        })
    }

    fn init(&self) -> i32 {
        1 << self.precision.saturating_sub(1)
    }
}

fn clamp_u8(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

/// A resize from one size to another, its tables kept while the sizes stay.
#[derive(Debug, Default)]
pub struct Resample {
    /// Source width, height, destination width, height of the tables.
    sizes: Option<(u32, u32, u32, u32)>,
    /// `None` where the axis keeps its size (no pass, as `fast_image_resize` skips it).
    vert: Option<Axis>,
    horiz: Option<Axis>,
    /// One vertically resampled row, the source columns the horizontal pass reads.
    row: Vec<u8>,
    /// The horizontal pass's first and second pixel of each output, gathered (the halving's
    /// means in `left`).
    left: Vec<u8>,
    right: Vec<u8>,
}

impl Resample {
    /// Makes the tables for `sw`×`sh` → `dw`×`dh` (all > 0) unless they are made; `false`
    /// where an output would need more than two taps, which bilinear interpolation never does.
    pub fn prepare(&mut self, sw: u32, sh: u32, dw: u32, dh: u32) -> bool {
        let sizes = Some((sw, sh, dw, dh));
        if self.sizes != sizes {
            let axis = |i, o| {
                if i == o {
                    Some(None)
                } else {
                    Axis::new(i, o).map(Some)
                }
            };
            let (Some(vert), Some(horiz)) = (axis(sh, dh), axis(sw, dw)) else {
                return false;
            };
            *self = Self {
                sizes,
                vert,
                horiz,
                ..Self::default()
            };
        }
        true
    }

    /// Resizes `src` (the prepared source size, packed RGB) into `dst` (the destination size).
    pub fn run(&mut self, src: &[u8], dst: &mut [u8]) {
        let Some((sw, sh, dw, _)) = self.sizes else {
            return;
        };
        let (src_stride, dst_stride) = (sw as usize * 3, dw as usize * 3);
        // The source columns the horizontal pass reads.
        let cols = self.horiz.as_ref().map_or(0..src_stride, |h| {
            let lo = h.first.first().map_or(0, |&a| a * 3);
            let hi = h.first.iter().max().map_or(0, |&a| a * 3 + 6);
            lo..hi.min(src_stride)
        });
        let src_row = |y: usize| &src[y * src_stride..][..src_stride];
        for (y, out) in dst.chunks_exact_mut(dst_stride).enumerate() {
            let row: &[u8] = match &self.vert {
                None => src_row(y),
                Some(v) => {
                    self.row.resize(src_stride, 0);
                    let a = v.first[y];
                    let b = (a + 1).min(sh as usize - 1);
                    let (a, b) = (&src_row(a)[cols.clone()], &src_row(b)[cols.clone()]);
                    blend(&mut self.row[cols.clone()], a, b, v, &v.weights[y..=y]);
                    &self.row
                }
            };
            match &self.horiz {
                None => out.copy_from_slice(row),
                Some(h) if h.halving => {
                    // The mean of every byte and the one a pixel to its right, then every other
                    // pixel of it.
                    let n = dst_stride * 2 - 3;
                    self.left.resize(n, 0);
                    let (a, b) = (&row[..n], &row[3..n + 3]);
                    blend(&mut self.left, a, b, h, &[]);
                    pack(out, &self.left, 6);
                }
                Some(h) => {
                    // Gather each output's two pixels side by side, then blend lane by lane.
                    self.left.resize(dst_stride, 0);
                    self.right.resize(dst_stride, 0);
                    let pairs = self
                        .left
                        .chunks_exact_mut(3)
                        .zip(self.right.chunks_exact_mut(3));
                    for ((l, r), &a) in pairs.zip(&h.first) {
                        let pa = &row[a * 3..a * 3 + 3];
                        l.copy_from_slice(pa);
                        r.copy_from_slice(row.get(a * 3 + 3..a * 3 + 6).unwrap_or(pa));
                    }
                    blend(out, &self.left, &self.right, h, &h.lanes);
                }
            }
        }
    }
}

/// The first three bytes of every `stride` bytes of `src`, packed.
fn pack(out: &mut [u8], src: &[u8], stride: usize) {
    let pixels = out.len() / 3;
    if pixels == 0 {
        return;
    }
    // Four bytes at a time, each store's fourth byte overwritten by the next pixel's.
    for (x, s) in src.chunks_exact(stride).take(pixels - 1).enumerate() {
        if let (Some(o), Some(s)) = (out.get_mut(x * 3..x * 3 + 4), s.get(..4)) {
            o.copy_from_slice(s);
        }
    }
    let last = (pixels - 1) * 3;
    out[last..].copy_from_slice(&src[(pixels - 1) * stride..][..3]);
}

/// `(1 + a + b) >> 1`: what a pass with both weights `2^(p−1)` computes, `(2^(p−1) +
/// 2^(p−1)·a + 2^(p−1)·b) >> p`.
fn mean(a: u8, b: u8) -> u8 {
    ((u16::from(a) + u16::from(b) + 1) >> 1) as u8
}

/// One pass over a row: `out[i]` from `a[i]` and `b[i]` with the weights `w[i]` (a single
/// pair for every lane of a vertical pass, one per value in a horizontal one).
fn blend(out: &mut [u8], a: &[u8], b: &[u8], axis: &Axis, w: &[[i16; 2]]) {
    if axis.halving {
        for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
            *o = mean(a, b);
        }
        return;
    }
    let (init, shift) = (axis.init(), axis.precision);
    let value = |a: u8, b: u8, [wa, wb]: [i16; 2]| {
        let v = init + i32::from(wa) * i32::from(a) + i32::from(wb) * i32::from(b);
        clamp_u8(v >> shift)
    };
    if let [w] = w {
        for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
            *o = value(a, b, *w);
        }
    } else {
        for (((o, &a), &b), &w) in out.iter_mut().zip(a).zip(b).zip(w) {
            *o = value(a, b, w);
        }
    }
}
