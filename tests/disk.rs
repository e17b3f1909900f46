//! `DiskCache` and `DiskStore` under a `CachedSource`, against a real HTTP server on
//! 127.0.0.1 through `HttpFetch`: a second play makes no request (through the engine's
//! stream, `BlockingReader` and `AsyncReader`), a stopped download resumes with only the
//! missing bytes, the disk budget holds across resources (least recently used evicted, the
//! open one never), a changed resource is never mixed with the held one.

mod common;

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::script_server::{Reply, ScriptServer};
use common::{assert_same, hang_guard, pattern};
use futures::{AsyncReadExt, AsyncSeekExt, StreamExt};
use kithara_stream::io::{AsyncReader, BlockingReader, stream_error};
use kithara_stream::sources::{
    CachedSource, HttpError, HttpFetch, Progress, RetryPolicy, Retrying, StoreParams,
};
use kithara_stream::store::{DISK_CHUNK, DiskCache, DiskStore, Store, Validator};
use kithara_stream::{Engine, StreamError, StreamMsg, StreamParams};
use tokio::task::JoinHandle;

/// A directory for one test, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let path =
            std::env::temp_dir().join(format!("kithara-disk-{}-{name}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn data(len: u64, version: u8) -> Arc<Vec<u8>> {
    Arc::new(
        (0..len)
            .map(|i| pattern(i).wrapping_add(version.wrapping_mul(101)))
            .collect(),
    )
}

/// Serves whatever `current` holds, with `ETag: "v<version>"`.
type Current = Arc<std::sync::Mutex<(u8, Arc<Vec<u8>>)>>;

fn server(current: &Current) -> ScriptServer {
    let current = current.clone();
    ScriptServer::start(move |request| {
        let (version, bytes) = current.lock().unwrap().clone();
        let mut reply = Reply::range(&bytes, request);
        reply.head.push_str(&format!("\r\nETag: \"v{version}\""));
        reply
    })
}

/// What most tests start from: a directory, a resource (version 1, `len` bytes) that a
/// server on 127.0.0.1 serves as `current` says, a runtime, and the bytes expected.
struct Fixture {
    dir: TempDir,
    current: Current,
    server: ScriptServer,
    rt: tokio::runtime::Runtime,
    want: Arc<Vec<u8>>,
}

impl Fixture {
    fn new(name: &str, len: u64) -> Self {
        let current: Current = Arc::new(std::sync::Mutex::new((1, data(len, 1))));
        Self {
            dir: TempDir::new(name),
            server: server(&current),
            current,
            rt: common::tokio_runtime(),
            want: data(len, 1),
        }
    }
}

fn params() -> StreamParams {
    StreamParams::default()
        .with_buffer_capacity(64 * 1024)
        .with_chunk_size(16 * 1024)
}

type Source = CachedSource<Retrying<HttpFetch>, DiskStore>;

fn source(server: &ScriptServer, path: &str, store: DiskStore) -> Source {
    let policy = RetryPolicy::default()
        .with_attempts(3)
        .with_backoff(Duration::from_millis(5), Duration::from_millis(50))
        .with_timer(tokio::time::sleep);
    let fetch = HttpFetch::new(reqwest::Client::new(), server.url(path));
    CachedSource::with_store(
        Retrying::new(fetch, policy),
        store,
        StoreParams::with_budget(0),
    )
}

/// One play: a blocking reader over the cached source of `key`, and the engine's task
/// (joined once the reader is dropped, so that the store is closed).
fn play(
    rt: &tokio::runtime::Runtime,
    cache: &DiskCache,
    server: &ScriptServer,
    key: &str,
) -> (BlockingReader<(), Progress, HttpError>, JoinHandle<()>) {
    let store = cache.store(key).unwrap();
    let (engine, handle, stream) = Engine::build(source(server, key, store), params());
    let task = rt.spawn(engine.run());
    (BlockingReader::new(stream, handle), task)
}

/// Drops the reader and waits for the engine to drop the source (and its store).
fn close(
    rt: &tokio::runtime::Runtime,
    reader: BlockingReader<(), Progress, HttpError>,
    task: JoinHandle<()>,
) {
    drop(reader);
    rt.block_on(task).unwrap();
}

const LEN: u64 = 700_000;

#[test]
fn a_second_play_makes_no_request_blocking_reader() {
    hang_guard("disk_second_play", || {
        let Fixture {
            dir,
            server,
            rt,
            want,
            ..
        } = Fixture::new("second", LEN);
        {
            let cache = DiskCache::open(&dir.0, 10 << 20).unwrap();
            let (mut reader, task) = play(&rt, &cache, &server, "track");
            let mut all = Vec::new();
            reader.read_to_end(&mut all).unwrap();
            assert_same(&all, &want);
            close(&rt, reader, task);
            assert_eq!(cache.used(), LEN);
        }
        let first = server.requests();
        assert_eq!(first, 1);
        // A new cache on the same directory: as a second run of the program would.
        let cache = DiskCache::open(&dir.0, 10 << 20).unwrap();
        assert_eq!(cache.used(), LEN);
        let (mut reader, task) = play(&rt, &cache, &server, "track");
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        assert_same(&all, &want);
        for pos in [LEN - 10, 0, 300_000, 123_457] {
            reader.seek(SeekFrom::Start(pos)).unwrap();
            let mut some = vec![0; 5_000.min((LEN - pos) as usize)];
            reader.read_exact(&mut some).unwrap();
            assert_same(&some, &want[pos as usize..pos as usize + some.len()]);
        }
        close(&rt, reader, task);
        assert_eq!(server.requests(), first, "the second play made a request");
    });
}

#[test]
fn a_second_play_makes_no_request_async_reader() {
    hang_guard("disk_second_play_async", || {
        let Fixture {
            dir,
            server,
            rt,
            want,
            ..
        } = Fixture::new("second-async", LEN);
        for run in 0..2 {
            let cache = DiskCache::open(&dir.0, 10 << 20).unwrap();
            let store = cache.store("track").unwrap();
            let (engine, handle, stream) = Engine::build(source(&server, "track", store), params());
            let task = rt.spawn(engine.run());
            let (all, tail) = rt.block_on(async {
                let mut reader = AsyncReader::new(stream, handle);
                let mut all = Vec::new();
                reader.read_to_end(&mut all).await.unwrap();
                reader.seek(SeekFrom::Start(LEN - 1_000)).await.unwrap();
                let mut tail = Vec::new();
                reader.read_to_end(&mut tail).await.unwrap();
                (all, tail)
            });
            rt.block_on(task).unwrap();
            assert_same(&all, &want);
            assert_same(&tail, &want[LEN as usize - 1_000..]);
            assert_eq!(server.requests(), 1, "after run {run}");
        }
    });
}

#[test]
fn a_second_play_makes_no_request_engine_stream() {
    hang_guard("disk_second_play_engine", || {
        let Fixture {
            dir,
            server,
            rt,
            want,
            ..
        } = Fixture::new("second-engine", LEN);
        for run in 0..2 {
            let cache = DiskCache::open(&dir.0, 10 << 20).unwrap();
            let store = cache.store("track").unwrap();
            let (engine, handle, mut stream) =
                Engine::build(source(&server, "track", store), params());
            let task = rt.spawn(engine.run());
            let all = rt.block_on(async {
                let mut all = Vec::new();
                while let Some(item) = stream.next().await {
                    if let StreamMsg::Data(bytes) = item.unwrap() {
                        all.extend_from_slice(&bytes);
                    }
                }
                drop((stream, handle));
                all
            });
            rt.block_on(task).unwrap();
            assert_same(&all, &want);
            assert_eq!(server.requests(), 1, "after run {run}");
        }
    });
}

#[test]
fn a_stopped_download_resumes_with_only_the_missing_bytes() {
    hang_guard("disk_resume", || {
        let Fixture {
            dir,
            server,
            rt,
            want,
            ..
        } = Fixture::new("resume", LEN);
        let cache = DiskCache::open(&dir.0, 10 << 20).unwrap();
        let (mut reader, task) = play(&rt, &cache, &server, "track");
        let mut head = vec![0; 250_000];
        reader.read_exact(&mut head).unwrap();
        assert_same(&head, &want[..250_000]);
        close(&rt, reader, task);
        drop(cache);

        let cache = DiskCache::open(&dir.0, 10 << 20).unwrap();
        let kept = cache.used();
        assert!(kept >= 250_000, "kept {kept}");
        let sent_before = server.body_bytes();
        let (mut reader, task) = play(&rt, &cache, &server, "track");
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        assert_same(&all, &want);
        close(&rt, reader, task);
        let sent = server.body_bytes() - sent_before;
        println!("resume: kept {kept} of {LEN}, then fetched {sent}");
        assert!(
            sent <= LEN - kept,
            "fetched {sent}, but only {} were missing",
            LEN - kept
        );
        assert_eq!(cache.used(), LEN);
    });
}

/// The bytes the data files of `dir` take on disk (their allocated blocks, where the
/// platform says).
fn data_on_disk(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|item| item.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "data"))
        .map(|path| {
            let meta = std::fs::metadata(&path).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                meta.blocks() * 512
            }
            #[cfg(not(unix))]
            {
                meta.len()
            }
        })
        .sum()
}

