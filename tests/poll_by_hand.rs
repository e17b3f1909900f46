//! Rules about single polls (E1, E2, E5, E6, B4), checked by polling by hand with counting
//! wakers: both the `Poll` and the number of wakes are asserted.

#![cfg(not(loom))]

mod common;

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::Poll;

use bytes::Bytes;
use futures::executor::block_on;
use futures::{Stream, StreamExt};
use kithara_stream::{Engine, StreamError, StreamMsg, StreamParams, pipe};

use common::waker::CountingWaker;
use common::{Config, Tracker, drain};

fn params(capacity: usize, chunk_size: usize) -> StreamParams {
    StreamParams::default()
        .with_buffer_capacity(capacity)
        .with_chunk_size(chunk_size)
}

fn poll_next<S: Stream + Unpin>(stream: &mut S, waker: &CountingWaker) -> Poll<Option<S::Item>> {
    Pin::new(stream).poll_next(&mut waker.context())
}

fn poll<F: Future + Unpin>(future: &mut F, waker: &CountingWaker) -> Poll<F::Output> {
    Pin::new(future).poll(&mut waker.context())
}

#[test]
fn e5_pending_poll_without_progress_does_not_wake_itself() {
    let (mut writer, mut reader) = pipe::<(), (), ()>(params(4, 4));
    let w = CountingWaker::new();
    for _ in 0..3 {
        assert!(poll_next(&mut reader, &w).is_pending());
    }
    assert_eq!(w.count(), 0);

    block_on(writer.send(StreamMsg::Data(Bytes::from_static(b"full")))).unwrap();
    assert_eq!(w.count(), 1, "a push wakes the waiting reader");
    let mut send = writer.send(StreamMsg::Data(Bytes::from_static(b"more")));
    let s = CountingWaker::new();
    for _ in 0..3 {
        assert!(poll(&mut send, &s).is_pending());
    }
    assert_eq!(s.count(), 0);

    // An engine whose writer task is pending.
    let mut config = Config::new(u64::MAX);
    config.stall_at = Some(0);
    let (source, _stats) = config.build();
    let (engine, _handle, _stream) = Engine::build(source, params(16, 16));
    let mut run = engine.run();
    let r = CountingWaker::new();
    for _ in 0..3 {
        assert!(poll(&mut run, &r).is_pending());
    }
    assert_eq!(r.count(), 0);
}

#[test]
fn e5_progressing_run_yields_after_bounded_steps() {
    // Only empty chunks: the engine makes progress forever without filling the ring.
    let (source, stats) = Config::new(u64::MAX).chunks(&[0]).build();
    let (engine, _handle, _stream) = Engine::build(source, params(16, 16));
    let mut run = engine.run();
    let r = CountingWaker::new();
    assert!(poll(&mut run, &r).is_pending());
    assert_eq!(r.count(), 1, "it woke itself to be polled again");
    let polls = stats.task_polls.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        polls > 1 && polls <= 1000,
        "{polls} task polls in one run poll"
    );
}

#[test]
fn e5_new_waker_is_woken() {
    // The reader moves to a new waker.
    let (mut writer, mut reader) = pipe::<(), (), ()>(params(4, 4));
    let (old, new) = (CountingWaker::new(), CountingWaker::new());
    assert!(poll_next(&mut reader, &old).is_pending());
    assert!(poll_next(&mut reader, &new).is_pending());
    block_on(writer.send(StreamMsg::Data(Bytes::from_static(b"full")))).unwrap();
    assert_eq!(new.count(), 1);

    // The writer moves to a new waker.
    let mut send = writer.send(StreamMsg::Event(()));
    let (old, new) = (CountingWaker::new(), CountingWaker::new());
    assert!(poll(&mut send, &old).is_pending());
    assert!(poll(&mut send, &new).is_pending());
    assert!(poll_next(&mut reader, &CountingWaker::new()).is_ready());
    assert_eq!(new.count(), 1);
    assert_eq!(poll(&mut send, &new), Poll::Ready(Ok(())));

    // The engine moves to a new waker while the ring is full.
    let (source, _stats) = Config::new(u64::MAX).chunks(&[4]).build();
    let (engine, handle, mut stream) = Engine::build(source, params(4, 4));
    let mut run = engine.run();
    let (old, new) = (CountingWaker::new(), CountingWaker::new());
    assert!(poll(&mut run, &old).is_pending());
    assert!(poll(&mut run, &new).is_pending());
    assert_eq!((old.count(), new.count()), (0, 0), "full: no self-wake");
    assert!(poll_next(&mut stream, &CountingWaker::new()).is_ready());
    assert_eq!(new.count(), 1, "room wakes the engine's newest waker");

    // A seek future moves to a new waker.
    let mut seek = handle.seek_bytes(100);
    let (old, new) = (CountingWaker::new(), CountingWaker::new());
    assert!(poll(&mut seek, &old).is_pending());
    assert!(poll(&mut seek, &new).is_pending());
    assert!(poll(&mut run, &CountingWaker::new()).is_pending()); // applies the seek
    assert!(new.count() >= 1);
    assert_eq!(poll(&mut seek, &new), Poll::Ready(Ok(())));
    let mut tracker = Tracker::at(100, 4);
    match poll_next(&mut stream, &CountingWaker::new()) {
        Poll::Ready(Some(Ok(msg))) => tracker.accept(msg),
        other => panic!("{other:?}"),
    }
}

