//! The byte pipes: `&[u8]` copied in and out of a ring (workloads 1 and 2).

use std::hint::black_box;

use super::{read_to_end, write_slices};
use crate::harness::{Run, two_threads};
use crate::{CAPACITY, CHUNK};

pub fn piper(slice: &[u8], count: usize) -> Run {
    let (r, w) = piper::pipe(CAPACITY);
    let total = (slice.len() * count) as u64;
    two_threads(total, write_slices(w, slice, count), read_to_end(r))
}

pub fn async_ringbuf(slice: &[u8], count: usize) -> Run {
    use async_ringbuf::traits::Split;
    let (w, r) = async_ringbuf::AsyncHeapRb::<u8>::new(CAPACITY).split();
    let total = (slice.len() * count) as u64;
    two_threads(total, write_slices(w, slice, count), read_to_end(r))
}

/// tokio's in-process simplex pipe, through tokio's own `AsyncRead`/`AsyncWrite`.
pub fn tokio_simplex(slice: &[u8], count: usize) -> Run {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (mut r, mut w) = tokio::io::simplex(CAPACITY);
    let total = (slice.len() * count) as u64;
    two_threads(
        total,
        async move {
            for _ in 0..count {
                w.write_all(slice).await.unwrap();
            }
            w.shutdown().await.unwrap();
        },
        async move {
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
        },
    )
}
