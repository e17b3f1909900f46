//! The contenders, one module per group, and the producer and consumer loops they share.

pub mod channels;
pub mod copy;
pub mod download;
pub mod kithara;
pub mod pipes;

use std::hint::black_box;

use bytes::Bytes;
use futures::{AsyncReadExt, AsyncWriteExt};

use crate::CHUNK;
use crate::payload::check_read;

/// Writes `count` slices of `slice` into a futures-io writer.
async fn write_slices<W: futures::AsyncWrite + Unpin>(mut w: W, slice: &[u8], count: usize) {
    for _ in 0..count {
        w.write_all(slice).await.unwrap();
    }
    w.close().await.unwrap();
}

/// Reads a futures-io reader to its end into a `CHUNK`-sized buffer.
async fn read_to_end<R: futures::AsyncRead + Unpin>(mut r: R) -> u64 {
    let mut buf = vec![0u8; CHUNK];
    let mut n = 0u64;
    loop {
        let got = r.read(&mut buf).await.unwrap();
        if got == 0 {
            return n;
        }
        black_box(&buf[..got]);
        n += got as u64;
    }
}

/// Reads `r` to its end with `CHUNK`-sized reads, checking each read; returns the count.
fn read_blocking(mut r: impl std::io::Read, pool: &[Bytes], full: bool) -> u64 {
    let mut buf = vec![0u8; CHUNK];
    let mut n = 0u64;
    loop {
        let got = r.read(&mut buf).unwrap();
        if got == 0 {
            return n;
        }
        check_read(pool, n, &buf[..got], full);
        black_box(&buf[..got]);
        n += got as u64;
    }
}
