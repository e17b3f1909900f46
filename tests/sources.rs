//! The ready-made sources: `AsyncReadSource` (files), `StreamSource` (live streams) and
//! `RangeSource` (range requests), with their `Progress` events and reported lengths.

mod common;

use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use common::{TempFile, hang_guard, pattern};
use futures::{AsyncReadExt, AsyncSeekExt, StreamExt, stream};
use kithara_stream::exec::block_on;
use kithara_stream::io::{AsyncReader, BlockingReader, SideMsg, stream_error};
use kithara_stream::sources::{
    AsyncReadSource, ByteRange, Progress, RangeResponse, RangeSource, StreamSource,
    content_range_total, range_header,
};
use kithara_stream::{Engine, EngineSource, StreamError, StreamMsg, StreamParams};

fn data(len: u64) -> Vec<u8> {
    (0..len).map(pattern).collect()
}

fn params() -> StreamParams {
    StreamParams::default()
        .with_buffer_capacity(16 * 1024)
        .with_chunk_size(4096)
}

fn progress_of(messages: Vec<SideMsg<(), Progress>>) -> Vec<Progress> {
    messages
        .into_iter()
        .map(|msg| match msg {
            SideMsg::Event(progress) => progress,
            SideMsg::Control(()) => panic!("no controls from this source"),
        })
        .collect()
}

#[test]
fn async_read_source_reads_a_file_under_smol() {
    hang_guard("async_read_source_file", || {
        let expected = data(200_000);
        let file = TempFile::new("async-read-source", &expected);
        let path = file.0.clone();
        let source = AsyncReadSource::new(move || smol::fs::File::open(path.clone()))
            .with_chunk_size(10_000);
        assert!(source.supports_seek());
        smol::block_on(async {
            let (engine, handle, stream) = Engine::build(source, params());
            let engine = smol::spawn(engine.run());
            let mut reader = AsyncReader::new(stream, handle);
            let mut all = Vec::new();
            reader.read_to_end(&mut all).await.unwrap();
            assert_eq!(all, expected);
            assert_eq!(reader.byte_len(), Some(200_000));
            let events = progress_of(reader.take_messages());
            // One event per read; a read may return fewer than 10 000 bytes.
            assert!(events.len() >= 20, "{} events", events.len());
            assert!(events.windows(2).all(|w| w[0].fetched_to < w[1].fetched_to));
            assert!(
                events
                    .iter()
                    .all(|p| p.fetched_from == 0 && p.total == Some(200_000))
            );
            assert_eq!(
                events.last().map(|p| SideMsg::<(), _>::Event(*p)).as_ref(),
                Some(&SideMsg::Event(Progress {
                    fetched_from: 0,
                    fetched_to: 200_000,
                    total: Some(200_000)
                }))
            );

            assert_eq!(reader.seek(SeekFrom::End(-5_000)).await.unwrap(), 195_000);
            let mut tail = Vec::new();
            reader.read_to_end(&mut tail).await.unwrap();
            assert_eq!(tail, &expected[195_000..]);
            let events = progress_of(reader.take_messages());
            assert!(events.iter().all(|p| p.fetched_from == 195_000));
            assert_eq!(
                events.last(),
                Some(&Progress {
                    fetched_from: 195_000,
                    fetched_to: 200_000,
                    total: Some(200_000)
                })
            );
            drop(reader);
            engine.await;
            drop(file);
        });
    });
}

#[test]
fn async_read_source_open_error_is_a_source_error() {
    hang_guard("async_read_source_open_error", || {
        let source = AsyncReadSource::new(|| smol::fs::File::open("/nonexistent/kithara/file"));
        let (engine, handle, stream) = Engine::build(source, params());
        std::thread::spawn(move || block_on(engine.run()));
        let mut reader = BlockingReader::new(stream, handle);
        let error = reader.read(&mut [0; 8]).unwrap_err();
        let inner = stream_error::<std::io::Error>(&error).expect("a stream error inside");
        assert_eq!(inner.as_source().unwrap().kind(), ErrorKind::NotFound);
    });
}