#[test]
fn the_disk_budget_holds_across_tracks_and_evicts_the_least_recently_used() {
    hang_guard("disk_budget", || {
        let len = 400_000;
        let Fixture {
            dir,
            server,
            rt,
            want,
            ..
        } = Fixture::new("budget", len);
        let budget = 1_000_000;
        let cache = DiskCache::open(&dir.0, budget).unwrap();
        for track in 0..5 {
            let key = format!("track-{track}");
            let (mut reader, task) = play(&rt, &cache, &server, &key);
            let mut all = Vec::new();
            reader.read_to_end(&mut all).unwrap();
            assert_same(&all, &want);
            // The open track is kept whole: the others made room.
            assert_eq!(cache.used().min(len), len);
            close(&rt, reader, task);
            let on_disk = data_on_disk(&dir.0);
            println!(
                "after track {track}: {} held, {on_disk} on disk",
                cache.used()
            );
            assert!(cache.used() <= budget);
            assert!(
                on_disk <= budget + DISK_CHUNK as u64,
                "{on_disk} bytes on disk for a budget of {budget}"
            );
        }
        // Tracks 3 and 4 fit (800 000 bytes); track 2 would not, so it went.
        let requests = server.requests();
        for track in [4, 3] {
            let (mut reader, task) = play(&rt, &cache, &server, &format!("track-{track}"));
            let mut all = Vec::new();
            reader.read_to_end(&mut all).unwrap();
            assert_same(&all, &want);
            close(&rt, reader, task);
        }
        assert_eq!(server.requests(), requests, "tracks 3 and 4 were held");
        let (mut reader, task) = play(&rt, &cache, &server, "track-0");
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        close(&rt, reader, task);
        assert_eq!(server.requests(), requests + 1, "track 0 was evicted");
        // Playing track 0 evicted the least recently used of 3 and 4: track 4.
        let store = cache.store("track-3").unwrap();
        assert_eq!(store.held_bytes(), len);
        drop(store);
        assert_eq!(cache.store("track-4").unwrap().held_bytes(), 0);
    });
}

