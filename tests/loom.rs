//! loom models of the ring, its wakers and the engine's seek: every interleaving (up to
//! `LOOM_MAX_PREEMPTIONS`) of the threads below is explored.
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 cargo test --release --test loom
//! ```
#![cfg(loom)]

use bytes::Bytes;
use futures::StreamExt;
use kithara_stream::{StreamError, StreamMsg, StreamParams, pipe};
use loom::future::block_on;
use loom::thread;

fn params(capacity: usize) -> StreamParams {
    StreamParams::default()
        .with_buffer_capacity(capacity)
        .with_chunk_size(capacity)
}

fn data(byte: u8) -> StreamMsg<(), ()> {
    StreamMsg::Data(Bytes::from(vec![byte]))
}

/// The writer fills a 1-byte ring three times while the reader drains it: every push meets
/// the full edge and every read the empty edge; nothing is lost or reordered, nobody hangs.
#[test]
fn loom_fill_and_drain_across_full_and_empty() {
    loom::model(|| {
        let (mut writer, mut reader) = pipe::<(), (), ()>(params(1));
        let producer = thread::spawn(move || {
            block_on(async {
                for byte in 0..3 {
                    writer.send(data(byte)).await.unwrap();
                }
            });
        });
        let got: Vec<u8> = block_on(async {
            let mut got = Vec::new();
            while let Some(msg) = reader.next().await {
                got.extend_from_slice(&msg.unwrap().into_data().unwrap());
            }
            got
        });
        producer.join().unwrap();
        assert_eq!(got, [0, 1, 2]);
    });
}

/// Write then close racing a read: every byte arrives before the end (piper issue #30).
#[test]
fn loom_write_then_close_racing_read() {
    loom::model(|| {
        let (mut writer, mut reader) = pipe::<(), (), ()>(params(8));
        let producer = thread::spawn(move || {
            block_on(writer.send(data(7))).unwrap();
            block_on(writer.send(StreamMsg::Event(()))).unwrap();
            writer.close();
        });
        let got = block_on(async {
            let mut got = Vec::new();
            while let Some(msg) = reader.next().await {
                got.push(msg.unwrap());
            }
            got
        });
        producer.join().unwrap();
        assert_eq!(got, [data(7), StreamMsg::Event(())]);
    });
}

/// The writer dropped without closing (an engine gone) racing a read: the buffered byte, then
/// `ChannelClosed`, then the end.
#[test]
fn loom_writer_dropped_racing_read() {
    loom::model(|| {
        let (mut writer, mut reader) = pipe::<(), (), ()>(params(8));
        let producer = thread::spawn(move || {
            block_on(writer.send(data(1))).unwrap();
            drop(writer);
        });
        let first = block_on(reader.next());
        producer.join().unwrap();
        assert_eq!(first, Some(Ok(data(1))));
        assert_eq!(block_on(reader.next()), None);
    });
}

/// The reader dropped while the writer is blocked on a full ring: the writer is woken and
/// its send fails with `ChannelClosed`.
#[test]
fn loom_reader_dropped_while_writer_blocked() {
    loom::model(|| {
        let (mut writer, reader) = pipe::<(), (), ()>(params(1));
        block_on(writer.send(data(0))).unwrap();
        let producer = thread::spawn(move || block_on(writer.send(data(1))));
        drop(reader);
        assert_eq!(producer.join().unwrap(), Err(StreamError::ChannelClosed));
    });
}

/// A reader that moves to a new waker while the writer pushes is woken on the new one: if
/// the push woke only the old waker, `block_on` would never return and loom would report
/// the deadlock.
#[test]
fn loom_waker_migration() {
    loom::model(|| {
        let (mut writer, mut reader) = pipe::<(), (), ()>(params(4));
        let producer = thread::spawn(move || {
            block_on(writer.send(data(3))).unwrap();
            writer
        });
        // First poll with a waker that is then abandoned.
        let noop = futures::task::noop_waker();
        let mut cx = std::task::Context::from_waker(&noop);
        let first = reader.poll_next_unpin(&mut cx);
        let msg = match first {
            std::task::Poll::Ready(msg) => msg,
            std::task::Poll::Pending => block_on(reader.next()),
        };
        assert_eq!(msg, Some(Ok(data(3))));
        drop(producer.join().unwrap());
    });
}

/// A seek applied while the writer task pushes: once the seek resolved, no stale byte is
/// yielded and the next data starts at the seek position.
#[test]
fn loom_seek_flush_racing_write() {
    use kithara_stream::{BytesSource, Engine};
    loom::model(|| {
        let source = BytesSource::new(&b"abcdef"[..]).with_chunk_size(1);
        let (engine, handle, mut stream) = Engine::build(source, params(2));
        let run = thread::spawn(move || block_on(engine.run()));
        let first = block_on(stream.next()).unwrap().unwrap();
        assert_eq!(first, StreamMsg::Data(Bytes::from_static(b"a")));
        block_on(handle.seek_bytes(4)).unwrap();
        let next = block_on(stream.next()).unwrap().unwrap();
        assert_eq!(next, StreamMsg::Data(Bytes::from_static(b"e")));
        drop((stream, handle));
        run.join().unwrap();
    });
}

/// The stream dropped while the engine waits on a full ring: the engine is woken and
/// completes.
#[test]
fn loom_stream_dropped_stops_blocked_engine() {
    use kithara_stream::{BytesSource, Engine};
    loom::model(|| {
        let source = BytesSource::new(&b"abcdef"[..]).with_chunk_size(1);
        let (engine, _handle, mut stream) = Engine::build(source, params(1));
        let run = thread::spawn(move || block_on(engine.run()));
        let first = block_on(stream.next()).unwrap().unwrap();
        assert_eq!(first, StreamMsg::Data(Bytes::from_static(b"a")));
        drop(stream);
        run.join().unwrap();
    });
}

/// A seek racing the engine's shutdown is answered, never left waiting: the request is
/// either taken back by the seek itself or answered by the shutdown.
#[test]
fn loom_seek_racing_engine_shutdown() {
    use kithara_stream::{BytesSource, Engine};
    loom::model(|| {
        let source = BytesSource::new(&b"ab"[..]);
        let (engine, handle, stream) = Engine::build(source, params(4));
        let run = thread::spawn(move || block_on(engine.run()));
        drop(stream);
        assert_eq!(
            block_on(handle.seek_bytes(1)),
            Err(StreamError::ChannelClosed)
        );
        run.join().unwrap();
    });
}
