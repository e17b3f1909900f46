//! Model-based property suite: arbitrary producer scripts × params × consumer scripts, run
//! by a deterministic hand-polled driver and compared with a reference model of the
//! contract (a `VecDeque` of the expected tokens).
//!
//! `PROPTEST_CASES` sets the number of cases (default 1000). Failures shrink to a minimal
//! script and are saved in `tests/model.proptest-regressions`, which later runs replay first.
#![cfg(not(loom))]

mod common;

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures::{Stream, stream};
use kithara_stream::{
    Engine, EngineHandle, EngineSource, EngineStream, MESSAGE_COST, OpenResult, Run, StreamError,
    StreamMsg, StreamParams, WriterTask, pipe,
};
use proptest::prelude::*;

use common::pattern;
use common::waker::CountingWaker;

/// What a producer script produces.
#[derive(Debug, Clone)]
enum Item {
    Data(usize),
    Control(u8),
    Event(u8),
}

/// What the consumer sees, with adjacent data merged (boundaries may differ, D1).
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Bytes(Vec<u8>),
    Control(u8),
    Event(u8),
    Error,
    End,
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000)
}

/// The tokens a producer script yields when started at byte `from` (0 for `open`): data
/// from `from` on, and the messages anchored at `from` or later.
fn expected(items: &[Item], fails: bool, from: u64) -> VecDeque<Token> {
    let mut tokens = VecDeque::new();
    let mut at = 0u64;
    for item in items {
        match *item {
            Item::Data(len) => {
                let (start, end) = (at.max(from), at + len as u64);
                if start < end {
                    let bytes: Vec<u8> = (start..end).map(pattern).collect();
                    match tokens.back_mut() {
                        Some(Token::Bytes(prev)) => prev.extend_from_slice(&bytes),
                        _ => tokens.push_back(Token::Bytes(bytes)),
                    }
                }
                at = end;
            }
            Item::Control(c) if at >= from => tokens.push_back(Token::Control(c)),
            Item::Event(e) if at >= from => tokens.push_back(Token::Event(e)),
            Item::Control(_) | Item::Event(_) => {}
        }
    }
    tokens.push_back(if fails { Token::Error } else { Token::End });
    tokens
}

