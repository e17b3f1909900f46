//! One test module per rule of the contract (`docs/contract.md`), each run on every
//! executor of rule E4. Rules that are about single polls (E5, E6, B4's kept-alive future)
//! also have poll-by-hand tests in `tests/poll_by_hand.rs`.

#![cfg(not(loom))]

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use futures::future::{self, Either};
use futures::{FutureExt, StreamExt, poll};
use kithara_stream::{
    BytesSource, Engine, EngineHandle, InvalidParams, MESSAGE_COST, Run, StreamError, StreamMsg,
    StreamParams, pipe,
};

use common::track::Stream;
use common::{
    Config, OPEN_CONTROL, SEEK_CONTROL_BASE, Spawner, Stats, TestError, TestSource, Tracker, drain,
    pattern,
};

type Handle = EngineHandle<TestError>;

fn params(capacity: usize, chunk_size: usize) -> StreamParams {
    StreamParams::default()
        .with_buffer_capacity(capacity)
        .with_chunk_size(chunk_size)
}

fn build(config: Config, params: StreamParams) -> (Run<TestSource>, Handle, Stream, Arc<Stats>) {
    let (source, stats) = config.build();
    let (engine, handle, stream) = Engine::build(source, params);
    (engine.run(), handle, stream, stats)
}

/// Spawns `run` so that it can be dropped before it completes: send on the returned channel
/// and await the returned handle, after which the run future is gone.
fn spawn_stoppable(
    spawner: &Spawner,
    run: Run<TestSource>,
) -> (async_channel::Sender<()>, future::RemoteHandle<bool>) {
    let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
    let stopped = spawner.spawn(async move {
        let stop = Box::pin(async move { stop_rx.recv().await });
        // The losing future is dropped with the `select` output: the run future when stopped.
        matches!(future::select(run, stop).await, Either::Right(_))
    });
    (stop_tx, stopped)
}

fn bytes(range: std::ops::Range<u64>) -> Bytes {
    range.map(pattern).collect()
}

on_every_executor! {
    /// D1: the stream yields the produced bytes in order, messages at their byte position,
    /// `Data` never empty and never longer than `chunk_size`; through an engine and a pipe.
    fn d1_order_and_integrity(spawner) {
        let len = 300_001;
        let config = Config::new(len).chunks(&[1, 7, 4096, 70_000, 3]).controls_every(10_000);
        let (run, _handle, mut stream, _stats) = build(config, params(16 * 1024, 3000));
        let engine = spawner.spawn(run);
        let mut tracker = Tracker::new(3000);
        assert_eq!(drain(&mut stream, &mut tracker).await, None);
        assert_eq!(tracker.bytes, len);
        let expected: Vec<u64> = (1..=30).map(|i| i * 10_000).collect();
        assert_eq!(tracker.controls.iter().map(|&(at, _)| at).collect::<Vec<_>>(), expected);
        assert_eq!(tracker.events.iter().map(|&(at, _)| at).collect::<Vec<_>>(), expected);
        drop(stream);
        engine.await;

        // The pipe, with the writer on another task.
        let (mut writer, mut reader) = pipe::<u64, u64, TestError>(params(1000, 700));
        let producer = spawner.spawn(async move {
            let mut pos = 0;
            for (i, size) in [1, 5000, 0, 999, 1000, 1001, 2].into_iter().enumerate() {
                writer.send(StreamMsg::Control(pos)).await.unwrap();
                writer.send(StreamMsg::Data(bytes(pos..pos + size))).await.unwrap();
                writer.send(StreamMsg::Event(i as u64)).await.unwrap();
                pos += size;
            }
            pos
        });
        let mut offset = 0;
        let mut events = 0;
        while let Some(msg) = reader.next().await {
            match msg.unwrap() {
                StreamMsg::Data(data) => {
                    assert!(!data.is_empty() && data.len() <= 700);
                    assert!(Tracker::matches(offset, &data));
                    offset += data.len() as u64;
                }
                StreamMsg::Control(at) => assert_eq!(at, offset),
                StreamMsg::Event(i) => {
                    assert_eq!(i, events);
                    events += 1;
                }
            }
        }
        assert_eq!(events, 7);
        assert_eq!(offset, producer.await);
    }
}

on_every_executor! {
    /// D2: a writer-task error comes after everything produced before it, once, then `None`.
    fn d2_source_error_after_items_once(spawner) {
        let mut config = Config::new(1 << 20).chunks(&[1000]).controls_every(7000);
        config.error_at = Some(50_000);
        let (run, _handle, mut stream, _stats) = build(config, params(4096, 512));
        let engine = spawner.spawn(run);
        let mut tracker = Tracker::new(512);
        let error = drain(&mut stream, &mut tracker).await;
        assert_eq!(error, Some(StreamError::Source(TestError("source error"))));
        assert_eq!(tracker.offset, 50_000);
        assert_eq!(tracker.controls.len(), 7);
        assert!(stream.next().await.is_none());
        drop(stream);
        engine.await;

        // Through a pipe.
        let (mut writer, mut reader) = pipe::<(), (), TestError>(params(8, 8));
        let producer = spawner.spawn(async move {
            writer.send(StreamMsg::Data(bytes(0..100))).await.unwrap();
            writer.fail(TestError("failed"));
            writer.send(StreamMsg::Data(bytes(100..200))).await
        });
        let mut got = Vec::new();
        let error = loop {
            match reader.next().await.expect("an error before the end") {
                Ok(msg) => got.extend_from_slice(&msg.into_data().unwrap()),
                Err(error) => break error,
            }
        };
        assert_eq!(got, bytes(0..100));
        assert_eq!(error, StreamError::Source(TestError("failed")));
        assert!(reader.next().await.is_none());
        assert!(reader.next().await.is_none());
        assert_eq!(producer.await, Err(StreamError::ChannelClosed));
    }
}

