//! [`Runs`]: a set of disjoint byte ranges, merged, with lookups that cost one B-tree step:
//! the ranges a [`DiskStore`](super::DiskStore) holds and its index records.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::ops::Range;

/// Disjoint, merged byte ranges: start to end. Two ranges that touch are one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Runs(BTreeMap<u64, u64>);

impl Runs {
    /// The run that contains `pos`.
    pub(crate) fn at(&self, pos: u64) -> Option<Range<u64>> {
        let (&start, &end) = self.0.range(..=pos).next_back()?;
        (pos < end).then_some(start..end)
    }

    /// The end of the run that contains `pos`: `pos` itself if none does.
    pub(crate) fn held_until(&self, pos: u64) -> u64 {
        self.at(pos).map_or(pos, |run| run.end)
    }

    /// The first byte in a run at or after `pos`, if any.
    pub(crate) fn next_held(&self, pos: u64) -> Option<u64> {
        if self.at(pos).is_some() {
            return Some(pos);
        }
        self.0.range(pos..).next().map(|(&start, _)| start)
    }

    /// The runs, in order.
    pub(crate) fn ranges(&self) -> Vec<Range<u64>> {
        self.iter().collect()
    }

    /// The runs, in order, without collecting them.
    pub(crate) fn iter(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        self.0.iter().map(|(&start, &end)| start..end)
    }

    /// Adds `at..end`, none of which is in a run, merging it with the runs it touches.
    pub(crate) fn add(&mut self, at: u64, end: u64) {
        debug_assert!(at < end && self.next_held(at).is_none_or(|next| next >= end));
        let mut start = at;
        if let Some((&left, &left_end)) = self.0.range(..at).next_back() {
            if left_end == at {
                start = left;
            }
        }
        let end = self.0.remove(&end).unwrap_or(end);
        self.0.insert(start, end);
    }

    /// Removes `at..end`, which lies inside one run, splitting that run.
    pub(crate) fn remove(&mut self, at: u64, end: u64) {
        let run = self.at(at).expect("the range lies in a run");
        debug_assert!(end <= run.end);
        self.0.remove(&run.start);
        if run.start < at {
            self.0.insert(run.start, at);
        }
        if end < run.end {
            self.0.insert(end, run.end);
        }
    }

    /// Removes every run.
    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }

    /// The gaps of `at..end`: its ranges that no run covers, in order.
    pub(crate) fn gaps(&self, at: u64, end: u64) -> impl Iterator<Item = Range<u64>> + '_ {
        super::gaps(
            at,
            end,
            |pos| self.held_until(pos),
            |pos| self.next_held(pos),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn runs_merge_split_and_report_gaps() {
        let mut runs = Runs::default();
        runs.add(10, 20);
        runs.add(30, 40);
        runs.add(20, 30);
        assert_eq!(runs.ranges(), vec![10..40]);
        runs.remove(15, 25);
        assert_eq!(runs.ranges(), vec![10..15, 25..40]);
        assert_eq!(runs.held_until(12), 15);
        assert_eq!(runs.held_until(15), 15);
        assert_eq!(runs.next_held(15), Some(25));
        assert_eq!(
            runs.gaps(0, 50).collect::<Vec<_>>(),
            vec![0..10, 15..25, 40..50]
        );
        assert_eq!(runs.gaps(26, 30).count(), 0);
    }
}
