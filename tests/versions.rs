//! Versions of a resource: bytes of two versions (another `ETag` or `Last-Modified`, or
//! another length) are never passed on as one.
//!
//! - `RangeSource` refuses a response, after a seek, of another version than the first.
//! - `Retrying` refuses a retry of another version than the body it resumes, and does not
//!   retry that.
//! - `CachedSource` drops what its store held: it fails with `Changed` once bytes were
//!   passed on (a seek then goes on with the new version only), and starts over silently
//!   before.
//!
//! Over the scripted HTTP server and reqwest where the headers matter; over closures where
//! the timing must be exact.

mod common;

use std::io::{self, ErrorKind, Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use common::script_server::{Reply, ScriptServer};
use common::{hang_guard, pattern, read_all};
use futures::channel::oneshot;
use futures::future::{self, Shared};
use futures::stream::{self, BoxStream};
use futures::{AsyncReadExt, AsyncSeekExt, FutureExt, StreamExt};
use kithara_stream::exec::block_on;
use kithara_stream::io::{AsyncReader, BlockingReader, stream_error};
use kithara_stream::sources::{
    ByteRange, CachedSource, Fetch, Progress, RangeMismatch, RangeResponse, RangeSource,
    RetryEvent, RetryPolicy, Retrying, StoreParams, Validator,
};
use kithara_stream::{Engine, EngineSource, StreamError, StreamParams};

const LEN: usize = 600_000;

/// Version `v` (0, 1, 2) of a resource of `len` bytes: at every position the versions'
/// bytes differ, so that one byte of another version shows.
fn version(v: u8, len: usize) -> Arc<Vec<u8>> {
    let shift = v.wrapping_mul(101);
    Arc::new(
        (0..len as u64)
            .map(|i| pattern(i).wrapping_add(shift))
            .collect(),
    )
}

fn etag(tag: &str) -> Option<Validator> {
    Some(Validator::ETag(format!("\"{tag}\"")))
}

fn params() -> StreamParams {
    StreamParams::default()
        .with_buffer_capacity(16 * 1024)
        .with_chunk_size(4096)
}

type Reader = BlockingReader<(), Progress, io::Error>;

/// A blocking reader over `source`, its engine on `rt`.
fn blocking_on<S>(rt: &tokio::runtime::Runtime, source: S) -> Reader
where
    S: EngineSource<Control = (), Event = Progress, Error = io::Error>,
{
    let (engine, handle, stream) = Engine::build(source, params());
    rt.spawn(engine.run());
    BlockingReader::new(stream, handle)
}

/// A blocking reader over `source`, its engine on a thread of its own.
fn blocking<S>(source: S) -> Reader
where
    S: EngineSource<Control = (), Event = Progress, Error = io::Error>,
{
    let (engine, handle, stream) = Engine::build(source, params());
    std::thread::spawn(move || block_on(engine.run()));
    BlockingReader::new(stream, handle)
}

/// Seeks to `pos` and reads to the end: the bytes and the error of the seek or the read.
fn seek_and_read(reader: &mut Reader, pos: u64) -> (Vec<u8>, Option<io::Error>) {
    match reader.seek(SeekFrom::Start(pos)) {
        Ok(at) => {
            assert_eq!(at, pos);
            read_all(reader)
        }
        Err(error) => (Vec::new(), Some(error)),
    }
}

async fn seek_and_read_async<R>(reader: &mut R, pos: u64) -> (Vec<u8>, Option<io::Error>)
where
    R: futures::AsyncRead + futures::AsyncSeek + Unpin,
{
    if let Err(error) = reader.seek(SeekFrom::Start(pos)).await {
        return (Vec::new(), Some(error));
    }
    let mut all = Vec::new();
    let mut buf = vec![0; 50_000];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) => return (all, None),
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(error) => return (all, Some(error)),
        }
    }
}

/// `got` is `want` from `from` on, byte for byte.
#[track_caller]
fn assert_bytes(got: &[u8], want: &[u8], from: usize) {
    let want = &want[from..];
    if let Some(at) = got.iter().zip(want).position(|(a, b)| a != b) {
        panic!("bytes differ at {}", from + at);
    }
    assert_eq!(got.len(), want.len(), "lengths differ");
}

/// `got` is a prefix of `want` from `from` on.
#[track_caller]
fn assert_prefix(got: &[u8], want: &[u8], from: usize) {
    assert!(
        got.len() <= want.len() - from,
        "more bytes than the resource"
    );
    assert_bytes(got, &want[..from + got.len()], from);
}

