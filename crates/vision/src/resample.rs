//! Bilinear resize of packed RGB (8 bits a channel), integer for integer what
//! `fast_image_resize`'s `Interpolation(Bilinear)` computes — its coefficients in 16-bit fixed
//! point, the vertical pass first, each pass rounded and clamped to u8 — but one output row at a
//! time through a one-row buffer instead of a whole intermediate image, with every output's
//! two taps precomputed per size. Each pass is a loop over a row that the compiler vectorises
//! with the baseline SIMD (SSE2, NEON), in 16-bit lanes where the weights allow (twice as many a
//! vector as 32-bit ones; see `Axis::new`); the horizontal one blends every input pixel with the
//! next and picks the outputs out of that (see `Axis::by_input`), the exact halving (720p →
//! 640×360) as a rounding mean.
//! `vigil-gpu`'s `coeffs.rs` computes the same tables for the device.

/// One axis: output `i` is `(init + w[i][0]·p[t[i]] + w[i][1]·p[t[i] + 1]) >> precision`,
/// clamped to u8, with `init` = `2^(precision − 1)`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Axis {
    /// The first of the two adjacent inputs of each output. An output with one tap gets a
    /// neighbour of weight 0 (all outputs read input 0 alone where there is one input).
    first: Vec<usize>,
    /// `first`, in bytes: where each output's first pixel starts in a packed RGB row (u32 is
    /// plenty, and halves the table `pick` reads).
    offsets: Vec<u32>,
    /// In fixed point of `precision` bits (less the factor of two common to all, see `new`),
    /// non-negative and under 2^15 (so a product with a byte fits 23 bits).
    weights: Vec<[i16; 2]>,
    /// The horizontal pass's weights of every byte, first and second tap, three a pixel: where
    /// `by_input`, of each input pixel (those of the output it is the first tap of, 0 if none);
    /// otherwise of each output pixel.
    lanes: [Vec<i16>; 2],
    precision: u8,
    /// No output's sum reaches 2^15 (`init + 255·(w[i][0] + w[i][1])` fits an i16): the passes
    /// compute in 16-bit lanes.
    narrow: bool,
    /// The horizontal pass blends every input pixel with the next, weighted for the output it
    /// is the first tap of, and picks the outputs out of that: where every input is the first
    /// tap of one output at most (a reduction), and reduced less than 3× (blending every input
    /// costs less than gathering each output's two pixels; halving is a rounding mean of every
    /// input).
    by_input: bool,
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
        // Where every weight is a multiple of 2^z, the same outputs from z fewer bits:
        // (2^(p−1) + Σ w·v) >> p = (2^(p−z−1) + Σ (w >> z)·v) >> (p − z). The weights of a
        // common resize are: 1280 → 512 weighs in quarters, 720 → 512 in 64ths, 1080 → 512 in
        // 128ths, small enough for 16-bit sums.
        let z = weights
            .iter()
            .flatten()
            .filter(|&&w| w != 0)
            .map(|w| w.trailing_zeros())
            .min()
            .unwrap_or(0)
            .min(u32::from(precision.saturating_sub(1)));
        let weights: Vec<[i16; 2]> = weights.iter().map(|w| w.map(|v| v >> z)).collect();
        let precision = precision - z as u8;
        let init = 1i32 << precision.saturating_sub(1);
        let narrow = weights.iter().all(|&[a, b]| {
            a >= 0 && b >= 0 && init + 255 * (i32::from(a) + i32::from(b)) <= i32::from(i16::MAX)
        });
        let half = 1i16 << precision.saturating_sub(1);
        let halving = precision > 0
            && taps.iter().enumerate().all(|(i, &t)| t == 2 * i)
            && weights.iter().all(|w| *w == [half, half]);
        let by_input =
            u64::from(in_size) < 3 * u64::from(out_size) && taps.windows(2).all(|t| t[0] < t[1]);
        let lanes = [0, 1].map(|j| {
            if by_input {
                let mut lanes = vec![0; taps.last().map_or(0, |&t| t * 3 + 3)];
                for (&t, w) in taps.iter().zip(&weights) {
                    lanes[t * 3..t * 3 + 3].fill(w[j]);
                }
                lanes
            } else {
                weights.iter().flat_map(|w| [w[j]; 3]).collect()
            }
        });
        Some(Self {
            offsets: taps.iter().map(|&t| (t * 3) as u32).collect(),
            first: taps,
            weights,
            lanes,
            precision,
            narrow,
            by_input,
            halving,
        })
    }
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
    /// The horizontal pass's blend of every input pixel with the next (`by_input`); otherwise
    /// the first and second pixel of each output, gathered.
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
        // Gathering each output's two pixels reads a byte past them: the row keeps a spare one,
        // and takes a copy of the frame's row where there is no vertical pass.
        self.row.resize(src_stride + 1, 0);
        let gathers = self.horiz.as_ref().is_some_and(|h| !h.by_input);
        for (y, out) in dst.chunks_exact_mut(dst_stride).enumerate() {
            let row: &[u8] = match &self.vert {
                Some(v) => {
                    let a = v.first[y];
                    let b = (a + 1).min(sh as usize - 1);
                    let (a, b) = (&src_row(a)[cols.clone()], &src_row(b)[cols.clone()]);
                    let [wa, wb] = v.weights[y].map(std::iter::repeat);
                    blend(&mut self.row[cols.clone()], a, b, wa, wb, v);
                    &self.row
                }
                None if gathers => {
                    self.row[..src_stride].copy_from_slice(src_row(y));
                    &self.row
                }
                None => src_row(y),
            };
            let Some(h) = &self.horiz else {
                out.copy_from_slice(&row[..dst_stride]);
                continue;
            };
            let [wa, wb] = &h.lanes;
            let (wa, wb) = (wa.iter().copied(), wb.iter().copied());
            if h.by_input {
                // Every byte blended with the one a pixel to its right, weighted for the output
                // that starts at its pixel, then those outputs picked out.
                let n = h.lanes[0].len();
                self.left.resize(n, 0);
                blend(&mut self.left, &row[..n], &row[3..n + 3], wa, wb, h);
                pick(out, &self.left, &h.offsets);
            } else {
                // Each output's two pixels gathered side by side, then blended.
                self.left.resize(dst_stride, 0);
                self.right.resize(dst_stride, 0);
                pick(&mut self.left, row, &h.offsets);
                pick(&mut self.right, &row[3..], &h.offsets);
                blend(out, &self.left, &self.right, wa, wb, h);
            }
        }
    }
}

