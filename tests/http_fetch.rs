//! `HttpFetch` (`reqwest` feature) against a scripted HTTP server on 127.0.0.1: range
//! requests, the validator sent as `If-Range` and checked, a 200 for a later range refused,
//! statuses classified for the retry policy.

mod common;

use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::script_server::{Reply, ScriptServer};
use common::{hang_guard, pattern};
use kithara_stream::io::{BlockingReader, stream_error};
use kithara_stream::sources::{
    CachedSource, HttpError, HttpFetch, RangeSource, RetryPolicy, Retrying, StoreParams, Validator,
};
use kithara_stream::{Engine, EngineSource, StreamError, StreamParams};

const LEN: usize = 600_000;

fn data() -> Arc<Vec<u8>> {
    Arc::new((0..LEN as u64).map(pattern).collect())
}

fn policy() -> RetryPolicy {
    RetryPolicy::default()
        .with_attempts(3)
        .with_backoff(Duration::from_millis(5), Duration::from_millis(50))
        .with_timer(tokio::time::sleep)
}

fn reader<S>(rt: &tokio::runtime::Runtime, source: S) -> BlockingReader<(), S::Event, HttpError>
where
    S: EngineSource<Control = (), Error = HttpError>,
{
    let (engine, handle, stream) = Engine::build(source, StreamParams::default());
    rt.spawn(engine.run());
    BlockingReader::new(stream, handle)
}

fn http_error(error: &std::io::Error) -> &HttpError {
    match stream_error::<HttpError>(error) {
        Some(StreamError::Source(inner)) => inner,
        other => panic!("not a source error: {other:?}"),
    }
}

/// Serves `resource` with an ETag; logs each request's `If-Range`.
fn tagged(resource: Arc<Vec<u8>>, log: Arc<Mutex<Vec<Option<String>>>>) -> ScriptServer {
    ScriptServer::start(move |request| {
        log.lock().unwrap().push(request.if_range.clone());
        let mut reply = Reply::range(&resource, request);
        reply.head.push_str("\r\nETag: \"v1\"");
        reply
    })
}

#[test]
fn reads_and_seeks_with_the_validator_sent_back() {
    hang_guard("http_fetch_reads", || {
        let resource = data();
        let log = Arc::default();
        let server = tagged(resource.clone(), Arc::clone(&log));
        let rt = common::tokio_runtime();
        let fetch = HttpFetch::new(reqwest::Client::new(), server.url("track"));
        let watch = fetch.clone();
        let source = CachedSource::new(Retrying::new(fetch, policy()), StoreParams::with_budget(0));
        let mut reader = reader(&rt, source);
        let mut head = vec![0; 1_000];
        reader.read_exact(&mut head).unwrap();
        assert_eq!(head, resource[..1_000]);
        reader.seek(SeekFrom::Start(400_000)).unwrap();
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, resource[400_000..]);
        assert_eq!(reader.byte_len(), Some(LEN as u64));
        assert_eq!(watch.validator(), Some(Validator::ETag("\"v1\"".into())));
        let log = log.lock().unwrap();
        assert_eq!(log[0], None, "nothing known yet");
        assert!(
            log[1..].iter().all(|v| v.as_deref() == Some("\"v1\"")),
            "{log:?}"
        );
    });
}

#[test]
fn a_changed_resource_is_refused() {
    hang_guard("http_fetch_changed", || {
        let resource = data();
        let server = ScriptServer::start(move |request| {
            let mut reply = Reply::range(&resource, request);
            reply
                .head
                .push_str(&format!("\r\nETag: \"v{}\"", request.number));
            reply
        });
        let rt = common::tokio_runtime();
        let fetch = HttpFetch::new(reqwest::Client::new(), server.url("track"));
        let mut reader = reader(&rt, RangeSource::new(Retrying::new(fetch, policy())));
        reader.read_exact(&mut [0; 10]).unwrap();
        let error = reader.seek(SeekFrom::Start(300_000)).unwrap_err();
        assert!(matches!(http_error(&error), HttpError::Changed), "{error}");
        assert_eq!(server.requests(), 2, "not retried");
    });
}

#[test]
fn a_200_for_a_later_range_is_refused() {
    hang_guard("http_fetch_200", || {
        let resource = data();
        let server = ScriptServer::start(move |_| Reply::status(200, resource.to_vec(), &[]));
        let rt = common::tokio_runtime();
        let fetch = HttpFetch::new(reqwest::Client::new(), server.url("track"));
        let mut reader = reader(&rt, RangeSource::new(Retrying::new(fetch, policy())));
        reader.read_exact(&mut [0; 10]).unwrap();
        let error = reader.seek(SeekFrom::Start(300_000)).unwrap_err();
        assert!(
            matches!(
                http_error(&error),
                HttpError::RangeIgnored { asked: 300_000 }
            ),
            "{error}"
        );
    });
}

#[test]
fn statuses_are_classified() {
    hang_guard("http_fetch_status", || {
        let resource = data();
        // 503 once, then the resource: retried.
        let served = resource.clone();
        let server = ScriptServer::start(move |request| match request.number {
            0 => Reply::status(503, Vec::new(), &[]),
            _ => Reply::range(&served, request),
        });
        let rt = common::tokio_runtime();
        let fetch = HttpFetch::new(reqwest::Client::new(), server.url("track"));
        let mut all = Vec::new();
        reader(&rt, RangeSource::new(Retrying::new(fetch, policy())))
            .read_to_end(&mut all)
            .unwrap();
        assert_eq!(all, *resource);
        assert_eq!(server.requests(), 2);

        // 404: at once.
        let server = ScriptServer::start(|_| Reply::status(404, Vec::new(), &[]));
        let fetch = HttpFetch::new(reqwest::Client::new(), server.url("track"));
        let error = reader(&rt, RangeSource::new(Retrying::new(fetch, policy())))
            .read(&mut [0; 10])
            .unwrap_err();
        assert!(
            matches!(http_error(&error), HttpError::Status(s) if s.status == 404),
            "{error}"
        );
        assert_eq!(server.requests(), 1);
    });
}

