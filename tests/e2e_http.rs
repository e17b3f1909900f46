//! End to end, with real parts: an HTTP server on 127.0.0.1 (axum + tower-http's `ServeFile`,
//! which answers Range requests) serving a generated WAV; reqwest through `RangeSource`, the
//! engine and the byte adapters; symphonia decoding. Every server is started by its test and
//! stopped with the test's runtime.

mod common;

use std::io::{self, ErrorKind, Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::wav::{self, Decoded, HEADER_LEN};
use common::{TempFile, hang_guard};
use futures::{AsyncReadExt, AsyncSeekExt};
use kithara_stream::io::{AsyncReader, BlockingReader, stream_error};
use kithara_stream::{Engine, StreamParams};
use symphonia::core::io::MediaSource;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Asserts `a == b` without printing kilobytes: names the first differing byte.
#[track_caller]
fn assert_same(a: &[u8], b: &[u8], what: &str) {
    if let Some(at) = a.iter().zip(b).position(|(x, y)| x != y) {
        panic!("{what}: bytes differ at {at}");
    }
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
}

const FRAMES: u64 = 60_000; // 7.5 s at 8 kHz: 120 KB of samples

fn params() -> StreamParams {
    // Smaller than the file, so that the engine streams under backpressure.
    StreamParams::default()
        .with_buffer_capacity(32 * 1024)
        .with_chunk_size(8 * 1024)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Serves `file` at `/audio.wav` on 127.0.0.1 with axum and tower-http's `ServeFile`, on
/// `rt`; stops when `rt` is dropped.
fn serve_file(rt: &tokio::runtime::Runtime, file: &TempFile) -> SocketAddr {
    let app = axum::Router::new()
        .route_service("/audio.wav", tower_http::services::ServeFile::new(&file.0));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await.expect("server") });
    addr
}

#[test]
fn e2e_http_range_source_blocking_reader_symphonia() {
    hang_guard("e2e_http_blocking_symphonia", || {
        let bytes = wav::wav(FRAMES);
        let file = TempFile::new("e2e-blocking.wav", &bytes);
        let rt = runtime();
        let addr = serve_file(&rt, &file);
        let requests = Arc::new(AtomicUsize::new(0));
        let source =
            common::http::reqwest_source(format!("http://{addr}/audio.wav"), requests.clone());
        let (engine, handle, stream) = Engine::build(source, params());
        rt.spawn(engine.run());

        let reader = BlockingReader::new(stream, handle);
        // The probe gets a forward-only source: it cannot seek to the end of the download.
        let switch = reader.seek_switch();
        switch.set(false);
        assert!(!MediaSource::is_seekable(&reader));
        let mut decoded = Decoded::open(Box::new(reader));
        assert_eq!(
            requests.load(Ordering::SeqCst),
            1,
            "the probe made no range request"
        );
        switch.set(true);
        let track = decoded.format.default_track().unwrap();
        assert_eq!(
            track.codec_params.n_frames,
            Some(FRAMES),
            "the header came through"
        );

        // The first second, in order.
        let mut frames = 0;
        while frames < 8_000 {
            let (ts, samples) = decoded.next().expect("a packet");
            assert_eq!(ts, frames);
            let want: Vec<i16> = (ts..ts + samples.len() as u64).map(wav::sample).collect();
            assert_eq!(samples, want);
            frames += samples.len() as u64;
        }
        // Forward, back, and to the end: the decoded samples are the generated ones.
        let mut after_seek = 0;
        for target in [45_000, 3_000, FRAMES - 100] {
            let at = decoded.seek(target);
            assert!(
                at <= target && target - at < 2_000,
                "seeked to {at} for {target}"
            );
            let (ts, samples) = decoded.next().expect("a packet after the seek");
            assert_eq!(ts, at);
            let want: Vec<i16> = (ts..ts + samples.len() as u64).map(wav::sample).collect();
            assert_eq!(samples, want, "after the seek to {target}");
            after_seek = ts + samples.len() as u64;
        }
        // Every sample from there to the end of the file, and not one more.
        let rest = decoded.check_to_end();
        assert_eq!(decoded.frames, FRAMES);
        assert_eq!(rest, FRAMES - after_seek, "the samples after {after_seek}");
        assert!(
            requests.load(Ordering::SeqCst) >= 4,
            "open and three range requests"
        );
        drop(decoded);
        drop(rt);
    });
}

