//! What the contenders move, and the consumer's check of it.

use bytes::Bytes;

use crate::CHUNK;

/// Distinct chunks in the pool workload 5 cycles through: a prime, so that the pattern does
/// not line up with the 16-chunk ring and a lost, repeated or reordered chunk shows.
pub const POOL: usize = 17;

/// `POOL` chunks of `CHUNK` pseudo-random bytes; chunk `i` of a stream is `pool[i % POOL]`.
pub fn chunk_pool() -> Vec<Bytes> {
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    (0..POOL)
        .map(|_| {
            let bytes: Vec<u8> = (0..CHUNK)
                .map(|_| {
                    // xorshift64
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    (x >> 24) as u8
                })
                .collect();
            Bytes::from(bytes)
        })
        .collect()
}

/// Checks a read of `buf` at stream position `pos` against the pool's pattern: every byte
/// when `full`, else its first and last byte (cheap enough for the timed runs).
pub fn check_read(pool: &[Bytes], pos: u64, buf: &[u8], full: bool) {
    let expected = |p: u64| pool[(p / CHUNK as u64) as usize % POOL][(p % CHUNK as u64) as usize];
    if buf.is_empty() {
        return;
    }
    if !full {
        let last = pos + buf.len() as u64 - 1;
        assert!(
            buf[0] == expected(pos) && buf[buf.len() - 1] == expected(last),
            "wrong bytes at {pos}"
        );
        return;
    }
    let mut at = pos;
    let mut rest = buf;
    while !rest.is_empty() {
        let off = (at % CHUNK as u64) as usize;
        let chunk = &pool[(at / CHUNK as u64) as usize % POOL][off..];
        let k = chunk.len().min(rest.len());
        assert!(
            rest[..k] == chunk[..k],
            "wrong bytes in {at}..{}",
            at + k as u64
        );
        at += k as u64;
        rest = &rest[k..];
    }
}
