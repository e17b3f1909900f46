//! The [`Engine`]: drives a source's writer task into the ring and applies seeks.

use alloc::boxed::Box;
use core::convert::Infallible;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::{FusedFuture, Stream};

use crate::error::StreamError;
use crate::handle::{EngineHandle, EngineShared, SeekRequest};
use crate::msg::StreamMsg;
use crate::params::StreamParams;
use crate::reader::Reader;
use crate::ring::{self, Item, Producer};
use crate::source::{EngineSource, OpenResult, WriterTask};
use crate::sync::Arc;

/// The stream an [`Engine`] feeds: a [`Reader`] of the source's messages.
///
/// Yields `Result<StreamMsg<C, Ev>, StreamError<E>>`; `Unpin`. **Not fused**: after `None`
/// (end of data or a source error) a seek starts it again; until then it yields `None`
/// again. Dropping it stops the engine.
///
/// `C`, `Ev` and `E` are the source's `Control`, `Event` and `Error` types; they default to
/// `()`, `()` and `Infallible`, so `EngineStream` alone is the stream of a source of bytes
/// that cannot fail (a [`BytesSource`](crate::BytesSource)).
pub type EngineStream<C = (), Ev = (), E = Infallible> = Reader<C, Ev, E>;

/// Items the run future moves per poll before it yields to the executor, so that an
/// always-ready source cannot starve other tasks.
const STEPS_PER_POLL: usize = 64;

type SourceFuture<S> = Pin<Box<dyn Future<Output = OpenResult<S>> + Send>>;
type Task<S> = WriterTask<
    <S as EngineSource>::Control,
    <S as EngineSource>::Event,
    <S as EngineSource>::Error,
>;

/// Moves a source's bytes into an [`EngineStream`], with seeks from [`EngineHandle`]s.
///
/// Build it with [`Engine::build`], then spawn [`Engine::run`] on any executor (or poll it
/// next to the stream on one task). The library spawns nothing.
///
/// ```
/// use futures::{StreamExt, executor::block_on, future::join};
/// use kithara_stream::{BytesSource, Engine, StreamParams};
///
/// let source = BytesSource::new(&b"0123456789"[..]);
/// let (engine, handle, mut stream) = Engine::build(source, StreamParams::default());
///
/// let consumer = async move {
///     let first = stream.next().await.unwrap().unwrap().into_data().unwrap();
///     assert_eq!(first, &b"0123456789"[..]);
///     handle.seek_bytes(7).await.unwrap();
///     let after_seek = stream.next().await.unwrap().unwrap().into_data().unwrap();
///     assert_eq!(after_seek, &b"789"[..]);
///     // Dropping the handle and the stream lets the engine complete.
/// };
/// block_on(join(engine.run(), consumer));
/// ```
///
/// Dropping an `Engine` without running it ends the stream with `ChannelClosed`.
#[must_use = "an engine does nothing unless `run()` is polled"]
pub struct Engine<S: EngineSource> {
    run: Run<S>,
}

impl<S: EngineSource> Engine<S> {
    /// Creates the engine for `source`, a handle to seek it and the stream it feeds.
    ///
    /// Nothing happens until [`Engine::run`] is polled; `open` is called then.
    ///
    /// # Panics
    ///
    /// If `params` is invalid (a zero `buffer_capacity` or `chunk_size`); the message names
    /// the field. Use [`StreamParams::validate`] to check first.
    #[track_caller]
    #[allow(clippy::type_complexity)]
    pub fn build(
        source: S,
        params: StreamParams,
    ) -> (
        Self,
        EngineHandle<S::Error>,
        EngineStream<S::Control, S::Event, S::Error>,
    ) {
        params.assert_valid();
        let (producer, consumer) = ring::ring(params.buffer_capacity());
        let shared = Arc::new(EngineShared::new(source.supports_seek(), producer.closer()));
        let handle = EngineHandle::new(shared.clone());
        let core = Core {
            source,
            params,
            ring: producer,
            state: State::Start,
        };
        let engine = Engine {
            run: Run { shared, core },
        };
        (engine, handle, Reader::new(consumer, params.chunk_size()))
    }

