//! The channels: `Bytes` handed over by value, no copy (workloads 1 and 3).

use bytes::Bytes;

use crate::harness::{Run, two_threads};

/// tokio's bounded mpsc with `slots` slots.
pub fn tokio_mpsc(chunk: &Bytes, count: usize, slots: usize) -> Run {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(slots);
    let total = (chunk.len() * count) as u64;
    let chunk = chunk.clone();
    two_threads(
        total,
        async move {
            for _ in 0..count {
                tx.send(chunk.clone()).await.unwrap();
            }
        },
        async move {
            let mut n = 0u64;
            while let Some(b) = rx.recv().await {
                n += b.len() as u64;
            }
            n
        },
    )
}

/// async-channel's bounded channel with `slots` slots.
pub fn async_channel(chunk: &Bytes, count: usize, slots: usize) -> Run {
    let (tx, rx) = async_channel::bounded::<Bytes>(slots);
    let total = (chunk.len() * count) as u64;
    let chunk = chunk.clone();
    two_threads(
        total,
        async move {
            for _ in 0..count {
                tx.send(chunk.clone()).await.unwrap();
            }
        },
        async move {
            let mut n = 0u64;
            while let Ok(b) = rx.recv().await {
                n += b.len() as u64;
            }
            n
        },
    )
}