/// Takes `msg` off the front of the expected tokens, or fails the case.
fn consume(
    expected: &mut VecDeque<Token>,
    msg: StreamMsg<u8, u8>,
    chunk_size: usize,
) -> Result<(), TestCaseError> {
    match msg {
        StreamMsg::Data(data) => {
            prop_assert!(
                !data.is_empty() && data.len() <= chunk_size,
                "data of {} bytes",
                data.len()
            );
            let Some(Token::Bytes(want)) = expected.front_mut() else {
                return Err(TestCaseError::fail(format!(
                    "data, expected {:?}",
                    expected.front()
                )));
            };
            prop_assert!(want.len() >= data.len(), "more data than produced");
            prop_assert_eq!(&want[..data.len()], &data[..]);
            want.drain(..data.len());
            if want.is_empty() {
                expected.pop_front();
            }
        }
        StreamMsg::Control(c) => prop_assert_eq!(expected.pop_front(), Some(Token::Control(c))),
        StreamMsg::Event(e) => prop_assert_eq!(expected.pop_front(), Some(Token::Event(e))),
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The source of a producer script.

/// A gate a seek of the source waits at until the driver opens it.
#[derive(Debug, Default)]
struct Gate {
    open: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Gate {
    fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
        if let Some(waker) = self.waker.lock().unwrap().take() {
            waker.wake();
        }
    }
}

struct GateWait(Arc<Gate>);

impl Future for GateWait {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.open.load(Ordering::SeqCst) {
            return Poll::Ready(());
        }
        *self.0.waker.lock().unwrap() = Some(cx.waker().clone());
        if self.0.open.load(Ordering::SeqCst) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

/// How the source answers the seeks the engine starts next.
#[derive(Debug, Clone, Default)]
struct Plan {
    /// `Err("seek failed")` instead of a writer task.
    fail: bool,
    /// Wait at this gate first.
    gate: Option<Arc<Gate>>,
}

/// What the driver tells the source and what the source did, shared.
#[derive(Debug, Default)]
struct SourceLog {
    plan: Mutex<Plan>,
    /// The position of every `seek_bytes` call.
    calls: Mutex<Vec<u64>>,
    /// For every writer task created, in order (the one of `open` first): the bytes it
    /// produced, each message counted as `MESSAGE_COST`.
    tasks: Mutex<Vec<Arc<AtomicU64>>>,
    /// The writer tasks that seeks created.
    seek_tasks: AtomicUsize,
}

impl SourceLog {
    fn calls(&self) -> Vec<u64> {
        self.calls.lock().unwrap().clone()
    }

    fn tasks(&self) -> usize {
        self.tasks.lock().unwrap().len()
    }

    fn seek_tasks(&self) -> usize {
        self.seek_tasks.load(Ordering::SeqCst)
    }

    /// What task `i` produced so far (0 before it exists).
    fn produced(&self, i: usize) -> u64 {
        self.tasks
            .lock()
            .unwrap()
            .get(i)
            .map_or(0, |n| n.load(Ordering::SeqCst))
    }
}

#[derive(Debug, Clone)]
struct ScriptSource {
    items: Arc<Vec<Item>>,
    fails: bool,
    log: Arc<SourceLog>,
}

type Msg = Result<StreamMsg<u8, u8>, &'static str>;

/// What a message counts toward the ring's budget (E3), worked out here and not asked of
/// the crate.
fn cost(msg: &StreamMsg<u8, u8>) -> u64 {
    match msg {
        StreamMsg::Data(data) => data.len() as u64,
        StreamMsg::Control(_) | StreamMsg::Event(_) => MESSAGE_COST as u64,
    }
}

impl ScriptSource {
    fn task(&self, from: u64) -> WriterTask<u8, u8, &'static str> {
        let produced = Arc::new(AtomicU64::new(0));
        self.log.tasks.lock().unwrap().push(produced.clone());
        // Counted as the engine takes each message from the task.
        let messages = self.messages(from).into_iter().inspect(move |msg| {
            if let Ok(msg) = msg {
                produced.fetch_add(cost(msg), Ordering::SeqCst);
            }
        });
        WriterTask::new(stream::iter(messages))
    }

    /// What the writer task started at `from` produces.
    fn messages(&self, from: u64) -> Vec<Msg> {
        let mut out: Vec<Msg> = Vec::new();
        let mut at = 0u64;
        for item in self.items.iter() {
            match *item {
                Item::Data(len) => {
                    let (start, end) = (at.max(from), at + len as u64);
                    if len == 0 && at >= from {
                        out.push(Ok(StreamMsg::Data(Bytes::new()))); // B2
                    } else if start < end {
                        out.push(Ok(StreamMsg::Data((start..end).map(pattern).collect())));
                    }
                    at = end;
                }
                Item::Control(c) if at >= from => out.push(Ok(StreamMsg::Control(c))),
                Item::Event(e) if at >= from => out.push(Ok(StreamMsg::Event(e))),
                Item::Control(_) | Item::Event(_) => {}
            }
        }
        if self.fails {
            out.push(Err("script error"));
        }
        out
    }
}

impl EngineSource for ScriptSource {
    type Error = &'static str;
    type Control = u8;
    type Event = u8;

    fn open(&self, _: StreamParams) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
        std::future::ready(Ok((self.task(0), 0)))
    }

    fn seek_bytes(
        &self,
        pos: u64,
        control: u8,
    ) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
        self.log.calls.lock().unwrap().push(pos);
        let plan = self.log.plan.lock().unwrap().clone();
        let this = self.clone();
        async move {
            if let Some(gate) = plan.gate {
                GateWait(gate).await;
            }
            if plan.fail {
                Err(StreamError::Source("seek failed"))
            } else {
                this.log.seek_tasks.fetch_add(1, Ordering::SeqCst);
                Ok((this.task(pos), control))
            }
        }
    }

    fn supports_seek(&self) -> bool {
        true
    }
}

// ---------------------------------------------------------------------------------------
// Strategies.

fn size() -> impl Strategy<Value = usize> {
    prop_oneof![4 => 1..=64usize, 1 => 1..=65_536usize]
}

fn script(capacity: usize) -> impl Strategy<Value = (Vec<Item>, bool)> {
    let item = prop_oneof![
        4 => (0..=3 * capacity).prop_map(Item::Data),
        1 => any::<u8>().prop_map(Item::Control),
        1 => any::<u8>().prop_map(Item::Event),
    ];
    (prop::collection::vec(item, 0..12), any::<bool>())
}