on_every_executor! {
    /// D3: when the writer task ends and everything was delivered, the stream yields `None`.
    fn d3_end_yields_none(spawner) {
        let (run, handle, mut stream, _stats) = build(Config::new(100_000), params(8192, 4096));
        let engine = spawner.spawn(run);
        let mut tracker = Tracker::new(4096);
        assert_eq!(drain(&mut stream, &mut tracker).await, None);
        assert_eq!(tracker.bytes, 100_000);
        assert!(stream.next().await.is_none());
        drop(handle);
        engine.await;
        assert!(stream.next().await.is_none(), "still None once the engine completed");
    }
}

on_every_executor! {
    /// D4: an `open` error is yielded once, then `None`; `run()` completes; seeks get
    /// `ChannelClosed`.
    fn d4_open_failure(spawner) {
        let mut config = Config::new(1000);
        config.open_fails = true;
        let (run, handle, mut stream, stats) = build(config, params(1024, 1024));
        let engine = spawner.spawn(run);
        assert_eq!(
            stream.next().await,
            Some(Err(StreamError::Source(TestError("open failed"))))
        );
        assert!(stream.next().await.is_none());
        assert!(stream.next().await.is_none());
        engine.await; // completes although the handle and the stream are alive
        assert!(handle.is_closed());
        assert_eq!(handle.seek_bytes(10).await, Err(StreamError::ChannelClosed));
        assert!(stats.seeks().is_empty());
    }
}

on_every_executor! {
    /// D5: if the run future is dropped mid-stream, or never run, the stream yields what was
    /// buffered, then `ChannelClosed` once, then `None`.
    fn d5_engine_gone(spawner) {
        let (run, handle, mut stream, stats) = build(Config::new(u64::MAX), params(10_000, 1000));
        let (stop, stopped) = spawn_stoppable(&spawner, run);
        let mut tracker = Tracker::new(1000);
        tracker.next(&mut stream).await;
        stop.send(()).await.unwrap();
        assert!(stopped.await, "the run future was dropped before it completed");
        assert_eq!(stats.live_tasks(), 0, "the writer task is dropped with the run future");
        // The writer task is gone: what it produced is final, and all of it was pushed.
        let produced = stats.produced();
        assert!(produced >= 1000, "{produced} bytes produced");
        let error = drain(&mut stream, &mut tracker).await;
        assert_eq!(error, Some(StreamError::ChannelClosed));
        // `drain` checked every byte against its offset: everything produced arrived, in order.
        assert_eq!(tracker.offset, produced, "what was buffered is delivered");
        assert_eq!(tracker.bytes, produced);
        assert!(stream.next().await.is_none());
        assert_eq!(handle.seek_bytes(0).await, Err(StreamError::ChannelClosed));

        // Never run.
        let (source, _stats) = Config::new(10).build();
        let (engine, _handle, mut stream) = Engine::build(source, params(64, 64));
        drop(engine);
        assert_eq!(stream.next().await, Some(Err(StreamError::ChannelClosed)));
        assert!(stream.next().await.is_none());
    }
}

on_every_executor! {
    /// D6: a chunk larger than the capacity is delivered, at every capacity down to 1 byte.
    fn d6_large_chunks(spawner) {
        for (capacity, chunk_size, len) in [(1, 1, 5000), (1, 4096, 200_000), (2, 3, 20_000), (7, 100_000, 300_000), (4096, 1024, 300_000)] {
            let config = Config::new(len).chunks(&[100_000, 1, 150_000]);
            let (run, _handle, mut stream, _stats) = build(config, params(capacity, chunk_size));
            let engine = spawner.spawn(run);
            let mut tracker = Tracker::new(chunk_size);
            assert_eq!(drain(&mut stream, &mut tracker).await, None);
            assert_eq!(tracker.bytes, len, "capacity {capacity}, chunk_size {chunk_size}");
            drop(stream);
            engine.await;
        }

        let (mut writer, mut reader) = pipe::<(), (), ()>(params(1, 4096));
        let producer = spawner.spawn(async move {
            writer.send(StreamMsg::Data(bytes(0..1 << 20))).await.unwrap();
            writer.send(StreamMsg::Data(bytes(1 << 20..2 << 20))).await.unwrap();
        });
        let mut offset = 0;
        while let Some(msg) = reader.next().await {
            let data = msg.unwrap().into_data().unwrap();
            assert!(Tracker::matches(offset, &data));
            offset += data.len() as u64;
        }
        assert_eq!(offset, 2 << 20);
        producer.await;
    }
}

