//! The channels: `Bytes` handed over by value, no copy (workloads 1 and 3).

use bytes::Bytes;

use crate::harness::{Run, two_threads};
use crate::payload::{Check, Pattern, Verify};

/// tokio's bounded mpsc with `slots` slots, `count` items of `size` bytes.
pub fn tokio_mpsc(pattern: &Pattern, size: usize, count: usize, slots: usize, v: Verify) -> Run {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(slots);
    let mut check = Check::new(pattern, v);
    two_threads(
        (size * count) as u64,
        async move {
            for i in 0..count {
                tx.send(pattern.item(i, size)).await.unwrap();
            }
        },
        async move {
            while let Some(b) = rx.recv().await {
                check.bytes(&b);
            }
            check.total()
        },
    )
}

/// async-channel's bounded channel with `slots` slots, `count` items of `size` bytes.
pub fn async_channel(pattern: &Pattern, size: usize, count: usize, slots: usize, v: Verify) -> Run {
    let (tx, rx) = async_channel::bounded::<Bytes>(slots);
    let mut check = Check::new(pattern, v);
    two_threads(
        (size * count) as u64,
        async move {
            for i in 0..count {
                tx.send(pattern.item(i, size)).await.unwrap();
            }
        },
        async move {
            while let Ok(b) = rx.recv().await {
                check.bytes(&b);
            }
            check.total()
        },
    )
}
