//! The store's cost on the pass-through path: the same resource streamed from 0 to its end
//! through `RangeSource` (the ring alone) and through `CachedSource` under several budgets,
//! run after run, interleaved.

use std::io;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::StreamExt;
use kithara_stream::exec::block_on;
use kithara_stream::sources::{CachedSource, Progress, RangeSource, StoreParams};
use kithara_stream::{Engine, EngineSource, EngineStream, StreamMsg};

use crate::resource::{Check, MemoryFetch, Resource, cpu_ns, thread_dir};
use crate::{CHUNK, MIB, median, params};

/// How a contender serves the resource.
#[derive(Clone, Copy)]
pub enum Serve {
    /// `RangeSource`: one fetch from 0, no store.
    Range,
    /// `CachedSource` with this budget, the first pass (every byte fetched once).
    Cached(u64),
    /// `CachedSource` with a budget of the whole resource: a first pass, untimed, then a
    /// seek to 0 and the timed pass, every byte from the store.
    Replay,
}

pub struct Contender {
    pub name: String,
    pub serve: Serve,
}

/// The contenders for `resource`; the first is the reference.
pub fn contenders(len: u64) -> Vec<Contender> {
    let c = |name: String, serve| Contender { name, serve };
    vec![
        c("RangeSource (ring alone)".into(), Serve::Range),
        c("CachedSource, budget 0".into(), Serve::Cached(0)),
        c(
            "CachedSource, budget 1 MiB (evicts)".into(),
            Serve::Cached(MIB as u64),
        ),
        c(
            format!("CachedSource, budget {} MiB (all)", len / MIB as u64),
            Serve::Cached(len),
        ),
        c("CachedSource, replay from the store".into(), Serve::Replay),
    ]
}

/// One timed pass.
#[derive(Clone, Copy)]
pub struct Run {
    pub time: Duration,
    /// CPU time of the engine's and the consumer's threads, in ns.
    pub cpu: u64,
    /// Fetches made during the timed pass.
    pub fetches: usize,
}

/// Whether the fetch copies each chunk into an allocation of its own
/// (`KITHARA_STORE_FETCH=copy`).
fn copying() -> bool {
    std::env::var("KITHARA_STORE_FETCH").is_ok_and(|f| f == "copy")
}

/// One pass of `c` over `resource`, checked in full or sampled.
pub fn run(resource: &Resource, c: &Contender, full: bool) -> Run {
    let copy = copying();
    let fetch = MemoryFetch::new(resource).copying(copy);
    // Slices of the resource's memory, alive anyway: kept as they come. Chunks read into
    // memory of their own, as a network client's are: the default settings, which copy.
    let store_params = |budget| StoreParams::with_budget(budget).with_zero_copy(!copy);
    let fetches = fetch.fetches();
    let count = || fetches.load(Ordering::Relaxed);
    match c.serve {
        Serve::Range => pass(RangeSource::new(fetch), resource, false, full, count),
        Serve::Cached(budget) => {
            let source = CachedSource::new(fetch, store_params(budget));
            pass(source, resource, false, full, count)
        }
        Serve::Replay => {
            let source = CachedSource::new(fetch, store_params(resource.len()));
            pass(source, resource, true, full, count)
        }
    }
}

