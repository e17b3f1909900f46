//! kithara-stream: the engine (workload 1), the copying `Writer`/`Reader` (2), `Bytes`
//! messages through the pipe (3) and `io::BlockingReader` (5).

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;

use futures::executor::block_on;
use futures::{StreamExt, stream};
use kithara_stream::{Engine, EngineSource, OpenResult, StreamMsg, StreamParams, WriterTask, pipe};

use super::{read_blocking, write_slices};
use crate::harness::{Run, two_threads, two_threads_with};
use crate::payload::{Check, Pattern, Verify};
use crate::{CAPACITY, CHUNK, SMALL};

fn params() -> StreamParams {
    StreamParams::default().with_buffer_capacity(CAPACITY)
}

/// A source yielding the pattern's first `count` chunks (refcount clones, no copy).
struct Chunks {
    pattern: Pattern,
    count: usize,
    /// Whether it reports its length (workload 5, as stream-download's source does).
    known_len: bool,
}

impl EngineSource for Chunks {
    type Error = Infallible;
    type Control = ();
    type Event = ();

    fn open(
        &self,
        _params: StreamParams,
    ) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
        let pattern = self.pattern.clone();
        let items = (0..self.count).map(move |k| Ok(StreamMsg::Data(pattern.chunk(k))));
        std::future::ready(Ok((WriterTask::new(stream::iter(items)), ())))
    }

    fn byte_len(&self) -> Option<u64> {
        self.known_len.then_some((self.count * CHUNK) as u64)
    }
}

/// Checks the data a kithara stream yields; returns its byte count.
async fn drain<S>(mut stream: S, mut check: Check) -> u64
where
    S: futures::Stream<Item = Result<StreamMsg<(), ()>, kithara_stream::StreamError<Infallible>>>
        + Unpin,
{
    while let Some(msg) = stream.next().await {
        if let StreamMsg::Data(bytes) = msg.unwrap() {
            check.bytes(&bytes);
        }
    }
    check.total()
}

/// Workload 1: the engine under `block_on` on one thread, its stream drained on the other.
pub fn engine(pattern: &Pattern, count: usize, v: Verify) -> Run {
    let source = Chunks {
        pattern: pattern.clone(),
        count,
        known_len: false,
    };
    let (engine, handle, stream) = Engine::build(source, params());
    drop(handle);
    let total = (CHUNK * count) as u64;
    two_threads(total, engine.run(), drain(stream, Check::new(pattern, v)))
}

/// Workload 2: `Writer` fed from `&[u8]`, `Reader` drained into a `&mut [u8]` buffer.
pub fn pipe_slices(pattern: &Pattern, count: usize, v: Verify) -> Run {
    let (writer, mut reader) = pipe::<(), (), Infallible>(params());
    let mut check = Check::new(pattern, v);
    let total = (CHUNK * count) as u64;
    two_threads(
        total,
        write_slices(writer, pattern, CHUNK, count),
        async move {
            // Drained into a `&mut [u8]` buffer, as a byte pipe's reader would be.
            let mut buf = vec![0u8; CHUNK];
            while let Some(msg) = reader.next().await {
                if let StreamMsg::Data(bytes) = msg.unwrap() {
                    let mut rest = &bytes[..];
                    while !rest.is_empty() {
                        let k = rest.len().min(buf.len());
                        buf[..k].copy_from_slice(&rest[..k]);
                        check.bytes(&buf[..k]);
                        black_box(&buf[..k]);
                        rest = &rest[k..];
                    }
                }
            }
            check.total()
        },
    )
}

/// Workload 3: `SMALL`-byte `Bytes` messages sent through the pipe's `Writer`.
pub fn pipe_messages(pattern: &Pattern, count: usize, v: Verify) -> Run {
    let (mut writer, reader) = pipe::<(), (), Infallible>(params());
    let total = (SMALL * count) as u64;
    two_threads(
        total,
        async move {
            for i in 0..count {
                let msg = StreamMsg::Data(pattern.item(i, SMALL));
                writer.send(msg).await.unwrap();
            }
        },
        drain(reader, Check::new(pattern, v)),
    )
}

/// Workload 5: the engine under `block_on` on one thread, `BlockingReader` read to the end
/// on the other.
pub fn blocking_reader(pattern: &Pattern, count: usize, v: Verify) -> Run {
    let source = Chunks {
        pattern: pattern.clone(),
        count,
        known_len: true,
    };
    let (engine, handle, stream) = Engine::build(source, params());
    let reader = kithara_stream::io::BlockingReader::new(stream, handle);
    let check = Check::new(pattern, v);
    two_threads_with(
        (CHUNK * count) as u64,
        move || block_on(engine.run()),
        move || read_blocking(reader, check),
    )
}
