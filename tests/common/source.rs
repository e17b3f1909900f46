//! `TestSource`: a deterministic, scriptable source. Byte `i` of its data is `pattern(i)`;
//! it can emit controls and events at byte positions, fail, stall, panic, and gate its seeks.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use kithara_stream::{EngineSource, OpenResult, StreamError, StreamMsg, StreamParams, WriterTask};

/// Byte `i` of every test stream: not periodic over any length a test uses, so a byte from
/// the wrong offset is caught.
pub fn pattern(i: u64) -> u8 {
    let x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    (x >> 56) as u8 ^ (i >> 13) as u8
}

/// The control state `open` returns.
pub const OPEN_CONTROL: u64 = 1 << 40;
/// A successful seek to `pos` returns `SEEK_CONTROL_BASE + pos`.
pub const SEEK_CONTROL_BASE: u64 = 1 << 41;

/// The source's error type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestError(pub &'static str);

/// What a `TestSource` does.
#[derive(Clone, Debug)]
pub struct Config {
    /// Total length; `u64::MAX` for an endless stream.
    pub len: u64,
    /// Sizes of the produced `Data` chunks, cycled; a 0 produces an empty chunk.
    pub chunks: Vec<usize>,
    pub seekable: bool,
    /// `Control(p)` then `Event(p)` before the byte at every `p > 0` that is a multiple.
    pub controls_every: Option<u64>,
    /// `Err(TestError("source error"))` at this offset, instead of its byte.
    pub error_at: Option<u64>,
    /// Pending forever at this offset.
    pub stall_at: Option<u64>,
    /// Pending at this offset until the channel yields (or closes): a slow network.
    pub gate_at: Option<(u64, async_channel::Receiver<()>)>,
    /// Panic when reaching this offset.
    pub panic_at: Option<u64>,
    /// Produce only events (`Event(n)`, n = 0, 1, ...), forever.
    pub events_only: bool,
    pub open_fails: bool,
    /// `open` stays pending forever.
    pub open_stalls: bool,
    pub seeks_fail: bool,
    /// Each seek waits for a value from this channel: `true` succeeds, `false` fails.
    pub seek_gate: Option<async_channel::Receiver<bool>>,
    /// Sends the offset when the task's chunk takes what it produced to at least this.
    pub notify_at: Option<(u64, async_channel::Sender<u64>)>,
}

impl Config {
    pub fn new(len: u64) -> Self {
        Self {
            len,
            chunks: vec![4096],
            seekable: true,
            controls_every: None,
            error_at: None,
            stall_at: None,
            gate_at: None,
            panic_at: None,
            events_only: false,
            open_fails: false,
            open_stalls: false,
            seeks_fail: false,
            seek_gate: None,
            notify_at: None,
        }
    }

    pub fn chunks(mut self, chunks: &[usize]) -> Self {
        self.chunks = chunks.to_vec();
        self
    }

    pub fn controls_every(mut self, every: u64) -> Self {
        self.controls_every = Some(every);
        self
    }

    pub fn build(self) -> (TestSource, Arc<Stats>) {
        let stats = Arc::new(Stats::default());
        (
            TestSource {
                config: Arc::new(self),
                stats: stats.clone(),
            },
            stats,
        )
    }
}

/// What the source saw; shared with the test.
#[derive(Debug, Default)]
pub struct Stats {
    pub opens: AtomicUsize,
    /// `(pos, control)` of every `seek_bytes` call.
    pub seeks: Mutex<Vec<(u64, u64)>>,
    /// Writer tasks alive (created and not dropped).
    pub live_tasks: AtomicUsize,
    /// Polls of all writer tasks.
    pub task_polls: AtomicUsize,
    /// Data bytes produced by all writer tasks.
    pub produced: AtomicU64,
    /// Messages (any kind) produced by all writer tasks.
    pub produced_msgs: AtomicU64,
}

impl Stats {
    pub fn live_tasks(&self) -> usize {
        self.live_tasks.load(Ordering::SeqCst)
    }

    pub fn produced(&self) -> u64 {
        self.produced.load(Ordering::SeqCst)
    }

    pub fn seeks(&self) -> Vec<(u64, u64)> {
        self.seeks.lock().unwrap().clone()
    }
}

/// See the module docs.
#[derive(Clone, Debug)]
pub struct TestSource {
    config: Arc<Config>,
    stats: Arc<Stats>,
}

type Task = WriterTask<u64, u64, TestError>;

impl TestSource {
    fn task(&self, pos: u64) -> Task {
        self.stats.live_tasks.fetch_add(1, Ordering::SeqCst);
        WriterTask::new(PatternTask {
            config: self.config.clone(),
            stats: self.stats.clone(),
            pos: pos.min(self.config.len),
            next_chunk: 0,
            announced: None,
            events: 0,
            done: false,
            notified: false,
            gate: None,
            gate_passed: false,
        })
    }
}

