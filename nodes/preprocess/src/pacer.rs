//! Demand-driven pacing: which frame goes to which infer process, and when. An infer process
//! says when it is free (`ready`); only then is a frame decoded, letterboxed and sent to it.
//!
//! - `Live` (the device, realtime replays): the newest frame waits for a free process; when a
//!   newer one comes first, the waiting one is not inferred (`busy` behind the frame the
//!   detector is working on, or `missing` while no detector process is up). No queue in which a
//!   frame grows old, no work on frames that will be dropped.
//! - `Strict` (lock-step replays): every frame is inferred, in arrival order, each by
//!   whichever process asks first; the replay's window bounds the queue.
//!
//! Frames that are not their turn (`interval`) are never sent. A pure core: frames, readies and
//! failures in, actions out; no clock, no dora.

use std::collections::VecDeque;

use vigil_msg::{FrameHeader, FrameStatus, Ready};

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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Worker {
    /// `None`: not heard from yet (or gone).
    pid: Option<u32>,
    /// Frames sent to it and not yet answered, oldest first.
    in_flight: VecDeque<u64>,
    /// The last frame it said it answered, and how many readies in a row said so.
    received: Option<u64>,
    stale: u8,
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
    waiting: VecDeque<(FrameHeader, F)>,
    /// The newest frame index seen (live: an older one is a frame sent again, never news).
    newest: Option<u64>,
    lost: u64,
}

impl<F> Pacer<F> {
    /// `workers` infer processes (at least one), inferring every `interval`-th frame by
    /// sequence number.
    #[must_use]
    pub fn new(mode: Mode, interval: u64, workers: usize) -> Self {
        Self {
            mode,
            interval: interval.max(1),
            workers: vec![Worker::default(); workers.max(1)],
            waiting: VecDeque::new(),
            newest: None,
            lost: 0,
        }
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
        if !header.seq.is_multiple_of(self.interval) {
            out.push(Action::Skip {
                header,
                status: FrameStatus::Interval,
                behind: None,
            });
            return;
        }
        if self.mode == Mode::Live {
            // Only the newest frame waits: the one it replaces is not inferred.
            while let Some((h, _)) = self.waiting.pop_front() {
                out.push(self.skip(h));
            }
        }
        self.waiting.push_back((header, frame));
        self.dispatch(out);
    }

    /// Infer process `worker` says it is free (or, lock-step, has room for one more).
    pub fn ready(&mut self, worker: usize, r: Ready, out: &mut Vec<Action<F>>) {
        let Some(w) = self.workers.get_mut(worker) else {
            return;
        };
        if w.pid != Some(r.pid) {
            // A new process in the place of one that died: what it held died with it.
            *w = Worker {
                pid: Some(r.pid),
                ..Worker::default()
            };
        } else if r.received != w.received {
            if let Some(got) = r.received {
                w.in_flight.retain(|&i| i != got);
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
        self.dispatch(out);
    }

    /// The frame last sent to `worker` could not be prepared (a bad JPEG): it never went.
    pub fn failed(&mut self, worker: usize, out: &mut Vec<Action<F>>) {
        if let Some(w) = self.workers.get_mut(worker) {
            w.in_flight.pop_back();
        }
        self.dispatch(out);
    }

    /// Infer process `worker` is gone for good (its `ready` input closed).
    pub fn down(&mut self, worker: usize) {
        if let Some(w) = self.workers.get_mut(worker) {
            *w = Worker::default();
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

    fn dispatch(&mut self, out: &mut Vec<Action<F>>) {
        let depth = depth(self.mode);
        while !self.waiting.is_empty() {
            // The process with the most room (the first of them): an idle one before one
            // that would queue the frame behind another.
            let Some(worker) = (0..self.workers.len())
                .filter(|&k| {
                    let w = &self.workers[k];
                    w.pid.is_some() && w.in_flight.len() < depth
                })
                .min_by_key(|&k| self.workers[k].in_flight.len())
            else {
                return;
            };
            let Some((header, frame)) = self.waiting.pop_front() else {
                return;
            };
            self.workers[worker].in_flight.push_back(header.index);
            out.push(Action::Dispatch {
                worker,
                header,
                frame,
            });
        }
    }

    /// Why `header`'s frame is not inferred: the detector is busy (behind the oldest frame a
    /// process is working on), or no process is up.
    fn skip(&self, header: FrameHeader) -> Action<F> {
        let behind = self
            .workers
            .iter()
            .filter_map(|w| w.in_flight.front().copied())
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
        // Process 10 dies on frame 0; process 11 starts.
        p.ready(0, ready(11, None), &mut out);
        assert_eq!(names(&out), ["1 d0"]);
        out.clear();
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
        p.down(0);
        p.frame(h(2), (), &mut out);
        assert_eq!(names(&out), ["1 missing"]);
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
}