#[test]
fn a_cut_body_is_resumed() {
    hang_guard("http_fetch_cut", || {
        let resource = data();
        let served = resource.clone();
        let server = ScriptServer::start(move |request| {
            let reply = Reply::range(&served, request);
            if request.number == 0 {
                reply.cut_after(250_000)
            } else {
                reply
            }
        });
        let rt = common::tokio_runtime();
        let fetch = HttpFetch::new(reqwest::Client::new(), server.url("track"));
        let mut all = Vec::new();
        reader(&rt, RangeSource::new(Retrying::new(fetch, policy())))
            .read_to_end(&mut all)
            .unwrap();
        assert_eq!(all, *resource);
        assert_eq!(server.requests(), 2);
        assert_eq!(server.body_bytes(), LEN as u64);
    });
}

/// A server that answers every request with the whole resource, chunked (no length): a
/// valid answer to a range request from 0.
#[test]
fn a_chunked_whole_resource_reads_to_a_clean_end_through_the_store() {
    hang_guard("review_chunked_200", || {
        let resource: Arc<Vec<u8>> = Arc::new((0..100_000u64).map(pattern).collect());
        let served = resource.clone();
        let server =
            ScriptServer::start(move |_| Reply::status(200, served.to_vec(), &[]).chunked());
        let rt = common::tokio_runtime();
        let fetch = HttpFetch::new(reqwest::Client::new(), server.url("track"));
        let source = CachedSource::new(
            Retrying::new(fetch, policy()),
            StoreParams::with_budget(1 << 20),
        );
        let (engine, handle, stream) = Engine::build(source, StreamParams::default());
        rt.spawn(engine.run());
        let mut reader = BlockingReader::new(stream, handle);
        let mut all = Vec::new();
        let result = reader.read_to_end(&mut all);
        assert_eq!(all, *resource);
        result.expect("a clean end");
    });
}

/// A server that evaluates `If-Range` as RFC 9110 13.1.5 says: a weak entity tag never
/// matches, so the range is ignored and the whole resource comes back (200).
#[test]
fn a_weak_etag_is_not_sent_as_if_range() {
    hang_guard("review_weak_etag", || {
        let resource: Arc<Vec<u8>> = Arc::new((0..600_000u64).map(pattern).collect());
        let served = resource.clone();
        let server = ScriptServer::start(move |request| {
            let mut reply = match &request.if_range {
                Some(tag) if tag.starts_with("W/") => Reply::status(200, served.to_vec(), &[]),
                _ => Reply::range(&served, request),
            };
            reply.head.push_str("\r\nETag: W/\"v1\"");
            reply
        });
        let rt = common::tokio_runtime();
        let fetch = HttpFetch::new(reqwest::Client::new(), server.url("track"));
        let source = kithara_stream::sources::RangeSource::new(Retrying::new(fetch, policy()));
        let (engine, handle, stream) = Engine::build(source, StreamParams::default());
        rt.spawn(engine.run());
        let mut reader = BlockingReader::new(stream, handle);
        reader.read_exact(&mut [0; 10]).unwrap();
        reader
            .seek(SeekFrom::Start(300_000))
            .expect("the seek to work");
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, resource[300_000..]);
    });
}

/// A server that ignores `Range` (200 with the whole resource, with its length): the
/// prefetch of the next hole fails with `RangeIgnored`, is dropped silently, and is started
/// again after every chunk served.
#[test]
fn a_failing_prefetch_is_not_restarted_after_every_chunk() {
    hang_guard("review_prefetch_storm", || {
        let resource: Arc<Vec<u8>> = Arc::new((0..(3u64 << 20)).map(pattern).collect());
        let served = resource.clone();
        let server = ScriptServer::start(move |_| Reply::status(200, served.to_vec(), &[]));
        let rt = common::tokio_runtime();
        let fetch = HttpFetch::new(reqwest::Client::new(), server.url("track"));
        let source = CachedSource::new(
            Retrying::new(fetch, policy()),
            StoreParams::with_budget(1 << 20),
        )
        // Known from a playlist, say: each hole's fetch then has an end.
        .with_total_len(3 << 20);
        let (engine, handle, stream) = Engine::build(
            source,
            StreamParams::default()
                .with_buffer_capacity(64 * 1024)
                .with_chunk_size(16 * 1024),
        );
        rt.spawn(engine.run());
        let mut reader = BlockingReader::new(stream, handle);
        let mut all = Vec::new();
        let mut buf = vec![0; 16 * 1024];
        let error = loop {
            match reader.read(&mut buf) {
                Ok(0) => panic!("end"),
                Ok(n) => all.extend_from_slice(&buf[..n]),
                Err(error) => break error,
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        assert!(
            matches!(http_error(&error), HttpError::RangeIgnored { .. }),
            "{error}"
        );
        assert!(!all.is_empty());
        assert!(server.requests() <= 3, "{} requests", server.requests());
    });
}
