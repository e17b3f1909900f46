//! The byte adapters' position is always where the bytes come from: the abandoned-seek
//! defect (a seek dropped while pending, then `SeekFrom::Current(0)` answered from a stale
//! position while the engine applied the seek) and a property test over random
//! interleavings of reads, seeks of every kind, abandoned seeks, failing seeks and the seek
//! switch, each checked against the source's bytes at the position the reader reported.
//! The engine runs on a thread of its own, as in a player.

mod common;

use std::convert::Infallible;
use std::io::{BufRead, ErrorKind, Read, Seek, SeekFrom};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use common::{Config, TestError, hang_guard, pattern};
use futures::executor::block_on;
use futures::task::noop_waker;
use futures::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncSeek, AsyncSeekExt, stream};
use kithara_stream::io::{AsyncReader, BlockingReader, stream_error};
use kithara_stream::{
    BytesSource, Engine, EngineSource, OpenResult, StreamError, StreamMsg, StreamParams, WriterTask,
};
use proptest::prelude::*;

/// Polls a seek once and drops it, as a timeout or a `select!` does.
fn abandon_seek<R: AsyncSeek + Unpin>(reader: &mut R, pos: SeekFrom) -> Poll<std::io::Result<u64>> {
    let waker = noop_waker();
    Pin::new(reader).poll_seek(&mut Context::from_waker(&waker), pos)
}

fn spawn_engine<S: EngineSource>(
    source: S,
    params: StreamParams,
) -> AsyncReader<S::Control, S::Event, S::Error> {
    let (engine, handle, stream) = Engine::build(source, params);
    std::thread::spawn(move || kithara_stream::exec::block_on(engine.run()));
    AsyncReader::new(stream, handle)
}

/// A reader of `len` pattern bytes in 4 KiB chunks whose every seek waits for a value from
/// the returned sender (`true` succeeds): an abandoned seek is surely still pending.
fn gated(
    len: u64,
) -> (
    AsyncReader<u64, u64, TestError>,
    async_channel::Sender<bool>,
) {
    let (gate, seeks) = async_channel::unbounded();
    let mut config = Config::new(len);
    config.seek_gate = Some(seeks);
    (
        spawn_engine(config.build().0, StreamParams::default()),
        gate,
    )
}

fn data(len: u64) -> Vec<u8> {
    (0..len).map(pattern).collect()
}

/// The reproduction: 10 bytes read, a seek to 150 000 polled once and dropped,
/// then `seek(Current(0))`: the answer and every byte after it agree.
#[test]
fn abandoned_seek_then_current_position_agrees_with_the_bytes() {
    hang_guard("abandoned_seek_then_current", || {
        let data = data(200_000);
        let (mut reader, gate) = gated(200_000);
        let mut ten = [0; 10];
        block_on(reader.read_exact(&mut ten)).unwrap();
        assert_eq!(ten, &data[..10]);
        assert!(abandon_seek(&mut reader, SeekFrom::Start(150_000)).is_pending());
        gate.send_blocking(true).unwrap();
        let reported = reader.position();
        let at = block_on(reader.seek(SeekFrom::Current(0))).unwrap();
        assert_eq!(at, 150_000);
        assert_eq!(
            reported, 150_000,
            "the seek in flight is where reads continue"
        );
        let mut rest = Vec::new();
        block_on(reader.read_to_end(&mut rest)).unwrap();
        assert_eq!(rest.len(), 50_000);
        assert!(
            rest == data[150_000..],
            "bytes after the seek are not the source's"
        );
    });
}

/// After an abandoned seek, a seek back to where the reader was goes to the engine (the
/// abandoned one moved the stream), and the bytes follow from there.
#[test]
fn abandoned_seek_then_seek_back_reads_from_there() {
    hang_guard("abandoned_seek_then_seek_back", || {
        let data = data(200_000);
        let (mut reader, gate) = gated(200_000);
        let mut ten = [0; 10];
        block_on(reader.read_exact(&mut ten)).unwrap();
        assert!(abandon_seek(&mut reader, SeekFrom::Start(150_000)).is_pending());
        gate.send_blocking(true).unwrap();
        gate.send_blocking(true).unwrap(); // for the seek back
        assert_eq!(block_on(reader.seek(SeekFrom::Start(10))).unwrap(), 10);
        let mut rest = Vec::new();
        block_on(reader.read_to_end(&mut rest)).unwrap();
        assert!(
            rest == data[10..],
            "bytes after seeking back are not the source's"
        );
    });
}

