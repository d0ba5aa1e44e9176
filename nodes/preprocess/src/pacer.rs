//! Demand-driven pacing: which frame goes to which infer process, and when. An infer process
//! says when it is free (`ready`); only then is a frame decoded, letterboxed and sent to it.
//!
//! - `Live` (the device, realtime replays): the newest frame waits for a free process; when a
//!   newer one comes first, the waiting one is not inferred (`busy` behind the frame the
//!   detector is working on, or `missing` while no detector process is up). No queue in which a
//!   frame grows old, no work on frames that will be dropped.
//! - `Strict` (lock-step replays): every frame is inferred, in arrival order, each by
//!   whichever active process asks first; the replay's window bounds the queue.
//!
//! **Hot standby**: of the infer processes, `standby` are held in reserve — loaded, warm,
//! asking for work, sent nothing. When an active process dies (dora says so the moment it
//! exits), the next frame goes to a standby at once; live, so does the next frame when the
//! active one has held its frame longer than `takeover` in frame time (a hang: the standby
//! carries on while the watchdog ends the hung one). A process that comes back (restarted)
//! stands by until it is needed.
//!
//! Frames that are not their turn (`interval`) are never sent. A pure core: frames, readies and
//! failures in, actions out; no clock (time is the frames' timestamps), no dora.

use std::collections::VecDeque;

use vigil_msg::{FrameHeader, FrameStatus, Ready, Role};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Live,
    Strict,
}

/// Readies from a process that has not received the frame sent to it, after which that frame
/// is taken as lost on the way (a process repeats its `ready` every 100–200 ms while it
/// waits).
const STALE_READIES: u8 = 2;

/// One infer process as this node knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Worker {
    /// `None`: not heard from yet (or gone).
    pid: Option<u32>,
    /// The process that was here before and died: a late `ready` from it is not news.
    gone: Option<u32>,
    role: Role,
    /// Frames sent to it and not yet answered, oldest first, with the frame time (the newest
    /// camera frame's) when each was sent.
    in_flight: VecDeque<(FrameHeader, u64)>,
    /// The last frame it said it answered, and how many readies in a row said so.
    received: Option<u64>,
    stale: u8,
}

impl Default for Worker {
    fn default() -> Self {
        Self {
            pid: None,
            gone: None,
            role: Role::Down,
            in_flight: VecDeque::new(),
            received: None,
            stale: 0,
        }
    }
}

/// Frames an infer process may hold: live one (it asks for the newest when free); lock-step
/// two, so that the next frame is prepared while it infers (every frame is inferred anyway).
fn depth(mode: Mode) -> usize {
    match mode {
        Mode::Live => 1,
        Mode::Strict => 2,
    }
}

/// What to do with a frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Action<F> {
    /// Prepare this frame and send it to infer process `worker`.
    Dispatch {
        worker: usize,
        header: FrameHeader,
        frame: F,
    },
    /// The frame is not sent to the detector, for `status`'s reason; a `Busy` frame waited
    /// behind frame `behind`.
    Skip {
        header: FrameHeader,
        status: FrameStatus,
        behind: Option<u64>,
    },
}

pub struct Pacer<F> {
    mode: Mode,
    interval: u64,
    workers: Vec<Worker>,
    /// Processes that get frames; the rest stand by.
    active: usize,
    /// Live: a frame held longer than this (frame time) hands the work to a standby.
    takeover_ns: Option<u64>,
    waiting: VecDeque<(FrameHeader, F)>,
    /// The newest frame index seen (live: an older one is a frame sent again, never news).
    newest: Option<u64>,
    newest_ts: u64,
    lost: u64,
    takeovers: u64,
    roles_changed: bool,
}

