//! `io::AsyncReader`: futures-io `AsyncRead + AsyncBufRead + AsyncSeek`, on every executor,
//! and tokio's traits through tokio-util's compat layer.

mod common;

use std::io::{ErrorKind, SeekFrom};

use common::{Config, OPEN_CONTROL, SEEK_CONTROL_BASE, TestError, pattern};
use futures::{AsyncBufReadExt, AsyncReadExt, AsyncSeekExt, poll};
use kithara_stream::io::{AsyncReader, SideMsg, stream_error};
use kithara_stream::{BytesSource, Engine, StreamError, StreamParams};

fn params() -> StreamParams {
    StreamParams::default()
        .with_buffer_capacity(8 * 1024)
        .with_chunk_size(1000)
}

fn expected(range: std::ops::Range<u64>) -> Vec<u8> {
    range.map(pattern).collect()
}

on_every_executor! {
    /// Reads, seeks from start, current and end, and the side queue, with the engine
    /// spawned on the same executor.
    fn async_reader_reads_and_seeks(spawner) {
        let (source, _) = Config::new(60_000).chunks(&[700, 5000]).controls_every(10_000).build();
        let (engine, handle, stream) = Engine::build(source, params());
        let _engine = spawner.spawn(engine.run());
        let mut reader = AsyncReader::new(stream, handle);

        let mut buf = vec![0; 25_000];
        reader.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, expected(0..25_000));
        assert_eq!(
            reader.take_messages(),
            vec![SideMsg::Control(10_000), SideMsg::Event(10_000), SideMsg::Control(20_000), SideMsg::Event(20_000)]
        );

        assert_eq!(reader.seek(SeekFrom::Start(50_000)).await.unwrap(), 50_000);
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, expected(50_000..60_000));

        assert_eq!(reader.seek(SeekFrom::Current(-55_000)).await.unwrap(), 5_000);
        let mut some = vec![0; 100];
        reader.read_exact(&mut some).await.unwrap();
        assert_eq!(some, expected(5_000..5_100));

        // The test source does not report its length.
        let error = reader.seek(SeekFrom::End(-1)).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unsupported);
    }
}

on_every_executor! {
    /// A source error is an `io::Error` with the `StreamError` inside; a seek resumes.
    fn async_reader_source_error_then_seek(spawner) {
        let mut config = Config::new(20_000);
        config.error_at = Some(7_777);
        let (source, _) = config.build();
        let (engine, handle, stream) = Engine::build(source, params());
        let _engine = spawner.spawn(engine.run());
        let mut reader = AsyncReader::new(stream, handle);
        let mut all = Vec::new();
        let error = reader.read_to_end(&mut all).await.unwrap_err();
        assert_eq!(all, expected(0..7_777));
        assert!(matches!(stream_error::<TestError>(&error), Some(StreamError::Source(_))));
        assert_eq!(reader.seek(SeekFrom::Start(8_000)).await.unwrap(), 8_000);
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, expected(8_000..20_000));
    }
}

type TestReader = AsyncReader<u64, u64, TestError>;

/// Reads to the end in uneven pieces, checking every byte against the source's byte at the
/// position the reader reported before the read; returns the position at the end.
async fn read_checked(reader: &mut TestReader) -> u64 {
    let mut buf = vec![0; 777];
    loop {
        let at = reader.position();
        let n = reader.read(&mut buf).await.unwrap();
        if n == 0 {
            return reader.position();
        }
        assert_eq!(
            &buf[..n],
            &expected(at..at + n as u64)[..],
            "{n} bytes read at {at}"
        );
        assert_eq!(reader.position(), at + n as u64);
    }
}

/// A reader of a 40_000-byte pattern whose seeks wait in the source until `gate` says how
/// they end, and the source's stats.
fn gated_reader() -> (
    Engine<common::TestSource>,
    TestReader,
    async_channel::Sender<bool>,
    std::sync::Arc<common::Stats>,
) {
    let (gate_tx, gate_rx) = async_channel::unbounded();
    let mut config = Config::new(40_000).chunks(&[2000]);
    config.seek_gate = Some(gate_rx);
    let (source, stats) = config.build();
    let (engine, handle, stream) = Engine::build(source, params());
    (engine, AsyncReader::new(stream, handle), gate_tx, stats)
}

/// Two seeks abandoned after their first poll, which is certainly pending (the source holds
/// them at the gate): one that succeeds, then one that fails. The next read waits for each;
/// every byte read afterwards is the source's byte at the position the reader reports.
async fn abandoned_seeks(mut reader: TestReader, gate: async_channel::Sender<bool>) -> TestReader {
    let mut buf = vec![0; 10];
    reader.read_exact(&mut buf).await.unwrap();
    assert_eq!(buf, expected(0..10));

    assert!(poll!(reader.seek(SeekFrom::Start(30_000))).is_pending());
    assert_eq!(
        reader.position(),
        30_000,
        "an abandoned seek reports its target"
    );
    // The read waits for the seek: it cannot return the bytes at 10.
    assert!(poll!(reader.read(&mut buf)).is_pending());
    assert_eq!(reader.position(), 30_000);
    gate.send(true).await.unwrap();
    let mut some = vec![0; 5_000];
    reader.read_exact(&mut some).await.unwrap();
    assert_eq!(some, expected(30_000..35_000));
    assert_eq!(reader.position(), 35_000);

    assert!(poll!(reader.seek(SeekFrom::Start(5_000))).is_pending());
    assert_eq!(reader.position(), 5_000);
    gate.send(false).await.unwrap();
    let error = reader.read(&mut buf).await.unwrap_err();
    assert_eq!(
        stream_error::<TestError>(&error),
        Some(&StreamError::Source(TestError("seek failed")))
    );
    assert_eq!(reader.position(), 35_000, "a failed seek changes nothing");
    assert_eq!(read_checked(&mut reader).await, 40_000);
    reader
}

