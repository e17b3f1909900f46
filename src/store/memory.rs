//! [`MemoryStore`]: the byte ranges of one resource held in memory, under a byte budget.

use alloc::vec::Vec;
use core::ops::Range;

use bytes::Bytes;

use super::Validator;
use super::pieces::PieceRuns;

/// The longest piece the store keeps as one entry: what it inserts is split to this size,
/// so that eviction frees memory in steps this small.
const PIECE: usize = 64 * 1024;

/// The byte ranges of one resource held in memory, at most [`budget`](Self::budget) bytes.
///
/// What it holds is a set of disjoint pieces in merged runs; [`ranges`](Self::ranges) lists
/// the runs.
///
/// **Memory.** Bytes enter and leave as [`Bytes`]. The store copies what it keeps into
/// allocations of its own, of the pieces' sizes, unless told to keep chunks as they come
/// ([`with_zero_copy`](Self::with_zero_copy)). The engine's ring and the reader then share
/// the store's memory. The copy is what keeps the budget true: a chunk is most often a
/// slice of a larger buffer (hyper hands out slices of its read buffer), and a slice keeps
/// all of its buffer alive, which no `Bytes` method can measure. It also lets a network
/// client read into the same buffer again instead of fresh memory for every chunk.
///
/// **Cost.** A stream read in order makes one run: storing a chunk at its end, serving the
/// next one and evicting the one farthest behind each cost a step in a map of a few runs
/// and a push or a pop, not a search among the pieces.
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
    /// The held runs, merged, each with its pieces.
    runs: PieceRuns,
    /// The number in its run of the piece the last [`Store::get`](super::Store::get) served
    /// from: where the next one is looked for first.
    cursor: usize,
    held: u64,
    budget: u64,
    keep_ends: u64,
    /// Keep chunks as they come instead of copying them.
    zero_copy: bool,
    len: Option<u64>,
    validator: Option<Validator>,
}

