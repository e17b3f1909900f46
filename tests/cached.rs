//! `CachedSource`: seeks into held bytes make no fetch, holes are fetched with an end, fetches
//! in flight survive seeks, short forward seeks keep the fetch, the budget holds; and a
//! property test against a `Vec<u8>` reference over random reads, seeks and budgets.

mod common;

use std::io::{self, Read, Seek, SeekFrom};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use common::{hang_guard, pattern};
use futures::Stream;
use kithara_stream::exec::block_on;
use kithara_stream::io::BlockingReader;
use kithara_stream::sources::{
    BufferWatch, ByteRange, ByteRate, CachedSource, Progress, RangeResponse, StoreParams,
};
use kithara_stream::{Engine, StreamParams};
use proptest::prelude::*;

/// An in-memory resource that counts fetches and bytes sent, and logs the ranges asked.
#[derive(Clone)]
struct Resource {
    data: Bytes,
    piece: usize,
    /// Deliver the pieces without a pending poll between them.
    eager: bool,
    fetches: Arc<AtomicUsize>,
    sent: Arc<AtomicU64>,
    asked: Arc<Mutex<Vec<ByteRange>>>,
}

impl Resource {
    fn new(len: u64, piece: usize) -> Self {
        Self {
            data: Bytes::from((0..len).map(pattern).collect::<Vec<u8>>()),
            piece,
            eager: false,
            fetches: Arc::default(),
            sent: Arc::default(),
            asked: Arc::default(),
        }
    }

    /// A resource whose pieces come as fast as they are polled: a fetch runs as far ahead
    /// as the source lets it at each poll.
    fn eager(len: u64, piece: usize) -> Self {
        Self {
            eager: true,
            ..Self::new(len, piece)
        }
    }

    fn len(&self) -> u64 {
        self.data.len() as u64
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    /// The fetch: the asked range, delivered in pieces, each after one pending poll.
    fn fetch(
        &self,
    ) -> impl Fn(ByteRange) -> futures::future::Ready<io::Result<RangeResponse<Trickle>>>
    + Send
    + Sync
    + 'static {
        let this = self.clone();
        move |range: ByteRange| {
            let fetches = this.fetches.fetch_add(1, Ordering::SeqCst);
            assert!(fetches < 10_000, "runaway fetches: {fetches}");
            this.asked.lock().unwrap().push(range);
            let end = range.end.unwrap_or(this.len()).min(this.len());
            let body = this.data.slice(range.start.min(end) as usize..end as usize);
            futures::future::ready(Ok(RangeResponse::new(Trickle {
                body,
                piece: this.piece,
                sent: this.sent.clone(),
                ready: this.eager,
                eager: this.eager,
            })
            .with_total_len(Some(this.len()))
            .with_start(Some(range.start))))
        }
    }
}

/// A body that returns `Pending` (and wakes itself) before each piece, as a network would.
struct Trickle {
    body: Bytes,
    piece: usize,
    sent: Arc<AtomicU64>,
    ready: bool,
    eager: bool,
}

impl Stream for Trickle {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.body.is_empty() {
            return Poll::Ready(None);
        }
        if !self.ready {
            self.ready = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.ready = self.eager;
        let n = self.piece.min(self.body.len());
        let piece = self.body.split_to(n);
        self.sent.fetch_add(n as u64, Ordering::SeqCst);
        Poll::Ready(Some(Ok(piece)))
    }
}

fn params() -> StreamParams {
    StreamParams::default()
        .with_buffer_capacity(16 * 1024)
        .with_chunk_size(4096)
}

type Reader = BlockingReader<(), Progress, io::Error>;

fn start(resource: &Resource, store: StoreParams) -> Reader {
    start_watched(resource, store).0
}

/// The reader over a `CachedSource` of `resource`, its engine on a thread, and the source's
/// buffer watch.
fn start_watched(resource: &Resource, store: StoreParams) -> (Reader, BufferWatch) {
    let (reader, watch, _) = start_rated(resource, store, None);
    (reader, watch)
}

