//! What a `DiskStore` costs the thread that polls it: each insert (one chunk written),
//! each get (one chunk read), each publish (a sync of the data file, then the index
//! replaced), against a `MemoryStore` doing the same in the same run.
//!
//! `cargo bench --bench disk` prints the median and the worst of each, in microseconds.
//! `KITHARA_DISK_DIR` chooses the directory (default: the system's temporary directory).

use std::time::{Duration, Instant};

use bytes::Bytes;
use kithara_stream::store::{DiskCache, MemoryStore, Store};

const CHUNK: usize = 16 * 1024;
const TOTAL: u64 = 32 << 20;

fn summary(name: &str, mut times: Vec<Duration>) -> Duration {
    times.sort();
    let median = times[times.len() / 2];
    let worst = *times.last().unwrap();
    println!(
        "{name:34} {:>6} ops  median {:>8.1} µs  worst {:>9.1} µs",
        times.len(),
        median.as_secs_f64() * 1e6,
        worst.as_secs_f64() * 1e6
    );
    median
}

/// Inserts `TOTAL` bytes in chunks, then reads them back in `max`-byte gets.
fn run(store: &mut impl Store, label: &str) -> (Duration, Duration) {
    let chunk = Bytes::from((0..CHUNK).map(|i| i as u8).collect::<Vec<u8>>());
    store.set_total_len(Some(TOTAL));
    let mut inserts = Vec::new();
    let mut pos = 0;
    while pos < TOTAL {
        let started = Instant::now();
        let stored = store.insert(pos, &chunk, pos..pos + 1);
        inserts.push(started.elapsed());
        assert_eq!(stored, CHUNK as u64, "{label}: the budget holds all of it");
        pos += CHUNK as u64;
    }
    let mut gets = Vec::new();
    let mut pos = 0;
    while pos < TOTAL {
        let started = Instant::now();
        let bytes = store.get(pos, 64 * 1024).expect("held");
        gets.push(started.elapsed());
        pos += bytes.len() as u64;
    }
    (
        summary(&format!("{label} insert (16 KiB)"), inserts),
        summary(&format!("{label} get (64 KiB)"), gets),
    )
}

fn main() {
    let root = std::env::var_os("KITHARA_DISK_DIR")
        .map(Into::into)
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("kithara-disk-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    println!(
        "{} MiB in 16 KiB inserts, read back in 64 KiB gets; load average {}",
        TOTAL >> 20,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let (memory_insert, memory_get) = run(&mut MemoryStore::new(TOTAL), "memory");
    let cache = DiskCache::open(&root, TOTAL).unwrap();
    let (disk_insert, disk_get) = {
        let mut store = cache.store("bench").unwrap();
        run(&mut store, "disk (publish every 1 MiB)")
    };
    let mut publishes = Vec::new();
    {
        let mut store = cache.store("publish").unwrap();
        let chunk = Bytes::from(vec![7u8; 1 << 20]);
        for i in 0..16u64 {
            store.insert(i << 20, &chunk, 0..0);
            let started = Instant::now();
            store.publish().unwrap();
            publishes.push(started.elapsed());
        }
    }
    summary("disk publish (1 MiB written before)", publishes);
    println!(
        "disk / memory, median: insert {:.1}x, get {:.1}x",
        disk_insert.as_secs_f64() / memory_insert.as_secs_f64(),
        disk_get.as_secs_f64() / memory_get.as_secs_f64()
    );
    drop(cache);
    let _ = std::fs::remove_dir_all(&root);
}
