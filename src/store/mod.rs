//! Storage that keeps what was fetched: the byte ranges of a resource, held under a byte
//! budget (`alloc` only).
//!
//! A store sits between the fetches and the engine's ring: what a fetch delivers enters the
//! store, and a seek into held bytes is served from it without touching the network.
//! [`MemoryStore`] holds the ranges in memory; the source that fills and serves it is
//! `sources::CachedSource` (`std` feature).

mod memory;

pub use memory::MemoryStore;
