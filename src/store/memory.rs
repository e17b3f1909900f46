//! [`MemoryStore`]: the byte ranges of one resource held in memory, under a byte budget.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::ops::Range;

use bytes::Bytes;

use super::Validator;
use super::runs::Runs;

/// The longest piece the store keeps as one entry: what it inserts is split to this size,
/// so that eviction frees memory in steps this small (the split is a slice, not a copy).
const PIECE: usize = 64 * 1024;

/// The byte ranges of one resource held in memory, at most [`budget`](Self::budget) bytes.
///
/// Bytes enter as [`Bytes`] and leave as slices of them: the store shares the allocation
/// that the network (and the engine's ring) hold, without a copy. What it holds is a set of
/// disjoint pieces keyed by their offset; [`ranges`](Self::ranges) merges them.
///
/// **Eviction.** An insert that does not fit makes room by dropping pieces worth less than
/// what it brings, where worth is, in order: the resource's head and tail (the first and
/// last [`keep_ends`](Self::with_keep_ends) bytes, which a decoder's probe reads), then
/// nearness to the position the caller protects (where the reader is about to read). Pieces
/// inside the protected window are never dropped. What still does not fit is not stored;
/// the insert says how much was.
///
/// ```
/// use bytes::Bytes;
/// use kithara_stream::store::MemoryStore;
///
/// let mut store = MemoryStore::new(8);
/// assert_eq!(store.insert(0, &Bytes::from_static(b"abcd"), 0..4), 4);
/// // Reading at 0..12: nothing there may go, so only 4 of the 6 new bytes fit.
/// assert_eq!(store.insert(10, &Bytes::from_static(b"klmnop"), 0..12), 4);
/// assert_eq!(store.ranges(), [0..4, 10..14]);
/// assert_eq!(store.get(1, 100).as_deref(), Some(&b"bcd"[..]));
/// assert_eq!(store.held_until(11), 14);
/// ```
#[derive(Debug, Clone)]
pub struct MemoryStore {
    pieces: BTreeMap<u64, Bytes>,
    /// The held runs, merged. Kept beside `pieces` so that finding where a run ends costs a
    /// lookup, not a walk over its pieces.
    runs: Runs,
    held: u64,
    budget: u64,
    keep_ends: u64,
    len: Option<u64>,
    validator: Option<Validator>,
}

impl MemoryStore {
    /// An empty store that holds at most `budget` bytes (0: it holds nothing).
    pub fn new(budget: u64) -> Self {
        Self {
            pieces: BTreeMap::new(),
            runs: Runs::default(),
            held: 0,
            budget,
            keep_ends: 0,
            len: None,
            validator: None,
        }
    }

    /// Keeps the first and last `bytes` of the resource over everything else (default 0).
    #[must_use]
    pub fn with_keep_ends(mut self, bytes: u64) -> Self {
        self.keep_ends = bytes;
        self
    }

    /// The byte budget.
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// The bytes held.
    pub fn held_bytes(&self) -> u64 {
        self.held
    }

    /// Tells the store the resource's length, for its tail.
    pub fn set_len(&mut self, len: Option<u64>) {
        self.len = len;
    }

