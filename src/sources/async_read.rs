//! [`AsyncReadSource`]: a seekable source over a futures-io `AsyncRead + AsyncSeek` opener.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, ready};
use std::io::{self, SeekFrom};

use bytes::{Bytes, BytesMut};
use futures_core::Stream;
use futures_util::io::{AsyncRead, AsyncSeek, AsyncSeekExt};

use super::fetch::{ByteRange, Fetch, RangeResponse};
use super::{Progress, ProgressWatch, RangeSource};
use crate::params::{DEFAULT_CHUNK_SIZE, StreamParams};
use crate::source::{EngineSource, OpenResult};

/// An [`EngineSource`] over anything that opens a futures-io `AsyncRead + AsyncSeek`: a file
/// (smol's or async-std's `File`, or tokio's through tokio-util's compat layer).
///
/// A [`RangeSource`] whose fetch is the opener: `open` calls it, learns the length with
/// `seek(End(0))` (reported through [`EngineSource::byte_len`]) and reads from 0; each seek
/// opens again and seeks to the position, so the old reader is dropped with the old writer
/// task. Reads of up to [`with_chunk_size`](Self::with_chunk_size) bytes become `Data`
/// items, each followed by a [`Progress`] event. A file that ends before the length it had
/// when opened fails with `UnexpectedEof` (see [`RangeSource`] for the checks).
///
/// ```
/// use futures::io::Cursor;
/// use futures::{AsyncReadExt, executor::block_on, future::join};
/// use kithara_stream::sources::AsyncReadSource;
/// use kithara_stream::{Engine, StreamParams, io::AsyncReader};
///
/// let source = AsyncReadSource::new(|| async { Ok(Cursor::new(b"file contents".to_vec())) });
/// let (engine, handle, stream) = Engine::build(source, StreamParams::default());
/// let mut reader = AsyncReader::new(stream, handle);
/// let consumer = async move {
///     let mut text = String::new();
///     reader.read_to_string(&mut text).await.unwrap();
///     (text, reader.byte_len())
/// };
/// let ((), (text, len)) = block_on(join(engine.run(), consumer));
/// assert_eq!(text, "file contents");
/// assert_eq!(len, Some(13));
/// ```
pub struct AsyncReadSource<F>(RangeSource<ReadFetch<F>>);

/// A [`Fetch`] over anything that opens a futures-io `AsyncRead + AsyncSeek` (a file): each
/// fetch calls the opener, learns the length with `seek(End(0))`, seeks to the range's
/// start and reads chunks of up to [`with_chunk_size`](Self::with_chunk_size) bytes.
///
/// [`AsyncReadSource`] is a [`RangeSource`] over one; hand one to
/// [`CachedSource`](super::CachedSource) to keep what was read.
pub struct ReadFetch<F> {
    open: F,
    chunk_size: usize,
}

impl<F> ReadFetch<F> {
    /// A fetch whose every call opens with `open`.
    pub fn new(open: F) -> Self {
        Self {
            open,
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }

    /// Sets the size of each read (default 32 KiB).
    ///
    /// # Panics
    ///
    /// If `bytes` is 0.
    #[must_use]
    #[track_caller]
    pub fn with_chunk_size(mut self, bytes: usize) -> Self {
        self.set_chunk_size(bytes);
        self
    }

    #[track_caller]
    fn set_chunk_size(&mut self, bytes: usize) {
        assert!(bytes > 0, "chunk_size must be greater than zero");
        self.chunk_size = bytes;
    }
}

impl<F> core::fmt::Debug for ReadFetch<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReadFetch")
            .field("chunk_size", &self.chunk_size)
            .finish_non_exhaustive()
    }
}

impl<F> AsyncReadSource<F> {
    /// A source whose every `open` and seek calls `open` for a fresh reader.
    pub fn new(open: F) -> Self {
        Self(RangeSource::new(ReadFetch::new(open)))
    }

    /// The source's read progress (see [`RangeSource::progress_watch`]).
    pub fn progress_watch(&self) -> ProgressWatch {
        self.0.progress_watch()
    }

    /// Sets the size of each read (default 32 KiB).
    ///
    /// # Panics
    ///
    /// If `bytes` is 0.
    #[must_use]
    #[track_caller]
    pub fn with_chunk_size(mut self, bytes: usize) -> Self {
        self.0.fetch_mut().set_chunk_size(bytes);
        self
    }
}

impl<F> core::fmt::Debug for AsyncReadSource<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AsyncReadSource")
            .field("len", &self.0.known_len())
            .finish_non_exhaustive()
    }
}

impl<F, Fut, R> Fetch for ReadFetch<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = io::Result<R>> + Send + 'static,
    R: AsyncRead + AsyncSeek + Unpin + Send + 'static,
{
    type Error = io::Error;
    type Body = ReadChunks<R>;

    fn fetch(
        &self,
        range: ByteRange,
    ) -> impl Future<Output = io::Result<RangeResponse<ReadChunks<R>>>> + Send + 'static {
        let (opening, chunk_size) = ((self.open)(), self.chunk_size);
        async move {
            let mut reader = opening.await?;
            let total = reader.seek(SeekFrom::End(0)).await?;
            reader.seek(SeekFrom::Start(range.start)).await?;
            let chunks = ReadChunks {
                reader,
                chunk_size,
                buf: BytesMut::new(),
                done: false,
            };
            Ok(RangeResponse::new(chunks)
                .with_total_len(Some(total))
                .with_start(Some(range.start)))
        }
    }
}

/// A [`RangeSource`] over the file: its checks, length and progress.
impl<F, Fut, R> EngineSource for AsyncReadSource<F>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = io::Result<R>> + Send + 'static,
    R: AsyncRead + AsyncSeek + Unpin + Send + 'static,
{
    type Error = io::Error;
    type Control = ();
    type Event = Progress;

    fn open(
        &self,
        params: StreamParams,
    ) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
        self.0.open(params)
    }

    /// Opens again and seeks to `pos`; past the end, the stream ends at once.
    fn seek_bytes(
        &self,
        pos: u64,
        control: (),
    ) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
        self.0.seek_bytes(pos, control)
    }

    fn supports_seek(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        self.0.byte_len()
    }
}

/// The body of a [`ReadFetch`]: reads of up to its chunk size, as a stream; ends at the
/// first `Ok(0)`.
#[derive(Debug)]
pub struct ReadChunks<R> {
    reader: R,
    chunk_size: usize,
    /// Zeroed space for the next read; what a read fills is split off without a copy.
    buf: BytesMut,
    done: bool,
}

impl<R: AsyncRead + Unpin> Stream for ReadChunks<R> {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if this.buf.len() < this.chunk_size {
            this.buf.resize(this.chunk_size, 0);
        }
        loop {
            match ready!(Pin::new(&mut this.reader).poll_read(cx, &mut this.buf)) {
                Ok(0) => {
                    this.done = true;
                    return Poll::Ready(None);
                }
                Ok(n) => {
                    return Poll::Ready(Some(Ok(this.buf.split_to(n).freeze())));
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(error)));
                }
            }
        }
    }
}
