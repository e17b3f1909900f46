//! [`CachedSource`]: a seekable source that keeps what it fetched in a [`MemoryStore`], so
//! that a seek into fetched bytes never touches the network.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::future::Future;
use core::ops::Range;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::{Buf, Bytes};
use futures_core::Stream;

use super::byte_rate::ByteRate;
use super::fetch::{ByteRange, Fetch, RangeMismatch, RangeResponse};
use super::range::Checked;
use super::{Progress, ProgressWatch, WithProgress};
use crate::error::StreamError;
use crate::params::StreamParams;
use crate::source::{EngineSource, OpenResult, WriterTask};
use crate::store::{MemoryStore, Store};
use std::sync::Arc;

use crate::sync::AtomicLen;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreParams {
    budget: u64,
    look_ahead: u64,
    look_ahead_time: Option<Duration>,
    forward_skip: u64,
    max_fetches: usize,
    keep_ends: u64,
    zero_copy: bool,
    low_water: u64,
    high_water: u64,
}

impl StoreParams {
    /// Keeps at most `bytes` of the resource. 0 keeps nothing: every seek fetches, as a
    /// [`RangeSource`](super::RangeSource) does.
    ///
    /// The other settings start at: look-ahead 1 MiB, forward skip 256 KiB, 2 fetches in
    /// flight, head and tail kept 64 KiB each, watermarks 64 KiB (low) and 256 KiB (high).
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
    /// [`byte_rate`](CachedSource::byte_rate) handle, after probing the stream. The
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
    fn at_rate(&self, rate: Option<u64>) -> Self {
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
    fn skip(&self) -> u64 {
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
    #[must_use]
    pub fn with_keep_ends(mut self, bytes: u64) -> Self {
        self.keep_ends = bytes;
        self
    }

    /// Keeps every fetched chunk as it comes, never copying it, even a slice of memory the
    /// fetch shares (a network client's read buffer); see [`MemoryStore::with_zero_copy`].
    /// `false` by default: a shared chunk is copied into the store's own memory.
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
    #[must_use]
    #[track_caller]
    pub fn with_watermarks(mut self, low: u64, high: u64) -> Self {
        assert!(low <= high, "the low watermark is above the high one");
        self.low_water = low;
        self.high_water = high;
        self
    }
}

/// What a [`CachedSource`] holds, for a player's buffer bar and spinner.
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
    pub ready: bool,
    /// The resource's length, if known.
    pub total: Option<u64>,
}

/// The latest [`BufferLevel`] of a [`CachedSource`]: cloneable, readable from any thread.
#[derive(Clone)]
pub struct BufferWatch(Arc<dyn Fn() -> BufferLevel + Send + Sync>);

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

/// A seekable [`EngineSource`] over a [`Fetch`] that keeps what it fetched in a
/// [`MemoryStore`] under a byte budget ([`StoreParams`]).
///
/// - A seek into held bytes is served from the store, at once, without a fetch.
/// - At the first byte not held, it fetches only the hole: up to the next held byte, and
///   no more than the budget (at least 256 KiB) in one request (a [`ByteRange`] with an
///   end; with a budget of 0, to the end of the resource). It starts that fetch as soon as
///   the serving position comes within the look-ahead of the hole, not when the held bytes
///   run out.
/// - A seek away from a fetch that is still delivering does not drop it: it goes on filling
///   the store while the new position is fetched (at most
///   [`max_fetches`](StoreParams::with_max_fetches) in flight; the one farthest from the
///   position gives way). A seek a little ahead of a fetch
///   ([`forward_skip`](StoreParams::with_forward_skip)) waits for it on the same connection.
/// - Fetches run ahead of the position served up to the
///   [`look_ahead`](StoreParams::with_look_ahead), within the budget; a fetch that finds
///   no room pauses (the connection's own flow control holds the server back) until the
///   reader catches up. With a [`look_ahead_time`](StoreParams::with_look_ahead_time), a
///   player that has probed the stream tells the source its rate through
///   [`byte_rate`](Self::byte_rate), and the look-ahead is counted in seconds from then
///   on (within the look-ahead in bytes).
/// - Eviction never drops the look-ahead window and keeps the resource's head and tail
///   longest ([`MemoryStore`]).
///
/// Every response is checked as [`RangeSource`](super::RangeSource) checks it (start, end,
/// length). A fetch error at the position served ends the stream with
/// `StreamError::Source(e)` (a seek resumes); an error of a fetch elsewhere only drops that
/// fetch.
///
/// **Messages.** A [`Fetch`] carries bytes only, so no `Control` or `Event` of the resource
/// passes through the store. The source emits a [`Progress`] event after each chunk it
/// serves, whether from the store or from the network, in stream order; its
/// [`buffer_watch`](Self::buffer_watch) shows what is held.
///
/// ```
/// use bytes::Bytes;
/// use futures::stream;
/// use kithara_stream::exec::block_on;
/// use kithara_stream::io::BlockingReader;
/// use kithara_stream::sources::{ByteRange, CachedSource, RangeResponse, StoreParams};
/// use kithara_stream::{Engine, StreamParams};
/// use std::io::{Read, Seek, SeekFrom};
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let data = Bytes::from((0..100_000u32).map(|i| i as u8).collect::<Vec<u8>>());
/// let fetches = Arc::new(AtomicUsize::new(0));
/// let counted = fetches.clone();
/// let fetch = move |range: ByteRange| {
///     counted.fetch_add(1, Ordering::SeqCst);
///     let end = range.end.unwrap_or(100_000).min(100_000) as usize;
///     let body = data.slice(range.start as usize..end);
///     let response = RangeResponse::new(stream::iter([Ok::<_, std::io::Error>(body)]))
///         .with_total_len(Some(100_000))
///         .with_start(Some(range.start));
///     async move { Ok(response) }
/// };
/// let source = CachedSource::new(fetch, StoreParams::with_budget(1 << 20));
/// let (engine, handle, stream) = Engine::build(source, StreamParams::default());
/// std::thread::spawn(move || block_on(engine.run()));
/// let mut reader = BlockingReader::new(stream, handle);
/// let mut all = Vec::new();
/// reader.read_to_end(&mut all).unwrap();
/// // Back to the start: served from the store.
/// reader.seek(SeekFrom::Start(0)).unwrap();
/// let mut again = Vec::new();
/// reader.read_to_end(&mut again).unwrap();
/// assert_eq!(all, again);
/// assert_eq!(fetches.load(Ordering::SeqCst), 1);
/// ```
pub struct CachedSource<F: Fetch, S: Store = MemoryStore> {
    shared: Arc<Mutex<Shared<F, S>>>,
    fetch: Arc<F>,
    len: Arc<AtomicLen>,
    watch: ProgressWatch,
    rate: ByteRate,
    params: StoreParams,
}

impl<F: Fetch> CachedSource<F> {
    /// A source that fetches through `fetch` and keeps what it fetched in memory, as
    /// `params` say.
    pub fn new(fetch: F, params: StoreParams) -> Self {
        let store = MemoryStore::new(params.budget)
            .with_keep_ends(params.keep_ends)
            .with_zero_copy(params.zero_copy);
        Self::with_store(fetch, store, params)
    }
}

impl<F: Fetch, S: Store> CachedSource<F, S> {
    /// A source that fetches through `fetch` and keeps what it fetched in `store` (a
    /// `DiskStore`, say), which has its own budget: `params`' budget and kept ends are
    /// not used.
    ///
    /// What the store already holds is served without a fetch, and a length it knows is
    /// the stream's length from the start. A response of another version of the resource
    /// than the one held ([`Store::admit`]) makes the store drop what it held, and fails
    /// the stream with [`RangeMismatch::Changed`](super::RangeMismatch::Changed) if any
    /// byte was passed on already (whichever fetch, for whichever position, saw the
    /// change); a new attempt starts over on the new version, and its length.
    pub fn with_store(fetch: F, store: S, params: StoreParams) -> Self {
        let len = AtomicLen::new();
        len.store(store.total_len());
        Self {
            shared: Arc::new(Mutex::new(Shared {
                store,
                fetches: Vec::new(),
                version: Version::default(),
                position: 0,
                ready: false,
                total: None,
                failed_at: None,
            })),
            fetch: Arc::new(fetch),
            len: Arc::new(len),
            watch: ProgressWatch::default(),
            rate: ByteRate::new(),
            params,
        }
    }

