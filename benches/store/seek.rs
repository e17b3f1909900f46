//! Seek latency: the time from `BlockingReader::seek` (which waits for the engine to apply
//! `EngineHandle::seek_bytes`) to the first byte read, into bytes the store holds and into
//! bytes it must fetch after a simulated round trip.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kithara_stream::exec::block_on;
use kithara_stream::io::BlockingReader;
use kithara_stream::sources::{CachedSource, Progress, RangeSource, StoreParams};
use kithara_stream::{Engine, EngineSource};

use crate::params;
use crate::resource::{Check, MemoryFetch, Resource, Timer};

/// Seeks land at least this far from the previous one: past the chunk the reader holds (a
/// seek within it needs no engine) and past a fetch's forward skip (a seek just ahead of a
/// fetch waits for it instead of fetching).
const MIN_JUMP: u64 = 1 << 20;

type Reader = BlockingReader<(), Progress, io::Error>;

/// What one sample measures.
enum Kind {
    /// The timer alone: a future completing after the round trip, awaited on this thread.
    Timer(Timer, Duration),
    /// A seek of a reader and the read of one byte.
    Seek(Box<Seeker>),
}

struct Seeker {
    reader: Reader,
    fetches: Arc<AtomicUsize>,
    engine: JoinHandle<()>,
}

pub struct Contender {
    pub name: String,
    kind: Kind,
    /// Where the last seek went.
    last: u64,
    /// Fetches during the samples.
    pub fetches: usize,
    pub samples: Vec<Duration>,
}

/// A reader of `source`, its engine on a thread of its own.
fn reader<S>(source: S) -> (Reader, JoinHandle<()>)
where
    S: EngineSource<Error = io::Error, Control = (), Event = Progress> + Send + 'static,
{
    let (engine, handle, stream) = Engine::build(source, params());
    let engine = std::thread::spawn(move || block_on(engine.run()));
    (BlockingReader::new(stream, handle), engine)
}

impl Contender {
    fn new(name: String, kind: Kind) -> Self {
        Self {
            name,
            kind,
            last: 0,
            fetches: 0,
            samples: Vec::new(),
        }
    }

    fn seek(name: String, (reader, engine): (Reader, JoinHandle<()>), fetch: &MemoryFetch) -> Self {
        let fetches = fetch.fetches();
        let seeker = Seeker {
            reader,
            fetches,
            engine,
        };
        Self::new(name, Kind::Seek(Box::new(seeker)))
    }

    /// One sample at `pos` (the timer ignores it).
    fn sample(&mut self, resource: &Resource, pos: u64) {
        let start = Instant::now();
        match &mut self.kind {
            Kind::Timer(timer, rtt) => {
                let _ = block_on(timer.after(*rtt));
                self.samples.push(start.elapsed());
            }
            Kind::Seek(seeker) => {
                let Seeker {
                    reader, fetches, ..
                } = &mut **seeker;
                let before = fetches.load(Ordering::Relaxed);
                let mut one = [0u8];
                reader.seek(SeekFrom::Start(pos)).expect("seek");
                let n = reader.read(&mut one).expect("read");
                self.samples.push(start.elapsed());
                assert_eq!(n, 1, "no byte at {pos}");
                Check::new(resource, pos, true).bytes(&one);
                self.fetches += fetches.load(Ordering::Relaxed) - before;
            }
        }
        self.last = pos;
    }

    /// Drops the reader and waits for its engine to end.
    pub fn finish(self) {
        if let Kind::Seek(seeker) = self.kind {
            let Seeker { reader, engine, .. } = *seeker;
            drop(reader);
            engine.join().unwrap();
        }
    }
}

/// The contenders: the timer alone, seeks into held bytes, and seeks into missing bytes with
/// and without a store and with a round trip of `rtt` and of 0.
pub fn contenders(resource: &Resource, rtt: Duration, timer: &Timer) -> Vec<Contender> {
    let us = rtt.as_micros();
    let fetch = |rtt| MemoryFetch::new(resource).with_rtt(rtt, timer);
    let cached = |fetch: &MemoryFetch, budget| {
        reader(CachedSource::new(
            fetch.clone(),
            StoreParams::with_budget(budget),
        ))
    };

    // Held: the whole resource in the store, read once to its end (checked) before the seeks.
    let held_fetch = fetch(rtt);
    let (mut held_reader, engine) = cached(&held_fetch, resource.len());
    let mut all = Vec::with_capacity(resource.len() as usize);
    held_reader
        .read_to_end(&mut all)
        .expect("read the resource");
    Check::new(resource, 0, true).bytes(&all);
    assert_eq!(all.len() as u64, resource.len());
    drop(all);
    let held = Contender::seek(
        "held (CachedSource, all in the store)".into(),
        (held_reader, engine),
        &held_fetch,
    );

    let missing = fetch(rtt);
    let range = fetch(rtt);
    let missing_0 = fetch(Duration::ZERO);
    let range_0 = fetch(Duration::ZERO);
    vec![
        Contender::new(
            format!("round trip alone ({us} µs timer)"),
            Kind::Timer(timer.clone(), rtt),
        ),
        held,
        Contender::seek(
            format!("missing (CachedSource, budget 0), RTT {us} µs"),
            cached(&missing, 0),
            &missing,
        ),
        Contender::seek(
            format!("RangeSource (no store), RTT {us} µs"),
            reader(RangeSource::new(range.clone())),
            &range,
        ),
        Contender::seek(
            "missing (CachedSource, budget 0), RTT 0".into(),
            cached(&missing_0, 0),
            &missing_0,
        ),
        Contender::seek(
            "RangeSource (no store), RTT 0".into(),
            reader(RangeSource::new(range_0.clone())),
            &range_0,
        ),
    ]
}

/// `seeks` samples of every contender, in `rounds` interleaved rounds (so that the machine's
/// noise spreads over all of them), at pseudo-random positions from a fixed seed.
pub fn measure(resource: &Resource, contenders: &mut [Contender], seeks: usize, rounds: usize) {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let per_round = seeks.div_ceil(rounds);
    for _ in 0..rounds {
        for c in contenders.iter_mut() {
            for _ in 0..per_round {
                let pos = loop {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let pos = x % resource.len();
                    if pos.abs_diff(c.last) >= MIN_JUMP {
                        break pos;
                    }
                };
                c.sample(resource, pos);
            }
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The markdown table: median, p90, p99 and max per contender, fetches per seek, and the
/// median of each row over the held row's.
pub fn print(contenders: &mut [Contender]) {
    for c in contenders.iter_mut() {
        c.samples.sort();
    }
    let held = percentile(&contenders[1].samples, 0.5);
    println!(
        "\n| seek + first byte ({} samples each) | median µs | p90 µs | p99 µs | max µs | fetches/seek | median / held |",
        contenders[0].samples.len()
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for c in contenders.iter() {
        let s = &c.samples;
        let median = percentile(s, 0.5);
        let fetches = match c.kind {
            Kind::Timer(..) => "–".to_string(),
            Kind::Seek(_) => format!("{:.2}", c.fetches as f64 / s.len() as f64),
        };
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.1} | {fetches} | {:.1}x |",
            c.name,
            us(median),
            us(percentile(s, 0.9)),
            us(percentile(s, 0.99)),
            us(s[s.len() - 1]),
            median.as_secs_f64() / held.as_secs_f64(),
        );
    }
    let ratio =
        |i: usize| held.as_secs_f64() / percentile(&contenders[i].samples, 0.5).as_secs_f64();
    println!(
        "held / missing (medians): {:.4} with the round trip, {:.3} without",
        ratio(2),
        ratio(4)
    );
}
