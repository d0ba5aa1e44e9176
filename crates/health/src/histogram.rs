//! A Prometheus histogram with fixed buckets.

use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: Vec<f64>,
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    #[must_use]
    pub fn new(bounds: &[f64]) -> Self {
        Self {
            bounds: bounds.to_vec(),
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    /// Buckets from 1 ms to 2.5 s, for stage latencies in seconds.
    #[must_use]
    pub fn latency() -> Self {
        Self::new(&[
            0.001, 0.002, 0.005, 0.01, 0.02, 0.033, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ])
    }

    pub fn observe(&mut self, v: f64) {
        if !v.is_finite() {
            return;
        }
        for (b, c) in self.bounds.iter().zip(&mut self.counts) {
            if v <= *b {
                *c += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    #[must_use]
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Appends the `_bucket`, `_sum` and `_count` lines (cumulative buckets, as Prometheus has them).
    pub fn write(&self, o: &mut String, name: &str, labels: &str) {
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(o, "{name}_bucket{{{labels},le=\"{b}\"}} {c}");
        }
        let _ = writeln!(o, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(o, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(o, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative() {
        let mut h = Histogram::new(&[0.01, 0.1]);
        for v in [0.005, 0.05, 0.5, f64::NAN] {
            h.observe(v);
        }
        let mut o = String::new();
        h.write(&mut o, "x", "stage=\"a\"");
        assert!(o.contains("x_bucket{stage=\"a\",le=\"0.01\"} 1"), "{o}");
        assert!(o.contains("x_bucket{stage=\"a\",le=\"0.1\"} 2"), "{o}");
        assert!(o.contains("x_bucket{stage=\"a\",le=\"+Inf\"} 3"), "{o}");
        assert_eq!(h.count(), 3);
    }
}
