//! SIGINT and SIGTERM (a person's Ctrl-C, a CI system cancelling a job) stop `vigil replay`
//! and `vigil test` cleanly: the dataflow they started is stopped, every process of it, and
//! the command exits non-zero saying so.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The signal received, 0 for none.
static RECEIVED: OnceLock<std::sync::Arc<AtomicUsize>> = OnceLock::new();

/// Catches SIGINT and SIGTERM from now on (they no longer end the process at once).
pub fn install() -> eyre::Result<()> {
    let flag = RECEIVED.get_or_init(Default::default);
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
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

/// Every process below `root` (children, their children, …), read from /proc.
pub fn descendants(root: u32) -> Vec<u32> {
    let mut parent_of = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.filter_map(Result::ok) {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // `pid (comm) state ppid …`: comm may hold spaces and parentheses.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(ppid) = ppid {
                parent_of.push((pid, ppid));
            }
        }
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    found.remove(0);
    found
}

fn alive(pid: u32) -> bool {
    // A zombie has exited; only its parent's wait is missing.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

/// Stops `root` and every process below it: the tree is read first (a killed parent's
/// children would be re-parented and lost from it), `root` is killed first so that it
/// restarts nothing, then the rest; read again until none is left (at most 5 s). Returns how
/// many processes were stopped.
pub fn kill_tree(root: u32) -> usize {
    let mut stopped = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut pids = vec![root];
    pids.extend(descendants(root));
    loop {
        for &pid in &pids {
            if let Ok(p) = i32::try_from(pid)
                && kill(Pid::from_raw(p), Signal::SIGKILL).is_ok()
            {
                stopped.insert(pid);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
        let mut left: Vec<u32> = pids.iter().copied().filter(|&p| alive(p)).collect();
        for p in left.clone() {
            left.extend(descendants(p));
        }
        if left.is_empty() || Instant::now() > deadline {
            return stopped.len();
        }
        pids = left;
    }
}
