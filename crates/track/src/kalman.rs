//! A constant-velocity Kalman filter on a box's centre, aspect ratio and height
//! (`x, y, a, h` and their velocities), with noise proportional to the box's height: the
//! motion model ByteTrack (and SORT's successors) use. f64 throughout, fixed operation order:
//! the same input gives the same bits.

// Indices read as the formulas' subscripts.
#![allow(clippy::needless_range_loop)]

use vigil_detect::BBox;

/// Position noise per unit of height.
const STD_POSITION: f64 = 1.0 / 20.0;
/// Velocity noise per unit of height.
const STD_VELOCITY: f64 = 1.0 / 160.0;

type Vec8 = [f64; 8];
type Mat8 = [[f64; 8]; 8];
type Vec4 = [f64; 4];
type Mat4 = [[f64; 4]; 4];

/// A box's state: mean and covariance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KalmanState {
    mean: Vec8,
    cov: Mat8,
}

/// `x, y, a, h` of a box: centre, width / height, height.
fn measure(b: &BBox) -> Vec4 {
    let (w, h) = (f64::from(b.x2 - b.x1), f64::from(b.y2 - b.y1));
    let h = h.max(1e-3);
    [
        f64::from(b.x1) + w / 2.0,
        f64::from(b.y1) + h / 2.0,
        w / h,
        h,
    ]
}

fn diag8(v: Vec8) -> Mat8 {
    let mut m = [[0.0; 8]; 8];
    for i in 0..8 {
        m[i][i] = v[i];
    }
    m
}

impl KalmanState {
    /// A new track at a detection: no velocity, wide uncertainty on it.
    #[must_use]
    pub fn new(b: &BBox) -> Self {
        let z = measure(b);
        let h = z[3];
        let p = 2.0 * STD_POSITION * h;
        let v = 10.0 * STD_VELOCITY * h;
        let std = [p, p, 1e-2, p, v, v, 1e-5, v];
        Self {
            mean: [z[0], z[1], z[2], z[3], 0.0, 0.0, 0.0, 0.0],
            cov: diag8(std.map(|s| s * s)),
        }
    }

    /// The box at the mean.
    #[must_use]
    pub fn bbox(&self) -> BBox {
        let [x, y, a, h, ..] = self.mean;
        let w = a * h;
        BBox::new(
            (x - w / 2.0) as f32,
            (y - h / 2.0) as f32,
            (x + w / 2.0) as f32,
            (y + h / 2.0) as f32,
        )
    }

    /// Stops the height changing (a track not matched last frame: its height velocity is not
    /// trusted, as in ByteTrack).
    pub fn hold_height(&mut self) {
        self.mean[7] = 0.0;
    }

    /// One frame on: x += v, uncertainty grows.
    pub fn predict(&mut self) {
        let h = self.mean[3];
        let p = STD_POSITION * h;
        let v = STD_VELOCITY * h;
        let q = [p * p, p * p, 1e-4, p * p, v * v, v * v, 1e-10, v * v];
        for i in 0..4 {
            self.mean[i] += self.mean[i + 4];
        }
        // A box shrinking through a long prediction stops at a pixel, never turns inside out.
        if self.mean[3] < 1.0 {
            (self.mean[3], self.mean[7]) = (1.0, 0.0);
        }
        if self.mean[2] < 1e-3 {
            (self.mean[2], self.mean[6]) = (1e-3, 0.0);
        }
        // F P Fᵀ with F = [[I, I], [0, I]]: rows then columns.
        let mut fp = self.cov;
        for i in 0..4 {
            for j in 0..8 {
                fp[i][j] += self.cov[i + 4][j];
            }
        }
        let mut fpf = fp;
        for row in &mut fpf {
            for j in 0..4 {
                row[j] += row[j + 4];
            }
        }
        for i in 0..8 {
            fpf[i][i] += q[i];
        }
        self.cov = fpf;
    }