/// The error a reader returned is the source's `Changed`: an `io::Error` of kind
/// `InvalidData` carrying `RangeMismatch::Changed`, inside the stream error.
#[track_caller]
fn assert_changed(error: Option<&io::Error>) {
    let error = error.expect("an error, not an end");
    let inner = match stream_error::<io::Error>(error) {
        Some(StreamError::Source(inner)) => inner,
        other => panic!("not a source error: {other:?} ({error})"),
    };
    assert_changed_io(inner);
}

#[track_caller]
fn assert_changed_io(error: &io::Error) {
    assert_eq!(error.kind(), ErrorKind::InvalidData, "{error}");
    let mismatch = error
        .get_ref()
        .and_then(|e| e.downcast_ref::<RangeMismatch>());
    assert_eq!(mismatch, Some(&RangeMismatch::Changed), "{error}");
}

// --- over HTTP: RangeSource and Retrying ---------------------------------------------------

/// A server of version 0 of the resource with `first` (a header name and value) until
/// `switched` is set, then of version 1 with `then`.
fn two_versions(
    first: (&'static str, &'static str),
    then: (&'static str, &'static str),
    switched: Arc<AtomicBool>,
) -> ScriptServer {
    let (a, b) = (version(0, LEN), version(1, LEN));
    ScriptServer::start(move |request| {
        let (data, (name, value)) = if switched.load(Ordering::SeqCst) {
            (&b, then)
        } else {
            (&a, first)
        };
        Reply::range(data, request).with_header(name, value)
    })
}

fn http_range_source(
    server: &ScriptServer,
) -> impl EngineSource<Control = (), Event = Progress, Error = io::Error> {
    RangeSource::new(common::http::reqwest_fetch(
        server.url("track"),
        Arc::default(),
    ))
}

#[test]
fn range_source_refuses_another_etag_after_a_seek() {
    hang_guard("versions_range_etag", || {
        let switched = Arc::new(AtomicBool::new(false));
        let server = two_versions(("ETag", "\"a\""), ("ETag", "\"b\""), switched.clone());
        let rt = common::tokio_runtime();
        let mut reader = blocking_on(&rt, http_range_source(&server));
        let mut head = vec![0; 1_000];
        reader.read_exact(&mut head).unwrap();
        assert_bytes(&head, &version(0, LEN)[..1_000], 0);

        switched.store(true, Ordering::SeqCst);
        let (got, error) = seek_and_read(&mut reader, 300_000);
        assert!(got.is_empty(), "{} bytes of the new version", got.len());
        assert_changed(error.as_ref());
        assert_eq!(server.requests(), 2);
        // The source stays with the version it started on: elsewhere, too.
        let (got, error) = seek_and_read(&mut reader, 100_000);
        assert!(got.is_empty(), "{} bytes of the new version", got.len());
        assert_changed(error.as_ref());
    });
}

#[test]
fn range_source_takes_the_same_etag_after_a_seek() {
    hang_guard("versions_range_same", || {
        let switched = Arc::new(AtomicBool::new(false));
        let server = two_versions(("ETag", "\"a\""), ("ETag", "\"a\""), switched);
        let resource = version(0, LEN);
        let rt = common::tokio_runtime();
        let mut reader = blocking_on(&rt, http_range_source(&server));
        let mut head = vec![0; 1_000];
        reader.read_exact(&mut head).unwrap();
        assert_bytes(&head, &resource[..1_000], 0);
        let (rest, error) = seek_and_read(&mut reader, 300_000);
        assert!(error.is_none(), "{error:?}");
        assert_bytes(&rest, &resource, 300_000);
        let (all, error) = seek_and_read(&mut reader, 0);
        assert!(error.is_none(), "{error:?}");
        assert_bytes(&all, &resource, 0);
    });
}

