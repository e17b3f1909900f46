//! [`PieceRuns`]: the held runs of a resource, merged, each with the pieces of bytes it is made
//! of, in order.
//!
//! The runs sit in a `Vec` sorted by their start, and each run's pieces in a `VecDeque` of
//! its own. A stream read from start to end makes one run (or a few): a lookup is a binary
//! search among a few runs, adding a piece at a run's end is a push, and dropping the first
//! piece of a run (the oldest, when a store evicts what the reader has passed) is a pop.
//! Only making or removing a whole run (a seek to a hole, an eviction that splits a run)
//! moves the runs after it.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::ops::Range;

use bytes::Bytes;

/// One run: the pieces `start..end`, back to back, each with its offset.
#[derive(Debug, Clone)]
struct Run {
    start: u64,
    end: u64,
    pieces: VecDeque<(u64, Bytes)>,
    /// How many pieces left its front: a piece's index plus this is its number, which
    /// stays the same while older pieces are evicted (a hint that survives them).
    popped: usize,
}

impl Run {
    fn new(start: u64, end: u64, pieces: VecDeque<(u64, Bytes)>, popped: usize) -> Self {
        Self {
            start,
            end,
            pieces,
            popped,
        }
    }

    /// The index of the piece holding `pos`, which lies in this run: the piece numbered
    /// `hint` or the one after it if either holds it (a reader moves on piece by piece),
    /// else searched for.
    fn index(&self, pos: u64, hint: usize) -> usize {
        let holds = |i: usize| {
            self.pieces
                .get(i)
                .is_some_and(|(at, bytes)| *at <= pos && pos < at + bytes.len() as u64)
        };
        let hint = hint.wrapping_sub(self.popped);
        let next = hint.wrapping_add(1);
        if holds(hint) {
            hint
        } else if holds(next) {
            next
        } else {
            self.pieces.partition_point(|(at, _)| *at <= pos) - 1
        }
    }

    /// Drops spare room once the run has shrunk to a quarter of it.
    fn shrink(&mut self) {
        if self.pieces.capacity() > 4 * self.pieces.len().max(4) {
            self.pieces.shrink_to_fit();
        }
    }
}

fn span((at, bytes): &(u64, Bytes)) -> Range<u64> {
    *at..at + bytes.len() as u64
}

/// Disjoint, merged runs of pieces, in order: two runs that touch are one.
#[derive(Debug, Clone, Default)]
pub(crate) struct PieceRuns(Vec<Run>);

impl PieceRuns {
    /// How many runs start at or before `pos`.
    fn upto(&self, pos: u64) -> usize {
        self.0.partition_point(|run| run.start <= pos)
    }

    /// The index of the run that contains `pos`.
    fn run_at(&self, pos: u64) -> Option<usize> {
        let i = self.upto(pos).checked_sub(1)?;
        (pos < self.0[i].end).then_some(i)
    }

    /// The end of the run that contains `pos`: `pos` itself if none does.
    pub(crate) fn held_until(&self, pos: u64) -> u64 {
        self.run_at(pos).map_or(pos, |i| self.0[i].end)
    }

    /// The first byte in a run at or after `pos`, if any.
    pub(crate) fn next_held(&self, pos: u64) -> Option<u64> {
        let i = self.upto(pos);
        if i > 0 && pos < self.0[i - 1].end {
            return Some(pos);
        }
        self.0.get(i).map(|run| run.start)
    }

    /// The runs, in order.
    pub(crate) fn ranges(&self) -> Vec<Range<u64>> {
        self.0.iter().map(|run| run.start..run.end).collect()
    }

    /// The piece that holds `pos`: its number in its run (`hint`, the number a previous
    /// call returned, is tried first), its offset and its bytes.
    pub(crate) fn piece_at(&self, pos: u64, hint: usize) -> Option<(usize, u64, &Bytes)> {
        let run = &self.0[self.run_at(pos)?];
        let i = run.index(pos, hint);
        let (at, bytes) = &run.pieces[i];
        Some((run.popped.wrapping_add(i), *at, bytes))
    }

    /// How many pieces there are.
    #[cfg(test)]
    pub(crate) fn pieces(&self) -> usize {
        self.0.iter().map(|run| run.pieces.len()).sum()
    }

    /// The first piece, if any.
    pub(crate) fn first_piece(&self) -> Option<Range<u64>> {
        self.0.first().and_then(|run| run.pieces.front()).map(span)
    }

