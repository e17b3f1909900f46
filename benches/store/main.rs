//! `CachedSource` and its store, measured: seek latency into held and missing bytes, and the
//! store's cost on the pass-through path against `RangeSource` (the ring alone).
//!
//! ```sh
//! cargo bench --bench store                                   # 256 MiB, 9 runs, 2000 seeks
//! KITHARA_STORE_MIB=64 KITHARA_STORE_RUNS=3 KITHARA_STORE_SEEKS=500 cargo bench --bench store
//! KITHARA_STORE_ONLY=seek cargo bench --bench store           # only the seek table
//! ```
//!
//! Every contender reads the same in-memory resource ([`resource`]): a 17-chunk pseudo-random
//! pattern of 16 KiB `Bytes` whose byte values depend on the position, fetched without a copy
//! or an allocation per chunk, so that what differs between contenders is the source. The
//! engine runs under `exec::block_on` on a thread of its own; 256 KiB ring, 32 KiB items.
//!
//! - [`seek`]: the time from `BlockingReader::seek` to the first byte read, at pseudo-random
//!   positions (fixed seed) at least 1 MiB apart in a 16 MiB resource: into bytes the store
//!   holds (all of the resource, read once before), and into missing bytes whose fetch
//!   answers after a simulated round trip (a timer thread completes the response future) or
//!   at once. Contenders run in interleaved rounds; every byte read is checked.
//! - [`throughput`]: the resource streamed from 0 to its end through `RangeSource` and through
//!   `CachedSource` with a budget of 0, of 1 MiB (it evicts), of the whole resource, and a
//!   second pass served from the store; interleaved run by run, each contender first once
//!   untimed with every byte checked, the timed runs sampled (first, last and one byte per
//!   4 KiB of each item). The consumer drains the stream's `Bytes` (no copy), which makes
//!   the store's cost as visible as it can be. The chunks are slices of the resource's
//!   memory, which stays alive anyway, so the store keeps them as they come
//!   (`StoreParams::with_zero_copy`). With `KITHARA_STORE_FETCH=copy` each chunk is read
//!   into an allocation of its own, as a network client's are, and the store has its
//!   default settings: it copies what it keeps.
//! - [`cost`]: the same contenders on one thread without the engine: each source's own
//!   cost per chunk, without the noise of two threads handing chunks over.
//! - [`http`]: the same contenders over HTTP on 127.0.0.1 (axum and tower-http serving a
//!   file, reqwest fetching it), with the default settings: the store copies what it
//!   keeps, and hyper reads into its buffer again. A peer that keeps every chunk in the consumer
//!   shows what holding the whole resource in memory costs by itself.
//!
//! Environment:
//! - `KITHARA_STORE_MIB` (default 256): the streamed resource, in MiB.
//! - `KITHARA_STORE_RUNS` (default 9): streaming runs per contender; medians are reported.
//! - `KITHARA_STORE_SEEKS` (default 2000): seeks per contender.
//! - `KITHARA_STORE_RTT_US` (default 1000): the simulated round trip of a fetch, in µs.
//! - `KITHARA_STORE_ONLY` (optional): `seek`, `stream`, `cost` or `http`.
//! - `KITHARA_STORE_HTTP_MIB` (default 64): the resource of the HTTP table, in MiB.
//! - `KITHARA_STORE_FETCH=copy` (optional): the streaming fetch copies each chunk into an
//!   allocation of its own, as a network client's reads do, instead of handing out slices.
//! - `KITHARA_STORE_CONTENDER` (optional): stream only through the contenders whose name
//!   contains this text (for profiling one; the ratios are then to the first one left).

mod cost;
mod http;
mod resource;
mod seek;
mod throughput;

use std::time::Duration;

use kithara_stream::StreamParams;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
/// The fetch's chunk.
const CHUNK: usize = 16 * KIB;
/// The ring's capacity.
const CAPACITY: usize = 256 * KIB;
/// The resource of the seek table.
const SEEK_RESOURCE: u64 = 16 << 20;
/// Interleaved rounds of the seek table.
const SEEK_ROUNDS: usize = 10;

fn params() -> StreamParams {
    StreamParams::default().with_buffer_capacity(CAPACITY)
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The median of `v` (the upper one of an even count).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The 1, 5 and 15 minute load averages (Linux).
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    let mib = env_usize("KITHARA_STORE_MIB", 256).max(1);
    let runs = env_usize("KITHARA_STORE_RUNS", 9).max(1);
    let seeks = env_usize("KITHARA_STORE_SEEKS", 2000).max(SEEK_ROUNDS);
    let rtt = Duration::from_micros(env_usize("KITHARA_STORE_RTT_US", 1000) as u64);
    let only = std::env::var("KITHARA_STORE_ONLY").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "kithara-stream store: {cores} cores, load average {} at the start; ring {} KiB, fetch \
         chunks {} KiB",
        load(),
        CAPACITY / KIB,
        CHUNK / KIB
    );

    if only.is_empty() || only == "seek" {
        let resource = resource::Resource::new(SEEK_RESOURCE);
        let timer = resource::Timer::new();
        let mut contenders = seek::contenders(&resource, rtt, &timer);
        seek::measure(&resource, &mut contenders, seeks, SEEK_ROUNDS);
        seek::print(&mut contenders);
        contenders.into_iter().for_each(seek::Contender::finish);
        println!("(load average {} after the seeks)", load());
    }

    if only.is_empty() || only == "stream" {
        let resource = resource::Resource::new((mib * MIB) as u64);
        let contenders = contenders(resource.len());
        let all_runs = throughput::interleave(&resource, &contenders, runs);
        throughput::print(&contenders, &all_runs, resource.len());
        println!(
            "(median of {runs} interleaved runs; ratios are medians of the per-round ratios; \
             load average {} after the runs)",
            load()
        );
    }

    if only.is_empty() || only == "cost" {
        let resource = resource::Resource::new((mib * MIB) as u64);
        cost::measure(&resource, &contenders(resource.len()), runs);
        println!(
            "(median of {runs} interleaved runs; load average {} after them)",
            load()
        );
    }

    if only.is_empty() || only == "http" {
        let mib = env_usize("KITHARA_STORE_HTTP_MIB", 64).max(1);
        let resource = resource::Resource::new((mib * MIB) as u64);
        http::measure(&resource, &contenders(resource.len()), runs);
        println!(
            "(median of {runs} interleaved runs; load average {} after them)",
            load()
        );
    }
}

/// The streaming contenders for a resource of `len`, as `KITHARA_STORE_CONTENDER` keeps them.
fn contenders(len: u64) -> Vec<throughput::Contender> {
    let mut contenders = throughput::contenders(len);
    if let Ok(who) = std::env::var("KITHARA_STORE_CONTENDER") {
        contenders.retain(|c| c.name.contains(&who));
    }
    contenders
}
