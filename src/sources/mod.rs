//! Ready-made sources (`std` feature): turn what a player already has into an
//! [`EngineSource`](crate::EngineSource).
//!
//! - [`AsyncReadSource`]: any futures-io `AsyncRead + AsyncSeek` opener (a file): seekable,
//!   length from `seek(End(0))`.
//! - [`StreamSource`]: any `Stream<Item = Result<Bytes, E>>` (a live stream): not seekable.
//! - [`RangeSource`]: any [`Fetch`], a closure `fetch(range)` that returns the bytes of a
//!   [`ByteRange`] (an HTTP `Range` request, [`RangeResponse::http`] reads the response):
//!   seekable, with the total length reported and every response checked against what was
//!   asked for. [`AsyncReadSource`] is one over a [`ReadFetch`].
//! - [`CachedSource`]: any [`Fetch`] behind a range store under a byte budget: a seek into
//!   held bytes makes no request, holes are fetched with an end, fetches in flight survive
//!   seeks ([`StoreParams`], [`BufferWatch`]); its look-ahead may be counted in seconds
//!   once a player tells it the stream's [`ByteRate`].
//!
//! And the layers a fetch can wear: [`Retrying`] resumes a fetch at the byte reached after
//! an error, a stall or a short body, as a [`RetryPolicy`] says (its waits come from the
//! user's [`Timer`](crate::timer::Timer)); with the `reqwest` feature, `HttpFetch` is the
//! HTTP fetch, written once.
//!
//! Each emits a [`Progress`] event after every chunk and publishes the same progress through
//! a [`ProgressWatch`], so that a player can draw a buffer bar;
//! [`BytesSource`](crate::BytesSource) serves bytes in memory.
//!
//! The events travel in-band, in stream order: a reader meets each one right after the chunk
//! it describes, so it tells the total and where fetches start, not how far ahead the
//! download is. The watch is updated as the engine takes each chunk from the source (into
//! the ring), so it shows the download ahead of the play position.

mod async_read;
mod buffer_level;
mod byte_rate;
mod cached;
mod fetch;
mod http;
mod live;
mod range;
#[cfg(feature = "reqwest")]
mod reqwest_fetch;
mod retry;
mod served;
mod store_params;

use core::pin::Pin;
use core::task::{Context, Poll};
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use futures_core::Stream;

pub use crate::store::Validator;
pub use async_read::{AsyncReadSource, ReadChunks, ReadFetch};
pub use buffer_level::{BufferLevel, BufferWatch};
pub use byte_rate::ByteRate;
pub use cached::CachedSource;
pub use fetch::{
    ByteRange, ContentRange, Fetch, FetchError, RangeMismatch, RangeResponse, content_range_total,
    range_header,
};
pub use http::HttpStatus;
pub use live::StreamSource;
pub use range::RangeSource;
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub use reqwest_fetch::{HttpBody, HttpError, HttpFetch};
pub use retry::{Resumed, Retry, RetryEvent, RetryPolicy, Retryable, Retrying, Stalled};
pub use store_params::StoreParams;

use crate::msg::StreamMsg;

/// Download progress, emitted by the built-in sources after each chunk (in-band, in stream
/// order) and published through their [`ProgressWatch`] (as fetched).
///
/// The bytes `fetched_from..fetched_to` are fetched (in the ring or already read): a player
/// draws them as its buffer bar next to its play position. After a seek, `fetched_from` is
/// the seek position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Progress {
    /// Where the current fetch started: 0, or the last seek position.
    pub fetched_from: u64,
    /// The end of the bytes fetched so far (exclusive).
    pub fetched_to: u64,
    /// The source's total length, if known.
    pub total: Option<u64>,
}

impl Progress {
    /// `fetched_to / total`, if the total is known and not zero.
    pub fn fraction(&self) -> Option<f64> {
        match self.total {
            Some(total) if total > 0 => Some(self.fetched_to as f64 / total as f64),
            _ => None,
        }
    }
}

/// The latest [`Progress`] of a built-in source, as the engine takes its chunks: cloneable,
/// readable from any thread (a UI's), for a buffer bar ahead of the play position.
#[derive(Debug, Clone, Default)]
pub struct ProgressWatch(std::sync::Arc<Mutex<Progress>>);

impl ProgressWatch {
    /// The latest progress: `fetched_to` is the end of the bytes fetched so far.
    pub fn get(&self) -> Progress {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, progress: Progress) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = progress;
    }
}

pin_project_lite::pin_project! {
    /// A writer task from a stream of bytes: each non-empty chunk, then a [`Progress`] event.
    struct WithProgress<S> {
        #[pin]
        body: S,
        progress: Progress,
        watch: ProgressWatch,
        // The event to emit before the next chunk.
        event_due: bool,
    }
}

impl<S> WithProgress<S> {
    /// Starts at `from` and publishes the start on `watch`.
    fn new(body: S, from: u64, total: Option<u64>, watch: ProgressWatch) -> Self {
        let progress = Progress {
            fetched_from: from,
            fetched_to: from,
            total,
        };
        watch.set(progress);
        Self {
            body,
            progress,
            watch,
            event_due: false,
        }
    }
}

impl<S, E> Stream for WithProgress<S>
where
    S: Stream<Item = Result<Bytes, E>>,
{
    type Item = Result<StreamMsg<(), Progress>, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        if *this.event_due {
            *this.event_due = false;
            return Poll::Ready(Some(Ok(StreamMsg::Event(*this.progress))));
        }
        loop {
            return Poll::Ready(match core::task::ready!(this.body.as_mut().poll_next(cx)) {
                Some(Ok(bytes)) if bytes.is_empty() => continue,
                Some(Ok(bytes)) => {
                    this.progress.fetched_to += bytes.len() as u64;
                    this.watch.set(*this.progress);
                    *this.event_due = true;
                    Some(Ok(StreamMsg::Data(bytes)))
                }
                Some(Err(error)) => Some(Err(error)),
                None => None,
            });
        }
    }
}
