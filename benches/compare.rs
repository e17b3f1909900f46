//! kithara-stream beside the byte pipes and channels people use today, in one run.
//!
//! ```sh
//! cargo bench --bench compare                               # full run: 512 MiB per contender, 5 runs
//! KITHARA_BENCH_MIB=64 KITHARA_BENCH_RUNS=3 cargo bench --bench compare   # quick
//! KITHARA_BENCH_SVG=docs/bench.svg cargo bench --bench compare            # refresh the chart
//! ```
//!
//! Every contender moves the same bytes from a producer thread to a consumer thread, each
//! thread driven by `futures::executor::block_on` (the same simple executor for all). Runs
//! interleave the contenders (run 1 of each, then run 2 of each, ...) so that noise from
//! other processes spreads over all of them; the table shows the median of the runs.
//! Workload 5 is the exception: its consumer is a blocking `std::io::Read` on a plain thread
//! (no executor), and stream-download's producer is the tokio runtime it needs.
//!
//! Environment:
//! - `KITHARA_BENCH_MIB` (default 512): payload per contender and run, in MiB.
//! - `KITHARA_BENCH_RUNS` (default 5): runs per contender; the median is reported.
//! - `KITHARA_BENCH_SVG` (default `target/compare.svg`): where the chart is written.
//! - `KITHARA_BENCH_ONLY` (optional): run only workloads whose name contains this text.
//! - `KITHARA_BENCH_CONTENDER` (optional): run only contenders whose name contains this
//!   text (for profiling one of them; ratios need the peers).

