//! A built-in source over bytes in memory.

use core::convert::Infallible;
use core::future::Future;

use bytes::Bytes;
use futures_util::stream;

use crate::msg::StreamMsg;
use crate::params::{DEFAULT_CHUNK_SIZE, StreamParams};
use crate::source::{EngineSource, OpenResult, WriterTask};

/// An [`EngineSource`] over bytes in memory: seekable, never failing, producing slices of
/// the bytes (no copy) of at most [`BytesSource::with_chunk_size`] bytes each.
///
/// A seek past the end yields the end of data, as a file read past its end does.
///
/// ```
/// use futures::{StreamExt, executor::block_on, future::join};
/// use kithara_stream::{BytesSource, Engine, StreamParams};
///
/// let source = BytesSource::new(&b"hello"[..]);
/// let (engine, _handle, stream) = Engine::build(source, StreamParams::default());
/// let read = stream.map(|item| item.unwrap().into_data().unwrap().to_vec()).concat();
/// let ((), bytes) = block_on(join(engine.run(), read));
/// assert_eq!(bytes, b"hello");
/// ```
#[derive(Debug, Clone)]
pub struct BytesSource {
    data: Bytes,
    chunk_size: usize,
}

impl BytesSource {
    /// A source producing `data`, in chunks of 32 KiB.
    pub fn new(data: impl Into<Bytes>) -> Self {
        Self {
            data: data.into(),
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }

    /// Sets the size of the chunks the source produces.
    ///
    /// # Panics
    ///
    /// If `bytes` is 0.
    #[must_use]
    #[track_caller]
    pub fn with_chunk_size(mut self, bytes: usize) -> Self {
        assert!(bytes > 0, "chunk_size must be greater than zero");
        self.chunk_size = bytes;
        self
    }

    /// The length of the data.
    pub fn len(&self) -> u64 {
        self.data.len() as u64
    }

    /// Whether the data is empty.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    fn task_from(&self, pos: u64) -> WriterTask<(), (), Infallible> {
        let start = usize::try_from(pos).map_or(self.data.len(), |p| p.min(self.data.len()));
        let rest = self.data.slice(start..);
        let chunk_size = self.chunk_size;
        let chunks = (0..rest.len()).step_by(chunk_size).map(move |at| {
            let end = (at + chunk_size).min(rest.len());
            Ok(StreamMsg::Data(rest.slice(at..end)))
        });
        WriterTask::new(stream::iter(chunks))
    }
}

impl EngineSource for BytesSource {
    type Error = Infallible;
    type Control = ();
    type Event = ();

    fn open(
        &self,
        _params: StreamParams,
    ) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
        core::future::ready(Ok((self.task_from(0), ())))
    }

    fn seek_bytes(
        &self,
        pos: u64,
        control: (),
    ) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
        core::future::ready(Ok((self.task_from(pos), control)))
    }

    fn supports_seek(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.len())
    }
}