on_every_executor! {
    /// E1: dropping the stream completes `run()` and drops the writer task, while the writer
    /// is blocked on a full buffer, while the writer task is pending, while `open` is pending.
    fn e1_dropping_stream_stops_engine(spawner) {
        let blocked = Config::new(u64::MAX);
        let mut task_pending = Config::new(u64::MAX);
        task_pending.stall_at = Some(5000);
        let mut open_pending = Config::new(u64::MAX);
        open_pending.open_stalls = true;
        for (i, config) in [blocked, task_pending, open_pending].into_iter().enumerate() {
            let (run, handle, mut stream, stats) = build(config, params(4096, 1000));
            let engine = spawner.spawn(run);
            if i < 2 {
                Tracker::new(1000).read_to(&mut stream, 5000).await;
            }
            drop(stream);
            engine.await;
            assert_eq!(stats.live_tasks(), 0, "case {i}: the writer task was dropped");
            assert!(handle.is_closed());
        }
    }
}

on_every_executor! {
    /// E2: with every handle dropped the stream is delivered to the end; `run()` completes
    /// once the writer task ended and no handle remains, even with the stream alive.
    fn e2_handle_optional(spawner) {
        let (run, handle, mut stream, _stats) = build(Config::new(500_000), params(4096, 4096));
        drop(handle);
        let engine = spawner.spawn(run);
        let mut tracker = Tracker::new(4096);
        assert_eq!(drain(&mut stream, &mut tracker).await, None);
        assert_eq!(tracker.bytes, 500_000);
        engine.await;

        // The engine completes with the stream alive: everything fits in the ring.
        let (run, handle, mut stream, _stats) = build(Config::new(10_000), params(65_536, 4096));
        drop(handle);
        spawner.spawn(run).await;
        let mut tracker = Tracker::new(4096);
        assert_eq!(drain(&mut stream, &mut tracker).await, None);
        assert_eq!(tracker.bytes, 10_000);

        // ... and after a source error likewise.
        let mut config = Config::new(10_000);
        config.error_at = Some(5000);
        let (run, handle, mut stream, _stats) = build(config, params(65_536, 4096));
        let engine = spawner.spawn(run);
        let mut tracker = Tracker::new(4096);
        assert!(drain(&mut stream, &mut tracker).await.is_some());
        drop(handle); // the last handle: the engine stops waiting for a seek
        engine.await;
    }
}

on_every_executor! {
    /// E3: the engine stops polling the writer task while the ring is full: bytes (and
    /// messages, at `MESSAGE_COST` each) held never exceed capacity plus one chunk.
    fn e3_backpressure_bounds_memory(spawner) {
        let (capacity, chunk) = (10_000u64, 3000u64);
        let config = Config::new(u64::MAX).chunks(&[chunk as usize]);
        let (run, _handle, mut stream, stats) = build(config, params(capacity as usize, 1000));
        let engine = spawner.spawn(run);
        let mut tracker = Tracker::new(1000);
        while tracker.offset < 2_000_000 {
            tracker.next(&mut stream).await;
            let held = stats.produced() - tracker.offset;
            assert!(held <= capacity + chunk, "{held} bytes held at {}", tracker.offset);
            assert!(stream.buffered_bytes() as u64 <= capacity + chunk);
        }
        drop(stream);
        engine.await;

        // A writer task that produces only messages is bounded too.
        let mut config = Config::new(u64::MAX);
        config.events_only = true;
        let (run, _handle, mut stream, stats) = build(config, params(640, 1000));
        let engine = spawner.spawn(run);
        let bound = (640 / MESSAGE_COST + 1) as u64;
        for expected in 0..10_000u64 {
            assert_eq!(stream.next().await, Some(Ok(StreamMsg::Event(expected))));
            let held = stats.produced_msgs.load(Ordering::SeqCst) - expected - 1;
            assert!(held <= bound, "{held} messages held");
            assert!(stream.buffered_bytes() <= 640 + MESSAGE_COST);
        }
        drop(stream);
        engine.await;
    }
}