    /// Sets the total length in advance (from a `HEAD` request or a playlist, say).
    #[must_use]
    pub fn with_total_len(self, total_len: u64) -> Self {
        self.len.store(Some(total_len));
        self
    }

    /// The in-band progress, as the engine takes each chunk (see [`ProgressWatch`]).
    pub fn progress_watch(&self) -> ProgressWatch {
        self.watch.clone()
    }

    /// The stream's byte rate, for a [`look_ahead_time`](StoreParams::with_look_ahead_time):
    /// a handle to keep before handing the source to the engine, and to
    /// [`set`](ByteRate::set) once the rate is known (after probing, say). Until then, and
    /// without a look-ahead time, the look-ahead is counted in bytes.
    ///
    /// ```
    /// use kithara_stream::sources::{ByteRange, CachedSource, RangeResponse, StoreParams};
    /// use std::time::Duration;
    ///
    /// let fetch = |range: ByteRange| async move {
    ///     Ok::<_, std::io::Error>(RangeResponse::new(futures::stream::empty()))
    /// };
    /// let params = StoreParams::with_budget(32 << 20)
    ///     .with_look_ahead(8 << 20)
    ///     .with_look_ahead_time(Duration::from_secs(60));
    /// let source = CachedSource::new(fetch, params);
    /// let rate = source.byte_rate();
    /// // ... the engine runs the source; a decoder probes the stream: 192 kbit/s.
    /// rate.set(192_000 / 8);
    /// assert_eq!(params.look_ahead(rate.get()), 1_440_000); // a minute at 24 000 B/s
    /// ```
    pub fn byte_rate(&self) -> ByteRate {
        self.rate.clone()
    }

