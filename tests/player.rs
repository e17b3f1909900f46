//! The player of `examples/player` against every fixture in `tests/fixtures`, served by the
//! scripted HTTP server (which counts requests and body bytes as it sends them): the whole
//! decode and seven seeks through reqwest, `CachedSource` at four budgets (the file's size,
//! a quarter of it, 64 KiB, 0), the engine and `BlockingReader`, checked sample for sample
//! against the same decode of the file from memory.
//!
//! `cargo test --test player -- --nocapture` prints a row per file and budget: requests and
//! bytes at the server, seek latencies (the README's table).

mod common;
#[path = "../examples/player/play.rs"]
mod play;

use std::fmt::Write as _;
use std::future::Future;
use std::io::Cursor;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

use common::hang_guard;
use common::script_server::{Reply, ScriptServer};
use kithara_stream::sources::{ByteRange, Fetch, RangeResponse};
use play::{Packet, Playback};

/// Seconds; the fixtures are 8 s long. Back to the start, and twice near the end.
const SEEKS: [f64; 7] = [4.0, 1.0, 7.6, 0.0, 2.5, 7.9, 5.5];
const AFTER_SEEK: usize = 12;
/// After this many packets past a seek the decoder has forgotten the state it was reset
/// from (overlap, bit reservoir): from there on a packet decodes as in the whole decode.
const SETTLED: usize = 4;
/// Far more fetches than any of these playbacks needs: past it, the fetch fails and so does
/// the playback (a runaway loop of fetches fails the test instead of hanging it).
const FETCH_LIMIT: usize = 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Budget {
    /// The file's size.
    File,
    Quarter,
    Kib64,
    Zero,
}

impl Budget {
    fn bytes(self, len: u64) -> u64 {
        match self {
            Self::File => len,
            Self::Quarter => len / 4,
            Self::Kib64 => 64 << 10,
            Self::Zero => 0,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Quarter => "1/4 file",
            Self::Kib64 => "64 KiB",
            Self::Zero => "0",
        }
    }
}

const BUDGETS: [Budget; 4] = [Budget::File, Budget::Quarter, Budget::Kib64, Budget::Zero];

fn extension(name: &str) -> Option<&str> {
    Path::new(name).extension().and_then(|e| e.to_str())
}

/// `fetch`, failing every fetch past the `FETCH_LIMIT`th.
fn limited<F: Fetch>(fetch: F) -> impl Fetch<Error = F::Error> {
    let calls = Arc::new(AtomicUsize::new(0));
    move |range: ByteRange| {
        let calls = calls.fetch_add(1, Ordering::SeqCst);
        // A loop that opens fetches without end fails the engine (and so the test) instead
        // of hanging it.
        assert!(
            calls < FETCH_LIMIT,
            "runaway fetches: more than {FETCH_LIMIT} asked for, the last for {}",
            range.header()
        );
        type Opening<B, E> = Pin<Box<dyn Future<Output = Result<RangeResponse<B>, E>> + Send>>;
        let opening: Opening<F::Body, F::Error> = Box::pin(fetch.fetch(range));
        opening
    }
}

/// Where two decodes part, if they do.
fn differ(what: &str, got: &[Packet], want: &[Packet]) -> Option<String> {
    if let Some(i) = (0..got.len().min(want.len())).find(|&i| got[i] != want[i]) {
        return Some(format!(
            "{what}: packet {i} differs: got {:?}, want {:?}",
            got[i], want[i]
        ));
    }
    (got.len() != want.len()).then(|| format!("{what}: {} packets, want {}", got.len(), want.len()))
}

/// Every difference of `got` from the reference `want`.
fn compare(got: &Playback, want: &Playback) -> Vec<String> {
    let mut problems: Vec<String> = differ("whole decode", &got.whole, &want.whole)
        .into_iter()
        .collect();
    for (i, (got, want)) in got.seeks.iter().zip(&want.seeks).enumerate() {
        let what = format!("seek {i} to {} s", want.target);
        if (got.required_ts, got.actual_ts) != (want.required_ts, want.actual_ts) {
            problems.push(format!(
                "{what}: landed at ts {} for {}, want {} for {}",
                got.actual_ts, got.required_ts, want.actual_ts, want.required_ts
            ));
        }
        problems.extend(differ(&what, &got.packets, &want.packets));
    }
    problems
}

/// The reference decode's own consistency: after each seek, the packets past `SETTLED` are
/// those of the whole decode at the same timestamps.
fn check_reference(name: &str, reference: &Playback) {
    let seconds = reference.seconds();
    assert!(
        (7.9..8.2).contains(&seconds),
        "{name}: the fixture decodes to {seconds} s, not 8"
    );
    assert_eq!(reference.seeks.len(), SEEKS.len());
    for seek in &reference.seeks {
        assert!(
            !seek.packets.is_empty(),
            "{name}: nothing decoded after the seek to {} s",
            seek.target
        );
        for packet in seek.packets.iter().skip(SETTLED) {
            let whole = reference.whole.iter().find(|p| p.ts == packet.ts);
            assert_eq!(
                whole,
                Some(packet),
                "{name}: after the seek to {} s, the packet at ts {} is not the whole decode's",
                seek.target,
                packet.ts
            );
        }
    }
}

/// A tokio runtime that does not wait for its tasks when dropped (a stuck one would block
/// the test's unwinding).
struct Runtime(Option<tokio::runtime::Runtime>);

