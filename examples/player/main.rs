//! A player's whole path: a URL (reqwest, Range requests) or a file (tokio's, through
//! tokio-util's compat layer) behind a `CachedSource`, the engine spawned on tokio, symphonia
//! on a blocking thread through `io::BlockingReader`. It decodes the whole track, then each
//! `--seek` in order (`SeekMode::Accurate`, a dozen packets after each), and prints one line:
//! packets decoded, requests made, bytes fetched, time to the first packet, median and worst
//! seek latency. It exits non-zero on any decode error.
//!
//! ```text
//! cargo run --example player -- <URL or path> [--seek SECONDS]... [--cache BYTES]
//!     [--cache-dir DIR [--key KEY]] [--stop-after SECONDS] [--trace]
//! cargo run --example player     # serves tests/fixtures/tone-chirp-aac-moov-end.m4a itself
//! ```
//!
//! `--cache` is the store's budget (default 64 MiB; 0 keeps nothing but the engine's ring).
//! `--cache-dir` keeps what is fetched on disk instead, in a `DiskCache` of `--cache` bytes
//! (default 1 GiB) that outlives the run: a second run plays what the first fetched without
//! a request. A resource's key is its URL without the query (`--key` names it otherwise).
//! `--stop-after` stops the decode at that time in the track, without the seeks, as a
//! listener who stops half-way; `--trace` prints each range requested to stderr.
//! Requests and bytes are counted in the fetch, as the client receives them. URLs are plain
//! `http://` (the dev-dependency reqwest is built without TLS).

mod play;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kithara_stream::sources::{BufferWatch, Fetch, StoreParams};
use kithara_stream::store::{DiskCache, DiskStore};
use symphonia::core::io::MediaSource;

/// The fixture served when no resource is given, and the seeks done on it.
const FIXTURE: &str = "tone-chirp-aac-moov-end.m4a";
const DEFAULT_SEEKS: [f64; 5] = [4.0, 1.0, 7.5, 0.0, 6.0];
const PACKETS_AFTER_SEEK: usize = 12;
/// No byte for this long counts as a stall: the fetch is made again from the byte reached.
const STALL: std::time::Duration = std::time::Duration::from_secs(5);

const USAGE: &str = "usage: player [<URL or path> [--seek SECONDS]... [--cache BYTES] \
                     [--cache-dir DIR [--key KEY]] [--stop-after SECONDS] [--trace]]";

struct Args {
    resource: Option<String>,
    seeks: Vec<f64>,
    cache: Option<u64>,
    cache_dir: Option<PathBuf>,
    key: Option<String>,
    stop_after: Option<f64>,
    trace: bool,
}

