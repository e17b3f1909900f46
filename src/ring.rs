//! The ring between one writer and one reader: an SPSC queue of entries bounded by a byte
//! budget, with a waker for each side.
//!
//! - **Budget.** `used` counts the bytes queued or held by the reader (a split chunk's
//!   remainder) plus [`MESSAGE_COST`] per queued message. The writer may push while
//!   `used < capacity`, so `used` never exceeds `capacity` plus one pushed item; a chunk
//!   larger than the capacity passes when the ring is not full (at capacity 1, when empty).
//! - **Epochs.** A seek cannot pop stale entries (only the reader pops), so the writer bumps
//!   `epoch` instead; every entry carries the epoch it was pushed in and the reader discards
//!   (and releases the budget of) entries from older epochs.
//! - **Wakeups.** The writer registers before its last look at the budget; the reader wakes
//!   it only when a release takes `used` below half the capacity (see [`low_water`]), so a
//!   busy stream costs no wakeups and a waiting writer is woken once per half ring. The
//!   reader registers before its last look at the queue; a push wakes it (one atomic
//!   operation when it is not waiting), or, for the engine, one wakeup per poll covers all
//!   the pushes of that poll ([`Producer::push_deferred`]).
//! - **Close.** Each side's drop sets its flag and wakes the other. A clean end is an `End`
//!   entry pushed before the flag, so the reader sees every entry before it sees the close.

use core::task::{Context, Poll, Waker};

use crate::error::StreamError;
use crate::msg::StreamMsg;
use crate::params::MESSAGE_COST;
use crate::raw::queue;
use crate::sync::{AtomicBool, AtomicUsize, AtomicWaker, CachePadded, Ordering};

/// What the writer queues for the reader.
#[derive(Debug)]
pub(crate) enum Item<C, Ev, E> {
    /// Data (never empty), a control message or an event.
    Msg(StreamMsg<C, Ev>),
    /// A terminal error: the reader yields it once, then `None`.
    Error(StreamError<E>),
    /// The end of the stream: the reader yields `None`.
    End,
}

impl<C, Ev, E> Item<C, Ev, E> {
    /// What this item counts toward the budget while queued.
    pub(crate) fn cost(&self) -> usize {
        match self {
            Item::Msg(StreamMsg::Data(bytes)) => bytes.len(),
            Item::Msg(_) => MESSAGE_COST,
            Item::Error(_) | Item::End => 0,
        }
    }
}

/// The level below which a release wakes the writer: half the capacity, rounded up.
///
/// A writer waits only while `used >= capacity` (it registers, then re-checks), and while it
/// waits only the reader changes `used`, downwards; so `used` crosses this level exactly once
/// before the writer runs again, and that crossing wakes it. Half rather than the first free
/// byte, so that a writer faster than its reader refills half a ring per wakeup.
fn low_water(capacity: usize) -> usize {
    capacity - capacity / 2
}

/// An item and the epoch it was pushed in.
#[derive(Debug)]
pub(crate) struct Entry<C, Ev, E> {
    pub(crate) epoch: usize,
    pub(crate) item: Item<C, Ev, E>,
}

/// The ring's state beside its queue.
///
/// `used` (written by both sides for every item) and each waker (written by the side that
/// wakes it) sit on cache lines of their own; the fields that change only on a seek or a
/// close share one, which both sides only read while streaming.
#[derive(Debug)]
pub(crate) struct State {
    capacity: usize,
    used: CachePadded<AtomicUsize>,
    epoch: AtomicUsize,
    writer_closed: AtomicBool,
    reader_closed: AtomicBool,
    /// The writer, waiting for room (or the engine, waiting for anything the reader does).
    writer_waker: CachePadded<AtomicWaker>,
    /// The reader, waiting for an entry or the close.
    reader_waker: CachePadded<AtomicWaker>,
}

/// Creates a ring holding `capacity` bytes; `capacity > 0`.
pub(crate) fn ring<C, Ev, E>(capacity: usize) -> (Producer<C, Ev, E>, Consumer<C, Ev, E>) {
    debug_assert!(capacity > 0);
    let (producer, consumer) = queue::spsc(State {
        capacity,
        used: CachePadded(AtomicUsize::new(0)),
        epoch: AtomicUsize::new(0),
        writer_closed: AtomicBool::new(false),
        reader_closed: AtomicBool::new(false),
        writer_waker: CachePadded(AtomicWaker::new()),
        reader_waker: CachePadded(AtomicWaker::new()),
    });
    (
        Producer {
            inner: producer,
            epoch: 0,
            wake_pending: false,
        },
        Consumer { inner: consumer },
    )
}

/// The writer's side. Not `Clone`: `&mut self` on `push` makes it the single producer.
#[derive(Debug)]
pub(crate) struct Producer<C, Ev, E> {
    inner: queue::Producer<Entry<C, Ev, E>, State>,
    /// The epoch new entries are pushed in (only this side changes it).
    epoch: usize,
    /// An entry was pushed and the reader not woken yet ([`Self::push_deferred`]).
    wake_pending: bool,
}

impl<C, Ev, E> Producer<C, Ev, E> {
    fn state(&self) -> &State {
        &self.inner.shared().state
    }

