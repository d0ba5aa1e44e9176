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
    /// A kernel writes through a wild device pointer in the infer process's own CUDA context:
    /// a real `cudaErrorIllegalAddress` (error 700), reported by the next CUDA or ONNX Runtime
    /// call. Needs a GPU provider.
    Illegal,
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
            Self::Illegal => "illegal",
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
            "illegal" => Ok(Self::Illegal),
            other => Err(format!(
                "unknown fault `{other}` (abort, segv, hang, sticky, garbage, illegal)"
            )),
        }
    }
}

/// Faults by the frame sequence number that triggers them; in vigil.yml the string form.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FaultPlan {
    once: BTreeMap<u64, Fault>,
    /// `kind@N..`: on every frame from N on (a detector that dies on every frame).
    every: Option<(u64, Fault)>,
}

impl fmt::Display for FaultPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self
            .once
            .iter()
            .map(|(seq, k)| format!("{k}@{seq}"))
            .chain(self.every.map(|(seq, k)| format!("{k}@{seq}..")))
            .collect();
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
    /// The fault to inject on frame `seq`, after `done` (the planned frame of the last fault
    /// this process injected, or the frame a predecessor process died on, so that a restarted
    /// node does not fail again on what killed it). `exact`: only a fault planned for `seq`
    /// itself (lock-step: every frame is inferred, and which process infers it must not
    /// matter); else the first one planned at or before `seq` (live: the detector runs on the
    /// newest frame when it is free, so the planned frame itself may pass it by).
    #[must_use]
    pub fn due(&self, seq: u64, done: Option<u64>, exact: bool) -> Option<(u64, Fault)> {
        let from = if exact {
            seq
        } else {
            done.map_or(0, |d| d.saturating_add(1))
        };
        if done.is_some_and(|d| seq <= d) || from > seq {
            return None;
        }
        self.once
            .range(from..=seq)
            .next()
            .map(|(&at, &f)| (at, f))
            .or_else(|| {
                self.every
                    .filter(|(start, _)| seq >= *start)
                    .map(|(_, f)| (seq, f))
            })
    }

    #[must_use]
    pub fn has(&self, fault: Fault) -> bool {
        self.once
            .values()
            .chain(self.every.as_ref().map(|(_, f)| f))
            .any(|&f| f == fault)
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.once.len() + usize::from(self.every.is_some())
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many of the planned faults end the process (`None`: a fatal one on every frame
    /// from some frame on, without end).
    #[must_use]
    pub fn fatal(&self) -> Option<usize> {
        if self.every.is_some_and(|(_, f)| f.is_fatal()) {
            return None;
        }
        Some(self.once.values().filter(|f| f.is_fatal()).count())
    }
}

impl FromStr for FaultPlan {
    type Err = String;
    /// `kind@seq` items separated by commas, and at most one `kind@seq..` (on every frame
    /// from `seq` on); empty is no fault.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut plan = Self::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (kind, seq) = item
                .split_once('@')
                .ok_or_else(|| format!("`{item}` is not kind@seq"))?;
            let (seq, every) = match seq.trim().strip_suffix("..") {
                Some(start) => (start, true),
                None => (seq.trim(), false),
            };
            let seq: u64 = seq
                .parse()
                .map_err(|e| format!("`{item}`: frame sequence number: {e}"))?;
            let kind: Fault = kind.parse()?;
            if every {
                if plan.every.replace((seq, kind)).is_some() {
                    return Err(format!("`{item}`: one `kind@N..` at most"));
                }
            } else if plan.once.insert(seq, kind).is_some() {
                return Err(format!("two faults at frame {seq}"));
            }
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_parses_and_each_fault_comes_once_on_the_first_frame_at_or_after_its_own() {
        let plan: FaultPlan = "abort@10, segv@20,garbage@5".parse().expect("parses");
        assert_eq!((plan.len(), plan.fatal()), (3, Some(2)));
        let live = |seq, done| plan.due(seq, done, false);
        assert_eq!(live(4, None), None);
        assert_eq!(live(5, None), Some((5, Fault::Garbage)));
        assert_eq!(live(10, Some(5)), Some((10, Fault::Abort)));
        // Frame 10 never reached the detector: the fault comes on the next one that does.
        assert_eq!(live(12, Some(5)), Some((10, Fault::Abort)));
        // The predecessor died on frame 12: its successor goes on to the next fault.
        assert_eq!(live(13, Some(12)), None);
        assert_eq!(live(21, Some(12)), Some((20, Fault::Segv)));
        assert_eq!(live(30, Some(20)), None);
        // Lock-step: on the planned frame only, in whichever process gets it.
        let exact = |seq, done| plan.due(seq, done, true);
        assert_eq!(exact(12, None), None);
        assert_eq!(exact(10, None), Some((10, Fault::Abort)));
        assert_eq!(exact(10, Some(10)), None, "it killed the predecessor");
        assert_eq!(exact(20, Some(10)), Some((20, Fault::Segv)));
        assert!("".parse::<FaultPlan>().expect("empty").is_empty());
        for bad in [
            "abort",
            "melt@3",
            "abort@x",
            "abort@1,segv@1",
            "segv@1..,abort@5..",
            "segv@..",
        ] {
            assert!(bad.parse::<FaultPlan>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_fault_on_every_frame_from_some_frame_on() {
        let plan: FaultPlan = "garbage@2,segv@10..".parse().expect("parses");
        assert_eq!(plan.to_string(), "garbage@2,segv@10..");
        assert_eq!(plan.fatal(), None, "no end to them");
        assert_eq!(plan.due(9, Some(2), false), None);
        assert_eq!(plan.due(10, Some(2), false), Some((10, Fault::Segv)));
        // Each frame is its own plan: the next process dies on the next frame it takes.
        assert_eq!(plan.due(14, Some(10), false), Some((14, Fault::Segv)));
        assert_eq!(plan.due(14, Some(14), false), None);
        assert_eq!(plan.due(15, None, true), Some((15, Fault::Segv)));
    }
}