    /// The future that drives the engine; spawn it or poll it.
    ///
    /// It completes when the stream is dropped, when `open` failed, or when the writer task
    /// ended (finished or failed) and no handle remains. Dropping it before that ends the
    /// stream with `ChannelClosed` after what is buffered, and makes pending and later
    /// seeks fail with `ChannelClosed`.
    pub fn run(self) -> Run<S> {
        self.run
    }
}

impl<S: EngineSource> fmt::Debug for Engine<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine").field("run", &self.run).finish()
    }
}

/// The future of [`Engine::run`]: `Output = ()`, `Send` (as the source is), `Unpin`.
///
/// Polling it after it returned `Ready` returns `Ready(())` again. A panic in the source
/// propagates out of `poll`; the engine is marked gone first, so the stream and the handles
/// behave as if the engine was dropped.
#[must_use = "futures do nothing unless polled"]
pub struct Run<S: EngineSource> {
    shared: Arc<EngineShared<S::Error>>,
    core: Core<S>,
}

/// Nothing in `Run` is structurally pinned: the source is only used by `&self` and the
/// futures it returns are boxed.
impl<S: EngineSource> Unpin for Run<S> {}

impl<S: EngineSource> Future for Run<S> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Run { shared, core } = self.get_mut();
        if matches!(core.state, State::Done) || shared.is_gone() {
            return Poll::Ready(());
        }
        let guard = PanicGuard(shared);
        let poll = core.poll_run(cx, shared);
        core::mem::forget(guard);
        // One wakeup for everything this poll pushed (a panic above wakes the reader
        // through the guard's shutdown instead).
        core.ring.wake_reader();
        if poll.is_ready() {
            core.finish(shared);
        }
        poll
    }
}

impl<S: EngineSource> FusedFuture for Run<S> {
    fn is_terminated(&self) -> bool {
        matches!(self.core.state, State::Done)
    }
}

impl<S: EngineSource> Drop for Run<S> {
    fn drop(&mut self) {
        self.core.finish(&self.shared);
    }
}

impl<S: EngineSource> fmt::Debug for Run<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run")
            .field("state", &self.core.state.name())
            .field("seeking", &self.core.state.is_seeking())
            .field("buffered", &self.core.ring.used())
            .field("shared", &self.shared)
            .finish()
    }
}

/// Marks the engine gone if a panic unwinds out of `poll` (B4). Forgotten on normal return.
struct PanicGuard<'a, E>(&'a EngineShared<E>);

impl<E> Drop for PanicGuard<'_, E> {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

/// The engine's state, apart from what it shares with the handles.
struct Core<S: EngineSource> {
    source: S,
    params: StreamParams,
    ring: Ring<S>,
    state: State<S>,
}

type Ring<S> =
    Producer<<S as EngineSource>::Control, <S as EngineSource>::Event, <S as EngineSource>::Error>;

/// Where the run stands.
enum State<S: EngineSource> {
    /// `run()` was not polled yet; `open` was not called.
    Start,
    /// Waiting for `open`. Seek requests wait in the slot.
    Opening(SourceFuture<S>),
    /// `open` succeeded: streaming (or waiting after the writer task's end), and seeking.
    Open(Open<S>),
    /// `run()` completed: the writer task and the source's futures are dropped.
    Done,
}

/// An opened engine. A seek is prepared while the writer task keeps going (S3), so the two
/// move on independently. Fields drop in order: the seek's future before the writer task.
struct Open<S: EngineSource> {
    /// The source's future of the seek being prepared. Its reply waits in `EngineShared`,
    /// where shutdown can answer it.
    seek: Option<SourceFuture<S>>,
    feed: Feed<S>,
    /// The current control state (S3a).
    control: S::Control,
}