#[test]
fn range_source_refuses_another_last_modified_async_reader() {
    hang_guard("versions_range_last_modified", || {
        let switched = Arc::new(AtomicBool::new(false));
        let server = two_versions(
            ("Last-Modified", "Mon, 01 Jan 2024 00:00:00 GMT"),
            ("Last-Modified", "Tue, 02 Jan 2024 00:00:00 GMT"),
            switched.clone(),
        );
        let rt = common::tokio_runtime();
        let (engine, handle, stream) = Engine::build(http_range_source(&server), params());
        rt.spawn(engine.run());
        let mut reader = AsyncReader::new(stream, handle);
        rt.block_on(async {
            let mut head = vec![0; 1_000];
            reader.read_exact(&mut head).await.unwrap();
            assert_bytes(&head, &version(0, LEN)[..1_000], 0);
            switched.store(true, Ordering::SeqCst);
            let (got, error) = seek_and_read_async(&mut reader, 300_000).await;
            assert!(got.is_empty(), "{} bytes of the new version", got.len());
            assert_changed(error.as_ref());
        });
    });
}

/// A retry policy with short waits and a log of its events.
fn policy(events: &Arc<Mutex<Vec<RetryEvent>>>) -> RetryPolicy {
    let events = events.clone();
    RetryPolicy::default()
        .with_attempts(4)
        .with_backoff(Duration::from_millis(5), Duration::from_millis(50))
        .with_timer(tokio::time::sleep)
        .on_retry(move |event| events.lock().unwrap().push(event.clone()))
}

/// A server whose first reply (version 0, `ETag: "a"`) is cut after `cut` body bytes; the
/// later ones are of version 0 or 1 with `then` as their ETag.
fn cut_then(cut: usize, then_version: u8, then: &'static str) -> ScriptServer {
    let (a, b) = (version(0, LEN), version(then_version, LEN));
    ScriptServer::start(move |request| {
        if request.number == 0 {
            Reply::range(&a, request)
                .with_header("ETag", "\"a\"")
                .cut_after(cut)
        } else {
            Reply::range(&b, request).with_header("ETag", then)
        }
    })
}

#[test]
fn retrying_refuses_a_retry_of_another_version() {
    hang_guard("versions_retry_http_changed", || {
        let server = cut_then(200_000, 1, "\"b\"");
        let events = Arc::default();
        let fetch = common::http::reqwest_fetch(server.url("track"), Arc::default());
        let source = RangeSource::new(Retrying::new(fetch, policy(&events)));
        let rt = common::tokio_runtime();
        let mut reader = blocking_on(&rt, source);
        let (got, error) = read_all(&mut reader);
        assert_prefix(&got, &version(0, LEN), 0);
        assert!(got.len() <= 200_000, "{} bytes", got.len());
        assert_changed(error.as_ref());
        assert_eq!(server.requests(), 2, "not retried again");
        let events = events.lock().unwrap();
        assert_eq!(events.len(), 1, "only the cut is retried: {events:?}");
    });
}

#[test]
fn retrying_resumes_a_retry_of_the_same_version() {
    hang_guard("versions_retry_http_same", || {
        let server = cut_then(200_000, 0, "\"a\"");
        let events = Arc::default();
        let fetch = common::http::reqwest_fetch(server.url("track"), Arc::default());
        let source = RangeSource::new(Retrying::new(fetch, policy(&events)));
        let rt = common::tokio_runtime();
        let mut reader = blocking_on(&rt, source);
        let (got, error) = read_all(&mut reader);
        assert!(error.is_none(), "{error:?}");
        assert_bytes(&got, &version(0, LEN), 0);
        assert_eq!(server.requests(), 2);
    });
}

type Chunks = stream::Iter<std::vec::IntoIter<io::Result<Bytes>>>;

fn chunks(data: &[u8], piece: usize) -> Chunks {
    let pieces: Vec<io::Result<Bytes>> = data
        .chunks(piece)
        .map(|piece| Ok(Bytes::copy_from_slice(piece)))
        .collect();
    stream::iter(pieces)
}

#[test]
fn retrying_surfaces_a_retry_of_another_version_once() {
    const CUT: usize = 10_000;
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let (a, b) = (version(0, LEN), version(1, LEN));
    let fetch = move |range: ByteRange| {
        // The first body is version 0, cut at `CUT`; every retry is version 1.
        let (data, end, tag) = match counted.fetch_add(1, Ordering::SeqCst) {
            0 => (&a, CUT, "a"),
            _ => (&b, LEN, "b"),
        };
        let body = chunks(&data[range.start as usize..end], 4096);
        future::ready(Ok::<_, io::Error>(
            RangeResponse::new(body)
                .with_total_len(Some(LEN as u64))
                .with_start(Some(range.start))
                .with_validator(etag(tag)),
        ))
    };
    // No timer: retries follow at once, so a loop of them would show in the count.
    let retrying = Retrying::new(fetch, RetryPolicy::default().with_attempts(1_000));
    block_on(async {
        let response = retrying.fetch(ByteRange::from(0)).await.unwrap();
        assert_eq!(response.validator, etag("a"));
        let mut body = response.body;
        let (mut got, mut errors) = (Vec::new(), Vec::new());
        while let Some(item) = body.next().await {
            match item {
                Ok(bytes) => got.extend_from_slice(&bytes),
                Err(error) => errors.push(error),
            }
        }
        assert_bytes(&got, &version(0, LEN)[..CUT], 0);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_changed_io(&errors[0]);
    });
    assert_eq!(calls.load(Ordering::SeqCst), 2, "the change is not retried");
}

