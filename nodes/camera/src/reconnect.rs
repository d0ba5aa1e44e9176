//! The camera comes back: what to do when capture fails, as a pure state machine (times in,
//! actions out; no V4L2, no clock), so that every path is tested without a camera.
//!
//! A C920 that is unplugged (`ENODEV`, its device node gone: `ENOENT`), whose driver errors
//! (`EIO`), or that stops delivering (a `select` timeout) is closed and reopened, after
//! `first_retry_ms`, doubling up to `max_retry_ms` while it keeps failing. Each outage is
//! reported once when it starts (`Report::Down`) and once when the first frame comes again
//! (`Report::Up`, with how long it lasted and how many reopen attempts it took); the rest of the
//! pipeline never restarts for it.

use std::fmt;

/// Why capture stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The device is gone: unplugged (`ENODEV`), or its node does not exist (`ENOENT`).
    Gone(String),
    /// The driver reported an I/O error (`EIO`) or another error.
    Driver(String),
    /// No frame within the capture timeout.
    Timeout,
}

impl Failure {
    /// Classifies an I/O error from opening or capturing.
    #[must_use]
    pub fn of(e: &std::io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::ENODEV | libc::ENOENT | libc::ENXIO) => Self::Gone(e.to_string()),
            Some(libc::ETIMEDOUT | libc::EAGAIN) => Self::Timeout,
            _ if e.kind() == std::io::ErrorKind::TimedOut => Self::Timeout,
            _ => Self::Driver(e.to_string()),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Gone(e) => write!(f, "the camera is gone ({e})"),
            Self::Driver(e) => write!(f, "the driver failed ({e})"),
            Self::Timeout => f.write_str("no frame within the capture timeout"),
        }
    }
}

/// What the camera node must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Capture the next frame from the open device.
    Capture,
    /// Close what is open, wait this long, then reopen.
    Reopen { after_ms: u64 },
}

