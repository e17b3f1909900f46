//! What `RangeSource` checks in a response before a byte of it is passed on: a body that
//! ends short of the known length is an error, never the end; a response never lowers a
//! known length; a part that starts after the byte asked for is refused, one that starts
//! before is skipped forward; bytes past the length are dropped. In memory, and over a real
//! HTTP server on 127.0.0.1 with reqwest.

mod common;

use std::io::{self, ErrorKind, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use common::script_server::{Reply, ScriptServer};
use common::{hang_guard, pattern};
use futures::{AsyncReadExt, stream};
use kithara_stream::exec::block_on;
use kithara_stream::io::{AsyncReader, BlockingReader, stream_error};
use kithara_stream::sources::{ByteRange, Progress, RangeMismatch, RangeResponse, RangeSource};
use kithara_stream::{Engine, EngineSource, StreamError, StreamParams};

const LEN: u64 = 100_000;

fn data(len: u64) -> Vec<u8> {
    (0..len).map(pattern).collect()
}

fn params() -> StreamParams {
    StreamParams::default()
        .with_buffer_capacity(16 * 1024)
        .with_chunk_size(4096)
}

/// What a fetch of `range` answers, in memory: `body` from `start`, with `total`.
#[derive(Clone, Copy)]
struct Answer {
    start: Option<u64>,
    body_from: u64,
    body_to: u64,
    total: Option<u64>,
}

/// A source over `LEN` pattern bytes whose responses `answer(range, number)` describes.
fn memory_source(
    answer: impl Fn(ByteRange, usize) -> Answer + Send + Sync + 'static,
) -> impl EngineSource<Control = (), Error = io::Error, Event = Progress> {
    let data = Bytes::from(data(LEN + 1_000));
    let fetches = AtomicUsize::new(0);
    RangeSource::new(move |range: ByteRange| {
        let a = answer(range, fetches.fetch_add(1, Ordering::SeqCst));
        let body = data.slice(a.body_from as usize..a.body_to as usize);
        let pieces: Vec<io::Result<Bytes>> = (0..body.len())
            .step_by(3_000)
            .map(|at| Ok(body.slice(at..(at + 3_000).min(body.len()))))
            .collect();
        futures::future::ready(Ok(RangeResponse::new(stream::iter(pieces))
            .with_total_len(a.total)
            .with_start(a.start)))
    })
}

/// Reads to the end or the first error: the bytes read, and the error.
fn read_all(reader: &mut impl Read) -> (Vec<u8>, Option<io::Error>) {
    let mut all = Vec::new();
    let mut buf = vec![0; 7_000];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return (all, None),
            Ok(n) => all.extend_from_slice(&buf[..n]),
            Err(error) => return (all, Some(error)),
        }
    }
}

fn mismatch(error: &io::Error) -> Option<RangeMismatch> {
    match stream_error::<io::Error>(error)? {
        StreamError::Source(inner) => inner.get_ref()?.downcast_ref().copied(),
        _ => None,
    }
}

/// Starts the engine on its own thread; the blocking reader over it.
fn start<S>(source: S) -> BlockingReader<(), Progress, io::Error>
where
    S: EngineSource<Control = (), Event = Progress, Error = io::Error>,
{
    let (engine, handle, stream) = Engine::build(source, params());
    std::thread::spawn(move || block_on(engine.run()));
    BlockingReader::new(stream, handle)
}

/// The same source, read to the end or the first error by an `AsyncReader` on smol.
fn read_all_async<S>(source: S) -> (Vec<u8>, Option<io::Error>)
where
    S: EngineSource<Control = (), Event = Progress, Error = io::Error>,
{
    smol::block_on(async {
        let (engine, handle, stream) = Engine::build(source, params());
        let engine = smol::spawn(engine.run());
        let mut reader = AsyncReader::new(stream, handle);
        let mut all = Vec::new();
        let mut buf = vec![0; 7_000];
        let error = loop {
            match reader.read(&mut buf).await {
                Ok(0) => break None,
                Ok(n) => all.extend_from_slice(&buf[..n]),
                Err(error) => break Some(error),
            }
        };
        drop(reader);
        engine.await;
        (all, error)
    })
}

/// Defect: a body that stopped at 60 000 of a known 100 000 ended cleanly.
fn truncated_answer(range: ByteRange, _: usize) -> Answer {
    Answer {
        start: Some(range.start),
        body_from: range.start,
        body_to: 60_000,
        total: Some(LEN),
    }
}

