//! Adversarial poll-by-hand tests: abandoned futures, wakers that re-enter the pipe from
//! `wake()`, and buffered `Bytes` freed on drop (checked with a drop counter).
#![cfg(not(loom))]

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use bytes::Bytes;
use futures::executor::block_on;
use futures::{Stream, StreamExt, stream};
use kithara_stream::{
    Engine, EngineSource, OpenResult, Reader, StreamMsg, StreamParams, Writer, WriterTask, pipe,
};

use common::waker::CountingWaker;

fn params(capacity: usize, chunk_size: usize) -> StreamParams {
    StreamParams::default()
        .with_buffer_capacity(capacity)
        .with_chunk_size(chunk_size)
}

fn data(bytes: &'static [u8]) -> StreamMsg<(), ()> {
    StreamMsg::Data(Bytes::from_static(bytes))
}

#[test]
fn adversarial_abandoned_futures_do_not_stall_peers() {
    let (mut writer, mut reader) = pipe::<(), (), ()>(params(2, 2));
    block_on(writer.send(data(b"ab"))).unwrap();
    // A send polled once, then abandoned: its waker stays registered and goes stale.
    {
        let mut send = writer.send(data(b"cd"));
        let abandoned = CountingWaker::new();
        assert!(
            Pin::new(&mut send)
                .poll(&mut abandoned.context())
                .is_pending()
        );
    }
    // A read polled once with a waker that is then abandoned.
    let abandoned = CountingWaker::new();
    assert_eq!(
        Pin::new(&mut reader).poll_next(&mut abandoned.context()),
        Poll::Ready(Some(Ok(data(b"ab"))))
    );
    assert!(
        Pin::new(&mut reader)
            .poll_next(&mut abandoned.context())
            .is_pending()
    );
    // Both sides go on with fresh futures, on another thread.
    let producer = std::thread::spawn(move || {
        block_on(async {
            for chunk in [&b"ef"[..], b"gh", b"ij"] {
                writer
                    .send(StreamMsg::Data(Bytes::from_static(chunk)))
                    .await
                    .unwrap();
            }
        })
    });
    let got: Vec<u8> = block_on(
        reader
            .map(|m| m.unwrap().into_data().unwrap().to_vec())
            .concat(),
    );
    producer.join().unwrap();
    assert_eq!(got, b"efghij", "the abandoned send enqueued nothing");
}

/// A waker that polls the reader from inside `wake()`.
struct ReenterReader {
    reader: Mutex<Option<Reader<(), (), ()>>>,
    got: Mutex<Vec<StreamMsg<(), ()>>>,
    wakes: AtomicUsize,
}

impl Wake for ReenterReader {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        // `try_lock`: the test itself may hold it while polling.
        if let Ok(mut reader) = self.reader.try_lock() {
            if let Some(reader) = reader.as_mut() {
                while let Poll::Ready(Some(Ok(msg))) = Pin::new(&mut *reader).poll_next(&mut cx) {
                    self.got.lock().unwrap().push(msg);
                }
            }
        }
    }
}

#[test]
fn adversarial_waker_reentering_the_reader_does_not_deadlock() {
    let (mut writer, reader) = pipe::<(), (), ()>(params(4, 4));
    let reenter = Arc::new(ReenterReader {
        reader: Mutex::new(Some(reader)),
        got: Mutex::new(Vec::new()),
        wakes: AtomicUsize::new(0),
    });
    let waker = Waker::from(reenter.clone());
    {
        let mut guard = reenter.reader.lock().unwrap();
        let reader = guard.as_mut().unwrap();
        assert!(
            Pin::new(reader)
                .poll_next(&mut Context::from_waker(&waker))
                .is_pending()
        );
    }
    // Each push wakes the reader, whose waker reads from inside the push.
    for chunk in [&b"ab"[..], b"cd", b"ef"] {
        block_on(writer.send(StreamMsg::Data(Bytes::from_static(chunk)))).unwrap();
    }
    assert_eq!(reenter.wakes.load(Ordering::SeqCst), 3);
    assert_eq!(
        *reenter.got.lock().unwrap(),
        [data(b"ab"), data(b"cd"), data(b"ef")]
    );
}

/// A waker that sends from inside `wake()`.
struct ReenterWriter {
    writer: Mutex<Option<Writer<(), (), ()>>>,
    sent: AtomicUsize,
}

