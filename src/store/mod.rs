//! Storage that keeps what was fetched: the byte ranges of a resource, held under a byte
//! budget.
//!
//! A store sits between the fetches and the engine's ring: what a fetch delivers enters the
//! store, and a seek into held bytes is served from it without touching the network. The
//! source that fills and serves a store is `sources::CachedSource` (`std` feature).
//!
//! - [`MemoryStore`] (`alloc` only) holds the ranges in memory, as [`Bytes`] shared with
//!   the network's buffers.
//! - [`DiskCache`] and [`DiskStore`] (`std` feature) keep them in files that outlive the
//!   process, under a disk budget across resources.
//!
//! Both implement [`Store`], the interface `CachedSource` uses; a store of your own can too.

#[cfg(feature = "std")]
mod disk;
#[cfg(feature = "std")]
mod disk_cache;
#[cfg(feature = "std")]
mod index_file;
mod memory;
mod pieces;
#[cfg(feature = "std")]
mod runs;

use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Range;

use bytes::Bytes;

#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub use disk::{DISK_CHUNK, DiskStore};
#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub use disk_cache::DiskCache;
pub use memory::MemoryStore;

/// What identifies one version of a resource: a store keeps it beside the bytes, so that
/// bytes of two versions are never served as one.
///
/// An HTTP fetch takes it from the response's `ETag` header, else from `Last-Modified`; a
/// fetch of your own may use any string that changes when the resource does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Validator {
    /// An HTTP `ETag` header's value, quotes and `W/` prefix included.
    ETag(String),
    /// An HTTP `Last-Modified` header's value.
    LastModified(String),
}

/// Where the byte ranges of one resource are kept, and how much of them: the interface a
/// `CachedSource` fills and serves from.
///
/// A store holds disjoint ranges of the resource's bytes. It decides what to keep: an
/// [`insert`](Self::insert) may store less than it is given (nothing, with a budget of 0),
/// and may drop other ranges to make room, but never any byte in the range it is told to
/// protect. Whatever it holds must be the resource's bytes at those positions, of the
/// version its [`validator`](Self::validator) names.
pub trait Store: Send + 'static {
    /// The most bytes the store can hold: a source fetches no more than this (or a
    /// minimum) in one request, since what goes past it could not be kept.
    fn budget(&self) -> u64;

    /// The bytes held from `pos` on, at most `max` of them (a store may return fewer:
    /// one piece, or one chunk read from a file), or `None` if `pos` is not held.
    ///
    /// A store that fails to read what it holds (a disk error) drops it and returns
    /// `None`: the source fetches it again.
    fn get(&mut self, pos: u64, max: usize) -> Option<Bytes>;

    /// The end of the held run that contains `pos`: `pos` itself if it is not held.
    fn held_until(&self, pos: u64) -> u64;

    /// The first held byte at or after `pos`, if any.
    fn next_held(&self, pos: u64) -> Option<u64>;

    /// The held ranges, merged, in order.
    fn ranges(&self) -> Vec<Range<u64>>;

    /// Stores what it can of `bytes`, the resource's bytes from `pos` on, skipping what is
    /// held and never dropping anything in `protect` to make room. Returns how many bytes
    /// it stored: from the first missing byte on, a prefix of what was missing.
    fn insert(&mut self, pos: u64, bytes: &Bytes, protect: Range<u64>) -> u64;

    /// [`insert`](Self::insert) with `bytes` handed over: how many bytes it stored, and
    /// `bytes` back unless all of them are held now (the caller may still need the rest).
    ///
    /// [`CachedSource`](crate::sources::CachedSource) stores what it fetches this way. The
    /// default calls `insert`. A store that keeps the `Bytes` it is given (a [`MemoryStore`]
    /// with zero copy) moves them in instead, which saves a reference count's increment and
    /// decrement per chunk; one that copies drops them once copied.
    fn keep(&mut self, pos: u64, bytes: Bytes, protect: Range<u64>) -> (u64, Option<Bytes>) {
        let stored = self.insert(pos, &bytes, protect);
        let all_held = self.held_until(pos) >= pos + bytes.len() as u64;
        (stored, (!all_held).then_some(bytes))
    }

    /// The resource's total length, if the store knows it (a store on disk remembers it).
    fn total_len(&self) -> Option<u64>;

    /// Tells the store the resource's total length.
    fn set_total_len(&mut self, len: Option<u64>);

    /// The version of the resource the held bytes are of, if known.
    fn validator(&self) -> Option<&Validator>;

    /// Names the version of the resource the held bytes are of.
    fn set_validator(&mut self, validator: Option<Validator>);

    /// Drops everything held.
    fn clear(&mut self);

    /// Takes note of a response that reports `validator` and `total_len`, before its
    /// bytes join what is held. Returns whether it is of another version than the held
    /// bytes: a validator or a length that differs from the one known. Then the store has
    /// dropped what it held, since it is stale, and taken the new version's validator and
    /// length.
    fn admit(&mut self, validator: Option<&Validator>, total_len: Option<u64>) -> bool {
        let other_validator =
            matches!((self.validator(), validator), (Some(held), Some(now)) if held != now);
        let other_len =
            matches!((self.total_len(), total_len), (Some(held), Some(now)) if held != now);
        if other_validator || other_len {
            self.clear();
            self.set_total_len(total_len);
            self.set_validator(validator.cloned());
            return true;
        }
        if self.validator().is_none() && validator.is_some() {
            self.set_validator(validator.cloned());
        }
        false
    }
}