impl EngineSource for TestSource {
    type Error = TestError;
    type Control = u64;
    type Event = u64;

    fn open(
        &self,
        _params: StreamParams,
    ) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
        self.stats.opens.fetch_add(1, Ordering::SeqCst);
        let result = if self.config.open_fails {
            Err(StreamError::Source(TestError("open failed")))
        } else {
            Ok((self.task(0), OPEN_CONTROL))
        };
        let stalls = self.config.open_stalls;
        async move {
            if stalls {
                futures::future::pending::<()>().await;
            }
            result
        }
    }

    fn seek_bytes(
        &self,
        pos: u64,
        control: u64,
    ) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
        self.stats.seeks.lock().unwrap().push((pos, control));
        let this = self.clone();
        async move {
            let mut ok = !this.config.seeks_fail;
            if let Some(gate) = &this.config.seek_gate {
                ok &= gate.recv().await.expect("seek gate closed");
            }
            if ok {
                Ok((this.task(pos), SEEK_CONTROL_BASE + pos))
            } else {
                Err(StreamError::Source(TestError("seek failed")))
            }
        }
    }

    fn supports_seek(&self) -> bool {
        self.config.seekable
    }
}

struct PatternTask {
    config: Arc<Config>,
    stats: Arc<Stats>,
    pos: u64,
    next_chunk: usize,
    /// The position whose control (`Some((p, false))`) and event (`true`) went out.
    announced: Option<(u64, bool)>,
    events: u64,
    done: bool,
    notified: bool,
    gate: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    gate_passed: bool,
}

impl Drop for PatternTask {
    fn drop(&mut self) {
        self.stats.live_tasks.fetch_sub(1, Ordering::SeqCst);
    }
}

impl PatternTask {
    fn emit(
        &self,
        msg: StreamMsg<u64, u64>,
    ) -> Poll<Option<Result<StreamMsg<u64, u64>, TestError>>> {
        self.stats.produced_msgs.fetch_add(1, Ordering::SeqCst);
        Poll::Ready(Some(Ok(msg)))
    }
}

impl Stream for PatternTask {
    type Item = Result<StreamMsg<u64, u64>, TestError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        this.stats.task_polls.fetch_add(1, Ordering::SeqCst);
        if this.done {
            return Poll::Ready(None);
        }
        if this.config.events_only {
            this.events += 1;
            return this.emit(StreamMsg::Event(this.events - 1));
        }
        let pos = this.pos;
        if this.config.panic_at == Some(pos) {
            panic!("test source panicked at {pos}");
        }
        if this.config.stall_at == Some(pos) {
            return Poll::Pending; // forever: nothing will wake it
        }
        if let Some((at, rx)) = &this.config.gate_at {
            if *at == pos && !this.gate_passed {
                let rx = rx.clone();
                let gate = this.gate.get_or_insert_with(|| {
                    Box::pin(async move {
                        let _ = rx.recv().await;
                    })
                });
                if gate.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.gate_passed = true;
            }
        }
        if this.config.error_at == Some(pos) {
            this.done = true;
            return Poll::Ready(Some(Err(TestError("source error"))));
        }
        if let Some(every) = this.config.controls_every {
            if pos > 0 && pos % every == 0 && pos < this.config.len {
                match this.announced {
                    Some((p, true)) if p == pos => {}
                    Some((p, false)) if p == pos => {
                        this.announced = Some((pos, true));
                        return this.emit(StreamMsg::Event(pos));
                    }
                    _ => {
                        this.announced = Some((pos, false));
                        return this.emit(StreamMsg::Control(pos));
                    }
                }
            }
        }
        if pos >= this.config.len {
            this.done = true;
            return Poll::Ready(None);
        }
        let chunk = this.config.chunks[this.next_chunk % this.config.chunks.len()] as u64;
        this.next_chunk += 1;
        // Stop at the next position where something else happens.
        let mut end = pos.saturating_add(chunk).min(this.config.len);
        for at in [
            this.config.error_at,
            this.config.stall_at,
            this.config.panic_at,
        ]
        .into_iter()
        .flatten()
        {
            if at > pos {
                end = end.min(at);
            }
        }
        if let Some(every) = this.config.controls_every {
            end = end.min((pos / every + 1) * every);
        }
        let bytes: Bytes = (pos..end).map(pattern).collect();
        this.pos = end;
        let produced = this.stats.produced.fetch_add(end - pos, Ordering::SeqCst) + end - pos;
        if let Some((at, tx)) = &this.config.notify_at {
            if !this.notified && produced >= *at {
                this.notified = true;
                let _ = tx.try_send(end);
            }
        }
        this.emit(StreamMsg::Data(bytes))
    }
}

impl std::fmt::Display for TestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// So that the byte adapters, which turn stream errors into `io::Error`s, accept it.
impl std::error::Error for TestError {}
