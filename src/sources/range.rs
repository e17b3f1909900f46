//! [`RangeSource`]: a seekable source over a `fetch(start)` closure (HTTP Range requests).

use core::future::Future;
use std::sync::Arc;

use alloc::format;
use alloc::string::String;
use bytes::Bytes;
use futures_core::Stream;

use super::{Progress, ProgressWatch, SharedLen, WithProgress};
use crate::error::StreamError;
use crate::params::StreamParams;
use crate::source::{EngineSource, OpenResult, WriterTask};

/// What a [`RangeSource`]'s `fetch` returns: the body from the requested byte on, and the
/// source's total length if the response told it.
#[derive(Debug)]
pub struct RangeResponse<S> {
    /// The bytes from the requested start to the end of the source.
    pub body: S,
    /// The total length of the source (not of this body), if known: an HTTP
    /// `Content-Range: bytes a-b/total` ([`content_range_total`]) or the `Content-Length` of
    /// a full (`200`) response.
    pub total_len: Option<u64>,
}

impl<S> RangeResponse<S> {
    /// A response with `body` and an unknown total length.
    pub fn new(body: S) -> Self {
        Self {
            body,
            total_len: None,
        }
    }

    /// Sets the total length of the source.
    #[must_use]
    pub fn with_total_len(mut self, total_len: Option<u64>) -> Self {
        self.total_len = total_len;
        self
    }
}

/// A seekable [`EngineSource`] over a closure `fetch(start)` that returns the source's bytes
/// from `start` on: with an HTTP client, one `Range: bytes=start-` request
/// ([`range_header`]). Any client that can stream a body becomes a seekable source.
///
/// `open` fetches from 0 and each seek fetches from its position, dropping the old body (and
/// so the old connection). The total length from the response is reported through
/// [`EngineSource::byte_len`], so readers can `SeekFrom::End` and decoders see `byte_len`; a
/// seek at or past a known total ends the stream without a request (B3). Each chunk is
/// followed by a [`Progress`] event. A body error (a dropped connection) ends the stream
/// with `StreamError::Source(e)`; a seek to the position reached resumes it.
///
/// `fetch` must return the bytes from `start`: with HTTP, check that a request with a
/// non-zero start was answered `206 Partial Content`, not `200` with the whole body.
///
/// With reqwest (`stream` feature):
///
/// ```ignore
/// use futures::TryStreamExt;
/// use kithara_stream::sources::{RangeResponse, RangeSource, content_range_total, range_header};
///
/// let client = reqwest::Client::new();
/// let source = RangeSource::new(move |start| {
///     let request = client.get(url.clone()).header("Range", range_header(start)).send();
///     async move {
///         let response = request.await?.error_for_status()?;
///         let total = response.headers().get("content-range")
///             .and_then(|v| v.to_str().ok()).and_then(content_range_total)
///             .or(response.content_length());
///         Ok(RangeResponse::new(response.bytes_stream()).with_total_len(total))
///     }
/// });
/// ```
///
/// In memory, as a runnable example:
///
/// ```
/// use bytes::Bytes;
/// use futures::{executor::block_on, stream};
/// use kithara_stream::io::{BlockingReader, block_on as run};
/// use kithara_stream::sources::{RangeResponse, RangeSource};
/// use kithara_stream::{Engine, StreamParams};
/// use std::io::{Read, Seek, SeekFrom};
///
/// let data = Bytes::from_static(b"0123456789");
/// let source = RangeSource::new(move |start: u64| {
///     let body = data.slice(start as usize..);
///     async move {
///         let chunks = stream::iter([Ok::<_, std::io::Error>(body)]);
///         Ok(RangeResponse::new(chunks).with_total_len(Some(10)))
///     }
/// });
/// let (engine, handle, stream) = Engine::build(source, StreamParams::default());
/// std::thread::spawn(move || run(engine.run()));
/// let mut reader = BlockingReader::new(stream, handle);
/// reader.seek(SeekFrom::End(-4)).unwrap();
/// let mut tail = String::new();
/// reader.read_to_string(&mut tail).unwrap();
/// assert_eq!(tail, "6789");
/// ```
pub struct RangeSource<F> {
    fetch: Arc<F>,
    len: SharedLen,
    watch: ProgressWatch,
}

impl<F> RangeSource<F> {
    /// A source that calls `fetch(start)` on `open` (start 0) and on each seek.
    pub fn new(fetch: F) -> Self {
        Self {
            fetch: Arc::new(fetch),
            len: SharedLen::default(),
            watch: ProgressWatch::default(),
        }
    }

    /// The source's download progress, updated as the engine takes each chunk (see
    /// [`ProgressWatch`]); clone it before handing the source to the engine.
    pub fn progress_watch(&self) -> ProgressWatch {
        self.watch.clone()
    }

    /// Sets the total length in advance (from a `HEAD` request or a playlist, say); a
    /// response's length replaces it.
    #[must_use]
    pub fn with_total_len(self, total_len: u64) -> Self {
        self.len.set(Some(total_len));
        self
    }
}

impl<F> core::fmt::Debug for RangeSource<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RangeSource")
            .field("len", &self.len.get())
            .finish_non_exhaustive()
    }
}

impl<F, Fut, S, E> RangeSource<F>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<RangeResponse<S>, E>> + Send + 'static,
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Send + 'static,
{
    /// Fetches from `pos`; at or past a known end, an empty task without a request.
    fn start(&self, pos: u64) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
        let known = self.len.get();
        let fetch = match known {
            Some(total) if pos >= total => None,
            _ => Some((self.fetch)(pos)),
        };
        let (len, watch) = (self.len.clone(), self.watch.clone());
        async move {
            let Some(fetch) = fetch else {
                let nothing = futures_util::stream::empty::<Result<Bytes, E>>();
                let at = known.unwrap_or_default();
                return Ok((
                    WriterTask::new(WithProgress::new(nothing, at, known, watch)),
                    (),
                ));
            };
            let response = fetch.await.map_err(StreamError::Source)?;
            len.set(response.total_len);
            let total = response.total_len.or_else(|| len.get());
            Ok((
                WriterTask::new(WithProgress::new(response.body, pos, total, watch)),
                (),
            ))
        }
    }
}

impl<F, Fut, S, E> EngineSource for RangeSource<F>
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<RangeResponse<S>, E>> + Send + 'static,
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Send + 'static,
{
    type Error = E;
    type Control = ();
    type Event = Progress;

    fn open(
        &self,
        _params: StreamParams,
    ) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
        self.start(0)
    }

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
        self.len.get()
    }
}

/// The HTTP `Range` header value that asks for the bytes from `start` on: `bytes=start-`.
///
/// ```
/// assert_eq!(kithara_stream::sources::range_header(1024), "bytes=1024-");
/// ```
pub fn range_header(start: u64) -> String {
    format!("bytes={start}-")
}

/// The total length in an HTTP `Content-Range` header value (`bytes 0-99/1234` gives 1234);
/// `None` if it is unknown (`*`) or the value is malformed.
///
/// ```
/// use kithara_stream::sources::content_range_total;
///
/// assert_eq!(content_range_total("bytes 100-199/1234"), Some(1234));
/// assert_eq!(content_range_total("bytes */1234"), Some(1234));
/// assert_eq!(content_range_total("bytes 0-99/*"), None);
/// ```
pub fn content_range_total(value: &str) -> Option<u64> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (_, total) = rest.rsplit_once('/')?;
    total.trim().parse().ok()
}