impl<F> Pacer<F> {
    /// `workers` infer processes (at least one), all active, inferring every `interval`-th
    /// frame by sequence number.
    #[must_use]
    pub fn new(mode: Mode, interval: u64, workers: usize) -> Self {
        let workers = workers.max(1);
        Self {
            mode,
            interval: interval.max(1),
            workers: vec![Worker::default(); workers],
            active: workers,
            takeover_ns: None,
            waiting: VecDeque::new(),
            newest: None,
            newest_ts: 0,
            lost: 0,
            takeovers: 0,
            roles_changed: true,
        }
    }

    /// Holds `standby` of the processes in reserve (at least one stays active); live, a
    /// frame held longer than `takeover_ns` by an active process goes to a standby.
    #[must_use]
    pub fn with_standby(mut self, standby: usize, takeover_ns: Option<u64>) -> Self {
        self.active = self.workers.len().saturating_sub(standby).max(1);
        self.takeover_ns = takeover_ns.filter(|_| self.mode == Mode::Live);
        self
    }

    /// A camera frame came.
    pub fn frame(&mut self, header: FrameHeader, frame: F, out: &mut Vec<Action<F>>) {
        if self.mode == Mode::Live {
            // A frame sent again (a replay resends what was not acknowledged) already had
            // its say: it is not inferred again, and it does not displace the one waiting
            // (the track node answers it from what went out).
            if self.newest.is_some_and(|n| header.index <= n) {
                return;
            }
            self.newest = Some(header.index);
        }
        self.newest_ts = self.newest_ts.max(header.timestamp_ns);
        if header.seq.is_multiple_of(self.interval) {
            if self.mode == Mode::Live {
                // Only the newest frame waits: the one it replaces is not inferred.
                while let Some((h, _)) = self.waiting.pop_front() {
                    out.push(self.skip(h));
                }
            }
            self.waiting.push_back((header, frame));
        } else {
            out.push(Action::Skip {
                header,
                status: FrameStatus::Interval,
                behind: None,
            });
        }
        self.take_over();
        self.dispatch(out);
    }

    /// Infer process `worker` says it is free (or, lock-step, has room for one more).
    pub fn ready(&mut self, worker: usize, r: Ready, out: &mut Vec<Action<F>>) {
        let Some(w) = self.workers.get_mut(worker) else {
            return;
        };
        if w.gone == Some(r.pid) {
            return;
        }
        if w.pid != Some(r.pid) {
            // A new process in the place of one that died (before dora said so): what it held
            // died with it. It stands by unless a process is missing from the active ones.
            let held = std::mem::take(&mut w.in_flight);
            *w = Worker {
                pid: Some(r.pid),
                gone: w.pid,
                role: Role::Standby,
                ..Worker::default()
            };
            self.roles_changed = true;
            self.lost_with_process(held, out);
        } else if r.received != w.received {
            if let Some(got) = r.received {
                w.in_flight.retain(|(h, _)| h.index != got);
            }
            (w.received, w.stale) = (r.received, 0);
        } else if !w.in_flight.is_empty() {
            // Asked again without answering anything: a ready sent before a frame reached it,
            // or, asked once more, frames lost on the way (a process repeats its `ready`
            // only while it waits with nothing to do).
            w.stale += 1;
            if w.stale >= STALE_READIES {
                self.lost += w.in_flight.len() as u64;
                (w.in_flight, w.stale) = (VecDeque::new(), 0);
            }
        }
        self.promote();
        self.dispatch(out);
    }

    /// The frame last sent to `worker` could not be prepared (a bad JPEG): it never went.
    pub fn failed(&mut self, worker: usize, out: &mut Vec<Action<F>>) {
        if let Some(w) = self.workers.get_mut(worker) {
            w.in_flight.pop_back();
        }
        self.dispatch(out);
    }

    /// Infer process `worker` is gone (dora says it exited, or its `ready` input closed):
    /// what it held is lost — live, those frames go out `missing` now rather than after the
    /// track node's wait (lock-step, the replay sends them again) — and a standby takes its
    /// place at once.
    pub fn down(&mut self, worker: usize, out: &mut Vec<Action<F>>) {
        if let Some(w) = self.workers.get_mut(worker) {
            let held = std::mem::take(&mut w.in_flight);
            *w = Worker {
                gone: w.pid.or(w.gone),
                ..Worker::default()
            };
            self.roles_changed = true;
            self.lost_with_process(held, out);
        }
        self.promote();
        self.dispatch(out);
    }