#[derive(Debug, Clone)]
enum Op {
    Read,
    ReadNewWaker,
    /// A seek the source answers at once, with a writer task.
    Seek(u64),
    /// A seek the source fails at once (S3).
    FailedSeek(u64),
    /// Several seeks, each polled once, whose source futures wait at a gate (S4): the last
    /// one wins and succeeds or fails by its flag. With `interleave` the engine runs after
    /// each (so it started the earlier ones), else only after all of them. `reads` reads
    /// happen while the winner waits at its gate (S3: the stream keeps flowing).
    Seeks {
        seeks: Vec<(u64, bool)>,
        interleave: bool,
        reads: usize,
    },
    DropHandle,
    DropStream,
}

fn ops(total: u64) -> impl Strategy<Value = Vec<Op>> {
    let pos = move || 0..=total + 10;
    let op = prop_oneof![
        6 => Just(Op::Read),
        2 => Just(Op::ReadNewWaker),
        2 => pos().prop_map(Op::Seek),
        1 => pos().prop_map(Op::FailedSeek),
        1 => (prop::collection::vec((pos(), any::<bool>()), 1..4), any::<bool>(), 0..6usize)
            .prop_map(|(seeks, interleave, reads)| Op::Seeks { seeks, interleave, reads }),
        1 => Just(Op::DropHandle),
        1 => Just(Op::DropStream),
    ];
    prop::collection::vec(op, 0..40)
}

fn total(items: &[Item]) -> u64 {
    items
        .iter()
        .map(|item| match item {
            Item::Data(len) => *len as u64,
            _ => 0,
        })
        .sum()
}

fn largest(items: &[Item]) -> usize {
    items
        .iter()
        .map(|item| match item {
            Item::Data(len) => *len,
            _ => MESSAGE_COST,
        })
        .max()
        .unwrap_or(0)
        .max(MESSAGE_COST)
}

#[derive(Debug, Clone)]
struct EngineCase {
    capacity: usize,
    chunk_size: usize,
    items: Vec<Item>,
    fails: bool,
    ops: Vec<Op>,
}

fn engine_case() -> impl Strategy<Value = EngineCase> {
    (size(), size())
        .prop_flat_map(|(capacity, chunk_size)| {
            (Just(capacity), Just(chunk_size), script(capacity))
        })
        .prop_flat_map(|(capacity, chunk_size, (items, fails))| {
            let total = total(&items);
            (
                Just(capacity),
                Just(chunk_size),
                Just(items),
                Just(fails),
                ops(total),
            )
        })
        .prop_map(|(capacity, chunk_size, items, fails, ops)| EngineCase {
            capacity,
            chunk_size,
            items,
            fails,
            ops,
        })
        // Keep a case's item count sane in debug builds.
        .prop_filter("too many items", |case| {
            total(&case.items) / case.chunk_size as u64 <= 20_000
        })
}

// ---------------------------------------------------------------------------------------
// The engine driver.

type Stream8 = EngineStream<u8, u8, &'static str>;
type Polled = Poll<Option<Result<StreamMsg<u8, u8>, StreamError<&'static str>>>>;
type SeekResult = Result<(), StreamError<&'static str>>;

struct Driver {
    case: EngineCase,
    run: Run<ScriptSource>,
    run_waker: CountingWaker,
    run_done: bool,
    handle: Option<EngineHandle<&'static str>>,
    stream: Stream8,
    stream_waker: CountingWaker,
    expected: VecDeque<Token>,
    /// The stream yielded its terminal token (`None` or an error) for the current start.
    ended: bool,
    log: Arc<SourceLog>,
    /// The writer task (its index in `log.tasks`) the stream reads now.
    current: usize,
    /// The tasks whose messages may still be in the ring: the current one, and the ones
    /// before a seek until the stream is next polled (which discards what they left).
    live: Vec<usize>,
    /// What the stream yielded of each task, at the same costs as `SourceLog::tasks`.
    read: Vec<u64>,
}

/// Poll budget for one operation: a correct engine needs far fewer.
const POLLS: usize = 100_000;

impl Driver {
    fn new(case: EngineCase) -> Self {
        let params = StreamParams::default()
            .with_buffer_capacity(case.capacity)
            .with_chunk_size(case.chunk_size);
        let log = Arc::new(SourceLog::default());
        let source = ScriptSource {
            items: Arc::new(case.items.clone()),
            fails: case.fails,
            log: log.clone(),
        };
        let (engine, handle, stream) = Engine::build(source, params);
        Self {
            expected: expected(&case.items, case.fails, 0),
            case,
            run: engine.run(),
            run_waker: CountingWaker::new(),
            run_done: false,
            handle: Some(handle),
            stream,
            stream_waker: CountingWaker::new(),
            ended: false,
            log,
            current: 0,
            live: vec![0],
            read: vec![0],
        }
    }

