//! [`CachedSource`]: a seekable source that keeps what it fetched in a [`MemoryStore`], so
//! that a seek into fetched bytes never touches the network.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::future::Future;
use std::sync::Mutex;

use super::buffer_level::{BufferLevel, BufferWatch};
use super::byte_rate::ByteRate;
use super::fetch::Fetch;
use super::range::Checked;
use super::served::{InFlight, Served, Shared, Version, lock};
use super::store_params::StoreParams;
use super::{Progress, ProgressWatch, WithProgress};
use crate::error::StreamError;
use crate::params::StreamParams;
use crate::source::{EngineSource, OpenResult, WriterTask};
use crate::store::{MemoryStore, Store};
use std::sync::Arc;

use crate::sync::AtomicLen;

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
///
/// [`ByteRange`]: super::ByteRange
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