on_every_executor! {
    /// E4: writer, reader and engine on one task, or on different tasks and threads.
    fn e4_any_executor(spawner) {
        // One task: the engine and the consumer joined.
        let (run, handle, mut stream, _stats) = build(Config::new(200_000), params(4096, 1024));
        let consumer = async move {
            let mut tracker = Tracker::new(1024);
            tracker.read_to(&mut stream, 50_000).await;
            handle.seek_bytes(150_000).await.unwrap();
            tracker.offset = 150_000;
            assert_eq!(drain(&mut stream, &mut tracker).await, None);
            tracker.offset
        };
        assert_eq!(future::join(run, consumer).await.1, 200_000);

        // Three tasks: engine, consumer, and a seeker. The consumer sees bytes from 0 on,
        // then, once the seek is applied, from 199_000 to the end: every byte is checked
        // against its offset, and the one jump must land on 199_000.
        let (run, handle, mut stream, stats) = build(Config::new(200_000), params(4096, 1024));
        let engine = spawner.spawn(run);
        let seeker = spawner.spawn(async move { handle.seek_bytes(199_000).await });
        let consumer = spawner.spawn(async move {
            let mut tracker = Tracker::new(1024);
            let mut jumped_from = None;
            while let Some(msg) = stream.next().await {
                let data = msg.unwrap().into_data().unwrap();
                if !Tracker::matches(tracker.offset, &data) {
                    assert_eq!(jumped_from, None, "a second jump at {}", tracker.offset);
                    jumped_from = Some(tracker.offset);
                    tracker.offset = 199_000;
                }
                tracker.accept(StreamMsg::Data(data));
            }
            (tracker.offset, tracker.bytes, jumped_from)
        });
        assert_eq!(seeker.await, Ok(()));
        let (end, received, jumped_from) = consumer.await;
        assert_eq!(end, 200_000, "read to the end");
        // Without a visible jump the seek landed exactly where the reader was.
        let before_seek = jumped_from.unwrap_or(199_000);
        assert!(before_seek <= 200_000);
        assert_eq!(received, before_seek + 1000, "the bytes before the seek, then 199_000..");
        assert_eq!(stats.seeks(), vec![(199_000, OPEN_CONTROL)]);
        engine.await;

        // The pipe: writer and reader on different tasks.
        let (mut writer, mut reader) = pipe::<(), (), ()>(params(100, 10));
        let producer = spawner.spawn(async move {
            for i in 0..1000u64 {
                writer.send(StreamMsg::Data(bytes(i * 37..(i + 1) * 37))).await.unwrap();
            }
        });
        let consumer = spawner.spawn(async move {
            let mut offset = 0;
            while let Some(msg) = reader.next().await {
                let data = msg.unwrap().into_data().unwrap();
                assert!(Tracker::matches(offset, &data));
                offset += data.len() as u64;
            }
            offset
        });
        producer.await;
        assert_eq!(consumer.await, 37_000);
    }
}

on_every_executor! {
    /// E5: a run fed by an always-ready source that never fills the ring (it produces only
    /// empty chunks) still yields to the executor, so other tasks on a single thread run.
    fn e5_always_ready_source_does_not_starve_executor(spawner) {
        let config = Config::new(u64::MAX).chunks(&[0]);
        let (run, _handle, stream, stats) = build(config, params(1024, 1024));
        let engine = spawner.spawn(run);
        // Wait until the engine is going, then let another task run beside it.
        while stats.task_polls.load(Ordering::SeqCst) < 1000 {
            spawner.spawn(async {}).await;
        }
        assert_eq!(spawner.spawn(async { 42 }).await, 42);
        drop(stream);
        engine.await;
    }
}

on_every_executor! {
    /// E6: polling `run()` after it completed returns `Ready` again; a completed seek future
    /// reports itself terminated.
    fn e6_after_completion(spawner) {
        let (mut run, handle, stream, _stats) = build(Config::new(100), params(64, 64));
        drop(stream);
        (&mut run).await;
        assert!(futures::future::FusedFuture::is_terminated(&run));
        assert_eq!(poll!(&mut run), std::task::Poll::Ready(()));
        let mut seek = handle.seek_bytes(0);
        assert_eq!((&mut seek).await, Err(StreamError::ChannelClosed));
        assert!(futures::future::FusedFuture::is_terminated(&seek));
    }
}

on_every_executor! {
    /// S1: a seek resolves once applied: then the next `Data` starts at `pos` and nothing
    /// produced before the seek follows. A seek is issued when first polled.
    fn s1_seek_applied_not_sent(spawner) {
        let config = Config::new(1 << 20).chunks(&[4096, 100]).controls_every(50_000);
        let (run, handle, mut stream, stats) = build(config, params(65_536, 4096));
        let engine = spawner.spawn(run);
        let mut tracker = Tracker::new(4096);
        tracker.read_to(&mut stream, 10_000).await;

        let unpolled = handle.seek_bytes(3);
        tracker.read_to(&mut stream, 120_000).await; // still in sequence
        drop(unpolled);
        assert!(stats.seeks().is_empty(), "an unpolled seek is not issued");

        for pos in [500_001, 100_000, 99_999, 0, 777_777] {
            handle.seek_bytes(pos).await.unwrap();
            tracker.offset = pos;
            match tracker.next(&mut stream).await {
                StreamMsg::Data(_) => {}
                StreamMsg::Control(c) => assert_eq!((pos, c), (100_000, 100_000)),
                StreamMsg::Event(_) => panic!("an event before the control"),
            }
            tracker.read_to(&mut stream, pos + 60_000).await;
        }
        assert_eq!(drain(&mut stream, &mut tracker).await, None);
        assert_eq!(tracker.offset, 1 << 20);
        drop((stream, handle));
        engine.await;
    }
}

on_every_executor! {
    /// S2: without seek support a seek fails at once with `SeekNotSupported`, even when the
    /// engine is gone, and the stream is untouched.
    fn s2_not_seekable(spawner) {
        let mut config = Config::new(100_000);
        config.seekable = false;
        let (run, handle, mut stream, stats) = build(config, params(4096, 4096));
        assert!(!handle.supports_seek());
        let engine = spawner.spawn(run);
        let mut tracker = Tracker::new(4096);
        tracker.read_to(&mut stream, 10_000).await;
        assert_eq!(handle.seek_bytes(5).await, Err(StreamError::SeekNotSupported));
        assert_eq!(drain(&mut stream, &mut tracker).await, None);
        assert_eq!(tracker.bytes, 100_000);
        drop(stream);
        engine.await;
        assert_eq!(handle.seek_bytes(5).await, Err(StreamError::SeekNotSupported));
        assert!(stats.seeks().is_empty());
    }
}

