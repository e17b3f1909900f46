//! `io::AsyncReader`: futures-io `AsyncRead + AsyncBufRead + AsyncSeek`, on every executor,
//! and tokio's traits through tokio-util's compat layer.

mod common;

use std::io::{ErrorKind, SeekFrom};

use common::{Config, TestError, pattern};
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

on_every_executor! {
    /// A seek whose future was dropped after its first poll is still applied before the
    /// next read, which then starts at its target.
    fn async_reader_abandoned_seek_applies_before_next_read(spawner) {
        let data: Vec<u8> = (0..40_000u64).map(pattern).collect();
        let source = BytesSource::new(data.clone()).with_chunk_size(2000);
        let (engine, handle, stream) = Engine::build(source, params());
        let _engine = spawner.spawn(engine.run());
        let mut reader = AsyncReader::new(stream, handle);
        let mut buf = vec![0; 10];
        reader.read_exact(&mut buf).await.unwrap();
        let first_poll = poll!(reader.seek(SeekFrom::Start(30_000)));
        if first_poll.is_pending() {
            // Dropped while pending: the next read waits for the seek.
            reader.read_exact(&mut buf).await.unwrap();
            assert_eq!(buf, &data[30_000..30_010]);
        }
        assert_eq!(reader.position(), if first_poll.is_pending() { 30_010 } else { 30_000 });
    }
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
