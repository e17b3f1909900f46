//! `store::MemoryStore` against a reference: random inserts under random budgets, protected
//! windows and kept ends. What it holds is always the source's bytes, never more than the
//! budget, its merged ranges agree with its pieces, and a protected byte is never dropped.

mod common;

use bytes::Bytes;
use common::pattern;
use kithara_stream::store::MemoryStore;
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
