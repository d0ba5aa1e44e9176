//! A process's last words: how it ended and on which frame, written on the way out so that
//! the next process (started by dora's restart policy) can report it.
//!
//! Controlled ends (a sticky device error, the watchdog) write the record and leave with a
//! distinct exit code. Fatal signals (SIGSEGV, SIGABRT, SIGBUS, SIGILL, SIGFPE) are caught by a
//! handler that writes the same fixed-size record with `pwrite(2)` — async-signal-safe, no
//! allocation, no lock — and then lets the signal kill the process as it would have.
//!
//! Record (24 bytes, little endian): `VGLW`, kind u32 (1 signal, 2 exit code), value i32,
//! 4 reserved bytes, frame seq u64 (`u64::MAX`: before the first frame).
#![allow(unsafe_code)]

use std::fs::File;
use std::io::Write as _;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

use vigil_msg::FaultReport;

/// Exit code after a sticky device error (CUDA error 700 and kin).
pub const EXIT_STICKY_DEVICE: i32 = 86;
/// Exit code when the watchdog ends an inference that overran its deadline.
pub const EXIT_WATCHDOG: i32 = 87;

const MAGIC: &[u8; 4] = b"VGLW";
const KIND_SIGNAL: u32 = 1;
const KIND_EXIT: u32 = 2;
const LEN: usize = 24;
const NO_FRAME: u64 = u64::MAX;

static FD: AtomicI32 = AtomicI32::new(-1);
static SEQ: AtomicU64 = AtomicU64::new(NO_FRAME);

const FATAL_SIGNALS: [libc::c_int; 5] = [
    libc::SIGSEGV,
    libc::SIGABRT,
    libc::SIGBUS,
    libc::SIGILL,
    libc::SIGFPE,
];

fn record(kind: u32, value: i32, seq: u64) -> [u8; LEN] {
    let mut r = [0u8; LEN];
    r[..4].copy_from_slice(MAGIC);
    r[4..8].copy_from_slice(&kind.to_le_bytes());
    r[8..12].copy_from_slice(&value.to_le_bytes());
    r[16..24].copy_from_slice(&seq.to_le_bytes());
    r
}

#[must_use]
pub fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGSEGV => "SIGSEGV".into(),
        libc::SIGABRT => "SIGABRT".into(),
        libc::SIGBUS => "SIGBUS".into(),
        libc::SIGILL => "SIGILL".into(),
        libc::SIGFPE => "SIGFPE".into(),
        libc::SIGKILL => "SIGKILL".into(),
        other => format!("signal {other}"),
    }
}

#[must_use]
pub fn exit_cause(code: i32) -> String {
    match code {
        EXIT_STICKY_DEVICE => "sticky device error".into(),
        EXIT_WATCHDOG => "watchdog".into(),
        other => format!("exit code {other}"),
    }
}

/// Parses a record; `None` for an empty or foreign file.
#[must_use]
pub fn parse(bytes: &[u8]) -> Option<FaultReport> {
    let r: &[u8; LEN] = bytes.get(..LEN)?.try_into().ok()?;
    if &r[..4] != MAGIC {
        return None;
    }
    let word = |i: usize| [r[i], r[i + 1], r[i + 2], r[i + 3]];
    let kind = u32::from_le_bytes(word(4));
    let value = i32::from_le_bytes(word(8));
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&r[16..24]);
    let seq = u64::from_le_bytes(seq);
    let (cause, exit_code, signal) = match kind {
        KIND_SIGNAL => (signal_name(value), None, Some(value)),
        KIND_EXIT => (exit_cause(value), Some(value), None),
        _ => return None,
    };
    Some(FaultReport {
        cause,
        seq,
        exit_code,
        signal,
    })
}

