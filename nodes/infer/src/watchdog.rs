//! The watchdog: a thread that ends the process when one inference overruns its deadline. A
//! call hung inside a GPU driver cannot be interrupted or unwound; the only way out is a new
//! process, which dora's restart policy provides.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vigil_detect::{OutputShape, OutputTensor};
use vigil_infer::{Backend, InferError, InputSpec, Outputs, RgbFrame};

use crate::last_words::{EXIT_WATCHDOG, LastWords};

/// Arms and disarms around each inference.
#[derive(Debug, Clone)]
pub struct Watchdog {
    epoch: Instant,
    /// Microseconds since `epoch` when the running inference began, plus one; 0 when idle.
    started: Arc<AtomicU64>,
}

impl Watchdog {
    /// Starts the watchdog thread; it calls `last_words.exit(EXIT_WATCHDOG)` on an overrun.
    pub fn start(deadline: Duration, last_words: Arc<LastWords>) -> std::io::Result<Self> {
        let dog = Self {
            epoch: Instant::now(),
            started: Arc::default(),
        };
        let watched = dog.clone();
        let tick = (deadline / 10).clamp(Duration::from_millis(1), Duration::from_millis(50));
        std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(tick);
                    let started = watched.started.load(Ordering::Acquire);
                    if started == 0 {
                        continue;
                    }
                    let now = watched.now_us();
                    let running = Duration::from_micros(now.saturating_sub(started - 1));
                    if running > deadline {
                        eprintln!(
                            "infer: watchdog: inference running for {} ms, deadline {} ms; exiting for a restart",
                            running.as_millis(),
                            deadline.as_millis()
                        );
                        last_words.exit(EXIT_WATCHDOG);
                    }
                }
            })?;
        Ok(dog)
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX - 1)
    }

    pub fn arm(&self) {
        self.started.store(self.now_us() + 1, Ordering::Release);
    }

    pub fn disarm(&self) {
        self.started.store(0, Ordering::Release);
    }
}

/// A backend with the watchdog armed for the length of each run (none: no deadline).
#[derive(Debug)]
pub struct Watched<B> {
    inner: B,
    dog: Option<Watchdog>,
}

impl<B> Watched<B> {
    pub fn new(inner: B, dog: Option<Watchdog>) -> Self {
        Self { inner, dog }
    }

    pub fn inner_mut(&mut self) -> &mut B {
        &mut self.inner
    }
}

impl<B: Backend> Backend for Watched<B> {
    fn input(&self) -> &InputSpec {
        self.inner.input()
    }

    fn outputs(&self) -> &[OutputShape] {
        self.inner.outputs()
    }

    fn run(&mut self, shape: &[usize], data: &[f32]) -> Result<Vec<OutputTensor>, InferError> {
        self.armed(|b| b.run(shape, data))
    }

    fn run_frame(&mut self, frame: &RgbFrame<'_>) -> Result<Outputs, InferError> {
        self.armed(|b| b.run_frame(frame))
    }

    fn break_device(&mut self) -> Result<(), InferError> {
        self.inner.break_device()
    }
}

impl<B> Watched<B> {
    fn armed<T>(&mut self, f: impl FnOnce(&mut B) -> T) -> T {
        if let Some(d) = &self.dog {
            d.arm();
        }
        let result = f(&mut self.inner);
        if let Some(d) = &self.dog {
            d.disarm();
        }
        result
    }
}