/// [`start_watched`], with the source's byte rate set to `rate` (if any) before it starts;
/// and its rate handle.
fn start_rated(
    resource: &Resource,
    store: StoreParams,
    rate: Option<u64>,
) -> (Reader, BufferWatch, ByteRate) {
    let source = CachedSource::new(resource.fetch(), store);
    let watch = source.buffer_watch();
    let handle_rate = source.byte_rate();
    if let Some(rate) = rate {
        handle_rate.set(rate);
    }
    let (engine, handle, stream) = Engine::build(source, params());
    std::thread::spawn(move || block_on(engine.run()));
    (BlockingReader::new(stream, handle), watch, handle_rate)
}

fn read_n(reader: &mut Reader, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    let mut filled = 0;
    while filled < n {
        match reader.read(&mut buf[filled..]).unwrap() {
            0 => break,
            k => filled += k,
        }
    }
    buf.truncate(filled);
    buf
}

fn expected(from: u64, n: usize, len: u64) -> Vec<u8> {
    (from..(from + n as u64).min(len)).map(pattern).collect()
}

#[test]
fn seeks_into_held_bytes_make_no_fetch() {
    hang_guard("cached_held", || {
        let resource = Resource::new(300_000, 8_192);
        let mut reader = start(&resource, StoreParams::with_budget(1 << 20));
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        assert_eq!(all, expected(0, 300_000, 300_000));
        assert_eq!(resource.fetches(), 1);
        for pos in [0, 150_000, 299_999, 10, 250_000] {
            reader.seek(SeekFrom::Start(pos)).unwrap();
            assert_eq!(read_n(&mut reader, 20_000), expected(pos, 20_000, 300_000));
        }
        assert_eq!(resource.fetches(), 1, "every seek was into held bytes");
        assert_eq!(resource.sent(), 300_000);
    });
}

#[test]
fn a_probe_of_the_tail_then_the_head_fetches_each_byte_once() {
    hang_guard("cached_probe", || {
        let len = 1_000_000;
        let resource = Resource::new(len, 16_384);
        let mut reader = start(&resource, StoreParams::with_budget(2 << 20));
        assert_eq!(read_n(&mut reader, 4_000), expected(0, 4_000, len));
        reader.seek(SeekFrom::End(-10_000)).unwrap();
        assert_eq!(
            read_n(&mut reader, 10_000),
            expected(len - 10_000, 10_000, len)
        );
        reader.seek(SeekFrom::Start(4_000)).unwrap();
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, expected(4_000, (len - 4_000) as usize, len));
        assert!(
            resource.sent() <= len * 105 / 100,
            "sent {} for {len}",
            resource.sent()
        );
        // The head fetch, the tail; at most one more for a hole left between them.
        assert!(resource.fetches() <= 3, "{} fetches", resource.fetches());
        for range in resource.asked.lock().unwrap().iter().skip(1) {
            assert!(range.start > 0, "the head was not fetched again: {range:?}");
        }
    });
}

#[test]
fn a_hole_is_fetched_up_to_the_next_held_byte() {
    hang_guard("cached_hole", || {
        let len = 400_000;
        let resource = Resource::new(len, 8_192);
        // One fetch in flight: the seek drops the first one.
        let store = StoreParams::with_budget(1 << 20)
            .with_look_ahead(64 << 10)
            .with_forward_skip(8 << 10)
            .with_max_fetches(1);
        let mut reader = start(&resource, store);
        assert_eq!(read_n(&mut reader, 1_000), expected(0, 1_000, len));
        reader.seek(SeekFrom::Start(200_000)).unwrap();
        let mut tail = Vec::new();
        reader.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, expected(200_000, 200_000, len));
        // The head is held up to the look-ahead at most: from 100 000 the fetch must end at
        // 200 000, where the held bytes start.
        reader.seek(SeekFrom::Start(100_000)).unwrap();
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, expected(100_000, 300_000, len));
        let asked = resource.asked.lock().unwrap().clone();
        assert!(
            asked
                .iter()
                .any(|r| r.start < 200_000 && r.end == Some(200_000)),
            "a fetch ended at the held bytes: {asked:?}"
        );
        assert!(
            resource.sent() <= len + len / 20,
            "sent {}",
            resource.sent()
        );
    });
}