on_every_executor! {
    /// S3: a failed seek returns the source's error and changes nothing; while a seek is
    /// pending the stream keeps flowing, and what flowed is discarded when it succeeds.
    fn s3_failed_seek_changes_nothing(spawner) {
        let (gate_tx, gate_rx) = async_channel::unbounded();
        let mut config = Config::new(1 << 20).chunks(&[1000]).controls_every(30_000);
        config.seek_gate = Some(gate_rx);
        let (run, handle, mut stream, stats) = build(config, params(8192, 1000));
        let engine = spawner.spawn(run);
        let mut tracker = Tracker::new(1000);
        tracker.read_to(&mut stream, 40_000).await;

        // Fails: the stream goes on in sequence, with the old control state.
        gate_tx.send(false).await.unwrap();
        assert_eq!(
            handle.seek_bytes(7).await,
            Err(StreamError::Source(TestError("seek failed")))
        );
        tracker.read_to(&mut stream, 70_000).await;
        assert_eq!(tracker.controls.last(), Some(&(60_000, 60_000)));
        // The engine is at most a ring ahead of the reader: it took `Control(30_000)` and
        // not yet `Control(60_000)` at the first seek, `Control(60_000)` at the second.

        // Pending: the stream flows on meanwhile; then it succeeds.
        let mut seek = handle.seek_bytes(500_000);
        assert!(poll!(&mut seek).is_pending()); // issued at 70_000
        let seek = spawner.spawn(seek);
        tracker.read_to(&mut stream, 200_000).await;
        gate_tx.send(true).await.unwrap();
        assert_eq!(seek.await, Ok(()));
        tracker.offset = 500_000;
        tracker.read_to(&mut stream, 600_000).await;
        assert_eq!(stats.seeks(), vec![(7, 30_000), (500_000, 60_000)]);
        drop(stream);
        engine.await;
    }
}

on_every_executor! {
    /// S3a: `seek_bytes` gets the current control state: the one `open` returned, then the
    /// latest in-band `Control`, then the one a successful seek returned.
    fn s3a_control_state(spawner) {
        let config = Config::new(1 << 20).chunks(&[1000]).controls_every(100_000);
        let (run, handle, mut stream, stats) = build(config, params(4096, 1000));
        let engine = spawner.spawn(run);
        let mut tracker = Tracker::new(1000);
        tracker.next(&mut stream).await; // `open` done
        handle.seek_bytes(10).await.unwrap();
        tracker.offset = 10;
        while !matches!(tracker.next(&mut stream).await, StreamMsg::Control(_)) {}
        handle.seek_bytes(50).await.unwrap();
        handle.seek_bytes(60).await.unwrap();
        assert_eq!(
            stats.seeks(),
            vec![(10, OPEN_CONTROL), (50, 100_000), (60, SEEK_CONTROL_BASE + 50)]
        );
        drop(stream);
        engine.await;
    }
}

on_every_executor! {
    /// S4: a seek issued while an earlier one is pending cancels the earlier one.
    fn s4_latest_wins(spawner) {
        let (gate_tx, gate_rx) = async_channel::unbounded();
        let mut config = Config::new(1 << 20).chunks(&[1000]);
        config.seek_gate = Some(gate_rx);
        let (run, handle, mut stream, _stats) = build(config, params(4096, 1000));
        let engine = spawner.spawn(run);
        let mut tracker = Tracker::new(1000);
        tracker.next(&mut stream).await;

        let mut first = handle.seek_bytes(100);
        assert!(poll!(&mut first).is_pending()); // issued
        let mut second = handle.seek_bytes(200);
        assert!(poll!(&mut second).is_pending());
        assert_eq!(first.await, Err(StreamError::Cancelled));
        let third = spawner.spawn(handle.seek_bytes(300_000));
        assert_eq!(second.await, Err(StreamError::Cancelled));
        gate_tx.send(true).await.unwrap();
        assert_eq!(third.await, Ok(()));
        tracker.offset = 300_000;
        tracker.read_to(&mut stream, 310_000).await;
        drop(stream);
        engine.await;
    }
}

on_every_executor! {
    /// S5: after the stream yielded `None` (end or source error) it yields `None` again, and a
    /// seek revives it from `pos`.
    fn s5_seek_after_end(spawner) {
        let mut config = Config::new(20_000).chunks(&[3000]);
        config.error_at = Some(15_000);
        let (run, handle, mut stream, _stats) = build(config, params(4096, 4096));
        let engine = spawner.spawn(run);
        let mut tracker = Tracker::new(4096);
        assert!(drain(&mut stream, &mut tracker).await.is_some());
        assert!(stream.next().await.is_none());
        assert!(stream.next().await.is_none());

        handle.seek_bytes(16_000).await.unwrap();
        tracker.offset = 16_000;
        assert_eq!(drain(&mut stream, &mut tracker).await, None);
        assert_eq!(tracker.offset, 20_000);
        assert!(stream.next().await.is_none());

        handle.seek_bytes(100).await.unwrap();
        tracker.offset = 100;
        let error = drain(&mut stream, &mut tracker).await;
        assert_eq!(error, Some(StreamError::Source(TestError("source error"))));
        assert_eq!(tracker.offset, 15_000);
        drop(handle);
        engine.await;
        assert!(stream.next().await.is_none());
    }
}