/// The engine for `source` on a thread of its own under `block_on`; the consumer drains the
/// stream on this thread (zero-copy: `Bytes` items, checked at the running offset). Times
/// from the engine's start, or with `replay` from the seek to 0 after a first pass, to the
/// last byte.
fn pass<S>(
    source: S,
    resource: &Resource,
    replay: bool,
    full: bool,
    fetches: impl Fn() -> usize,
) -> Run
where
    S: EngineSource<Error = io::Error, Control = (), Event = Progress> + Send + 'static,
{
    let (engine, handle, mut stream) = Engine::build(source, params());
    let (dir_tx, dir_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let engine = std::thread::spawn(move || {
        dir_tx.send(thread_dir()).unwrap();
        go_rx.recv().unwrap();
        block_on(engine.run());
    });
    let (engine_dir, own_dir) = (dir_rx.recv().unwrap(), thread_dir());
    let cpu = || cpu_ns(&engine_dir) + cpu_ns(&own_dir);
    let len = resource.len();
    let drain_all = |stream: &mut EngineStream<(), Progress, io::Error>| {
        block_on(drain(stream, len, &mut Check::new(resource, 0, full)));
    };
    if replay {
        go_tx.send(()).unwrap();
        drain_all(&mut stream);
    }
    let (cpu_before, fetches_before, start) = (cpu(), fetches(), Instant::now());
    if replay {
        block_on(handle.seek_bytes(0)).expect("seek to 0");
    } else {
        // The engine starts with the clock.
        go_tx.send(()).unwrap();
    }
    drain_all(&mut stream);
    let timed = Run {
        time: start.elapsed(),
        cpu: cpu() - cpu_before,
        fetches: fetches() - fetches_before,
    };
    drop((stream, handle));
    engine.join().unwrap();
    timed
}

/// Reads `stream` until `check` has seen `len` bytes.
async fn drain(
    stream: &mut EngineStream<(), Progress, io::Error>,
    len: u64,
    check: &mut Check<'_>,
) {
    while check.pos < len {
        match stream.next().await {
            Some(Ok(StreamMsg::Data(bytes))) => check.bytes(&bytes),
            Some(Ok(_)) => {}
            Some(Err(error)) => panic!("stream failed at {}: {error}", check.pos),
            None => panic!("stream ended at {} of {len}", check.pos),
        }
    }
}

/// Each contender once untimed with every byte checked, then `runs` rounds of one sampled
/// pass each; every contender's runs, in round order.
pub fn interleave(resource: &Resource, contenders: &[Contender], runs: usize) -> Vec<Vec<Run>> {
    for c in contenders {
        run(resource, c, true);
    }
    let mut out = vec![Vec::with_capacity(runs); contenders.len()];
    for _ in 0..runs {
        for (c, runs) in contenders.iter().zip(&mut out) {
            runs.push(run(resource, c, false));
        }
    }
    out
}

/// The markdown table: median throughput and CPU time per 16 KiB chunk, and the medians of
/// the per-round ratios to the reference (the first contender) run in the same round.
pub fn print(contenders: &[Contender], runs: &[Vec<Run>], len: u64) {
    let chunks = len as f64 / CHUNK as f64;
    let gib_s = |r: &Run| len as f64 / r.time.as_secs_f64() / (1u64 << 30) as f64;
    let reference = &runs[0];
    println!(
        "\n| streaming {} MiB | GiB/s | CPU ns/chunk | fetches | throughput / ring alone | CPU / ring alone | runs ms |",
        len / MIB as u64
    );
    println!("|---|---:|---:|---:|---:|---:|---|");
    for (c, runs) in contenders.iter().zip(runs) {
        let speed = median(runs.iter().map(gib_s).collect());
        let cpu = median(runs.iter().map(|r| r.cpu as f64 / chunks).collect());
        let ratio = median(
            runs.iter()
                .zip(reference)
                .map(|(r, base)| gib_s(r) / gib_s(base))
                .collect(),
        );
        let cpu_ratio = median(
            runs.iter()
                .zip(reference)
                .map(|(r, base)| r.cpu as f64 / base.cpu.max(1) as f64)
                .collect(),
        );
        let ms: Vec<String> = runs
            .iter()
            .map(|r| format!("{:.0}", r.time.as_secs_f64() * 1e3))
            .collect();
        println!(
            "| {} | {speed:.2} | {cpu:.0} | {} | {ratio:.2}x | {cpu_ratio:.2}x | {} |",
            c.name,
            runs[0].fetches,
            ms.join(" ")
        );
    }
}