#[test]
fn a_short_forward_seek_keeps_the_fetch() {
    hang_guard("cached_forward", || {
        let len = 2_000_000;
        let resource = Resource::new(len, 4_096);
        let mut reader = start(&resource, StoreParams::with_budget(0));
        assert_eq!(read_n(&mut reader, 1_000), expected(0, 1_000, len));
        let at = reader.position() + 100_000;
        reader.seek(SeekFrom::Start(at)).unwrap();
        assert_eq!(read_n(&mut reader, 1_000), expected(at, 1_000, len));
        assert_eq!(resource.fetches(), 1, "the seek waited on the same fetch");
        // A far seek opens a new one.
        reader.seek(SeekFrom::Start(1_500_000)).unwrap();
        assert_eq!(read_n(&mut reader, 1_000), expected(1_500_000, 1_000, len));
        assert_eq!(resource.fetches(), 2);
    });
}

/// A seek just behind a fetch, into bytes it passed and the store could not keep, needs a
/// fetch of its own; the fetch ahead must not make it give way (that once looped, opening
/// fetches without end).
#[test]
fn a_seek_behind_a_fetch_over_bytes_not_held_fetches_again() {
    hang_guard("cached_behind", || {
        let len = 500_000;
        let resource = Resource::new(len, 4_096);
        let mut reader = start(&resource, StoreParams::with_budget(0));
        assert_eq!(read_n(&mut reader, 30_000), expected(0, 30_000, len));
        reader.seek(SeekFrom::Start(500)).unwrap();
        assert_eq!(read_n(&mut reader, 50_000), expected(500, 50_000, len));
        assert_eq!(resource.fetches(), 2);
    });
}

/// The same class, found by the player test: a fetch left in flight ahead while a fetch
/// from behind reads up to it, with nothing kept.
#[test]
fn a_fetch_from_behind_reads_up_to_one_in_flight_ahead() {
    hang_guard("cached_behind_ahead", || {
        let len = 1_000_000;
        let resource = Resource::new(len, 16_384);
        let mut reader = start(&resource, StoreParams::with_budget(0));
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        assert_eq!(all, expected(0, len as usize, len));
        reader.seek(SeekFrom::Start(600_000)).unwrap();
        assert_eq!(read_n(&mut reader, 20_000), expected(600_000, 20_000, len));
        reader.seek(SeekFrom::Start(100_000)).unwrap();
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).unwrap();
        assert_eq!(rest, expected(100_000, 900_000, len));
        assert!(resource.fetches() <= 4, "{} fetches", resource.fetches());
    });
}

#[test]
fn budget_zero_holds_nothing_and_seeks_back_fetch_again() {
    hang_guard("cached_zero", || {
        let len = 200_000;
        let resource = Resource::new(len, 8_192);
        let (mut reader, watch) = start_watched(&resource, StoreParams::with_budget(0));
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        assert_eq!(all, expected(0, len as usize, len));
        reader.seek(SeekFrom::Start(0)).unwrap();
        assert_eq!(read_n(&mut reader, 10), expected(0, 10, len));
        assert_eq!(resource.fetches(), 2);
        assert!(watch.get().ranges.is_empty());
    });
}

#[test]
fn the_buffer_watch_shows_what_is_held() {
    hang_guard("cached_watch", || {
        let len = 500_000;
        let resource = Resource::new(len, 8_192);
        let (mut reader, watch) = start_watched(&resource, StoreParams::with_budget(1 << 20));
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        let level = watch.get();
        assert_eq!(level.ranges, vec![0..len]);
        assert_eq!(level.total, Some(len));
        assert!(level.ready, "the rest of the resource is held: {level:?}");
        // The progress events came with the bytes, in order.
        let events: Vec<_> = reader.take_messages();
        assert!(!events.is_empty());
    });
}