on_every_executor! {
    /// S6: a seek when the engine stopped or was dropped, or while it stops, gets
    /// `ChannelClosed`.
    fn s6_engine_gone(spawner) {
        // Dropped while the seek is pending in the source.
        let (_gate_tx, gate_rx) = async_channel::unbounded();
        let mut config = Config::new(1 << 20);
        config.seek_gate = Some(gate_rx);
        let (run, handle, mut stream, _stats) = build(config, params(4096, 4096));
        let (stop, stopped) = spawn_stoppable(&spawner, run);
        stream.next().await.unwrap().unwrap();
        let mut first = handle.seek_bytes(10);
        assert!(poll!(&mut first).is_pending());
        let mut waiting = handle.seek_bytes(20);
        assert!(poll!(&mut waiting).is_pending()); // cancels the first
        assert_eq!(first.await, Err(StreamError::Cancelled));
        stop.send(()).await.unwrap();
        assert!(stopped.await);
        assert_eq!(waiting.await, Err(StreamError::ChannelClosed));
        assert_eq!(handle.seek_bytes(0).await, Err(StreamError::ChannelClosed));

        // Completed.
        let (run, handle, stream, _stats) = build(Config::new(100), params(64, 64));
        drop(stream);
        spawner.spawn(run).await;
        assert_eq!(handle.seek_bytes(0).await, Err(StreamError::ChannelClosed));

        // Dropped without running.
        let (run, handle, _stream, _stats) = build(Config::new(100), params(64, 64));
        drop(run);
        assert_eq!(handle.seek_bytes(0).await, Err(StreamError::ChannelClosed));
    }
}

on_every_executor! {
    /// S7: a seek while the writer is blocked on a full ring unblocks it, discards the stale
    /// bytes and applies.
    fn s7_seek_under_backpressure(spawner) {
        let (full_tx, full_rx) = async_channel::bounded(1);
        let mut config = Config::new(u64::MAX).chunks(&[1000]);
        // Once the task produced the capacity, the ring is full and the engine waits.
        config.notify_at = Some((8000, full_tx));
        let (run, handle, mut stream, _stats) = build(config, params(8000, 1000));
        let engine = spawner.spawn(run);
        full_rx.recv().await.unwrap();
        handle.seek_bytes(1_000_000).await.unwrap();
        let mut tracker = Tracker::at(1_000_000, 1000);
        tracker.read_to(&mut stream, 1_100_000).await;
        drop(stream);
        engine.await;
    }
}

on_every_executor! {
    /// S8: a seek whose future is dropped after its first poll is still applied, and the
    /// engine stays consistent.
    fn s8_dropped_seek_future(spawner) {
        let config = Config::new(1 << 20).chunks(&[1000]).controls_every(40_000);
        let (run, handle, mut stream, stats) = build(config, params(4096, 1000));
        let engine = spawner.spawn(run);
        let mut tracker = Tracker::new(1000);
        tracker.read_to(&mut stream, 10_000).await;
        let mut seek = handle.seek_bytes(800_000);
        let _ = poll!(&mut seek); // issued (on a multi-thread executor it may be applied already)
        drop(seek);
        // The stream jumps to 800_000 exactly once, at a chunk boundary.
        let mut jumped = false;
        while let Some(msg) = stream.next().await {
            let msg = msg.unwrap();
            if let StreamMsg::Data(data) = &msg {
                if !Tracker::matches(tracker.offset, data) {
                    assert!(!jumped, "a second jump at {}", tracker.offset);
                    jumped = true;
                    tracker.offset = 800_000;
                }
            }
            if let StreamMsg::Control(800_000) = msg {
                // A control at the seek position is produced by the new task.
                if !jumped {
                    jumped = true;
                    tracker.offset = 800_000;
                }
            }
            tracker.accept(msg);
        }
        assert!(jumped);
        assert_eq!(tracker.offset, 1 << 20);
        assert_eq!(stats.seeks().len(), 1);
        handle.seek_bytes(5).await.unwrap();
        Tracker::at(5, 1000).read_to(&mut stream, 50_000).await;
        drop(stream);
        engine.await;
    }
}