    /// Corrects the state with a matched detection.
    pub fn update(&mut self, b: &BBox) {
        let z = measure(b);
        let h = self.mean[3];
        let p = STD_POSITION * h;
        let r = [p * p, p * p, 1e-2, p * p];
        // S = H P Hᵀ + R (H picks the first four), PHᵀ = P's first four columns.
        let mut s: Mat4 = [[0.0; 4]; 4];
        for i in 0..4 {
            for j in 0..4 {
                s[i][j] = self.cov[i][j];
            }
            s[i][i] += r[i];
        }
        let Some(s_inv) = invert4(&s) else {
            // A degenerate covariance (never from finite boxes): take the measurement.
            *self = Self::new(b);
            return;
        };
        // K = P Hᵀ S⁻¹ (8×4).
        let mut k = [[0.0f64; 4]; 8];
        for (i, row) in k.iter_mut().enumerate() {
            for (j, kij) in row.iter_mut().enumerate() {
                *kij = (0..4).map(|m| self.cov[i][m] * s_inv[m][j]).sum();
            }
        }
        let innovation: Vec4 = std::array::from_fn(|i| z[i] - self.mean[i]);
        for (i, row) in k.iter().enumerate() {
            self.mean[i] += (0..4).map(|j| row[j] * innovation[j]).sum::<f64>();
        }
        // P -= K S Kᵀ (keeps P symmetric).
        let mut ks = [[0.0f64; 4]; 8];
        for (i, row) in ks.iter_mut().enumerate() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (0..4).map(|m| k[i][m] * s[m][j]).sum();
            }
        }
        for i in 0..8 {
            for j in 0..8 {
                self.cov[i][j] -= (0..4).map(|m| ks[i][m] * k[j][m]).sum::<f64>();
            }
        }
    }
}

/// The inverse of a 4×4 matrix by Gauss–Jordan elimination with partial pivoting; `None` when
/// singular.
fn invert4(m: &Mat4) -> Option<Mat4> {
    let mut a = *m;
    let mut inv: Mat4 = [[0.0; 4]; 4];
    for (i, row) in inv.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    for col in 0..4 {
        let pivot = (col..4).max_by(|&x, &y| a[x][col].abs().total_cmp(&a[y][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 || !a[pivot][col].is_finite() {
            return None;
        }
        a.swap(col, pivot);
        inv.swap(col, pivot);
        let d = a[col][col];
        for j in 0..4 {
            a[col][j] /= d;
            inv[col][j] /= d;
        }
        for r in 0..4 {
            if r != col {
                let f = a[r][col];
                for j in 0..4 {
                    a[r][j] -= f * a[col][j];
                    inv[r][j] -= f * inv[col][j];
                }
            }
        }
    }
    Some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(x: f32) -> BBox {
        BBox::new(x, 10.0, x + 20.0, 50.0)
    }

    #[test]
    fn learns_a_constant_velocity_and_predicts_it() {
        let mut k = KalmanState::new(&boxed(0.0));
        for i in 1..30 {
            k.predict();
            k.update(&boxed(3.0 * i as f32));
        }
        k.predict();
        let b = k.bbox();
        assert!((b.x1 - 90.0).abs() < 0.5, "{b:?}");
        assert!(
            (b.y1 - 10.0).abs() < 0.1 && ((b.y2 - b.y1) - 40.0).abs() < 0.1,
            "{b:?}"
        );
        // Coasting keeps the velocity.
        for _ in 0..5 {
            k.predict();
        }
        assert!((k.bbox().x1 - 105.0).abs() < 1.0, "{:?}", k.bbox());
    }

    #[test]
    fn a_shrinking_box_predicted_for_long_stays_a_box() {
        let mut k = KalmanState::new(&BBox::new(0.0, 0.0, 20.0, 40.0));
        for i in 1..10 {
            k.predict();
            let h = 40.0 - 4.0 * i as f32;
            k.update(&BBox::new(0.0, 0.0, h / 2.0, h));
        }
        for _ in 0..90 {
            k.predict();
            let b = k.bbox();
            assert!(b.x2 > b.x1 && b.y2 > b.y1 && b.is_finite(), "{b:?}");
        }
    }

    #[test]
    fn a_new_state_sits_on_its_box_and_the_inverse_inverts() {
        let b = boxed(7.0);
        let k = KalmanState::new(&b);
        let back = k.bbox();
        assert!((back.x1 - b.x1).abs() < 1e-4 && (back.y2 - b.y2).abs() < 1e-4);
        let m = [
            [4.0, 1.0, 0.0, 0.5],
            [1.0, 3.0, 0.2, 0.0],
            [0.0, 0.2, 2.0, 0.1],
            [0.5, 0.0, 0.1, 1.0],
        ];
        let inv = invert4(&m).expect("invertible");
        for i in 0..4 {
            for j in 0..4 {
                let v: f64 = (0..4).map(|k| m[i][k] * inv[k][j]).sum();
                assert!((v - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
        assert!(invert4(&[[0.0; 4]; 4]).is_none());
    }
}
