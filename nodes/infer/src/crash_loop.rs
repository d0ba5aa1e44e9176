//! The crash-loop breaker: an infer process that keeps dying (a corrupt engine, a driver gone
//! bad) must not spin. Each process keeps its deaths in `<state_dir>/<node id>.deaths`; a
//! process started again by dora records the death it replaces, and when `deaths` of them fell
//! within `window_s` seconds (since its last pause) it holds back for a pause before loading
//! the model: `pause_s` the first time, twice as long at each trip that follows within
//! `window_s` of the last pause's end, at most `max_pause_s`.
//!
//! [`History::decide`] is the pure core: times come in as arguments (the node passes the wall
//! clock, which only this decision reads). The file is text, one record per line, and keeps
//! only the records of the running dataflow (`dataflow` id), the newest [`KEEP`] of them.

use std::path::Path;

use vigil_config::CrashLoop;

/// Records kept per process: every death `infer.crash_loop.deaths` may count (at most
/// [`CrashLoop::MAX_DEATHS`]) and the pauses between them.
pub const KEEP: usize = 2 * CrashLoop::MAX_DEATHS as usize;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Record {
    Death { at_ms: u64, cause: String },
    Pause { at_ms: u64, len_ms: u64, level: u32 },
}

/// A trip of the breaker: hold back `pause_ms` before loading again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    pub deaths: u32,
    pub window_s: u32,
    pub pause_ms: u64,
    /// How the last death came.
    pub cause: String,
    level: u32,
}

/// One process's deaths and pauses in the running dataflow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    dataflow: String,
    records: Vec<Record>,
}

impl History {
    #[must_use]
    pub fn new(dataflow: &str) -> Self {
        Self {
            dataflow: dataflow.to_owned(),
            records: Vec::new(),
        }
    }

    /// The records of `dataflow` in `text` (lines of other runs, or that do not parse, are
    /// not this run's history).
    #[must_use]
    pub fn parse(text: &str, dataflow: &str) -> Self {
        let records = text
            .lines()
            .filter_map(|line| {
                let mut f = line.splitn(5, ' ');
                let (kind, run, at) = (f.next()?, f.next()?, f.next()?.parse().ok()?);
                if run != dataflow {
                    return None;
                }
                match kind {
                    "death" => Some(Record::Death {
                        at_ms: at,
                        cause: f.collect::<Vec<_>>().join(" "),
                    }),
                    "pause" => Some(Record::Pause {
                        at_ms: at,
                        len_ms: f.next()?.parse().ok()?,
                        level: f.next()?.parse().ok()?,
                    }),
                    _ => None,
                }
            })
            .collect();
        Self {
            dataflow: dataflow.to_owned(),
            records,
        }
    }