#[test]
fn a_body_short_of_the_known_length_is_an_error_not_the_end() {
    hang_guard("truncated_blocking", || {
        let mut reader = start(memory_source(truncated_answer));
        let (bytes, error) = read_all(&mut reader);
        assert_eq!(bytes, data(60_000), "every byte before the cut arrives");
        let error = error.expect("a truncated body is an error");
        assert_eq!(
            mismatch(&error),
            Some(RangeMismatch::Truncated {
                at: 60_000,
                expected: LEN
            })
        );
        // The error is not `UnexpectedEof`, which decoders take for the end of the data.
        assert_eq!(error.kind(), ErrorKind::Other);
        // A seek to the byte reached resumes.
        assert_eq!(reader.seek(SeekFrom::Start(60_000)).unwrap(), 60_000);
    });
    hang_guard("truncated_async", || {
        let (bytes, error) = read_all_async(memory_source(truncated_answer));
        assert_eq!(bytes, data(60_000));
        assert!(matches!(
            error.as_ref().and_then(mismatch),
            Some(RangeMismatch::Truncated { at: 60_000, .. })
        ));
    });
}

/// Defect: a seek's response that reported the remaining length as the total shrank the
/// known length, and a later seek inside the real length read nothing.
#[test]
fn a_response_never_lowers_the_known_length() {
    hang_guard("never_lowers", || {
        let source = memory_source(|range, _| Answer {
            start: Some(range.start),
            body_from: range.start,
            body_to: LEN,
            // What the old recipe computed for a `206 bytes a-b/*`: the part's length.
            total: Some(LEN - range.start),
        });
        let mut reader = start(source);
        let mut head = [0; 10];
        reader.read_exact(&mut head).unwrap();
        assert_eq!(reader.byte_len(), Some(LEN));
        reader.seek(SeekFrom::Start(5_000)).unwrap();
        let mut some = vec![0; 10_000];
        reader.read_exact(&mut some).unwrap();
        assert_eq!(some, &data(LEN)[5_000..15_000]);
        assert_eq!(
            reader.byte_len(),
            Some(LEN),
            "a part's length is not the total"
        );
        assert_eq!(reader.seek(SeekFrom::Start(70_000)).unwrap(), 70_000);
        let (rest, error) = read_all(&mut reader);
        assert!(error.is_none(), "{error:?}");
        assert_eq!(rest, &data(LEN)[70_000..]);
    });
}

#[test]
fn a_part_that_starts_after_the_byte_asked_for_is_refused() {
    hang_guard("wrong_start", || {
        let source = memory_source(|range, _| Answer {
            start: Some(range.start + 100),
            body_from: range.start + 100,
            body_to: LEN,
            total: Some(LEN),
        });
        let mut reader = start(source);
        let mut byte = [0];
        let error = reader.read(&mut byte).unwrap_err();
        assert_eq!(
            mismatch(&error),
            Some(RangeMismatch::WrongStart { asked: 0, got: 100 })
        );
    });
}

#[test]
fn a_whole_body_for_a_later_range_is_skipped_to_the_byte_asked_for() {
    hang_guard("skip_forward", || {
        // A server that ignores `Range`: every answer is the whole resource from 0.
        let source = memory_source(|_, _| Answer {
            start: Some(0),
            body_from: 0,
            body_to: LEN,
            total: Some(LEN),
        });
        let mut reader = start(source);
        assert_eq!(reader.seek(SeekFrom::Start(50_001)).unwrap(), 50_001);
        let (rest, error) = read_all(&mut reader);
        assert!(error.is_none(), "{error:?}");
        assert_eq!(rest, &data(LEN)[50_001..]);
    });
}

#[test]
fn bytes_past_the_known_length_are_dropped() {
    hang_guard("past_length", || {
        let source = memory_source(|range, _| Answer {
            start: Some(range.start),
            body_from: range.start,
            body_to: LEN + 1_000,
            total: Some(LEN),
        });
        let (all, error) = read_all(&mut start(source));
        assert!(error.is_none(), "{error:?}");
        assert_eq!(all, data(LEN));
    });
}

#[test]
fn a_clean_end_without_a_known_length_is_the_length() {
    hang_guard("unknown_length", || {
        let source = memory_source(|range, _| Answer {
            start: None,
            body_from: range.start,
            body_to: LEN,
            total: None,
        });
        let mut reader = start(source);
        assert_eq!(reader.byte_len(), None);
        let (all, error) = read_all(&mut reader);
        assert!(error.is_none(), "{error:?}");
        assert_eq!(all, data(LEN));
        assert_eq!(reader.byte_len(), Some(LEN));
        assert_eq!(reader.seek(SeekFrom::End(-10)).unwrap(), LEN - 10);
        let (tail, _) = read_all(&mut reader);
        assert_eq!(tail, &data(LEN)[(LEN - 10) as usize..]);
    });
}

