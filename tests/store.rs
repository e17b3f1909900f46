//! `store::MemoryStore` against a reference: random inserts under random budgets, protected
//! windows and kept ends. What it holds is always the source's bytes, never more than the
//! budget, its merged ranges agree with its pieces, and a protected byte is never dropped.

mod common;

use bytes::Bytes;
use common::pattern;
use kithara_stream::store::{MemoryStore, Store};
use proptest::prelude::*;

const LEN: u64 = 2_000;

fn source(from: u64, len: u64) -> Bytes {
    Bytes::from((from..from + len).map(pattern).collect::<Vec<u8>>())
}

/// Which bytes the store holds, read one by one through `get`.
fn held(store: &MemoryStore) -> Vec<bool> {
    (0..LEN).map(|pos| store.get(pos, 1).is_some()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(128)
    ))]

    #[test]
    fn model_memory_store_matches_the_source(
        budget in prop_oneof![Just(0u64), 1u64..1_200, Just(LEN)],
        keep_ends in 0u64..500,
        inserts in proptest::collection::vec((0u64..LEN, 1u64..400, 0u64..LEN, 0u64..400), 1..60),
    ) {
        let mut store = MemoryStore::new(budget).with_keep_ends(keep_ends);
        store.set_len(Some(LEN));
        for (at, len, window, window_len) in inserts {
            let len = len.min(LEN - at);
            let protect = window..(window + window_len).min(LEN);
            let before = held(&store);
            store.insert(at, &source(at, len), protect.clone());
            let after = held(&store);
            prop_assert!(store.held_bytes() <= budget);
            prop_assert_eq!(store.held_bytes(), after.iter().filter(|h| **h).count() as u64);
            for pos in protect {
                prop_assert!(!before[pos as usize] || after[pos as usize], "dropped protected {}", pos);
            }
            // The merged ranges are what the pieces hold, and the lookups agree with them.
            let mut ranges: Vec<std::ops::Range<u64>> = Vec::new();
            for (pos, h) in after.iter().enumerate() {
                let pos = pos as u64;
                match ranges.last_mut() {
                    Some(last) if *h && last.end == pos => last.end = pos + 1,
                    _ if *h => ranges.push(pos..pos + 1),
                    _ => {}
                }
            }
            prop_assert_eq!(store.ranges(), ranges.clone());
            for pos in (0..LEN).step_by(97) {
                let until = ranges.iter().find(|r| r.contains(&pos)).map_or(pos, |r| r.end);
                prop_assert_eq!(store.held_until(pos), until);
                let next = ranges.iter().find(|r| r.end > pos).map(|r| r.start.max(pos));
                prop_assert_eq!(store.next_held(pos), next);
                if let Some(bytes) = store.get(pos, 64) {
                    let want = source(pos, (until - pos).min(64)).slice(..bytes.len());
                    prop_assert_eq!(bytes, want);
                }
            }
        }
    }
}

/// The store as it was before its runs held their pieces: every piece in one ordered map,
/// the runs found by walking it, the piece worth least by a walk from either end. What
/// `MemoryStore` holds after any inserts must be exactly what this holds: the same pieces,
/// so the same evictions.
mod reference {
    use std::collections::BTreeMap;
    use std::ops::Range;

    use bytes::Bytes;

    const PIECE: usize = 64 * 1024;

    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Worth {
        Near(u64),
        End,
        Protected,
    }

    pub struct Reference {
        pub pieces: BTreeMap<u64, Bytes>,
        pub held: u64,
        budget: u64,
        keep_ends: u64,
        pub len: Option<u64>,
    }

    impl Reference {
        pub fn new(budget: u64, keep_ends: u64) -> Self {
            let pieces = BTreeMap::new();
            let (held, len) = (0, None);
            Self {
                pieces,
                held,
                budget,
                keep_ends,
                len,
            }
        }

        /// The end of the piece that holds `pos`, if one does.
        fn held_at(&self, pos: u64) -> Option<u64> {
            let (&at, b) = self.pieces.range(..=pos).next_back()?;
            let end = at + b.len() as u64;
            (pos < end).then_some(end)
        }

        pub fn ranges(&self) -> Vec<Range<u64>> {
            let mut out: Vec<Range<u64>> = Vec::new();
            for (&at, b) in &self.pieces {
                let end = at + b.len() as u64;
                match out.last_mut() {
                    Some(last) if last.end == at => last.end = end,
                    _ => out.push(at..end),
                }
            }
            out
        }

