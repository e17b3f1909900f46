//! [`AsyncReader`]: futures-io `AsyncRead + AsyncBufRead + AsyncSeek` over an engine stream.

use core::convert::Infallible;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, ready};
use std::io::{self, SeekFrom};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use bytes::Bytes;
use futures_core::Stream;
use futures_util::io::{AsyncBufRead, AsyncRead, AsyncSeek};

use super::{SeekSwitch, SideMsg, Sink, io_error, timed_out};
use crate::handle::{EngineHandle, SeekFuture};
use crate::msg::StreamMsg;
use crate::reader::Reader;
use crate::timer::{Sleep, Timer};

/// A futures-io `AsyncRead + AsyncBufRead + AsyncSeek` view of an
/// [`EngineStream`](crate::EngineStream).
///
/// Reads return the stream's bytes in order. `Control` and `Event` messages met on the way
/// go to the callback set with [`on_message`](Self::on_message), or wait in a side queue
/// that [`take_messages`](Self::take_messages) empties: none is lost. A stream error is
/// returned once as an `io::Error` carrying the [`StreamError`](crate::StreamError) (see
/// [`stream_error`](super::stream_error)); after the end of data (or after an error) reads
/// return 0 until a seek starts the stream again.
///
/// Seeks go through the [`EngineHandle`]: `SeekFrom::Start`, `Current`, and `End` when the
/// source reports its length ([`EngineSource::byte_len`](crate::EngineSource::byte_len)).
/// A seek to the current position, or within the chunk the reader holds, needs no engine;
/// after the end of data or an error, a seek (even to the current position) goes to the
/// engine and starts the stream again.
///
/// A seek handed to the engine is applied even if its future is dropped (a timeout, a
/// `select!`). The reader then counts it as in flight: [`position`](Self::position) reports
/// its target, and the next read or seek waits for it before anything else, so every byte
/// read sits at the position the reader reported. If such an abandoned seek fails, the
/// next read (or a seek to the same position) returns its error, and the reader goes on
/// from where it was before; a seek elsewhere starts from there without the error.
/// Seek only through this reader: a seek through another clone of its handle moves the
/// stream without the reader knowing.
///
/// The type parameters are the stream's (see [`EngineStream`](crate::EngineStream)) and
/// default the same way: a plain `AsyncReader` reads a source of bytes that cannot fail.
///
/// Tokio users get tokio's traits with tokio-util's compat layer:
///
/// ```ignore
/// use tokio_util::compat::FuturesAsyncReadCompatExt;
/// let mut tokio_reader = AsyncReader::new(stream, handle).compat();
/// ```
///
/// ```
/// use futures::{AsyncReadExt, AsyncSeekExt, executor::block_on, future::join};
/// use kithara_stream::{BytesSource, Engine, StreamParams, io::AsyncReader};
/// use std::io::SeekFrom;
///
/// let (engine, handle, stream) = Engine::build(BytesSource::new(&b"0123456789"[..]), StreamParams::default());
/// let mut reader = AsyncReader::new(stream, handle);
/// let consumer = async move {
///     reader.seek(SeekFrom::End(-3)).await.unwrap();
///     let mut tail = String::new();
///     reader.read_to_string(&mut tail).await.unwrap();
///     assert_eq!(tail, "789");
/// };
/// block_on(join(engine.run(), consumer));
/// ```
#[must_use = "readers do nothing unless read"]
pub struct AsyncReader<C = (), Ev = (), E = Infallible> {
    stream: Reader<C, Ev, E>,
    handle: Option<EngineHandle<E>>,
    /// The current `Data` item, whole; `consumed` bytes of it were read.
    chunk: Bytes,
    consumed: usize,
    /// Stream position of `chunk[0]`.
    chunk_start: u64,
    state: State<E>,
    switch: SeekSwitch,
    /// Behind a mutex only so that the reader is `Sync` (decoders ask for it); it is reached
    /// through `&mut self` with `get_mut`, never locked.
    sink: Mutex<Sink<C, Ev>>,
    /// Behind a mutex for `Sync` too (the timer's sleep need not be `Sync`), never locked.
    timeout: Mutex<Option<ReadTimeout>>,
}

