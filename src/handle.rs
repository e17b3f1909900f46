//! [`EngineHandle`], the cloneable remote control of an engine, and its [`SeekFuture`].
//!
//! The handles and the engine share an [`EngineShared`]. A seek request travels through a
//! latest-wins slot: a newer request replaces an older one that the engine has not taken,
//! and the request that replaces it cancels it. Each request carries a one-shot reply cell
//! with the waiting future's waker; whoever removes a request from the slot (the engine, a
//! newer seek, or shutdown) owns its reply. The engine keeps the reply of the seek it is
//! preparing in a second slot, so that shutdown (also from a panic guard) answers it.
//!
//! Replies wake their future directly, outside any lock, so that a waker that re-enters the
//! handle from `wake()` (issuing another seek, say) cannot deadlock.

use alloc::boxed::Box;
use core::convert::Infallible;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::FusedFuture;

use crate::error::StreamError;
use crate::raw::latest::Latest;
use crate::raw::oneshot::Oneshot;
use crate::sync::{Arc, AtomicBool, AtomicLen, AtomicUsize, AtomicWaker, Ordering};

/// The answer to one seek, and the waker of the future waiting for it.
pub(crate) struct ReplyCell<E> {
    value: Oneshot<Result<(), StreamError<E>>>,
    waker: AtomicWaker,
}

pub(crate) type Reply<E> = Arc<ReplyCell<E>>;

impl<E> ReplyCell<E> {
    fn new() -> Self {
        Self {
            value: Oneshot::new(),
            waker: AtomicWaker::new(),
        }
    }

    /// Sets the result (the first one wins) and wakes the waiting future.
    pub(crate) fn resolve(&self, result: Result<(), StreamError<E>>) {
        if self.value.set(result).is_ok() {
            self.waker.wake();
        }
    }
}

/// A seek issued by a handle, waiting for the engine.
pub(crate) struct SeekRequest<E> {
    pub(crate) pos: u64,
    pub(crate) reply: Reply<E>,
}

/// What the engine and its handles share.
pub(crate) struct EngineShared<E> {
    /// Live `EngineHandle`s (a `SeekFuture` holds one).
    handles: AtomicUsize,
    /// The engine completed, was dropped, or panicked.
    gone: AtomicBool,
    supports_seek: bool,
    /// The source's total length, as it last reported it.
    len: AtomicLen,
    request: Latest<SeekRequest<E>>,
    /// The engine's task: woken by a seek request and by the last handle's drop.
    waker: AtomicWaker,
    /// The reply of the seek the engine is preparing.
    in_flight: Latest<Reply<E>>,
    /// Closes the ring's writer side, so the stream reports `ChannelClosed`.
    close_ring: Box<dyn Fn() + Send + Sync>,
}

impl<E> EngineShared<E> {
    pub(crate) fn new(supports_seek: bool, close_ring: Box<dyn Fn() + Send + Sync>) -> Self {
        Self {
            handles: AtomicUsize::new(0),
            gone: AtomicBool::new(false),
            supports_seek,
            len: AtomicLen::new(),
            request: Latest::new(),
            waker: AtomicWaker::new(),
            in_flight: Latest::new(),
            close_ring,
        }
    }

    pub(crate) fn register(&self, waker: &core::task::Waker) {
        self.waker.register(waker);
    }

    /// Publishes the source's length; only the engine calls this.
    pub(crate) fn set_len(&self, len: Option<u64>) {
        self.len.store(len);
    }

    pub(crate) fn handles(&self) -> usize {
        self.handles.load(Ordering::Acquire)
    }

    pub(crate) fn is_gone(&self) -> bool {
        self.gone.load(Ordering::SeqCst)
    }

    /// Takes the newest seek request, if any.
    pub(crate) fn take_request(&self) -> Option<SeekRequest<E>> {
        self.request.take()
    }

    pub(crate) fn has_request(&self) -> bool {
        self.request.is_occupied()
    }

    /// Makes `reply` the one of the seek in preparation, cancelling an older one (S4).
    pub(crate) fn begin_seek(&self, reply: Reply<E>) {
        if let Some(older) = self.in_flight.put(reply) {
            older.resolve(Err(StreamError::Cancelled));
        }
    }

    /// Takes the reply of the seek in preparation, to answer it.
    pub(crate) fn end_seek(&self) -> Option<Reply<E>> {
        self.in_flight.take()
    }

    /// Marks the engine gone: the stream ends with `ChannelClosed` after what is buffered
    /// (unless it already ended), waiting and later seeks get `ChannelClosed`. Idempotent.
    pub(crate) fn shutdown(&self) {
        self.gone.store(true, Ordering::SeqCst);
        (self.close_ring)();
        if let Some(request) = self.request.take() {
            request.reply.resolve(Err(StreamError::ChannelClosed));
        }
        if let Some(reply) = self.in_flight.take() {
            reply.resolve(Err(StreamError::ChannelClosed));
        }
    }
}

impl<E> fmt::Debug for EngineShared<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineShared")
            .field("handles", &self.handles())
            .field("gone", &self.is_gone())
            .field("supports_seek", &self.supports_seek)
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

/// A cloneable remote control of an [`Engine`](crate::Engine): seeks it.
///
/// Handles are optional: with all of them dropped the engine keeps streaming to the end,
/// then completes (a handle keeps a finished engine alive, waiting for a seek).
///
/// `E` is the source's error type (a failed seek returns it); it defaults to `Infallible`.
pub struct EngineHandle<E = Infallible> {
    shared: Arc<EngineShared<E>>,
}

impl<E> EngineHandle<E> {
    pub(crate) fn new(shared: Arc<EngineShared<E>>) -> Self {
        shared.handles.fetch_add(1, Ordering::Relaxed);
        Self { shared }
    }