// --- CachedSource over a resource that changes -------------------------------------------

/// What the resource is now.
#[derive(Clone)]
struct Current {
    data: Arc<Vec<u8>>,
    validator: Option<Validator>,
    /// Bodies fetched now wait for this before their first byte.
    gate: Option<Shared<oneshot::Receiver<()>>>,
}

/// A resource that changes when the test says; its fetch answers with what it is at the
/// time of the request, in pieces.
#[derive(Clone)]
struct Changing {
    current: Arc<Mutex<Current>>,
    fetches: Arc<AtomicUsize>,
}

impl Changing {
    fn new(data: Arc<Vec<u8>>, validator: Option<Validator>) -> Self {
        Self {
            current: Arc::new(Mutex::new(Current {
                data,
                validator,
                gate: None,
            })),
            fetches: Arc::default(),
        }
    }

    fn set(&self, current: Current) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = current;
    }

    fn change(&self, data: Arc<Vec<u8>>, validator: Option<Validator>) {
        self.set(Current {
            data,
            validator,
            gate: None,
        });
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    fn fetch(&self) -> impl Fetch<Error = io::Error> {
        let this = self.clone();
        move |range: ByteRange| {
            // Counted once it has seen what the resource is: a change after the count
            // shows comes after this fetch.
            let now = this.current.lock().unwrap().clone();
            let fetches = this.fetches.fetch_add(1, Ordering::SeqCst);
            assert!(fetches < 1_000, "runaway fetches");
            let len = now.data.len() as u64;
            let end = range.end.unwrap_or(len).min(len);
            let start = range.start.min(end);
            let pieces = chunks(&now.data[start as usize..end as usize], 4096);
            let body: BoxStream<'static, io::Result<Bytes>> = match now.gate {
                Some(gate) => gate
                    .into_stream()
                    .filter_map(|_| future::ready(None))
                    .chain(pieces)
                    .boxed(),
                None => pieces.boxed(),
            };
            future::ready(Ok::<_, io::Error>(
                RangeResponse::new(body)
                    .with_total_len(Some(len))
                    .with_start(Some(range.start))
                    .with_validator(now.validator),
            ))
        }
    }
}

fn store(look_ahead: u64) -> StoreParams {
    StoreParams::with_budget(1 << 20).with_look_ahead(look_ahead)
}

const CACHED_LEN: usize = 400_000;

#[test]
fn cached_change_after_bytes_were_served_fails_then_a_seek_serves_the_new_version_only() {
    hang_guard("versions_cached_changed", || {
        let (a, b) = (version(0, CACHED_LEN), version(1, CACHED_LEN));
        let resource = Changing::new(a.clone(), etag("a"));
        // A short look-ahead: the first fetch pauses not far ahead, still in flight.
        let source = CachedSource::new(resource.fetch(), store(64 << 10));
        let mut reader = blocking(source);
        let mut head = vec![0; 10_000];
        reader.read_exact(&mut head).unwrap();
        assert_bytes(&head, &a[..10_000], 0);

        resource.change(b.clone(), etag("b"));
        let (got, error) = seek_and_read(&mut reader, 300_000);
        assert!(got.is_empty(), "{} bytes after the change", got.len());
        assert_changed(error.as_ref());

        // The store was cleared and the first fetch, of the old version, dropped: every
        // byte from here on is of the new one.
        let (all, error) = seek_and_read(&mut reader, 0);
        assert!(error.is_none(), "{error:?}");
        assert_bytes(&all, &b, 0);
        let (again, error) = seek_and_read(&mut reader, 123_456);
        assert!(error.is_none(), "{error:?}");
        assert_bytes(&again, &b, 123_456);
    });
}