impl Wake for ReenterWriter {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        if let Ok(mut writer) = self.writer.try_lock() {
            if let Some(writer) = writer.as_mut() {
                let mut send = writer.send(data(b"zz"));
                if Pin::new(&mut send).poll(&mut cx).is_ready() {
                    self.sent.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }
}

#[test]
fn adversarial_waker_reentering_the_writer_does_not_deadlock() {
    let (writer, mut reader) = pipe::<(), (), ()>(params(2, 2));
    let reenter = Arc::new(ReenterWriter {
        writer: Mutex::new(Some(writer)),
        sent: AtomicUsize::new(0),
    });
    let waker = Waker::from(reenter.clone());
    {
        let mut guard = reenter.writer.lock().unwrap();
        let writer = guard.as_mut().unwrap();
        let mut cx = Context::from_waker(&waker);
        assert!(
            Pin::new(&mut writer.send(data(b"ab")))
                .poll(&mut cx)
                .is_ready()
        );
        assert!(
            Pin::new(&mut writer.send(data(b"cd")))
                .poll(&mut cx)
                .is_pending()
        );
    }
    // Reading makes room: the writer's waker sends from inside the read.
    let other = CountingWaker::new();
    assert_eq!(
        Pin::new(&mut reader).poll_next(&mut other.context()),
        Poll::Ready(Some(Ok(data(b"ab"))))
    );
    assert_eq!(reenter.sent.load(Ordering::SeqCst), 1);
    assert_eq!(
        Pin::new(&mut reader).poll_next(&mut other.context()),
        Poll::Ready(Some(Ok(data(b"zz"))))
    );
}

/// A seek future whose waker issues another seek from inside `wake()`.
#[test]
fn adversarial_waker_reentering_a_seek_does_not_deadlock() {
    struct ReenterSeek {
        handle: kithara_stream::EngineHandle<std::convert::Infallible>,
        issued: AtomicUsize,
    }
    impl Wake for ReenterSeek {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            if self.issued.fetch_add(1, Ordering::SeqCst) == 0 {
                let mut seek = self.handle.seek_bytes(1);
                let noop = futures::task::noop_waker();
                let _ = Pin::new(&mut seek).poll(&mut Context::from_waker(&noop));
            }
        }
    }
    let source = kithara_stream::BytesSource::new(&b"abc"[..]);
    let (engine, handle, _stream) = Engine::build(source, params(16, 16));
    let mut run = engine.run();
    let reenter = Arc::new(ReenterSeek {
        handle: handle.clone(),
        issued: AtomicUsize::new(0),
    });
    let waker = Waker::from(reenter.clone());
    let mut seek = handle.seek_bytes(2);
    assert!(
        Pin::new(&mut seek)
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    let noop = futures::task::noop_waker();
    let _ = Pin::new(&mut run).poll(&mut Context::from_waker(&noop));
    assert!(reenter.issued.load(Ordering::SeqCst) >= 1);
    assert!(
        Pin::new(&mut seek)
            .poll(&mut Context::from_waker(&noop))
            .is_ready()
    );
}

/// Counts the drops of the buffers behind `Bytes`.
#[derive(Debug)]
struct Owned(Vec<u8>, Arc<AtomicUsize>);

impl AsRef<[u8]> for Owned {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        self.1.fetch_add(1, Ordering::SeqCst);
    }
}

/// A `Bytes` of `len` bytes whose buffer counts itself in `created` now and in `drops` when
/// it is freed.
fn counted(len: usize, created: &AtomicUsize, drops: &Arc<AtomicUsize>) -> Bytes {
    created.fetch_add(1, Ordering::SeqCst);
    Bytes::from_owner(Owned(vec![7; len], drops.clone()))
}

#[test]
fn adversarial_pipe_frees_buffered_bytes_on_drop() {
    let (created, drops) = (AtomicUsize::new(0), Arc::new(AtomicUsize::new(0)));
    let (mut writer, mut reader) = pipe::<(), (), ()>(params(100, 10));
    for _ in 0..3 {
        block_on(writer.send(StreamMsg::Data(counted(30, &created, &drops)))).unwrap();
    }
    // The reader holds the rest of a split chunk.
    assert_eq!(
        block_on(reader.next())
            .unwrap()
            .unwrap()
            .into_data()
            .unwrap()
            .len(),
        10
    );
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(reader);
    assert_eq!(created.load(Ordering::SeqCst), 3);
    assert_eq!(
        drops.load(Ordering::SeqCst),
        created.load(Ordering::SeqCst),
        "queued and held buffers freed with the reader"
    );
    drop(writer);
}

#[test]
fn adversarial_engine_frees_buffered_bytes_on_drop() {
    /// Buffers created and buffers freed.
    struct Counted(Arc<AtomicUsize>, Arc<AtomicUsize>);
    impl EngineSource for Counted {
        type Error = ();
        type Control = ();
        type Event = ();
        fn open(&self, _: StreamParams) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
            let (created, drops) = (self.0.clone(), self.1.clone());
            let task = stream::iter(0..)
                .map(move |_| Ok(StreamMsg::Data(counted(1000, &created, &drops))));
            std::future::ready(Ok((WriterTask::new(task), ())))
        }
    }
    let (created, drops) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let source = Counted(created.clone(), drops.clone());
    let (engine, handle, mut stream) = Engine::build(source, params(4000, 300));
    let mut run = engine.run();
    let noop = futures::task::noop_waker();
    assert!(
        Pin::new(&mut run)
            .poll(&mut Context::from_waker(&noop))
            .is_pending()
    );
    assert!(block_on(stream.next()).is_some()); // holds a remainder now
    let produced = created.load(Ordering::SeqCst);
    assert!(produced > 0, "the engine produced nothing");
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop((run, handle, stream));
    assert_eq!(
        created.load(Ordering::SeqCst),
        produced,
        "nothing produced after the drop"
    );
    assert_eq!(drops.load(Ordering::SeqCst), produced, "every buffer freed");
}