    /// Frames a dead process held: live, they go out `missing` now rather than after the
    /// track node's wait; lock-step, the replay sends them again.
    fn lost_with_process(&mut self, held: VecDeque<(FrameHeader, u64)>, out: &mut Vec<Action<F>>) {
        if self.mode == Mode::Live {
            out.extend(held.into_iter().map(|(header, _)| Action::Skip {
                header,
                status: FrameStatus::Missing,
                behind: None,
            }));
        }
    }

    /// The frames stopped: whatever still waits is not inferred.
    pub fn finish(&mut self, out: &mut Vec<Action<F>>) {
        while let Some((h, _)) = self.waiting.pop_front() {
            out.push(self.skip(h));
        }
    }

    /// Frames sent to a process that never received them.
    #[must_use]
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Times a standby took over from an active process that held its frame too long.
    #[must_use]
    pub fn takeovers(&self) -> u64 {
        self.takeovers
    }

    /// Each process's role, when it changed since the last call.
    pub fn roles_changed(&mut self) -> Option<Vec<Role>> {
        std::mem::take(&mut self.roles_changed).then(|| self.roles())
    }

    #[must_use]
    pub fn roles(&self) -> Vec<Role> {
        self.workers.iter().map(|w| w.role).collect()
    }

    fn count(&self, role: Role) -> usize {
        self.workers.iter().filter(|w| w.role == role).count()
    }

    /// Standbys fill the places of active processes that are gone (the first of them,
    /// idle ones first).
    fn promote(&mut self) {
        while self.count(Role::Active) < self.active {
            let Some(k) = (0..self.workers.len())
                .filter(|&k| self.workers[k].role == Role::Standby)
                .min_by_key(|&k| self.workers[k].in_flight.len())
            else {
                return;
            };
            self.workers[k].role = Role::Active;
            self.roles_changed = true;
        }
    }

    /// Live: an active process that has held its frame past `takeover` (frame time since it
    /// was sent, not since it was taken) while a frame waits stands down for an idle standby,
    /// which takes the waiting frame; if the slow one answers after all, it is a standby like
    /// any other.
    fn take_over(&mut self) {
        let Some(limit) = self.takeover_ns else {
            return;
        };
        // Only for a frame to hand over: a slow answer with nothing waiting costs nothing.
        if self.waiting.is_empty() {
            return;
        }
        for k in 0..self.workers.len() {
            let w = &self.workers[k];
            let overdue = w.role == Role::Active
                && w.in_flight
                    .front()
                    .is_some_and(|&(_, sent)| self.newest_ts.saturating_sub(sent) > limit);
            if !overdue {
                continue;
            }
            let Some(s) = (0..self.workers.len()).find(|&s| {
                self.workers[s].role == Role::Standby && self.workers[s].in_flight.is_empty()
            }) else {
                return;
            };
            self.workers[k].role = Role::Standby;
            self.workers[s].role = Role::Active;
            self.takeovers += 1;
            self.roles_changed = true;
        }
    }

    fn dispatch(&mut self, out: &mut Vec<Action<F>>) {
        let depth = depth(self.mode);
        while !self.waiting.is_empty() {
            // The active process with the most room (the first of them): an idle one before
            // one that would queue the frame behind another.
            let Some(worker) = (0..self.workers.len())
                .filter(|&k| {
                    let w = &self.workers[k];
                    w.role == Role::Active && w.in_flight.len() < depth
                })
                .min_by_key(|&k| self.workers[k].in_flight.len())
            else {
                return;
            };
            let Some((header, frame)) = self.waiting.pop_front() else {
                return;
            };
            self.workers[worker]
                .in_flight
                .push_back((header, self.newest_ts));
            out.push(Action::Dispatch {
                worker,
                header,
                frame,
            });
        }
    }

