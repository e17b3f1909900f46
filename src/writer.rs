//! The writing end of a [`pipe`].

use core::convert::Infallible;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, ready};

use futures_core::FusedFuture;

use crate::error::StreamError;
use crate::msg::StreamMsg;
use crate::params::StreamParams;
use crate::reader::Reader;
use crate::ring::{self, Item, Producer};

/// Creates a ring buffer on its own, without an engine: a [`Writer`] that sends
/// [`StreamMsg`]s and a [`Reader`] that yields them.
///
/// The message types (`C` for controls, `Ev` for events, `E` for the error passed to
/// [`Writer::fail`]) come from how the two ends are used. Where nothing pins them down, name
/// the type of one end on the `let`, and the defaults of [`Writer`] and [`Reader`] fill in
/// what is left out: `(Writer, Reader)` is a pipe of bytes only, with no controls, no events
/// and no error (`C = ()`, `Ev = ()`, `E = Infallible`):
///
/// ```
/// use futures::{StreamExt, executor::block_on};
/// use kithara_stream::{Bytes, Reader, StreamMsg, StreamParams, Writer, pipe};
///
/// let (mut writer, mut reader): (Writer, Reader) = pipe(StreamParams::default());
/// block_on(async {
///     writer.send(StreamMsg::Data(Bytes::from_static(b"hello"))).await.unwrap();
///     writer.close();
///
///     assert_eq!(reader.next().await, Some(Ok(StreamMsg::Data(Bytes::from_static(b"hello")))));
///     assert_eq!(reader.next().await, None);
/// });
/// ```
///
/// With events of type `&str` (the other end's type is then inferred):
///
/// ```
/// use futures::{StreamExt, executor::block_on};
/// use kithara_stream::{Bytes, StreamMsg, StreamParams, Writer, pipe};
///
/// let (mut writer, mut reader): (Writer<(), &str>, _) = pipe(StreamParams::default());
/// block_on(async {
///     writer.send(StreamMsg::Data(Bytes::from_static(b"hello"))).await.unwrap();
///     writer.send(StreamMsg::Event("halfway")).await.unwrap();
///     writer.close();
///
///     assert_eq!(reader.next().await, Some(Ok(StreamMsg::Data(Bytes::from_static(b"hello")))));
///     assert_eq!(reader.next().await, Some(Ok(StreamMsg::Event("halfway"))));
///     assert_eq!(reader.next().await, None);
/// });
/// ```
///
/// `pipe::<C, Ev, E>(params)` names all three instead.
///
/// # Panics
///
/// If `params` is invalid (a zero `buffer_capacity` or `chunk_size`); the message names the
/// field. Use [`StreamParams::validate`] to check first.
#[track_caller]
pub fn pipe<C, Ev, E>(params: StreamParams) -> (Writer<C, Ev, E>, Reader<C, Ev, E>) {
    params.assert_valid();
    let (producer, consumer) = ring::ring(params.buffer_capacity());
    (
        Writer {
            ring: producer,
            closed: false,
            #[cfg(feature = "std")]
            blocks: Blocks::new(params.buffer_capacity()),
        },
        Reader::new(consumer, params.chunk_size()),
    )
}

/// The writing end of a [`pipe`]: sends data and messages, in order, with backpressure.
///
/// `C` and `Ev` are the types of the [`StreamMsg::Control`] and [`StreamMsg::Event`] it
/// sends, `E` the error [`Writer::fail`] ends the stream with; they default to `()`, `()`
/// and `Infallible`, so a plain `Writer` sends bytes only.
///
/// Dropping the writer closes it (as [`Writer::close`]): the reader yields what is buffered,
/// then `None`. With the `std` feature it also implements futures-io `AsyncWrite`, copying
/// byte slices in.
#[derive(Debug)]
pub struct Writer<C = (), Ev = (), E = Infallible> {
    ring: Producer<C, Ev, E>,
    /// `close` or `fail` was called.
    closed: bool,
    /// Where `AsyncWrite` copies bytes to; recycled once the reader dropped the chunks.
    #[cfg(feature = "std")]
    blocks: Blocks,
}

