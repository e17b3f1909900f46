//! Storage that keeps what was fetched: the byte ranges of a resource, held under a byte
//! budget.
//!
//! A store sits between the fetches and the engine's ring: what a fetch delivers enters the
//! store, and a seek into held bytes is served from it without touching the network. The
//! source that fills and serves a store is `sources::CachedSource` (`std` feature).
//!
//! - [`MemoryStore`] (`alloc` only) holds the ranges in memory, as [`Bytes`] shared with
//!   the network's buffers.
//! - `DiskCache` and `DiskStore` (`std` feature) keep them in files that outlive the
//!   process, under a disk budget across resources.
//!
//! Both implement [`Store`], the interface `CachedSource` uses; a store of your own can too.

mod memory;
mod runs;

use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Range;

use bytes::Bytes;

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
// `len` is the resource's length, not a count of what is held: no `is_empty` to pair.
#[allow(clippy::len_without_is_empty)]
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

    /// The resource's total length, if the store knows it (a store on disk remembers it).
    fn len(&self) -> Option<u64>;

    /// Tells the store the resource's total length.
    fn set_len(&mut self, len: Option<u64>);

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
        let other_len = matches!((self.len(), total_len), (Some(held), Some(now)) if held != now);
        if other_validator || other_len {
            self.clear();
            self.set_len(total_len);
            self.set_validator(validator.cloned());
            return true;
        }
        if self.validator().is_none() && validator.is_some() {
            self.set_validator(validator.cloned());
        }
        false
    }
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

    fn len(&self) -> Option<u64> {
        MemoryStore::len(self)
    }

    fn set_len(&mut self, len: Option<u64>) {
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