impl MemoryStore {
    /// An empty store that holds at most `budget` bytes (0: it holds nothing).
    pub fn new(budget: u64) -> Self {
        Self {
            runs: PieceRuns::default(),
            cursor: 0,
            held: 0,
            budget,
            keep_ends: 0,
            zero_copy: false,
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

    /// Keeps every chunk as it comes, without a copy (`false` by default; see the type's
    /// docs on memory).
    ///
    /// For a fetch whose chunks are each an allocation of their own size, or slices of
    /// memory that stays alive anyway (a resource already in memory): a copy would only
    /// cost time, or hold the bytes twice. For a network client's chunks, slices of its read
    /// buffers, it costs memory beyond the budget and throughput.
    #[must_use]
    pub fn with_zero_copy(mut self, zero_copy: bool) -> Self {
        self.zero_copy = zero_copy;
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
    // The resource's length, not a count of what is held: there is no `is_empty` to pair.
    pub fn total_len(&self) -> Option<u64> {
        self.len
    }

    /// The version of the resource the held bytes are of, if told.
    pub fn validator(&self) -> Option<&Validator> {
        self.validator.as_ref()
    }

    /// Names the version of the resource the held bytes are of (see [`Store::admit`](super::Store::admit)).
    pub fn set_validator(&mut self, validator: Option<Validator>) {
        self.validator = validator;
    }

    /// The bytes held from `pos` on, at most `max` of them (from one piece), or `None` if
    /// `pos` is not held.
    pub fn get(&self, pos: u64, max: usize) -> Option<Bytes> {
        let (_, at, bytes) = self.runs.piece_at(pos, self.cursor)?;
        Some(slice(at, bytes, pos, max))
    }

    /// [`get`](Self::get), looking first where the last call left off.
    pub(super) fn get_next(&mut self, pos: u64, max: usize) -> Option<Bytes> {
        let (i, at, bytes) = self.runs.piece_at(pos, self.cursor)?;
        let bytes = slice(at, bytes, pos, max);
        self.cursor = i;
        Some(bytes)
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
        self.runs.clear();
        self.held = 0;
    }

    /// Stores the bytes of `bytes` (the resource's bytes from `pos` on) that are not held
    /// yet, making room as the type's docs say without dropping anything in `protect`.
    /// Returns how many of them were stored: from the first missing byte on, a prefix of
    /// what was missing; 0 if all were held already.
    pub fn insert(&mut self, pos: u64, bytes: &Bytes, protect: Range<u64>) -> u64 {
        self.keep(pos, bytes.clone(), protect).0
    }

    /// [`insert`](Self::insert) with `bytes` handed over: how many bytes were stored, and
    /// `bytes` back unless all of them are held now. With
    /// [`with_zero_copy`](Self::with_zero_copy), bytes that are all kept (a stream read in
    /// order, within the budget) are moved into the store, not cloned.
    pub(super) fn keep(
        &mut self,
        pos: u64,
        bytes: Bytes,
        protect: Range<u64>,
    ) -> (u64, Option<Bytes>) {
        if self.budget == 0 || bytes.is_empty() {
            return (0, (!bytes.is_empty()).then_some(bytes));
        }
        let len = bytes.len() as u64;
        let end = pos + len;
        let mut stored = 0;
        let mut at = pos;
        loop {
            let Some(gap) = self.runs.gaps(at, end).next() else {
                break;
            };
            at = gap.end;
            let want = gap.end - gap.start;
            let room = self.make_room(gap.start, want, &protect);
            if room == len {
                // All of `bytes` was missing, and fits.
                self.put(pos, bytes);
                return (len, None);
            }
            if room > 0 {
                let from = (gap.start - pos) as usize;
                self.put(gap.start, bytes.slice(from..from + room as usize));
                stored += room;
            }
            if room < want {
                return (stored, Some(bytes));
            }
        }
        // Room made for a later gap may have dropped an earlier one.
        let all_held = self.runs.held_until(pos) >= end;
        (stored, (!all_held).then_some(bytes))
    }

    /// Makes room for the `want` bytes at `at` (none of them held) as far as their worth
    /// allows: how many of them fit now.
    fn make_room(&mut self, at: u64, want: u64, protect: &Range<u64>) -> u64 {
        let worth = self.worth(at..at + want, protect);
        self.evict(want, worth, protect);
        self.budget.saturating_sub(self.held).min(want)
    }

    /// Adds `bytes` at `at` (none of it held; room made for it), as pieces of at most
    /// `PIECE` bytes: copies, or with `zero_copy` slices of it, the last one `bytes` itself.
    fn put(&mut self, at: u64, mut bytes: Bytes) {
        self.held += bytes.len() as u64;
        let copy = !self.zero_copy;
        let pieces = core::iter::from_fn(move || {
            let piece = match bytes.len() {
                0 => return None,
                len if len <= PIECE => core::mem::take(&mut bytes),
                _ => bytes.split_to(PIECE),
            };
            Some(if copy {
                Bytes::copy_from_slice(&piece)
            } else {
                piece
            })
        });
        self.runs.add(at, pieces);
    }

    /// Drops pieces worth less than `worth`, least worth first, until `want` bytes fit.
    fn evict(&mut self, want: u64, worth: Worth, protect: &Range<u64>) {
        while self.held + want > self.budget {
            let Some((at, victim)) = self.least_worth(protect) else {
                return;
            };
            if victim >= worth {
                return;
            }
            let bytes = self.runs.remove_piece(at).expect("the victim is held");
            self.held -= bytes.len() as u64;
        }
    }

    /// The piece worth least, and its worth: the farthest of the pieces worth `Near`, else
    /// the first piece worth `End`.
    ///
    /// The `Near` pieces lie on either side of the protected window, between the head and
    /// the tail, so the farthest is the first of them or the last, and the last can only
    /// be farther if it lies past the window: each is found with a lookup or two, not by a
    /// walk over the pieces.
    fn least_worth(&self, protect: &Range<u64>) -> Option<(u64, Worth)> {
        let overlaps = |piece: &Range<u64>| piece.start < protect.end && protect.start < piece.end;
        let worth = |piece: Range<u64>| (piece.start, self.worth(piece, protect));
        // Where the tail starts: a piece that ends past it is in the tail.
        let tail = self
            .len
            .map_or(u64::MAX, |len| len.saturating_sub(self.keep_ends));
        // The first piece past the head and off the window, if it is before the tail.
        let first = match self.runs.first_piece_from(self.keep_ends) {
            Some(piece) if overlaps(&piece) => {
                self.runs.first_piece_from(protect.end.max(self.keep_ends))
            }
            piece => piece,
        }
        .filter(|piece| piece.end <= tail);
        let Some(first) = first else {
            // None is `Near`: the first piece off the window is in the head or the tail.
            let piece = match self.runs.first_piece()? {
                piece if overlaps(&piece) => self.runs.first_piece_from(protect.end)?,
                piece => piece,
            };
            return Some(worth(piece)).filter(|&(_, w)| w == Worth::End);
        };
        let first = worth(first);
        // The last piece before the tail, if it lies past the window and the head.
        let last = self
            .runs
            .last_piece_by(tail)
            .filter(|piece| piece.start >= protect.end && piece.start >= self.keep_ends)
            .map(worth);
        debug_assert!(matches!(first.1, Worth::Near(_)));
        Some(match last {
            Some(last) if last.1 < first.1 => last,
            _ => first,
        })
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

/// `max` bytes at most of `bytes`, a piece at `at`, from `pos` on.
fn slice(at: u64, bytes: &Bytes, pos: u64, max: usize) -> Bytes {
    let from = (pos - at) as usize;
    let to = bytes.len().min(from.saturating_add(max));
    if from == 0 && to == bytes.len() {
        bytes.clone()
    } else {
        bytes.slice(from..to)
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
        assert_eq!(store.runs.pieces(), 4);
        assert_eq!(store.get(0, usize::MAX).unwrap().len(), PIECE);
        assert_eq!(store.held_until(0), 200 * 1024);
    }

    #[test]
    fn what_is_kept_is_copied_so_that_no_larger_buffer_is_held() {
        let mut store = MemoryStore::new(1 << 20);
        // A client's read buffer, of which the fetch hands out a slice; then its last
        // slice, the only reference left, but to all of the buffer.
        let buffer = Bytes::from(vec![7u8; 512 * 1024]);
        assert_eq!(
            store.keep(0, buffer.slice(..100 * 1024), 0..0).0,
            100 * 1024
        );
        assert!(buffer.is_unique(), "the store holds the client's buffer");
        let last = buffer.slice(500 * 1024..);
        drop(buffer);
        assert!(last.is_unique());
        let weak = last.as_ptr();
        assert_eq!(store.insert(500 * 1024, &last, 0..0), 12 * 1024);
        assert_ne!(store.get(500 * 1024, 1).unwrap().as_ptr(), weak);
        assert_eq!(
            store.get(0, usize::MAX).unwrap(),
            Bytes::from(vec![7u8; PIECE])
        );
        assert_eq!(store.held_bytes(), 112 * 1024);
    }

    #[test]
    fn with_zero_copy_chunks_are_kept_as_they_come() {
        let mut store = MemoryStore::new(1 << 20).with_zero_copy(true);
        let chunk = Bytes::from(vec![7u8; 100 * 1024]);
        let at = chunk.as_ptr();
        assert_eq!(store.keep(0, chunk, 0..0), (100 * 1024, None));
        assert_eq!(store.get(0, usize::MAX).unwrap().as_ptr(), at);
        assert_eq!(
            store.get(PIECE as u64, 1).unwrap().as_ptr(),
            at.wrapping_add(PIECE)
        );
        // A slice, and so its buffer, is held.
        let buffer = Bytes::from(vec![7u8; 512 * 1024]);
        store.keep(200 * 1024, buffer.slice(..100 * 1024), 0..0);
        assert!(!buffer.is_unique());
    }
}
