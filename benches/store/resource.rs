//! The resource every contender reads: an in-memory [`Fetch`] over a position-dependent
//! pattern, with an optional simulated round trip, and the reader's check of it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::Stream;
use futures::channel::oneshot;
use kithara_stream::sources::{ByteRange, Fetch, RangeResponse};

use crate::CHUNK;

/// Distinct chunks the pattern cycles through: a prime, so that the pattern does not line up
/// with the ring or the store's pieces and a lost, repeated or shifted chunk shows.
const POOL: usize = 17;

/// A sampled check reads a slice's first and last byte and one per `SAMPLE_STEP`.
const SAMPLE_STEP: usize = 4 * 1024;

/// `len` bytes whose value depends on the position: byte `p` is byte `p % CHUNK` of chunk
/// `(p / CHUNK) % POOL` of a pool of pseudo-random chunks, each its own allocation.
#[derive(Clone)]
pub struct Resource {
    pool: Arc<[Bytes]>,
    len: u64,
}

impl Resource {
    pub fn new(len: u64) -> Self {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let pool = (0..POOL)
            .map(|_| {
                let chunk: Vec<u8> = (0..CHUNK)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        (x >> 24) as u8
                    })
                    .collect();
                Bytes::from(chunk)
            })
            .collect();
        Self { pool, len }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    /// The byte at `pos`.
    pub fn byte(&self, pos: u64) -> u8 {
        self.run(pos)[0]
    }

    /// The bytes from `pos` to the end of its chunk of the pattern.
    pub fn run(&self, pos: u64) -> &[u8] {
        let chunk = CHUNK as u64;
        &self.pool[(pos / chunk) as usize % POOL][(pos % chunk) as usize..]
    }
}

/// The bytes `pos..end` of a [`Resource`] as `CHUNK`-aligned slices of its pool: no copy and
/// no allocation per chunk, so that what a run measures is the sources, not the fetch.
pub struct Body {
    pool: Arc<[Bytes]>,
    pos: u64,
    end: u64,
    /// Copy each chunk into an allocation of its own, as a network client's reads do.
    copy: bool,
}

impl Stream for Body {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.pos >= self.end {
            return Poll::Ready(None);
        }
        let chunk = CHUNK as u64;
        let offset = (self.pos % chunk) as usize;
        let n = (CHUNK - offset).min((self.end - self.pos) as usize);
        let mut bytes = self.pool[(self.pos / chunk) as usize % POOL].slice(offset..offset + n);
        if self.copy {
            bytes = Bytes::copy_from_slice(&bytes);
        }
        self.pos += n as u64;
        Poll::Ready(Some(Ok(bytes)))
    }
}

/// The [`Fetch`] of a [`Resource`]: the response comes `rtt` after the fetch starts (on the
/// [`Timer`]'s thread, as a network reply wakes an executor), its body at once. Counts the
/// fetches.
#[derive(Clone)]
pub struct MemoryFetch {
    resource: Resource,
    rtt: Option<(Duration, Timer)>,
    fetches: Arc<AtomicUsize>,
    copy: bool,
}

impl MemoryFetch {
    /// Answers at once.
    pub fn new(resource: &Resource) -> Self {
        Self {
            resource: resource.clone(),
            rtt: None,
            fetches: Arc::default(),
            copy: false,
        }
    }

    /// Copies each chunk into a fresh allocation, as a network client's reads do (each
    /// `Bytes` then owns its buffer, which the store keeps alive).
    pub fn copying(mut self, copy: bool) -> Self {
        self.copy = copy;
        self
    }

    /// Answers `rtt` after the fetch starts, on `timer` (at once if `rtt` is 0).
    pub fn with_rtt(mut self, rtt: Duration, timer: &Timer) -> Self {
        self.rtt = (!rtt.is_zero()).then(|| (rtt, timer.clone()));
        self
    }