    /// The first piece that starts at or after `pos`, if any.
    pub(crate) fn first_piece_from(&self, pos: u64) -> Option<Range<u64>> {
        let i = self.upto(pos);
        if i > 0 && pos < self.0[i - 1].end {
            let run = &self.0[i - 1];
            let k = run.pieces.partition_point(|(at, _)| *at < pos);
            if let Some(piece) = run.pieces.get(k) {
                return Some(span(piece));
            }
        }
        self.0.get(i).and_then(|run| run.pieces.front()).map(span)
    }

    /// The last piece that ends at or before `pos`, if any.
    pub(crate) fn last_piece_by(&self, pos: u64) -> Option<Range<u64>> {
        let i = self
            .0
            .partition_point(|run| run.start < pos)
            .checked_sub(1)?;
        let run = &self.0[i];
        if run.end <= pos {
            return run.pieces.back().map(span);
        }
        let k = run.pieces.partition_point(|piece| span(piece).end <= pos);
        if k > 0 {
            return Some(span(&run.pieces[k - 1]));
        }
        let before = &self.0[i.checked_sub(1)?];
        before.pieces.back().map(span)
    }

    /// Adds `pieces`, back to back from `at` on (none of it in a run, none of them empty,
    /// at least one), merging them with the runs they touch. At the end of a run (a stream
    /// read in order) this costs a binary search among the runs and a push per piece.
    pub(crate) fn add(&mut self, at: u64, pieces: impl IntoIterator<Item = Bytes>) {
        let i = self.upto(at);
        let j = if i > 0 && self.0[i - 1].end == at {
            i - 1
        } else {
            let run = Run::new(at, at, VecDeque::new(), 0);
            self.0.insert(i, run);
            i
        };
        push(&mut self.0[j], pieces);
        debug_assert!(self.0[j].start < self.0[j].end, "no pieces");
        debug_assert!(
            self.0
                .get(j + 1)
                .is_none_or(|next| next.start >= self.0[j].end),
            "overlap"
        );
        if self
            .0
            .get(j + 1)
            .is_some_and(|next| next.start == self.0[j].end)
        {
            let mut next = self.0.remove(j + 1);
            let run = &mut self.0[j];
            // Move the fewer pieces.
            if next.pieces.len() > run.pieces.len() {
                while let Some(piece) = run.pieces.pop_back() {
                    next.pieces.push_front(piece);
                }
                core::mem::swap(&mut run.pieces, &mut next.pieces);
            } else {
                run.pieces.append(&mut next.pieces);
            }
            run.end = next.end;
        }
    }

