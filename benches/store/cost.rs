//! The sources' own cost per chunk, on one thread: each contender's writer task polled in a
//! loop with a no-op waker, its `Bytes` dropped at once. No engine, no ring and no second
//! thread, so what differs between the contenders is all there is: the store's bookkeeping
//! against `RangeSource`'s pass-through. The same resource and budgets as [`throughput`].
//!
//! [`throughput`]: crate::throughput

use std::hint::black_box;
use std::io;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use futures::Stream;
use kithara_stream::exec::block_on;
use kithara_stream::sources::{CachedSource, Progress, RangeSource, StoreParams};
use kithara_stream::{EngineSource, StreamMsg};

use crate::resource::{MemoryFetch, Resource};
use crate::throughput::{Contender, Serve};
use crate::{CHUNK, median, params};

/// Nanoseconds per chunk of one pass of `c` over `resource`: the replay contender after an
/// untimed first pass, from a seek to 0.
pub fn run(resource: &Resource, c: &Contender) -> f64 {
    let fetch = MemoryFetch::new(resource);
    let len = resource.len();
    // Slices of the resource's memory, alive anyway: kept as they come.
    let store_params = |budget| StoreParams::with_budget(budget).with_zero_copy(true);
    match c.serve {
        Serve::Range => pass(&RangeSource::new(fetch), 0, len, false),
        Serve::Cached(budget) => {
            let source = CachedSource::new(fetch, store_params(budget));
            pass(&source, 0, len, false)
        }
        Serve::Replay => {
            let source = CachedSource::new(fetch, store_params(len));
            pass(&source, 0, len, false);
            pass(&source, 0, len, true)
        }
    }
}

/// Drains the writer task of `source` from `from` (a seek with `seek`) to `len`.
fn pass<S>(source: &S, from: u64, len: u64, seek: bool) -> f64
where
    S: EngineSource<Error = io::Error, Control = (), Event = Progress>,
{
    let start = Instant::now();
    let opened = if seek {
        block_on(source.seek_bytes(from, ()))
    } else {
        block_on(source.open(params()))
    };
    let (task, ()) = opened.unwrap_or_else(|_| panic!("the source opens"));
    let mut task = pin!(task);
    let mut cx = Context::from_waker(Waker::noop());
    let mut pos = from;
    while pos < len {
        match task.as_mut().poll_next(&mut cx) {
            Poll::Ready(Some(Ok(StreamMsg::Data(bytes)))) => {
                pos += bytes.len() as u64;
                black_box(bytes);
            }
            Poll::Ready(Some(Ok(_))) => {}
            Poll::Ready(Some(Err(_))) => panic!("the source failed at {pos}"),
            Poll::Ready(None) => panic!("the source ended at {pos} of {len}"),
            Poll::Pending => panic!("an in-memory fetch waited at {pos}"),
        }
    }
    start.elapsed().as_nanos() as f64 / (len as f64 / CHUNK as f64)
}

/// `runs` interleaved rounds over `contenders`, and the table: the median ns per chunk and
/// the median of the per-round differences to the first contender.
pub fn measure(resource: &Resource, contenders: &[Contender], runs: usize) {
    let mut all = vec![Vec::with_capacity(runs); contenders.len()];
    for _ in 0..runs {
        for (c, ns) in contenders.iter().zip(&mut all) {
            ns.push(run(resource, c));
        }
    }
    println!("\n| one thread, no ring | ns/chunk | ns/chunk over RangeSource |");
    println!("|---|---:|---:|");
    for (c, ns) in contenders.iter().zip(&all) {
        let over = median(ns.iter().zip(&all[0]).map(|(n, base)| n - base).collect());
        println!("| {} | {:.0} | {over:+.0} |", c.name, median(ns.clone()));
    }
}