    /// The fetch counter, shared with the clones.
    pub fn fetches(&self) -> Arc<AtomicUsize> {
        self.fetches.clone()
    }
}

impl Fetch for MemoryFetch {
    type Error = io::Error;
    type Body = Body;

    fn fetch(
        &self,
        range: ByteRange,
    ) -> impl Future<Output = io::Result<RangeResponse<Body>>> + Send + 'static {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let len = self.resource.len;
        let end = range.end.unwrap_or(len).min(len);
        let body = Body {
            pool: self.resource.pool.clone(),
            pos: range.start.min(end),
            end,
            copy: self.copy,
        };
        let response = RangeResponse::new(body)
            .with_total_len(Some(len))
            .with_start(Some(range.start.min(end)));
        let reply = self.rtt.as_ref().map(|(rtt, timer)| timer.after(*rtt));
        async move {
            if let Some(reply) = reply {
                let _ = reply.await;
            }
            Ok(response)
        }
    }
}

type Waiting = (Instant, oneshot::Sender<()>);

/// One thread that completes futures at their deadlines: the simulated network. It sleeps
/// in `recv_timeout`, so a deadline is met with the thread's wakeup latency (the "round trip
/// alone" row of the seek table measures it). The thread ends with the last clone.
#[derive(Clone)]
pub struct Timer(mpsc::Sender<Waiting>);

impl Timer {
    pub fn new() -> Self {
        let (tx, rx) = mpsc::channel::<Waiting>();
        std::thread::spawn(move || {
            let mut waiting: Vec<Waiting> = Vec::new();
            loop {
                let now = Instant::now();
                let mut i = 0;
                while i < waiting.len() {
                    if waiting[i].0 <= now {
                        let _ = waiting.swap_remove(i).1.send(());
                    } else {
                        i += 1;
                    }
                }
                let got = match waiting.iter().map(|w| w.0).min() {
                    None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                    Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
                };
                match got {
                    Ok(w) => waiting.push(w),
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
        });
        Self(tx)
    }

    /// A future that completes `delay` from now.
    pub fn after(&self, delay: Duration) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.0
            .send((Instant::now() + delay, tx))
            .expect("the timer thread runs");
        rx
    }
}

/// The consumer's check: each received slice against the resource at the running offset,
/// every byte or samples of it.
pub struct Check<'a> {
    resource: &'a Resource,
    pub pos: u64,
    full: bool,
}

impl<'a> Check<'a> {
    pub fn new(resource: &'a Resource, pos: u64, full: bool) -> Self {
        Self {
            resource,
            pos,
            full,
        }
    }

    pub fn bytes(&mut self, bytes: &[u8]) {
        let at = |i: usize| {
            assert_eq!(
                bytes[i],
                self.resource.byte(self.pos + i as u64),
                "wrong byte at {}",
                self.pos + i as u64
            );
        };
        if self.full {
            let mut i = 0;
            while i < bytes.len() {
                let expected = self.resource.run(self.pos + i as u64);
                let n = expected.len().min(bytes.len() - i);
                if bytes[i..i + n] != expected[..n] {
                    (i..i + n).for_each(at);
                }
                i += n;
            }
        } else if !bytes.is_empty() {
            (0..bytes.len()).step_by(SAMPLE_STEP).for_each(at);
            at(bytes.len() - 1);
        }
        self.pos += bytes.len() as u64;
    }
}

/// The calling thread's `/proc` directory (Linux), for [`cpu_ns`] from another thread.
pub fn thread_dir() -> Option<std::path::PathBuf> {
    std::fs::canonicalize("/proc/thread-self").ok()
}

/// The time on a CPU so far of the thread whose `/proc` directory is `dir`, in ns (Linux
/// schedstat; 0 elsewhere): unlike wall time it does not count waiting for a core.
pub fn cpu_ns(dir: &Option<std::path::PathBuf>) -> u64 {
    dir.as_ref()
        .and_then(|dir| std::fs::read_to_string(dir.join("schedstat")).ok())
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}