// Over a real HTTP server and reqwest, with the recipe of the docs.

fn http(server: &ScriptServer) -> (BlockingReader<(), Progress, io::Error>, Arc<AtomicUsize>) {
    let requests = Arc::new(AtomicUsize::new(0));
    let source = common::http::reqwest_source(server.url("track"), requests.clone());
    let rt = common::tokio_runtime();
    let (engine, handle, stream) = Engine::build(source, params());
    std::thread::spawn(move || rt.block_on(engine.run()));
    (BlockingReader::new(stream, handle), requests)
}

#[test]
fn http_chunked_body_short_of_its_content_range_is_an_error() {
    hang_guard("http_truncated", || {
        let resource = data(LEN);
        let server = ScriptServer::start(move |request| {
            let full = Reply::range(&resource, request);
            let keep = full.body.len() - 40_000;
            // A well-framed chunked body that ends cleanly, 40 000 bytes short.
            full.chunked().with_body(resource[..keep].to_vec())
        });
        let (mut reader, _) = http(&server);
        let (bytes, error) = read_all(&mut reader);
        assert_eq!(bytes, data(60_000));
        let error = error.expect("the short body is an error");
        assert_eq!(
            mismatch(&error),
            Some(RangeMismatch::Truncated {
                at: 60_000,
                expected: LEN
            })
        );
    });
}

#[test]
fn http_206_with_an_unknown_total_keeps_the_length() {
    hang_guard("http_unknown_total", || {
        let resource = data(LEN);
        let server = ScriptServer::start(move |request| match request.range {
            Some((first, _)) if first > 0 => {
                let last = LEN - 1;
                Reply::status(
                    206,
                    resource[first as usize..].to_vec(),
                    &[("Content-Range", format!("bytes {first}-{last}/*"))],
                )
            }
            _ => Reply::status(200, resource.clone(), &[]),
        });
        let (mut reader, requests) = http(&server);
        let mut head = [0; 10];
        reader.read_exact(&mut head).unwrap();
        assert_eq!(reader.byte_len(), Some(LEN));
        reader.seek(SeekFrom::Start(5_000)).unwrap();
        reader.read_exact(&mut head).unwrap();
        assert_eq!(head, &data(LEN)[5_000..5_010]);
        assert_eq!(reader.seek(SeekFrom::Start(70_000)).unwrap(), 70_000);
        let (rest, error) = read_all(&mut reader);
        assert!(error.is_none(), "{error:?}");
        assert_eq!(rest, &data(LEN)[70_000..]);
        assert_eq!(reader.byte_len(), Some(LEN));
        assert_eq!(requests.load(Ordering::SeqCst), 3);
    });
}

#[test]
fn http_server_that_ignores_range_is_skipped_forward() {
    hang_guard("http_ignores_range", || {
        let resource = data(LEN);
        let server = ScriptServer::start(move |_| Reply::status(200, resource.clone(), &[]));
        let (mut reader, _) = http(&server);
        reader.seek(SeekFrom::Start(77_777)).unwrap();
        let (rest, error) = read_all(&mut reader);
        assert!(error.is_none(), "{error:?}");
        assert_eq!(rest, &data(LEN)[77_777..]);
    });
}

#[test]
fn http_206_that_starts_elsewhere_is_refused() {
    hang_guard("http_wrong_start", || {
        let resource = data(LEN);
        let server = ScriptServer::start(move |request| {
            let first = request.range.map_or(0, |(first, _)| first + 10);
            Reply::status(
                206,
                resource[first as usize..].to_vec(),
                &[("Content-Range", format!("bytes {first}-{}/{LEN}", LEN - 1))],
            )
        });
        let (mut reader, _) = http(&server);
        let error = reader.read(&mut [0; 10]).unwrap_err();
        assert_eq!(
            mismatch(&error),
            Some(RangeMismatch::WrongStart { asked: 0, got: 10 })
        );
    });
}

#[test]
fn http_206_longer_than_its_content_range_is_cut_at_the_length() {
    hang_guard("http_longer", || {
        let resource = data(LEN + 500);
        let server = ScriptServer::start(move |request| {
            let first = request.range.map_or(0, |(first, _)| first);
            Reply::status(
                206,
                resource[first as usize..].to_vec(),
                &[("Content-Range", format!("bytes {first}-{}/{LEN}", LEN - 1))],
            )
        });
        let (mut reader, _) = http(&server);
        let (all, error) = read_all(&mut reader);
        assert!(error.is_none(), "{error:?}");
        assert_eq!(all, data(LEN));
    });
}
