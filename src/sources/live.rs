//! [`StreamSource`]: a live, non-seekable stream of bytes.

use core::future::Future;
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use futures_core::Stream;

use super::{Progress, ProgressWatch, WithProgress};
use crate::error::StreamError;
use crate::params::StreamParams;
use crate::source::{EngineSource, OpenResult, WriterTask};

/// An [`EngineSource`] over any `Stream<Item = Result<Bytes, E>>`: a live stream (internet
/// radio, a microphone), which cannot seek.
///
/// The stream's chunks are passed through without a copy, each followed by a [`Progress`]
/// event (`total: None`). A stream error ends the engine's stream with
/// `StreamError::Source(e)`.
///
/// ```
/// use bytes::Bytes;
/// use futures::{StreamExt, executor::block_on, future::join, stream};
/// use kithara_stream::sources::StreamSource;
/// use kithara_stream::{Engine, StreamMsg, StreamParams};
///
/// let chunks = stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"live ")), Ok(Bytes::from_static(b"audio"))]);
/// let (engine, handle, stream) = Engine::build(StreamSource::new(chunks), StreamParams::default());
/// assert!(!handle.supports_seek());
/// let bytes = stream.filter_map(|msg| async move { msg.unwrap().into_data().map(|b| b.to_vec()) }).concat();
/// let ((), bytes) = block_on(join(engine.run(), bytes));
/// assert_eq!(bytes, &b"live audio"[..]);
/// ```
#[derive(Debug)]
pub struct StreamSource<S> {
    /// Taken by `open` (which the engine calls once).
    stream: Mutex<Option<S>>,
    watch: ProgressWatch,
}

impl<S> StreamSource<S> {
    /// A source that produces `stream`'s chunks.
    pub fn new(stream: S) -> Self {
        Self {
            stream: Mutex::new(Some(stream)),
            watch: ProgressWatch::default(),
        }
    }

    /// The source's progress, updated as the engine takes each chunk (see
    /// [`ProgressWatch`]); clone it before handing the source to the engine.
    pub fn progress_watch(&self) -> ProgressWatch {
        self.watch.clone()
    }
}

impl<S, E> EngineSource for StreamSource<S>
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Send + 'static,
{
    type Error = E;
    type Control = ();
    type Event = Progress;

    /// Hands the stream to the engine. A second `open` (the engine never makes one) fails
    /// with `ChannelClosed`.
    fn open(
        &self,
        _params: StreamParams,
    ) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
        let stream = self
            .stream
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        core::future::ready(match stream {
            Some(stream) => Ok((
                WriterTask::new(WithProgress::new(stream, 0, None, self.watch.clone())),
                (),
            )),
            None => Err(StreamError::ChannelClosed),
        })
    }
}
