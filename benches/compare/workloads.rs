//! The workloads, numbered as in the README's Performance section, and their contenders.

use crate::contenders::{channels, download, kithara, pipes};
use crate::harness::Run;
use crate::payload::{Pattern, Verify};
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

/// One contender of a workload: a run of it on the payload it was built with, its consumer
/// checking what it receives as told.
pub struct Contender {
    pub name: &'static str,
    /// kithara-stream's own (the others are the peers it is compared with).
    pub ours: bool,
    pub run: Box<dyn Fn(Verify) -> Run>,
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

/// A contender run on its own clone of `pattern`.
fn contender(
    name: &'static str,
    ours: bool,
    pattern: &Pattern,
    run: impl Fn(&Pattern, Verify) -> Run + 'static,
) -> Contender {
    let pattern = pattern.clone();
    Contender {
        name,
        ours,
        run: Box::new(move |v| run(&pattern, v)),
    }
}

/// All workloads for `total` bytes per contender and run, in their order.
pub fn all(total: usize) -> Vec<Workload> {
    let chunks = total / CHUNK;
    let smalls = total / SMALL;
    let chunk_slots = CAPACITY / CHUNK;
    let small_slots = CAPACITY / SMALL;
    let p = &Pattern::windows();

    let engine = Workload {
        number: 1,
        name: "engine end to end (16 KiB Bytes)",
        item: CHUNK,
        items: chunks as u64,
        kind: Kind::Contenders(vec![
            contender("kithara Engine", true, p, move |p, v| {
                kithara::engine(p, chunks, v)
            }),
            contender("tokio mpsc<Bytes>", false, p, move |p, v| {
                channels::tokio_mpsc(p, CHUNK, chunks, chunk_slots, v)
            }),
            contender("async-channel<Bytes>", false, p, move |p, v| {
                channels::async_channel(p, CHUNK, chunks, chunk_slots, v)
            }),
            contender("piper (copy)", false, p, move |p, v| {
                pipes::piper(p, chunks, v)
            }),
            contender("async-ringbuf (copy)", false, p, move |p, v| {
                pipes::async_ringbuf(p, chunks, v)
            }),
            contender("tokio simplex (copy)", false, p, move |p, v| {
                pipes::tokio_simplex(p, chunks, v)
            }),
        ]),
    };

    let pipe = Workload {
        number: 2,
        name: "pipe, &[u8] in and out (16 KiB slices)",
        item: CHUNK,
        items: chunks as u64,
        kind: Kind::Contenders(vec![
            contender("kithara Writer/Reader", true, p, move |p, v| {
                kithara::pipe_slices(p, chunks, v)
            }),
            contender("piper", false, p, move |p, v| pipes::piper(p, chunks, v)),
            contender("async-ringbuf", false, p, move |p, v| {
                pipes::async_ringbuf(p, chunks, v)
            }),
            contender("tokio simplex", false, p, move |p, v| {
                pipes::tokio_simplex(p, chunks, v)
            }),
        ]),
    };

    let messages = Workload {
        number: 3,
        name: "small messages (64 B Bytes)",
        item: SMALL,
        items: smalls as u64,
        kind: Kind::Contenders(vec![
            contender("kithara pipe", true, p, move |p, v| {
                kithara::pipe_messages(p, smalls, v)
            }),
            contender("tokio mpsc<Bytes>", false, p, move |p, v| {
                channels::tokio_mpsc(p, SMALL, smalls, small_slots, v)
            }),
            contender("async-channel<Bytes>", false, p, move |p, v| {
                channels::async_channel(p, SMALL, smalls, small_slots, v)
            }),
        ]),
    };

    let limit = Workload {
        number: 4,
        name: "physical limit (copy_from_slice, best run)",
        item: CHUNK,
        items: chunks as u64,
        kind: Kind::PhysicalLimit,
    };

    let p = &Pattern::separate();
    let blocking = Workload {
        number: 5,
        name: "blocking Read of a whole stream (16 KiB reads)",
        item: CHUNK,
        items: chunks as u64,
        kind: Kind::Contenders(vec![
            contender("kithara BlockingReader", true, p, move |p, v| {
                kithara::blocking_reader(p, chunks, v)
            }),
            contender("stream-download bounded", false, p, move |p, v| {
                download::stream_download(p, chunks, v)
            }),
        ]),
    };

    let mut all = vec![engine, pipe, messages, limit, blocking];
    all.sort_by_key(|w| w.number);
    all
}