/// The read timeout: how long a call may wait, the timer, and the sleep of the wait in
/// progress.
struct ReadTimeout {
    after: Duration,
    timer: Arc<dyn Timer>,
    sleep: Option<Sleep>,
}

impl ReadTimeout {
    /// After a poll of a call: `Ready` passes through and ends the wait; `Pending` arms the
    /// sleep on the first wait and becomes `TimedOut` once it fires.
    fn check<T>(
        timeout: &mut Mutex<Option<Self>>,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        let timeout = timeout.get_mut().unwrap_or_else(PoisonError::into_inner);
        let Some(timeout) = timeout else { return poll };
        if poll.is_ready() {
            timeout.sleep = None;
            return poll;
        }
        let sleep = timeout
            .sleep
            .get_or_insert_with(|| timeout.timer.sleep(timeout.after));
        ready!(sleep.as_mut().poll(cx));
        timeout.sleep = None;
        Poll::Ready(Err(timed_out()))
    }
}

/// Where the reader stands. The position fields (`chunk`, `consumed`, `chunk_start`) are
/// only meaningful outside `Seeking`.
enum State<E> {
    /// Nothing arrived from the stream and no seek was applied: the position is 0, and a
    /// length the source learns in `open` may not be published yet.
    Fresh,
    /// Reading: the position is `chunk_start + consumed`.
    Reading,
    /// The stream ended (end of data, or an error that was returned) at the position: only
    /// an engine seek starts it again.
    Ended,
    /// A seek to `target` is with the engine. Nothing else happens until it resolves: on
    /// success the reader is at `target`, on failure it goes back to `before`.
    Seeking {
        /// What the caller asked for, so that polling again with it continues this seek.
        asked: SeekFrom,
        target: u64,
        future: SeekFuture<E>,
        before: Before,
    },
}

/// The state a failed seek returns to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Before {
    Fresh,
    Reading,
    Ended,
}

/// Nothing is structurally pinned: the stream and the seek future are `Unpin`, the queued
/// messages are only moved.
impl<C, Ev, E> Unpin for AsyncReader<C, Ev, E> {}

impl<C, Ev, E> AsyncReader<C, Ev, E> {
    /// A reader of `stream` that seeks through `handle`.
    pub fn new(stream: Reader<C, Ev, E>, handle: EngineHandle<E>) -> Self {
        let mut reader = Self::from_reader(stream);
        reader.handle = Some(handle);
        reader
    }

    /// A reader of a stream without a handle (a [`pipe`](crate::pipe)'s reader, say): it
    /// cannot seek beyond the chunk it holds.
    pub fn from_reader(stream: Reader<C, Ev, E>) -> Self {
        Self {
            stream,
            handle: None,
            chunk: Bytes::new(),
            consumed: 0,
            chunk_start: 0,
            state: State::Fresh,
            switch: SeekSwitch::new(),
            sink: Mutex::new(Sink::Queue(VecDeque::new())),
            timeout: Mutex::new(None),
        }
    }

    /// Hands every `Control` and `Event` to `callback`, in stream order, as the reader passes
    /// them (from inside `poll_read`, so keep it short: a channel send, an atomic store).
    /// Messages already queued are handed over first.
    pub fn on_message(mut self, mut callback: impl FnMut(SideMsg<C, Ev>) + Send + 'static) -> Self {
        let sink = self.sink.get_mut().unwrap_or_else(PoisonError::into_inner);
        for msg in sink.take() {
            callback(msg);
        }
        *sink = Sink::Callback(Box::new(callback));
        self
    }

