//! A player's whole path: a URL (reqwest, Range requests) or a file (tokio's, through
//! tokio-util's compat layer) behind a `CachedSource`, the engine spawned on tokio, symphonia
//! on a blocking thread through `io::BlockingReader`. It decodes the whole track, then each
//! `--seek` in order (`SeekMode::Accurate`, a dozen packets after each), and prints one line:
//! packets decoded, requests made, bytes fetched, time to the first packet, median and worst
//! seek latency. It exits non-zero on any decode error.
//!
//! ```text
//! cargo run --example player -- <URL or path> [--seek SECONDS]... [--cache BYTES]
//! cargo run --example player     # serves tests/fixtures/tone-chirp-aac-moov-end.m4a itself
//! ```
//!
//! `--cache` is the store's budget (default 64 MiB; 0 keeps nothing but the engine's ring);
//! `--trace` prints each range requested to stderr.
//! Requests and bytes are counted in the fetch, as the client receives them. URLs are plain
//! `http://` (the dev-dependency reqwest is built without TLS).

mod play;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use symphonia::core::io::MediaSource;

/// The fixture served when no resource is given, and the seeks done on it.
const FIXTURE: &str = "tone-chirp-aac-moov-end.m4a";
const DEFAULT_SEEKS: [f64; 5] = [4.0, 1.0, 7.5, 0.0, 6.0];
const PACKETS_AFTER_SEEK: usize = 12;
/// No byte for this long counts as a stall: the fetch is made again from the byte reached.
const STALL: std::time::Duration = std::time::Duration::from_secs(5);

const USAGE: &str = "usage: player [<URL or path> [--seek SECONDS]... [--cache BYTES] [--trace]]";

struct Args {
    resource: Option<String>,
    seeks: Vec<f64>,
    cache: u64,
    trace: bool,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        resource: None,
        seeks: Vec::new(),
        cache: 64 << 20,
        trace: false,
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--seek" => {
                let seconds = value("--seek")?;
                let seconds: f64 = seconds
                    .parse()
                    .map_err(|_| format!("--seek {seconds}: not a number of seconds"))?;
                if !seconds.is_finite() || seconds < 0.0 {
                    return Err(format!("--seek {seconds}: not a time in the track"));
                }
                parsed.seeks.push(seconds);
            }
            "--cache" => {
                let bytes = value("--cache")?;
                parsed.cache = bytes
                    .parse()
                    .map_err(|_| format!("--cache {bytes}: not a number of bytes"))?;
            }
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
    let (resource, seeks) = match args.resource {
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
    let (reader, watch) = if is_url {
        let fetch = play::http_fetch(&resource, &counters, play::retry_policy(STALL));
        let (reader, watch) = play::open(fetch, args.cache, &runtime);
        (Box::new(reader) as Box<dyn MediaSource>, watch)
    } else {
        let fetch = play::counted(play::file_fetch(PathBuf::from(&resource)), &counters);
        let (reader, watch) = play::open(fetch, args.cache, &runtime);
        (Box::new(reader) as Box<dyn MediaSource>, watch)
    };

    // The decoder blocks: a blocking thread, never an async task.
    let played = tokio::task::spawn_blocking(move || {
        play::play(reader, extension.as_deref(), &seeks, PACKETS_AFTER_SEEK)
    })
    .await
    .expect("the decoder thread");
    match played {
        Ok(playback) => {
            let total = watch.get().total;
            println!(
                "{resource}: {}",
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