#[test]
fn e5_close_wakes_the_other_side() {
    let (writer, mut reader) = pipe::<(), (), ()>(params(4, 4));
    let r = CountingWaker::new();
    assert!(poll_next(&mut reader, &r).is_pending());
    drop(writer);
    assert_eq!(r.count(), 1);
    assert_eq!(poll_next(&mut reader, &r), Poll::Ready(None));

    let (mut writer, reader) = pipe::<(), (), ()>(params(4, 4));
    block_on(writer.send(StreamMsg::Data(Bytes::from_static(b"full")))).unwrap();
    let mut send = writer.send(StreamMsg::Event(()));
    let w = CountingWaker::new();
    assert!(poll(&mut send, &w).is_pending());
    drop(reader);
    assert_eq!(w.count(), 1);
    assert_eq!(
        poll(&mut send, &w),
        Poll::Ready(Err(StreamError::ChannelClosed))
    );
}

#[test]
fn e1_dropping_stream_wakes_and_stops_blocked_engine() {
    let (source, stats) = Config::new(u64::MAX).build();
    let (engine, _handle, stream) = Engine::build(source, params(1024, 1024));
    let mut run = engine.run();
    let r = CountingWaker::new();
    assert!(poll(&mut run, &r).is_pending());
    assert_eq!(stats.live_tasks(), 1);
    drop(stream);
    assert_eq!(r.count(), 1);
    assert_eq!(poll(&mut run, &r), Poll::Ready(()));
    assert_eq!(stats.live_tasks(), 0);
}

#[test]
fn e2_run_waits_for_the_last_handle() {
    let (source, _stats) = Config::new(10).build();
    let (engine, handle, mut stream) = Engine::build(source, params(1024, 1024));
    let second = handle.clone();
    let mut run = engine.run();
    let r = CountingWaker::new();
    assert!(poll(&mut run, &r).is_pending(), "a handle may still seek");
    drop(handle);
    assert_eq!(r.count(), 0, "not the last handle");
    assert!(poll(&mut run, &r).is_pending());
    drop(second);
    assert_eq!(r.count(), 1, "the last handle's drop wakes the engine");
    assert_eq!(poll(&mut run, &r), Poll::Ready(()));
    // The stream still delivers everything.
    let mut tracker = Tracker::new(1024);
    assert_eq!(block_on(drain(&mut stream, &mut tracker)), None);
    assert_eq!(tracker.bytes, 10);
}

#[test]
fn e6_run_is_ready_again_after_completion() {
    let (source, _stats) = Config::new(10).build();
    let (engine, handle, stream) = Engine::build(source, params(1024, 1024));
    drop((handle, stream));
    let mut run = engine.run();
    let r = CountingWaker::new();
    assert_eq!(poll(&mut run, &r), Poll::Ready(()));
    assert_eq!(poll(&mut run, &r), Poll::Ready(()));
    assert_eq!(r.count(), 0);
}

#[test]
fn e6_seek_future_panics_when_polled_after_completion() {
    let (source, _stats) = Config::new(10).build();
    let (engine, handle, _stream) = Engine::build(source, params(1024, 1024));
    drop(engine);
    let mut seek = handle.seek_bytes(1);
    let w = CountingWaker::new();
    assert_eq!(
        poll(&mut seek, &w),
        Poll::Ready(Err(StreamError::ChannelClosed))
    );
    let again = catch_unwind(AssertUnwindSafe(|| poll(&mut seek, &w)));
    let panic = again.expect_err("documented panic");
    assert!(
        panic
            .downcast_ref::<&str>()
            .unwrap()
            .contains("after completion")
    );
}

