//! Fault injection, shipped so that every recovery path can be exercised on purpose:
//! `infer.faults: "abort@150,segv@300,hang@450,sticky@600,garbage@750"` makes the infer node
//! fail in the named way on the first frame it runs on at or after that sequence number (live,
//! the detector takes the newest frame when it is free, so the planned one may pass it by).

use vigil_detect::{OutputShape, OutputTensor};
use vigil_infer::{Backend, InferError, InputSpec};

pub use vigil_config::{Fault, FaultPlan};

/// Fault injection around a backend: the fault planned for the current frame happens inside
/// `run`, where a real one would, so everything around it (the watchdog, the sticky-error
/// exit, NaN rejection) meets it as it would meet the real thing.
#[derive(Debug)]
pub struct Faulty<B> {
    inner: B,
    plan: FaultPlan,
    /// The planned frame of the last fault injected here, or the frame the previous process
    /// died on: those faults are not repeated.
    done: Option<u64>,
    /// Only on the planned frame itself (lock-step), else on the first at or after it.
    exact: bool,
    seq: u64,
}

impl<B> Faulty<B> {
    pub fn new(inner: B, plan: FaultPlan, died_at: Option<u64>, exact: bool) -> Self {
        Self {
            inner,
            plan,
            done: died_at,
            exact,
            seq: 0,
        }
    }

    /// The frame the next `run` is for.
    pub fn set_frame(&mut self, seq: u64) {
        self.seq = seq;
    }
}

impl<B: Backend> Backend for Faulty<B> {
    fn input(&self) -> &InputSpec {
        self.inner.input()
    }

    fn outputs(&self) -> &[OutputShape] {
        self.inner.outputs()
    }

    fn run(&mut self, shape: &[usize], data: &[f32]) -> Result<Vec<OutputTensor>, InferError> {
        let fault = self
            .plan
            .due(self.seq, self.done, self.exact)
            .map(|(planned, f)| {
                self.done = Some(planned);
                tracing::warn!(seq = self.seq, planned, fault = %f, "infer: injecting fault");
                f
            });
        match fault {
            Some(Fault::Abort) => std::process::abort(),
            Some(Fault::Segv) => crate::last_words::segfault(),
            Some(Fault::Hang) => loop {
                std::thread::sleep(std::time::Duration::from_hours(1));
            },
            Some(Fault::Sticky) => Err(InferError::StickyDevice(
                "injected fault: CUDA error 700 cudaErrorIllegalAddress: an illegal memory access was encountered".into(),
            )),
            Some(Fault::Garbage) => self.inner.run(shape, data).map(|mut outs| {
                poison(&mut outs);
                outs
            }),
            None => self.inner.run(shape, data),
        }
    }
}

/// What a broken device hands back: NaN and inf everywhere.
fn poison(outputs: &mut [OutputTensor]) {
    for o in outputs {
        for (i, v) in o.data.iter_mut().enumerate() {
            *v = if i % 2 == 0 { f32::NAN } else { f32::INFINITY };
        }
    }
}