fn seconds(name: &str, value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(seconds) if seconds.is_finite() && seconds >= 0.0 => Ok(seconds),
        Ok(_) => Err(format!("{name} {value}: not a time in the track")),
        Err(_) => Err(format!("{name} {value}: not a number of seconds")),
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        resource: None,
        seeks: Vec::new(),
        cache: None,
        cache_dir: None,
        key: None,
        stop_after: None,
        trace: false,
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--seek" => parsed.seeks.push(seconds("--seek", &value("--seek")?)?),
            "--stop-after" => {
                parsed.stop_after = Some(seconds("--stop-after", &value("--stop-after")?)?);
            }
            "--cache" => {
                let bytes = value("--cache")?;
                let bytes = bytes
                    .parse()
                    .map_err(|_| format!("--cache {bytes}: not a number of bytes"))?;
                parsed.cache = Some(bytes);
            }
            "--cache-dir" => parsed.cache_dir = Some(PathBuf::from(value("--cache-dir")?)),
            "--key" => parsed.key = Some(value("--key")?),
            "--trace" => parsed.trace = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            _ if arg.starts_with("--") => return Err(format!("unknown option {arg}\n{USAGE}")),
            _ if parsed.resource.is_none() => parsed.resource = Some(arg),
            _ => return Err(format!("one resource only\n{USAGE}")),
        }
    }
    Ok(parsed)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let (resource, seeks) = match args.resource.clone() {
        Some(resource) => (resource, args.seeks),
        None => {
            let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
            let url = serve(&fixture.join(FIXTURE)).await;
            let seeks = if args.seeks.is_empty() {
                DEFAULT_SEEKS.to_vec()
            } else {
                args.seeks
            };
            (url, seeks)
        }
    };
    let served = args.resource.is_none();
    let is_url = resource.starts_with("http://") || resource.starts_with("https://");
    // The hint: the extension of the URL's path or of the file.
    let path = resource.split(['?', '#']).next().unwrap_or_default();
    let extension = Path::new(path)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_owned);

    if !is_url {
        if let Err(error) = std::fs::metadata(&resource) {
            eprintln!("{resource}: {error}");
            return ExitCode::FAILURE;
        }
    }
    let mut counters = play::Counters::default();
    if args.trace {
        counters = counters.traced();
    }
    let runtime = tokio::runtime::Handle::current();
    let cache = match &args.cache_dir {
        Some(dir) => match DiskCache::open(dir, args.cache.unwrap_or(1 << 30)) {
            Ok(cache) => Some(cache),
            Err(error) => {
                eprintln!("{}: {error}", dir.display());
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let store = match &cache {
        Some(cache) => {
            // The fixture's URL changes with the port each run: named by the file instead.
            let key = match (&args.key, served) {
                (Some(key), _) => key.clone(),
                (None, true) => FIXTURE.to_owned(),
                (None, false) => play::cache_key(&resource),
            };
            match cache.store(&key) {
                Ok(store) => Some(store),
                Err(error) => {
                    eprintln!("{key}: {error}");
                    return ExitCode::FAILURE;
                }
            }
        }
        None => None,
    };
    let budget = args.cache.unwrap_or(64 << 20);
    let (reader, watch, engine) = if is_url {
        let fetch = play::http_fetch(&resource, &counters, play::retry_policy(STALL));
        boxed(fetch, store, budget, &runtime)
    } else {
        let fetch = play::counted(play::file_fetch(PathBuf::from(&resource)), &counters);
        boxed(fetch, store, budget, &runtime)
    };

    // The decoder blocks: a blocking thread, never an async task.
    let stop_after = args.stop_after;
    let played = tokio::task::spawn_blocking(move || {
        play::play_until(
            reader,
            extension.as_deref(),
            &seeks,
            PACKETS_AFTER_SEEK,
            stop_after,
        )
    })
    .await
    .expect("the decoder thread");
    // The reader is gone: the engine ends and a disk store publishes what it holds.
    if let Some(engine) = engine {
        let _ = engine.await;
    }
    let held = cache
        .as_ref()
        .map(|cache| format!(", {} bytes on disk", cache.used()))
        .unwrap_or_default();
    match played {
        Ok(playback) => {
            let total = watch.get().total;
            println!(
                "{resource}: {}{held}",
                playback.summary(counters.requests(), counters.bytes(), total)
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{resource}: {error}");
            ExitCode::FAILURE
        }
    }
}

type Opened = (
    Box<dyn MediaSource>,
    BufferWatch,
    Option<tokio::task::JoinHandle<()>>,
);

/// `fetch` behind a store on disk if there is one, else in memory of `budget` bytes.
fn boxed<F>(
    fetch: F,
    store: Option<DiskStore>,
    budget: u64,
    runtime: &tokio::runtime::Handle,
) -> Opened
where
    F: Fetch,
    F::Error: std::error::Error + Send + Sync,
{
    match store {
        Some(store) => {
            let (reader, watch, engine) =
                play::open_on_disk(fetch, store, StoreParams::with_budget(0), runtime);
            (Box::new(reader), watch, Some(engine))
        }
        None => {
            let (reader, watch) = play::open(fetch, budget, runtime);
            (Box::new(reader), watch, None)
        }
    }
}

/// Serves `file` on 127.0.0.1 (axum + tower-http's `ServeFile`, which answers Range
/// requests) until the runtime stops; its URL.
async fn serve(file: &Path) -> String {
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("audio");
    let route = format!("/{name}");
    let app = axum::Router::new().route_service(&route, tower_http::services::ServeFile::new(file));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let url = format!("http://{}{route}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}