    /// Removes the piece that starts at `at`, splitting its run. Returns its bytes, or
    /// `None` if no piece starts there.
    pub(crate) fn remove_piece(&mut self, at: u64) -> Option<Bytes> {
        let j = self.run_at(at)?;
        let run = &mut self.0[j];
        let k = run.index(at, run.popped);
        if run.pieces[k].0 != at {
            return None;
        }
        let last = run.pieces.len() - 1;
        let bytes = if k == 0 {
            let (_, bytes) = run.pieces.pop_front().expect("the piece is held");
            run.popped = run.popped.wrapping_add(1);
            match run.pieces.front() {
                Some(&(next, _)) => run.start = next,
                None => {
                    self.0.remove(j);
                    return Some(bytes);
                }
            }
            bytes
        } else if k == last {
            let (_, bytes) = run.pieces.pop_back().expect("the piece is held");
            run.end = at;
            bytes
        } else if k < last / 2 {
            // In the middle: the fewer pieces move into a run of their own.
            let mut left: VecDeque<_> = run.pieces.drain(..=k).collect();
            let (_, bytes) = left.pop_back().expect("the piece is held");
            let left = Run::new(run.start, at, left, run.popped);
            run.start = run.pieces.front().expect("pieces after the victim").0;
            run.popped = run.popped.wrapping_add(k + 1);
            self.0.insert(j, left);
            self.0[j + 1].shrink();
            return Some(bytes);
        } else {
            let right = run.pieces.split_off(k + 1);
            let (_, bytes) = run.pieces.pop_back().expect("the piece is held");
            let start = right.front().expect("pieces after the victim").0;
            let right = Run::new(start, run.end, right, run.popped.wrapping_add(k + 1));
            run.end = at;
            run.shrink();
            self.0.insert(j + 1, right);
            return Some(bytes);
        };
        run.shrink();
        Some(bytes)
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

/// Appends `pieces` at the end of `run`.
fn push(run: &mut Run, pieces: impl IntoIterator<Item = Bytes>) {
    for bytes in pieces {
        debug_assert!(!bytes.is_empty());
        let at = run.end;
        run.end += bytes.len() as u64;
        run.pieces.push_back((at, bytes));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn piece(len: usize) -> Bytes {
        Bytes::from(vec![0u8; len])
    }

    /// Adds `at..end` as pieces of 5 bytes (the last may be shorter).
    fn add(runs: &mut PieceRuns, at: u64, end: u64) {
        let pieces = (at..end)
            .step_by(5)
            .map(|from| piece((end - from).min(5) as usize));
        runs.add(at, pieces);
    }

    #[test]
    fn runs_merge_split_and_report_gaps() {
        let mut runs = PieceRuns::default();
        add(&mut runs, 10, 20);
        add(&mut runs, 30, 40);
        add(&mut runs, 20, 30);
        assert_eq!(runs.ranges(), vec![10..40]);
        assert_eq!(runs.remove_piece(15).map(|b| b.len()), Some(5));
        assert_eq!(runs.remove_piece(20).map(|b| b.len()), Some(5));
        assert_eq!(runs.remove_piece(21), None);
        assert_eq!(runs.ranges(), vec![10..15, 25..40]);
        assert_eq!(runs.held_until(12), 15);
        assert_eq!(runs.held_until(15), 15);
        assert_eq!(runs.next_held(15), Some(25));
        assert_eq!(
            runs.gaps(0, 50).collect::<Vec<_>>(),
            vec![0..10, 15..25, 40..50]
        );
        assert_eq!(runs.gaps(26, 30).count(), 0);
        assert_eq!(runs.first_piece(), Some(10..15));
        assert_eq!(runs.first_piece_from(11), Some(25..30));
        assert_eq!(runs.first_piece_from(25), Some(25..30));
        assert_eq!(runs.first_piece_from(36), None);
        assert_eq!(runs.last_piece_by(29), Some(10..15));
        assert_eq!(runs.last_piece_by(30), Some(25..30));
        assert_eq!(runs.last_piece_by(10), None);
        assert_eq!(runs.pieces(), 4);
        // Near the end of a run, and its last piece.
        add(&mut runs, 50, 100);
        assert_eq!(runs.remove_piece(85).map(|b| b.len()), Some(5));
        assert_eq!(runs.remove_piece(95).map(|b| b.len()), Some(5));
        assert_eq!(runs.ranges(), vec![10..15, 25..40, 50..85, 90..95]);
        // The run split off at 90 numbers its piece as the run it came from did (8th of
        // 50..100), so that a hint survives the split.
        assert_eq!(
            runs.piece_at(92, 0).map(|(i, at, _)| (i, at)),
            Some((8, 90))
        );
        assert_eq!(runs.last_piece_by(89), Some(80..85));
        // Filling the holes merges the runs again.
        add(&mut runs, 85, 90);
        add(&mut runs, 40, 50);
        assert_eq!(runs.ranges(), vec![10..15, 25..95]);
        assert_eq!(
            // The merged run numbers its pieces as its first run, 25..40, did: from 10 on,
            // with the three pieces before 25 gone.
            runs.piece_at(93, 0).map(|(i, at, _)| (i, at)),
            Some((16, 90))
        );
    }

    #[test]
    fn pieces_are_found_with_and_without_a_hint() {
        let mut runs = PieceRuns::default();
        add(&mut runs, 0, 100);
        for pos in 0..100 {
            for hint in [0, 3, (pos / 5) as usize, (pos / 5) as usize + 1, usize::MAX] {
                let (i, at, bytes) = runs.piece_at(pos, hint).unwrap();
                assert_eq!((i, at, bytes.len()), ((pos / 5) as usize, pos / 5 * 5, 5));
            }
        }
        assert!(runs.piece_at(100, 0).is_none());
    }

    #[test]
    fn a_piece_keeps_its_number_while_older_ones_are_evicted() {
        let mut runs = PieceRuns::default();
        add(&mut runs, 0, 100);
        let (number, _, _) = runs.piece_at(50, 0).unwrap();
        for at in [0, 5, 10, 15] {
            assert!(runs.remove_piece(at).is_some());
        }
        for (pos, hint) in [(50, number), (55, number), (50, 0)] {
            let (i, at, _) = runs.piece_at(pos, hint).unwrap();
            assert_eq!((i, at), ((pos / 5) as usize, pos / 5 * 5));
        }
    }
}
