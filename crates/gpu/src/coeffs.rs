//! Bilinear resize coefficient tables in 16-bit fixed point, computed exactly as the CPU path
//! (`fast_image_resize`'s `Interpolation(Bilinear)` on 8-bit RGB) computes them, so that the
//! device resize is bit-identical to it.

/// One direction's table: for output pixel `i`, `sizes[i]` weights from `coeffs[i * window..]`
/// apply to input pixels `starts[i]..`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coefficients {
    pub starts: Vec<i32>,
    pub sizes: Vec<i32>,
    pub coeffs: Vec<i16>,
    pub window: usize,
    pub precision: u8,
}

fn bilinear(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

/// `in_size` → `out_size` (both > 0).
#[must_use]
pub fn bilinear_coefficients(in_size: u32, out_size: u32) -> Coefficients {
    let scale = f64::from(in_size) / f64::from(out_size);
    // Interpolation: the kernel is not widened when shrinking (no antialiasing).
    let radius: f64 = 1.0;
    let window = radius.ceil() as usize * 2 + 1;
    let mut values: Vec<f64> = Vec::with_capacity(window * out_size as usize);
    let (mut starts, mut sizes) = (Vec::new(), Vec::new());
    for out_x in 0..out_size {
        let in_center = (f64::from(out_x) + 0.5) * scale;
        let x_min = (in_center - radius).floor().max(0.0) as u32;
        let x_max = (in_center + radius).ceil().min(f64::from(in_size)) as u32;
        let first = values.len();
        let center = in_center - 0.5;
        let (mut start, mut end) = (x_min, x_max);
        let mut sum = 0.0;
        for x in x_min..x_max {
            let w = bilinear(f64::from(x) - center);
            if x == start && w == 0.0 {
                start += 1;
            } else {
                values.push(w);
                sum += w;
            }
        }
        for &c in values[first..].iter().rev() {
            if end <= start || c != 0.0 {
                break;
            }
            end -= 1;
        }
        if sum != 0.0 {
            for w in &mut values[first..] {
                *w /= sum;
            }
        }
        values.resize(first + window, 0.0);
        starts.push(start as i32);
        sizes.push((end - start) as i32);
    }
    // 16-bit fixed point: the most bits that keep the largest weight under 2^15.
    let max_weight = values.iter().copied().fold(0.0f64, f64::max);
    let mut precision = 0u8;
    for p in 0..(32 - 8 - 2) {
        precision = p;
        if (max_weight * f64::from(1u32 << (p + 1))).round() as i32 >= (1 << 15) {
            break;
        }
    }
    let k = f64::from(1u32 << precision);
    let coeffs = values
        .chunks_exact(window)
        .zip(&sizes)
        .flat_map(|(chunk, &n)| {
            (0..window).map(move |i| {
                if (i as i32) < n {
                    (chunk[i] * k).round() as i16
                } else {
                    0
                }
            })
        })
        .collect();
    Coefficients {
        starts,
        sizes,
        coeffs,
        window,
        precision,
    }
}

/// The same resize on the host, integer for integer: the reference the device kernels are
/// tested against where there is no device, and the definition of what they compute.
#[must_use]
pub fn resize_rgb(src: &[u8], src_w: u32, src_h: u32, dst_w: u32, dst_h: u32) -> Vec<u8> {
    let (sw, sh, dw, dh) = (
        src_w as usize,
        src_h as usize,
        dst_w as usize,
        dst_h as usize,
    );
    let apply = |c: &Coefficients, i: usize, px: &dyn Fn(usize) -> [u8; 3]| {
        let init = 1i32 << (c.precision - 1);
        let mut acc = [init; 3];
        for k in 0..c.sizes[i] as usize {
            let w = i32::from(c.coeffs[i * c.window + k]);
            let p = px(c.starts[i] as usize + k);
            for ch in 0..3 {
                acc[ch] += w * i32::from(p[ch]);
            }
        }
        acc.map(|v| (v >> c.precision).clamp(0, 255) as u8)
    };
    let pix = |buf: &[u8], w: usize, x: usize, y: usize| {
        let i = (y * w + x) * 3;
        [buf[i], buf[i + 1], buf[i + 2]]
    };
    let tmp: Vec<u8> = if dh == sh {
        src.to_vec()
    } else {
        let v = bilinear_coefficients(src_h, dst_h);
        (0..dh)
            .flat_map(|y| (0..sw).map(move |x| (x, y)))
            .flat_map(|(x, y)| apply(&v, y, &|yy| pix(src, sw, x, yy)))
            .collect()
    };
    if dw == sw {
        return tmp;
    }
    let h = bilinear_coefficients(src_w, dst_w);
    (0..dh)
        .flat_map(|y| (0..dw).map(move |x| (x, y)))
        .flat_map(|(x, y)| apply(&h, x, &|xx| pix(&tmp, sw, xx, y)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_detect::TensorLayout;
    use vigil_vision::{ColorFormat, PreprocessConfig, Preprocessor, RgbImage};

    /// The integer reference equals the CPU path's resize exactly, for shrinking, growing
    /// and unchanged sizes — so a device kernel equal to the reference equals the CPU path.
    #[test]
    fn reference_resize_is_bit_identical_to_the_cpu_path() {
        let (w, h) = (97u32, 61u32);
        let pixels: Vec<u8> = (0..w * h * 3)
            .map(|i| ((i * 37 + i / 7) % 256) as u8)
            .collect();
        let img = RgbImage {
            width: w,
            height: h,
            pixels: pixels.clone(),
        };
        for (nw, nh) in [(64u32, 40u32), (160, 100), (97, 30), (50, 61)] {
            let cfg = PreprocessConfig {
                net_w: nw,
                net_h: nh,
                layout: TensorLayout::Nhwc,
                color: ColorFormat::Rgb,
                scale: 1.0,
                offsets: [0.0; 3],
                keep_aspect: false,
                symmetric_padding: false,
                pad_value: 0,
                reduced_decode: false,
            };
            let mut pre = Preprocessor::new(cfg).expect("config");
            let mut cpu = Vec::new();
            pre.run_rgb(&img, &mut cpu).expect("runs");
            let ours: Vec<f32> = resize_rgb(&pixels, w, h, nw, nh)
                .into_iter()
                .map(f32::from)
                .collect();
            assert_eq!(ours, cpu, "{w}x{h} -> {nw}x{nh}");
        }
    }
}