    /// Reads `path` (a missing file is an empty history).
    pub fn load(path: &Path, dataflow: &str) -> std::io::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Self::parse(&text, dataflow)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::new(dataflow)),
            Err(e) => Err(e),
        }
    }

    #[must_use]
    pub fn to_text(&self) -> String {
        let skip = self.records.len().saturating_sub(KEEP);
        self.records[skip..]
            .iter()
            .map(|r| match r {
                Record::Death { at_ms, cause } => {
                    let cause = cause.replace(['\n', '\r'], " ");
                    format!("death {} {at_ms} {cause}\n", self.dataflow)
                }
                Record::Pause {
                    at_ms,
                    len_ms,
                    level,
                } => format!("pause {} {at_ms} {len_ms} {level}\n", self.dataflow),
            })
            .collect()
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("deaths.tmp");
        std::fs::write(&tmp, self.to_text())?;
        std::fs::rename(&tmp, path)
    }

    pub fn death(&mut self, at_ms: u64, cause: &str) {
        self.records.push(Record::Death {
            at_ms,
            cause: cause.to_owned(),
        });
    }

    /// Whether a process starting at `now_ms` must hold back, and for how long; a trip is
    /// recorded (save the history after).
    pub fn decide(&mut self, cfg: &CrashLoop, now_ms: u64) -> Option<Pause> {
        let window_ms = u64::from(cfg.window_s.get()) * 1000;
        let last_pause = self.records.iter().rev().find_map(|r| match r {
            Record::Pause {
                at_ms,
                len_ms,
                level,
            } => Some((at_ms.saturating_add(*len_ms), *level)),
            Record::Death { .. } => None,
        });
        let since = now_ms
            .saturating_sub(window_ms)
            .max(last_pause.map_or(0, |(end, _)| end));
        let recent: Vec<&String> = self
            .records
            .iter()
            .filter_map(|r| match r {
                Record::Death { at_ms, cause } if *at_ms >= since && *at_ms <= now_ms => {
                    Some(cause)
                }
                _ => None,
            })
            .collect();
        let deaths = u32::try_from(recent.len()).unwrap_or(u32::MAX);
        if deaths < cfg.deaths.get() {
            return None;
        }
        // Tripping again soon after the last pause: twice as long as that one.
        let level = match last_pause {
            Some((end, level)) if now_ms.saturating_sub(end) <= window_ms => {
                level.saturating_add(1)
            }
            _ => 0,
        };
        let base = u64::from(cfg.pause_s.get()) * 1000;
        let pause_ms = base
            .saturating_mul(1u64 << level.min(20))
            .min(u64::from(cfg.max_pause_s.get()) * 1000);
        let cause = recent.last().map(|c| (*c).clone()).unwrap_or_default();
        self.records.push(Record::Pause {
            at_ms: now_ms,
            len_ms: pause_ms,
            level,
        });
        Some(Pause {
            deaths,
            window_s: cfg.window_s.get(),
            pause_ms,
            cause,
            level,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> CrashLoop {
        CrashLoop::default()
    }

    #[test]
    fn five_deaths_within_a_minute_trip_it_and_the_pause_doubles_while_it_goes_on() {
        let c = cfg();
        assert_eq!(
            (c.deaths.get(), c.window_s.get(), c.pause_s.get()),
            (5, 60, 10)
        );
        let mut h = History::new("run1");
        let mut now = 1_000_000;
        for i in 0..4 {
            h.death(now, "SIGSEGV");
            assert_eq!(h.decide(&c, now), None, "death {i}: not yet");
            now += 1000;
        }
        h.death(now, "sticky device error");
        let p = h.decide(&c, now).expect("the fifth death trips it");
        assert_eq!(
            (p.deaths, p.pause_ms, p.cause.as_str()),
            (5, 10_000, "sticky device error")
        );
        // After the pause the count starts again: one death is not a loop…
        now += 10_000 + 500;
        h.death(now, "SIGSEGV");
        assert_eq!(h.decide(&c, now), None);
        // …five more soon after are, and the pause doubles; then 40 s, …, at most 300 s.
        let mut pauses = Vec::new();
        for _ in 0..6 {
            for _ in 0..5 {
                now += 200;
                h.death(now, "SIGSEGV");
            }
            let p = h.decide(&c, now).expect("trips");
            pauses.push(p.pause_ms / 1000);
            now += p.pause_ms;
        }
        assert_eq!(pauses, [20, 40, 80, 160, 300, 300]);
        // Round trip through the file, and a quiet minute after a pause starts over at 10 s.
        let text = h.to_text();
        let mut again = History::parse(&text, "run1");
        assert_eq!(again, h);
        now += 61_000;
        for _ in 0..5 {
            now += 100;
            again.death(now, "watchdog");
        }
        assert_eq!(again.decide(&c, now).map(|p| p.pause_ms), Some(10_000));
    }

    #[test]
    fn deaths_spread_out_or_from_another_run_do_not_count() {
        let c = cfg();
        let mut h = History::new("run2");
        for i in 0..10 {
            h.death(i * 20_000, "SIGABRT");
            assert_eq!(h.decide(&c, i * 20_000), None, "three a minute at most");
        }
        let old = "death run1 100 SIGSEGV\n".repeat(10);
        let mut h = History::parse(&(old + "garbage line\npause run2 x 1 0\n"), "run2");
        h.death(200, "SIGSEGV");
        assert_eq!(
            h.decide(&c, 200),
            None,
            "another run's deaths are not this one's"
        );
        assert!(!h.to_text().contains("run1"));
        let mut long = History::new("run3");
        for i in 0..(KEEP as u64 * 2) {
            long.death(i * 100_000, "SIGSEGV");
        }
        assert_eq!(long.to_text().lines().count(), KEEP);
    }
}