/// The blocking reader's `stream_position` waits for a seek in flight instead of
/// answering from before it.
#[test]
fn blocking_stream_position_waits_for_an_abandoned_seek() {
    hang_guard("blocking_stream_position_abandoned", || {
        let data = data(200_000);
        let (mut reader, gate) = gated(200_000);
        let mut ten = [0; 10];
        block_on(reader.read_exact(&mut ten)).unwrap();
        assert!(abandon_seek(&mut reader, SeekFrom::Start(150_000)).is_pending());
        gate.send_blocking(true).unwrap();
        let mut reader = BlockingReader::from(reader);
        assert_eq!(reader.stream_position().unwrap(), 150_000);
        let mut next = [0; 100];
        reader.read_exact(&mut next).unwrap();
        assert_eq!(next, &data[150_000..150_100]);
        // A buffered read consumed within the chunk: still no engine, still right.
        let buffered = reader.fill_buf().unwrap().to_vec();
        assert_eq!(buffered, &data[150_100..150_100 + buffered.len()]);
    });
}

/// A source of `pattern` bytes whose seeks fail at positions where `fails(pos)`.
struct Flaky {
    len: u64,
    chunk: usize,
}

fn fails(pos: u64) -> bool {
    pos % 5 == 3
}

impl Flaky {
    fn task(&self, pos: u64) -> WriterTask<(), (), TestError> {
        let chunk = self.chunk as u64;
        let len = self.len;
        let starts = (pos.min(len)..len).step_by(self.chunk);
        WriterTask::new(stream::iter(starts.map(move |at| {
            let bytes: Vec<u8> = (at..(at + chunk).min(len)).map(pattern).collect();
            Ok(StreamMsg::Data(Bytes::from(bytes)))
        })))
    }
}

impl EngineSource for Flaky {
    type Error = TestError;
    type Control = ();
    type Event = ();

    fn open(&self, _: StreamParams) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
        std::future::ready(Ok((self.task(0), ())))
    }

    fn seek_bytes(
        &self,
        pos: u64,
        (): (),
    ) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
        let result = if fails(pos) {
            Err(StreamError::Source(TestError("seek failed")))
        } else {
            Ok((self.task(pos), ()))
        };
        std::future::ready(result)
    }

    fn supports_seek(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.len)
    }
}

#[derive(Debug, Clone)]
enum Op {
    Read(usize),
    FillBuf(usize),
    Seek(SeekFrom),
    /// Polled once and dropped.
    Abandon(SeekFrom),
    Switch(bool),
}

fn seek_from(len: u64) -> impl Strategy<Value = SeekFrom> {
    let len = len as i64;
    prop_oneof![
        (0..len as u64 + 100).prop_map(SeekFrom::Start),
        (-len - 10..len + 10).prop_map(SeekFrom::Current),
        (-len - 10..20i64).prop_map(SeekFrom::End),
        Just(SeekFrom::Current(0)),
    ]
}

fn op(len: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1..3000usize).prop_map(Op::Read),
        1 => (0..3000usize).prop_map(Op::FillBuf),
        2 => seek_from(len).prop_map(Op::Seek),
        2 => seek_from(len).prop_map(Op::Abandon),
        1 => any::<bool>().prop_map(Op::Switch),
    ]
}

/// What the test knows of the reader: where it stands once no seek is in flight, and the
/// target of an abandoned seek still in flight.
struct Model {
    len: u64,
    settled: u64,
    pending: Option<u64>,
    switch_on: bool,
}

impl Model {
    fn reported(&self) -> u64 {
        self.pending.unwrap_or(self.settled)
    }

    /// An abandoned seek resolves: applied, or (where the source fails it) nothing moves.
    fn settle(&mut self) -> Option<u64> {
        let target = self.pending.take()?;
        if !fails(target) {
            self.settled = target;
        }
        Some(target)
    }

    fn resolve(&self, pos: SeekFrom) -> Option<u64> {
        match pos {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(offset) => self.settled.checked_add_signed(offset),
            SeekFrom::End(offset) => self.len.checked_add_signed(offset),
        }
    }

    /// Checks a seek's result against its target, and moves.
    fn seek_result(&mut self, pos: SeekFrom, target: Option<u64>, result: std::io::Result<u64>) {
        match (target, result) {
            (None, Err(error)) => assert_eq!(error.kind(), ErrorKind::InvalidInput, "{pos:?}"),
            (None, Ok(at)) => panic!("{pos:?} to a negative position answered Ok({at})"),
            (Some(target), Ok(at)) => {
                assert_eq!(at, target, "{pos:?} from {}", self.settled);
                self.settled = target;
            }
            // Seeks that need the engine: refused with the switch off, failed by the source
            // where it fails them. Nothing moves.
            (Some(target), Err(error)) => {
                if self.switch_on {
                    assert!(fails(target), "{pos:?} to {target} failed: {error}");
                } else {
                    assert_eq!(error.kind(), ErrorKind::Unsupported, "{pos:?}: {error}");
                }
            }
        }
    }
}

