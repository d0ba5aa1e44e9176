//! Fault injection plans, shipped so that every recovery path can be exercised on purpose:
//! `infer.faults: "abort@150,segv@300,hang@450,sticky@600,garbage@750"` makes the infer node
//! fail in the named way when it reaches the frame with that sequence number. Parsed with the
//! rest of vigil.yml, so a bad plan is refused before anything starts.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// One way to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `abort()`: the process dies of SIGABRT.
    Abort,
    /// A write to an unmapped address: a real SIGSEGV.
    Segv,
    /// The inference call never returns, like a hung GPU call; only the watchdog ends it.
    Hang,
    /// The backend reports an unrecoverable device error (CUDA error 700).
    Sticky,
    /// The model's outputs come back full of NaN and inf.
    Garbage,
}

impl Fault {
    /// True for faults that end the process.
    #[must_use]
    pub fn is_fatal(self) -> bool {
        !matches!(self, Self::Garbage)
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Abort => "abort",
            Self::Segv => "segv",
            Self::Hang => "hang",
            Self::Sticky => "sticky",
            Self::Garbage => "garbage",
        })
    }
}

impl FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "abort" => Ok(Self::Abort),
            "segv" => Ok(Self::Segv),
            "hang" => Ok(Self::Hang),
            "sticky" => Ok(Self::Sticky),
            "garbage" => Ok(Self::Garbage),
            other => Err(format!(
                "unknown fault `{other}` (abort, segv, hang, sticky, garbage)"
            )),
        }
    }
}

/// Faults by the frame sequence number that triggers them; in vigil.yml the string form.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FaultPlan(BTreeMap<u64, Fault>);

impl fmt::Display for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self.0.iter().map(|(seq, k)| format!("{k}@{seq}")).collect();
        f.write_str(&items.join(","))
    }
}

impl TryFrom<String> for FaultPlan {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<FaultPlan> for String {
    fn from(p: FaultPlan) -> String {
        p.to_string()
    }
}

impl FaultPlan {
    /// The fault planned for frame `seq`, unless a predecessor process already died on a frame
    /// at or after it (a restarted node must not fail again on a frame replayed to it).
    #[must_use]
    pub fn at(&self, seq: u64, died_at: Option<u64>) -> Option<Fault> {
        let fault = *self.0.get(&seq)?;
        match died_at {
            Some(d) if fault.is_fatal() && seq <= d => None,
            _ => Some(fault),
        }
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many of the planned faults end the process.
    #[must_use]
    pub fn fatal(&self) -> usize {
        self.0.values().filter(|f| f.is_fatal()).count()
    }
}

impl FromStr for FaultPlan {
    type Err = String;
    /// `kind@seq` items separated by commas; empty is no fault.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut plan = BTreeMap::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (kind, seq) = item
                .split_once('@')
                .ok_or_else(|| format!("`{item}` is not kind@seq"))?;
            let seq: u64 = seq
                .trim()
                .parse()
                .map_err(|e| format!("`{item}`: frame sequence number: {e}"))?;
            if plan.insert(seq, kind.parse()?).is_some() {
                return Err(format!("two faults at frame {seq}"));
            }
        }
        Ok(Self(plan))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_parses_and_a_restarted_node_skips_what_killed_its_predecessor() {
        let plan: FaultPlan = "abort@10, segv@20,garbage@5".parse().expect("parses");
        assert_eq!((plan.len(), plan.fatal()), (3, 2));
        assert_eq!(plan.at(10, None), Some(Fault::Abort));
        assert_eq!(plan.at(10, Some(10)), None);
        assert_eq!(plan.at(20, Some(10)), Some(Fault::Segv));
        assert_eq!(plan.at(5, Some(10)), Some(Fault::Garbage));
        assert_eq!(plan.at(11, None), None);
        assert!("".parse::<FaultPlan>().expect("empty").is_empty());
        for bad in ["abort", "melt@3", "abort@x", "abort@1,segv@1"] {
            assert!(bad.parse::<FaultPlan>().is_err(), "{bad}");
        }
    }
}
