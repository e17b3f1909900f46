//! The player of `examples/player` with `--cache-dir`: every fixture in `tests/fixtures`,
//! served by the scripted HTTP server (which counts requests and bytes as it sends them),
//! played twice through a `DiskCache`. The second play makes no request and decodes the
//! same packets; a first play stopped half-way leaves the second to fetch only what is
//! missing.
//!
//! `cargo test --test player_disk -- --nocapture` prints a row per file: time to the first
//! packet of the first play, of the second, and of the same file read from the local disk.

mod common;
#[path = "../examples/player/play.rs"]
mod play;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::hang_guard;
use common::script_server::{Reply, ScriptServer};
use kithara_stream::sources::StoreParams;
use kithara_stream::store::DiskCache;
use play::Playback;
use tokio::runtime::Runtime;

const SEEKS: [f64; 7] = [4.0, 1.0, 7.6, 0.0, 2.5, 7.9, 5.5];
const AFTER_SEEK: usize = 12;
const FIXTURES: [&str; 7] = [
    "tone-chirp-pcm16.wav",
    "tone-chirp-96k.mp3",
    "tone-chirp.flac",
    "tone-chirp-vorbis.ogg",
    "tone-chirp-aac-moov-end.m4a",
    "tone-chirp-aac-faststart.m4a",
    "tone-chirp-alac.m4a",
];

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let path =
            std::env::temp_dir().join(format!("kithara-player-disk-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn extension(name: &str) -> Option<&str> {
    Path::new(name).extension().and_then(|e| e.to_str())
}

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// One play of `name` from `server` through the cache's store of `name`, stopped at
/// `stop_after` seconds if given; the store is closed when it returns.
fn play_cached(
    rt: &Runtime,
    cache: &DiskCache,
    server: &ScriptServer,
    name: &str,
    params: StoreParams,
    stop_after: Option<f64>,
) -> Playback {
    let counters = play::Counters::default();
    let fetch = play::http_fetch(
        &server.url(name),
        &counters,
        play::retry_policy(Duration::from_secs(5)),
    );
    let store = cache.store(name).unwrap();
    let (reader, _watch, engine) = play::open_on_disk(fetch, store, params, rt.handle());
    let played = play::play_until(
        Box::new(reader),
        extension(name),
        &SEEKS,
        AFTER_SEEK,
        stop_after,
    );
    rt.block_on(engine).unwrap();
    played.unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.1} ms", d.as_secs_f64() * 1e3))
}

#[test]
fn a_second_play_from_the_disk_cache_makes_no_request() {
    hang_guard("player_disk_second", || {
        let rt = common::tokio_runtime();
        let dir = TempDir::new("second");
        let cache = DiskCache::open(&dir.0, 64 << 20).unwrap();
        let params = StoreParams::with_budget(0);
        for name in FIXTURES {
            let data = Arc::new(std::fs::read(fixture_path(name)).unwrap());
            let reference = play::play(
                Box::new(Cursor::new(data.to_vec())),
                extension(name),
                &SEEKS,
                AFTER_SEEK,
            )
            .unwrap();
            let served = data.clone();
            let server = ScriptServer::start(move |request| Reply::range(&served, request));
            let first = play_cached(&rt, &cache, &server, name, params, None);
            let after_first = server.requests();
            let second = play_cached(&rt, &cache, &server, name, params, None);
            assert_eq!(
                server.requests(),
                after_first,
                "{name}: the second play made a request"
            );
            assert!(
                first.whole == reference.whole,
                "{name}: the first play decoded other packets"
            );
            assert!(
                second.whole == first.whole,
                "{name}: the second play decoded other packets"
            );
            for (a, b) in first.seeks.iter().zip(&second.seeks) {
                assert!(
                    a.packets == b.packets,
                    "{name}: the seek to {} s differs",
                    a.target
                );
            }
            // The same file from the local disk, for the time to the first packet.
            let counters = play::Counters::default();
            let fetch = play::counted(play::file_fetch(fixture_path(name)), &counters);
            let (reader, _watch) = play::open(fetch, data.len() as u64, rt.handle());
            let local = play::play(Box::new(reader), extension(name), &SEEKS, AFTER_SEEK).unwrap();
            println!(
                "{name:32} first play {} ({after_first} requests), second {} (0 requests), \
                 local file {}",
                ms(first.first_packet),
                ms(second.first_packet),
                ms(local.first_packet),
            );
        }
    });
}

#[test]
fn a_play_stopped_half_way_resumes_with_only_the_missing_bytes() {
    hang_guard("player_disk_resume", || {
        let rt = common::tokio_runtime();
        let dir = TempDir::new("resume");
        let cache = DiskCache::open(&dir.0, 64 << 20).unwrap();
        // A short look-ahead, so that a stopped play has not fetched the whole file.
        let params = StoreParams::with_budget(0).with_look_ahead(32 << 10);
        // A small file, or one whose probe reads it all, is kept whole by then.
        let mut partial = 0;
        for name in FIXTURES {
            let data = Arc::new(std::fs::read(fixture_path(name)).unwrap());
            let len = data.len() as u64;
            let served = data.clone();
            let server = ScriptServer::start(move |request| Reply::range(&served, request));
            play_cached(&rt, &cache, &server, name, params, Some(1.0));
            let kept = cache.store(name).unwrap().held_bytes();
            let sent_first = server.body_bytes();
            let whole = play_cached(&rt, &cache, &server, name, params, None);
            assert!(!whole.whole.is_empty());
            let sent = server.body_bytes() - sent_first;
            println!(
                "{name:32} stopped at 1 s: kept {kept} of {len}; the next play fetched {sent} \
                 ({:.2}x what was missing)",
                sent as f64 / (len - kept).max(1) as f64
            );
            partial += usize::from(kept < len);
            assert!(
                sent <= len - kept,
                "{name}: fetched {sent}, but only {} were missing",
                len - kept
            );
            assert_eq!(cache.store(name).unwrap().held_bytes(), len);
        }
        assert!(
            partial >= 2,
            "only {partial} stopped plays left bytes to fetch"
        );
    });
}
