//! Live frame order for the tracker: every camera frame opens a slot, its detections (or the
//! preprocessor's word that it was not sent to the detector) fill it, and slots go out in
//! frame order — filled, or empty once it is clear the detections are not coming (the
//! detector is down, restarting, or lost the frame). Nothing waits on the detector for longer
//! than a bound measured in frame time, so a dead detector never blocks the output. A frame
//! index never seen at all (every message of it lost) goes out empty in its place, under the
//! same bound: the output has one entry per index, without gaps.

use std::collections::BTreeMap;

#[derive(Debug, Clone)]
struct Slot<F, T> {
    timestamp_ns: u64,
    frame: Option<F>,
    item: Option<T>,
    /// The item is the detector's answer (not the preprocessor's word that it was skipped).
    answered: bool,
}

/// One released frame: its camera facts (if the frame was seen) and its detections (if they
/// came). At least one of the two is present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Released<F, T> {
    pub index: u64,
    pub frame: Option<F>,
    pub item: Option<T>,
}

/// See the module docs. `coast_after_ns`: an empty slot goes out once a frame this much newer
/// has been seen; `hold`: or once the detector has answered this many later frames.
#[derive(Debug, Clone)]
pub struct LiveOrder<F, T> {
    slots: BTreeMap<u64, Slot<F, T>>,
    next: u64,
    newest_ns: u64,
    coast_after_ns: u64,
    hold: usize,
    late: u64,
    missing: u64,
}

impl<F, T> LiveOrder<F, T> {
    #[must_use]
    pub fn new(coast_after_ns: u64, hold: usize) -> Self {
        Self {
            slots: BTreeMap::new(),
            next: 0,
            newest_ns: 0,
            coast_after_ns,
            hold: hold.max(1),
            late: 0,
            missing: 0,
        }
    }

    fn slot(&mut self, index: u64, timestamp_ns: u64) -> Option<&mut Slot<F, T>> {
        if index < self.next {
            return None;
        }
        self.newest_ns = self.newest_ns.max(timestamp_ns);
        Some(self.slots.entry(index).or_insert(Slot {
            timestamp_ns,
            frame: None,
            item: None,
            answered: false,
        }))
    }

    /// A camera frame was seen.
    /// A camera frame was seen. Returns false for a frame that already went out (sent again).
    pub fn frame(&mut self, index: u64, timestamp_ns: u64, frame: F) -> bool {
        match self.slot(index, timestamp_ns) {
            Some(s) => {
                s.frame.get_or_insert(frame);
                true
            }
            None => false,
        }
    }

    /// A frame's detections came (`answered`: from the detector, else the word that it was
    /// not sent there). Returns false when they came too late (the frame already went out
    /// without them) or twice; they are dropped.
    pub fn fill(&mut self, index: u64, timestamp_ns: u64, item: T, answered: bool) -> bool {
        match self.slot(index, timestamp_ns) {
            Some(s) if s.item.is_none() => {
                (s.item, s.answered) = (Some(item), answered);
                true
            }
            Some(_) => false,
            None => {
                self.late += 1;
                false
            }
        }
    }

    /// The next frame in order, if it may go out now.
    pub fn pop(&mut self) -> Option<Released<F, T>> {
        let (&index, first) = self.slots.iter().next()?;
        // A gap (index never seen) waits as an empty slot of the next frame's time would.
        let gap = index > self.next;
        if gap || first.item.is_none() {
            let waited = self.newest_ns.saturating_sub(first.timestamp_ns);
            let answered_behind = self.slots.values().filter(|s| s.answered).count();
            if waited <= self.coast_after_ns && answered_behind < self.hold {
                return None;
            }
            self.missing += 1;
            if gap {
                let index = self.next;
                self.next += 1;
                return Some(Released {
                    index,
                    frame: None,
                    item: None,
                });
            }
        }
        let slot = self.slots.remove(&index)?;
        self.next = index + 1;
        Some(Released {
            index,
            frame: slot.frame,
            item: slot.item,
        })
    }

    /// Everything still waiting, in order and without gaps (the stream has ended).
    pub fn drain(&mut self) -> Vec<Released<F, T>> {
        let mut slots = std::mem::take(&mut self.slots);
        let end = slots.keys().next_back().map_or(self.next, |k| k + 1);
        let out: Vec<Released<F, T>> = (self.next..end)
            .map(|index| {
                let (frame, item) = slots
                    .remove(&index)
                    .map_or((None, None), |s| (s.frame, s.item));
                Released { index, frame, item }
            })
            .collect();
        self.missing += out.iter().filter(|r| r.item.is_none()).count() as u64;
        self.next = end;
        out
    }

