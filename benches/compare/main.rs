//! kithara-stream beside the byte pipes and channels people use today, in one run.
//!
//! ```sh
//! cargo bench --bench compare                               # full run: 512 MiB per contender, 5 runs
//! KITHARA_BENCH_MIB=64 KITHARA_BENCH_RUNS=3 cargo bench --bench compare   # quick
//! KITHARA_BENCH_SVG=docs/bench.svg cargo bench --bench compare            # refresh the chart
//! ```
//!
//! Every contender moves the same bytes from a producer thread to a consumer thread, each
//! thread driven by `futures::executor::block_on` (the same simple executor for all). Runs
//! interleave the contenders (run 1 of each, then run 2 of each, ...) so that noise from
//! other processes spreads over all of them; the table shows the median of the runs.
//! Workload 5 is the exception: its consumer is a blocking `std::io::Read` on a plain thread
//! (no executor), and stream-download's producer is the tokio runtime it needs.
//!
//! Every consumer checks what it receives ([`payload`]): the stream is a 17-chunk
//! pseudo-random pattern, so each byte's value depends on its position. Each contender runs
//! once untimed with every byte compared; the timed runs compare, at the consumer's running
//! offset, samples of every received slice (its first and last byte and one per 4 KiB; all
//! of a slice up to 256 bytes), which catches a lost, repeated, reordered, shifted or
//! overwritten chunk at a few loads per chunk. The header line prints what a check costs.
//!
//! Environment:
//! - `KITHARA_BENCH_MIB` (default 512): payload per contender and run, in MiB.
//! - `KITHARA_BENCH_RUNS` (default 5): runs per contender; the median is reported.
//! - `KITHARA_BENCH_SVG` (default `target/compare.svg`): where the chart is written.
//! - `KITHARA_BENCH_ONLY` (optional): run only the workloads it names, comma-separated: a
//!   number names that workload, other text the workloads whose title contains it.
//! - `KITHARA_BENCH_CONTENDER` (optional): run only contenders whose name contains this
//!   text (for profiling one of them; ratios need the peers).
//! - `KITHARA_BENCH_VERIFY` (default `sample`): `full` compares every byte in the timed runs
//!   too (to see what that costs; it touches every byte a zero-copy contender never reads).
//!
//! Modules: [`workloads`] (what runs, numbered as in the README), [`contenders`] (one module
//! per group of contenders), [`harness`] (two threads, wall time, parks, CPU time),
//! [`payload`] (the bytes and their check), [`report`] (progress, markdown table, chart).

mod contenders;
mod harness;
mod payload;
mod report;
mod workloads;

use payload::Verify;
use report::Row;
use workloads::Kind;

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;
/// Ring capacity for every contender (channels get `CAPACITY / item size` slots).
const CAPACITY: usize = 256 * KIB;
/// The source's chunk in workload 1 and the slice size in workload 2.
const CHUNK: usize = 16 * KIB;
/// The message size of workload 3.
const SMALL: usize = 64;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let mib = env_usize("KITHARA_BENCH_MIB", 512).max(1);
    let runs = env_usize("KITHARA_BENCH_RUNS", 5).max(1);
    let only = std::env::var("KITHARA_BENCH_ONLY").unwrap_or_default();
    let svg_path =
        std::env::var("KITHARA_BENCH_SVG").unwrap_or_else(|_| "target/compare.svg".into());
    let verify = match std::env::var("KITHARA_BENCH_VERIFY").as_deref() {
        Ok("full") => Verify::Full,
        Ok("sample") | Err(_) => Verify::Sample,
        Ok(other) => panic!("KITHARA_BENCH_VERIFY={other}: expected `full` or `sample`"),
    };
    let total = mib * MIB;

    let mut workloads = workloads::all(total);
    workloads.retain(|w| w.selected(&only));
    if let Ok(who) = std::env::var("KITHARA_BENCH_CONTENDER") {
        workloads.retain_mut(|w| w.keep_contenders(&who));
    }

    println!(
        "kithara-stream compare: {mib} MiB per contender and run, median of {runs} runs, \
         capacity {} KiB, producer and consumer on two threads under futures::executor::block_on \
         (workload 5: blocking reads; stream-download's producer is a tokio runtime)",
        CAPACITY / KIB
    );
    println!(
        "payload: a 17-chunk pseudo-random pattern; every byte checked in an untimed first run \
         per contender, {} in the timed runs",
        match verify {
            Verify::Full => "every byte",
            Verify::Sample =>
                "first, last and one per 4 KiB of each received slice (all up to 256 B)",
        }
    );
    let pattern = payload::Pattern::windows();
    let cost = |size, v| payload::cost(&pattern, size, v);
    println!(
        "check cost on one thread, data in cache: {:.0} ns per 16 KiB chunk sampled, {:.0} ns \
         in full; {:.1} ns per 64 B message (always in full)",
        cost(CHUNK, Verify::Sample),
        cost(CHUNK, Verify::Full),
        cost(SMALL, Verify::Sample),
    );
    let mut rows: Vec<Row> = Vec::new();
    for w in &workloads {
        match &w.kind {
            Kind::Contenders(contenders) => {
                let first = rows.len();
                let all_runs = harness::interleave(contenders, runs, verify);
                for (c, runs) in contenders.iter().zip(all_runs) {
                    rows.push(Row {
                        workload: w.number,
                        title: w.title(),
                        contender: c.name,
                        ours: c.ours,
                        two_threads: true,
                        bytes: w.items * w.item as u64,
                        items: w.items,
                        runs,
                    });
                }
                report::print_workload(&rows[first..]);
            }
            Kind::PhysicalLimit => {
                let limit = contenders::copy::physical_limit(total, runs);
                let w2 = rows.iter().find(|r| r.workload == 2 && r.ours);
                let limit_rows = report::print_limit(w.title(), &limit, runs, w2);
                rows.extend(limit_rows);
            }
        }
    }

    report::print_markdown(&rows);
    report::write_svg(&svg_path, &rows, mib, runs);
}
