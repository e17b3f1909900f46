//! `io::BlockingReader`: `Read + BufRead + Seek` on a plain thread, with the engine on another
//! thread (driven by `exec::block_on`) or on a runtime.

mod common;

use std::io::{BufRead, ErrorKind, Read, Seek, SeekFrom};
use std::sync::mpsc;

use common::{Config, TestError, TestSource, hang_guard, pattern};
use kithara_stream::exec::block_on;
use kithara_stream::io::{BlockingReader, SideMsg, stream_error};
use kithara_stream::{BytesSource, Engine, EngineSource, StreamError, StreamParams};

fn params() -> StreamParams {
    StreamParams::default()
        .with_buffer_capacity(8 * 1024)
        .with_chunk_size(1000)
}

/// Builds the engine, runs it on a thread of its own, returns the blocking reader.
fn spawn<S>(source: S) -> BlockingReader<S::Control, S::Event, S::Error>
where
    S: EngineSource,
{
    let (engine, handle, stream) = Engine::build(source, params());
    std::thread::spawn(move || block_on(engine.run()));
    BlockingReader::new(stream, handle)
}

fn expected(range: std::ops::Range<u64>) -> Vec<u8> {
    range.map(pattern).collect()
}

#[test]
fn blocking_reads_everything_in_order() {
    hang_guard("blocking_reads_everything_in_order", || {
        let (source, _) = Config::new(100_000)
            .chunks(&[1, 4096, 777, 0, 30_000])
            .build();
        let mut reader = spawn(source);
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        assert_eq!(all, expected(0..100_000));
        assert_eq!(reader.position(), 100_000);
        assert_eq!(reader.read(&mut [0; 16]).unwrap(), 0, "end of data stays 0");
    });
}

#[test]
fn blocking_seek_start_current_end() {
    hang_guard("blocking_seek_start_current_end", || {
        let data: Vec<u8> = (0..50_000u64).map(pattern).collect();
        let mut reader = spawn(BytesSource::new(data.clone()).with_chunk_size(3000));
        let mut buf = [0; 100];

        assert_eq!(reader.seek(SeekFrom::Start(40_000)).unwrap(), 40_000);
        reader.read_exact(&mut buf).unwrap();
        assert_eq!(&buf[..], &data[40_000..40_100]);

        assert_eq!(reader.seek(SeekFrom::Current(-30_100)).unwrap(), 10_000);
        reader.read_exact(&mut buf).unwrap();
        assert_eq!(&buf[..], &data[10_000..10_100]);

        // Within the chunk held: no engine seek, same bytes.
        assert_eq!(reader.seek(SeekFrom::Current(-50)).unwrap(), 10_050);
        reader.read_exact(&mut buf[..50]).unwrap();
        assert_eq!(&buf[..50], &data[10_050..10_100]);

        assert_eq!(reader.byte_len(), Some(50_000));
        assert_eq!(reader.seek(SeekFrom::End(-100)).unwrap(), 49_900);
        reader.read_exact(&mut buf).unwrap();
        assert_eq!(&buf[..], &data[49_900..]);
        assert_eq!(reader.read(&mut buf).unwrap(), 0);

        // Past the end: end of data, as with a file.
        assert_eq!(reader.seek(SeekFrom::End(10)).unwrap(), 50_010);
        assert_eq!(reader.read(&mut buf).unwrap(), 0);
        // And back again after the end.
        assert_eq!(reader.seek(SeekFrom::Start(0)).unwrap(), 0);
        reader.read_exact(&mut buf).unwrap();
        assert_eq!(&buf[..], &data[..100]);

        let error = reader.seek(SeekFrom::Current(-1000)).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
    });
}

#[test]
fn blocking_seek_from_end_as_first_call_waits_for_the_length() {
    hang_guard("blocking_seek_from_end_as_first_call", || {
        let data: Vec<u8> = (0..10_000u64).map(pattern).collect();
        let mut reader = spawn(BytesSource::new(data.clone()));
        assert_eq!(reader.seek(SeekFrom::End(-10)).unwrap(), 9_990);
        let mut tail = Vec::new();
        reader.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, &data[9_990..]);
    });
}

#[test]
fn blocking_seek_from_end_without_length_is_unsupported() {
    hang_guard("blocking_seek_from_end_without_length", || {
        let (source, _) = Config::new(10_000).build();
        let mut reader = spawn(source);
        let error = reader.seek(SeekFrom::End(0)).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unsupported);
        // Reading is unaffected: the byte the probe brought in is still there.
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        assert_eq!(all, expected(0..10_000));
    });
}

