//! kithara-stream: the engine (workload 1), the copying `Writer`/`Reader` (2), `Bytes`
//! messages through the pipe (3) and `io::BlockingReader` (5).

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;

use bytes::Bytes;
use futures::executor::block_on;
use futures::{StreamExt, stream};
use kithara_stream::{Engine, EngineSource, OpenResult, StreamMsg, StreamParams, WriterTask, pipe};

use super::{read_blocking, write_slices};
use crate::harness::{Run, two_threads, two_threads_with};
use crate::payload::POOL;
use crate::{CAPACITY, CHUNK};

fn params() -> StreamParams {
    StreamParams::default().with_buffer_capacity(CAPACITY)
}

/// A source yielding the same 16 KiB `Bytes` (a refcount clone, no copy) `count` times.
struct Repeat {
    chunk: Bytes,
    count: usize,
}

impl EngineSource for Repeat {
    type Error = Infallible;
    type Control = ();
    type Event = ();

    fn open(
        &self,
        _params: StreamParams,
    ) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
        let chunk = self.chunk.clone();
        let count = self.count;
        let items = (0..count).map(move |_| Ok(StreamMsg::Data(chunk.clone())));
        std::future::ready(Ok((WriterTask::new(stream::iter(items)), ())))
    }
}

/// Counts the data bytes a kithara stream yields.
async fn drain<S>(mut stream: S) -> u64
where
    S: futures::Stream<Item = Result<StreamMsg<(), ()>, kithara_stream::StreamError<Infallible>>>
        + Unpin,
{
    let mut n = 0u64;
    while let Some(msg) = stream.next().await {
        if let StreamMsg::Data(bytes) = msg.unwrap() {
            n += bytes.len() as u64;
        }
    }
    n
}

/// Workload 1: the engine under `block_on` on one thread, its stream drained on the other.
pub fn engine(chunk: &Bytes, count: usize) -> Run {
    let source = Repeat {
        chunk: chunk.clone(),
        count,
    };
    let (engine, handle, stream) = Engine::build(source, params());
    drop(handle);
    let total = (chunk.len() * count) as u64;
    two_threads(total, engine.run(), drain(stream))
}

/// Workload 2: `Writer` fed from `&[u8]`, `Reader` drained into a `&mut [u8]` buffer.
pub fn pipe_slices(slice: &[u8], count: usize) -> Run {
    let (writer, mut reader) = pipe::<(), (), Infallible>(params());
    let total = (slice.len() * count) as u64;
    two_threads(total, write_slices(writer, slice, count), async move {
        // Drained into a `&mut [u8]` buffer, as a byte pipe's reader would be.
        let mut buf = vec![0u8; CHUNK];
        let mut n = 0u64;
        while let Some(msg) = reader.next().await {
            if let StreamMsg::Data(bytes) = msg.unwrap() {
                let mut rest = &bytes[..];
                while !rest.is_empty() {
                    let k = rest.len().min(buf.len());
                    buf[..k].copy_from_slice(&rest[..k]);
                    black_box(&buf[..k]);
                    rest = &rest[k..];
                }
                n += bytes.len() as u64;
            }
        }
        n
    })
}

/// Workload 3: `Bytes` messages sent through the pipe's `Writer`.
pub fn pipe_messages(chunk: &Bytes, count: usize) -> Run {
    let (mut writer, reader) = pipe::<(), (), Infallible>(params());
    let total = (chunk.len() * count) as u64;
    let chunk = chunk.clone();
    two_threads(
        total,
        async move {
            for _ in 0..count {
                writer.send(StreamMsg::Data(chunk.clone())).await.unwrap();
            }
        },
        drain(reader),
    )
}

/// kithara's source for workload 5: the pool's chunks in turn, `count` of them, with the
/// length known (as stream-download's source reports it).
struct Cycle {
    pool: Vec<Bytes>,
    count: usize,
}

impl EngineSource for Cycle {
    type Error = Infallible;
    type Control = ();
    type Event = ();

    fn open(
        &self,
        _params: StreamParams,
    ) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
        let pool = self.pool.clone();
        let items = (0..self.count).map(move |i| Ok(StreamMsg::Data(pool[i % POOL].clone())));
        std::future::ready(Ok((WriterTask::new(stream::iter(items)), ())))
    }

    fn byte_len(&self) -> Option<u64> {
        Some((self.count * CHUNK) as u64)
    }
}

/// Workload 5: the engine under `block_on` on one thread, `BlockingReader` read to the end
/// on the other.
pub fn blocking_reader(pool: &[Bytes], count: usize, full: bool) -> Run {
    let source = Cycle {
        pool: pool.to_vec(),
        count,
    };
    let (engine, handle, stream) = Engine::build(source, params());
    let reader = kithara_stream::io::BlockingReader::new(stream, handle);
    let total = (CHUNK * count) as u64;
    two_threads_with(
        total,
        move || block_on(engine.run()),
        move || read_blocking(reader, pool, full),
    )
}
