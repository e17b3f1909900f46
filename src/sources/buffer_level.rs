//! [`BufferLevel`] and [`BufferWatch`]: what a [`CachedSource`](super::CachedSource) holds.

use alloc::vec::Vec;
use core::ops::Range;
use std::sync::Arc;

/// What a [`CachedSource`] holds, for a player's buffer bar and spinner.
///
/// [`CachedSource`]: super::CachedSource
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BufferLevel {
    /// The byte ranges held, merged, in order.
    pub ranges: Vec<Range<u64>>,
    /// The position the source serves next (the engine's ring holds what lies between
    /// the reader and it).
    pub position: u64,
    /// Bytes held from `position` on without a gap.
    pub ahead: u64,
    /// Whether enough is held ahead to play: see [`StoreParams::with_watermarks`].
    ///
    /// [`StoreParams::with_watermarks`]: super::StoreParams::with_watermarks
    pub ready: bool,
    /// The resource's length, if known.
    pub total: Option<u64>,
}

/// The latest [`BufferLevel`] of a [`CachedSource`]: cloneable, readable from any thread.
///
/// [`CachedSource`]: super::CachedSource
#[derive(Clone)]
pub struct BufferWatch(pub(super) Arc<dyn Fn() -> BufferLevel + Send + Sync>);

impl BufferWatch {
    /// The buffer level now.
    pub fn get(&self) -> BufferLevel {
        (self.0)()
    }
}

impl core::fmt::Debug for BufferWatch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("BufferWatch").field(&self.get()).finish()
    }
}
