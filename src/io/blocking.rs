//! [`BlockingReader`]: `std::io::Read + BufRead + Seek` for a decoder thread.

use core::convert::Infallible;
use core::pin::Pin;
use std::io::{self, BufRead, Read, Seek, SeekFrom};
use std::time::{Duration, Instant};

use alloc::vec::Vec;
use futures_util::io::{AsyncBufRead, AsyncRead, AsyncSeek};

use super::{AsyncReader, SeekSwitch, SideMsg, timed_out};
use crate::exec::poll_blocking_until;
use crate::handle::EngineHandle;
use crate::reader::Reader;

/// A blocking `std::io::Read + BufRead + Seek` over an [`EngineStream`](crate::EngineStream),
/// for a decoder on its own thread (symphonia, rodio).
///
/// It needs no runtime: while it waits for bytes or for a seek it parks its thread, and the
/// engine's wakeups unpark it. The engine runs elsewhere (spawned on any executor, or on a
/// plain thread with [`exec::block_on`](crate::exec::block_on)).
///
/// **Not for use inside an async task**: a read blocks the thread it runs on, which would
/// stall that executor (and deadlock a single-threaded one if the engine runs there too).
/// In async code use [`AsyncReader`].
///
/// It behaves as [`AsyncReader`] does: `Control`/`Event` messages go to
/// [`on_message`](Self::on_message)'s callback or a side queue; stream errors become
/// `io::Error`s carrying the [`StreamError`](crate::StreamError); `SeekFrom::End` works when
/// the source reports its length; a [`SeekSwitch`] turns seeking off for a format probe.
/// With the `symphonia` feature it implements symphonia's `MediaSource`. The type parameters
/// are the stream's and default the same way (`C = ()`, `Ev = ()`, `E = Infallible`).
///
/// ```
/// use kithara_stream::exec::block_on;
/// use kithara_stream::io::BlockingReader;
/// use kithara_stream::{BytesSource, Engine, StreamParams};
/// use std::io::{Read, Seek, SeekFrom};
///
/// let data: Vec<u8> = (0..=255).collect();
/// let (engine, handle, stream) = Engine::build(BytesSource::new(data), StreamParams::default());
/// std::thread::spawn(move || block_on(engine.run())); // or spawn it on your runtime
///
/// let mut reader = BlockingReader::new(stream, handle);
/// let mut first = [0; 4];
/// reader.read_exact(&mut first).unwrap();
/// assert_eq!(first, [0, 1, 2, 3]);
/// assert_eq!(reader.seek(SeekFrom::End(-2)).unwrap(), 254);
/// let mut rest = Vec::new();
/// reader.read_to_end(&mut rest).unwrap();
/// assert_eq!(rest, [254, 255]);
/// ```
#[derive(Debug)]
#[must_use = "readers do nothing unless read"]
pub struct BlockingReader<C = (), Ev = (), E = Infallible> {
    inner: AsyncReader<C, Ev, E>,
    timeout: Option<Duration>,
}

impl<C, Ev, E> BlockingReader<C, Ev, E> {
    /// A reader of `stream` that seeks through `handle`.
    pub fn new(stream: Reader<C, Ev, E>, handle: EngineHandle<E>) -> Self {
        Self {
            inner: AsyncReader::new(stream, handle),
            timeout: None,
        }
    }

    /// A reader of a stream without a handle: it cannot seek beyond the chunk it holds.
    pub fn from_reader(stream: Reader<C, Ev, E>) -> Self {
        Self {
            inner: AsyncReader::from_reader(stream),
            timeout: None,
        }
    }

    /// Hands every `Control` and `Event` to `callback`, in stream order, on the reading
    /// thread (see [`AsyncReader::on_message`]). A `std::sync::mpsc::Sender` in the callback
    /// makes a side queue another thread can read.
    pub fn on_message(self, callback: impl FnMut(SideMsg<C, Ev>) + Send + 'static) -> Self {
        Self {
            inner: self.inner.on_message(callback),
            timeout: self.timeout,
        }
    }

