//! A reproduction of a `CachedSource` defect found by `tests/player.rs`: with a budget that
//! cannot keep what a fetch delivered, a fetch that runs into the bytes another fetch
//! delivered is dropped as overtaken (`drop_overtaken`) although those bytes are not held;
//! the fetch started in its place is dropped the same way before it answers, and
//! `poll_next` loops on that without returning `Pending`. The fetch here fails past 1 000
//! calls, so the loop shows as a failure instead of a hang.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;

use bytes::Bytes;
use futures::{StreamExt, stream};
use kithara_stream::exec::block_on;
use kithara_stream::io::BlockingReader;
use kithara_stream::sources::{ByteRange, CachedSource, RangeResponse, StoreParams};
use kithara_stream::{Engine, StreamParams};

const LEN: usize = 1_000_000;
const FETCH_LIMIT: usize = 1000;

/// Pending once (waking itself), then ready: the network's answer is never there at once.
async fn yield_once() {
    let mut yielded = false;
    futures::future::poll_fn(|cx| {
        if yielded {
            Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

#[test]
fn a_seek_back_into_bytes_a_fetch_delivered_but_the_store_did_not_keep() {
    let data = Bytes::from((0..LEN).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let calls = Arc::new(AtomicUsize::new(0));
    let (served, counted) = (data.clone(), calls.clone());
    let fetch = move |range: ByteRange| {
        let over = counted.fetch_add(1, Ordering::SeqCst) >= FETCH_LIMIT;
        let end = range.end.unwrap_or(LEN as u64) as usize;
        let chunks: Vec<io::Result<Bytes>> = served
            .slice(range.start as usize..end)
            .chunks(16 * 1024)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let body = stream::iter(chunks)
            .then(|chunk| async move {
                yield_once().await;
                chunk
            })
            .boxed();
        async move {
            // At once: a fetch dropped after its first poll never gets further.
            if over {
                return Err(io::Error::other(format!(
                    "runaway fetches: more than {FETCH_LIMIT}, the last for {}",
                    range.header()
                )));
            }
            yield_once().await;
            Ok(RangeResponse::new(body)
                .with_total_len(Some(LEN as u64))
                .with_start(Some(range.start)))
        }
    };
    let source = CachedSource::new(fetch, StoreParams::with_budget(0));
    let params = StreamParams::default().with_buffer_capacity(64 * 1024);
    let (engine, handle, stream) = Engine::build(source, params);
    std::thread::spawn(move || block_on(engine.run()));
    let mut reader = BlockingReader::new(stream, handle);

    let mut all = Vec::new();
    reader.read_to_end(&mut all).unwrap();
    assert_eq!(all, data);
    // A fetch from 600 000 delivers into the ring and one chunk past it...
    reader.seek(SeekFrom::Start(600_000)).unwrap();
    let mut some = vec![0; 20_000];
    reader.read_exact(&mut some).unwrap();
    assert_eq!(some, data[600_000..620_000]);
    // ... and stays in flight while a fetch from 100 000 reads up to it.
    reader.seek(SeekFrom::Start(100_000)).unwrap();
    let mut rest = Vec::new();
    let read = reader.read_to_end(&mut rest);
    let calls = calls.load(Ordering::SeqCst);
    assert!(read.is_ok(), "after {calls} fetches: {read:?}");
    assert_eq!(rest, data[100_000..]);
    assert!(calls <= 10, "{calls} fetches");
}
