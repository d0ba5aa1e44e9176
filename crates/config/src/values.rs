//! Range-checked values: checked while parsing, so an error names the key and the line.

use serde::{Deserialize, Serialize};

/// A number in 0..=1 (thresholds).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f32", into = "f32")]
pub struct Unit(f32);

impl Unit {
    /// For constants known to be in range.
    #[must_use]
    pub const fn new_const(v: f32) -> Self {
        Self(v)
    }

    #[must_use]
    pub fn get(self) -> f32 {
        self.0
    }
}

impl TryFrom<f32> for Unit {
    type Error = String;
    fn try_from(v: f32) -> Result<Self, String> {
        if (0.0..=1.0).contains(&v) {
            Ok(Self(v))
        } else {
            Err(format!("{v} is not in 0..=1"))
        }
    }
}

impl From<Unit> for f32 {
    fn from(u: Unit) -> f32 {
        u.0
    }
}

/// A network input side in pixels, 1..=8192.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct NetSize(u32);

impl NetSize {
    #[must_use]
    pub fn get(self) -> u32 {
        self.0
    }
}

impl TryFrom<u32> for NetSize {
    type Error = String;
    fn try_from(v: u32) -> Result<Self, String> {
        if (1..=8192).contains(&v) {
            Ok(Self(v))
        } else {
            Err(format!("{v} is not in 1..=8192"))
        }
    }
}

impl From<NetSize> for u32 {
    fn from(n: NetSize) -> u32 {
        n.0
    }
}

/// A duration in seconds, 0..=120 (the flight recorder's window).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Seconds(f64);

impl Seconds {
    #[must_use]
    pub const fn new_const(v: f64) -> Self {
        Self(v)
    }

    #[must_use]
    pub fn as_nanos(self) -> u64 {
        (self.0 * 1e9) as u64
    }
}

impl TryFrom<f64> for Seconds {
    type Error = String;
    fn try_from(v: f64) -> Result<Self, String> {
        if (0.0..=120.0).contains(&v) {
            Ok(Self(v))
        } else {
            Err(format!("{v} is not in 0..=120 seconds"))
        }
    }
}

impl From<Seconds> for f64 {
    fn from(s: Seconds) -> f64 {
        s.0
    }
}
