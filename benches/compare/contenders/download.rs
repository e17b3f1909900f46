//! stream-download 0.22 over bounded memory storage (workload 5).

use std::convert::Infallible;

use bytes::Bytes;

use super::read_blocking;
use crate::harness::{Run, two_threads_with};
use crate::payload::{Check, Pattern, Verify};
use crate::{CAPACITY, CHUNK};

/// stream-download's side of workload 5: the same chunks from memory, as a `SourceStream`.
struct MemoryStream {
    pattern: Pattern,
    next: usize,
    count: usize,
}

impl futures::Stream for MemoryStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let i = self.next;
        std::task::Poll::Ready((i < self.count).then(|| {
            self.next += 1;
            Ok(self.pattern.chunk(i))
        }))
    }
}

impl stream_download::source::SourceStream for MemoryStream {
    type Params = (Pattern, usize);
    type StreamCreationError = Infallible;

    async fn create((pattern, count): Self::Params) -> Result<Self, Infallible> {
        Ok(Self {
            pattern,
            next: 0,
            count,
        })
    }

    fn content_length(&self) -> Option<u64> {
        Some((self.count * CHUNK) as u64)
    }

    async fn seek_range(&mut self, _start: u64, _end: Option<u64>) -> std::io::Result<()> {
        Err(std::io::ErrorKind::Unsupported.into())
    }

    async fn reconnect(&mut self, _current_position: u64) -> std::io::Result<()> {
        Ok(())
    }

    fn supports_seek(&self) -> bool {
        false
    }
}

/// `StreamDownload` over bounded memory storage of the ring's capacity, default settings,
/// created on a current-thread tokio runtime that then drives the download on one thread;
/// read to the end through its blocking `Read` on the other.
pub fn stream_download(pattern: &Pattern, count: usize, v: Verify) -> Run {
    use stream_download::storage::bounded::BoundedStorageProvider;
    use stream_download::storage::memory::MemoryStorageProvider;
    use stream_download::{Settings, StreamDownload};

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let storage = BoundedStorageProvider::new(
        MemoryStorageProvider,
        std::num::NonZeroUsize::new(CAPACITY).unwrap(),
    );
    // Spawns the download task; it runs only when the runtime is driven, on the producer thread.
    let reader = rt
        .block_on(StreamDownload::new::<MemoryStream>(
            (pattern.clone(), count),
            storage,
            Settings::default(),
        ))
        .unwrap();
    let done = reader.handle();
    let check = Check::new(pattern, v);
    let total = (CHUNK * count) as u64;
    two_threads_with(
        total,
        move || rt.block_on(done.wait_for_completion()),
        move || read_blocking(reader, check),
    )
}