on_every_executor! {
    /// A seek whose future was dropped after its first poll is still applied before the
    /// next read, which then starts at its target; one that fails leaves the reader where
    /// it was. The engine is spawned on the same executor.
    fn async_reader_abandoned_seek_applies_before_next_read(spawner) {
        let (engine, reader, gate, stats) = gated_reader();
        let engine = spawner.spawn(engine.run());
        let reader = abandoned_seeks(reader, gate).await;
        assert_eq!(stats.seeks(), vec![(30_000, OPEN_CONTROL), (5_000, SEEK_CONTROL_BASE + 30_000)]);
        drop(reader);
        engine.await;
    }
}

/// The same with the engine on a thread of its own under `exec::block_on`, and the reader on
/// the test's thread.
#[test]
fn async_reader_abandoned_seek_engine_on_its_own_thread() {
    common::hang_guard("async_reader_abandoned_seek_engine_thread", || {
        let (engine, reader, gate, stats) = gated_reader();
        let engine = std::thread::spawn(move || kithara_stream::exec::block_on(engine.run()));
        let reader = futures::executor::block_on(abandoned_seeks(reader, gate));
        assert_eq!(
            stats.seeks(),
            vec![(30_000, OPEN_CONTROL), (5_000, SEEK_CONTROL_BASE + 30_000)]
        );
        drop(reader);
        engine.join().unwrap();
    });
}

on_every_executor! {
    /// `AsyncBufRead`: lines straight out of the chunks.
    fn async_reader_buf_read_lines(spawner) {
        let text = "first line\nsecond line\nthird\n".repeat(100);
        let source = BytesSource::new(text.clone().into_bytes()).with_chunk_size(7);
        let (engine, handle, stream) = Engine::build(source, params());
        let _engine = spawner.spawn(engine.run());
        let mut reader = AsyncReader::new(stream, handle);
        let mut lines = Vec::new();
        let mut line = String::new();
        while reader.read_line(&mut line).await.unwrap() > 0 {
            lines.push(std::mem::take(&mut line));
        }
        assert_eq!(lines.concat(), text);
        assert_eq!(lines.len(), 300);
    }
}

/// Tokio users: `tokio_util::compat` turns the futures-io reader into tokio's
/// `AsyncRead + AsyncSeek`.
#[test]
fn async_reader_tokio_compat() {
    use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};
    use tokio_util::compat::FuturesAsyncReadCompatExt;

    common::hang_guard("async_reader_tokio_compat", || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        rt.block_on(async {
            let data: Vec<u8> = (0..100_000u64).map(pattern).collect();
            let source = BytesSource::new(data.clone()).with_chunk_size(4096);
            let (engine, handle, stream) = Engine::build(source, params());
            tokio::spawn(engine.run());
            let mut reader = AsyncReader::new(stream, handle).compat();
            let mut all = Vec::new();
            reader.read_to_end(&mut all).await.unwrap();
            assert_eq!(all, data);
            assert_eq!(reader.seek(SeekFrom::End(-1000)).await.unwrap(), 99_000);
            let mut tail = Vec::new();
            reader.read_to_end(&mut tail).await.unwrap();
            assert_eq!(tail, &data[99_000..]);
            assert_eq!(reader.seek(SeekFrom::Start(12_345)).await.unwrap(), 12_345);
            let mut some = [0; 5];
            reader.read_exact(&mut some).await.unwrap();
            assert_eq!(some, &data[12_345..12_350]);
        });
    });
}

/// A pipe's reader has no handle: it reads, and refuses seeks beyond what it holds.
#[test]
fn async_reader_over_a_pipe_cannot_seek() {
    use kithara_stream::{StreamMsg, pipe};
    futures::executor::block_on(async {
        let (mut writer, reader) = pipe::<(), (), std::io::Error>(params());
        writer
            .send(StreamMsg::Data(bytes::Bytes::from_static(b"abcdef")))
            .await
            .unwrap();
        writer.close();
        let mut reader = AsyncReader::from_reader(reader);
        assert!(!reader.is_seekable());
        let mut two = [0; 2];
        reader.read_exact(&mut two).await.unwrap();
        assert_eq!(&two, b"ab");
        let error = reader.seek(SeekFrom::Start(100)).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unsupported);
        let mut rest = String::new();
        reader.read_to_string(&mut rest).await.unwrap();
        assert_eq!(rest, "cdef");
    });
}