#[test]
fn a_resource_larger_than_the_budget_is_kept_in_part_and_read_whole() {
    hang_guard("disk_too_big", || {
        let Fixture {
            dir,
            server,
            rt,
            want,
            ..
        } = Fixture::new("too-big", LEN);
        let cache = DiskCache::open(&dir.0, 200_000).unwrap();
        let (mut reader, task) = play(&rt, &cache, &server, "track");
        for _ in 0..2 {
            let mut all = Vec::new();
            reader.read_to_end(&mut all).unwrap();
            assert_same(&all, &want);
            reader.seek(SeekFrom::Start(0)).unwrap();
        }
        reader.seek(SeekFrom::Start(500_000)).unwrap();
        let mut some = vec![0; 10_000];
        reader.read_exact(&mut some).unwrap();
        assert_same(&some, &want[500_000..510_000]);
        close(&rt, reader, task);
        assert_eq!(cache.used(), 200_000);
        assert!(data_on_disk(&dir.0) <= 200_000 + DISK_CHUNK as u64);
    });
}

fn changed(error: &std::io::Error) -> bool {
    matches!(
        stream_error::<HttpError>(error),
        Some(StreamError::Source(HttpError::Mismatch(
            kithara_stream::sources::RangeMismatch::Changed
        )))
    )
}

#[test]
fn a_changed_resource_is_never_mixed_with_the_held_bytes() {
    hang_guard("disk_changed", || {
        let Fixture {
            dir,
            current,
            server,
            rt,
            ..
        } = Fixture::new("changed", LEN);
        let cache = DiskCache::open(&dir.0, 10 << 20).unwrap();
        // The head of version 1 is held, as a first play that stopped would leave it.
        {
            let mut store = cache.store("track").unwrap();
            store.admit(Some(&Validator::ETag("\"v1\"".into())), Some(LEN));
            let head = Bytes::from(data(LEN, 1)[..300_000].to_vec());
            assert_eq!(store.insert(0, &head, 0..0), 300_000);
        }
        // The resource changes; the next play reads the held half, then fetches the rest.
        let new = data(LEN, 2);
        *current.lock().unwrap() = (2, new.clone());
        let (mut reader, task) = play(&rt, &cache, &server, "track");
        let mut all = Vec::new();
        let error = reader.read_to_end(&mut all).unwrap_err();
        assert!(changed(&error), "{error:?}");
        // Whatever was read is of version 1 only.
        assert_same(&all, &data(LEN, 1)[..all.len()]);
        // The store dropped version 1: from the start again, all of version 2.
        reader.seek(SeekFrom::Start(0)).unwrap();
        let mut all = Vec::new();
        reader.read_to_end(&mut all).unwrap();
        assert_same(&all, &new);
        close(&rt, reader, task);
        let store = cache.store("track").unwrap();
        assert_eq!(store.validator(), Some(&Validator::ETag("\"v2\"".into())));
        assert_eq!(store.held_bytes(), LEN);
    });
}