impl Runtime {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        Self(Some(runtime))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.0.as_ref().unwrap().handle()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// What one playback over HTTP cost, at the server.
struct Row {
    requests: usize,
    bytes: u64,
    latency: Option<(Duration, Duration)>,
}

/// One playback of `data` (`name`) over HTTP with `budget`: its figures, or why it failed.
fn play_http(
    runtime: &Runtime,
    name: &str,
    data: &Arc<Vec<u8>>,
    budget: u64,
    reference: &Playback,
) -> (Row, Vec<String>) {
    let served = data.clone();
    let server = ScriptServer::start(move |request| Reply::range(&served, request));
    play_from(runtime, name, server, budget, reference)
}

/// One playback of `name` from `server`.
fn play_from(
    runtime: &Runtime,
    name: &str,
    server: ScriptServer,
    budget: u64,
    reference: &Playback,
) -> (Row, Vec<String>) {
    let counters = play::Counters::default();
    let policy = play::retry_policy(Duration::from_millis(500));
    let fetch = limited(play::http_fetch(&server.url(name), &counters, policy));
    let (reader, _watch) = play::open(fetch, budget, runtime.handle());
    let played = play::play(Box::new(reader), extension(name), &SEEKS, AFTER_SEEK);
    // The reader is gone, and the engine with it: wait until the server has sent its last.
    let mut figures = (server.requests(), server.body_bytes());
    for _ in 0..100 {
        thread::sleep(Duration::from_millis(20));
        let now = (server.requests(), server.body_bytes());
        if now == figures {
            break;
        }
        figures = now;
    }
    let (requests, bytes) = figures;
    match played {
        Ok(playback) => {
            let row = Row {
                requests,
                bytes,
                latency: playback.seek_latency(),
            };
            (row, compare(&playback, reference))
        }
        Err(error) => {
            let row = Row {
                requests,
                bytes,
                latency: None,
            };
            (row, vec![format!("playback failed: {error}")])
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

/// The fixture `name`, and its decode from memory: the reference.
fn fixture(name: &str) -> (Arc<Vec<u8>>, Playback) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let data = Arc::new(std::fs::read(&path).expect("read the fixture"));
    let reference = play::play(
        Box::new(Cursor::new(data.to_vec())),
        extension(name),
        &SEEKS,
        AFTER_SEEK,
    )
    .unwrap_or_else(|e| panic!("{name} from memory: {e}"));
    (data, reference)
}

/// The whole check of one fixture at every budget.
fn check(name: &'static str) {
    hang_guard(name, move || {
        let (data, reference) = fixture(name);
        let len = data.len() as u64;
        check_reference(name, &reference);

        let runtime = Runtime::new();
        let mut table = String::new();
        let mut failures = Vec::new();
        for budget in BUDGETS {
            let (row, mut problems) =
                play_http(&runtime, name, &data, budget.bytes(len), &reference);
            if budget == Budget::File {
                // One request for the file, and at most one more per seek.
                if row.requests > 1 + SEEKS.len() {
                    problems.push(format!(
                        "{} requests, want at most {}",
                        row.requests,
                        1 + SEEKS.len()
                    ));
                }
                if row.bytes * 100 > len * 105 {
                    problems.push(format!(
                        "{} bytes sent for a file of {len}: {:.3}x, want at most 1.05x",
                        row.bytes,
                        row.bytes as f64 / len as f64
                    ));
                }
            }
            let (median, worst) = row
                .latency
                .map_or(("-".into(), "-".into()), |(m, w)| (ms(m), ms(w)));
            let _ = writeln!(
                table,
                "| {name} | {len} | {} | {} | {} | {:.2}x | {median} | {worst} |{}",
                budget.label(),
                row.requests,
                row.bytes,
                row.bytes as f64 / len as f64,
                if problems.is_empty() { "" } else { " FAILED" },
            );
            failures.extend(
                problems
                    .into_iter()
                    .map(|p| format!("{name}, budget {}: {p}", budget.label())),
            );
        }
        // One print per file, so that the rows of the tests running beside it do not mix in.
        print!("{table}");
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    });
}

#[test]
fn wav_pcm16() {
    check("tone-chirp-pcm16.wav");
}

#[test]
fn mp3() {
    check("tone-chirp-96k.mp3");
}

#[test]
fn flac() {
    check("tone-chirp.flac");
}

#[test]
fn ogg_vorbis() {
    check("tone-chirp-vorbis.ogg");
}

#[test]
fn aac_mp4_moov_at_the_end() {
    check("tone-chirp-aac-moov-end.m4a");
}

#[test]
fn aac_mp4_faststart() {
    check("tone-chirp-aac-faststart.m4a");
}

#[test]
fn alac_mp4() {
    check("tone-chirp-alac.m4a");
}

/// The player plays on through a cut connection and a stalled server: the first response is
/// cut a third of the way in, the second stalls a third of the way into what it sends; every
/// packet still matches the reference, and the file is fetched about once.
#[test]
fn plays_through_a_cut_and_a_stall() {
    let name = "tone-chirp.flac";
    hang_guard("player_faults", move || {
        let (data, reference) = fixture(name);
        let len = data.len() as u64;
        let served = data.clone();
        let server = ScriptServer::start(move |request| {
            let reply = Reply::range(&served, request);
            let third = reply.body.len() / 3;
            match request.number {
                0 => reply.cut_after(third),
                1 => reply.stall_after(third),
                _ => reply,
            }
        });
        let runtime = Runtime::new();
        let (row, problems) = play_from(&runtime, name, server, len, &reference);
        println!(
            "| {name} (cut, then stall) | {len} | file | {} | {} | {:.2}x |",
            row.requests,
            row.bytes,
            row.bytes as f64 / len as f64
        );
        assert!(problems.is_empty(), "{}", problems.join("\n"));
        assert_eq!(row.requests, 3, "the file, and one retry after each fault");
        assert!(
            row.bytes * 100 <= len * 105,
            "{} bytes for {len}",
            row.bytes
        );
    });
}