use std::cell::Cell;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::future::Future;
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::executor::block_on;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt, stream};
use kithara_stream::{Engine, EngineSource, OpenResult, StreamMsg, StreamParams, WriterTask, pipe};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
/// Ring capacity for every contender (channels get `CAPACITY / item size` slots).
const CAPACITY: usize = 256 * KIB;
/// The source's chunk in workload 1 and the slice size in workload 2.
const CHUNK: usize = 16 * KIB;
/// The message size of workload 3.
const SMALL: usize = 64;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The calling thread's voluntary context switches so far (Linux; 0 elsewhere): each is a
/// park of the executor, so their count shows how often a side went to sleep.
fn voluntary_switches() -> u64 {
    std::fs::read_to_string("/proc/thread-self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The calling thread's time on a CPU so far, in ns (Linux schedstat; 0 elsewhere): unlike
/// wall time it does not count waiting for a core that other processes hold.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// One run of one contender.
#[derive(Clone, Copy)]
struct Run {
    time: Duration,
    /// Voluntary context switches of both threads (executor parks).
    parks: u64,
    /// CPU time of both threads, in ns.
    cpu: u64,
}

/// Runs `producer` and `consumer` on two threads, each under `block_on`; returns the time
/// from the common start to the consumer's end and checks the byte count it reports.
fn two_threads<P, C>(expected: u64, producer: P, consumer: C) -> Run
where
    P: Future<Output = ()> + Send,
    C: Future<Output = u64> + Send,
{
    two_threads_with(
        expected,
        move || block_on(producer),
        move || block_on(consumer),
    )
}

/// Runs `producer` and `consumer` on two threads as they are (each drives itself: an
/// executor's `block_on`, a runtime, or blocking calls); times and checks as [`two_threads`].
fn two_threads_with<P, C>(expected: u64, producer: P, consumer: C) -> Run
where
    P: FnOnce() + Send,
    C: FnOnce() -> u64 + Send,
{
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let barrier = &barrier;
        let p = s.spawn(move || {
            barrier.wait();
            let (before, cpu) = (voluntary_switches(), cpu_ns());
            producer();
            (voluntary_switches() - before, cpu_ns() - cpu)
        });
        let c = s.spawn(move || {
            barrier.wait();
            let (before, cpu) = (voluntary_switches(), cpu_ns());
            let start = Instant::now();
            let got = consumer();
            let elapsed = start.elapsed();
            assert_eq!(got, expected, "a contender lost bytes");
            (elapsed, voluntary_switches() - before, cpu_ns() - cpu)
        });
        let (p_parks, p_cpu) = p.join().unwrap();
        let (time, c_parks, c_cpu) = c.join().unwrap();
        Run {
            time,
            parks: p_parks + c_parks,
            cpu: p_cpu + c_cpu,
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Workload 1: engine end to end, 16 KiB `Bytes`.

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

fn params() -> StreamParams {
    StreamParams::default().with_buffer_capacity(CAPACITY)
}

/// Counts the data bytes a kithara stream yields.
async fn drain_kithara<S>(mut stream: S) -> u64
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

fn kithara_engine(chunk: &Bytes, count: usize) -> Run {
    let source = Repeat {
        chunk: chunk.clone(),
        count,
    };
    let (engine, handle, stream) = Engine::build(source, params());
    drop(handle);
    let total = (chunk.len() * count) as u64;
    two_threads(total, engine.run(), drain_kithara(stream))
}

fn tokio_mpsc(chunk: &Bytes, count: usize, slots: usize) -> Run {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(slots);
    let total = (chunk.len() * count) as u64;
    let chunk = chunk.clone();
    two_threads(
        total,
        async move {
            for _ in 0..count {
                tx.send(chunk.clone()).await.unwrap();
            }
        },
        async move {
            let mut n = 0u64;
            while let Some(b) = rx.recv().await {
                n += b.len() as u64;
            }
            n
        },
    )
}

fn async_channel(chunk: &Bytes, count: usize, slots: usize) -> Run {
    let (tx, rx) = async_channel::bounded::<Bytes>(slots);
    let total = (chunk.len() * count) as u64;
    let chunk = chunk.clone();
    two_threads(
        total,
        async move {
            for _ in 0..count {
                tx.send(chunk.clone()).await.unwrap();
            }
        },
        async move {
            let mut n = 0u64;
            while let Ok(b) = rx.recv().await {
                n += b.len() as u64;
            }
            n
        },
    )
}

/// Writes `count` slices of `slice` into a futures-io writer.
async fn write_slices<W: futures::AsyncWrite + Unpin>(mut w: W, slice: &[u8], count: usize) {
    for _ in 0..count {
        w.write_all(slice).await.unwrap();
    }
    w.close().await.unwrap();
}

/// Reads a futures-io reader to its end into a `CHUNK`-sized buffer.
async fn read_to_end<R: futures::AsyncRead + Unpin>(mut r: R) -> u64 {
    let mut buf = vec![0u8; CHUNK];
    let mut n = 0u64;
    loop {
        let got = r.read(&mut buf).await.unwrap();
        if got == 0 {
            return n;
        }
        black_box(&buf[..got]);
        n += got as u64;
    }
}

fn piper(slice: &[u8], count: usize) -> Run {
    let (r, w) = piper::pipe(CAPACITY);
    let total = (slice.len() * count) as u64;
    two_threads(total, write_slices(w, slice, count), read_to_end(r))
}

fn async_ringbuf(slice: &[u8], count: usize) -> Run {
    use async_ringbuf::traits::Split;
    let (w, r) = async_ringbuf::AsyncHeapRb::<u8>::new(CAPACITY).split();
    let total = (slice.len() * count) as u64;
    two_threads(total, write_slices(w, slice, count), read_to_end(r))
}

fn tokio_simplex(slice: &[u8], count: usize) -> Run {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (mut r, mut w) = tokio::io::simplex(CAPACITY);
    let total = (slice.len() * count) as u64;
    two_threads(
        total,
        async move {
            for _ in 0..count {
                w.write_all(slice).await.unwrap();
            }
            w.shutdown().await.unwrap();
        },
        async move {
            let mut buf = vec![0u8; CHUNK];
            let mut n = 0u64;
            loop {
                let got = r.read(&mut buf).await.unwrap();
                if got == 0 {
                    return n;
                }
                black_box(&buf[..got]);
                n += got as u64;
            }
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Workload 2: the copying pipe, `&[u8]` in and out.

fn kithara_pipe_slices(slice: &[u8], count: usize) -> Run {
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

// ---------------------------------------------------------------------------------------------
// Workload 3: small messages.

fn kithara_pipe_messages(chunk: &Bytes, count: usize) -> Run {
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
        drain_kithara(reader),
    )
}

// ---------------------------------------------------------------------------------------------
// Workload 4: the physical limit of a copy.

/// Copies `CHUNK`-sized slices into a ring-sized buffer, cycling through it (L2-resident).
fn copy_ring(total: usize) -> Duration {
    // Both page-aligned: glibc's memmove on AMD EPYC runs ~20x slower when the destination
    // sits a few bytes past the source modulo 4 KiB (2.4 instead of ~50 GiB/s at +16), and
    // two plain `Vec`s land at a random relative offset. The limit is the good case.
    let mut src_buf = vec![7u8; CHUNK + 4096];
    let mut ring_buf = vec![1u8; CAPACITY + 4096]; // touched: no page faults in the timing
    let src = page_aligned(&mut src_buf, CHUNK);
    let ring = page_aligned(&mut ring_buf, CAPACITY);
    let start = Instant::now();
    let mut at = 0;
    for _ in 0..total / CHUNK {
        ring[at..at + CHUNK].copy_from_slice(black_box(&*src));
        black_box(&ring[at..at + CHUNK]);
        at = (at + CHUNK) % CAPACITY;
    }
    start.elapsed()
}

/// The `len` bytes of `buf` that start at a 4 KiB boundary.
fn page_aligned(buf: &mut [u8], len: usize) -> &mut [u8] {
    let skip = buf.as_ptr().align_offset(4096);
    &mut buf[skip..skip + len]
}

/// Copies one DRAM-sized buffer (`total` bytes, at least 64 MiB) into another.
fn copy_dram(total: usize) -> (Duration, usize) {
    let len = total.max(64 * MIB);
    let src = vec![7u8; len];
    let mut dst = vec![1u8; len]; // touched, so the copy does not count page faults
    let start = Instant::now();
    dst.copy_from_slice(black_box(&src));
    black_box(&dst);
    (start.elapsed(), len)
}

// ---------------------------------------------------------------------------------------------
// Workload 5: a whole stream through a blocking `std::io::Read`.

/// Distinct chunks in the pool workload 5 cycles through: a prime, so that the pattern does
/// not line up with the 16-chunk ring and a lost, repeated or reordered chunk shows.
const POOL: usize = 17;

/// `POOL` chunks of `CHUNK` pseudo-random bytes; chunk `i` of a stream is `pool[i % POOL]`.
fn chunk_pool() -> Vec<Bytes> {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    (0..POOL)
        .map(|_| {
            let bytes: Vec<u8> = (0..CHUNK)
                .map(|_| {
                    // xorshift64
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 24) as u8
                })
                .collect();
            Bytes::from(bytes)
        })
        .collect()
}

/// Checks a read of `buf` at stream position `pos` against the pool's pattern: every byte
/// when `full`, else its first and last byte (cheap enough for the timed runs).
fn check_read(pool: &[Bytes], pos: u64, buf: &[u8], full: bool) {
    let expected = |p: u64| pool[(p / CHUNK as u64) as usize % POOL][(p % CHUNK as u64) as usize];
    if buf.is_empty() {
        return;
    }
    if !full {
        let last = pos + buf.len() as u64 - 1;
        assert!(
            buf[0] == expected(pos) && buf[buf.len() - 1] == expected(last),
            "wrong bytes at {pos}"
        );
        return;
    }
    let mut at = pos;
    let mut rest = buf;
    while !rest.is_empty() {
        let off = (at % CHUNK as u64) as usize;
        let chunk = &pool[(at / CHUNK as u64) as usize % POOL][off..];
        let k = chunk.len().min(rest.len());
        assert!(
            rest[..k] == chunk[..k],
            "wrong bytes in {at}..{}",
            at + k as u64
        );
        at += k as u64;
        rest = &rest[k..];
    }
}

/// Reads `r` to its end with `CHUNK`-sized reads, checking each read; returns the count.
fn read_blocking(mut r: impl std::io::Read, pool: &[Bytes], full: bool) -> u64 {
    let mut buf = vec![0u8; CHUNK];
    let mut n = 0u64;
    loop {
        let got = r.read(&mut buf).unwrap();
        if got == 0 {
            return n;
        }
        check_read(pool, n, &buf[..got], full);
        black_box(&buf[..got]);
        n += got as u64;
    }
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

/// The engine under `block_on` on one thread, `BlockingReader` read to the end on the other.
fn kithara_blocking_reader(pool: &[Bytes], count: usize, full: bool) -> Run {
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

/// stream-download's side of workload 5: the same chunks from memory, as a `SourceStream`.
struct MemoryStream {
    pool: Vec<Bytes>,
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
            Ok(self.pool[i % POOL].clone())
        }))
    }
}

impl stream_download::source::SourceStream for MemoryStream {
    type Params = (Vec<Bytes>, usize);
    type StreamCreationError = Infallible;

    async fn create((pool, count): Self::Params) -> Result<Self, Infallible> {
        Ok(Self {
            pool,
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
fn stream_download(pool: &[Bytes], count: usize, full: bool) -> Run {
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
            (pool.to_vec(), count),
            storage,
            Settings::default(),
        ))
        .unwrap();
    let done = reader.handle();
    let total = (CHUNK * count) as u64;
    two_threads_with(
        total,
        move || rt.block_on(done.wait_for_completion()),
        move || read_blocking(reader, pool, full),
    )
}

// ---------------------------------------------------------------------------------------------
// The run, the table and the chart.

struct Row {
    workload: &'static str,
    contender: &'static str,
    ours: bool,
    bytes: u64,
    items: u64,
    runs: Vec<Run>,
}

impl Row {
    fn median(&self) -> Duration {
        let mut runs: Vec<Duration> = self.runs.iter().map(|r| r.time).collect();
        runs.sort();
        runs[runs.len() / 2]
    }
    fn gib_s(&self) -> f64 {
        self.bytes as f64 / self.median().as_secs_f64() / (1u64 << 30) as f64
    }
    /// Median CPU time of both threads per item, in ns.
    fn cpu_per_item(&self) -> f64 {
        let mut cpu: Vec<u64> = self.runs.iter().map(|r| r.cpu).collect();
        cpu.sort_unstable();
        cpu[cpu.len() / 2] as f64 / self.items as f64
    }

    /// Median executor parks per item.
    fn parks_per_item(&self) -> f64 {
        let mut parks: Vec<u64> = self.runs.iter().map(|r| r.parks).collect();
        parks.sort_unstable();
        parks[parks.len() / 2] as f64 / self.items as f64
    }
    fn mitems_s(&self) -> f64 {
        self.items as f64 / self.median().as_secs_f64() / 1e6
    }
}

type Contender = (&'static str, bool, Box<dyn Fn() -> Run>);

fn main() {
    let mib = env_usize("KITHARA_BENCH_MIB", 512).max(1);
    let runs = env_usize("KITHARA_BENCH_RUNS", 5).max(1);
    let only = std::env::var("KITHARA_BENCH_ONLY").unwrap_or_default();
    let svg_path =
        std::env::var("KITHARA_BENCH_SVG").unwrap_or_else(|_| "target/compare.svg".into());
    let total = mib * MIB;

    let big = Bytes::from(vec![0x5a_u8; CHUNK]);
    let small = Bytes::from(vec![0x5a_u8; SMALL]);
    let big_count = total / CHUNK;
    let small_count = total / SMALL;
    let chunk_slots = CAPACITY / CHUNK;
    let small_slots = CAPACITY / SMALL;

    let mut workloads: Vec<Workload> = Vec::new();
    {
        let (b1, b2, b3, b4, b5, b6) = (
            big.clone(),
            big.clone(),
            big.clone(),
            big.clone(),
            big.clone(),
            big.clone(),
        );
        workloads.push((
            "1 engine end to end (16 KiB Bytes)",
            CHUNK,
            big_count as u64,
            vec![
                (
                    "kithara Engine",
                    true,
                    Box::new(move || kithara_engine(&b1, big_count)),
                ),
                (
                    "tokio mpsc<Bytes>",
                    false,
                    Box::new(move || tokio_mpsc(&b2, big_count, chunk_slots)),
                ),
                (
                    "async-channel<Bytes>",
                    false,
                    Box::new(move || async_channel(&b3, big_count, chunk_slots)),
                ),
                (
                    "piper (copy)",
                    false,
                    Box::new(move || piper(&b4, big_count)),
                ),
                (
                    "async-ringbuf (copy)",
                    false,
                    Box::new(move || async_ringbuf(&b5, big_count)),
                ),
                (
                    "tokio simplex (copy)",
                    false,
                    Box::new(move || tokio_simplex(&b6, big_count)),
                ),
            ],
        ));
    }
    {
        let (b1, b2, b3, b4) = (big.clone(), big.clone(), big.clone(), big.clone());
        workloads.push((
            "2 pipe, &[u8] in and out (16 KiB slices)",
            CHUNK,
            big_count as u64,
            vec![
                (
                    "kithara Writer/Reader",
                    true,
                    Box::new(move || kithara_pipe_slices(&b1, big_count)),
                ),
                ("piper", false, Box::new(move || piper(&b2, big_count))),
                (
                    "async-ringbuf",
                    false,
                    Box::new(move || async_ringbuf(&b3, big_count)),
                ),
                (
                    "tokio simplex",
                    false,
                    Box::new(move || tokio_simplex(&b4, big_count)),
                ),
            ],
        ));
    }
    {
        let (s1, s2, s3) = (small.clone(), small.clone(), small.clone());
        workloads.push((
            "3 small messages (64 B Bytes)",
            SMALL,
            small_count as u64,
            vec![
                (
                    "kithara pipe",
                    true,
                    Box::new(move || kithara_pipe_messages(&s1, small_count)),
                ),
                (
                    "tokio mpsc<Bytes>",
                    false,
                    Box::new(move || tokio_mpsc(&s2, small_count, small_slots)),
                ),
                (
                    "async-channel<Bytes>",
                    false,
                    Box::new(move || async_channel(&s3, small_count, small_slots)),
                ),
            ],
        ));
    }
    {
        let pool = chunk_pool();
        let (p1, p2) = (pool.clone(), pool);
        let (v1, v2) = (Cell::new(false), Cell::new(false));
        workloads.push((
            "5 blocking Read of a whole stream (16 KiB reads)",
            CHUNK,
            big_count as u64,
            vec![
                (
                    "kithara BlockingReader",
                    true,
                    Box::new(move || {
                        // Once per process, untimed: every byte compared.
                        if !v1.replace(true) {
                            kithara_blocking_reader(&p1, big_count, true);
                        }
                        kithara_blocking_reader(&p1, big_count, false)
                    }),
                ),
                (
                    "stream-download bounded",
                    false,
                    Box::new(move || {
                        if !v2.replace(true) {
                            stream_download(&p2, big_count, true);
                        }
                        stream_download(&p2, big_count, false)
                    }),
                ),
            ],
        ));
    }
    workloads.retain(|w| w.0.contains(&only));
    if let Ok(who) = std::env::var("KITHARA_BENCH_CONTENDER") {
        for w in &mut workloads {
            w.3.retain(|c| c.0.contains(&who));
        }
        workloads.retain(|w| !w.3.is_empty());
    }

    println!(
        "kithara-stream compare: {mib} MiB per contender and run, median of {runs} runs, \
         capacity {} KiB, producer and consumer on two threads under futures::executor::block_on \
         (workload 5: blocking reads; stream-download's producer is a tokio runtime)",
        CAPACITY / KIB
    );
    let mut rows: Vec<Row> = Vec::new();
    let (before_4, after_4): (Vec<_>, Vec<_>) = workloads
        .into_iter()
        .partition(|w| w.0.as_bytes()[0] < b'4');
    run_workloads(&before_4, runs, &mut rows);
    if "4 physical limit".contains(&only) {
        physical_limit(total, runs, &mut rows);
    }
    run_workloads(&after_4, runs, &mut rows);

    print_markdown(&rows);
    write_svg(&svg_path, &rows, mib, runs);
}

type Workload = (&'static str, usize, u64, Vec<Contender>);

/// Runs the contenders of each workload interleaved, `runs` times, and prints each workload.
fn run_workloads(workloads: &[Workload], runs: usize, rows: &mut Vec<Row>) {
    for (name, item, items, contenders) in workloads {
        let first = rows.len();
        for (contender, ours, _) in contenders {
            rows.push(Row {
                workload: name,
                contender,
                ours: *ours,
                bytes: *items * *item as u64,
                items: *items,
                runs: Vec::new(),
            });
        }
        for _ in 0..runs {
            for (i, (_, _, f)) in contenders.iter().enumerate() {
                rows[first + i].runs.push(f());
            }
        }
        print_workload(&rows[first..]);
    }
}

/// Workload 4: the best a copy achieves, the fastest run rather than the median (on a
/// shared machine a copy run can only be slowed down, never sped up).
fn physical_limit(total: usize, runs: usize, rows: &mut Vec<Row>) {
    let mut ring_runs: Vec<Duration> = (0..runs).map(|_| copy_ring(total)).collect();
    ring_runs.sort();
    let ring_gib = total as f64 / ring_runs[0].as_secs_f64() / (1u64 << 30) as f64;
    let mut dram: Vec<(Duration, usize)> =
        (0..runs).map(|_| copy_dram(total.min(512 * MIB))).collect();
    dram.sort();
    let (d, len) = dram[0];
    let dram_gib = len as f64 / d.as_secs_f64() / (1u64 << 30) as f64;
    println!("\n## 4 physical limit (one thread, copy_from_slice, best of {runs})");
    println!(
        "  {:<34} {:>9.2} GiB/s",
        "16 KiB into a 256 KiB ring", ring_gib
    );
    println!(
        "  {:<34} {:>9.2} GiB/s",
        format!("{} MiB DRAM to DRAM", len / MIB),
        dram_gib
    );
    if let Some(w2) = rows.iter().find(|r| r.workload.starts_with('2') && r.ours) {
        println!(
            "  workload 2 (kithara) = {:.2} of the ring copy, {:.2} of the DRAM copy",
            w2.gib_s() / ring_gib,
            w2.gib_s() / dram_gib
        );
    }
    rows.push(Row {
        workload: "4 physical limit (copy_from_slice, best run)",
        contender: "ring-sized copy",
        ours: false,
        bytes: total as u64,
        items: (total / CHUNK) as u64,
        runs: vec![Run {
            time: ring_runs[0],
            parks: 0,
            cpu: 0,
        }],
    });
    rows.push(Row {
        workload: "4 physical limit (copy_from_slice, best run)",
        contender: "DRAM-sized copy",
        ours: false,
        bytes: len as u64,
        items: (len / CHUNK) as u64,
        runs: vec![Run {
            time: d,
            parks: 0,
            cpu: 0,
        }],
    });
}

/// The table for the README: every contender, and kithara's ratio to the best peer.
fn print_markdown(rows: &[Row]) {
    println!("\n| workload | contender | GiB/s | M items/s | CPU ns/item | parks/item | ratio |");
    println!("|---|---|---:|---:|---:|---:|---|");
    for r in rows {
        let peers = rows
            .iter()
            .filter(|p| p.workload == r.workload && !p.ours && p.runs.iter().any(|x| x.cpu > 0));
        let best = peers.max_by(|a, b| a.gib_s().total_cmp(&b.gib_s()));
        let ratio = match best {
            Some(best) if r.ours => format!("**{:.2}x** best peer", r.gib_s() / best.gib_s()),
            _ => String::new(),
        };
        // `<` would open an HTML tag in rendered markdown.
        let contender = r.contender.replace('<', "\\<");
        let name = if r.ours {
            format!("**{contender}**")
        } else {
            contender
        };
        println!(
            "| {} | {} | {:.2} | {:.2} | {} | {} | {} |",
            r.workload,
            name,
            r.gib_s(),
            r.mitems_s(),
            two_threaded(r, format!("{:.0}", r.cpu_per_item())),
            two_threaded(r, format!("{:.3}", r.parks_per_item())),
            ratio
        );
    }
}

/// `text` for the two-thread contenders, a dash for the one-thread copies of workload 4.
fn two_threaded(r: &Row, text: String) -> String {
    if r.runs.iter().any(|x| x.cpu > 0) {
        text
    } else {
        "–".into()
    }
}

fn write_svg(path: &str, rows: &[Row], mib: usize, runs: usize) {
    if let Some(dir) = std::path::Path::new(path).parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(path, svg(rows, mib, runs)).expect("write the chart");
    println!("\nchart: {path}");
}

fn print_workload(rows: &[Row]) {
    println!("\n## {}", rows[0].workload);
    let best_peer = rows
        .iter()
        .filter(|r| !r.ours)
        .max_by(|a, b| a.gib_s().total_cmp(&b.gib_s()));
    for r in rows {
        let runs: Vec<String> = r
            .runs
            .iter()
            .map(|d| format!("{:.0}", d.time.as_secs_f64() * 1e3))
            .collect();
        println!(
            "  {:<24} {:>8.2} GiB/s {:>9.2} M items/s {:>7.3} parks/item {:>8.0} cpu ns/item   runs ms [{}]",
            r.contender,
            r.gib_s(),
            r.mitems_s(),
            r.parks_per_item(),
            r.cpu_per_item(),
            runs.join(" ")
        );
    }
    let Some(best_peer) = best_peer else { return };
    for r in rows.iter().filter(|r| r.ours) {
        println!(
            "  ratio {} / best peer ({}): {:.2}x",
            r.contender,
            best_peer.contender,
            r.gib_s() / best_peer.gib_s()
        );
        for p in rows.iter().filter(|p| !p.ours) {
            print!("    vs {}: {:.2}x", p.contender, r.gib_s() / p.gib_s());
        }
        println!();
    }
}

/// A bar chart, one panel per workload, each with its own scale.
fn svg(rows: &[Row], mib: usize, runs: usize) -> String {
    let width = 900.0;
    let bar = 22.0;
    let label_w = 230.0;
    let plot_w = width - label_w - 140.0;
    let mut y = 50.0;
    let mut body = String::new();
    let mut workloads: Vec<&str> = rows.iter().map(|r| r.workload).collect();
    workloads.dedup();
    for w in workloads {
        let panel: Vec<&Row> = rows.iter().filter(|r| r.workload == w).collect();
        let max = panel.iter().map(|r| r.gib_s()).fold(0.0, f64::max);
        let _ = writeln!(
            body,
            r#"<text x="10" y="{:.0}" font-weight="bold">{}</text>"#,
            y + 14.0,
            escape(w)
        );
        y += 24.0;
        for r in panel {
            let len = plot_w * r.gib_s() / max;
            let fill = if r.ours { "#d9480f" } else { "#868e96" };
            let _ = writeln!(
                body,
                r#"<text x="{:.0}" y="{:.0}" text-anchor="end">{}</text><rect x="{:.0}" y="{:.0}" width="{:.1}" height="{:.0}" fill="{}"/><text x="{:.0}" y="{:.0}">{:.2} GiB/s</text>"#,
                label_w - 8.0,
                y + 16.0,
                escape(r.contender),
                label_w,
                y + 2.0,
                len,
                bar - 4.0,
                fill,
                label_w + len + 6.0,
                y + 16.0,
                r.gib_s()
            );
            y += bar;
        }
        y += 12.0;
    }
    let height = y + 10.0;
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="24" font-size="16" font-weight="bold">kithara-stream vs peers: throughput ({mib} MiB per contender, median of {runs} runs; each panel has its own scale)</text>
{body}</svg>
"#
    )
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