#[test]
fn a_validator_known_in_advance_drops_a_stale_resource_before_it_is_served() {
    let dir = TempDir::new("admit");
    let cache = DiskCache::open(&dir.0, 1 << 20).unwrap();
    let v1 = Validator::ETag("\"v1\"".into());
    {
        let mut store = cache.store("t").unwrap();
        assert!(!store.admit(Some(&v1), Some(100)));
        assert_eq!(store.insert(0, &Bytes::from(vec![1; 100]), 0..0), 100);
    }
    let mut store = cache.store("t").unwrap();
    assert_eq!(store.ranges(), vec![0..100]);
    // The same version: kept.
    assert!(!store.admit(Some(&v1), Some(100)));
    assert_eq!(store.held_bytes(), 100);
    // Another (as a HEAD request or a playlist would tell): dropped, at once and on disk.
    assert!(store.admit(Some(&Validator::ETag("\"v2\"".into())), Some(100)));
    assert_eq!(store.held_bytes(), 0);
    drop(store);
    assert_eq!(cache.used(), 0);
    assert!(
        DiskCache::open(&dir.0, 1 << 20)
            .unwrap()
            .store("t")
            .unwrap()
            .ranges()
            .is_empty()
    );
}

#[test]
fn one_store_per_key_at_a_time_and_damaged_files_are_dropped() {
    let dir = TempDir::new("busy");
    let cache = DiskCache::open(&dir.0, 1 << 20).unwrap();
    let mut store = cache.store("a").unwrap();
    store.insert(0, &Bytes::from_static(b"abcdef"), 0..0);
    let busy = cache.store("a").unwrap_err();
    assert_eq!(busy.kind(), std::io::ErrorKind::ResourceBusy);
    assert_eq!(
        cache.remove("a").unwrap_err().kind(),
        std::io::ErrorKind::ResourceBusy
    );
    drop(store);
    // Damage the index: the next open of the cache drops the resource.
    let index = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|item| item.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "index"))
        .unwrap();
    let mut bytes = std::fs::read(&index).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&index, bytes).unwrap();
    drop(cache);
    let cache = DiskCache::open(&dir.0, 1 << 20).unwrap();
    assert_eq!(cache.used(), 0);
    assert_eq!(
        std::fs::read_dir(&dir.0).unwrap().count(),
        0,
        "its files are gone"
    );
    assert!(cache.store("a").unwrap().ranges().is_empty());
}

/// The data file of the only resource in `dir`.
fn the_data_file(dir: &Path) -> PathBuf {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|item| item.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "data"))
        .unwrap()
}

/// Reopens the cache in `dir` (as a restart after a kill would) and checks that every byte
/// the store of `key` claims is `want`'s.
fn assert_claims_only(dir: &Path, key: &str, want: impl Fn(u64) -> u8) {
    let cache = DiskCache::open(dir, 1 << 20).unwrap();
    let mut store = cache.store(key).unwrap();
    for run in store.ranges() {
        let mut pos = run.start;
        while pos < run.end {
            let got = store.get(pos, usize::MAX).unwrap();
            for (at, &b) in (pos..).zip(got.iter()) {
                assert_eq!(b, want(at), "claimed byte {at} is wrong");
            }
            pos += got.len() as u64;
        }
    }
}

