//! Timing one run: two threads started together, wall time to the consumer's end, and each
//! thread's executor parks and CPU time.

use std::future::Future;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use futures::executor::block_on;

use crate::payload::Verify;
use crate::workloads::Contender;

/// The calling thread's voluntary context switches so far (Linux; 0 elsewhere): each is a
/// park of the executor, so their count shows how often a side went to sleep.
fn voluntary_switches() -> u64 {
    std::fs::read_to_string("/proc/thread-self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// The calling thread's time on a CPU so far, in ns (Linux schedstat; 0 elsewhere): unlike
/// wall time it does not count waiting for a core that other processes hold.
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// One run of one contender.
#[derive(Clone, Copy)]
pub struct Run {
    pub time: Duration,
    /// Voluntary context switches of both threads (executor parks).
    pub parks: u64,
    /// CPU time of both threads, in ns.
    pub cpu: u64,
}

/// Runs `producer` and `consumer` on two threads, each under `block_on`; returns the time
/// from the common start to the consumer's end and checks the byte count it reports.
pub fn two_threads<P, C>(expected: u64, producer: P, consumer: C) -> Run
where
    P: Future<Output = ()> + Send,
    C: Future<Output = u64> + Send,
{
    two_threads_with(
        expected,
        move || block_on(producer),
        move || block_on(consumer),
    )
}

/// Runs `producer` and `consumer` on two threads as they are (each drives itself: an
/// executor's `block_on`, a runtime, or blocking calls); times and checks as [`two_threads`].
pub fn two_threads_with<P, C>(expected: u64, producer: P, consumer: C) -> Run
where
    P: FnOnce() + Send,
    C: FnOnce() -> u64 + Send,
{
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let barrier = &barrier;
        let p = s.spawn(move || {
            barrier.wait();
            let (before, cpu) = (voluntary_switches(), cpu_ns());
            producer();
            (voluntary_switches() - before, cpu_ns() - cpu)
        });
        let c = s.spawn(move || {
            barrier.wait();
            let (before, cpu) = (voluntary_switches(), cpu_ns());
            let start = Instant::now();
            let got = consumer();
            let elapsed = start.elapsed();
            assert_eq!(got, expected, "a contender lost bytes");
            (elapsed, voluntary_switches() - before, cpu_ns() - cpu)
        });
        let (p_parks, p_cpu) = p.join().unwrap();
        let (time, c_parks, c_cpu) = c.join().unwrap();
        Run {
            time,
            parks: p_parks + c_parks,
            cpu: p_cpu + c_cpu,
        }
    })
}

/// Runs each contender once untimed with every byte checked, then `runs` times
/// interleaved (run 1 of each, then run 2 of each, ...) so that noise from other processes
/// spreads over all of them, checked as `verify` says; returns each contender's timed runs.
pub fn interleave(contenders: &[Contender], runs: usize, verify: Verify) -> Vec<Vec<Run>> {
    for c in contenders {
        (c.run)(Verify::Full);
    }
    let mut out = vec![Vec::with_capacity(runs); contenders.len()];
    for _ in 0..runs {
        for (c, runs) in contenders.iter().zip(&mut out) {
            runs.push((c.run)(verify));
        }
    }
    out
}