    /// What the store holds (see [`BufferLevel`]); clone it before handing the source to
    /// the engine.
    pub fn buffer_watch(&self) -> BufferWatch {
        let shared = self.shared.clone();
        BufferWatch(Arc::new(move || {
            let shared = lock(&shared);
            let position = shared.position;
            BufferLevel {
                ranges: shared.store.ranges(),
                position,
                ahead: shared.store.held_until(position) - position,
                ready: shared.ready,
                total: shared.total,
            }
        }))
    }

    /// A writer task that serves from `pos`: at once if `pos` is held, at or past the end,
    /// or coming on a fetch in flight; otherwise once the hole's fetch has answered.
    fn start(&self, pos: u64) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
        let total = self.len.load();
        let mut fetch = None;
        {
            let mut shared = lock(&self.shared);
            shared.position = pos;
            shared.failed_at = None;
            let past_end = total.is_some_and(|total| pos >= total);
            let held = shared.store.next_held(pos) == Some(pos);
            if !past_end && !held && shared.serving(pos, &self.params).is_none() {
                let range = shared.hole(pos, total);
                fetch = Some((range, self.fetch.fetch(range)));
            }
        }
        let body = Served {
            shared: self.shared.clone(),
            fetch: self.fetch.clone(),
            len: self.len.clone(),
            rate: self.rate.clone(),
            params: self.params,
            pos,
            epoch: None,
            batch: VecDeque::new(),
            done: false,
        };
        let (shared, len, watch, params) = (
            self.shared.clone(),
            self.len.clone(),
            self.watch.clone(),
            self.params,
        );
        async move {
            if let Some((range, fetch)) = fetch {
                let response = fetch.await.map_err(StreamError::Source)?;
                let mut shared = lock(&shared);
                let epoch = shared
                    .admit(&response, &len)
                    .map_err(|mismatch| StreamError::Source(mismatch.into()))?;
                let body = Checked::new(response, range, len.clone())
                    .map_err(|mismatch| StreamError::Source(mismatch.into()))?;
                shared.add(InFlight::streaming(range, body, epoch), pos, &params);
            }
            let total = len.load();
            Ok((
                WriterTask::new(WithProgress::new(body, pos, total, watch)),
                (),
            ))
        }
    }
}

impl<F: Fetch, S: Store> core::fmt::Debug for CachedSource<F, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CachedSource")
            .field("params", &self.params)
            .field("len", &self.len.load())
            .finish_non_exhaustive()
    }
}

impl<F: Fetch, S: Store> EngineSource for CachedSource<F, S> {
    type Error = F::Error;
    type Control = ();
    type Event = Progress;