/// What the monitor must hear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    Down {
        at_ms: u64,
        why: String,
    },
    Up {
        at_ms: u64,
        outage_ms: u64,
        attempts: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub first_retry_ms: u64,
    pub max_retry_ms: u64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            first_retry_ms: 100,
            max_retry_ms: 5_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Streaming,
    /// Since `since_ms`; `attempts` reopen attempts so far, the next after `wait_ms`.
    Down {
        since_ms: u64,
        attempts: u32,
        wait_ms: u64,
    },
    /// Reopened; the outage ends with the first frame (if opening turns out to have been
    /// in vain, the wait after `wait_ms` doubles as in `Down`).
    Reopened {
        since_ms: u64,
        attempts: u32,
        wait_ms: u64,
    },
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Reconnect {
    backoff: Backoff,
    state: State,
    outages: u64,
}

impl Reconnect {
    #[must_use]
    pub fn new(backoff: Backoff) -> Self {
        Self {
            backoff,
            state: State::Streaming,
            outages: 0,
        }
    }

    /// Outages so far.
    #[must_use]
    pub fn outages(&self) -> u64 {
        self.outages
    }

    #[must_use]
    pub fn next(&self) -> Action {
        match &self.state {
            State::Streaming | State::Reopened { .. } => Action::Capture,
            State::Down { wait_ms, .. } => Action::Reopen { after_ms: *wait_ms },
        }
    }

    /// A frame came at `now_ms`.
    pub fn frame(&mut self, now_ms: u64) -> Option<Report> {
        match std::mem::replace(&mut self.state, State::Streaming) {
            State::Streaming => None,
            State::Down {
                since_ms, attempts, ..
            }
            | State::Reopened {
                since_ms, attempts, ..
            } => Some(Report::Up {
                at_ms: now_ms,
                outage_ms: now_ms.saturating_sub(since_ms),
                attempts,
            }),
        }
    }

    /// Capturing, or reopening, failed at `now_ms`.
    pub fn failed(&mut self, now_ms: u64, why: &Failure) -> Option<Report> {
        match &mut self.state {
            State::Streaming => {
                self.outages += 1;
                self.state = State::Down {
                    since_ms: now_ms,
                    attempts: 0,
                    wait_ms: self.backoff.first_retry_ms,
                };
                Some(Report::Down {
                    at_ms: now_ms,
                    why: why.to_string(),
                })
            }
            // Still down, or open again but failing before a frame came: the same outage,
            // the wait doubles.
            State::Down {
                since_ms,
                attempts,
                wait_ms,
            }
            | State::Reopened {
                since_ms,
                attempts,
                wait_ms,
            } => {
                self.state = State::Down {
                    since_ms: *since_ms,
                    attempts: *attempts,
                    wait_ms: wait_ms.saturating_mul(2).min(self.backoff.max_retry_ms),
                };
                None
            }
        }
    }

    /// A reopen attempt is about to be made.
    pub fn reopening(&mut self) {
        if let State::Down { attempts, .. } = &mut self.state {
            *attempts += 1;
        }
    }

    /// The device opened again; capture resumes (the outage ends with the first frame).
    pub fn reopened(&mut self) {
        if let State::Down {
            since_ms,
            attempts,
            wait_ms,
        } = self.state
        {
            self.state = State::Reopened {
                since_ms,
                attempts,
                wait_ms,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(code: i32) -> std::io::Error {
        std::io::Error::from_raw_os_error(code)
    }

    #[test]
    fn errors_are_classified() {
        assert!(matches!(Failure::of(&io(libc::ENODEV)), Failure::Gone(_)));
        assert!(matches!(Failure::of(&io(libc::ENOENT)), Failure::Gone(_)));
        assert!(matches!(Failure::of(&io(libc::EIO)), Failure::Driver(_)));
        assert_eq!(Failure::of(&io(libc::ETIMEDOUT)), Failure::Timeout);
        let t = std::io::Error::new(std::io::ErrorKind::TimedOut, "select");
        assert_eq!(Failure::of(&t), Failure::Timeout);
    }

    #[test]
    fn an_unplugged_camera_is_reopened_with_back_off_and_one_outage_is_reported() {
        let mut r = Reconnect::new(Backoff::default());
        assert_eq!(r.next(), Action::Capture);
        assert_eq!(r.frame(0), None, "streaming: nothing to say");
        // Unplugged at t = 1 s.
        let down = r.failed(1_000, &Failure::of(&io(libc::ENODEV)));
        let Some(Report::Down { at_ms: 1_000, why }) = down else {
            panic!("{down:?}")
        };
        assert!(why.contains("gone"), "{why}");
        // Each failed reopen doubles the wait: 100, 200, 400 … at most 5 s.
        let mut waits = Vec::new();
        let mut now = 1_000;
        for _ in 0..8 {
            let Action::Reopen { after_ms } = r.next() else {
                panic!("must reopen")
            };
            waits.push(after_ms);
            now += after_ms;
            r.reopening();
            assert_eq!(r.failed(now, &Failure::of(&io(libc::ENOENT))), None);
        }
        assert_eq!(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        // Plugged back in: it opens, and the first frame ends the outage.
        let Action::Reopen { after_ms } = r.next() else {
            panic!()
        };
        now += after_ms;
        r.reopening();
        r.reopened();
        assert_eq!(r.next(), Action::Capture);
        assert_eq!(
            r.frame(now + 40),
            Some(Report::Up {
                at_ms: now + 40,
                outage_ms: now + 40 - 1_000,
                attempts: 9
            })
        );
        assert_eq!(r.outages(), 1);
        assert_eq!(r.frame(now + 80), None);
    }

    #[test]
    fn a_driver_error_after_reopening_is_the_same_outage_and_a_later_one_is_new() {
        let mut r = Reconnect::new(Backoff {
            first_retry_ms: 50,
            max_retry_ms: 1_000,
        });
        assert!(r.failed(0, &Failure::of(&io(libc::EIO))).is_some());
        r.reopening();
        r.reopened();
        // Open, but the first capture times out: still down, the wait grows from where it was.
        assert_eq!(r.failed(500, &Failure::Timeout), None);
        assert_eq!(r.next(), Action::Reopen { after_ms: 100 });
        r.reopening();
        r.reopened();
        let Some(Report::Up {
            attempts,
            outage_ms,
            ..
        }) = r.frame(700)
        else {
            panic!()
        };
        assert_eq!((attempts, outage_ms), (2, 700));
        // A select timeout later is a new outage, back at the first wait.
        assert!(matches!(
            r.failed(10_000, &Failure::Timeout),
            Some(Report::Down { .. })
        ));
        assert_eq!(r.next(), Action::Reopen { after_ms: 50 });
        assert_eq!(r.outages(), 2);
    }
}