/// Reads 64 KiB, then lets the fetch run ahead until it pauses at `pos + look_ahead` (the
/// engine stops at the ring's capacity; an eager resource's fetch gets there at the poll
/// after the read): waits until it has sent that far, and checks that it never sends more
/// than a piece past it. `at`: where the reader is; returns where it is after.
fn run_ahead(
    reader: &mut Reader,
    resource: &Resource,
    watch: &BufferWatch,
    at: u64,
    look_ahead: u64,
) -> u64 {
    let step = 64 << 10;
    let mut read = |at: u64| {
        let ok = read_n(reader, step) == expected(at, step, resource.len());
        assert!(ok, "the bytes read at {at} are not the resource's");
        at + step as u64
    };
    let at = read(at);
    let piece = resource.piece as u64;
    let bound = |sent: u64, position: u64| {
        assert!(
            sent <= position + look_ahead + piece,
            "fetched {sent} with the position at {position}: past the look-ahead {look_ahead}"
        );
    };
    loop {
        // Sent first: the position only grows after it.
        let sent = resource.sent();
        let position = watch.get().position;
        bound(sent, position);
        // The last poll ran the fetch to `look_ahead` past where it served one more piece.
        if sent + piece >= position + look_ahead {
            break;
        }
        std::thread::yield_now();
    }
    // A reader that moves on moves the window on.
    let at = read(at);
    let (sent, position) = (resource.sent(), watch.get().position);
    bound(sent, position);
    at
}

#[test]
fn a_look_ahead_in_time_applies_once_the_rate_is_known() {
    hang_guard("cached_look_ahead_time", || {
        let len = 4 << 20;
        let params = StoreParams::with_budget(8 << 20)
            .with_look_ahead(1 << 20)
            .with_forward_skip(32 << 10)
            .with_look_ahead_time(std::time::Duration::from_secs(2));
        // Unknown rate: the look-ahead in bytes.
        let resource = Resource::eager(len, 4_096);
        let (mut reader, watch, _) = start_rated(&resource, params, None);
        run_ahead(&mut reader, &resource, &watch, 0, 1 << 20);
        // 100 kB/s for 2 s.
        let resource = Resource::eager(len, 4_096);
        let (mut reader, watch, _) = start_rated(&resource, params, Some(100_000));
        assert_eq!(params.look_ahead(Some(100_000)), 200_000);
        run_ahead(&mut reader, &resource, &watch, 0, 200_000);
        // So slow that 2 s is less than twice the forward skip: twice the forward skip.
        let resource = Resource::eager(len, 4_096);
        let (mut reader, watch, _) = start_rated(&resource, params, Some(1_000));
        assert_eq!(params.look_ahead(Some(1_000)), 64 << 10);
        run_ahead(&mut reader, &resource, &watch, 0, 64 << 10);
        // So fast that 2 s is more than the look-ahead in bytes: the cap.
        assert_eq!(params.look_ahead(Some(10 << 20)), 1 << 20);
    });
}

#[test]
fn a_rate_set_while_streaming_takes_effect_at_once() {
    hang_guard("cached_rate_later", || {
        let len = 4 << 20;
        let params = StoreParams::with_budget(8 << 20)
            .with_look_ahead(1 << 20)
            .with_forward_skip(32 << 10)
            .with_look_ahead_time(std::time::Duration::from_secs(4));
        let resource = Resource::eager(len, 4_096);
        // Known from the start: 50 kB/s, 200 kB ahead.
        let (mut reader, watch, rate) = start_rated(&resource, params, Some(50_000));
        let at = run_ahead(&mut reader, &resource, &watch, 0, 200_000);
        // Found after probing to be 100 kB/s: 400 kB ahead from the next chunk on.
        rate.set_from_duration(len, std::time::Duration::from_nanos(len * 10_000));
        assert_eq!(rate.get(), Some(100_000));
        let at = run_ahead(&mut reader, &resource, &watch, at, 400_000);
        // Forgotten: the look-ahead in bytes again.
        rate.clear();
        run_ahead(&mut reader, &resource, &watch, at, 1 << 20);
    });
}