    /// Gives up waiting after `timeout`, timed by `timer` (see [`Timer`]): a read, a
    /// `fill_buf` or a seek that waits longer returns `io::ErrorKind::TimedOut`. Nothing is
    /// lost: a later read goes on where the reader was; an abandoned seek is still applied,
    /// and the next call waits for it.
    ///
    /// The wait is counted from the first poll that found nothing until something comes
    /// (or the timeout is returned): a call dropped while it waited (a `select!` that took
    /// another branch) does not stop that clock, so the next call may time out sooner.
    pub fn with_read_timeout(mut self, timeout: Duration, timer: impl Timer) -> Self {
        *self
            .timeout
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner) = Some(ReadTimeout {
            after: timeout,
            timer: Arc::new(timer),
            sleep: None,
        });
        self
    }

    /// Takes the messages queued so far (always empty with a callback).
    ///
    /// Without a callback every message is queued until taken: take them now and then, or
    /// set a callback, if the source sends many.
    pub fn take_messages(&mut self) -> Vec<SideMsg<C, Ev>> {
        self.sink
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }

    /// The stream position of the next byte a read returns.
    ///
    /// While a seek whose future was dropped is still with the engine, this is its target:
    /// the next read waits for it (and returns its error if it failed, after which the
    /// position is the one from before the seek again).
    pub fn position(&self) -> u64 {
        match &self.state {
            State::Seeking { target, .. } => *target,
            _ => self.chunk_start + self.consumed as u64,
        }
    }

    /// The source's total length, if it reported one (see
    /// [`EngineHandle::byte_len`](crate::EngineHandle::byte_len)).
    pub fn byte_len(&self) -> Option<u64> {
        self.handle.as_ref().and_then(EngineHandle::byte_len)
    }

    /// Whether seeks can reach the engine: there is a handle, the source supports seeking,
    /// and the [`SeekSwitch`] is on.
    pub fn is_seekable(&self) -> bool {
        self.switch.is_enabled()
            && self
                .handle
                .as_ref()
                .is_some_and(EngineHandle::supports_seek)
    }

    /// The switch that turns seeking off and on (see [`SeekSwitch`]).
    pub fn seek_switch(&self) -> SeekSwitch {
        self.switch.clone()
    }

    /// The handle seeks go through, if any.
    pub fn handle(&self) -> Option<&EngineHandle<E>> {
        self.handle.as_ref()
    }

    /// The stream and the handle back. The unread rest of the current chunk is lost, and so
    /// is the result of a seek in flight (the engine still applies it).
    pub fn into_inner(self) -> (Reader<C, Ev, E>, Option<EngineHandle<E>>) {
        (self.stream, self.handle)
    }

    /// The unread part of the current chunk (empty while a seek is in flight).
    pub(crate) fn buffer(&self) -> &[u8] {
        match self.state {
            State::Seeking { .. } => &[],
            _ => &self.chunk[self.consumed..],
        }
    }

    fn push_msg(&mut self, msg: SideMsg<C, Ev>) {
        self.sink
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .push(msg);
    }

    /// Ready once no seek is in flight: at once if none is, else when it resolved (its
    /// error, if it failed, after going back to the state from before it).
    pub(crate) fn poll_settled(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let State::Seeking {
            target,
            future,
            before,
            ..
        } = &mut self.state
        else {
            return Poll::Ready(Ok(()));
        };
        let result = ready!(Pin::new(future).poll(cx));
        let (target, before) = (*target, *before);
        match result {
            Ok(()) => {
                self.chunk = Bytes::new();
                self.consumed = 0;
                self.chunk_start = target;
                self.state = State::Reading;
                Poll::Ready(Ok(()))
            }
            Err(error) => {
                self.state = match before {
                    Before::Fresh => State::Fresh,
                    Before::Reading => State::Reading,
                    Before::Ended => State::Ended,
                };
                Poll::Ready(Err(io_error(error)))
            }
        }
    }

    /// Ready when the chunk has unread bytes (`Ok(true)`) or the stream is at its end
    /// (`Ok(false)`).
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        ready!(self.poll_settled(cx))?;
        if matches!(self.state, State::Ended) {
            return Poll::Ready(Ok(false));
        }
        while self.consumed == self.chunk.len() {
            let item = ready!(Pin::new(&mut self.stream).poll_next(cx));
            self.state = State::Reading;
            match item {
                Some(Ok(StreamMsg::Data(bytes))) => {
                    self.chunk_start += self.chunk.len() as u64;
                    self.chunk = bytes;
                    self.consumed = 0;
                }
                Some(Ok(StreamMsg::Control(control))) => self.push_msg(SideMsg::Control(control)),
                Some(Ok(StreamMsg::Event(event))) => self.push_msg(SideMsg::Event(event)),
                Some(Err(error)) => {
                    self.state = State::Ended;
                    return Poll::Ready(Err(io_error(error)));
                }
                None => {
                    self.state = State::Ended;
                    return Poll::Ready(Ok(false));
                }
            }
        }
        Poll::Ready(Ok(true))
    }

    /// Resolves `pos` to an absolute target, or an error. No seek is in flight.
    fn poll_target(&mut self, cx: &mut Context<'_>, pos: SeekFrom) -> Poll<io::Result<u64>>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let (base, offset) = match pos {
            SeekFrom::Start(n) => return Poll::Ready(Ok(n)),
            SeekFrom::Current(offset) => (self.position(), offset),
            SeekFrom::End(offset) => {
                // A length learned in `open` is published before the first item arrives.
                if self.byte_len().is_none() && matches!(self.state, State::Fresh) {
                    // Whatever the first item is (an error too), it is kept for the reads.
                    let _ = ready!(self.poll_chunk(cx));
                }
                match self.byte_len() {
                    Some(len) => (len, offset),
                    None => {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::Unsupported,
                            "seek from the end: the source did not report its length",
                        )));
                    }
                }
            }
        };
        Poll::Ready(base.checked_add_signed(offset).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek to a negative or overflowing position",
            )
        }))
    }

    /// Moves to `target` without the engine if the reader is there already or holds it;
    /// `false` if the engine is needed.
    fn seek_locally(&mut self, target: u64) -> bool {
        match self.state {
            // After the end or an error the stream restarts only through the engine; until
            // then a seek to where it stopped changes nothing.
            State::Ended => target == self.position() && !self.is_seekable(),
            State::Fresh => target == 0,
            State::Reading => {
                let end = self.chunk_start + self.chunk.len() as u64;
                if !(self.chunk_start..=end).contains(&target) {
                    return false;
                }
                self.consumed = (target - self.chunk_start) as usize;
                true
            }
            State::Seeking { .. } => false,
        }
    }
}

