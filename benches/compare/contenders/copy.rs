//! Workload 4: the physical limit of a copy on one thread, no contender.

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::{CAPACITY, CHUNK, MIB};

/// The best a copy achieves: the fastest of the runs rather than the median (on a shared
/// machine a copy run can only be slowed down, never sped up).
pub struct Limit {
    /// The fastest run of [`copy_ring`] and the bytes it copied.
    pub ring: (Duration, usize),
    /// The fastest run of [`copy_dram`] and the bytes it copied.
    pub dram: (Duration, usize),
}

/// Measures [`Limit`] over `runs` runs of `total` bytes (at most 512 MiB for the DRAM copy).
pub fn physical_limit(total: usize, runs: usize) -> Limit {
    let ring = (0..runs).map(|_| (copy_ring(total), total)).min().unwrap();
    let dram = (0..runs)
        .map(|_| copy_dram(total.min(512 * MIB)))
        .min()
        .unwrap();
    Limit { ring, dram }
}

/// Copies `CHUNK`-sized slices into a ring-sized buffer, cycling through it (L2-resident).
fn copy_ring(total: usize) -> Duration {
    // Both page-aligned: glibc's memmove on AMD EPYC runs ~20x slower when the destination
    // sits a few bytes past the source modulo 4 KiB (2.4 instead of ~50 GiB/s at +16), and
    // two plain `Vec`s land at a random relative offset. The limit is the good case.
    let mut src_buf = vec![7u8; CHUNK + 4096];
    let mut ring_buf = vec![1u8; CAPACITY + 4096]; // touched: no page faults in the timing
    let src = page_aligned(&mut src_buf, CHUNK);
    let ring = page_aligned(&mut ring_buf, CAPACITY);
    let start = Instant::now();
    let mut at = 0;
    for _ in 0..total / CHUNK {
        ring[at..at + CHUNK].copy_from_slice(black_box(&*src));
        black_box(&ring[at..at + CHUNK]);
        at = (at + CHUNK) % CAPACITY;
    }
    start.elapsed()
}

/// The `len` bytes of `buf` that start at a 4 KiB boundary.
fn page_aligned(buf: &mut [u8], len: usize) -> &mut [u8] {
    let skip = buf.as_ptr().align_offset(4096);
    &mut buf[skip..skip + len]
}

/// Copies one DRAM-sized buffer (`total` bytes, at least 64 MiB) into another.
fn copy_dram(total: usize) -> (Duration, usize) {
    let len = total.max(64 * MIB);
    let src = vec![7u8; len];
    let mut dst = vec![1u8; len]; // touched, so the copy does not count page faults
    let start = Instant::now();
    dst.copy_from_slice(black_box(&src));
    black_box(&dst);
    (start.elapsed(), len)
}
