//! The writer tasks of a [`CachedSource`](super::CachedSource): [`Served`], over the store
//! and the fetches in flight they share ([`Shared`]).

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::{Buf, Bytes};
use futures_core::Stream;

use super::byte_rate::ByteRate;
use super::fetch::{ByteRange, Fetch, RangeMismatch, RangeResponse};
use super::range::Checked;
use super::store_params::StoreParams;
use crate::store::Store;
use std::sync::Arc;

use crate::sync::AtomicLen;

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
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

pub(super) struct InFlight<F: Fetch> {
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
    pub(super) fn streaming(range: ByteRange, body: Checked<F::Body>, epoch: u64) -> Self {
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
pub(super) struct Version {
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
pub(super) struct Shared<F: Fetch, S> {
    pub(super) store: S,
    pub(super) fetches: Vec<InFlight<F>>,
    pub(super) version: Version,
    /// The position the current writer task serves next.
    pub(super) position: u64,
    pub(super) ready: bool,
    pub(super) total: Option<u64>,
    /// Where a fetch that did not serve the position failed: not fetched again ahead of
    /// need; the fetch that reaches it there surfaces its error. Cleared by a seek.
    pub(super) failed_at: Option<u64>,
}

impl<F: Fetch, S: Store> Shared<F, S> {
    /// The index of a fetch in flight that will deliver `pos`.
    pub(super) fn serving(&self, pos: u64, params: &StoreParams) -> Option<usize> {
        self.fetches.iter().position(|f| f.serves(pos, params))
    }

    /// The hole at `pos`: from `pos` to the next held byte, and no more than the store can
    /// keep (at least [`MIN_SPAN`]), so that a fetch dropped by a seek has not asked the
    /// server for more; to the end of the resource with a budget of 0 (nothing is kept).
    pub(super) fn hole(&self, pos: u64, total: Option<u64>) -> ByteRange {
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
    pub(super) fn admit<B>(
        &mut self,
        response: &RangeResponse<B>,
        len: &AtomicLen,
    ) -> Result<u64, RangeMismatch> {
        self.version.admit(&mut self.store, response, len)
    }

    /// Adds a fetch; if there are too many, drops the one farthest from `pos` that does not
    /// serve it.
    pub(super) fn add(&mut self, fetch: InFlight<F>, pos: u64, params: &StoreParams) {
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
    ///
    /// [`CachedSource`]: super::CachedSource
    pub(super) struct Served<F: Fetch, S> {
        pub(super) shared: Arc<Mutex<Shared<F, S>>>,
        pub(super) fetch: Arc<F>,
        pub(super) len: Arc<AtomicLen>,
        pub(super) rate: ByteRate,
        // The parameters; each poll takes the look-ahead in force at `rate` from them.
        pub(super) params: StoreParams,
        // The next byte to pass on.
        pub(super) pos: u64,
        // The `Version::epoch` of the bytes it passed on, once it has: a change of version
        // after that fails it, so that bytes of two versions never follow each other.
        pub(super) epoch: Option<u64>,
        // Bytes taken under the last lock and not passed on yet, in order (see `BATCH`).
        pub(super) batch: VecDeque<Bytes>,
        pub(super) done: bool,
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