on_every_executor! {
    /// W1: a pipe works without an engine; the writer's drop ends the reader after the
    /// buffered data; the reader's drop fails pending and later sends; each wakes the other.
    fn w1_pipe_without_engine(spawner) {
        let (mut writer, mut reader) = pipe::<(), (), ()>(params(10, 10));
        let consumer = spawner.spawn(async move {
            let mut got = Vec::new();
            while let Some(msg) = reader.next().await {
                got.extend_from_slice(&msg.unwrap().into_data().unwrap());
            }
            got
        });
        writer.send(StreamMsg::Data(bytes(0..25))).await.unwrap();
        drop(writer); // wakes the waiting reader
        assert_eq!(consumer.await, bytes(0..25));

        let (mut writer, reader) = pipe::<(), (), ()>(params(10, 10));
        writer.send(StreamMsg::Data(bytes(0..10))).await.unwrap();
        let producer = spawner.spawn(async move {
            let pending = writer.send(StreamMsg::Data(bytes(10..20))).await;
            let later = writer.send(StreamMsg::Event(())).await;
            (pending, later)
        });
        drop(reader); // wakes the writer blocked on the full ring
        let (pending, later) = producer.await;
        assert_eq!(pending, Err(StreamError::ChannelClosed));
        assert_eq!(later, Err(StreamError::ChannelClosed));
    }
}

on_every_executor! {
    /// W2: a send is pending while the ring is full, messages count `MESSAGE_COST`, and a
    /// chunk of any size is taken whole once there is room.
    fn w2_backpressure_and_any_size(spawner) {
        let (mut writer, mut reader) = pipe::<(), (), ()>(params(100, 60));
        writer.send(StreamMsg::Data(bytes(0..100))).await.unwrap();
        {
            let mut blocked = writer.send(StreamMsg::Data(bytes(100..1_000_100)));
            assert!(poll!(&mut blocked).is_pending());
            assert_eq!(reader.next().await.unwrap().unwrap().into_data().unwrap(), bytes(0..60));
            assert_eq!(poll!(&mut blocked), std::task::Poll::Ready(Ok(())));
        }
        assert_eq!(writer.buffered_bytes(), 40 + 1_000_000);
        assert!(poll!(writer.send(StreamMsg::Event(()))).is_pending());
        let mut offset = 60;
        while offset < 1_000_100 {
            let data = reader.next().await.unwrap().unwrap().into_data().unwrap();
            assert!(Tracker::matches(offset, &data));
            offset += data.len() as u64;
        }
        assert_eq!(writer.buffered_bytes(), 0);

        let (mut writer, mut reader) = pipe::<u8, (), ()>(params(2 * MESSAGE_COST, 60));
        writer.send(StreamMsg::Control(1)).await.unwrap();
        writer.send(StreamMsg::Control(2)).await.unwrap();
        let mut third = writer.send(StreamMsg::Control(3));
        assert!(poll!(&mut third).is_pending());
        let consumer = spawner.spawn(async move {
            let mut got = Vec::new();
            while let Some(msg) = reader.next().await {
                if let StreamMsg::Control(c) = msg.unwrap() {
                    got.push(c);
                }
            }
            got
        });
        third.await.unwrap();
        drop(writer);
        assert_eq!(consumer.await, vec![1, 2, 3]);
    }
}

on_every_executor! {
    /// W3: a dropped pending send enqueues nothing; the reader yields `None` again after its
    /// end; `fail`/`close` after the reader is gone are no-ops; `AsyncWrite` writes part of a
    /// slice when the ring is nearly full and answers `BrokenPipe` once closed.
    fn w3_cancel_safety_and_ends(spawner) {
        use futures::io::AsyncWriteExt;

        let (mut writer, mut reader) = pipe::<(), (), ()>(params(10, 100));
        writer.send(StreamMsg::Data(bytes(0..10))).await.unwrap();
        let mut pending = writer.send(StreamMsg::Data(bytes(10..20)));
        assert!(poll!(&mut pending).is_pending());
        drop(pending);
        writer.close();
        assert_eq!(reader.next().await.unwrap().unwrap().into_data().unwrap(), bytes(0..10));
        assert!(reader.next().await.is_none());
        assert!(reader.next().await.is_none());
        assert_eq!(writer.send(StreamMsg::Event(())).await, Err(StreamError::ChannelClosed));

        let (mut writer, reader) = pipe::<(), (), ()>(params(10, 100));
        drop(reader);
        writer.fail(());
        writer.close();
        assert!(writer.is_closed());

        let (mut writer, mut reader) = pipe::<(), (), ()>(params(10, 100));
        assert_eq!(writer.write(&bytes(0..4)).await.unwrap(), 4);
        assert_eq!(writer.write(&bytes(4..30)).await.unwrap(), 6, "a partial write");
        let consumer = spawner.spawn(async move {
            let mut got = Vec::new();
            while let Some(msg) = reader.next().await {
                got.extend_from_slice(&msg.unwrap().into_data().unwrap());
            }
            got
        });
        writer.write_all(&bytes(10..1000)).await.unwrap();
        AsyncWriteExt::close(&mut writer).await.unwrap();
        let error = writer.write(b"x").await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe);
        assert_eq!(consumer.await, bytes(0..1000));

        let (mut writer, reader) = pipe::<(), (), ()>(params(10, 100));
        drop(reader);
        let error = writer.write(b"x").await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe);
    }
}