#[test]
fn blocking_source_error_is_an_io_error_then_a_seek_resumes() {
    hang_guard("blocking_source_error", || {
        let mut config = Config::new(20_000);
        config.error_at = Some(12_345);
        let (source, _) = config.build();
        let mut reader = spawn(source);
        let mut all = Vec::new();
        let error = reader.read_to_end(&mut all).unwrap_err();
        assert_eq!(all, expected(0..12_345), "every byte before the error");
        assert_eq!(error.kind(), ErrorKind::Other);
        assert_eq!(
            stream_error::<TestError>(&error),
            Some(&StreamError::Source(TestError("source error")))
        );
        assert_eq!(reader.read(&mut [0; 8]).unwrap(), 0, "then the end");
        // A seek to where the stream stopped restarts it there (and this source fails
        // there again), rather than being a no-op that leaves it ended.
        assert_eq!(reader.seek(SeekFrom::Start(12_345)).unwrap(), 12_345);
        let again = reader.read(&mut [0; 8]).unwrap_err();
        assert!(
            stream_error::<TestError>(&again)
                .unwrap()
                .as_source()
                .is_some()
        );
        // A seek past the error position starts the stream again (S5).
        assert_eq!(reader.seek(SeekFrom::Start(15_000)).unwrap(), 15_000);
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, expected(15_000..20_000));
    });
}

#[test]
fn blocking_messages_go_to_the_side_queue_in_order() {
    hang_guard("blocking_messages_side_queue", || {
        let (source, _) = Config::new(10_000).controls_every(1000).build();
        let mut reader = spawn(source);
        let mut buf = vec![0; 3_500];
        reader.read_exact(&mut buf).unwrap();
        let seen = reader.take_messages();
        // Control(p) then Event(p) before byte p, for p = 1000, 2000, 3000.
        let want: Vec<_> = [1000, 2000, 3000]
            .into_iter()
            .flat_map(|p| [SideMsg::Control(p), SideMsg::Event(p)])
            .collect();
        assert_eq!(seen, want);
        assert!(reader.take_messages().is_empty(), "taken once");
        reader.read_to_end(&mut buf).unwrap();
        assert_eq!(reader.take_messages().len(), 2 * 6, "p = 4000 ..= 9000");
    });
}

#[test]
fn blocking_messages_go_to_the_callback() {
    hang_guard("blocking_messages_callback", || {
        let (source, _) = Config::new(10_000).controls_every(2500).build();
        let (tx, rx) = mpsc::channel();
        let mut reader = spawn(source).on_message(move |msg| tx.send(msg).unwrap());
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        assert_eq!(all, expected(0..10_000));
        assert!(reader.take_messages().is_empty());
        drop(reader);
        let seen: Vec<_> = rx.iter().collect();
        let want: Vec<_> = [2500, 5000, 7500]
            .into_iter()
            .flat_map(|p| [SideMsg::Control(p), SideMsg::Event(p)])
            .collect();
        assert_eq!(seen, want);
    });
}

#[test]
fn blocking_seek_switch_turns_engine_seeks_off_and_on() {
    hang_guard("blocking_seek_switch", || {
        let (source, stats) = Config::new(30_000).build();
        let mut reader = spawn(source);
        let switch = reader.seek_switch();
        assert!(reader.is_seekable());
        switch.set(false);
        assert!(!reader.is_seekable());
        let mut buf = [0; 10];
        reader.read_exact(&mut buf).unwrap();
        let error = reader.seek(SeekFrom::Start(20_000)).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unsupported);
        assert_eq!(
            reader.seek(SeekFrom::Start(10)).unwrap(),
            10,
            "no-op seeks work"
        );
        assert_eq!(
            reader.seek(SeekFrom::Start(2)).unwrap(),
            2,
            "within the held chunk"
        );
        assert!(stats.seeks().is_empty(), "the engine saw no seek");
        switch.set(true);
        assert_eq!(reader.seek(SeekFrom::Start(20_000)).unwrap(), 20_000);
        reader.read_exact(&mut buf).unwrap();
        assert_eq!(&buf[..], &expected(20_000..20_010)[..]);
        assert_eq!(stats.seeks().len(), 1);
    });
}

#[test]
fn blocking_not_seekable_source_refuses_seeks() {
    hang_guard("blocking_not_seekable_source", || {
        let mut config = Config::new(5_000);
        config.seekable = false;
        let (source, _): (TestSource, _) = config.build();
        let mut reader = spawn(source);
        assert!(!reader.is_seekable());
        let error = reader.seek(SeekFrom::Start(4_000)).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unsupported);
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        assert_eq!(all, expected(0..5_000));
    });
}

#[test]
fn blocking_buf_read_lends_the_chunk() {
    hang_guard("blocking_buf_read", || {
        let data: Vec<u8> = (0..5_000u64).map(pattern).collect();
        let mut reader = spawn(BytesSource::new(data.clone()).with_chunk_size(1_234));
        let first = reader.fill_buf().unwrap().to_vec();
        assert_eq!(first, &data[..1_000], "one chunk, split to chunk_size");
        reader.consume(600);
        assert_eq!(reader.fill_buf().unwrap(), &data[600..1_000]);
        reader.consume(400);
        assert_eq!(reader.fill_buf().unwrap(), &data[1_000..1_234]);
    });
}

#[test]
fn blocking_engine_gone_is_broken_pipe() {
    hang_guard("blocking_engine_gone", || {
        let (source, _) = Config::new(1_000_000).build();
        let (engine, handle, stream) = Engine::build(source, params());
        let mut reader = BlockingReader::new(stream, handle);
        drop(engine); // never run: the stream ends with ChannelClosed (D5)
        let error = reader.read(&mut [0; 8]).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::BrokenPipe);
        assert!(stream_error::<TestError>(&error).unwrap().is_closed());
    });
}