#[test]
fn the_held_bytes_never_exceed_the_budget() {
    hang_guard("cached_budget", || {
        let len = 1_000_000;
        let resource = Resource::new(len, 8_192);
        let budget = 100_000;
        let (mut reader, watch) = start_watched(&resource, StoreParams::with_budget(budget));
        let mut pos = 0;
        while pos < len {
            let got = read_n(&mut reader, 50_000);
            assert_eq!(got, expected(pos, 50_000, len));
            pos += got.len() as u64;
            let held: u64 = watch.get().ranges.iter().map(|r| r.end - r.start).sum();
            assert!(held <= budget, "{held} held");
        }
    });
}

/// A consumer's step in the property test.
#[derive(Debug, Clone)]
enum Step {
    Read(usize),
    Seek(u64),
    SeekBack(u64),
    SeekForward(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (1usize..60_000).prop_map(Step::Read),
        1 => (0u64..220_000).prop_map(Step::Seek),
        1 => (0u64..50_000).prop_map(Step::SeekBack),
        1 => (0u64..300_000).prop_map(Step::SeekForward),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(64)
    ))]

    /// Every byte read equals the reference's byte at the reader's position, whatever the
    /// budget, look-ahead, skip, fetches in flight and pieces.
    #[test]
    fn model_cached_source_matches_the_bytes(
        len in 1u64..200_000,
        piece in 64usize..20_000,
        budget in prop_oneof![Just(0u64), 1u64..100_000, Just(1u64 << 20)],
        look_ahead in 2u64..300_000,
        fetches in 1usize..4,
        keep_ends in 0u64..20_000,
        steps in proptest::collection::vec(step(), 1..25),
    ) {
        let resource = Resource::new(len, piece);
        let skip = look_ahead / 2;
        let store = StoreParams::with_budget(budget)
            .with_look_ahead(look_ahead)
            .with_forward_skip(skip)
            .with_max_fetches(fetches)
            .with_keep_ends(keep_ends);
        let result = hang_guard("cached_model", move || {
            let mut reader = start(&resource, store);
            let resource = resource.clone();
            for step in steps {
                let pos = reader.position();
                match step {
                    Step::Read(n) => {
                        let got = read_n(&mut reader, n);
                        let want = expected(pos, n, len);
                        if got != want {
                            return Err(format!("read {n} at {pos}: got {} bytes, want {}", got.len(), want.len()));
                        }
                    }
                    Step::Seek(to) | Step::SeekBack(to) | Step::SeekForward(to) => {
                        let to = match step {
                            Step::SeekBack(_) => pos.saturating_sub(to),
                            Step::SeekForward(_) => pos + to,
                            _ => to,
                        };
                        if reader.seek(SeekFrom::Start(to)).unwrap() != to {
                            return Err(format!("seek to {to}"));
                        }
                    }
                }
            }
            let pos = reader.position();
            let mut rest = Vec::new();
            reader.read_to_end(&mut rest).unwrap();
            if rest != expected(pos, len.saturating_sub(pos) as usize, len) {
                return Err(format!("rest from {pos}"));
            }
            // Nothing is evicted: no byte is fetched twice, but for what two fetches in
            // flight bring where they meet: a piece straddling into the other's bytes,
            // and one the other brings in the same round (two pieces a fetch).
            let bound = len + 2 * resource.fetches() as u64 * piece as u64;
            if budget >= len && resource.sent() > bound {
                return Err(format!(
                    "sent {} > {bound}, fetches {:?}",
                    resource.sent(),
                    resource.asked.lock().unwrap()
                ));
            }
            Ok(())
        });
        prop_assert_eq!(result, Ok(()));
    }
}

/// A resource of unknown length (the fetch reports no total, as a chunked 200 would).
#[test]
fn cached_source_reads_a_resource_of_unknown_length_to_its_end() {
    hang_guard("review_unknown_len", || {
        let len = 100_000u64;
        let data = Bytes::from((0..len).map(pattern).collect::<Vec<u8>>());
        let fetch = move |range: ByteRange| {
            let end = range.end.unwrap_or(len).min(len) as usize;
            let body = data.slice((range.start as usize).min(end)..end);
            let response = RangeResponse::new(futures::stream::iter([Ok::<_, io::Error>(body)]))
                .with_start(Some(range.start));
            async move { Ok(response) }
        };
        let source = CachedSource::new(fetch, StoreParams::with_budget(1 << 20));
        let (engine, handle, stream) = Engine::build(source, StreamParams::default());
        std::thread::spawn(move || block_on(engine.run()));
        let mut reader = BlockingReader::new(stream, handle);
        let mut all = Vec::new();
        let result = reader.read_to_end(&mut all);
        assert_eq!(all.len() as u64, len);
        result.expect("a clean end, not an error");
    });
}