on_every_executor! {
    /// B1: zero sizes make `Engine::build` and `pipe` panic naming the field; `validate`
    /// returns the error.
    fn b1_zero_params_panic(spawner) {
        let zero_capacity = StreamParams::default().with_buffer_capacity(0);
        let zero_chunk = StreamParams::default().with_chunk_size(0);
        assert_eq!(zero_capacity.validate(), Err(InvalidParams::ZeroBufferCapacity));
        assert_eq!(zero_chunk.validate(), Err(InvalidParams::ZeroChunkSize));
        assert_eq!(StreamParams::default().validate(), Ok(()));

        let message = |f: Box<dyn FnOnce() + std::panic::UnwindSafe>| {
            let panic = std::panic::catch_unwind(f).expect_err("a panic");
            panic.downcast_ref::<String>().cloned().unwrap()
        };
        let build = message(Box::new(move || {
            let _ = Engine::build(BytesSource::new(Bytes::new()), zero_capacity);
        }));
        assert!(build.contains("buffer_capacity"), "{build}");
        let build = message(Box::new(move || {
            let _ = Engine::build(BytesSource::new(Bytes::new()), zero_chunk);
        }));
        assert!(build.contains("chunk_size"), "{build}");
        let piped = message(Box::new(move || drop(pipe::<(), (), ()>(zero_capacity))));
        assert!(piped.contains("buffer_capacity"), "{piped}");
        let piped = message(Box::new(move || drop(pipe::<(), (), ()>(zero_chunk))));
        assert!(piped.contains("chunk_size"), "{piped}");
    }
}

on_every_executor! {
    /// B2: empty `Data` chunks are skipped, from a writer task and from a pipe.
    fn b2_empty_chunks_skipped(spawner) {
        let config = Config::new(10_000).chunks(&[0, 5, 0, 0, 3000, 0]);
        let (run, _handle, mut stream, _stats) = build(config, params(4096, 4096));
        let engine = spawner.spawn(run);
        let mut tracker = Tracker::new(4096);
        assert_eq!(drain(&mut stream, &mut tracker).await, None); // asserts none is empty
        assert_eq!(tracker.bytes, 10_000);
        drop(stream);
        engine.await;

        let (mut writer, mut reader) = pipe::<(), (), ()>(params(10, 10));
        writer.send(StreamMsg::Data(Bytes::new())).await.unwrap();
        writer.send(StreamMsg::Event(())).await.unwrap();
        writer.send(StreamMsg::Data(Bytes::new())).await.unwrap();
        writer.close();
        assert_eq!(reader.next().await, Some(Ok(StreamMsg::Event(()))));
        assert!(reader.next().await.is_none());
    }
}

on_every_executor! {
    /// B3: a seek past the end of a built-in source yields end of data.
    fn b3_seek_past_end(spawner) {
        let data = bytes(0..1000);
        let (engine, handle, mut stream) =
            Engine::build(BytesSource::new(data.clone()), params(4096, 4096));
        let engine = spawner.spawn(engine.run());
        assert_eq!(stream.next().await, Some(Ok(StreamMsg::Data(data))));
        handle.seek_bytes(5000).await.unwrap();
        assert!(stream.next().await.is_none());
        handle.seek_bytes(999).await.unwrap();
        assert_eq!(stream.next().await, Some(Ok(StreamMsg::Data(bytes(999..1000)))));
        assert!(stream.next().await.is_none());
        drop(stream);
        engine.await;
    }
}

on_every_executor! {
    /// B4: a panic in the source propagates out of `run()`; the stream then behaves as if
    /// the engine was dropped (D5) and seeks get `ChannelClosed`.
    fn b4_source_panic(spawner) {
        let mut config = Config::new(1 << 20).chunks(&[1000]);
        config.panic_at = Some(20_000);
        let (run, handle, mut stream, stats) = build(config, params(4096, 1000));
        let engine = spawner.spawn(run);
        let mut tracker = Tracker::new(1000);
        let error = drain(&mut stream, &mut tracker).await;
        assert_eq!(error, Some(StreamError::ChannelClosed));
        // The task reaches offset 20_000 (and panics there) only after producing every byte
        // before it, all of which went into the ring: the stream delivers them all (D5).
        assert_eq!(stats.produced(), 20_000);
        assert_eq!(tracker.offset, 20_000, "every byte before the panic");
        assert_eq!(tracker.bytes, 20_000);
        let panic = std::panic::AssertUnwindSafe(engine).catch_unwind().await;
        let panic = panic.expect_err("the panic propagates out of run()");
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(message.contains("test source panicked"), "{message}");
        assert_eq!(handle.seek_bytes(0).await, Err(StreamError::ChannelClosed));

        // The panic first, with everything produced before it still in the ring.
        let mut config = Config::new(1 << 20).chunks(&[1000]);
        config.panic_at = Some(20_000);
        let (run, _handle, mut stream, stats) = build(config, params(32_768, 1000));
        let panic = std::panic::AssertUnwindSafe(spawner.spawn(run)).catch_unwind().await;
        assert!(panic.is_err(), "the panic propagates out of run()");
        assert_eq!(stats.produced(), 20_000);
        let mut tracker = Tracker::new(1000);
        let error = drain(&mut stream, &mut tracker).await;
        assert_eq!(error, Some(StreamError::ChannelClosed));
        assert_eq!(tracker.offset, 20_000, "every buffered byte after the panic");
        assert_eq!(tracker.bytes, 20_000);
    }
}