    /// Gives up waiting after `timeout`: a read, a `fill_buf` or a seek that waits longer
    /// returns `io::ErrorKind::TimedOut` (nothing is lost: a later read goes on where the
    /// reader was; an abandoned seek is still applied, and the next call waits for it). It
    /// needs no runtime: the thread parks with a deadline.
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Polls `poll` until it is ready or the read timeout passes.
    fn wait<T>(
        timeout: Option<Duration>,
        poll: impl FnMut(&mut core::task::Context<'_>) -> core::task::Poll<io::Result<T>>,
    ) -> io::Result<T> {
        let deadline = timeout.map(|timeout| Instant::now() + timeout);
        poll_blocking_until(deadline, poll).unwrap_or_else(|| Err(timed_out()))
    }

    /// Takes the messages queued so far (always empty with a callback).
    pub fn take_messages(&mut self) -> Vec<SideMsg<C, Ev>> {
        self.inner.take_messages()
    }

    /// The stream position of the next byte a read returns (see
    /// [`AsyncReader::position`]).
    pub fn position(&self) -> u64 {
        self.inner.position()
    }

    /// The source's total length, if it reported one.
    pub fn byte_len(&self) -> Option<u64> {
        self.inner.byte_len()
    }

    /// Whether seeks can reach the engine (see [`AsyncReader::is_seekable`]).
    pub fn is_seekable(&self) -> bool {
        self.inner.is_seekable()
    }

    /// The switch that turns seeking off and on (see [`SeekSwitch`]).
    pub fn seek_switch(&self) -> SeekSwitch {
        self.inner.seek_switch()
    }

    /// The async reader inside.
    pub fn into_async(self) -> AsyncReader<C, Ev, E> {
        self.inner
    }
}

impl<C, Ev, E> From<AsyncReader<C, Ev, E>> for BlockingReader<C, Ev, E> {
    fn from(inner: AsyncReader<C, Ev, E>) -> Self {
        Self {
            inner,
            timeout: None,
        }
    }
}

impl<C, Ev, E> Read for BlockingReader<C, Ev, E>
where
    E: std::error::Error + Send + Sync + 'static,
{
    /// Blocks until bytes arrive (`Ok(n)`), the data ends (`Ok(0)`), or the stream fails
    /// (`Err`, once; then `Ok(0)` until a seek).
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let inner = &mut self.inner;
        Self::wait(self.timeout, |cx| Pin::new(&mut *inner).poll_read(cx, buf))
    }
}

impl<C, Ev, E> BufRead for BlockingReader<C, Ev, E>
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        let inner = &mut self.inner;
        Self::wait(self.timeout, |cx| {
            Pin::new(&mut *inner).poll_fill_buf(cx).map_ok(<[u8]>::len)
        })?;
        Ok(self.inner.buffer())
    }

    fn consume(&mut self, amt: usize) {
        Pin::new(&mut self.inner).consume(amt);
    }
}

impl<C, Ev, E> Seek for BlockingReader<C, Ev, E>
where
    E: std::error::Error + Send + Sync + 'static,
{
    /// Blocks until the engine applied the seek; see [`AsyncReader`]'s `poll_seek` for the
    /// errors. A seek to the current position or within the held chunk returns at once.
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let inner = &mut self.inner;
        Self::wait(self.timeout, |cx| Pin::new(&mut *inner).poll_seek(cx, pos))
    }

    /// The position of the next byte a read returns, once a seek still in flight (one a
    /// timeout abandoned) has resolved; never asks the engine for anything else.
    fn stream_position(&mut self) -> io::Result<u64> {
        let inner = &mut self.inner;
        // A failed seek leaves the reader where it was: the position says so.
        let _ = Self::wait(self.timeout, |cx| inner.poll_settled(cx).map(Ok))?;
        Ok(self.position())
    }
}

#[cfg(feature = "symphonia")]
impl<C, Ev, E> symphonia_core::io::MediaSource for BlockingReader<C, Ev, E>
where
    C: Send + Sync,
    Ev: Send + Sync,
    E: std::error::Error + Send + Sync + 'static,
{
    /// Whether seeks reach the engine now: turn the [`SeekSwitch`] off for a format probe
    /// that should not seek to the end of a download.
    fn is_seekable(&self) -> bool {
        BlockingReader::is_seekable(self)
    }

    /// The source's length, if it reported one.
    fn byte_len(&self) -> Option<u64> {
        BlockingReader::byte_len(self)
    }
}
