//! Fault injection, shipped so that every recovery path can be exercised on purpose:
//! `infer.faults: "abort@150,segv@300,hang@450,sticky@600,garbage@750,illegal@900"` makes the
//! infer node fail in the named way on the first frame it runs on at or after that sequence number (live,
//! the detector takes the newest frame when it is free, so the planned one may pass it by).

use std::path::PathBuf;

use vigil_detect::{OutputShape, OutputTensor};
use vigil_infer::{Backend, InferError, InputSpec, Outputs, RgbFrame};

pub use vigil_config::{Fault, FaultPlan};

/// The planned faults already injected by any infer process of this dataflow: one marker file
/// per fault in the state folder (`faults-<dataflow id>-<planned frame>.done`), created with
/// `O_EXCL`, so that of several processes meeting a planned fault at once exactly one injects
/// it. With a standby or several workers, whichever process meets a planned fault first
/// injects it, the others pass.
#[derive(Debug, Clone)]
pub struct Ledger {
    dir: PathBuf,
    dataflow: String,
}

impl Ledger {
    #[must_use]
    pub fn new(dir: PathBuf, dataflow: &str) -> Self {
        Self {
            dir,
            dataflow: dataflow.to_owned(),
        }
    }

    /// Claims planned fault `planned` for this process: false when another has it already.
    /// A marker that cannot be written (the folder gone) lets the fault happen: a drill is
    /// better repeated than lost.
    fn claim(&self, planned: u64) -> bool {
        let path = self
            .dir
            .join(format!("faults-{}-{planned}.done", self.dataflow));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(_) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "infer: fault marker not written");
                true
            }
        }
    }
}

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
    ledger: Option<Ledger>,
}

impl<B> Faulty<B> {
    pub fn new(inner: B, plan: FaultPlan, died_at: Option<u64>, exact: bool) -> Self {
        Self {
            inner,
            plan,
            done: died_at,
            exact,
            seq: 0,
            ledger: None,
        }
    }

    /// Shares what was injected with the other infer processes of the dataflow.
    #[must_use]
    pub fn with_ledger(mut self, ledger: Ledger) -> Self {
        self.ledger = Some(ledger);
        self
    }

    /// The frame the next `run` is for.
    pub fn set_frame(&mut self, seq: u64) {
        self.seq = seq;
    }
}

impl<B: Backend> Faulty<B> {
    /// The fault planned for this frame, if any (each planned fault once); the faults that do
    /// not return happen here.
    fn strike(&mut self) -> Result<Option<Fault>, InferError> {
        let (planned, fault) = loop {
            let Some((planned, fault)) = self.plan.due(self.seq, self.done, self.exact) else {
                return Ok(None);
            };
            self.done = Some(planned);
            // Unless another process met this one first.
            if self.ledger.as_ref().is_none_or(|l| l.claim(planned)) {
                break (planned, fault);
            }
        };
        tracing::warn!(seq = self.seq, planned, fault = %fault, "infer: injecting fault");
        match fault {
            Fault::Abort => std::process::abort(),
            Fault::Segv => crate::last_words::segfault(),
            Fault::Hang => loop {
                std::thread::sleep(std::time::Duration::from_hours(1));
            },
            Fault::Sticky => Err(InferError::StickyDevice(
                "injected fault: CUDA error 700 cudaErrorIllegalAddress: an illegal memory access was encountered".into(),
            )),
            // The real thing: the run that follows meets the broken context.
            Fault::Illegal => self.inner.break_device().map(|()| None),
            Fault::Garbage => Ok(Some(Fault::Garbage)),
        }
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
        let fault = self.strike()?;
        let mut outs = self.inner.run(shape, data)?;
        if fault == Some(Fault::Garbage) {
            poison(&mut outs);
        }
        Ok(outs)
    }

    fn run_frame(&mut self, frame: &RgbFrame<'_>) -> Result<Outputs, InferError> {
        let fault = self.strike()?;
        let mut outs = self.inner.run_frame(frame)?;
        if fault == Some(Fault::Garbage) {
            match &mut outs {
                Outputs::Raw(raw) => poison(raw),
                Outputs::Candidates { nonfinite, .. } => *nonfinite += 1,
            }
        }
        Ok(outs)
    }

    fn break_device(&mut self) -> Result<(), InferError> {
        self.inner.break_device()
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