/// The gaps of `at..end` in a set of held ranges that `held_until` and `next_held` describe
/// (as [`Store::held_until`] and [`Store::next_held`] do): its ranges not held, in order.
fn gaps<H, N>(at: u64, end: u64, held_until: H, next_held: N) -> impl Iterator<Item = Range<u64>>
where
    H: Fn(u64) -> u64,
    N: Fn(u64) -> Option<u64>,
{
    let mut at = at;
    core::iter::from_fn(move || {
        at = held_until(at);
        if at >= end {
            return None;
        }
        let gap_end = next_held(at).map_or(end, |next| next.min(end));
        let gap = at..gap_end;
        at = gap_end;
        Some(gap)
    })
}

impl Store for MemoryStore {
    fn budget(&self) -> u64 {
        MemoryStore::budget(self)
    }

    fn get(&mut self, pos: u64, max: usize) -> Option<Bytes> {
        MemoryStore::get_next(self, pos, max)
    }

    fn held_until(&self, pos: u64) -> u64 {
        MemoryStore::held_until(self, pos)
    }

    fn next_held(&self, pos: u64) -> Option<u64> {
        MemoryStore::next_held(self, pos)
    }

    fn ranges(&self) -> Vec<Range<u64>> {
        MemoryStore::ranges(self)
    }

    fn insert(&mut self, pos: u64, bytes: &Bytes, protect: Range<u64>) -> u64 {
        MemoryStore::insert(self, pos, bytes, protect)
    }

    fn keep(&mut self, pos: u64, bytes: Bytes, protect: Range<u64>) -> (u64, Option<Bytes>) {
        MemoryStore::keep(self, pos, bytes, protect)
    }

    fn total_len(&self) -> Option<u64> {
        MemoryStore::total_len(self)
    }

    fn set_total_len(&mut self, len: Option<u64>) {
        MemoryStore::set_len(self, len);
    }

    fn validator(&self) -> Option<&Validator> {
        MemoryStore::validator(self)
    }

    fn set_validator(&mut self, validator: Option<Validator>) {
        MemoryStore::set_validator(self, validator);
    }

    fn clear(&mut self) {
        MemoryStore::clear(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn etag(tag: &str) -> Option<Validator> {
        Some(Validator::ETag(tag.into()))
    }

    /// A store holding `0..10` of a resource of 100 bytes, of version `validator`.
    fn holding(validator: Option<Validator>) -> MemoryStore {
        let mut store = MemoryStore::new(1_000);
        store.insert(0, &Bytes::from_static(b"0123456789"), 0..0);
        store.set_len(Some(100));
        store.set_validator(validator);
        store
    }

    #[test]
    fn admit_learns_the_first_validator_and_keeps_the_bytes() {
        let mut store = holding(None);
        assert!(!store.admit(etag("a").as_ref(), Some(100)));
        assert_eq!(Store::validator(&store), etag("a").as_ref());
        assert_eq!(Store::ranges(&store), vec![0..10]);
    }

    #[test]
    fn admit_keeps_the_bytes_of_the_same_version_or_an_unknown_one() {
        let mut store = holding(etag("a"));
        assert!(!store.admit(etag("a").as_ref(), Some(100)));
        // A response that does not say keeps what is held: it cannot tell.
        assert!(!store.admit(None, Some(100)));
        assert!(!store.admit(etag("a").as_ref(), None));
        assert!(!store.admit(None, None));
        assert_eq!(Store::validator(&store), etag("a").as_ref());
        assert_eq!(Store::total_len(&store), Some(100));
        assert_eq!(Store::ranges(&store), vec![0..10]);
    }

    #[test]
    fn admit_of_another_validator_drops_the_bytes_and_adopts_the_new_version() {
        let mut store = holding(etag("a"));
        assert!(store.admit(etag("b").as_ref(), Some(200)));
        assert!(Store::ranges(&store).is_empty());
        assert_eq!(store.held_bytes(), 0);
        assert_eq!(Store::validator(&store), etag("b").as_ref());
        assert_eq!(Store::total_len(&store), Some(200));
        // An ETag and a Last-Modified of the same text are two versions.
        let mut store = holding(etag("x"));
        assert!(store.admit(Some(&Validator::LastModified("x".into())), Some(100)));
        // The new version is the one held now.
        assert!(!store.admit(Some(&Validator::LastModified("x".into())), Some(100)));
    }

    #[test]
    fn admit_of_another_length_is_another_version() {
        let mut store = holding(None);
        assert!(store.admit(None, Some(99)));
        assert!(Store::ranges(&store).is_empty());
        assert_eq!(Store::total_len(&store), Some(99));
        // With the same validator, too.
        let mut store = holding(etag("a"));
        assert!(store.admit(etag("a").as_ref(), Some(101)));
        assert!(Store::ranges(&store).is_empty());
        assert_eq!(Store::total_len(&store), Some(101));
        assert_eq!(Store::validator(&store), etag("a").as_ref());
    }

    #[test]
    fn admit_into_a_store_that_knows_nothing_changes_nothing() {
        let mut store = MemoryStore::new(1_000);
        store.insert(0, &Bytes::from_static(b"0123"), 0..0);
        assert!(!store.admit(etag("a").as_ref(), Some(100)));
        assert_eq!(Store::ranges(&store), vec![0..4]);
        assert_eq!(Store::validator(&store), etag("a").as_ref());
    }
}