    /// E1: dropping the stream, at any point, completes the engine at its next poll.
    fn drop_stream(self) -> Result<(), TestCaseError> {
        let Driver {
            mut run,
            stream,
            run_done,
            ..
        } = self;
        drop(stream);
        if !run_done {
            let waker = CountingWaker::new();
            prop_assert_eq!(
                Pin::new(&mut run).poll(&mut waker.context()),
                Poll::Ready(())
            );
        }
        Ok(())
    }

    /// E3, counted here: what the live writer tasks produced minus what the stream yielded
    /// of them never exceeds the capacity plus one produced item; and it is what the stream
    /// itself reports.
    fn check_memory(&self) -> Result<(), TestCaseError> {
        let held: u64 = self
            .live
            .iter()
            .map(|&i| self.log.produced(i) - self.read[i])
            .sum();
        let bound = (self.case.capacity + largest(&self.case.items)) as u64;
        prop_assert!(held <= bound, "E3: {} held, bound {}", held, bound);
        prop_assert_eq!(
            self.stream.buffered_bytes() as u64,
            held,
            "buffered_bytes()"
        );
        Ok(())
    }

    fn poll_run(&mut self) -> Result<(), TestCaseError> {
        if !self.run_done {
            self.run_done = Pin::new(&mut self.run)
                .poll(&mut self.run_waker.context())
                .is_ready();
        }
        // A task the source created in this poll (other than `open`'s, task 0) belongs to a
        // seek the engine applied in it: what the stream yields from now on is that task's.
        while self.log.tasks() > self.read.len() {
            self.current = self.read.len();
            self.live.push(self.current);
            self.read.push(0);
        }
        self.check_memory()
    }

    fn poll_stream(&mut self) -> Polled {
        let poll = Pin::new(&mut self.stream).poll_next(&mut self.stream_waker.context());
        // Any poll after a seek discards what the tasks before it left in the ring.
        let current = self.current;
        self.live.retain(|&i| i == current);
        if let Poll::Ready(Some(Ok(msg))) = &poll {
            self.read[current] += cost(msg);
        }
        poll
    }

    /// Reads one item (polling the engine as needed) and checks it against the model.
    fn read(&mut self) -> Result<(), TestCaseError> {
        for _ in 0..POLLS {
            let poll = self.poll_stream();
            self.check_memory()?;
            match poll {
                Poll::Ready(Some(Ok(msg))) => {
                    prop_assert!(!self.ended, "an item after the end");
                    return consume(&mut self.expected, msg, self.case.chunk_size);
                }
                Poll::Ready(Some(Err(error))) => {
                    prop_assert!(!self.ended, "an error after the end");
                    prop_assert_eq!(error, StreamError::Source("script error"));
                    prop_assert_eq!(self.expected.pop_front(), Some(Token::Error));
                    self.ended = true;
                    // D2: the stream ends right after its error.
                    prop_assert_eq!(self.poll_stream(), Poll::Ready(None));
                    return Ok(());
                }
                Poll::Ready(None) => {
                    if !self.ended {
                        prop_assert_eq!(self.expected.pop_front(), Some(Token::End));
                        self.ended = true;
                    }
                    return Ok(()); // S5: None again, never Pending
                }
                Poll::Pending => {
                    prop_assert!(!self.run_done, "the stream waits on a completed engine");
                    self.poll_run()?;
                }
            }
        }
        Err(TestCaseError::fail("read: no progress (hang)"))
    }

    /// Drives `seek` to its result, polling the engine while it is pending.
    fn finish_seek(
        &mut self,
        seek: &mut kithara_stream::SeekFuture<&'static str>,
    ) -> Result<SeekResult, TestCaseError> {
        let waker = CountingWaker::new();
        for _ in 0..POLLS {
            if let Poll::Ready(result) = Pin::new(&mut *seek).poll(&mut waker.context()) {
                return Ok(result);
            }
            prop_assert!(!self.run_done, "a seek waits on a completed engine");
            self.poll_run()?;
        }
        Err(TestCaseError::fail("seek: no progress (hang)"))
    }