#[test]
fn e2e_http_async_reader_under_smol() {
    hang_guard("e2e_http_async_reader_smol", || {
        let bytes = wav::wav(FRAMES);
        let file = TempFile::new("e2e-smol.wav", &bytes);
        // The producer (reqwest) needs tokio's reactor; the consumer runs on smol.
        let rt = runtime();
        let addr = serve_file(&rt, &file);
        let source =
            common::http::reqwest_source(format!("http://{addr}/audio.wav"), Arc::default());
        let (engine, handle, stream) = Engine::build(source, params());
        rt.spawn(engine.run());

        let all = smol::block_on(async {
            let mut reader = AsyncReader::new(stream, handle);
            let mut all = Vec::new();
            reader.read_to_end(&mut all).await.unwrap();
            assert_eq!(reader.byte_len(), Some(bytes.len() as u64));

            let middle = (HEADER_LEN + 50_000) as u64;
            assert_eq!(reader.seek(SeekFrom::Start(middle)).await.unwrap(), middle);
            let mut some = vec![0; 10_000];
            reader.read_exact(&mut some).await.unwrap();
            assert_same(
                &some,
                &bytes[middle as usize..middle as usize + 10_000],
                "after a seek",
            );

            assert_eq!(
                reader.seek(SeekFrom::End(-200)).await.unwrap(),
                bytes.len() as u64 - 200
            );
            let mut tail = Vec::new();
            reader.read_to_end(&mut tail).await.unwrap();
            assert_same(&tail, &bytes[bytes.len() - 200..], "the tail");

            reader.seek(SeekFrom::Start(0)).await.unwrap();
            let mut again = Vec::new();
            reader.read_to_end(&mut again).await.unwrap();
            assert_same(&again, &all, "a second read from 0");
            all
        });
        assert_same(&all, &bytes, "the whole file");
        // What came through decodes to the generated samples.
        let mut decoded = Decoded::open(Box::new(io::Cursor::new(all)));
        assert_eq!(decoded.check_to_end(), FRAMES);
        drop(rt);
    });
}

/// A minimal HTTP/1.1 server that answers `Range: bytes=N-` with `206`, and cuts the first
/// response off halfway through its body.
fn serve_flaky(rt: &tokio::runtime::Runtime, body: Arc<Vec<u8>>) -> SocketAddr {
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        let mut first = true;
        loop {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut request = Vec::new();
            let mut buf = [0; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.expect("read request");
                assert!(n > 0, "request cut short");
                request.extend_from_slice(&buf[..n]);
            }
            let request = String::from_utf8_lossy(&request).to_lowercase();
            let start: usize = request
                .lines()
                .find_map(|line| line.strip_prefix("range: bytes="))
                .and_then(|range| range.trim_end_matches('-').parse().ok())
                .unwrap_or(0);
            let len = body.len();
            let head = format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {start}-{}/{len}\r\nConnection: close\r\n\r\n",
                len - start,
                len - 1
            );
            socket.write_all(head.as_bytes()).await.unwrap();
            let end = if first { start + (len - start) / 2 } else { len };
            first = false;
            socket.write_all(&body[start..end]).await.unwrap();
            socket.shutdown().await.unwrap();
            // Dropping the socket closes the connection: mid-body for the first response.
        }
    });
    addr
}

#[test]
fn e2e_http_dropped_connection_is_a_source_error_and_a_seek_resumes() {
    hang_guard("e2e_http_dropped_connection", || {
        let bytes = Arc::new(wav::wav(FRAMES));
        let rt = runtime();
        let addr = serve_flaky(&rt, bytes.clone());
        let requests = Arc::new(AtomicUsize::new(0));
        let source =
            common::http::reqwest_source(format!("http://{addr}/audio.wav"), requests.clone());
        let (engine, handle, stream) = Engine::build(source, params());
        rt.spawn(engine.run());

        let mut reader = BlockingReader::new(stream, handle);
        let mut received = Vec::new();
        let error = reader.read_to_end(&mut received).unwrap_err();
        assert_same(
            &received,
            &bytes[..received.len()],
            "the bytes before the drop",
        );
        assert_eq!(received.len(), bytes.len() / 2, "half the body came");
        assert_eq!(error.kind(), ErrorKind::Other);
        let inner = stream_error::<io::Error>(&error).expect("a stream error inside");
        assert!(inner.as_source().is_some(), "a Source error: {inner:?}");

        // Resume where the data stopped.
        let at = received.len() as u64;
        assert_eq!(reader.seek(SeekFrom::Start(at)).unwrap(), at);
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        received.extend_from_slice(&rest);
        assert_same(&received, &bytes, "all bytes after the resume");
        assert_eq!(requests.load(Ordering::SeqCst), 2);
        drop(rt);
    });
}