/// A resource that changes to version 2 (`ETag: "v2"`, each byte plus one, `len2` long)
/// at the first fetch that does not start at 0: the fetches of one play see both.
fn changing_fetch(
    len1: u64,
    len2: u64,
) -> impl Fn(ByteRange) -> futures::future::Ready<io::Result<RangeResponse<Trickle>>>
+ Send
+ Sync
+ 'static {
    let changed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    move |range: ByteRange| {
        if range.start > 0 {
            changed.store(true, Ordering::SeqCst);
        }
        let v2 = changed.load(Ordering::SeqCst);
        let len = if v2 { len2 } else { len1 };
        let end = range.end.unwrap_or(len).min(len);
        let start = range.start.min(end);
        let body: Vec<u8> = (start..end)
            .map(|i| pattern(i).wrapping_add(u8::from(v2)))
            .collect();
        let tag = if v2 { "\"v2\"" } else { "\"v1\"" };
        futures::future::ready(Ok(RangeResponse::new(Trickle {
            body: Bytes::from(body),
            piece: 16 * 1024,
            sent: Arc::default(),
            ready: false,
            eager: false,
        })
        .with_total_len(Some(len))
        .with_start(Some(range.start))
        .with_validator(Some(kithara_stream::store::Validator::ETag(tag.into())))))
    }
}

/// Reads a play of a resource that changes under it: the bytes read before the change
/// are of version 1 only and the change is an error; read again, all of version 2. With
/// `held`, the store holds version 1's first `held` bytes at the start, so that the fetch
/// of what follows them (which sees version 2) is in flight while the reader is far behind.
fn read_across_a_change(len1: u64, len2: u64, held: u64) {
    use kithara_stream::store::{MemoryStore, Store, Validator};
    let v1: Vec<u8> = (0..len1).map(pattern).collect();
    let mut store = MemoryStore::new(300_000);
    store.admit(Some(&Validator::ETag("\"v1\"".into())), Some(len1));
    store.insert(0, &Bytes::from(v1[..held as usize].to_vec()), 0..0);
    let source = CachedSource::with_store(
        changing_fetch(len1, len2),
        store,
        StoreParams::with_budget(300_000),
    )
    .with_total_len(len1);
    let (engine, handle, stream) = Engine::build(source, params());
    std::thread::spawn(move || block_on(engine.run()));
    let mut reader: Reader = BlockingReader::new(stream, handle);
    let mut all = Vec::new();
    let error = reader.read_to_end(&mut all).map(|_| all.len());
    if let Some(at) = all.iter().zip(&v1).position(|(a, b)| a != b) {
        panic!("byte {at} of the first read is not of version 1");
    }
    let error = error.expect_err("the change passed unnoticed");
    assert!(
        format!("{error:?}").contains("Changed"),
        "not a change: {error:?}"
    );
    reader.seek(SeekFrom::Start(0)).unwrap();
    let mut again = Vec::new();
    reader.read_to_end(&mut again).unwrap();
    let v2: Vec<u8> = (0..len2).map(|i| pattern(i).wrapping_add(1)).collect();
    assert_eq!(again.len(), v2.len(), "the length of version 2");
    assert!(again == v2, "the second read is not version 2");
}

#[test]
fn a_change_seen_by_a_prefetch_is_an_error_and_its_bytes_never_meet_the_old_ones() {
    hang_guard("cached_change_prefetch", || {
        read_across_a_change(1_000_000, 1_000_000, 300_000);
    });
}

#[test]
fn after_a_change_of_length_a_read_from_the_start_gets_the_new_version_whole() {
    hang_guard("cached_change_len", || {
        read_across_a_change(1_000_000, 800_000, 0);
    });
}