    /// Checks the winning seek's result: S1 on success (the stream restarts at `pos` from
    /// the one task the source created for it), S3 on failure (nothing changes: the model
    /// goes on where it was).
    fn settle(
        &mut self,
        pos: u64,
        fail: bool,
        result: SeekResult,
        seek_tasks_before: usize,
    ) -> Result<(), TestCaseError> {
        if fail {
            prop_assert_eq!(result, Err(StreamError::Source("seek failed")));
            prop_assert_eq!(
                self.log.seek_tasks(),
                seek_tasks_before,
                "a failed seek made a task"
            );
        } else {
            prop_assert_eq!(result, Ok(()));
            prop_assert_eq!(
                self.log.seek_tasks(),
                seek_tasks_before + 1,
                "one task per applied seek"
            );
            prop_assert_eq!(
                self.current,
                self.log.tasks() - 1,
                "the stream reads the new task"
            );
            self.expected = expected(&self.case.items, self.case.fails, pos);
            self.ended = false;
        }
        self.check_memory()
    }

    /// A seek the source answers at once: with a task, or with an error.
    fn seek(&mut self, pos: u64, fail: bool) -> Result<(), TestCaseError> {
        let Some(handle) = &self.handle else {
            return Ok(());
        };
        let mut seek = handle.seek_bytes(pos);
        *self.log.plan.lock().unwrap() = Plan { fail, gate: None };
        let (calls, tasks) = (self.log.calls().len(), self.log.seek_tasks());
        let result = self.finish_seek(&mut seek)?;
        prop_assert_eq!(
            &self.log.calls()[calls..],
            &[pos][..],
            "the source's seek calls"
        );
        self.settle(pos, fail, result, tasks)
    }

    /// S4: several seeks issued before the engine applied any; see `Op::Seeks`.
    fn seeks(
        &mut self,
        seeks: &[(u64, bool)],
        interleave: bool,
        reads: usize,
    ) -> Result<(), TestCaseError> {
        let Some(handle) = self.handle.clone() else {
            return Ok(());
        };
        let (calls, tasks) = (self.log.calls().len(), self.log.seek_tasks());
        let waker = CountingWaker::new();
        let mut futures = Vec::new();
        let mut gates = Vec::new();
        for &(pos, ok) in seeks {
            let gate = Arc::new(Gate::default());
            gates.push(gate.clone());
            *self.log.plan.lock().unwrap() = Plan {
                fail: !ok,
                gate: Some(gate),
            };
            let mut seek = handle.seek_bytes(pos);
            prop_assert!(
                Pin::new(&mut seek).poll(&mut waker.context()).is_pending(),
                "issued, not applied"
            );
            futures.push(seek);
            if interleave {
                self.poll_run()?; // starts it in the source, cancelling the one before
            }
        }
        drop(handle);
        let mut last = futures.pop().expect("at least one seek");
        for (i, mut earlier) in futures.into_iter().enumerate() {
            prop_assert_eq!(
                Pin::new(&mut earlier).poll(&mut waker.context()),
                Poll::Ready(Err(StreamError::Cancelled)),
                "S4: seek {} of {:?}",
                i,
                seeks
            );
        }
        // The winner waits at its gate while the stream flows on from where it was.
        for _ in 0..reads {
            self.read()?;
        }
        self.poll_run()?;
        prop_assert!(Pin::new(&mut last).poll(&mut waker.context()).is_pending());
        // Started in the source: every seek if the engine ran between them, else only the
        // last.
        let started: Vec<u64> = if interleave {
            seeks.iter().map(|&(pos, _)| pos).collect()
        } else {
            vec![seeks.last().unwrap().0]
        };
        prop_assert_eq!(
            &self.log.calls()[calls..],
            &started[..],
            "the source's seek calls"
        );
        prop_assert_eq!(
            self.log.seek_tasks(),
            tasks,
            "no task before the gate opens"
        );
        for gate in &gates {
            gate.open();
        }
        let result = self.finish_seek(&mut last)?;
        let &(pos, ok) = seeks.last().unwrap();
        self.settle(pos, !ok, result, tasks)
    }

    fn finish_run(&mut self) -> Result<(), TestCaseError> {
        for _ in 0..POLLS {
            self.poll_run()?;
            if self.run_done {
                return Ok(());
            }
        }
        Err(TestCaseError::fail("run() did not complete"))
    }
}

