//! [`StoreParams`]: how a [`CachedSource`](super::CachedSource) keeps and fetches bytes.

use core::time::Duration;

/// How a [`CachedSource`] keeps and fetches bytes.
///
/// **Look-ahead.** Fetches run ahead of the position served up to the look-ahead. It is
/// counted in bytes ([`with_look_ahead`](Self::with_look_ahead), 1 MiB by default), or in
/// time ([`with_look_ahead_time`](Self::with_look_ahead_time)) once the stream's
/// [`ByteRate`] is known: then it is that time at that rate, capped by the look-ahead in
/// bytes (which also applies while the rate is unknown), and never less than twice the
/// forward skip in force, so that a fetch a seek waits on is not paused by it.
///
/// ```
/// use kithara_stream::sources::StoreParams;
/// use std::time::Duration;
///
/// // Up to a minute ahead once the rate is known, never more than 4 MiB (nor before).
/// let params = StoreParams::with_budget(8 << 20)
///     .with_look_ahead(4 << 20)
///     .with_look_ahead_time(Duration::from_secs(60));
/// assert_eq!(params.budget(), 8 << 20);
/// assert_eq!(params.look_ahead(None), 4 << 20);
/// // 128 kbit/s: 16 000 bytes a second.
/// assert_eq!(params.look_ahead(Some(16_000)), 960_000);
/// // 1 kbit/s: a minute is 7 500 bytes, below twice the forward skip (256 KiB by default).
/// assert_eq!(params.look_ahead(Some(125)), 512 << 10);
/// ```
///
/// [`CachedSource`]: super::CachedSource
/// [`ByteRate`]: super::ByteRate
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreParams {
    pub(super) budget: u64,
    pub(super) look_ahead: u64,
    look_ahead_time: Option<Duration>,
    forward_skip: u64,
    pub(super) max_fetches: usize,
    pub(super) keep_ends: u64,
    pub(super) zero_copy: bool,
    pub(super) low_water: u64,
    pub(super) high_water: u64,
}

impl StoreParams {
    /// Keeps at most `bytes` of the resource. 0 keeps nothing: every seek fetches, as a
    /// [`RangeSource`](super::RangeSource) does.
    ///
    /// The other settings start at: look-ahead 1 MiB, forward skip 256 KiB, 2 fetches in
    /// flight, head and tail kept 64 KiB each, watermarks 64 KiB (low) and 256 KiB (high),
    /// and what is kept copied into the store's own memory (not zero copy).
    pub fn with_budget(bytes: u64) -> Self {
        Self {
            budget: bytes,
            look_ahead: 1 << 20,
            look_ahead_time: None,
            forward_skip: 256 << 10,
            max_fetches: 2,
            keep_ends: 64 << 10,
            zero_copy: false,
            low_water: 64 << 10,
            high_water: 256 << 10,
        }
    }

    /// The byte budget.
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// Fetches into the store at most `bytes` ahead of the position served (within the
    /// budget); the fetch pauses there until the reader catches up.
    ///
    /// # Panics
    ///
    /// If `bytes` is 0.
    #[must_use]
    #[track_caller]
    pub fn with_look_ahead(mut self, bytes: u64) -> Self {
        assert!(bytes > 0, "look_ahead must be greater than zero");
        self.look_ahead = bytes;
        self
    }

    /// Fetches into the store at most `time` ahead of the position served, at the stream's
    /// byte rate, once it is known: a player tells it through the source's
    /// [`byte_rate`](super::CachedSource::byte_rate) handle, after probing the stream. The
    /// look-ahead in bytes ([`with_look_ahead`](Self::with_look_ahead)) stays the cap, and
    /// is what applies while the rate is unknown; see [`look_ahead`](Self::look_ahead).
    ///
    /// # Panics
    ///
    /// If `time` is zero.
    #[must_use]
    #[track_caller]
    pub fn with_look_ahead_time(mut self, time: Duration) -> Self {
        assert!(!time.is_zero(), "look_ahead_time must be greater than zero");
        self.look_ahead_time = Some(time);
        self
    }