    /// Why `header`'s frame is not inferred: the detector is busy (behind the oldest frame an
    /// active process is working on), or no process is up.
    fn skip(&self, header: FrameHeader) -> Action<F> {
        let behind = self
            .workers
            .iter()
            .filter(|w| w.role == Role::Active)
            .filter_map(|w| w.in_flight.front().map(|(h, _)| h.index))
            .min();
        Action::Skip {
            header,
            status: if behind.is_some() {
                FrameStatus::Busy
            } else {
                FrameStatus::Missing
            },
            behind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(index: u64) -> FrameHeader {
        FrameHeader {
            seq: index,
            index,
            timestamp_ns: index * 33_333_333,
            width: 1280,
            height: 720,
        }
    }

    fn ready(pid: u32, received: Option<u64>) -> Ready {
        Ready { pid, received }
    }

    /// The actions as (index, what): `d0` dispatched to worker 0, `busy<3`, `missing`, ….
    fn names(actions: &[Action<()>]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                Action::Dispatch { worker, header, .. } => format!("{} d{worker}", header.index),
                Action::Skip {
                    header,
                    status,
                    behind,
                } => match behind {
                    Some(b) => format!("{} {}<{b}", header.index, status.as_str()),
                    None => format!("{} {}", header.index, status.as_str()),
                },
            })
            .collect()
    }

    #[test]
    fn live_infers_the_newest_frame_when_the_detector_asks_and_says_why_for_the_rest() {
        let mut p = Pacer::new(Mode::Live, 1, 1);
        let mut out = Vec::new();
        // Before the detector is up, a frame waits; the next replaces it: missing.
        p.frame(h(0), (), &mut out);
        p.frame(h(1), (), &mut out);
        assert_eq!(names(&out), ["0 missing"]);
        out.clear();
        // The detector comes up: the newest frame goes at once.
        p.ready(0, ready(10, None), &mut out);
        assert_eq!(names(&out), ["1 d0"]);
        out.clear();
        // While it works, frames 2 and 3 come: 2 is replaced by 3 (busy behind 1).
        p.frame(h(2), (), &mut out);
        p.frame(h(3), (), &mut out);
        assert_eq!(names(&out), ["2 busy<1"]);
        out.clear();
        // Done with 1: frame 3, not a stale one, is next.
        p.ready(0, ready(10, Some(1)), &mut out);
        assert_eq!(names(&out), ["3 d0"]);
        out.clear();
        p.finish(&mut out);
        assert!(out.is_empty(), "nothing waits");
    }

    #[test]
    fn interval_frames_are_never_sent_and_bad_frames_free_the_worker() {
        let mut p = Pacer::new(Mode::Live, 2, 1);
        let mut out = Vec::new();
        p.ready(0, ready(10, None), &mut out);
        p.frame(h(0), (), &mut out);
        p.frame(h(1), (), &mut out);
        assert_eq!(names(&out), ["0 d0", "1 interval"]);
        out.clear();
        p.failed(0, &mut out);
        p.frame(h(2), (), &mut out);
        assert_eq!(
            names(&out),
            ["2 d0"],
            "free again after a frame it never got"
        );
    }

    #[test]
    fn a_restarted_process_is_free_and_a_lost_frame_is_given_up_after_repeated_readies() {
        let mut p = Pacer::new(Mode::Live, 1, 1);
        let mut out = Vec::new();
        p.ready(0, ready(10, None), &mut out);
        p.frame(h(0), (), &mut out);
        p.frame(h(1), (), &mut out);
        assert_eq!(names(&out), ["0 d0"]);
        out.clear();
        // Process 10 dies on frame 0; process 11 starts (before dora said so): frame 0 is
        // lost with it, and a late word from 10 is no news.
        p.ready(0, ready(11, None), &mut out);
        assert_eq!(names(&out), ["0 missing", "1 d0"]);
        out.clear();
        p.ready(0, ready(10, Some(0)), &mut out);
        assert!(out.is_empty());
        // A ready sent before frame 1 reached it: still busy. Asked again: lost on the way.
        p.ready(0, ready(11, None), &mut out);
        p.frame(h(2), (), &mut out);
        assert!(out.is_empty());
        p.ready(0, ready(11, None), &mut out);
        assert_eq!(names(&out), ["2 d0"]);
        assert_eq!(p.lost(), 1);
    }

