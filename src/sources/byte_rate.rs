//! [`ByteRate`]: the stream's bytes per second, as a player learns it after probing, for a
//! look-ahead counted in seconds.

use core::time::Duration;
use std::sync::Arc;

use crate::sync::AtomicLen;

/// The bytes per second the stream plays at, once known: a cloneable handle that a player
/// sets after probing the stream (from its bitrate, or its length over its duration), and a
/// [`CachedSource`](super::CachedSource) reads to turn its
/// [`look_ahead_time`](super::StoreParams::with_look_ahead_time) into bytes.
///
/// Unknown until set; it may be set again (a variable bitrate, a better estimate) or
/// cleared at any time, from any thread; the source takes the new rate at its next chunk.
///
/// ```
/// use kithara_stream::sources::ByteRate;
/// use std::time::Duration;
///
/// let rate = ByteRate::new();
/// assert_eq!(rate.get(), None);
/// rate.set(16_000); // a 128 kbit/s stream
/// assert_eq!(rate.get(), Some(16_000));
/// rate.set_from_duration(4_800_000, Duration::from_secs(300)); // 4.8 MB in 5 minutes
/// assert_eq!(rate.get(), Some(16_000));
/// rate.clear();
/// assert_eq!(rate.get(), None);
/// ```
#[derive(Debug, Clone)]
pub struct ByteRate(Arc<AtomicLen>);

impl Default for ByteRate {
    fn default() -> Self {
        Self::new()
    }
}

impl ByteRate {
    /// A rate not known yet.
    pub fn new() -> Self {
        Self(Arc::new(AtomicLen::new()))
    }

    /// Sets the rate to `bytes_per_second` (a bitrate in bit/s is `bytes_per_second * 8`).
    /// 0 clears it.
    pub fn set(&self, bytes_per_second: u64) {
        self.0
            .store((bytes_per_second > 0).then_some(bytes_per_second));
    }

    /// Sets the rate to `len` bytes over `duration` (the resource's length over the
    /// duration a decoder reports), rounded down; a zero duration, or a rate below one
    /// byte per second, clears it.
    pub fn set_from_duration(&self, len: u64, duration: Duration) {
        let rate = (u128::from(len) * 1_000_000_000)
            .checked_div(duration.as_nanos())
            .map_or(0, |rate| u64::try_from(rate).unwrap_or(u64::MAX));
        self.set(rate);
    }

    /// Forgets the rate: the look-ahead is counted in bytes again.
    pub fn clear(&self) {
        self.0.store(None);
    }

    /// The rate, if known.
    pub fn get(&self) -> Option<u64> {
        self.0.load()
    }
}
