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
use std::sync::Arc;
use std::task::Poll;

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

#[derive(Debug, Clone)]
struct ScriptSource {
    items: Arc<Vec<Item>>,
    fails: bool,
}

type Msg = Result<StreamMsg<u8, u8>, &'static str>;

impl ScriptSource {
    fn task(&self, from: u64) -> WriterTask<u8, u8, &'static str> {
        WriterTask::new(stream::iter(self.messages(from)))
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
        std::future::ready(Ok((self.task(pos), control)))
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
    Seek(u64),
    DropHandle,
    DropStream,
}

fn ops(total: u64) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        6 => Just(Op::Read),
        2 => Just(Op::ReadNewWaker),
        2 => (0..=total + 10).prop_map(Op::Seek),
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
}

/// Poll budget for one operation: a correct engine needs far fewer.
const POLLS: usize = 100_000;

impl Driver {
    fn new(case: EngineCase) -> Self {
        let params = StreamParams::default()
            .with_buffer_capacity(case.capacity)
            .with_chunk_size(case.chunk_size);
        let source = ScriptSource {
            items: Arc::new(case.items.clone()),
            fails: case.fails,
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

    fn poll_run(&mut self) -> Result<(), TestCaseError> {
        if !self.run_done {
            self.run_done = Pin::new(&mut self.run)
                .poll(&mut self.run_waker.context())
                .is_ready();
        }
        let bound = self.case.capacity + largest(&self.case.items);
        prop_assert!(
            self.stream.buffered_bytes() <= bound,
            "E3: {} held",
            self.stream.buffered_bytes()
        );
        Ok(())
    }

    /// Reads one item (polling the engine as needed) and checks it against the model.
    fn read(&mut self) -> Result<(), TestCaseError> {
        for _ in 0..POLLS {
            match Pin::new(&mut self.stream).poll_next(&mut self.stream_waker.context()) {
                Poll::Ready(Some(Ok(msg))) => {
                    prop_assert!(!self.ended, "an item after the end");
                    return consume(&mut self.expected, msg, self.case.chunk_size);
                }
                Poll::Ready(Some(Err(error))) => {
                    prop_assert!(!self.ended, "an error after the end");
                    prop_assert_eq!(error, StreamError::Source("script error"));
                    prop_assert_eq!(self.expected.pop_front(), Some(Token::Error));
                    self.ended = true;
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

    fn seek(&mut self, pos: u64) -> Result<(), TestCaseError> {
        let Some(handle) = &self.handle else {
            return Ok(());
        };
        let mut seek = handle.seek_bytes(pos);
        let waker = CountingWaker::new();
        for _ in 0..POLLS {
            if let Poll::Ready(result) = Pin::new(&mut seek).poll(&mut waker.context()) {
                prop_assert_eq!(result, Ok(()));
                self.expected = expected(&self.case.items, self.case.fails, pos);
                self.ended = false;
                return Ok(());
            }
            prop_assert!(!self.run_done, "a seek waits on a completed engine");
            self.poll_run()?;
        }
        Err(TestCaseError::fail("seek: no progress (hang)"))
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
            Op::Seek(pos) => driver.seek(pos)?,
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

    /// D1–D3, D6, E2, E3, S1, S5, B2 against the reference model, over arbitrary scripts.
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
        let source = ScriptSource { items: Arc::new(items.clone()), fails };
        // The failure is sent with `fail` below, after everything else.
        let mut to_send: VecDeque<StreamMsg<u8, u8>> =
            source.messages(0).into_iter().filter_map(Result::ok).collect();
        let bound = capacity + largest(&items);
        let (writer_waker, reader_waker) = (CountingWaker::new(), CountingWaker::new());
        let mut closed = false;
        let mut done = false;
        let mut schedule = schedule.into_iter().chain([true, false].into_iter().cycle());
        for _ in 0..POLLS * 10 {
            if schedule.next().unwrap() || closed {
                match Pin::new(&mut reader).poll_next(&mut reader_waker.context()) {
                    Poll::Ready(Some(Ok(msg))) => consume(&mut expected, msg, chunk_size)?,
                    Poll::Ready(Some(Err(error))) => {
                        prop_assert_eq!(error, StreamError::Source("script error"));
                        prop_assert_eq!(expected.pop_front(), Some(Token::Error));
                        prop_assert!(Pin::new(&mut reader).poll_next(&mut reader_waker.context()).is_ready());
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
                    Poll::Ready(result) => prop_assert_eq!(result, Ok(())),
                    Poll::Pending => {
                        drop(send); // W3: a dropped pending send enqueues nothing
                        to_send.push_front(msg);
                    }
                }
            } else if !closed {
                if fails { writer.fail("script error") } else { writer.close() }
                closed = true;
            }
            prop_assert!(reader.buffered_bytes() <= bound, "W2: {} held", reader.buffered_bytes());
        }
        prop_assert!(done, "the pipe did not end");
        prop_assert!(expected.is_empty());
    }
}