#[test]
fn stream_source_passes_a_live_stream_and_its_error() {
    hang_guard("stream_source_live", || {
        let chunks = vec![
            Ok(Bytes::from_static(b"one ")),
            Ok(Bytes::new()),
            Ok(Bytes::from_static(b"two ")),
            Err(std::io::Error::other("connection reset")),
            Ok(Bytes::from_static(b"never")),
        ];
        let source = StreamSource::new(stream::iter(chunks));
        assert!(!source.supports_seek());
        let (engine, handle, stream) = Engine::build(source, params());
        assert!(!handle.supports_seek());
        let consumer = stream.collect::<Vec<_>>();
        let ((), items) =
            futures::executor::block_on(futures::future::join(engine.run(), consumer));
        let progress = |to| -> Result<StreamMsg<(), Progress>, StreamError<std::io::Error>> {
            Ok(StreamMsg::Event(Progress {
                fetched_from: 0,
                fetched_to: to,
                total: None,
            }))
        };
        assert_eq!(items.len(), 5);
        assert_eq!(
            items[0].as_ref().unwrap(),
            &StreamMsg::Data(Bytes::from_static(b"one "))
        );
        assert_eq!(format!("{:?}", items[1]), format!("{:?}", progress(4)));
        assert_eq!(
            items[2].as_ref().unwrap(),
            &StreamMsg::Data(Bytes::from_static(b"two "))
        );
        assert_eq!(format!("{:?}", items[3]), format!("{:?}", progress(8)));
        assert!(
            matches!(&items[4], Err(StreamError::Source(e)) if e.to_string() == "connection reset")
        );
    });
}

/// An in-memory range source that counts its fetches.
type Pieces = stream::Iter<std::vec::IntoIter<std::io::Result<Bytes>>>;
type Fetched = futures::future::Ready<std::io::Result<RangeResponse<Pieces>>>;

fn memory_range_source(
    data: Bytes,
    fetches: Arc<AtomicUsize>,
) -> RangeSource<impl Fn(ByteRange) -> Fetched + Send + Sync + 'static> {
    RangeSource::new(move |range: ByteRange| {
        fetches.fetch_add(1, Ordering::SeqCst);
        let body = data.slice(range.start as usize..);
        let total = data.len() as u64;
        // Deliver the body in pieces, as a network would.
        let pieces: Vec<_> = (0..body.len())
            .step_by(3_000)
            .map(|at| Ok(body.slice(at..(at + 3_000).min(body.len()))))
            .collect();
        futures::future::ready(Ok(
            RangeResponse::new(stream::iter(pieces)).with_total_len(Some(total))
        ))
    })
}

#[test]
fn range_source_reports_its_length_and_seeks() {
    hang_guard("range_source_seeks", || {
        let expected = Bytes::from(data(100_000));
        let fetches = Arc::new(AtomicUsize::new(0));
        let source = memory_range_source(expected.clone(), fetches.clone());
        let watch = source.progress_watch();
        let (engine, handle, stream) = Engine::build(source, params());
        std::thread::spawn(move || block_on(engine.run()));
        let mut reader = BlockingReader::new(stream, handle);
        // The length is learned from the first response: End works as a first call.
        assert_eq!(reader.seek(SeekFrom::End(-1_000)).unwrap(), 99_000);
        assert_eq!(reader.byte_len(), Some(100_000));
        let mut tail = Vec::new();
        reader.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, &expected[99_000..]);
        assert_eq!(fetches.load(Ordering::SeqCst), 2, "open, then the seek");
        assert_eq!(
            watch.get(),
            Progress {
                fetched_from: 99_000,
                fetched_to: 100_000,
                total: Some(100_000)
            },
            "the watch shows the latest fetch"
        );

        // Past the known end: the end of data, without a request.
        assert_eq!(reader.seek(SeekFrom::Start(150_000)).unwrap(), 150_000);
        assert_eq!(reader.read(&mut [0; 10]).unwrap(), 0);
        assert_eq!(fetches.load(Ordering::SeqCst), 2);

        reader.seek(SeekFrom::Start(10_000)).unwrap();
        reader.take_messages();
        let mut some = vec![0; 6_000];
        reader.read_exact(&mut some).unwrap();
        assert_eq!(some, &expected[10_000..16_000]);
        let fetched = watch.get();
        assert_eq!(fetched.fetched_from, 10_000);
        assert!(
            fetched.fetched_to >= 16_000,
            "fetched at least what was read: {fetched:?}"
        );
        let first_event = reader.take_messages().into_iter().next();
        assert_eq!(
            first_event,
            Some(SideMsg::Event(Progress {
                fetched_from: 10_000,
                fetched_to: 13_000,
                total: Some(100_000)
            }))
        );
    });
}

#[test]
fn range_header_helpers() {
    assert_eq!(range_header(0), "bytes=0-");
    assert_eq!(content_range_total("bytes 0-0/44"), Some(44));
    assert_eq!(content_range_total("items 0-0/44"), None);
    assert_eq!(content_range_total("bytes 0-9/x"), None);
}
