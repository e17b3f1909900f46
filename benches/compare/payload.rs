//! What the contenders move, and the consumer's check of it.
//!
//! Every stream is the same function of the byte position: chunk `k` (stream bytes
//! `k * CHUNK ..`) is chunk `k % POOL` of a [`Pattern`] of pseudo-random bytes, and a message
//! of workload 3 is the stretch of that chunk at its position. The consumer knows its position
//! (the bytes it received so far), so a lost, repeated, reordered, shifted or overwritten
//! chunk reads differently from what the position expects.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::{CHUNK, KIB, MIB};

/// Distinct chunks a pattern cycles through: a prime, so that the pattern does not line up
/// with the 16-chunk ring and a lost, repeated or reordered chunk shows.
pub const POOL: usize = 17;

/// The distance between the chunks of [`Pattern::windows`] in their common buffer: a whole
/// page, so that every chunk sits at the same address modulo 4 KiB (copy speed depends on the
/// source's and destination's relative offset modulo 4 KiB, see `contenders::copy`).
const STRIDE: usize = 4 * KIB;

/// A sampled check ([`Verify::Sample`]) reads a received slice's byte 0, every
/// `SAMPLE_STEP`th after it and its last byte: 5 bytes of a 16 KiB chunk.
const SAMPLE_STEP: usize = 4 * KIB;

/// Slices up to this long are compared in full even by a sampled check: for a 64-byte
/// message that is cheaper than picking samples.
const SAMPLE_ABOVE: usize = 256;

/// How a consumer checks the bytes it receives.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Verify {
    /// Every byte, compared with the pattern (the untimed first pass of every contender).
    Full,
    /// Samples of every received slice, see [`SAMPLE_STEP`], and every byte of a slice up
    /// to [`SAMPLE_ABOVE`] bytes (the timed runs by default: a few loads per 16 KiB chunk,
    /// where reading every byte would cost a zero-copy contender about as much CPU time as
    /// moving the chunk).
    Sample,
}

/// `POOL` chunks of `CHUNK` pseudo-random bytes; chunk `k` of a stream is `chunks[k % POOL]`.
#[derive(Clone)]
pub struct Pattern {
    chunks: Arc<[Bytes]>,
}

/// `n` bytes of xorshift64 from state `x`.
fn xorshift(x: &mut u64, n: usize) -> Vec<u8> {
    (0..n)
        .map(|_| {
            *x ^= *x << 13;
            *x ^= *x >> 7;
            *x ^= *x << 17;
            (*x >> 24) as u8
        })
        .collect()
}

const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

impl Pattern {
    /// Workloads 1-3: the chunks are windows, `STRIDE` apart, of one buffer of
    /// `CHUNK + (POOL - 1) * STRIDE` bytes (80 KiB), so the source stays about as
    /// cache-resident as the single chunk it replaces, and every chunk and message shares one
    /// refcount, as clones of that single chunk did.
    pub fn windows() -> Self {
        let mut x = SEED;
        let all = Bytes::from(xorshift(&mut x, CHUNK + (POOL - 1) * STRIDE));
        Self::new((0..POOL).map(|j| all.slice(j * STRIDE..j * STRIDE + CHUNK)))
    }

    /// Workload 5: `POOL` separate allocations of `CHUNK` bytes (272 KiB).
    pub fn separate() -> Self {
        let mut x = SEED;
        Self::new((0..POOL).map(|_| Bytes::from(xorshift(&mut x, CHUNK))))
    }

    fn new(chunks: impl Iterator<Item = Bytes>) -> Self {
        let chunks: Arc<[Bytes]> = chunks.collect();
        // Any chunk in the place of another fails the sampled check, not only most of them.
        let samples = |c: &Bytes| -> Vec<u8> {
            let mut at: Vec<usize> = (0..CHUNK).step_by(SAMPLE_STEP).collect();
            at.push(CHUNK - 1);
            at.iter().map(|&i| c[i]).collect()
        };
        for (a, ca) in chunks.iter().enumerate() {
            for cb in &chunks[a + 1..] {
                assert_ne!(samples(ca), samples(cb), "pattern chunks alike in samples");
            }
        }
        Self { chunks }
    }