impl<C, Ev, E> Writer<C, Ev, E> {
    /// Sends one message; the future resolves once the ring has taken it.
    ///
    /// `Data` waits while the ring holds `buffer_capacity` bytes or more, then is taken
    /// whole, whatever its size (the reader splits it to `chunk_size`). `Control` and
    /// `Event` wait the same way and count [`MESSAGE_COST`](crate::MESSAGE_COST) each.
    /// Empty `Data` is skipped.
    ///
    /// A send waiting on a full ring is woken once the reader has taken the ring below half
    /// its capacity (or has gone), so that it then refills half a ring per wakeup.
    pub fn send(&mut self, msg: StreamMsg<C, Ev>) -> SendFuture<'_, C, Ev, E> {
        SendFuture {
            writer: self,
            msg: Some(msg),
        }
    }

    /// Ready when a send would be taken at once (`Ok`), or can never be (`Err`).
    ///
    /// # Errors
    ///
    /// [`StreamError::ChannelClosed`] once the reader is gone or this writer was closed.
    pub fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), StreamError<E>>> {
        if self.closed {
            return Poll::Ready(Err(StreamError::ChannelClosed));
        }
        self.ring
            .poll_room(cx)
            .map(|room| room.map_err(|()| StreamError::ChannelClosed))
    }

    /// Ends the stream with `error`: the reader yields what is buffered, then
    /// `Err(StreamError::Source(error))`, then `None`. Sends after this fail.
    ///
    /// Does not wait for room (the error is not counted). A no-op if the reader is gone or
    /// the writer was already closed.
    pub fn fail(&mut self, error: E) {
        if !self.closed {
            self.closed = true;
            self.ring.push(Item::Error(StreamError::Source(error)));
        }
    }

    /// Ends the stream: the reader yields what is buffered, then `None`. Sends after this
    /// fail. A no-op if the reader is gone or the writer was already closed.
    pub fn close(&mut self) {
        if !self.closed {
            self.closed = true;
            self.ring.push(Item::End);
        }
    }

    /// Whether sends fail now: the writer was closed or the reader is gone.
    pub fn is_closed(&self) -> bool {
        self.closed || self.ring.is_reader_closed()
    }

    /// Bytes held between writer and reader now, messages included at their cost.
    pub fn buffered_bytes(&self) -> usize {
        self.ring.used()
    }

    /// The ring's `buffer_capacity`.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }
}

impl<C, Ev, E> Drop for Writer<C, Ev, E> {
    fn drop(&mut self) {
        self.close();
    }
}

/// The future of [`Writer::send`]; its type parameters are the writer's.
///
/// # Errors
///
/// [`StreamError::ChannelClosed`] if the reader is gone or the writer was closed; the
/// message is dropped.
///
/// # Cancel safety
///
/// A message is taken whole or not at all: dropping a pending `SendFuture` enqueues nothing.
///
/// # Panics
///
/// If polled again after it returned `Ready` (it implements `FusedFuture`, so `select!`
/// skips it).
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct SendFuture<'a, C = (), Ev = (), E = Infallible> {
    writer: &'a mut Writer<C, Ev, E>,
    /// `None` once the future completed.
    msg: Option<StreamMsg<C, Ev>>,
}

// The message is never pinned: it is moved into the ring by value.
impl<C, Ev, E> Unpin for SendFuture<'_, C, Ev, E> {}

impl<C, Ev, E> Future for SendFuture<'_, C, Ev, E> {
    type Output = Result<(), StreamError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let Some(msg) = &this.msg else {
            panic!("`SendFuture` polled after completion");
        };
        let empty = matches!(msg, StreamMsg::Data(bytes) if bytes.is_empty());
        // Empty data needs no room, but still fails once the ring is closed either way.
        let ready = if empty && !this.writer.is_closed() {
            Ok(())
        } else {
            ready!(this.writer.poll_ready(cx))
        };
        let msg = this.msg.take().expect("checked above");
        if ready.is_ok() && !empty {
            this.writer.ring.push(Item::Msg(msg));
        }
        Poll::Ready(ready)
    }
}