fn run_script(len: u64, chunk: usize, capacity: usize, ops: &[Op]) {
    let params = StreamParams::default()
        .with_buffer_capacity(capacity)
        .with_chunk_size(chunk.max(1));
    let mut reader = spawn_engine(Flaky { len, chunk }, params);
    let switch = reader.seek_switch();
    // The length is known before the script starts (`SeekFrom::End` never waits for it).
    while reader.byte_len().is_none() {
        std::thread::yield_now();
    }
    let data = data(len);
    let mut model = Model {
        len,
        settled: 0,
        pending: None,
        switch_on: true,
    };
    for (step, op) in ops.iter().enumerate() {
        match op {
            Op::Read(n) => {
                let mut buf = vec![0; *n];
                let result = block_on(reader.read(&mut buf));
                if let Some(target) = model.settle() {
                    if fails(target) {
                        let error = result.expect_err("a failed abandoned seek is reported");
                        assert!(
                            matches!(
                                stream_error::<TestError>(&error),
                                Some(StreamError::Source(TestError("seek failed")))
                            ),
                            "step {step}: {error}"
                        );
                        assert_eq!(reader.position(), model.settled, "step {step}");
                        continue;
                    }
                }
                let read = result.unwrap_or_else(|e| panic!("step {step} {op:?}: {e}"));
                let at = model.settled;
                let want = &data[(at.min(len) as usize)..((at + read as u64).min(len) as usize)];
                assert_eq!(read, want.len(), "step {step} {op:?} at {at}");
                assert!(
                    buf[..read] == *want,
                    "step {step} {op:?}: wrong bytes at {at}"
                );
                assert!(read > 0 || at >= len, "step {step}: Ok(0) at {at} of {len}");
                model.settled += read as u64;
            }
            Op::FillBuf(n) => {
                let result = block_on(reader.fill_buf()).map(<[u8]>::to_vec);
                if let Some(target) = model.settle() {
                    if fails(target) {
                        assert!(result.is_err(), "step {step}: a failed seek is reported");
                        continue;
                    }
                }
                let held = result.unwrap_or_else(|e| panic!("step {step} {op:?}: {e}"));
                let at = model.settled as usize;
                assert!(held[..] == data[at.min(data.len())..(at + held.len()).min(data.len())]);
                let take = held.len().min(*n);
                Pin::new(&mut reader).consume(take);
                model.settled += take as u64;
            }
            Op::Seek(pos) => {
                model.settle();
                let target = model.resolve(*pos);
                let result = block_on(reader.seek(*pos));
                model.seek_result(*pos, target, result);
            }
            Op::Abandon(pos) if model.pending.is_none() => {
                let target = model.resolve(*pos);
                match abandon_seek(&mut reader, *pos) {
                    Poll::Ready(result) => model.seek_result(*pos, target, result),
                    Poll::Pending => model.pending = target,
                }
            }
            // One abandoned seek at a time: with one in flight, this seek settles it first.
            Op::Abandon(pos) => {
                model.settle();
                let target = model.resolve(*pos);
                let result = block_on(reader.seek(*pos));
                model.seek_result(*pos, target, result);
            }
            Op::Switch(on) => {
                switch.set(*on);
                model.switch_on = *on;
            }
        }
        assert_eq!(
            reader.position(),
            model.reported(),
            "step {step} after {op:?}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(200),
        ..ProptestConfig::default()
    })]

    /// Every byte read equals the source's byte at the position the reader reported, through
    /// any interleaving of reads, seeks, abandoned seeks, failing seeks and the switch.
    #[test]
    fn reader_position_always_matches_the_bytes(
        (len, ops) in (1u64..40_000).prop_flat_map(|len| (Just(len), prop::collection::vec(op(len), 1..40))),
        chunk in 1usize..5000,
        capacity in 1usize..20_000,
    ) {
        hang_guard("reader_position_model", move || run_script(len, chunk, capacity, &ops));
    }
}

/// `Infallible` sources work with the same adapters (the type the quick examples use).
#[test]
fn infallible_source_reads_to_the_end() {
    let mut reader = spawn_engine(BytesSource::new(vec![7u8; 10]), StreamParams::default());
    let mut all = Vec::new();
    block_on(reader.read_to_end(&mut all)).unwrap();
    assert_eq!(all, [7; 10]);
    let _: Option<&kithara_stream::EngineHandle<Infallible>> = reader.handle();
}
