//! The workloads, numbered as in the README's Performance section, and their contenders.

use std::cell::Cell;

use bytes::Bytes;

use crate::contenders::{channels, download, kithara, pipes};
use crate::harness::Run;
use crate::payload::chunk_pool;
use crate::{CAPACITY, CHUNK, SMALL};

/// One workload: the same bytes moved by each of its contenders.
pub struct Workload {
    /// Its number in the README; workloads run in this order.
    pub number: u32,
    /// Its name after the number, as in the table.
    pub name: &'static str,
    /// Bytes per item (a chunk, slice or message).
    pub item: usize,
    /// Items per run.
    pub items: u64,
    pub kind: Kind,
}

pub enum Kind {
    /// Producer and consumer on two threads, contenders interleaved, median of the runs.
    Contenders(Vec<Contender>),
    /// Workload 4: one thread's copies, best of the runs ([`crate::contenders::copy`]).
    PhysicalLimit,
}

/// One contender of a workload: a run of it on the payload it was built with.
pub struct Contender {
    pub name: &'static str,
    /// kithara-stream's own (the others are the peers it is compared with).
    pub ours: bool,
    pub run: Box<dyn Fn() -> Run>,
}

/// The rows of workload 4 (names for `KITHARA_BENCH_CONTENDER`).
pub const PHYSICAL_LIMIT_ROWS: [&str; 2] = ["ring-sized copy", "DRAM-sized copy"];

impl Workload {
    /// Its number and name, as in the table.
    pub fn title(&self) -> String {
        format!("{} {}", self.number, self.name)
    }

    /// Whether `KITHARA_BENCH_ONLY`'s terms (comma-separated) select it: a term that is a
    /// number selects that workload, any other text the workloads whose title contains it;
    /// no term selects all.
    pub fn selected(&self, only: &str) -> bool {
        let mut terms = only.split(',').map(str::trim).filter(|t| !t.is_empty());
        let title = self.title();
        let mut any = false;
        let hit = terms.any(|t| {
            any = true;
            match t.parse::<u32>() {
                Ok(n) => n == self.number,
                Err(_) => title.contains(t),
            }
        });
        hit || !any
    }

    /// Keeps only the contenders whose name contains `who`; false if none is left.
    pub fn keep_contenders(&mut self, who: &str) -> bool {
        match &mut self.kind {
            Kind::Contenders(cs) => {
                cs.retain(|c| c.name.contains(who));
                !cs.is_empty()
            }
            Kind::PhysicalLimit => PHYSICAL_LIMIT_ROWS.iter().any(|n| n.contains(who)),
        }
    }
}

fn contender(name: &'static str, ours: bool, run: impl Fn() -> Run + 'static) -> Contender {
    Contender {
        name,
        ours,
        run: Box::new(run),
    }
}

/// All workloads for `total` bytes per contender and run, in their order.
pub fn all(total: usize) -> Vec<Workload> {
    let big = Bytes::from(vec![0x5a_u8; CHUNK]);
    let small = Bytes::from(vec![0x5a_u8; SMALL]);
    let big_count = total / CHUNK;
    let small_count = total / SMALL;
    let chunk_slots = CAPACITY / CHUNK;
    let small_slots = CAPACITY / SMALL;

    let b = || big.clone();
    let s = || small.clone();
    let (b1, b2, b3, b4, b5, b6) = (b(), b(), b(), b(), b(), b());
    let engine = Workload {
        number: 1,
        name: "engine end to end (16 KiB Bytes)",
        item: CHUNK,
        items: big_count as u64,
        kind: Kind::Contenders(vec![
            contender("kithara Engine", true, move || {
                kithara::engine(&b1, big_count)
            }),
            contender("tokio mpsc<Bytes>", false, move || {
                channels::tokio_mpsc(&b2, big_count, chunk_slots)
            }),
            contender("async-channel<Bytes>", false, move || {
                channels::async_channel(&b3, big_count, chunk_slots)
            }),
            contender("piper (copy)", false, move || pipes::piper(&b4, big_count)),
            contender("async-ringbuf (copy)", false, move || {
                pipes::async_ringbuf(&b5, big_count)
            }),
            contender("tokio simplex (copy)", false, move || {
                pipes::tokio_simplex(&b6, big_count)
            }),
        ]),
    };

    let (b1, b2, b3, b4) = (b(), b(), b(), b());
    let pipe = Workload {
        number: 2,
        name: "pipe, &[u8] in and out (16 KiB slices)",
        item: CHUNK,
        items: big_count as u64,
        kind: Kind::Contenders(vec![
            contender("kithara Writer/Reader", true, move || {
                kithara::pipe_slices(&b1, big_count)
            }),
            contender("piper", false, move || pipes::piper(&b2, big_count)),
            contender("async-ringbuf", false, move || {
                pipes::async_ringbuf(&b3, big_count)
            }),
            contender("tokio simplex", false, move || {
                pipes::tokio_simplex(&b4, big_count)
            }),
        ]),
    };

    let (s1, s2, s3) = (s(), s(), s());
    let messages = Workload {
        number: 3,
        name: "small messages (64 B Bytes)",
        item: SMALL,
        items: small_count as u64,
        kind: Kind::Contenders(vec![
            contender("kithara pipe", true, move || {
                kithara::pipe_messages(&s1, small_count)
            }),
            contender("tokio mpsc<Bytes>", false, move || {
                channels::tokio_mpsc(&s2, small_count, small_slots)
            }),
            contender("async-channel<Bytes>", false, move || {
                channels::async_channel(&s3, small_count, small_slots)
            }),
        ]),
    };

    let limit = Workload {
        number: 4,
        name: "physical limit (copy_from_slice, best run)",
        item: CHUNK,
        items: big_count as u64,
        kind: Kind::PhysicalLimit,
    };

    let pool = chunk_pool();
    let (p1, p2) = (pool.clone(), pool);
    let (v1, v2) = (Cell::new(false), Cell::new(false));
    let blocking = Workload {
        number: 5,
        name: "blocking Read of a whole stream (16 KiB reads)",
        item: CHUNK,
        items: big_count as u64,
        kind: Kind::Contenders(vec![
            contender("kithara BlockingReader", true, move || {
                // Once per process, untimed: every byte compared.
                if !v1.replace(true) {
                    kithara::blocking_reader(&p1, big_count, true);
                }
                kithara::blocking_reader(&p1, big_count, false)
            }),
            contender("stream-download bounded", false, move || {
                if !v2.replace(true) {
                    download::stream_download(&p2, big_count, true);
                }
                download::stream_download(&p2, big_count, false)
            }),
        ]),
    };

    let mut all = vec![engine, pipe, messages, limit, blocking];
    all.sort_by_key(|w| w.number);
    all
}
