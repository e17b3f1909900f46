//! The contenders, one module per group, and the producer and consumer loops they share.
//!
//! Each contender function takes the [`Pattern`] to send, the item count and how its
//! consumer checks what it receives ([`Verify`]); it returns one timed [`Run`].
//!
//! [`Run`]: crate::harness::Run
//! [`Verify`]: crate::payload::Verify

pub mod channels;
pub mod copy;
pub mod download;
pub mod kithara;
pub mod pipes;

use std::hint::black_box;

use futures::{AsyncReadExt, AsyncWriteExt};

use crate::CHUNK;
use crate::payload::{Check, Pattern};

/// Writes the pattern's first `count` items of `size` bytes into a futures-io writer.
async fn write_slices<W: futures::AsyncWrite + Unpin>(
    mut w: W,
    pattern: &Pattern,
    size: usize,
    count: usize,
) {
    for i in 0..count {
        w.write_all(pattern.item_slice(i, size)).await.unwrap();
    }
    w.close().await.unwrap();
}

/// Reads a futures-io reader to its end into a `CHUNK`-sized buffer, checking each read;
/// returns the count.
async fn read_to_end<R: futures::AsyncRead + Unpin>(mut r: R, mut check: Check) -> u64 {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let got = r.read(&mut buf).await.unwrap();
        if got == 0 {
            return check.total();
        }
        check.bytes(&buf[..got]);
        black_box(&buf[..got]);
    }
}

/// Reads `r` to its end with `CHUNK`-sized reads, checking each read; returns the count.
fn read_blocking(mut r: impl std::io::Read, mut check: Check) -> u64 {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let got = r.read(&mut buf).unwrap();
        if got == 0 {
            return check.total();
        }
        check.bytes(&buf[..got]);
        black_box(&buf[..got]);
    }
}