        pub fn insert(&mut self, pos: u64, bytes: &Bytes, protect: Range<u64>) -> u64 {
            if self.budget == 0 {
                return 0;
            }
            let end = pos + bytes.len() as u64;
            let mut stored = 0;
            let mut at = pos;
            while at < end {
                if let Some(piece_end) = self.held_at(at) {
                    at = piece_end;
                    continue;
                }
                let next = self
                    .pieces
                    .range(at..)
                    .next()
                    .map_or(end, |(&next, _)| next);
                let gap_end = next.min(end);
                let slice = bytes.slice((at - pos) as usize..(gap_end - pos) as usize);
                let want = gap_end - at;
                let fitted = self.insert_gap(at, slice, &protect);
                stored += fitted;
                if fitted < want {
                    break;
                }
                at = gap_end;
            }
            stored
        }

        fn insert_gap(&mut self, at: u64, gap: Bytes, protect: &Range<u64>) -> u64 {
            let want = gap.len() as u64;
            let worth = self.worth(at..at + want, protect);
            while self.held + want > self.budget {
                let Some((victim, w)) = self.least_worth(protect) else {
                    break;
                };
                if w >= worth {
                    break;
                }
                let bytes = self.pieces.remove(&victim).unwrap();
                self.held -= bytes.len() as u64;
            }
            let room = self.budget.saturating_sub(self.held).min(want);
            let mut offset = 0;
            while (offset as u64) < room {
                let len = PIECE.min(room as usize - offset);
                self.pieces
                    .insert(at + offset as u64, gap.slice(offset..offset + len));
                offset += len;
            }
            self.held += room;
            room
        }

        fn least_worth(&self, protect: &Range<u64>) -> Option<(u64, Worth)> {
            let worth =
                |(&at, b): (&u64, &Bytes)| (at, self.worth(at..at + b.len() as u64, protect));
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
}

/// One step of a reader's pattern: append where the last insert ended (a stream read in
/// order), or insert anywhere (a seek), with a window near the insert or anywhere.
#[derive(Debug, Clone)]
enum Step {
    Append { len: u64 },
    At { at: u64, len: u64 },
}

const BIG: u64 = 600_000;

fn step() -> impl Strategy<Value = (Step, u64, u64)> {
    let len = prop_oneof![4 => 1u64..20_000, 1 => 60_000u64..140_000];
    let step = prop_oneof![
        3 => len.clone().prop_map(|len| Step::Append { len }),
        1 => (0..BIG, len).prop_map(|(at, len)| Step::At { at, len }),
    ];
    // The window: its start relative to the insert (negative: behind it), its length.
    (step, 0u64..400_000, 0u64..300_000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(128)
    ))]

    /// Appends at the end of a run (the store's fast path), random inserts and evictions,
    /// interleaved, by reference (`insert`) or handed over (`Store::keep`): the store holds
    /// exactly the pieces the reference does, and says so through every lookup; `keep` gives
    /// the bytes back, unchanged, exactly when not all of them are held.
    #[test]
    fn model_memory_store_holds_what_the_reference_holds(
        budget in prop_oneof![1u64..100_000, 100_000u64..700_000, Just(BIG)],
        keep_ends in prop_oneof![Just(0u64), 0u64..100_000],
        known_len in any::<bool>(),
        steps in proptest::collection::vec((step(), any::<bool>()), 1..80),
    ) {
        static DATA: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
        let data = DATA.get_or_init(|| Bytes::from((0..BIG).map(pattern).collect::<Vec<u8>>()));
        let mut store = MemoryStore::new(budget).with_keep_ends(keep_ends);
        let mut reference = reference::Reference::new(budget, keep_ends);
        let len = known_len.then_some(BIG);
        store.set_len(len);
        reference.len = len;
        let mut end = 0;
        for ((step, behind, window_len), by_value) in steps {
            let (at, len) = match step {
                Step::Append { len } => (end, len),
                Step::At { at, len } => (at, len),
            };
            let len = len.min(BIG - at);
            if len == 0 {
                end = 0;
                continue;
            }
            end = at + len;
            let window = (at + len / 2).saturating_sub(behind);
            let protect = window..(window + window_len).min(BIG);
            let bytes = data.slice(at as usize..end as usize);
            let stored = if by_value {
                let (stored, back) = Store::keep(&mut store, at, bytes.clone(), protect.clone());
                let all_held = store.held_until(at) >= end;
                prop_assert_eq!(back.is_none(), all_held, "bytes back at {}..{}", at, end);
                if let Some(back) = back {
                    prop_assert_eq!(&back, &bytes);
                }
                stored
            } else {
                store.insert(at, &bytes, protect.clone())
            };
            prop_assert_eq!(stored, reference.insert(at, &bytes, protect));
            prop_assert_eq!(store.held_bytes(), reference.held);
            prop_assert_eq!(store.ranges(), reference.ranges());
            for (&piece, held) in &reference.pieces {
                let got = store.get(piece, usize::MAX);
                prop_assert_eq!(got.as_ref(), Some(held), "piece at {}", piece);
                let last = piece + held.len() as u64 - 1;
                prop_assert_eq!(store.get(last, 10).map(|b| b.len()), Some(1));
            }
        }
    }
}