    #[test]
    fn strict_infers_every_frame_in_order_on_whichever_worker_asks() {
        let mut p = Pacer::new(Mode::Strict, 1, 2);
        let mut out = Vec::new();
        for i in 0..4 {
            p.frame(h(i), (), &mut out);
        }
        assert!(out.is_empty(), "no worker up yet: all wait");
        p.ready(1, ready(21, None), &mut out);
        p.ready(0, ready(20, None), &mut out);
        // Each holds two (one in work, the next prepared); the answers make room again.
        assert_eq!(names(&out), ["0 d1", "1 d1", "2 d0", "3 d0"]);
        out.clear();
        p.frame(h(4), (), &mut out);
        assert!(out.is_empty(), "both full");
        p.ready(0, ready(20, Some(2)), &mut out);
        assert_eq!(names(&out), ["4 d0"]);
    }

    #[test]
    fn live_a_frame_sent_again_is_not_inferred_and_a_closed_worker_is_down() {
        let mut p = Pacer::new(Mode::Live, 1, 1);
        let mut out = Vec::new();
        p.ready(0, ready(10, None), &mut out);
        p.frame(h(0), (), &mut out);
        p.frame(h(1), (), &mut out);
        p.frame(h(0), (), &mut out);
        assert_eq!(
            names(&out),
            ["0 d0"],
            "frame 0 again: nothing; 1 still waits"
        );
        out.clear();
        p.down(0, &mut out);
        p.frame(h(2), (), &mut out);
        assert_eq!(names(&out), ["0 missing", "1 missing"]);
    }

    #[test]
    fn busy_names_the_oldest_frame_in_work() {
        let mut p = Pacer::new(Mode::Live, 1, 2);
        let mut out = Vec::new();
        p.ready(0, ready(20, None), &mut out);
        p.ready(1, ready(21, None), &mut out);
        for i in 0..4 {
            p.frame(h(i), (), &mut out);
        }
        assert_eq!(names(&out), ["0 d0", "1 d1", "2 busy<0"]);
    }

    #[test]
    fn a_standby_gets_nothing_until_the_active_process_dies_then_the_next_frame_at_once() {
        let mut p = Pacer::new(Mode::Live, 1, 2).with_standby(1, None);
        let mut out = Vec::new();
        assert_eq!(p.roles_changed(), Some(vec![Role::Down, Role::Down]));
        p.ready(1, ready(21, None), &mut out);
        p.ready(0, ready(20, None), &mut out);
        // The first process up works; the second stands by, asking, sent nothing.
        assert_eq!(p.roles_changed(), Some(vec![Role::Standby, Role::Active]));
        for i in 0..3 {
            p.frame(h(i), (), &mut out);
            p.ready(0, ready(20, None), &mut out);
        }
        assert_eq!(names(&out), ["0 d1", "1 busy<0"]);
        out.clear();
        p.ready(1, ready(21, Some(0)), &mut out);
        assert_eq!(names(&out), ["2 d1"]);
        out.clear();
        // Process 21 dies on frame 2 (dora says so): frame 3 goes to the standby at once.
        p.frame(h(3), (), &mut out);
        assert!(out.is_empty(), "3 waits for the active process");
        p.down(1, &mut out);
        assert_eq!(names(&out), ["2 missing", "3 d0"], "its frame is lost, now");
        assert_eq!(p.roles_changed(), Some(vec![Role::Active, Role::Down]));
        out.clear();
        // Restarted, it stands by: the work stays where it is.
        p.ready(1, ready(22, None), &mut out);
        assert_eq!(p.roles_changed(), Some(vec![Role::Active, Role::Standby]));
        p.ready(0, ready(20, Some(3)), &mut out);
        p.frame(h(4), (), &mut out);
        assert_eq!(names(&out), ["4 d0"]);
        assert_eq!(p.roles_changed(), None);
    }

