//! The reading end of a ring: a `Stream` of messages.

use core::convert::Infallible;
use core::pin::Pin;
use core::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_core::Stream;

use crate::error::StreamError;
use crate::msg::StreamMsg;
use crate::ring::{Consumer, Item};

/// The reading end of a [`pipe`](crate::pipe), and the [`EngineStream`](crate::EngineStream)
/// of an engine: a `Stream` of `Result<StreamMsg<C, Ev>, StreamError<E>>`.
///
/// It yields what the writer sent, in order, with `Data` split to at most `chunk_size`
/// bytes (without copying) and never empty. Then:
///
/// - after a clean end ([`Writer::close`](crate::Writer::close), or the end of an engine's
///   writer task): `None`;
/// - after a source error: `Err(StreamError::Source(e))` once, then `None`;
/// - if the writer went away without ending (an engine dropped mid-stream): what is
///   buffered, then `Err(StreamError::ChannelClosed)` once, then `None`.
///
/// Once it yielded `None` it keeps yielding `None`, never `Pending`, **until an engine seek
/// starts the stream again** from the new position: so it is deliberately not a
/// `FusedStream`.
///
/// Dropping the reader makes the writer's sends fail and stops an engine.
///
/// The type parameters are the writer's (see [`Writer`](crate::Writer)) and default the same
/// way: a plain `Reader` yields bytes only and no source error.
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct Reader<C = (), Ev = (), E = Infallible> {
    ring: Consumer<C, Ev, E>,
    chunk_size: usize,
    /// The epoch being read; entries of other (older) epochs are stale.
    epoch: usize,
    state: State,
}

/// Where the reader stands in its stream.
#[derive(Debug)]
enum State {
    /// Yielding the current epoch's items. `rest` is the unread part of a `Data` item longer
    /// than `chunk_size` (empty if there is none); it still counts as held.
    Reading { rest: Bytes },
    /// The current epoch's `End` or `Error` was yielded: `None` until a seek starts a new
    /// epoch.
    Ended,
    /// `ChannelClosed` was yielded: the writer is gone and nothing more can come, so `None`
    /// from now on.
    Closed,
}

impl<C, Ev, E> Reader<C, Ev, E> {
    pub(crate) fn new(ring: Consumer<C, Ev, E>, chunk_size: usize) -> Self {
        Self {
            ring,
            chunk_size,
            epoch: 0,
            state: State::Reading { rest: Bytes::new() },
        }
    }

    /// Bytes held between writer and reader now (messages at their cost), including the
    /// unread rest of a split chunk.
    pub fn buffered_bytes(&self) -> usize {
        self.ring.used()
    }

    /// The ring's `buffer_capacity`.
    pub fn capacity(&self) -> usize {
        self.ring.capacity()
    }

    /// Moves to the writer's newest epoch if it started one: the rest of a split chunk is
    /// stale, and an ended stream reads again.
    fn sync_epoch(&mut self) {
        let current = self.ring.epoch();
        if current == self.epoch {
            return;
        }
        self.epoch = current;
        match &mut self.state {
            State::Reading { rest } => {
                let stale = core::mem::take(rest);
                self.ring.release(stale.len());
            }
            State::Ended => self.state = State::Reading { rest: Bytes::new() },
            State::Closed => {}
        }
    }

    /// Yields the next piece of `data`, at most `chunk_size` bytes, keeping the rest.
    fn yield_data(&mut self, mut data: Bytes) -> Bytes {
        let piece = if data.len() > self.chunk_size {
            data.split_to(self.chunk_size)
        } else {
            core::mem::take(&mut data)
        };
        self.ring.release(piece.len());
        self.state = State::Reading { rest: data };
        piece
    }

    /// The next entry of the current epoch, `None` once the writer is gone and everything it
    /// pushed was taken.
    fn poll_entry(&mut self, cx: &mut Context<'_>) -> Poll<Option<Item<C, Ev, E>>> {
        let mut registered = false;
        loop {
            if let Some(entry) = self.ring.pop() {
                if entry.epoch != self.epoch {
                    // The writer started a newer epoch since we looked: move to it.
                    self.sync_epoch();
                }
                if entry.epoch != self.epoch {
                    // From an older epoch: a seek made it stale.
                    self.ring.release(entry.item.cost());
                    continue;
                }
                return Poll::Ready(Some(entry.item));
            }
            if self.ring.is_writer_closed() {
                // Entries pushed before the close are visible now: look once more.
                if !self.ring.is_empty() {
                    continue;
                }
                return Poll::Ready(None);
            }
            if registered {
                return Poll::Pending;
            }
            self.ring.register(cx.waker());
            registered = true;
            // Loop to re-check: an entry or the close may have come before the registration.
        }
    }

    /// Reads the ring until there is something to yield: an item, or the end of the stream.
    fn poll_item(&mut self, cx: &mut Context<'_>) -> Poll<Option<<Self as Stream>::Item>> {
        loop {
            let Some(item) = ready!(self.poll_entry(cx)) else {
                self.state = State::Closed;
                return Poll::Ready(Some(Err(StreamError::ChannelClosed)));
            };
            let cost = item.cost();
            let next = match item {
                Item::Msg(StreamMsg::Data(bytes)) if bytes.is_empty() => continue,
                Item::Msg(StreamMsg::Data(bytes)) => Ok(StreamMsg::Data(self.yield_data(bytes))),
                Item::Msg(msg) => {
                    self.ring.release(cost);
                    Ok(msg)
                }
                Item::Error(error) => {
                    self.state = State::Ended;
                    Err(error)
                }
                Item::End => {
                    self.state = State::Ended;
                    return Poll::Ready(None);
                }
            };
            return Poll::Ready(Some(next));
        }
    }
}

impl<C, Ev, E> Stream for Reader<C, Ev, E> {
    type Item = Result<StreamMsg<C, Ev>, StreamError<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.sync_epoch();
        match &mut this.state {
            State::Reading { rest } if !rest.is_empty() => {
                let rest = core::mem::take(rest);
                Poll::Ready(Some(Ok(StreamMsg::Data(this.yield_data(rest)))))
            }
            State::Reading { .. } => this.poll_item(cx),
            State::Ended | State::Closed => Poll::Ready(None),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let split = matches!(&self.state, State::Reading { rest } if !rest.is_empty());
        (usize::from(split), None)
    }
}