impl<C, Ev, E> FusedFuture for SendFuture<'_, C, Ev, E> {
    fn is_terminated(&self) -> bool {
        self.msg.is_none()
    }
}

#[cfg(feature = "std")]
impl<C, Ev, E> futures_util::io::AsyncWrite for Writer<C, Ev, E> {
    /// Copies as much of `buf` as the ring has room for (at least one byte, at most one
    /// copy block: a sixteenth of the capacity within 4..=64 KiB) into one `Data` item;
    /// pending while the ring is full. The copy blocks are reused once the reader dropped
    /// their chunks, so a steady stream allocates nothing.
    ///
    /// Fails with `BrokenPipe` once the reader is gone or the writer was closed.
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() && !this.is_closed() {
            return Poll::Ready(Ok(0));
        }
        if ready!(this.poll_ready(cx)).is_err() {
            return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
        }
        let room = this.ring.capacity().saturating_sub(this.ring.used()).max(1);
        let n = buf.len().min(room);
        let chunk = this.blocks.copy(&buf[..n]);
        let n = chunk.len();
        this.ring.push(Item::Msg(StreamMsg::Data(chunk)));
        Poll::Ready(Ok(n))
    }

    /// Everything written is already in the ring: always ready.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Closes the writer ([`Writer::close`]).
    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.get_mut().close();
        Poll::Ready(Ok(()))
    }
}

/// The buffers `AsyncWrite` copies into: fixed-size blocks handed to the reader as `Bytes`
/// views and reused once every view of a block was dropped, so that a steady stream copies
/// into the same warm memory and allocates nothing.
///
/// A ring in flight spans at most `capacity` bytes (plus the piece the reader's consumer is
/// holding), so `capacity / block + 2` blocks suffice; if a consumer keeps chunks longer,
/// the oldest block is left to it (freed when it drops them) and a fresh one is allocated,
/// so the writer never holds more than that many blocks.
#[cfg(feature = "std")]
#[derive(Debug)]
struct Blocks {
    /// The block being filled; its spare capacity is what the next write can take.
    current: bytes::BytesMut,
    /// Filled blocks, oldest first, waiting for the reader to drop their chunks.
    spent: alloc::collections::VecDeque<bytes::BytesMut>,
    /// Bytes per block.
    block: usize,
    /// The most blocks kept in `spent`.
    max_spent: usize,
    /// `current` is a real block (the first one is allocated on the first write).
    started: bool,
}

#[cfg(feature = "std")]
impl Blocks {
    fn new(capacity: usize) -> Self {
        // A sixteenth of the ring, within [4 KiB, 64 KiB]: small blocks keep the memory the
        // copies cycle through close to the capacity, and large rings are not held in a few
        // huge allocations.
        let block = (capacity / 16).clamp(4 * 1024, 64 * 1024);
        Self {
            current: bytes::BytesMut::new(),
            spent: alloc::collections::VecDeque::new(),
            block,
            max_spent: capacity.div_ceil(block) + 2,
            started: false,
        }
    }

    /// Copies as much of `buf` as the current block takes (all of it if it fits, at least
    /// one byte) and returns it as a chunk.
    fn copy(&mut self, buf: &[u8]) -> bytes::Bytes {
        if self.current.capacity() == 0 {
            self.next_block();
        }
        let n = buf.len().min(self.current.capacity());
        self.current.extend_from_slice(&buf[..n]);
        self.current.split().freeze()
    }

    /// Moves to the oldest spent block if the reader dropped all its chunks, or else to a
    /// new block.
    fn next_block(&mut self) {
        let full = core::mem::take(&mut self.current);
        if self.started {
            self.spent.push_back(full);
        }
        self.started = true;
        if let Some(oldest) = self.spent.front_mut() {
            if oldest.try_reclaim(self.block) {
                self.current = self.spent.pop_front().expect("looked at above");
                return;
            }
        }
        if self.spent.len() > self.max_spent {
            self.spent.pop_front(); // the consumer keeps it; freed with its last chunk
        }
        self.current = bytes::BytesMut::with_capacity(self.block);
    }
}