    /// The resource's length, if told.
    // The resource's length, not the store's size: `held_bytes` says what it holds.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> Option<u64> {
        self.len
    }

    /// The version of the resource the held bytes are of, if told.
    pub fn validator(&self) -> Option<&Validator> {
        self.validator.as_ref()
    }

    /// Names the version of the resource the held bytes are of (see [`Store::admit`]).
    pub fn set_validator(&mut self, validator: Option<Validator>) {
        self.validator = validator;
    }

    /// The piece holding `pos`: its offset and bytes.
    fn piece_at(&self, pos: u64) -> Option<(u64, &Bytes)> {
        let (&at, bytes) = self.pieces.range(..=pos).next_back()?;
        (pos < at + bytes.len() as u64).then_some((at, bytes))
    }

    /// The bytes held from `pos` on, at most `max` of them (from one piece), or `None` if
    /// `pos` is not held.
    pub fn get(&self, pos: u64, max: usize) -> Option<Bytes> {
        let (at, bytes) = self.piece_at(pos)?;
        let from = (pos - at) as usize;
        Some(bytes.slice(from..bytes.len().min(from.saturating_add(max))))
    }

    /// The end of the held run that contains `pos`: `pos` itself if it is not held.
    pub fn held_until(&self, pos: u64) -> u64 {
        self.runs.held_until(pos)
    }

    /// The first held byte at or after `pos`, if any.
    pub fn next_held(&self, pos: u64) -> Option<u64> {
        self.runs.next_held(pos)
    }

    /// The held ranges, merged, in order.
    pub fn ranges(&self) -> Vec<Range<u64>> {
        self.runs.ranges()
    }

    /// Drops everything held.
    pub fn clear(&mut self) {
        self.pieces.clear();
        self.runs.clear();
        self.held = 0;
    }

    /// Stores the bytes of `bytes` (the resource's bytes from `pos` on) that are not held
    /// yet, making room as the type's docs say without dropping anything in `protect`.
    /// Returns how many of them were stored: from the first missing byte on, a prefix of
    /// what was missing; 0 if all were held already.
    pub fn insert(&mut self, pos: u64, bytes: &Bytes, protect: Range<u64>) -> u64 {
        if self.budget == 0 {
            return 0;
        }
        let end = pos + bytes.len() as u64;
        let mut stored = 0;
        let mut at = pos;
        loop {
            let Some(gap) = self.runs.gaps(at, end).next() else {
                break;
            };
            at = gap.end;
            let want = gap.end - gap.start;
            let slice = bytes.slice((gap.start - pos) as usize..(gap.end - pos) as usize);
            let fitted = self.insert_gap(gap.start, slice, &protect);
            stored += fitted;
            if fitted < want {
                break;
            }
        }
        stored
    }

    /// Stores `gap` at `at` (nothing there is held), as much of it as fits.
    fn insert_gap(&mut self, at: u64, gap: Bytes, protect: &Range<u64>) -> u64 {
        let want = gap.len() as u64;
        let worth = self.worth(at..at + want, protect);
        self.make_room(want, worth, protect);
        let room = self.budget.saturating_sub(self.held).min(want);
        let mut offset = 0;
        while (offset as u64) < room {
            let len = PIECE.min(room as usize - offset);
            self.pieces
                .insert(at + offset as u64, gap.slice(offset..offset + len));
            offset += len;
        }
        if room > 0 {
            self.runs.add(at, at + room);
        }
        self.held += room;
        room
    }

    /// Drops pieces worth less than `worth`, least worth first, until `want` bytes fit.
    fn make_room(&mut self, want: u64, worth: Worth, protect: &Range<u64>) {
        while self.held + want > self.budget {
            let Some((at, victim)) = self.least_worth(protect) else {
                return;
            };
            if victim >= worth {
                return;
            }
            let bytes = self.pieces.remove(&at).expect("the victim is held");
            self.runs.remove(at, at + bytes.len() as u64);
            self.held -= bytes.len() as u64;
        }
    }

    /// The piece worth least, and its worth. The pieces worth `Near` lie on either side of
    /// the protected window, between the head and the tail, and the farthest of them is
    /// the first or the last: the search from each end passes only the head or the tail
    /// and the window, not every piece.
    fn least_worth(&self, protect: &Range<u64>) -> Option<(u64, Worth)> {
        let worth =
            |(&at, bytes): (&u64, &Bytes)| (at, self.worth(at..at + bytes.len() as u64, protect));
        let near = |&(_, w): &(u64, Worth)| matches!(w, Worth::Near(_));
        let first = self.pieces.iter().map(worth).find(near);
        let last = self.pieces.iter().rev().map(worth).find(near);
        match (first, last) {
            (Some(a), Some(b)) => Some(if b.1 < a.1 { b } else { a }),
            (a, b) => a.or(b).or_else(|| {
                self.pieces
                    .iter()
                    .map(worth)
                    .find(|&(_, w)| w == Worth::End)
            }),
        }
    }

    fn worth(&self, range: Range<u64>, protect: &Range<u64>) -> Worth {
        if range.start < protect.end && protect.start < range.end {
            return Worth::Protected;
        }
        let in_head = range.start < self.keep_ends;
        let in_tail = self
            .len
            .is_some_and(|len| range.end > len.saturating_sub(self.keep_ends));
        if in_head || in_tail {
            return Worth::End;
        }
        let distance = if range.end <= protect.start {
            protect.start - range.end
        } else {
            range.start - protect.end
        };
        Worth::Near(u64::MAX - distance)
    }
}