    pub(crate) fn capacity(&self) -> usize {
        self.state().capacity
    }

    /// Bytes held (queued, or kept by the reader as a split chunk's remainder).
    pub(crate) fn used(&self) -> usize {
        self.state().used.load(Ordering::Acquire)
    }

    pub(crate) fn has_room(&self) -> bool {
        self.used() < self.state().capacity
    }

    pub(crate) fn is_reader_closed(&self) -> bool {
        self.state().reader_closed.load(Ordering::Acquire)
    }

    /// Registers the task to wake when room frees up or the reader goes.
    pub(crate) fn register(&self, waker: &Waker) {
        self.state().writer_waker.register(waker);
    }

    /// Ready once the ring has room (`Ok`) or the reader is gone (`Err`).
    pub(crate) fn poll_room(&self, cx: &mut Context<'_>) -> Poll<Result<(), ()>> {
        if self.is_reader_closed() {
            return Poll::Ready(Err(()));
        }
        if self.has_room() {
            return Poll::Ready(Ok(()));
        }
        self.register(cx.waker());
        // Re-check: the reader may have made room or left between the checks above and the
        // registration, and would then have found no waker to wake.
        if self.is_reader_closed() {
            return Poll::Ready(Err(()));
        }
        if self.has_room() {
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }

    /// Queues `item` whatever the budget (callers check [`Self::has_room`] first), and wakes
    /// the reader. Dropped at once if the reader is gone.
    pub(crate) fn push(&mut self, item: Item<C, Ev, E>) {
        self.push_deferred(item);
        self.wake_reader();
    }

    /// Queues `item` like [`Self::push`] but leaves the reader's wakeup to the next
    /// [`Self::wake_reader`], so that a batch of pushes costs one wakeup. Callers call it
    /// before they return `Pending` or `Ready`.
    pub(crate) fn push_deferred(&mut self, item: Item<C, Ev, E>) {
        if self.is_reader_closed() {
            return;
        }
        self.state().used.fetch_add(item.cost(), Ordering::AcqRel);
        let epoch = self.epoch;
        self.inner.push(Entry { epoch, item });
        self.wake_pending = true;
    }

    /// Wakes the reader if something was pushed since the last wakeup.
    pub(crate) fn wake_reader(&mut self) {
        if core::mem::take(&mut self.wake_pending) {
            self.state().reader_waker.wake();
        }
    }

    /// Starts a new epoch: everything queued so far becomes stale and the reader discards
    /// it, including a remainder it holds.
    pub(crate) fn advance_epoch(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        self.state().epoch.store(self.epoch, Ordering::Release);
    }

    /// The ring, for closing it from elsewhere.
    pub(crate) fn closer(&self) -> alloc::boxed::Box<dyn Fn() + Send + Sync>
    where
        C: Send + 'static,
        Ev: Send + 'static,
        E: Send + 'static,
    {
        let shared = self.inner.shared().clone();
        alloc::boxed::Box::new(move || {
            shared.state.writer_closed.store(true, Ordering::Release);
            shared.state.reader_waker.wake();
        })
    }
}

impl<C, Ev, E> Drop for Producer<C, Ev, E> {
    fn drop(&mut self) {
        self.state().writer_closed.store(true, Ordering::Release);
        self.state().reader_waker.wake();
    }
}

/// The reader's side. Not `Clone`: `&mut self` on `pop` makes it the single consumer.
#[derive(Debug)]
pub(crate) struct Consumer<C, Ev, E> {
    inner: queue::Consumer<Entry<C, Ev, E>, State>,
}

impl<C, Ev, E> Consumer<C, Ev, E> {
    fn state(&self) -> &State {
        &self.inner.shared().state
    }

    pub(crate) fn pop(&mut self) -> Option<Entry<C, Ev, E>> {
        self.inner.pop()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.inner.shared().len() == 0
    }

    /// The newest epoch the writer started.
    pub(crate) fn epoch(&self) -> usize {
        self.state().epoch.load(Ordering::Acquire)
    }

    pub(crate) fn is_writer_closed(&self) -> bool {
        self.state().writer_closed.load(Ordering::Acquire)
    }

    pub(crate) fn used(&self) -> usize {
        self.state().used.load(Ordering::Acquire)
    }

    pub(crate) fn capacity(&self) -> usize {
        self.state().capacity
    }

    /// Registers the task to wake on the next push or on close.
    pub(crate) fn register(&self, waker: &Waker) {
        self.state().reader_waker.register(waker);
    }

    /// Gives `cost` bytes of budget back; wakes the writer if that ends "full".
    pub(crate) fn release(&self, cost: usize) {
        if cost == 0 {
            return;
        }
        let before = self.state().used.fetch_sub(cost, Ordering::AcqRel);
        let low = low_water(self.state().capacity);
        if before >= low && before - cost < low {
            self.state().writer_waker.wake();
        }
    }
}

impl<C, Ev, E> Drop for Consumer<C, Ev, E> {
    fn drop(&mut self) {
        self.state().reader_closed.store(true, Ordering::Release);
        self.state().writer_waker.wake();
        // Free what is queued now rather than when the writer goes too.
        while self.pop().is_some() {}
    }
}
