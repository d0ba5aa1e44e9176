//! SIGINT, SIGTERM and SIGHUP (a person's Ctrl-C, a CI system cancelling a job, a closed
//! terminal) stop `vigil replay`, `vigil test` and `vigil bench` cleanly: the dataflow they
//! started is stopped, every process of it, and the command exits non-zero saying so.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The signal received, 0 for none.
static RECEIVED: OnceLock<std::sync::Arc<AtomicUsize>> = OnceLock::new();

/// Catches SIGINT, SIGTERM and SIGHUP (a closed terminal) from now on: they no longer end the
/// process at once. A SIGKILL cannot be caught: `kill -9` of vigil leaves its dataflow
/// running.
pub fn install() -> eyre::Result<()> {
    let flag = RECEIVED.get_or_init(Default::default);
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register_usize(sig, std::sync::Arc::clone(flag), sig as usize)?;
    }
    Ok(())
}

/// The signal that asked to stop, if one came.
pub fn requested() -> Option<i32> {
    RECEIVED
        .get()
        .map(|f| f.load(Ordering::SeqCst))
        .filter(|&s| s != 0)
        .map(|s| s as i32)
}

/// The error a cancelled command ends with; `main` exits with 128 + the signal, as a shell
/// reports a process the signal ended.
#[derive(Debug, thiserror::Error)]
#[error("cancelled by {}: the dataflow was stopped", signal_name(*.0))]
pub struct Cancelled(pub i32);

fn signal_name(sig: i32) -> String {
    Signal::try_from(sig).map_or_else(|_| format!("signal {sig}"), |s| s.as_str().to_owned())
}

/// A process, named by its pid and its start time (clock ticks after boot, field 22 of
/// `/proc/PID/stat`): a pid reused by a newer process is not the same process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Proc {
    pid: u32,
    start: u64,
}

/// `(ppid, start time, state)` from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(u32, u64, char)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid …`: comm may hold spaces and parentheses.
    let rest: Vec<&str> = s.rsplit_once(')')?.1.split_whitespace().collect();
    let state = rest.first()?.chars().next()?;
    Some((
        rest.get(1)?.parse().ok()?,
        rest.get(19)?.parse().ok()?,
        state,
    ))
}

/// Every live process below `roots` (children, their children, …), read from /proc.
fn descendants(roots: &[u32]) -> Vec<Proc> {
    let mut table = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.filter_map(Result::ok) {
            if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok())
                && let Some((ppid, start, state)) = stat(pid)
                && state != 'Z'
            {
                table.push((pid, ppid, start));
            }
        }
    }
    let mut found: Vec<Proc> = Vec::new();
    let mut frontier: Vec<u32> = roots.to_vec();
    while let Some(p) = frontier.pop() {
        for &(pid, _, start) in table.iter().filter(|(pid, pp, _)| *pp == p && *pid != p) {
            if !found.iter().any(|f| f.pid == pid) {
                found.push(Proc { pid, start });
                frontier.push(pid);
            }
        }
    }
    found.sort();
    found
}

/// Whether the process still runs (not gone, not a zombie, not a newer one under its pid).
fn alive(p: Proc) -> bool {
    stat(p.pid).is_some_and(|(_, start, state)| start == p.start && state != 'Z')
}

fn signal(p: Proc, sig: Signal) -> bool {
    alive(p) && i32::try_from(p.pid).is_ok_and(|pid| kill(Pid::from_raw(pid), sig).is_ok())
}

/// What [`kill_tree`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    pub killed: usize,
    /// Processes of the tree still running after 5 s (none expected).
    pub left: usize,
}

/// Stops `root` (which leads its own process group) and every process below it. Each is
/// frozen first (SIGSTOP: none can start or restart another meanwhile), the tree read again
/// until it holds still, then all are killed (SIGKILL, and the group) and checked gone.
pub fn kill_tree(root: u32) -> Stopped {
    let Some((_, start, _)) = stat(root) else {
        return Stopped { killed: 0, left: 0 };
    };
    let root = Proc { pid: root, start };
    let mut procs = vec![root];
    signal(root, Signal::SIGSTOP);
    // Freeze what is below, then look again for what was started meanwhile.
    for _ in 0..20 {
        let pids: Vec<u32> = procs.iter().map(|p| p.pid).collect();
        let below = descendants(&pids);
        let new: Vec<Proc> = below.into_iter().filter(|p| !procs.contains(p)).collect();
        if new.is_empty() {
            break;
        }
        for &p in &new {
            signal(p, Signal::SIGSTOP);
        }
        procs.extend(new);
    }
    let mut killed = 0;
    for &p in &procs {
        killed += usize::from(signal(p, Signal::SIGKILL));
    }
    if let Ok(pgid) = i32::try_from(root.pid) {
        let _ = nix::sys::signal::killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<Proc> = procs.iter().copied().filter(|&p| alive(p)).collect();
        if left.is_empty() || Instant::now() > deadline {
            return Stopped {
                killed,
                left: left.len(),
            };
        }
        for &p in &left {
            signal(p, Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Kills the dataflow when dropped while armed: an early return or a panic between starting
/// `dora run` and seeing it exit leaves no process behind.
#[derive(Debug)]
pub struct TreeGuard {
    pub root: u32,
    pub armed: bool,
}

impl Drop for TreeGuard {
    fn drop(&mut self) {
        if self.armed {
            kill_tree(self.root);
        }
    }
}
