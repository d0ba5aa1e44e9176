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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Worker {
    /// Not heard from yet.
    Down,
    Idle {
        pid: u32,
    },
    /// Working on frame `index` (as far as this node knows: it may have died doing it).
    Busy {
        pid: u32,
        index: u64,
        stale: u8,
    },
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
            workers: vec![Worker::Down; workers.max(1)],
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

    /// Infer process `worker` says it is free.
    pub fn ready(&mut self, worker: usize, r: Ready, out: &mut Vec<Action<F>>) {
        let Some(w) = self.workers.get_mut(worker) else {
            return;
        };
        *w = match *w {
            // A ready sent before the frame reached it; once it has asked again and again
            // without receiving it, the frame was lost on the way.
            Worker::Busy { pid, index, stale }
                if pid == r.pid && r.received.is_none_or(|got| got < index) =>
            {
                if stale + 1 >= STALE_READIES {
                    self.lost += 1;
                    Worker::Idle { pid }
                } else {
                    Worker::Busy {
                        pid,
                        index,
                        stale: stale + 1,
                    }
                }
            }
            // Free, or a new process in the place of one that died.
            _ => Worker::Idle { pid: r.pid },
        };
        self.dispatch(out);
    }

    /// The frame sent to `worker` could not be prepared (a bad JPEG): the process is free.
    pub fn failed(&mut self, worker: usize, out: &mut Vec<Action<F>>) {
        if let Some(w) = self.workers.get_mut(worker)
            && let Worker::Busy { pid, .. } = *w
        {
            *w = Worker::Idle { pid };
        }
        self.dispatch(out);
    }

    /// Infer process `worker` is gone for good (its `ready` input closed).
    pub fn down(&mut self, worker: usize) {
        if let Some(w) = self.workers.get_mut(worker) {
            *w = Worker::Down;
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
        while !self.waiting.is_empty() {
            let Some((worker, pid)) = self.workers.iter().enumerate().find_map(|(k, w)| match w {
                Worker::Idle { pid } => Some((k, *pid)),
                _ => None,
            }) else {
                return;
            };
            let Some((header, frame)) = self.waiting.pop_front() else {
                return;
            };
            self.workers[worker] = Worker::Busy {
                pid,
                index: header.index,
                stale: 0,
            };
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
            .filter_map(|w| match w {
                Worker::Busy { index, .. } => Some(*index),
                _ => None,
            })
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
        p.ready(0, ready(20, Some(1)), &mut out);
        p.ready(1, ready(21, Some(0)), &mut out);
        assert_eq!(names(&out), ["0 d1", "1 d0", "2 d0", "3 d1"]);
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