#[test]
fn claims_dropped_at_open_are_off_the_disk_before_a_write_could_fill_them_with_zeros() {
    let dir = TempDir::new("trimmed");
    let cache = DiskCache::open(&dir.0, 1 << 20).unwrap();
    {
        let mut store = cache.store("t").unwrap();
        store.set_total_len(Some(10_000));
        assert_eq!(store.insert(0, &Bytes::from(vec![7; 1_000]), 0..0), 1_000);
    }
    // The file system lost the data (the index claims 0..1000 of an empty file).
    std::fs::File::options()
        .write(true)
        .open(the_data_file(&dir.0))
        .unwrap()
        .set_len(0)
        .unwrap();
    let mut store = cache.store("t").unwrap();
    assert!(store.ranges().is_empty());
    // A write past the lost bytes makes them a hole of zeros; then a kill (no publish).
    assert_eq!(
        store.insert(5_000, &Bytes::from(vec![9; 1_000]), 0..0),
        1_000
    );
    std::mem::forget(store);
    assert_claims_only(&dir.0, "t", |at| if at < 1_000 { 7 } else { 9 });
}

#[test]
fn a_clear_whose_index_could_not_be_written_keeps_no_new_bytes_under_the_old_claims() {
    let dir = TempDir::new("clear-fails");
    let cache = DiskCache::open(&dir.0, 1 << 20).unwrap();
    let v1 = Validator::ETag("\"v1\"".into());
    {
        let mut store = cache.store("t").unwrap();
        store.admit(Some(&v1), Some(10_000));
        assert_eq!(store.insert(0, &Bytes::from(vec![1; 4_000]), 0..0), 4_000);
    }
    let mut store = cache.store("t").unwrap();
    // The index cannot be replaced: its temporary file's name is taken by a directory.
    let index = the_data_file(&dir.0).with_extension("index");
    let tmp = index.with_extension("index.tmp");
    std::fs::create_dir(&tmp).unwrap();
    assert!(store.admit(Some(&Validator::ETag("\"v2\"".into())), Some(10_000)));
    assert!(store.io_errors() > 0);
    // Version 2's bytes at the old claims; then a kill.
    store.insert(0, &Bytes::from(vec![2; 4_000]), 0..0);
    std::mem::forget(store);
    std::fs::remove_dir(&tmp).unwrap();
    let cache = DiskCache::open(&dir.0, 1 << 20).unwrap();
    let store = cache.store("t").unwrap();
    let version = store.validator().cloned();
    drop(store);
    drop(cache);
    assert_claims_only(&dir.0, "t", |_| {
        if version.as_ref() == Some(&v1) { 1 } else { 2 }
    });
}

#[test]
fn bytes_a_kill_left_past_the_last_claim_are_cut_when_the_cache_opens() {
    let dir = TempDir::new("unclaimed-tail");
    let cache = DiskCache::open(&dir.0, 1 << 20).unwrap();
    let mut store = cache.store("t").unwrap().with_sync_every(u64::MAX);
    store.set_total_len(Some(1 << 20));
    assert_eq!(
        store.insert(0, &Bytes::from(vec![1; 100_000]), 0..0),
        100_000
    );
    store.publish().unwrap();
    // Written, not published; then a kill.
    let rest = Bytes::from(vec![1; 500_000]);
    assert_eq!(store.insert(100_000, &rest, 0..0), 500_000);
    std::mem::forget(store);
    drop(cache);
    let cache = DiskCache::open(&dir.0, 1 << 20).unwrap();
    assert_eq!(cache.used(), 100_000);
    let on_disk = data_on_disk(&dir.0);
    assert!(
        on_disk <= cache.used() + DISK_CHUNK as u64,
        "{on_disk} bytes on disk, {} held",
        cache.used()
    );
}

/// `Store::keep` as a store that writes (the trait's default): the bytes come back exactly
/// when not all of them are held, and what it stored is what `insert` would have stored.
#[test]
fn keep_gives_the_bytes_back_when_the_disk_store_has_not_all_of_them() {
    let dir = TempDir::new("keep");
    let cache = DiskCache::open(&dir.0, 10_000).unwrap();
    let mut store = cache.store("k").unwrap();
    let bytes = |at: u64, len: u64| Bytes::from((at..at + len).map(pattern).collect::<Vec<_>>());
    assert_eq!(store.keep(0, bytes(0, 4_000), 0..0), (4_000, None));
    // Half held already: the rest is stored, and all of it is held.
    assert_eq!(store.keep(2_000, bytes(2_000, 4_000), 0..0), (2_000, None));
    // Past the budget (10 000): a prefix is stored, the bytes come back whole.
    let over = bytes(6_000, 8_000);
    let (stored, back) = store.keep(6_000, over.clone(), 0..0);
    assert!(
        stored < 8_000,
        "stored {stored} of 8000 over a budget of 10000"
    );
    assert_eq!(back, Some(over));
    assert_eq!(store.held_until(0), 6_000 + stored);
    assert_eq!(store.get(0, 100).unwrap(), bytes(0, 100));
}
