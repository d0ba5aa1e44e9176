//! Puts per-frame results back into frame order by their gap-free `index`, whichever infer
//! process produced them and whatever order they arrived in, dropping duplicates.

use std::collections::BTreeMap;

/// A reorder buffer keyed by frame index.
///
/// Strict (`hold: None`): frame `i` is released only after frame `i - 1`, so a lost frame
/// holds everything back until it is sent again — lossless replay. Live (`hold: Some(k)`):
/// once more than `k` later frames wait behind a gap, the gap is given up as lost.
#[derive(Debug, Clone)]
pub struct Reorder<T> {
    next: u64,
    waiting: BTreeMap<u64, T>,
    hold: Option<usize>,
    skipped: u64,
}

impl<T> Reorder<T> {
    #[must_use]
    pub fn new(hold: Option<usize>) -> Self {
        Self {
            next: 0,
            waiting: BTreeMap::new(),
            hold,
            skipped: 0,
        }
    }

    /// Adds a frame's result. Returns false for a duplicate or a frame already released or
    /// given up, which is dropped.
    pub fn push(&mut self, index: u64, item: T) -> bool {
        if index < self.next || self.waiting.contains_key(&index) {
            return false;
        }
        self.waiting.insert(index, item);
        true
    }

    /// The next result in frame order, if it may be released.
    pub fn pop(&mut self) -> Option<(u64, T)> {
        let &first = self.waiting.keys().next()?;
        let give_up = self.hold.is_some_and(|k| self.waiting.len() > k);
        if first != self.next && !give_up {
            return None;
        }
        self.skipped += first - self.next;
        self.next = first + 1;
        self.waiting.remove(&first).map(|item| (first, item))
    }

    /// Releases everything still waiting, in order (the stream has ended).
    pub fn drain(&mut self) -> impl Iterator<Item = (u64, T)> + '_ {
        self.next = self.waiting.keys().next_back().map_or(self.next, |k| k + 1);
        std::mem::take(&mut self.waiting).into_iter()
    }

    /// Frames given up as lost.
    #[must_use]
    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn strict_waits_for_the_gap_and_drops_duplicates() {
        let mut r = Reorder::new(None);
        assert!(r.push(1, 'b'));
        assert_eq!(r.pop(), None);
        assert!(r.push(0, 'a'));
        assert!(!r.push(0, 'a'));
        assert_eq!(r.pop(), Some((0, 'a')));
        assert_eq!(r.pop(), Some((1, 'b')));
        assert!(!r.push(1, 'b'), "already released");
    }

    #[test]
    fn live_gives_up_a_gap_after_hold_frames() {
        let mut r = Reorder::new(Some(2));
        r.push(1, 1);
        r.push(2, 2);
        assert_eq!(r.pop(), None);
        r.push(3, 3);
        assert_eq!(r.pop(), Some((1, 1)));
        assert_eq!(r.skipped(), 1);
        assert!(!r.push(0, 0), "a frame given up stays dropped");
    }

    proptest! {
        /// Strict mode releases every frame exactly once, in index order, whatever the arrival
        /// order and however many duplicates arrive.
        #[test]
        fn strict_releases_each_frame_once_in_order(
            n in 1u64..80,
            order in prop::collection::vec(any::<prop::sample::Index>(), 0..200),
        ) {
            let mut arrivals: Vec<u64> = (0..n).collect();
            for (i, pick) in order.iter().enumerate() {
                let j = pick.index(arrivals.len());
                if i % 3 == 0 { arrivals.push(arrivals[j]); } else { let k = i % arrivals.len(); arrivals.swap(k, j); }
            }
            let mut r = Reorder::new(None);
            let mut out = Vec::new();
            for a in arrivals {
                r.push(a, a);
                while let Some((i, _)) = r.pop() { out.push(i); }
            }
            prop_assert_eq!(out, (0..n).collect::<Vec<_>>());
        }
    }
}