/// The three bytes at each of `offsets` in `src`, packed into `out`. Copies four bytes a
/// pixel (each store's fourth byte overwritten by the next pixel's), so every pixel but the
/// last needs a byte after it in `src`; one without is left out (only the missing neighbour of
/// a one-pixel row, of weight 0).
fn pick(out: &mut [u8], src: &[u8], offsets: &[u32]) {
    let Some((&last, offsets)) = offsets.split_last() else {
        return;
    };
    for (x, &at) in offsets.iter().enumerate() {
        let at = at as usize;
        if let (Some(o), Some(s)) = (out.get_mut(x * 3..x * 3 + 4), src.get(at..at + 4)) {
            o.copy_from_slice(s);
        }
    }
    let (x, last) = (offsets.len() * 3, last as usize);
    if let (Some(o), Some(s)) = (out.get_mut(x..x + 3), src.get(last..last + 3)) {
        o.copy_from_slice(s);
    }
}

/// `(1 + a + b) >> 1`: what a pass with both weights `2^(p−1)` computes, `(2^(p−1) +
/// 2^(p−1)·a + 2^(p−1)·b) >> p`.
fn mean(a: u8, b: u8) -> u8 {
    ((u16::from(a) + u16::from(b) + 1) >> 1) as u8
}

/// One pass over a row: `out[i]` from `a[i]` and `b[i]` with the weights `wa[i]` and `wb[i]`
/// (the same pair for every value of a vertical pass, one per value in a horizontal one).
fn blend(
    out: &mut [u8],
    a: &[u8],
    b: &[u8],
    wa: impl Iterator<Item = i16>,
    wb: impl Iterator<Item = i16>,
    axis: &Axis,
) {
    if axis.halving {
        for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
            *o = mean(a, b);
        }
        return;
    }
    let shift = axis.precision;
    let values = out.iter_mut().zip(a).zip(b).zip(wa.zip(wb));
    if axis.narrow {
        let init = 1i16 << shift.saturating_sub(1);
        for (((o, &a), &b), (wa, wb)) in values {
            let v = init + wa * i16::from(a) + wb * i16::from(b);
            *o = (v >> shift).clamp(0, 255) as u8;
        }
    } else {
        let init = 1i32 << shift.saturating_sub(1);
        for (((o, &a), &b), (wa, wb)) in values {
            let v = init + i32::from(wa) * i32::from(a) + i32::from(wb) * i32::from(b);
            *o = (v >> shift).clamp(0, 255) as u8;
        }
    }
}