impl<C, Ev, E> AsyncRead for AsyncReader<C, Ev, E>
where
    E: std::error::Error + Send + Sync + 'static,
{
    /// Copies bytes of the current chunk into `buf`, waiting for the next chunk when it is
    /// used up. `Ok(0)` at the end of data. Cancel safe: nothing is consumed unless returned.
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let chunk = this.poll_chunk(cx);
        if !ready!(ReadTimeout::check(&mut this.timeout, cx, chunk))? {
            return Poll::Ready(Ok(0));
        }
        let available = this.buffer();
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        this.consumed += n;
        Poll::Ready(Ok(n))
    }
}

impl<C, Ev, E> AsyncBufRead for AsyncReader<C, Ev, E>
where
    E: std::error::Error + Send + Sync + 'static,
{
    /// The unread part of the current chunk (empty at the end of data); no copy.
    fn poll_fill_buf(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<&[u8]>> {
        let this = self.get_mut();
        let chunk = this.poll_chunk(cx);
        ready!(ReadTimeout::check(&mut this.timeout, cx, chunk))?;
        Poll::Ready(Ok(this.buffer()))
    }

    fn consume(self: Pin<&mut Self>, amt: usize) {
        let this = self.get_mut();
        if !matches!(this.state, State::Seeking { .. }) {
            this.consumed = (this.consumed + amt).min(this.chunk.len());
        }
    }
}

impl<C, Ev, E> AsyncSeek for AsyncReader<C, Ev, E>
where
    E: std::error::Error + Send + Sync + 'static,
{
    /// Seeks to `pos`; resolves with the new position once the engine applied the seek.
    ///
    /// The target is resolved once, when the seek starts (`SeekFrom::Current` from
    /// [`position`](AsyncReader::position), `SeekFrom::End` from the length known then).
    ///
    /// # Errors
    ///
    /// `Unsupported` if the seek needs the engine and the reader is not seekable (no handle,
    /// the source cannot seek, or the [`SeekSwitch`] is off), or for `SeekFrom::End` when
    /// the length is unknown; `InvalidInput` for a negative position; the engine's seek
    /// errors as described at [`io_error`](super::io_error); `TimedOut` once the read timeout
    /// ([`AsyncReader::with_read_timeout`]) passes.
    ///
    /// # Cancel safety
    ///
    /// A seek handed to the engine is applied even if the caller stops polling. Polling
    /// again with the same `pos` continues it; any other call (a read, another seek) first
    /// waits for it to resolve.
    fn poll_seek(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        pos: SeekFrom,
    ) -> Poll<io::Result<u64>> {
        let this = self.get_mut();
        let seek = this.poll_seek_untimed(cx, pos);
        ReadTimeout::check(&mut this.timeout, cx, seek)
    }
}

impl<C, Ev, E> AsyncReader<C, Ev, E>
where
    E: std::error::Error + Send + Sync + 'static,
{
    /// The seek of `poll_seek`, without the read timeout.
    fn poll_seek_untimed(&mut self, cx: &mut Context<'_>, pos: SeekFrom) -> Poll<io::Result<u64>> {
        let this = self;
        if let State::Seeking { asked, target, .. } = &this.state {
            let continues = *asked == pos;
            let target = *target;
            let settled = ready!(this.poll_settled(cx));
            if continues {
                return Poll::Ready(settled.map(|()| target));
            }
            // A different seek: it starts from wherever the earlier one left the reader,
            // so that one's error changes nothing for it.
        }
        let target = ready!(this.poll_target(cx, pos))?;
        if this.seek_locally(target) {
            return Poll::Ready(Ok(target));
        }
        if !this.is_seekable() {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "this reader cannot seek now (no handle, source not seekable, or seeking switched off)",
            )));
        }
        let handle = this
            .handle
            .as_ref()
            .expect("seekable readers have a handle");
        let future = handle.seek_bytes(target);
        let before = match this.state {
            State::Fresh => Before::Fresh,
            State::Ended => Before::Ended,
            State::Reading | State::Seeking { .. } => Before::Reading,
        };
        this.state = State::Seeking {
            asked: pos,
            target,
            future,
            before,
        };
        ready!(this.poll_settled(cx))?;
        Poll::Ready(Ok(target))
    }
}

impl<C, Ev, E> core::fmt::Debug for AsyncReader<C, Ev, E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AsyncReader")
            .field("position", &self.position())
            .field("buffered", &(self.chunk.len() - self.consumed))
            .field("state", &self.state.name())
            .field("seek_switch", &self.switch.is_enabled())
            .field("handle", &self.handle)
            .field("sink", &self.sink)
            .finish_non_exhaustive()
    }
}

impl<E> State<E> {
    fn name(&self) -> &'static str {
        match self {
            State::Fresh => "fresh",
            State::Reading => "reading",
            State::Ended => "ended",
            State::Seeking { .. } => "seeking",
        }
    }
}