    /// Chunk `k` of the stream (a refcount clone).
    pub fn chunk(&self, k: usize) -> Bytes {
        self.chunks[k % POOL].clone()
    }

    /// Item `i` of a stream of `size`-byte items (`size` divides `CHUNK`), a refcount clone.
    pub fn item(&self, i: usize, size: usize) -> Bytes {
        let pos = i * size;
        let off = pos % CHUNK;
        self.chunks[pos / CHUNK % POOL].slice(off..off + size)
    }

    /// Item `i` as [`Pattern::item`], borrowed.
    pub fn item_slice(&self, i: usize, size: usize) -> &[u8] {
        let pos = i * size;
        let off = pos % CHUNK;
        &self.chunks[pos / CHUNK % POOL][off..off + size]
    }

    /// The stream from position `pos` to the end of its chunk.
    fn from(&self, pos: u64) -> &[u8] {
        let chunk = &self.chunks[(pos / CHUNK as u64 % POOL as u64) as usize];
        &chunk[(pos % CHUNK as u64) as usize..]
    }
}

/// A consumer's check: its position in the stream, and each slice it receives compared with
/// the pattern there.
pub struct Check {
    pattern: Pattern,
    verify: Verify,
    pos: u64,
}

impl Check {
    pub fn new(pattern: &Pattern, verify: Verify) -> Self {
        Self {
            pattern: pattern.clone(),
            verify,
            pos: 0,
        }
    }

    /// Checks `got`, the next bytes of the stream, and moves past them.
    #[inline]
    pub fn bytes(&mut self, got: &[u8]) {
        match self.verify {
            Verify::Full => self.pieces(got, full),
            Verify::Sample if got.len() <= SAMPLE_ABOVE => self.pieces(got, full),
            Verify::Sample => self.pieces(got, |at, got, want| {
                let last = got.len() - 1;
                for i in (0..last).step_by(SAMPLE_STEP).chain([last]) {
                    assert!(
                        got[i] == want[i],
                        "wrong byte at stream position {}: {:#04x} instead of {:#04x}",
                        at + i as u64,
                        got[i],
                        want[i]
                    );
                }
            }),
        }
        self.pos += got.len() as u64;
    }

    /// The bytes received so far.
    pub fn total(&self) -> u64 {
        self.pos
    }

    /// Calls `check(position, piece, expected)` for the pieces of `got` that chunk
    /// boundaries cut (one for a chunk-aligned read), none empty.
    #[inline]
    fn pieces(&self, got: &[u8], check: impl Fn(u64, &[u8], &[u8])) {
        let mut at = self.pos;
        let mut rest = got;
        while !rest.is_empty() {
            let want = self.pattern.from(at);
            let k = want.len().min(rest.len());
            check(at, &rest[..k], &want[..k]);
            at += k as u64;
            rest = &rest[k..];
        }
    }
}

/// Compares `got`, received at stream position `at`, with `want`, byte for byte.
#[inline]
fn full(at: u64, got: &[u8], want: &[u8]) {
    assert!(
        got == want,
        "wrong bytes in stream positions {at}..{}",
        at + got.len() as u64
    );
}

/// What checking an item of `size` bytes costs on one thread with the data in cache, in ns:
/// the best of 3 passes over 16 MiB of the stream, less the same loop without the check.
/// (A consumer checking bytes another core just wrote pays somewhat more per load.)
pub fn cost(pattern: &Pattern, size: usize, verify: Verify) -> f64 {
    let count = 16 * MIB / size;
    let best = |verify: Option<Verify>| {
        (0..3)
            .map(|_| {
                let mut check = verify.map(|v| Check::new(pattern, v));
                let start = Instant::now();
                for i in 0..count {
                    let got = black_box(pattern.item_slice(i, size));
                    if let Some(check) = &mut check {
                        check.bytes(got);
                    }
                }
                start.elapsed().as_secs_f64() * 1e9 / count as f64
            })
            .fold(f64::INFINITY, f64::min)
    };
    (best(Some(verify)) - best(None)).max(0.0)
}