    #[test]
    fn live_a_frame_held_past_the_takeover_time_hands_the_work_to_the_standby() {
        // 100 ms at 30 fps: a little over three frames.
        let mut p = Pacer::new(Mode::Live, 1, 2).with_standby(1, Some(100_000_000));
        let mut out = Vec::new();
        p.ready(0, ready(20, None), &mut out);
        p.ready(1, ready(21, None), &mut out);
        p.frame(h(0), (), &mut out);
        p.frame(h(1), (), &mut out);
        p.frame(h(2), (), &mut out);
        p.frame(h(3), (), &mut out);
        assert_eq!(names(&out), ["0 d0", "1 busy<0", "2 busy<0"]);
        out.clear();
        // Frame 4 comes 133 ms after frame 0, which process 20 still holds: the standby
        // takes frame 4, frame 3 went out busy behind 0 (which the track node gives up on).
        p.frame(h(4), (), &mut out);
        assert_eq!(names(&out), ["3 busy<0", "4 d1"]);
        assert_eq!(p.roles_changed(), Some(vec![Role::Standby, Role::Active]));
        assert_eq!(p.takeovers(), 1);
        out.clear();
        // Busy frames now wait behind the frame the active process works on.
        p.frame(h(5), (), &mut out);
        p.frame(h(6), (), &mut out);
        assert_eq!(names(&out), ["5 busy<4"]);
        out.clear();
        // The slow one answers after all: it stands by, and gets nothing.
        p.ready(0, ready(20, Some(0)), &mut out);
        assert!(out.is_empty());
        p.ready(1, ready(21, Some(4)), &mut out);
        assert_eq!(names(&out), ["6 d1"]);
        // Nothing waiting (frame 1 is not its turn), nothing to hand over: the active process
        // keeps its frame however long it takes.
        let mut every_2nd = Pacer::new(Mode::Live, 2, 2).with_standby(1, Some(30_000_000));
        every_2nd.ready(0, ready(20, None), &mut out);
        every_2nd.ready(1, ready(21, None), &mut out);
        out.clear();
        every_2nd.frame(h(0), (), &mut out);
        every_2nd.frame(h(1), (), &mut out);
        assert_eq!(names(&out), ["0 d0", "1 interval"]);
        assert_eq!(every_2nd.takeovers(), 0);
        out.clear();
        every_2nd.frame(h(2), (), &mut out);
        assert_eq!(names(&out), ["2 d1"], "frame 2 waits: the standby takes it");
        out.clear();
        // Without a standby, nothing to hand over to: the frame waits.
        let mut alone = Pacer::new(Mode::Live, 1, 1).with_standby(0, Some(1));
        alone.ready(0, ready(20, None), &mut out);
        out.clear();
        for i in 0..3 {
            alone.frame(h(i), (), &mut out);
        }
        assert_eq!(names(&out), ["0 d0", "1 busy<0"]);
    }

    #[test]
    fn strict_deals_to_the_active_processes_only() {
        let mut p = Pacer::new(Mode::Strict, 1, 3).with_standby(1, Some(1));
        let mut out = Vec::new();
        for (k, pid) in [(0, 20), (1, 21), (2, 22)] {
            p.ready(k, ready(pid, None), &mut out);
        }
        for i in 0..6 {
            p.frame(h(i), (), &mut out);
        }
        assert_eq!(names(&out), ["0 d0", "1 d1", "2 d0", "3 d1"]);
        assert_eq!(p.takeovers(), 0, "lock-step never hands over on time");
        out.clear();
        p.down(0, &mut out);
        assert_eq!(
            names(&out),
            ["4 d2", "5 d2"],
            "lock-step: lost frames come again"
        );
    }
}