/// Reads and clears the predecessor's last words at `path`.
pub fn take(path: &Path) -> std::io::Result<Option<FaultReport>> {
    match std::fs::read(path) {
        Ok(bytes) => {
            std::fs::write(path, [])?;
            Ok(parse(&bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The armed last-words file of this process.
#[derive(Debug)]
pub struct LastWords {
    file: File,
    path: PathBuf,
}

impl LastWords {
    /// Opens `path` for this process's last words and installs the fatal-signal handlers.
    pub fn arm(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = File::create(path)?;
        FD.store(file.as_raw_fd(), Ordering::SeqCst);
        for sig in FATAL_SIGNALS {
            // SAFETY: `on_fatal_signal` only loads atomics, builds a record on its stack and
            // calls pwrite, signal and raise, all async-signal-safe. The sigaction struct is
            // zero-initialised and then filled in completely before use.
            let installed = unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_fatal_signal as *const () as libc::sighandler_t;
                action.sa_flags = libc::SA_ONSTACK | libc::SA_RESETHAND;
                libc::sigemptyset(&raw mut action.sa_mask);
                libc::sigaction(sig, &raw const action, std::ptr::null_mut())
            };
            if installed != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(Self {
            file,
            path: path.to_owned(),
        })
    }

    /// The frame now being worked on, for the record.
    pub fn working_on(seq: u64) {
        SEQ.store(seq, Ordering::Relaxed);
    }

    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the record and leaves at once with `code`, running no destructors or exit
    /// handlers: after a sticky device error or a hung call they may block forever.
    pub fn exit(&self, code: i32) -> ! {
        let r = record(KIND_EXIT, code, SEQ.load(Ordering::Relaxed));
        let mut f = &self.file;
        let written = f.write_all(&r).and_then(|()| f.sync_data());
        if let Err(e) = written {
            eprintln!(
                "infer: could not write last words to {}: {e}",
                self.path.display()
            );
        }
        // SAFETY: _exit ends the process without touching any Rust state.
        unsafe { libc::_exit(code) }
    }
}

extern "C" fn on_fatal_signal(sig: libc::c_int) {
    let r = record(KIND_SIGNAL, sig, SEQ.load(Ordering::Relaxed));
    let fd = FD.load(Ordering::Relaxed);
    // SAFETY: pwrite on a file descriptor this process opened and never closes; signal and
    // raise re-deliver the signal with its default action (SA_RESETHAND already restored it).
    unsafe {
        if fd >= 0 {
            libc::pwrite(fd, r.as_ptr().cast(), LEN, 0);
        }
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
}

/// Dies of a real SIGSEGV: a write to an address no process maps.
pub fn segfault() -> ! {
    let address = std::hint::black_box(16usize);
    // SAFETY: none — this is the fault injector. The write faults before it can corrupt
    // anything; the handler above reports it and the kernel ends the process.
    unsafe {
        std::ptr::with_exposed_provenance_mut::<u32>(address).write_volatile(0xDEAD);
    }
    // Unreachable in practice; keep the type honest.
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_foreign_bytes_are_ignored() {
        let f = parse(&record(KIND_SIGNAL, libc::SIGSEGV, 300)).expect("parses");
        assert_eq!(
            (f.cause.as_str(), f.seq, f.signal, f.exit_code),
            ("SIGSEGV", 300, Some(11), None)
        );
        let f = parse(&record(KIND_EXIT, EXIT_WATCHDOG, 450)).expect("parses");
        assert_eq!((f.cause.as_str(), f.exit_code), ("watchdog", Some(87)));
        assert_eq!(parse(&[]), None);
        assert_eq!(parse(b"not a record at all, no magic"), None);
    }

    #[test]
    fn take_reads_once_then_clears() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("infer.lastwords");
        assert_eq!(take(&p).expect("absent is fine"), None);
        std::fs::write(&p, record(KIND_EXIT, EXIT_STICKY_DEVICE, 7)).expect("write");
        assert_eq!(take(&p).expect("reads").map(|f| f.seq), Some(7));
        assert_eq!(take(&p).expect("cleared"), None);
    }
}