/// What a piece is worth keeping; more is kept longer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Worth {
    /// `u64::MAX - distance` from the protected window.
    Near(u64),
    /// In the resource's head or tail.
    End,
    /// Inside the protected window: never dropped.
    Protected,
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn bytes(from: u64, len: usize) -> Bytes {
        Bytes::from(
            (from..from + len as u64)
                .map(|i| i as u8)
                .collect::<Vec<u8>>(),
        )
    }

    #[test]
    fn insert_skips_what_is_held_and_fills_gaps() {
        let mut store = MemoryStore::new(1_000);
        assert_eq!(store.insert(10, &bytes(10, 10), 0..0), 10);
        assert_eq!(store.insert(30, &bytes(30, 10), 0..0), 10);
        assert_eq!(store.insert(0, &bytes(0, 50), 0..0), 30);
        assert_eq!(store.ranges(), vec![0..50]);
        assert_eq!(store.held_bytes(), 50);
        for pos in 0..50 {
            assert_eq!(store.get(pos, 1).unwrap()[0], pos as u8);
        }
        assert_eq!(store.get(50, 1), None);
    }

    #[test]
    fn eviction_drops_the_farthest_first_and_never_the_protected() {
        let mut store = MemoryStore::new(30);
        store.insert(0, &bytes(0, 10), 0..10);
        store.insert(100, &bytes(100, 10), 100..110);
        store.insert(200, &bytes(200, 10), 200..210);
        // Reading near 190: 0..10 is the farthest and goes first.
        assert_eq!(store.insert(190, &bytes(190, 10), 190..200), 10);
        assert_eq!(store.ranges(), vec![100..110, 190..210]);
        // Nothing outside the window is worth less than new bytes far away.
        assert_eq!(store.insert(1_000, &bytes(1_000, 10), 190..210), 0);
        // A window covering everything: nothing can go.
        assert_eq!(store.insert(50, &bytes(50, 10), 0..300), 0);
        assert_eq!(store.held_bytes(), 30);
    }

    #[test]
    fn head_and_tail_are_kept_over_the_middle() {
        let mut store = MemoryStore::new(30).with_keep_ends(10);
        store.set_len(Some(1_000));
        store.insert(0, &bytes(0, 10), 0..10);
        store.insert(990, &bytes(990, 10), 990..1_000);
        store.insert(500, &bytes(500, 10), 500..510);
        assert_eq!(store.insert(600, &bytes(600, 10), 600..610), 10);
        assert_eq!(store.ranges(), vec![0..10, 600..610, 990..1_000]);
    }

    #[test]
    fn budget_zero_holds_nothing() {
        let mut store = MemoryStore::new(0);
        assert_eq!(store.insert(0, &bytes(0, 10), 0..10), 0);
        assert!(store.ranges().is_empty());
        assert_eq!(store.next_held(0), None);
    }

    #[test]
    fn large_inserts_are_kept_as_pieces() {
        let mut store = MemoryStore::new(1 << 20);
        let big = Bytes::from(vec![7u8; 200 * 1024]);
        assert_eq!(store.insert(0, &big, 0..0), 200 * 1024);
        assert_eq!(store.pieces.len(), 4);
        assert_eq!(store.get(0, usize::MAX).unwrap().len(), PIECE);
        assert_eq!(store.held_until(0), 200 * 1024);
    }
}