    /// The look-ahead in force, in bytes, at `rate` bytes per second (`None`: unknown): the
    /// [`look_ahead_time`](Self::with_look_ahead_time) at `rate`, within the
    /// [`look_ahead`](Self::with_look_ahead) in bytes and at least twice the forward skip
    /// in force; the look-ahead in bytes without a time or a rate.
    pub fn look_ahead(&self, rate: Option<u64>) -> u64 {
        let (Some(time), Some(rate)) = (self.look_ahead_time, rate) else {
            return self.look_ahead;
        };
        let timed = u128::from(rate) * time.as_nanos() / 1_000_000_000;
        let timed = u64::try_from(timed).unwrap_or(u64::MAX);
        timed.max(2 * self.skip()).min(self.look_ahead).max(1)
    }

    /// These parameters with the look-ahead in force at `rate` as their look-ahead in
    /// bytes (the forward skip in force stays the same: see [`Self::look_ahead`]).
    pub(super) fn at_rate(&self, rate: Option<u64>) -> Self {
        Self {
            look_ahead: self.look_ahead(rate),
            ..*self
        }
    }

    /// A seek at most `bytes` past where a fetch has reached waits for that fetch (on the
    /// same connection) instead of opening a new one. At most half the look-ahead is used.
    #[must_use]
    pub fn with_forward_skip(mut self, bytes: u64) -> Self {
        self.forward_skip = bytes;
        self
    }

    /// The forward skip in force: at most half the look-ahead, so that a fetch waited on
    /// is never paused by the look-ahead.
    pub(super) fn skip(&self) -> u64 {
        self.forward_skip.min(self.look_ahead / 2)
    }

    /// At most `fetches` fetches in flight: a seek away from a fetch lets it go on filling
    /// the store while the new position is fetched, as long as there is room for both.
    ///
    /// # Panics
    ///
    /// If `fetches` is 0.
    #[must_use]
    #[track_caller]
    pub fn with_max_fetches(mut self, fetches: usize) -> Self {
        assert!(fetches > 0, "max_fetches must be at least 1");
        self.max_fetches = fetches;
        self
    }

    /// Keeps the first and last `bytes` of the resource over the rest (a decoder's probe
    /// reads them); see [`MemoryStore::with_keep_ends`].
    ///
    /// [`MemoryStore::with_keep_ends`]: crate::store::MemoryStore::with_keep_ends
    #[must_use]
    pub fn with_keep_ends(mut self, bytes: u64) -> Self {
        self.keep_ends = bytes;
        self
    }

    /// Keeps every fetched chunk as it comes, without a copy; see
    /// [`MemoryStore::with_zero_copy`] for when that is right. `false` by default: what the
    /// store keeps is copied into its own memory, so that a slice of a network client's
    /// read buffer does not hold the whole buffer.
    ///
    /// [`MemoryStore::with_zero_copy`]: crate::store::MemoryStore::with_zero_copy
    #[must_use]
    pub fn with_zero_copy(mut self, zero_copy: bool) -> Self {
        self.zero_copy = zero_copy;
        self
    }

    /// The buffer level's watermarks: [`BufferLevel::ready`] turns true once `high` bytes
    /// ahead of the position are held (or the rest of the resource is), and false again
    /// only below `low`, so that a spinner does not flicker.
    ///
    /// # Panics
    ///
    /// If `low > high`.
    ///
    /// [`BufferLevel::ready`]: super::BufferLevel::ready
    #[must_use]
    #[track_caller]
    pub fn with_watermarks(mut self, low: u64, high: u64) -> Self {
        assert!(low <= high, "the low watermark is above the high one");
        self.low_water = low;
        self.high_water = high;
        self
    }
}