fn run_engine_case(case: EngineCase) -> Result<(), TestCaseError> {
    let mut driver = Driver::new(case);
    for op in driver.case.ops.clone() {
        match op {
            Op::Read => driver.read()?,
            Op::ReadNewWaker => {
                driver.stream_waker = CountingWaker::new();
                driver.read()?;
            }
            Op::Seek(pos) => driver.seek(pos, false)?,
            Op::FailedSeek(pos) => driver.seek(pos, true)?,
            Op::Seeks {
                seeks,
                interleave,
                reads,
            } => driver.seeks(&seeks, interleave, reads)?,
            Op::DropHandle => driver.handle = None,
            Op::DropStream => return driver.drop_stream(),
        }
    }
    // Drain to the end, then let the engine go: it completes (E2).
    while !driver.ended {
        driver.read()?;
    }
    prop_assert!(driver.expected.is_empty(), "left: {:?}", driver.expected);
    driver.handle = None;
    driver.finish_run()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// D1–D3, D6, E2, E3, S1, S3, S4, S5, B2 against the reference model, over arbitrary
    /// scripts.
    #[test]
    fn model_engine_matches_reference(case in engine_case()) {
        run_engine_case(case)?;
    }

    /// E1 for arbitrary scripts: dropping the stream at any point completes the engine.
    #[test]
    fn model_engine_stops_when_stream_dropped(case in engine_case(), reads in 0..20usize) {
        let mut driver = Driver::new(case);
        for _ in 0..reads {
            driver.read()?;
        }
        driver.drop_stream()?;
    }

    /// The pipe against the model: a writer script sent with backpressure, interleaved with
    /// reads by a schedule, then closed or failed.
    #[test]
    fn model_pipe_matches_reference(
        (capacity, chunk_size, items, fails, schedule) in (size(), size()).prop_flat_map(|(capacity, chunk_size)| {
            (Just(capacity), Just(chunk_size), script(capacity), prop::collection::vec(any::<bool>(), 0..64))
                .prop_map(|(capacity, chunk_size, (items, fails), schedule)| (capacity, chunk_size, items, fails, schedule))
        })
    ) {
        prop_assume!(total(&items) / chunk_size as u64 <= 20_000);
        let params = StreamParams::default().with_buffer_capacity(capacity).with_chunk_size(chunk_size);
        let (mut writer, mut reader) = pipe::<u8, u8, &'static str>(params);
        let mut expected = expected(&items, fails, 0);
        let source = ScriptSource { items: Arc::new(items.clone()), fails, log: Arc::default() };
        // The failure is sent with `fail` below, after everything else.
        let mut to_send: VecDeque<StreamMsg<u8, u8>> =
            source.messages(0).into_iter().filter_map(Result::ok).collect();
        let bound = capacity + largest(&items);
        let (writer_waker, reader_waker) = (CountingWaker::new(), CountingWaker::new());
        let mut closed = false;
        let mut done = false;
        // E3 counted here: the costs of the sends that resolved minus those of the items read.
        let mut held = 0u64;
        let mut schedule = schedule.into_iter().chain([true, false].into_iter().cycle());
        for _ in 0..POLLS * 10 {
            if schedule.next().unwrap() || closed {
                match Pin::new(&mut reader).poll_next(&mut reader_waker.context()) {
                    Poll::Ready(Some(Ok(msg))) => {
                        held -= cost(&msg);
                        consume(&mut expected, msg, chunk_size)?;
                    }
                    Poll::Ready(Some(Err(error))) => {
                        prop_assert_eq!(error, StreamError::Source("script error"));
                        prop_assert_eq!(expected.pop_front(), Some(Token::Error));
                        // D2: the stream ends right after its error.
                        prop_assert_eq!(Pin::new(&mut reader).poll_next(&mut reader_waker.context()), Poll::Ready(None));
                        done = true;
                    }
                    Poll::Ready(None) => {
                        prop_assert_eq!(expected.pop_front(), Some(Token::End));
                        done = true;
                    }
                    Poll::Pending => prop_assert!(!closed, "pending after the writer closed"),
                }
                if done {
                    break;
                }
            } else if let Some(msg) = to_send.pop_front() {
                let mut send = writer.send(msg.clone());
                match Pin::new(&mut send).poll(&mut writer_waker.context()) {
                    Poll::Ready(result) => {
                        prop_assert_eq!(result, Ok(()));
                        held += cost(&msg);
                    }
                    Poll::Pending => {
                        drop(send); // W3: a dropped pending send enqueues nothing
                        to_send.push_front(msg);
                    }
                }
            } else if !closed {
                if fails { writer.fail("script error") } else { writer.close() }
                closed = true;
            }
            prop_assert!(held <= bound as u64, "W2: {} held", held);
            prop_assert_eq!(reader.buffered_bytes() as u64, held, "buffered_bytes()");
        }
        prop_assert!(done, "the pipe did not end");
        prop_assert!(expected.is_empty());
    }
}
