//! Seeded multi-thread stress: thousands of random engine lifecycles on a multi-thread
//! executor, with seeks, handle drops, stream drops, source errors and slow-network stalls
//! at random moments; every delivered byte is checked against its offset.
//!
//! `KITHARA_STRESS_SEED` replays a run (the seed is printed on failure and at the start),
//! `KITHARA_STRESS_RUNS` sets the number of lifecycles (default 3000).
#![cfg(not(loom))]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::StreamExt;
use kithara_stream::{Engine, StreamError, StreamParams};

use common::{Config, Spawner, TestError, Tracker, hang_guard};

/// splitmix64: a tiny deterministic generator, enough for choosing scripts.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A size from 1 to `max`, most of them small.
    fn size(&mut self, max: u64) -> u64 {
        let bits = self.below(64 - max.leading_zeros() as u64) + 1;
        (self.below(1 << bits) + 1).min(max)
    }
}

fn seed() -> u64 {
    std::env::var("KITHARA_STRESS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

fn runs() -> u64 {
    std::env::var("KITHARA_STRESS_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000)
}

/// One lifecycle: a random source and params, a random consumer script.
async fn lifecycle(spawner: &Spawner, rng: &mut Rng) {
    let len = rng.below(300_000);
    let chunks: Vec<usize> = (0..rng.below(3) + 1)
        .map(|_| rng.below(40_000) as usize)
        .collect();
    let mut config = Config::new(len).chunks(&chunks);
    if rng.chance(30) {
        config.controls_every = Some(rng.size(50_000));
    }
    if rng.chance(20) {
        config.error_at = Some(rng.below(len + 1));
    }
    let error_at = config.error_at;
    let mut network = None;
    if rng.chance(40) {
        let (tx, rx) = async_channel::bounded::<()>(1);
        config.gate_at = Some((rng.below(len + 1), rx));
        let yields = rng.below(50);
        // The "network" answers after a while: other tasks run meanwhile.
        network = Some(spawner.spawn(async move {
            for _ in 0..yields {
                yield_now().await;
            }
            drop(tx);
        }));
    }
    let capacity = rng.size(65_536) as usize;
    let chunk_size = rng.size(65_536) as usize;
    let params = StreamParams::default()
        .with_buffer_capacity(capacity)
        .with_chunk_size(chunk_size);
    let (source, stats) = config.build();
    let (engine, handle, mut stream) = Engine::build(source, params);
    let engine = spawner.spawn(engine.run());
    let mut handle = Some(handle);
    let mut tracker = Tracker::new(chunk_size);
    let mut ended = false;

    for _ in 0..rng.below(12) {
        match rng.below(10) {
            // Read some items.
            0..=4 => {
                for _ in 0..rng.below(20) {
                    match stream.next().await {
                        Some(Ok(msg)) => {
                            assert!(!ended, "an item after the end");
                            tracker.accept(msg);
                        }
                        Some(Err(error)) => {
                            assert!(!ended);
                            assert_eq!(error, StreamError::Source(TestError("source error")));
                            assert_eq!(Some(tracker.offset), error_at, "the error at its offset");
                            ended = true;
                        }
                        None => {
                            assert!(
                                ended || tracker.offset == len,
                                "None at {} of {len}",
                                tracker.offset
                            );
                            ended = true;
                        }
                    }
                }
            }
            // Seek, awaited.
            5..=7 => {
                if let Some(handle) = &handle {
                    let pos = rng.below(len + 100);
                    handle
                        .seek_bytes(pos)
                        .await
                        .expect("a seek with the stream alive");
                    tracker.offset = pos.min(len);
                    ended = false;
                }
            }
            8 => handle = None,
            _ => break, // drop the stream below
        }
    }
    drop(stream);
    engine.await; // E1: completes once the stream is gone
    if let Some(network) = network {
        network.await;
    }
    assert_eq!(stats.live_tasks(), 0, "the writer tasks were dropped");
    drop(handle);
}

async fn yield_now() {
    let mut yielded = false;
    futures::future::poll_fn(move |cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

#[test]
fn stress_random_lifecycles_multi_thread() {
    let seed = seed();
    let runs = runs();
    println!("stress: seed {seed} (KITHARA_STRESS_SEED={seed}), {runs} lifecycles");
    let progress = Arc::new(AtomicU64::new(0));
    let seen = progress.clone();
    let result = std::panic::catch_unwind(|| {
        hang_guard("stress", move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .build()
                .unwrap();
            let spawner = Spawner::tokio(rt.handle().clone());
            rt.block_on(async {
                let mut rng = Rng(seed);
                for run in 0..runs {
                    seen.store(run, Ordering::SeqCst);
                    lifecycle(&spawner, &mut rng).await;
                }
            });
        })
    });
    if let Err(panic) = result {
        eprintln!(
            "stress failed at lifecycle {} of seed {seed}: rerun with KITHARA_STRESS_SEED={seed}",
            progress.load(Ordering::SeqCst)
        );
        std::panic::resume_unwind(panic);
    }
}
