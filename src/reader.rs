//! The reading end of a ring: a `Stream` of messages.

use core::convert::Infallible;
use core::pin::Pin;
use core::task::{Context, Poll};

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
    /// The rest of a `Data` item longer than `chunk_size`; still counted as held.
    remainder: Bytes,
    /// An `End` or `Error` of the current epoch was yielded.
    ended: bool,
    /// `ChannelClosed` was yielded.
    closed_reported: bool,
}

impl<C, Ev, E> Reader<C, Ev, E> {
    pub(crate) fn new(ring: Consumer<C, Ev, E>, chunk_size: usize) -> Self {
        Self {
            ring,
            chunk_size,
            epoch: 0,
            remainder: Bytes::new(),
            ended: false,
            closed_reported: false,
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

    /// Moves to the writer's newest epoch if it started one, dropping what is stale.
    /// Returns whether the epoch changed.
    fn sync_epoch(&mut self) -> bool {
        let current = self.ring.epoch();
        if current == self.epoch {
            return false;
        }
        self.epoch = current;
        self.ended = false;
        let stale = core::mem::take(&mut self.remainder);
        self.ring.release(stale.len());
        true
    }

    /// The next piece of the remainder, at most `chunk_size` bytes.
    fn next_piece(&mut self) -> Bytes {
        let piece = if self.remainder.len() > self.chunk_size {
            self.remainder.split_to(self.chunk_size)
        } else {
            core::mem::take(&mut self.remainder)
        };
        self.ring.release(piece.len());
        piece
    }

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
}

impl<C, Ev, E> Stream for Reader<C, Ev, E> {
    type Item = Result<StreamMsg<C, Ev>, StreamError<E>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.sync_epoch();
        if !this.remainder.is_empty() {
            return Poll::Ready(Some(Ok(StreamMsg::Data(this.next_piece()))));
        }
        if this.ended {
            return Poll::Ready(None);
        }
        loop {
            let item = match this.poll_entry(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(item)) => item,
                Poll::Ready(None) if this.closed_reported => return Poll::Ready(None),
                Poll::Ready(None) => {
                    this.closed_reported = true;
                    return Poll::Ready(Some(Err(StreamError::ChannelClosed)));
                }
            };
            let cost = item.cost();
            return Poll::Ready(match item {
                Item::Msg(StreamMsg::Data(bytes)) if bytes.is_empty() => continue,
                Item::Msg(StreamMsg::Data(bytes)) => {
                    this.remainder = bytes;
                    Some(Ok(StreamMsg::Data(this.next_piece())))
                }
                Item::Msg(msg) => {
                    this.ring.release(cost);
                    Some(Ok(msg))
                }
                Item::Error(error) => {
                    this.ended = true;
                    Some(Err(error))
                }
                Item::End => {
                    this.ended = true;
                    None
                }
            });
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::from(!self.remainder.is_empty()), None)
    }
}
