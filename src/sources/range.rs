//! [`RangeSource`]: the one seekable source, over anything whose byte ranges can be fetched.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use futures_core::Stream;

use super::fetch::{ByteRange, Fetch, RangeMismatch, RangeResponse, same_version};
use super::{Progress, ProgressWatch, WithProgress};
use crate::error::StreamError;
use crate::params::StreamParams;
use crate::source::{EngineSource, OpenResult, WriterTask};
use crate::store::Validator;
use std::sync::Arc;
use std::sync::{Mutex, PoisonError};

use crate::sync::AtomicLen;

/// A seekable [`EngineSource`] over a [`Fetch`]: a closure `fetch(range)` that returns the
/// resource's bytes from `range.start` on (with an HTTP client, one `Range` request), a file
/// ([`AsyncReadSource`](super::AsyncReadSource) is one over a file opener), or a type of
/// yours.
///
/// `open` fetches from 0 and each seek fetches from its position, dropping the old body (and
/// so the old connection). What a response says is checked before a byte of it is passed on:
///
/// - **Length:** the resource's total length is learned from the responses
///   ([`RangeResponse::total_len`](super::RangeResponse)) and reported through
///   [`EngineSource::byte_len`], so readers can `SeekFrom::End` and decoders see `byte_len`.
///   A response never lowers a known length (a part's length is not the resource's). A seek
///   at or past the known length ends the stream without a fetch.
/// - **Start:** a body that starts before the byte asked for (a server that ignored the
///   range and answered with the whole resource) is skipped forward to it; one that starts
///   after it fails with [`RangeMismatch::WrongStart`].
/// - **End:** a body that ends before the known length fails with
///   [`RangeMismatch::Truncated`], never a clean end: a cut connection does not look like
///   the end of the data. Bytes past the length are dropped. When no length is known, the
///   body's clean end is the end of the resource, and its length from then on.
///
/// Any error of the fetch or its body ends the stream with `StreamError::Source(e)`; a seek
/// to the position reached resumes it. Each chunk is followed by a [`Progress`] event.
///
/// With reqwest (`stream` feature), errors carried as `std::io::Error`:
///
/// ```ignore
/// use futures::TryStreamExt;
/// use kithara_stream::sources::{ByteRange, HttpStatus, RangeResponse, RangeSource};
///
/// let client = reqwest::Client::new();
/// let source = RangeSource::new(move |range: ByteRange| {
///     let request = client.get(url.clone()).header("Range", range.header()).send();
///     async move {
///         let response = request.await.map_err(std::io::Error::other)?;
///         let header = |name| response.headers().get(name)?.to_str().ok().map(String::from);
///         let status = response.status().as_u16();
///         if let Some(error) = HttpStatus::check(status, header("retry-after").as_deref()) {
///             return Err(error.into()); // a 404 is `NotFound`, a 503 retryable
///         }
///         let content_range = header("content-range");
///         let content_length = response.content_length();
///         let body = response.bytes_stream().map_err(std::io::Error::other);
///         Ok(RangeResponse::http(status, content_range.as_deref(), content_length, body))
///     }
/// });
/// ```
///
/// In memory, as a runnable example:
///
/// ```
/// use bytes::Bytes;
/// use futures::stream;
/// use kithara_stream::{exec::block_on, io::BlockingReader};
/// use kithara_stream::sources::{ByteRange, RangeResponse, RangeSource};
/// use kithara_stream::{Engine, StreamParams};
/// use std::io::{Read, Seek, SeekFrom};
///
/// let data = Bytes::from_static(b"0123456789");
/// let source = RangeSource::new(move |range: ByteRange| {
///     let body = data.slice(range.start as usize..);
///     async move {
///         let chunks = stream::iter([Ok::<_, std::io::Error>(body)]);
///         Ok(RangeResponse::new(chunks).with_total_len(Some(10)))
///     }
/// });
/// let (engine, handle, stream) = Engine::build(source, StreamParams::default());
/// std::thread::spawn(move || block_on(engine.run()));
/// let mut reader = BlockingReader::new(stream, handle);
/// reader.seek(SeekFrom::End(-4)).unwrap();
/// let mut tail = String::new();
/// reader.read_to_string(&mut tail).unwrap();
/// assert_eq!(tail, "6789");
/// ```
pub struct RangeSource<F> {
    fetch: F,
    len: Arc<AtomicLen>,
    /// The version of the resource the responses so far were of.
    version: Arc<Mutex<Option<Validator>>>,
    watch: ProgressWatch,
}

impl<F> RangeSource<F> {
    /// A source that fetches from 0 on `open` and from the position on each seek.
    pub fn new(fetch: F) -> Self {
        Self {
            fetch,
            len: Arc::new(AtomicLen::new()),
            version: Arc::default(),
            watch: ProgressWatch::default(),
        }
    }

    /// The source's download progress, updated as the engine takes each chunk (see
    /// [`ProgressWatch`]); clone it before handing the source to the engine.
    pub fn progress_watch(&self) -> ProgressWatch {
        self.watch.clone()
    }

    /// Sets the total length in advance (from a `HEAD` request or a playlist, say). A
    /// response that reports a larger length raises it.
    #[must_use]
    pub fn with_total_len(self, total_len: u64) -> Self {
        self.len.store(Some(total_len));
        self
    }

    /// The fetch, to configure it before the engine starts.
    pub(crate) fn fetch_mut(&mut self) -> &mut F {
        &mut self.fetch
    }