    /// Seeks the stream to byte `pos`.
    ///
    /// The seek is issued when the future is first polled, and resolves `Ok(())` once the
    /// engine applied it: from then on the stream yields nothing produced before the seek,
    /// and its next `Data` starts at `pos`. While the source prepares the seek, the old
    /// writer task keeps streaming.
    ///
    /// # Errors
    ///
    /// - [`StreamError::SeekNotSupported`] at once if the source does not support seeking
    ///   (even if the engine is gone); nothing changes.
    /// - [`StreamError::Source`] if the source's `seek_bytes` failed; nothing changes.
    /// - [`StreamError::Cancelled`] if a newer seek replaced this one first.
    /// - [`StreamError::ChannelClosed`] if the engine stopped or was dropped.
    ///
    /// # Cancel safety
    ///
    /// Once polled, the seek is applied even if the future is dropped; only the result is
    /// lost. Dropped before its first poll, it does nothing.
    pub fn seek_bytes(&self, pos: u64) -> SeekFuture<E> {
        SeekFuture {
            handle: self.clone(),
            state: SeekState::Start { pos },
        }
    }

    /// Whether the source supports seeking.
    pub fn supports_seek(&self) -> bool {
        self.shared.supports_seek
    }

    /// The source's total length in bytes, if it reported one (see
    /// [`EngineSource::byte_len`](crate::EngineSource::byte_len)).
    ///
    /// `None` until the engine has asked the source, which it does when `open` resolves
    /// (before anything the source produced reaches the stream), when a seek resolves and when
    /// a writer task ends. So once the stream yielded its first item, a length the source
    /// learned in `open` (an HTTP `Content-Length`, say) is visible here.
    pub fn byte_len(&self) -> Option<u64> {
        self.shared.len.load()
    }

    /// Whether the engine is gone (completed, dropped or panicked): seeks then fail.
    pub fn is_closed(&self) -> bool {
        self.shared.is_gone()
    }
}

impl<E> Clone for EngineHandle<E> {
    fn clone(&self) -> Self {
        Self::new(self.shared.clone())
    }
}

impl<E> Drop for EngineHandle<E> {
    fn drop(&mut self) {
        if self.shared.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The engine may be waiting for the last handle to go.
            self.shared.waker.wake();
        }
    }
}

impl<E> fmt::Debug for EngineHandle<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineHandle")
            .field("supports_seek", &self.supports_seek())
            .field("byte_len", &self.byte_len())
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// The future of [`EngineHandle::seek_bytes`]. `Unpin`; see there for errors and cancel
/// safety. `E` is the handle's, defaulting to `Infallible`.
///
/// # Panics
///
/// If polled again after it returned `Ready` (it implements `FusedFuture`, so `select!`
/// skips it).
#[must_use = "a seek is issued only when its future is polled"]
pub struct SeekFuture<E = Infallible> {
    handle: EngineHandle<E>,
    state: SeekState<E>,
}

enum SeekState<E> {
    /// Not polled yet: nothing issued.
    Start { pos: u64 },
    /// Issued; waiting for the reply.
    Waiting { reply: Reply<E> },
    /// Returned `Ready`.
    Done,
}

impl<E> Future for SeekFuture<E> {
    type Output = Result<(), StreamError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let shared = &*this.handle.shared;
        loop {
            match &mut this.state {
                SeekState::Start { pos } => {
                    if !shared.supports_seek {
                        this.state = SeekState::Done;
                        return Poll::Ready(Err(StreamError::SeekNotSupported));
                    }
                    if shared.is_gone() {
                        this.state = SeekState::Done;
                        return Poll::Ready(Err(StreamError::ChannelClosed));
                    }
                    let reply: Reply<E> = Arc::new(ReplyCell::new());
                    let request = SeekRequest {
                        pos: *pos,
                        reply: reply.clone(),
                    };
                    if let Some(older) = shared.request.put(request) {
                        older.reply.resolve(Err(StreamError::Cancelled));
                    }
                    shared.waker.wake();
                    // The engine may have shut down before our `put` and not seen it: then
                    // whoever takes it back answers it. (`put` and `gone` are `SeqCst`.)
                    if shared.is_gone() {
                        if let Some(request) = shared.request.take() {
                            request.reply.resolve(Err(StreamError::ChannelClosed));
                        }
                    }
                    this.state = SeekState::Waiting { reply };
                }
                SeekState::Waiting { reply } => {
                    let result = match reply.value.take() {
                        Some(result) => result,
                        None => {
                            // Register, then look again: a reply set in between would
                            // otherwise have found no waker to wake.
                            reply.waker.register(cx.waker());
                            match reply.value.take() {
                                Some(result) => result,
                                // Shutdown answers every reply; it may be under way.
                                None if shared.is_gone() => reply
                                    .value
                                    .take()
                                    .unwrap_or(Err(StreamError::ChannelClosed)),
                                None => return Poll::Pending,
                            }
                        }
                    };
                    this.state = SeekState::Done;
                    return Poll::Ready(result);
                }
                SeekState::Done => panic!("`SeekFuture` polled after completion"),
            }
        }
    }
}

impl<E> FusedFuture for SeekFuture<E> {
    fn is_terminated(&self) -> bool {
        matches!(self.state, SeekState::Done)
    }
}

impl<E> fmt::Debug for SeekFuture<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            SeekState::Start { pos } => {
                return f.debug_struct("SeekFuture").field("pos", pos).finish();
            }
            SeekState::Waiting { .. } => "waiting",
            SeekState::Done => "done",
        };
        f.debug_struct("SeekFuture").field("state", &state).finish()
    }
}
