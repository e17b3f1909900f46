//! What a user implements: [`EngineSource`], and the [`WriterTask`] it returns.

use core::convert::Infallible;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

use futures_core::Stream;
use futures_core::stream::BoxStream;

use crate::error::StreamError;
use crate::msg::StreamMsg;
use crate::params::StreamParams;

/// What `open` and `seek_bytes` resolve to: the writer task and the control state to go
/// on with, or the error to report.
pub type OpenResult<S> = Result<
    (
        WriterTask<
            <S as EngineSource>::Control,
            <S as EngineSource>::Event,
            <S as EngineSource>::Error,
        >,
        <S as EngineSource>::Control,
    ),
    StreamError<<S as EngineSource>::Error>,
>;

/// The producing side of a source: data and in-band messages, in order, or an error.
///
/// Built from any `Stream<Item = Result<StreamMsg<C, Ev>, E>> + Send + 'static`. The engine
/// polls it only while the ring has room, stops at its first error or its end, and drops it
/// when a seek replaces it or the stream goes away (which cancels the fetch behind it).
///
/// The type parameters are the source's `Control`, `Event` and `Error` types, defaulting to
/// `()`, `()` and `Infallible` like [`StreamMsg`]'s and [`StreamError`]'s.
#[must_use = "a writer task does nothing unless an engine polls it"]
pub struct WriterTask<C = (), Ev = (), E = Infallible> {
    stream: BoxStream<'static, Result<StreamMsg<C, Ev>, E>>,
}

impl<C, Ev, E> WriterTask<C, Ev, E> {
    /// Wraps `stream` (boxed once, here).
    pub fn new<S>(stream: S) -> Self
    where
        S: Stream<Item = Result<StreamMsg<C, Ev>, E>> + Send + 'static,
    {
        Self {
            stream: alloc::boxed::Box::pin(stream),
        }
    }
}

impl<C, Ev, E> Stream for WriterTask<C, Ev, E> {
    type Item = Result<StreamMsg<C, Ev>, E>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.stream.as_mut().poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.stream.size_hint()
    }
}

impl<C, Ev, E> fmt::Debug for WriterTask<C, Ev, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriterTask").finish_non_exhaustive()
    }
}

/// A seekable (or not) producer of bytes that an [`Engine`](crate::Engine) drives.
///
/// The futures that `open` and `seek_bytes` return are `'static`: they own what they need
/// (clones of `Arc`s, say), because the engine keeps them next to the source. Write them as
/// `async move` blocks:
///
/// ```
/// use bytes::Bytes;
/// use futures::stream;
/// use kithara_stream::{EngineSource, OpenResult, StreamMsg, StreamParams, WriterTask};
/// use std::sync::Arc;
///
/// /// Counts bytes from a position; seekable.
/// struct Counter {
///     len: u64,
///     label: Arc<str>,
/// }
///
/// impl Counter {
///     fn from(&self, pos: u64) -> WriterTask<Arc<str>, u64, std::io::Error> {
///         let bytes: Vec<u8> = (pos..self.len).map(|i| i as u8).collect();
///         WriterTask::new(stream::iter([
///             Ok(StreamMsg::Data(Bytes::from(bytes))),
///             Ok(StreamMsg::Event(pos)),
///         ]))
///     }
/// }
///
/// impl EngineSource for Counter {
///     type Error = std::io::Error;
///     type Control = Arc<str>;
///     type Event = u64;
///
///     fn open(&self, _params: StreamParams) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
///         let (task, label) = (self.from(0), self.label.clone());
///         async move { Ok((task, label)) }
///     }
///
///     fn seek_bytes(
///         &self,
///         pos: u64,
///         control: Self::Control,
///     ) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
///         let task = self.from(pos);
///         async move { Ok((task, control)) }
///     }
///
///     fn supports_seek(&self) -> bool {
///         true
///     }
/// }
/// ```
pub trait EngineSource: Send + 'static {
    /// The source's own error (network, I/O, parse).
    type Error: Send + 'static;
    /// The control state: what a seek needs to know besides the position (for example the
    /// current HLS variant). The engine keeps the latest one; see
    /// [`EngineSource::seek_bytes`].
    type Control: Clone + Send + 'static;
    /// Events for the consumer (for example download progress).
    type Event: Send + 'static;

    /// Starts fetching from byte 0. Returns the writer task and the initial control state.
    ///
    /// Called once, when [`Run`](crate::Run) is first polled. An error is yielded by the
    /// stream once, then the stream ends and the engine stops.
    fn open(&self, params: StreamParams)
    -> impl Future<Output = OpenResult<Self>> + Send + 'static;

    /// Starts fetching from byte `pos`, with a clone of the current control state: the one
    /// `open` returned, replaced by every `Control` the writer task produced and by the one
    /// each successful seek returned. Returns the new writer task and control state.
    ///
    /// On success the engine drops the old writer task and discards what it produced; on
    /// error nothing changes and the caller of the seek gets the error. A position past the
    /// end is the source's to answer; the built-in sources end the stream, as a file read
    /// past its end does.
    ///
    /// The default returns `Err(StreamError::SeekNotSupported)`.
    fn seek_bytes(
        &self,
        pos: u64,
        control: Self::Control,
    ) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
        let _ = (pos, control);
        core::future::ready(Err(StreamError::SeekNotSupported))
    }

    /// The source's total length in bytes, if known; the default is `None`.
    ///
    /// Readers use it for `SeekFrom::End` and a decoder's `byte_len`. The engine asks when
    /// `open` resolves (before anything the new writer task produces reaches the stream),
    /// when a seek resolves and when a writer task ends, and publishes the answer through
    /// [`EngineHandle::byte_len`](crate::EngineHandle::byte_len). A source that learns its
    /// length while opening (an HTTP `Content-Length` or `Content-Range`) stores it in a
    /// shared cell from its `open` future and returns it here. Must be cheap: no I/O.
    fn byte_len(&self) -> Option<u64> {
        None
    }

    /// Whether `seek_bytes` works. Asked once, by [`Engine::build`](crate::Engine::build).
    /// The default is `false`: seeks then fail at once with `SeekNotSupported`.
    fn supports_seek(&self) -> bool {
        false
    }
}
