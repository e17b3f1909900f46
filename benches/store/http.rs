//! The store's cost on a real pass-through: the resource served from a file by axum and
//! tower-http on 127.0.0.1, fetched with reqwest (`HttpFetch`), streamed from 0 to its end
//! through `RangeSource` and through `CachedSource` under the [`throughput`] budgets, run
//! after run, interleaved. Here the bytes cross a socket and are copied into the client's
//! buffers, as they are for a player; the [`throughput`] table is the worst case, where a
//! chunk costs nothing to fetch.
//!
//! [`throughput`]: crate::throughput

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::executor::block_on;
use kithara_stream::sources::{CachedSource, HttpFetch, Progress, RangeSource, StoreParams};
use kithara_stream::{Engine, EngineSource, StreamMsg};

use crate::resource::{Check, Resource};
use crate::throughput::{Contender, Serve};
use crate::{MIB, median, params};

/// The resource written to a file in the temporary directory, removed on drop.
struct File(PathBuf);

impl File {
    fn new(resource: &Resource) -> Self {
        let path = std::env::temp_dir().join(format!("kithara-store-bench-{}", std::process::id()));
        let mut file = std::io::BufWriter::new(std::fs::File::create(&path).expect("a temp file"));
        let mut pos = 0;
        while pos < resource.len() {
            let run = resource.run(pos);
            let n = run.len().min((resource.len() - pos) as usize);
            file.write_all(&run[..n]).expect("write the resource");
            pos += n as u64;
        }
        file.flush().expect("write the resource");
        Self(path)
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Serves `file` on 127.0.0.1 from `runtime`: its URL.
fn serve(runtime: &tokio::runtime::Runtime, file: &File) -> String {
    let app = axum::Router::new()
        .route_service("/resource", tower_http::services::ServeFile::new(&file.0));
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind 127.0.0.1");
    let url = format!("http://{}/resource", listener.local_addr().unwrap());
    runtime.spawn(async move { axum::serve(listener, app).await });
    url
}

/// One pass of `row`: the engine on `runtime`, the consumer on this thread, every byte
/// checked (`full`) or samples of each item. Wall time from the engine's start to the last
/// byte.
fn run(
    runtime: &tokio::runtime::Runtime,
    fetch: &HttpFetch,
    resource: &Resource,
    row: &Row<'_>,
    full: bool,
) -> Duration {
    let range = || RangeSource::new(fetch.clone());
    match row {
        Row::Holding => pass(runtime, range(), resource, full, true),
        Row::Contender(c) => match c.serve {
            Serve::Range => pass(runtime, range(), resource, full, false),
            Serve::Cached(budget) => {
                let source = CachedSource::new(fetch.clone(), StoreParams::with_budget(budget));
                pass(runtime, source, resource, full, false)
            }
            Serve::Replay => unreachable!("a replay makes no request"),
        },
    }
}

/// A row of the table: a contender, or the peer that shows what holding all of the
/// resource in memory costs by itself.
enum Row<'a> {
    Contender(&'a Contender),
    /// `RangeSource`, and a consumer that keeps every chunk to the end.
    Holding,
}

impl Row<'_> {
    fn name(&self) -> &str {
        match self {
            Row::Contender(c) => &c.name,
            Row::Holding => "RangeSource, the consumer keeps every chunk",
        }
    }
}

/// One pass; with `hold` the consumer keeps every chunk until the end.
fn pass<S>(
    runtime: &tokio::runtime::Runtime,
    source: S,
    resource: &Resource,
    full: bool,
    hold: bool,
) -> Duration
where
    S: EngineSource<Control = (), Event = Progress>,
    S::Error: std::fmt::Display,
{
    let start = Instant::now();
    let (engine, handle, mut stream) = Engine::build(source, params());
    let engine = runtime.spawn(engine.run());
    let mut check = Check::new(resource, 0, full);
    let mut held = Vec::new();
    block_on(async {
        while check.pos < resource.len() {
            match stream.next().await {
                Some(Ok(StreamMsg::Data(bytes))) => {
                    check.bytes(&bytes);
                    if hold {
                        held.push(bytes);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(error)) => panic!("stream failed at {}: {error}", check.pos),
                None => panic!("stream ended at {} of {}", check.pos, resource.len()),
            }
        }
    });
    drop(held);
    let time = start.elapsed();
    drop((stream, handle));
    runtime.block_on(engine).expect("the engine's task");
    time
}

/// Each contender once untimed with every byte checked, then `runs` interleaved rounds;
/// the table of medians, and of the per-round ratios to the first contender.
pub fn measure(resource: &Resource, contenders: &[Contender], runs: usize) {
    let mut contenders: Vec<Row<'_>> = contenders
        .iter()
        .filter(|c| !matches!(c.serve, Serve::Replay))
        .map(Row::Contender)
        .collect();
    contenders.push(Row::Holding);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let file = File::new(resource);
    let fetch = HttpFetch::new(reqwest::Client::new(), serve(&runtime, &file));
    for c in &contenders {
        run(&runtime, &fetch, resource, c, true);
    }
    let mut all = vec![Vec::with_capacity(runs); contenders.len()];
    for _ in 0..runs {
        for (c, times) in contenders.iter().zip(&mut all) {
            times.push(run(&runtime, &fetch, resource, c, false).as_secs_f64());
        }
    }
    let mib = resource.len() as f64 / MIB as f64;
    println!("\n| HTTP on 127.0.0.1, {mib:.0} MiB | MiB/s | throughput / ring alone | runs ms |");
    println!("|---|---:|---:|---|");
    for (c, times) in contenders.iter().zip(&all) {
        let ratio = median(
            times
                .iter()
                .zip(&all[0])
                .map(|(t, base)| base / t)
                .collect(),
        );
        let ms: Vec<String> = times.iter().map(|t| format!("{:.0}", t * 1e3)).collect();
        println!(
            "| {} | {:.0} | {ratio:.2}x | {} |",
            c.name(),
            mib / median(times.clone()),
            ms.join(" ")
        );
    }
}