    /// Detections that came after their frame had gone out.
    #[must_use]
    pub fn late(&self) -> u64 {
        self.late
    }

    /// Frames that went out without detections.
    #[must_use]
    pub fn missing(&self) -> u64 {
        self.missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn filled_frames_go_out_in_order_and_a_dead_detector_does_not_block() {
        let mut o: LiveOrder<char, u32> = LiveOrder::new(200 * MS, 3);
        o.frame(0, 0, 'a');
        o.frame(1, 33 * MS, 'b');
        assert_eq!(o.pop(), None, "waits for detections within the bound");
        o.fill(1, 33 * MS, 11, true);
        assert_eq!(o.pop(), None, "frame 0 still has time");
        o.fill(0, 0, 10, true);
        assert_eq!(o.pop().map(|r| (r.index, r.item)), Some((0, Some(10))));
        assert_eq!(o.pop().map(|r| (r.index, r.item)), Some((1, Some(11))));
        // The detector dies: frames keep coming, none is filled.
        for i in 2..12 {
            o.frame(i, i * 33 * MS, 'x');
        }
        let out: Vec<u64> = std::iter::from_fn(|| o.pop()).map(|r| r.index).collect();
        assert_eq!(
            out,
            (2..5).collect::<Vec<_>>(),
            "older than 200 ms go out empty"
        );
        assert_eq!(o.missing(), 3);
        assert!(!o.fill(3, 99 * MS, 13, true), "too late");
        assert_eq!(o.late(), 1);
    }

    #[test]
    fn skipped_frames_behind_do_not_give_up_a_frame_the_detector_is_working_on() {
        let mut o: LiveOrder<(), u32> = LiveOrder::new(200 * MS, 3);
        o.frame(0, 0, ());
        // Frames 1..5 come and are each marked skipped (busy) by the preprocessor.
        for i in 1..6 {
            o.frame(i, i * 33 * MS, ());
            o.fill(i, i * 33 * MS, 100, false);
        }
        assert_eq!(o.pop(), None, "frame 0's detections are still due");
        o.fill(0, 0, 7, true);
        let out: Vec<(u64, Option<u32>)> = std::iter::from_fn(|| o.pop())
            .map(|r| (r.index, r.item))
            .collect();
        assert_eq!(out[0], (0, Some(7)));
        assert_eq!(out.len(), 6);
        assert_eq!(o.missing(), 0);
    }

    #[test]
    fn an_index_never_seen_goes_out_empty_in_its_place() {
        let mut o: LiveOrder<char, u32> = LiveOrder::new(100 * MS, 3);
        o.frame(0, 0, 'a');
        o.fill(0, 0, 1, true);
        assert_eq!(o.pop().map(|r| r.index), Some(0));
        // Frame 1 is lost on the way; frame 2 is filled.
        o.frame(2, 66 * MS, 'c');
        o.fill(2, 66 * MS, 3, true);
        assert_eq!(o.pop(), None, "frame 1 may still come");
        o.frame(6, 200 * MS, 'g');
        let r = o.pop().expect("frame 1 given up");
        assert_eq!((r.index, r.frame, r.item), (1, None, None));
        assert_eq!(o.pop().map(|r| (r.index, r.item)), Some((2, Some(3))));
        let rest: Vec<u64> = o.drain().into_iter().map(|r| r.index).collect();
        assert_eq!(rest, [3, 4, 5, 6], "the end is drained without gaps");
        assert_eq!(o.missing(), 5);
    }

    proptest! {
        /// Whatever the arrival order, every index from 0 goes out once, in order, with no gap,
        /// and an empty slot never waits longer than the bound once newer frames are seen.
        #[test]
        fn released_in_order_once(events in prop::collection::vec((0u64..40, any::<bool>()), 0..120)) {
            let mut o: LiveOrder<(), u64> = LiveOrder::new(100 * MS, 3);
            let mut out = Vec::new();
            for (index, is_fill) in events {
                if is_fill { o.fill(index, index * 33 * MS, index, true); } else { o.frame(index, index * 33 * MS, ()); }
                while let Some(r) = o.pop() {
                    prop_assert!(r.item.is_none_or(|i| i == r.index));
                    out.push(r.index);
                }
                if let Some(first) = o.slots.values().next() {
                    prop_assert!(first.item.is_some() || o.newest_ns - first.timestamp_ns <= 100 * MS);
                }
            }
            out.extend(o.drain().into_iter().map(|r| r.index));
            prop_assert!(out.iter().copied().eq(0..out.len() as u64), "every index once, in order, no gap");
        }
    }
}