#[test]
fn b4_panicked_run_kept_alive_behaves_as_dropped() {
    let mut config = Config::new(u64::MAX).chunks(&[100]);
    config.panic_at = Some(500);
    let (source, _stats) = config.build();
    let (engine, handle, mut stream) = Engine::build(source, params(1 << 20, 1 << 20));
    let mut run = engine.run();
    let r = CountingWaker::new();
    let panicked = catch_unwind(AssertUnwindSafe(|| poll(&mut run, &r)));
    assert!(panicked.is_err(), "the panic propagates out of poll");
    assert!(handle.is_closed(), "marked gone during the unwind");
    // `run` is still alive here, as an executor might keep it.
    let mut tracker = Tracker::new(1 << 20);
    assert_eq!(
        block_on(drain(&mut stream, &mut tracker)),
        Some(StreamError::ChannelClosed)
    );
    assert_eq!(tracker.bytes, 500);
    assert!(block_on(stream.next()).is_none());
    assert_eq!(
        block_on(handle.seek_bytes(0)),
        Err(StreamError::ChannelClosed)
    );
    assert_eq!(
        poll(&mut run, &r),
        Poll::Ready(()),
        "documented: Ready after the panic"
    );
}

/// A writer task whose `Drop` panics.
struct PanicOnDrop;

impl Stream for PanicOnDrop {
    type Item = Result<StreamMsg<(), ()>, ()>;

    fn poll_next(self: Pin<&mut Self>, _: &mut std::task::Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Pending
    }
}

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            panic!("writer task drop");
        }
    }
}

/// Opens a `PanicOnDrop` task; its seeks never resolve.
struct DropPanics;

impl kithara_stream::EngineSource for DropPanics {
    type Error = ();
    type Control = ();
    type Event = ();

    fn open(
        &self,
        _: StreamParams,
    ) -> impl Future<Output = kithara_stream::OpenResult<Self>> + Send + 'static {
        std::future::ready(Ok((kithara_stream::WriterTask::new(PanicOnDrop), ())))
    }

    fn seek_bytes(
        &self,
        _: u64,
        (): (),
    ) -> impl Future<Output = kithara_stream::OpenResult<Self>> + Send + 'static {
        std::future::pending()
    }

    fn supports_seek(&self) -> bool {
        true
    }
}

/// A panic in a user `Drop` while the run future is dropped still answers the seek being
/// prepared and every later one with `ChannelClosed`, and ends the stream (B4, D5).
#[test]
fn b4_panicking_drop_during_teardown_still_answers_seeks() {
    let (engine, handle, mut stream) = Engine::build(DropPanics, params(64, 16));
    let (r, s) = (CountingWaker::new(), CountingWaker::new());
    let mut run = engine.run();
    assert!(poll(&mut run, &r).is_pending(), "opened, streaming");
    let mut seek = handle.seek_bytes(10);
    assert!(poll(&mut seek, &s).is_pending());
    assert!(
        poll(&mut run, &r).is_pending(),
        "the seek is being prepared"
    );
    let dropped = catch_unwind(AssertUnwindSafe(move || drop(run)));
    assert!(dropped.is_err(), "the writer task's panic leaves the drop");
    assert!(s.count() >= 1, "the waiting seek was woken");
    assert_eq!(
        poll(&mut seek, &s),
        Poll::Ready(Err(StreamError::ChannelClosed))
    );
    assert_eq!(
        block_on(handle.seek_bytes(20)),
        Err(StreamError::ChannelClosed)
    );
    assert_eq!(
        block_on(stream.next()),
        Some(Err(StreamError::ChannelClosed))
    );
    assert_eq!(block_on(stream.next()), None);
}

/// An empty `Data` send fails once the reader is gone, as every other send does (W1, W3),
/// and agrees with `AsyncWrite::poll_write(&[])`.
#[test]
fn w1_empty_send_after_reader_gone_is_closed() {
    use futures::AsyncWriteExt;
    let (mut writer, reader) = pipe::<(), (), ()>(params(64, 16));
    assert_eq!(block_on(writer.send(StreamMsg::Data(Bytes::new()))), Ok(()));
    drop(reader);
    assert_eq!(
        block_on(writer.send(StreamMsg::Data(Bytes::new()))),
        Err(StreamError::ChannelClosed)
    );
    let error = block_on(writer.write(&[])).unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe);
}