#[test]
fn cached_change_seen_by_a_prefetch_while_serving_held_bytes_fails_the_read() {
    hang_guard("versions_cached_prefetch", || {
        let (a, b) = (version(0, CACHED_LEN), version(1, CACHED_LEN));
        let resource = Changing::new(a.clone(), etag("a"));
        // One fetch at a time: the seek drops the first, leaving a hole after its bytes.
        let source = CachedSource::new(resource.fetch(), store(64 << 10).with_max_fetches(1));
        let watch = source.buffer_watch();
        let mut reader = blocking(source);
        let mut head = vec![0; 100_000];
        reader.read_exact(&mut head).unwrap();
        assert_bytes(&head, &a[..100_000], 0);
        let (tail, error) = seek_and_read(&mut reader, 300_000);
        assert!(error.is_none(), "{error:?}");
        assert_bytes(&tail, &a, 300_000);
        let held = watch.get().ranges;
        assert_eq!(
            held.len(),
            2,
            "a hole between the head and the tail: {held:?}"
        );
        let hole = held[0].end as usize;
        assert!(hole < 300_000, "{held:?}");

        // Served from the store until the prefetch of the hole meets the new version:
        // then the read fails, never passing a byte of the new version on after the old.
        resource.change(b.clone(), etag("b"));
        let (got, error) = seek_and_read(&mut reader, 0);
        assert_prefix(&got, &a, 0);
        assert!(got.len() <= hole, "{} bytes, the hole at {hole}", got.len());
        assert_changed(error.as_ref());

        let (all, error) = seek_and_read(&mut reader, 0);
        assert!(error.is_none(), "{error:?}");
        assert_bytes(&all, &b, 0);
    });
}

#[test]
fn cached_a_changed_length_is_a_change_async_reader() {
    hang_guard("versions_cached_length", || {
        const SHORTER: usize = 300_000;
        let (a, b) = (version(0, CACHED_LEN), version(1, SHORTER));
        // No validator at all: only the length tells.
        let resource = Changing::new(a.clone(), None);
        let source = CachedSource::new(resource.fetch(), store(64 << 10));
        let (engine, handle, stream) = Engine::build(source, params());
        std::thread::spawn(move || block_on(engine.run()));
        let mut reader = AsyncReader::new(stream, handle);
        block_on(async {
            let mut head = vec![0; 10_000];
            reader.read_exact(&mut head).await.unwrap();
            assert_bytes(&head, &a[..10_000], 0);
            assert_eq!(reader.byte_len(), Some(CACHED_LEN as u64));

            resource.change(b.clone(), None);
            let (got, error) = seek_and_read_async(&mut reader, 250_000).await;
            assert!(got.is_empty(), "{} bytes after the change", got.len());
            assert_changed(error.as_ref());

            let (all, error) = seek_and_read_async(&mut reader, 0).await;
            assert!(error.is_none(), "{error:?}");
            assert_bytes(&all, &b, 0);
            assert_eq!(reader.byte_len(), Some(SHORTER as u64));
        });
    });
}

#[test]
fn cached_a_change_before_any_byte_was_served_starts_over() {
    hang_guard("versions_cached_silent", || {
        let (a, b) = (version(0, CACHED_LEN), version(1, CACHED_LEN));
        let resource = Changing::new(a.clone(), etag("a"));
        // The first body holds its bytes back until the gate opens: nothing is served.
        let (open, gate) = oneshot::channel();
        resource.set(Current {
            data: a,
            validator: etag("a"),
            gate: Some(gate.shared()),
        });
        let source = CachedSource::new(resource.fetch(), store(64 << 10));
        let mut reader = blocking(source);
        // The open fetch asked for the old version.
        while resource.fetches() == 0 {
            std::thread::yield_now();
        }
        resource.change(b.clone(), etag("b"));
        assert_eq!(reader.seek(SeekFrom::Start(300_000)).unwrap(), 300_000);
        // The old version's body may deliver now (unless it was dropped already, and the
        // gate with it): none of it must be served.
        let _ = open.send(());
        let (tail, error) = read_all(&mut reader);
        assert!(error.is_none(), "{error:?}");
        assert_bytes(&tail, &b, 300_000);
        let (all, error) = seek_and_read(&mut reader, 0);
        assert!(error.is_none(), "{error:?}");
        assert_bytes(&all, &b, 0);
        assert!(resource.fetches() >= 3, "fetches: {}", resource.fetches());
    });
}