    pub(crate) fn known_len(&self) -> Option<u64> {
        self.len.load()
    }
}

impl<F> core::fmt::Debug for RangeSource<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RangeSource")
            .field("len", &self.len.load())
            .finish_non_exhaustive()
    }
}

impl<F: Fetch> RangeSource<F> {
    /// Fetches from `pos`; at or past a known end, an empty task without a fetch.
    fn start(&self, pos: u64) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
        let known = self.len.load();
        let fetch = match known {
            Some(total) if pos >= total => None,
            _ => Some(self.fetch.fetch(ByteRange::from(pos))),
        };
        let (len, version, watch) = (self.len.clone(), self.version.clone(), self.watch.clone());
        async move {
            let Some(fetch) = fetch else {
                let nothing = Checked::<F::Body>::nothing(pos, len);
                let task = WithProgress::new(nothing, pos, known, watch);
                return Ok((WriterTask::new(task), ()));
            };
            let response = fetch.await.map_err(StreamError::Source)?;
            let mut known = version.lock().unwrap_or_else(PoisonError::into_inner);
            same_version(&mut known, response.validator.as_ref())
                .map_err(|mismatch| StreamError::Source(mismatch.into()))?;
            drop(known);
            let body = Checked::new(response, ByteRange::from(pos), len)
                .map_err(|mismatch| StreamError::Source(mismatch.into()))?;
            let total = body.end();
            Ok((
                WriterTask::new(WithProgress::new(body, pos, total, watch)),
                (),
            ))
        }
    }
}

impl<F: Fetch> EngineSource for RangeSource<F> {
    type Error = F::Error;
    type Control = ();
    type Event = Progress;

    fn open(
        &self,
        _params: StreamParams,
    ) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
        self.start(0)
    }

    /// Fetches from `pos`; at or past the known end, the stream ends at once.
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
        self.len.load()
    }
}

pin_project_lite::pin_project! {
    /// A fetched body held to what was asked for: skipped forward to `pos`, cut at `end`,
    /// and an error, not an end, when it stops short of `end`.
    pub(super) struct Checked<B> {
        // `None` once the body has ended, failed or reached `end` (dropped, with its
        // connection).
        #[pin]
        body: Option<B>,
        // The position of the next byte passed on.
        pos: u64,
        // Bytes still to drop before `pos`.
        skip: u64,
        // The resource's length, if known: where the body must end.
        end: Option<u64>,
        len: Arc<AtomicLen>,
        // Bytes the body delivered, skipped ones included: progress a stall timer can see.
        received: u64,
    }
}

impl<B> Checked<B> {
    /// The body of `response` to a fetch of `range`, held to it; `len` learns the length
    /// the response reports (never lower than the one known).
    pub(super) fn new(
        response: RangeResponse<B>,
        range: ByteRange,
        len: Arc<AtomicLen>,
    ) -> Result<Self, RangeMismatch> {
        let skip = match response.start {
            Some(got) if got > range.start => {
                return Err(RangeMismatch::WrongStart {
                    asked: range.start,
                    got,
                });
            }
            Some(got) => range.start - got,
            None => 0,
        };
        len.raise(response.total_len);
        let end = match (range.end, len.load()) {
            (Some(end), Some(total)) => Some(end.min(total)),
            (end, total) => end.or(total),
        };
        Ok(Self {
            body: Some(response.body),
            pos: range.start,
            skip,
            end,
            len,
            received: 0,
        })
    }

    /// The bytes the body delivered so far, skipped ones included.
    pub(super) fn received(&self) -> u64 {
        self.received
    }

    /// Where the body must end, if known.
    pub(super) fn end(&self) -> Option<u64> {
        self.end
    }

    /// A body that holds nothing, at `pos`.
    fn nothing(pos: u64, len: Arc<AtomicLen>) -> Self {
        Self {
            body: None,
            pos,
            skip: 0,
            end: None,
            len,
            received: 0,
        }
    }
}

impl<B, E> Stream for Checked<B>
where
    B: Stream<Item = Result<Bytes, E>>,
    E: From<RangeMismatch>,
{
    type Item = Result<Bytes, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut this = self.project();
        loop {
            let Some(body) = this.body.as_mut().as_pin_mut() else {
                return Poll::Ready(None);
            };
            let item = ready!(body.poll_next(cx));
            let mut bytes = match item {
                Some(Ok(bytes)) => bytes,
                Some(Err(error)) => {
                    this.body.set(None);
                    return Poll::Ready(Some(Err(error)));
                }
                None => {
                    this.body.set(None);
                    return Poll::Ready(match *this.end {
                        Some(end) if *this.pos < end => Some(Err(RangeMismatch::Truncated {
                            at: *this.pos,
                            expected: end,
                        }
                        .into())),
                        Some(_) => None,
                        None => {
                            this.len.raise(Some(*this.pos));
                            None
                        }
                    });
                }
            };
            *this.received += bytes.len() as u64;
            let skipped = (*this.skip).min(bytes.len() as u64);
            bytes.advance(skipped as usize);
            *this.skip -= skipped;
            if let Some(end) = *this.end {
                let room = end.saturating_sub(*this.pos);
                bytes.truncate(room.min(bytes.len() as u64) as usize);
                if room <= bytes.len() as u64 {
                    this.body.set(None);
                }
            }
            if !bytes.is_empty() {
                *this.pos += bytes.len() as u64;
                return Poll::Ready(Some(Ok(bytes)));
            }
        }
    }
}