/// The writer task's part of an opened engine.
enum Feed<S: EngineSource> {
    /// Polling the writer task while the ring has room.
    Streaming(Task<S>),
    /// The writer task ended (its end or error is queued); waiting for a seek, or for the
    /// last handle to go.
    Ended,
}

/// What one step of the run did.
enum Step {
    /// Moved the stream on (took an item, resolved a seek): counts toward [`STEPS_PER_POLL`].
    Progress,
    /// Moved to the next phase (called `open`, or `open` succeeded): go on at once.
    Next,
    /// Nothing to do until a waker fires.
    Idle,
    /// The run is complete.
    Done,
}

impl<S: EngineSource> State<S> {
    fn name(&self) -> &'static str {
        match self {
            State::Start => "start",
            State::Opening(_) => "opening",
            State::Open(Open {
                feed: Feed::Streaming(_),
                ..
            }) => "streaming",
            State::Open(Open {
                feed: Feed::Ended, ..
            }) => "ended",
            State::Done => "done",
        }
    }

    fn is_seeking(&self) -> bool {
        matches!(self, State::Open(Open { seek: Some(_), .. }))
    }
}

impl<S: EngineSource> Core<S> {
    /// One poll of the run future: steps until there is nothing to do, the run completes, or
    /// it took [`STEPS_PER_POLL`] steps. `Ready` means it completed.
    fn poll_run(&mut self, cx: &mut Context<'_>, shared: &EngineShared<S::Error>) -> Poll<()> {
        // Register first: every check below is then a re-check (E5).
        shared.register(cx.waker());
        self.ring.register(cx.waker());
        let mut steps = 0;
        loop {
            if self.ring.is_reader_closed() {
                return Poll::Ready(()); // E1
            }
            let step = match &mut self.state {
                State::Open(open) => open.turn(&self.source, &mut self.ring, shared, cx),
                _ => self.open_step(cx, shared),
            };
            match step {
                Step::Next => continue,
                Step::Progress => steps += 1,
                Step::Idle => return Poll::Pending,
                Step::Done => return Poll::Ready(()),
            }
            if steps == STEPS_PER_POLL {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }

    /// Calls `open` on the first poll, then polls its future until the engine is open.
    fn open_step(&mut self, cx: &mut Context<'_>, shared: &EngineShared<S::Error>) -> Step {
        let opening = match &mut self.state {
            State::Opening(opening) => opening,
            State::Start => {
                self.state = State::Opening(Box::pin(self.source.open(self.params)));
                return Step::Next;
            }
            State::Open(_) | State::Done => unreachable!("`open` is called once"),
        };
        match opening.as_mut().poll(cx) {
            Poll::Pending => Step::Idle,
            Poll::Ready(Ok((task, control))) => {
                shared.set_len(self.source.byte_len());
                self.state = State::Open(Open {
                    seek: None,
                    feed: Feed::Streaming(task),
                    control,
                });
                Step::Next
            }
            Poll::Ready(Err(error)) => {
                self.ring.push_deferred(Item::Error(error)); // D4
                Step::Done
            }
        }
    }

    /// Completes the engine: drops the writer task and the source's futures, answers a
    /// pending seek, and marks the engine gone. Idempotent.
    fn finish(&mut self, shared: &EngineShared<S::Error>) {
        // Shut down before dropping anything of the user's: a `Drop` that panics must not
        // leave seeks waiting for an answer (B4).
        shared.shutdown();
        drop(core::mem::replace(&mut self.state, State::Done));
    }
}

impl<S: EngineSource> Open<S> {
    /// One turn of an opened engine: the seek step, then the pump step.
    fn turn(
        &mut self,
        source: &S,
        ring: &mut Ring<S>,
        shared: &EngineShared<S::Error>,
        cx: &mut Context<'_>,
    ) -> Step {
        let seek = self.seek_step(source, ring, shared, cx);
        if let Step::Done = seek {
            return Step::Done;
        }
        match self.pump(source, ring, shared, cx) {
            Step::Idle => seek,
            pump => pump,
        }
    }

    /// Starts a newly requested seek, and applies the one being prepared once the source's
    /// future resolved.
    fn seek_step(
        &mut self,
        source: &S,
        ring: &mut Ring<S>,
        shared: &EngineShared<S::Error>,
        cx: &mut Context<'_>,
    ) -> Step {
        if let Some(request) = shared.take_request() {
            self.start_seek(source, request, shared);
            // A stream dropped before the request was made must fail it (S6): taking the
            // request synchronised with its `put`, so the drop is visible now.
            if ring.is_reader_closed() {
                return Step::Done; // `finish` answers `ChannelClosed`
            }
        }
        let Some(seek) = &mut self.seek else {
            return Step::Idle;
        };
        let Poll::Ready(result) = seek.as_mut().poll(cx) else {
            return Step::Idle;
        };
        self.seek = None;
        let reply = shared
            .end_seek()
            .expect("the seek in preparation has a reply");
        match result {
            Ok((task, control)) => {
                // S1: drop the old task, make what it produced stale, go on from `pos`.
                shared.set_len(source.byte_len());
                self.feed = Feed::Streaming(task);
                self.control = control;
                ring.advance_epoch();
                reply.resolve(Ok(()));
            }
            Err(error) => reply.resolve(Err(error)), // S3: nothing changes
        }
        Step::Progress
    }

    /// Starts preparing the seek `request`, cancelling one in progress (S4).
    fn start_seek(
        &mut self,
        source: &S,
        request: SeekRequest<S::Error>,
        shared: &EngineShared<S::Error>,
    ) {
        // The reply goes where shutdown finds it before the source's code runs, so that
        // even a panic in `seek_bytes` answers it (B4).
        shared.begin_seek(request.reply);
        self.seek = None;
        self.seek = Some(Box::pin(
            source.seek_bytes(request.pos, self.control.clone()),
        ));
    }

    /// Takes one item from the writer task while the ring has room (E3); once the task has
    /// ended, completes the run when nobody can seek any more (E2).
    fn pump(
        &mut self,
        source: &S,
        ring: &mut Ring<S>,
        shared: &EngineShared<S::Error>,
        cx: &mut Context<'_>,
    ) -> Step {
        match &mut self.feed {
            Feed::Streaming(task) if ring.has_room() => {
                let Poll::Ready(item) = Pin::new(task).poll_next(cx) else {
                    return Step::Idle;
                };
                self.queue(item, source, ring, shared);
                Step::Progress
            }
            // The request slot is looked at after the handle count, since a handle puts its
            // request before it goes.
            Feed::Ended if self.seek.is_none() && shared.handles() == 0 => {
                if shared.has_request() {
                    Step::Progress
                } else {
                    Step::Done
                }
            }
            _ => Step::Idle,
        }
    }

    /// Queues what the writer task produced; after its end or error, the feed has ended.
    fn queue(
        &mut self,
        item: Option<<Task<S> as Stream>::Item>,
        source: &S,
        ring: &mut Ring<S>,
        shared: &EngineShared<S::Error>,
    ) {
        let last = match item {
            Some(Ok(msg)) => {
                if let StreamMsg::Control(control) = &msg {
                    self.control = control.clone(); // S3a
                }
                if !matches!(&msg, StreamMsg::Data(bytes) if bytes.is_empty()) {
                    ring.push_deferred(Item::Msg(msg)); // B2: empty data skipped
                }
                return;
            }
            Some(Err(error)) => Item::Error(StreamError::Source(error)),
            None => Item::End,
        };
        shared.set_len(source.byte_len());
        ring.push_deferred(last);
        self.feed = Feed::Ended;
    }
}
