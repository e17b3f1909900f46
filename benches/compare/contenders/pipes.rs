//! The byte pipes: `&[u8]` copied in and out of a ring (workloads 1 and 2), 16 KiB slices.

use std::hint::black_box;

use super::{read_to_end, write_slices};
use crate::harness::{Run, two_threads};
use crate::payload::{Check, Pattern, Verify};
use crate::{CAPACITY, CHUNK};

pub fn piper(pattern: &Pattern, count: usize, v: Verify) -> Run {
    let (r, w) = piper::pipe(CAPACITY);
    two_threads(
        (CHUNK * count) as u64,
        write_slices(w, pattern, CHUNK, count),
        read_to_end(r, Check::new(pattern, v)),
    )
}

pub fn async_ringbuf(pattern: &Pattern, count: usize, v: Verify) -> Run {
    use async_ringbuf::traits::Split;
    let (w, r) = async_ringbuf::AsyncHeapRb::<u8>::new(CAPACITY).split();
    two_threads(
        (CHUNK * count) as u64,
        write_slices(w, pattern, CHUNK, count),
        read_to_end(r, Check::new(pattern, v)),
    )
}

/// tokio's in-process simplex pipe, through tokio's own `AsyncRead`/`AsyncWrite`.
pub fn tokio_simplex(pattern: &Pattern, count: usize, v: Verify) -> Run {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (mut r, mut w) = tokio::io::simplex(CAPACITY);
    let mut check = Check::new(pattern, v);
    two_threads(
        (CHUNK * count) as u64,
        async move {
            for i in 0..count {
                w.write_all(pattern.item_slice(i, CHUNK)).await.unwrap();
            }
            w.shutdown().await.unwrap();
        },
        async move {
            let mut buf = vec![0u8; CHUNK];
            loop {
                let got = r.read(&mut buf).await.unwrap();
                if got == 0 {
                    return check.total();
                }
                check.bytes(&buf[..got]);
                black_box(&buf[..got]);
            }
        },
    )
}