    fn open(
        &self,
        _params: StreamParams,
    ) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
        self.start(0)
    }

    /// Serves from `pos`: from the store if it holds `pos`, else from a fetch of the hole.
    fn seek_bytes(
        &self,
        pos: u64,
        _control: (),
    ) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
        self.start(pos)
    }

    fn supports_seek(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        self.len.load()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

type Opening<F> = Pin<
    Box<dyn Future<Output = Result<RangeResponse<<F as Fetch>::Body>, <F as Fetch>::Error>> + Send>,
>;

/// One fetch in flight.
enum Fetching<F: Fetch> {
    /// Waiting for the response.
    Opening(Opening<F>),
    /// Delivering its body.
    Streaming(Pin<Box<Checked<F::Body>>>),
}

struct InFlight<F: Fetch> {
    /// The range asked for.
    range: ByteRange,
    /// The next byte it delivers.
    pos: u64,
    /// Bytes it delivered at or past the position served that the store had no room for,
    /// and their offset: passed on from here, and the fetch pauses until they are.
    stash: Option<(u64, Bytes)>,
    /// The [`Version::epoch`] its response was admitted in.
    epoch: u64,
    state: Fetching<F>,
}

impl<F: Fetch> InFlight<F> {
    fn streaming(range: ByteRange, body: Checked<F::Body>, epoch: u64) -> Self {
        Self {
            range,
            pos: range.start,
            stash: None,
            epoch,
            state: Fetching::Streaming(Box::pin(body)),
        }
    }

    fn opening(range: ByteRange, fetch: Opening<F>) -> Self {
        Self {
            range,
            pos: range.start,
            stash: None,
            epoch: 0,
            state: Fetching::Opening(fetch),
        }
    }

    /// Whether it will deliver `pos` soon: `pos` is in its range, in its stash or at most
    /// `forward_skip` ahead of where it is.
    fn serves(&self, pos: u64, params: &StoreParams) -> bool {
        let in_stash = self
            .stash
            .as_ref()
            .is_some_and(|(at, bytes)| (*at..*at + bytes.len() as u64).contains(&pos));
        let coming = self.pos <= pos && pos <= self.pos.saturating_add(params.skip());
        self.range.end.is_none_or(|end| pos < end) && (in_stash || coming)
    }
}

/// What draining a fetch came to.
enum Drained<E> {
    /// It delivered what it could (maybe nothing) and waits: for the network, the reader
    /// or room.
    Waiting {
        delivered: bool,
    },
    /// It ended, or is of no more use: drop it.
    Done,
    Failed(E),
    /// Its response is of another version than bytes passed on: the stream's error,
    /// whichever position the fetch was for.
    Changed(E),
}

/// The smallest range a fetch asks for when the store's budget is smaller.
const MIN_SPAN: u64 = 256 << 10;

/// Which version of the resource a source's bytes are of.
#[derive(Debug, Default)]
struct Version {
    /// Counts the changes of version: a fetch admitted in an earlier epoch brings stale
    /// bytes and is dropped.
    epoch: u64,
    /// Whether the source has passed any byte on.
    served: bool,
}

impl Version {
    /// Admits `response` into `store`: the epoch its bytes belong to, or
    /// [`RangeMismatch::Changed`] if it is of another version than bytes already passed on.
    ///
    /// Either way a change starts a new epoch with the new version's length: the store
    /// has dropped the old version, the fetches admitted before are stale, and a writer
    /// task that passed bytes of the old version on fails (see `Served::epoch`).
    fn admit<S: Store, B>(
        &mut self,
        store: &mut S,
        response: &RangeResponse<B>,
        len: &AtomicLen,
    ) -> Result<u64, RangeMismatch> {
        if store.admit(response.validator.as_ref(), response.total_len) {
            // The store holds the new version now: the fetches admitted before bring
            // stale bytes, and the length is the new one's.
            self.epoch += 1;
            len.store(response.total_len);
            if self.served {
                // Bytes of the old version were passed on: the reader must know.
                return Err(RangeMismatch::Changed);
            }
        }
        Ok(self.epoch)
    }
}

/// What the writer tasks of one source share: the store and the fetches in flight.
struct Shared<F: Fetch, S> {
    store: S,
    fetches: Vec<InFlight<F>>,
    version: Version,
    /// The position the current writer task serves next.
    position: u64,
    ready: bool,
    total: Option<u64>,
    /// Where a fetch that did not serve the position failed: not fetched again ahead of
    /// need; the fetch that reaches it there surfaces its error. Cleared by a seek.
    failed_at: Option<u64>,
}

impl<F: Fetch, S: Store> Shared<F, S> {
    /// The index of a fetch in flight that will deliver `pos`.
    fn serving(&self, pos: u64, params: &StoreParams) -> Option<usize> {
        self.fetches.iter().position(|f| f.serves(pos, params))
    }

    /// The hole at `pos`: from `pos` to the next held byte, and no more than the store can
    /// keep (at least [`MIN_SPAN`]), so that a fetch dropped by a seek has not asked the
    /// server for more; to the end of the resource with a budget of 0 (nothing is kept).
    fn hole(&self, pos: u64, total: Option<u64>) -> ByteRange {
        let budget = self.store.budget();
        // Without a known length a span could not tell the resource's end from a cut.
        let span =
            (budget > 0 && total.is_some()).then(|| pos.saturating_add(budget.max(MIN_SPAN)));
        let end = match (self.store.next_held(pos), span) {
            (Some(next), Some(span)) => Some(next.min(span)),
            (next, span) => next.or(span),
        };
        match end {
            Some(end) if end > pos && total.is_none_or(|total| end < total) => {
                ByteRange::new(pos, end)
            }
            _ => ByteRange::from(pos),
        }
    }

    /// Admits `response` (see [`Version::admit`]).
    fn admit<B>(
        &mut self,
        response: &RangeResponse<B>,
        len: &AtomicLen,
    ) -> Result<u64, RangeMismatch> {
        self.version.admit(&mut self.store, response, len)
    }

    /// Adds a fetch; if there are too many, drops the one farthest from `pos` that does not
    /// serve it.
    fn add(&mut self, fetch: InFlight<F>, pos: u64, params: &StoreParams) {
        self.fetches.push(fetch);
        while self.fetches.len() > params.max_fetches {
            let victim = self
                .fetches
                .iter()
                .enumerate()
                .filter(|(_, f)| !f.serves(pos, params))
                .max_by_key(|(_, f)| f.pos.abs_diff(pos))
                .map(|(i, _)| i);
            match victim {
                Some(i) => drop(self.fetches.swap_remove(i)),
                None => break,
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The bytes of a [`CachedSource`] from one position on: from the store where it holds
    /// them, from the fetches in flight where it does not.
    struct Served<F: Fetch, S> {
        shared: Arc<Mutex<Shared<F, S>>>,
        fetch: Arc<F>,
        len: Arc<AtomicLen>,
        rate: ByteRate,
        // The parameters; each poll takes the look-ahead in force at `rate` from them.
        params: StoreParams,
        // The next byte to pass on.
        pos: u64,
        // The `Version::epoch` of the bytes it passed on, once it has: a change of version
        // after that fails it, so that bytes of two versions never follow each other.
        epoch: Option<u64>,
        // Bytes taken under the last lock and not passed on yet, in order (see `BATCH`).
        batch: VecDeque<Bytes>,
        done: bool,
    }
}

/// How many bytes a [`Served`] takes under one lock, at most (it takes at least one piece):
/// the lock, the look-up of the held run and the prefetch check are paid once for them.
/// Small against the ring, so that what a seek drops is little.
const BATCH: usize = 64 << 10;

impl<F: Fetch, S: Store> Shared<F, S> {
    /// Drains every fetch in flight as far as it goes. Whether any delivered or ended, or
    /// the error of the one serving `pos`.
    fn pump(
        &mut self,
        cx: &mut Context<'_>,
        pos: u64,
        params: &StoreParams,
        len: &Arc<AtomicLen>,
    ) -> Result<bool, F::Error> {
        self.store.set_total_len(len.load());
        let mut progressed = false;
        let mut i = 0;
        while i < self.fetches.len() {
            match self.drain(i, cx, pos, params, len) {
                Drained::Waiting { delivered } => {
                    progressed |= delivered;
                    i += 1;
                }
                Drained::Done => {
                    drop(self.fetches.swap_remove(i));
                    progressed = true;
                }
                Drained::Changed(error) => {
                    drop(self.fetches.swap_remove(i));
                    return Err(error);
                }
                Drained::Failed(error) => {
                    let failed = self.fetches.swap_remove(i);
                    if failed.serves(pos, params) {
                        return Err(error);
                    }
                    self.failed_at = Some(failed.range.start);
                    progressed = true;
                }
            }
        }
        Ok(progressed)
    }

    /// Polls fetch `i` until it waits, storing what it delivers.
    fn drain(
        &mut self,
        i: usize,
        cx: &mut Context<'_>,
        pos: u64,
        params: &StoreParams,
        len: &Arc<AtomicLen>,
    ) -> Drained<F::Error> {
        let Self {
            store,
            fetches,
            version,
            ..
        } = self;
        let (before, rest) = fetches.split_at_mut(i);
        let (fetch, after) = rest.split_first_mut().expect("fetch i is in flight");
        let mut delivered = false;
        loop {
            // Admitted before the version changed: its bytes are stale.
            if matches!(fetch.state, Fetching::Streaming(_)) && fetch.epoch != version.epoch {
                return Drained::Done;
            }
            // Run into bytes another fetch delivered and the store holds: it would only
            // bring them again. (The store is asked last: most often there is no other
            // fetch.)
            let overtaken = fetch.stash.is_none()
                && before
                    .iter()
                    .chain(after.iter())
                    .any(|ahead| ahead.range.start <= fetch.pos && fetch.pos < ahead.pos)
                && store.next_held(fetch.pos) == Some(fetch.pos);
            if overtaken {
                return Drained::Done;
            }
            if let Some((at, bytes)) = &fetch.stash {
                if at + bytes.len() as u64 > pos {
                    return Drained::Waiting { delivered };
                }
                fetch.stash = None;
            }
            if fetch.pos >= pos.saturating_add(params.look_ahead) {
                return Drained::Waiting { delivered };
            }
            match &mut fetch.state {
                Fetching::Opening(opening) => match opening.as_mut().poll(cx) {
                    Poll::Pending => return Drained::Waiting { delivered },
                    Poll::Ready(Err(error)) => return Drained::Failed(error),
                    Poll::Ready(Ok(response)) => {
                        match version.admit(store, &response, len) {
                            Ok(epoch) => fetch.epoch = epoch,
                            Err(changed) => return Drained::Changed(changed.into()),
                        }
                        match Checked::new(response, fetch.range, len.clone()) {
                            Ok(body) => fetch.state = Fetching::Streaming(Box::pin(body)),
                            Err(mismatch) => return Drained::Failed(mismatch.into()),
                        }
                    }
                },
                Fetching::Streaming(body) => match body.as_mut().poll_next(cx) {
                    Poll::Pending => return Drained::Waiting { delivered },
                    Poll::Ready(None) => return Drained::Done,
                    Poll::Ready(Some(Err(error))) => return Drained::Failed(error),
                    Poll::Ready(Some(Ok(bytes))) => {
                        delivered = true;
                        // Of no use, and not the way to `pos` either: drop it. Whether `pos`
                        // is held is asked after the delivery, which stored nothing if it was
                        // of no use, and never drops `pos` (it is protected).
                        let serves = fetch.serves(pos, params);
                        let useful = deliver(store, fetch, bytes, pos, params)
                            || (serves && store.next_held(pos) != Some(pos));
                        if !useful {
                            return Drained::Done;
                        }
                    }
                },
            }
        }
    }

    /// The bytes at `pos`, from the store or from a fetch's stash.
    fn take(&mut self, pos: u64) -> Option<Bytes> {
        if let Some(bytes) = self.store.get(pos, usize::MAX) {
            return Some(bytes);
        }
        self.fetches.iter_mut().find_map(|fetch| {
            let (at, bytes) = fetch.stash.as_ref()?;
            if !(*at..*at + bytes.len() as u64).contains(&pos) {
                return None;
            }
            let (at, mut bytes) = fetch.stash.take()?;
            bytes.advance((pos - at) as usize);
            Some(bytes)
        })
    }

    /// Starts fetching the first hole after `pos` (`hole`, where the held run at `pos`
    /// ends) if it lies within the look-ahead, no fetch serves it and a fetch may be added
    /// without dropping another.
    fn prefetch(
        &mut self,
        pos: u64,
        hole: u64,
        fetch: &F,
        params: &StoreParams,
        total: Option<u64>,
    ) {
        let within = hole < pos.saturating_add(params.look_ahead - params.skip());
        if !within
            || self.failed_at == Some(hole)
            || total.is_some_and(|total| hole >= total)
            || self.fetches.len() >= params.max_fetches
            || self.serving(hole, params).is_some()
        {
            return;
        }
        let range = self.hole(hole, total);
        self.fetches
            .push(InFlight::opening(range, Box::pin(fetch.fetch(range))));
    }

    /// Publishes the level at `pos`, whose held run ends at `held_until`, for the buffer
    /// watch.
    fn level(&mut self, pos: u64, held_until: u64, params: &StoreParams, total: Option<u64>) {
        self.position = pos;
        self.total = total;
        let ahead = held_until - pos;
        if ahead >= params.high_water || total.is_some_and(|total| pos + ahead >= total) {
            self.ready = true;
        } else if ahead < params.low_water {
            self.ready = false;
        }
    }
}

/// Stores `bytes`, which `fetch` delivered at its position; stashes what is at or past
/// `pos` and did not fit. Whether any of it was of use (stored, or still to pass on): a
/// fetch that only brings what is held already, or what cannot be kept, is of no use.
fn deliver<F: Fetch, S: Store>(
    store: &mut S,
    fetch: &mut InFlight<F>,
    bytes: Bytes,
    pos: u64,
    params: &StoreParams,
) -> bool {
    let at = fetch.pos;
    let end = at + bytes.len() as u64;
    fetch.pos = end;
    let (stored, rest) = store.keep(at, bytes, pos..pos.saturating_add(params.look_ahead));
    let from = at.max(pos);
    if let Some(mut rest) = rest.filter(|_| from < end) {
        let missing = store.held_until(from);
        if missing < end {
            rest.advance((missing - at) as usize);
            fetch.stash = Some((missing, rest));
            return true;
        }
    }
    stored > 0
}

impl<F: Fetch, S: Store> Stream for Served<F, S> {
    type Item = Result<Bytes, F::Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.project();
        if let Some(bytes) = this.batch.pop_front() {
            return Poll::Ready(Some(Ok(bytes)));
        }
        if *this.done {
            return Poll::Ready(None);
        }
        let params = &this.params.at_rate(this.rate.get());
        let mut shared = lock(this.shared);
        let first = loop {
            let pos = *this.pos;
            let progressed = match shared.pump(cx, pos, params, this.len) {
                Ok(progressed) => progressed,
                Err(error) => {
                    *this.done = true;
                    return Poll::Ready(Some(Err(error)));
                }
            };
            // The version changed under bytes already passed on (a fetch elsewhere saw it):
            // what follows would be of the new one.
            if this
                .epoch
                .is_some_and(|epoch| epoch != shared.version.epoch)
            {
                *this.done = true;
                return Poll::Ready(Some(Err(RangeMismatch::Changed.into())));
            }
            let total = this.len.load();
            if let Some(bytes) = shared.take(pos) {
                break bytes;
            }
            if total.is_some_and(|total| pos >= total) {
                *this.done = true;
                let held_until = shared.store.held_until(pos);
                shared.level(pos, held_until, params, total);
                return Poll::Ready(None);
            }
            if shared.serving(pos, params).is_some() {
                if progressed {
                    continue;
                }
                let held_until = shared.store.held_until(pos);
                shared.level(pos, held_until, params, total);
                return Poll::Pending;
            }
            let range = shared.hole(pos, total);
            let opening = InFlight::opening(range, Box::pin(this.fetch.fetch(range)));
            shared.add(opening, pos, params);
        };
        shared.version.served = true;
        *this.epoch = Some(shared.version.epoch);
        *this.pos += first.len() as u64;
        // The position is published, and the next fetch started, as of `first`: the fetches
        // ran up to the look-ahead from there, and the batch is held bytes (or a stash)
        // waiting to be passed on.
        let served = *this.pos;
        let total = this.len.load();
        let held_until = shared.store.held_until(served);
        shared.prefetch(served, held_until, this.fetch, params, total);
        shared.level(served, held_until, params, total);
        // More of what is ready, up to `BATCH`: what the store holds after it, or a stash.
        let mut taken = first.len();
        while taken < BATCH {
            let Some(bytes) = shared.take(*this.pos) else {
                break;
            };
            *this.pos += bytes.len() as u64;
            taken += bytes.len();
            this.batch.push_back(bytes);
        }
        Poll::Ready(Some(Ok(first)))
    }
}
