//! A single-producer single-consumer queue of blocks.
//!
//! Items are numbered from 0 in push order; item `n` lives in slot `n % BLOCK_LEN` of a block.
//! `tail` (written only by the producer) counts pushed items and publishes them with a
//! `Release` store; `head` (written only by the consumer) counts popped items. The producer
//! moves to a fresh block whenever it is about to write slot 0, so the very first block is a
//! sentinel that never holds an item; this keeps the rule the same after the counters wrap.
//! A block the consumer has left is handed back through `spare`, so a steady stream reuses
//! two blocks and allocates nothing.
//!
//! [`spsc`] wraps the queue in safe handles: one [`Producer`] and one [`Consumer`], neither
//! `Clone`, whose `&mut self` methods are the single-producer, single-consumer guarantee.
//! Both share an extra state `S` (the ring's budget, flags and wakers) in the same `Arc`.

use alloc::boxed::Box;
use core::mem::MaybeUninit;
use core::ptr;

use crate::sync::{Arc, AtomicPtr, AtomicUsize, CachePadded, Ordering, UnsafeCell};

/// Slots per block.
const BLOCK_LEN: usize = 32;

struct Block<T> {
    slots: [UnsafeCell<MaybeUninit<T>>; BLOCK_LEN],
    /// The block the producer moved to after this one; null until then.
    next: AtomicPtr<Block<T>>,
}

impl<T> Block<T> {
    fn alloc() -> *mut Self {
        Box::into_raw(Box::new(Block {
            slots: core::array::from_fn(|_| UnsafeCell::new(MaybeUninit::uninit())),
            next: AtomicPtr::new(ptr::null_mut()),
        }))
    }
}

/// A queue and the state its two handles share.
#[derive(Debug)]
pub(crate) struct Shared<T, S> {
    queue: Queue<T>,
    /// State the owner of the handles keeps beside the queue.
    pub(crate) state: S,
}

impl<T, S> Shared<T, S> {
    /// Items pushed and not yet popped.
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }
}

/// Creates a queue with `state` beside it, and its two handles.
pub(crate) fn spsc<T, S>(state: S) -> (Producer<T, S>, Consumer<T, S>) {
    let shared = Arc::new(Shared {
        queue: Queue::new(),
        state,
    });
    (
        Producer {
            shared: shared.clone(),
        },
        Consumer { shared },
    )
}

/// The one handle that pushes.
#[derive(Debug)]
pub(crate) struct Producer<T, S> {
    shared: Arc<Shared<T, S>>,
}

impl<T, S> Producer<T, S> {
    /// Appends `value`.
    pub(crate) fn push(&mut self, value: T) {
        // SAFETY: `Producer` is not `Clone` and this takes `&mut self`: one producer.
        unsafe { self.shared.queue.push(value) }
    }

    /// The queue and its state.
    pub(crate) fn shared(&self) -> &Arc<Shared<T, S>> {
        &self.shared
    }
}

/// The one handle that pops.
#[derive(Debug)]
pub(crate) struct Consumer<T, S> {
    shared: Arc<Shared<T, S>>,
}

impl<T, S> Consumer<T, S> {
    /// Removes the oldest item, if any.
    pub(crate) fn pop(&mut self) -> Option<T> {
        // SAFETY: `Consumer` is not `Clone` and this takes `&mut self`: one consumer.
        unsafe { self.shared.queue.pop() }
    }

    /// The queue and its state.
    pub(crate) fn shared(&self) -> &Arc<Shared<T, S>> {
        &self.shared
    }
}

/// An unbounded SPSC queue; see the module docs.
///
/// The consumer's fields and the producer's fields sit on cache lines of their own, so that
/// a pop does not invalidate the line the producer pushes with, and the other way round.
struct Queue<T> {
    /// Items popped so far (wrapping); stored only by the consumer.
    head: CachePadded<AtomicUsize>,
    /// Items pushed so far (wrapping); stored only by the producer, `Release`.
    tail: CachePadded<AtomicUsize>,
    /// The block holding item `head`, or the one before it; used only by the consumer.
    head_block: AtomicPtr<Block<T>>,
    /// The block holding item `tail - 1`; used only by the producer.
    tail_block: AtomicPtr<Block<T>>,
    /// A block the consumer finished with, for the producer to reuse; null if none.
    spare: AtomicPtr<Block<T>>,
}

// SAFETY: the queue moves `T`s from the producer's thread to the consumer's, so `T: Send` is
// needed and enough; the slots are only touched under the SPSC protocol documented on
// `push` and `pop`, which the owners of the queue uphold.
unsafe impl<T: Send> Send for Queue<T> {}
// SAFETY: as above: shared access is only through `push` (one producer) and `pop` (one
// consumer), which never touch the same slot at the same time.
unsafe impl<T: Send> Sync for Queue<T> {}

impl<T> Queue<T> {
    fn new() -> Self {
        let sentinel = Block::alloc();
        Self {
            head: CachePadded(AtomicUsize::new(0)),
            tail: CachePadded(AtomicUsize::new(0)),
            head_block: AtomicPtr::new(sentinel),
            tail_block: AtomicPtr::new(sentinel),
            spare: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Number of items pushed and not yet popped (exact for the producer and the consumer).
    fn len(&self) -> usize {
        let tail = self.tail.load(Ordering::Acquire);
        let head = self.head.load(Ordering::Acquire);
        tail.wrapping_sub(head)
    }

    /// Appends `value`.
    ///
    /// # Safety
    ///
    /// At most one thread may be inside `push` at a time (single producer).
    unsafe fn push(&self, value: T) {
        let tail = self.tail.load(Ordering::Relaxed);
        let index = tail % BLOCK_LEN;
        let mut block = self.tail_block.load(Ordering::Relaxed);
        if index == 0 {
            let next = self.take_spare();
            // SAFETY: `block` is the producer's current block. The consumer frees or recycles
            // a block only after reading its `next`, which happens only after it has seen an
            // item published past this store; so `block` is alive here.
            unsafe { (*block).next.store(next, Ordering::Release) };
            self.tail_block.store(next, Ordering::Relaxed);
            block = next;
        }
        // SAFETY: slot `index` of `block` is free: the consumer has not reached item `tail`
        // (it is not published yet), and it read the value that slot last held before it
        // handed the block back (the `spare` exchange orders that read before our write).
        unsafe { (*block).slots[index].with_mut(|slot| (*slot).write(value)) };
        self.tail.store(tail.wrapping_add(1), Ordering::Release);
    }

    /// Removes the oldest item, if any.
    ///
    /// # Safety
    ///
    /// At most one thread may be inside `pop` at a time (single consumer).
    unsafe fn pop(&self) -> Option<T> {
        let head = self.head.load(Ordering::Relaxed);
        if head == self.tail.load(Ordering::Acquire) {
            return None;
        }
        let index = head % BLOCK_LEN;
        let mut block = self.head_block.load(Ordering::Relaxed);
        if index == 0 {
            // SAFETY: `block` is the consumer's current block, alive until we give it up
            // below. Item `head` is published (the `Acquire` load above), and the producer
            // stored `next` before publishing it, so `next` is the block holding it.
            let next = unsafe { (*block).next.load(Ordering::Acquire) };
            self.head_block.store(next, Ordering::Relaxed);
            // SAFETY: every item of the old block was popped and the producer has moved on
            // to `next`, so nobody uses the old block any more.
            unsafe { self.recycle(block) };
            block = next;
        }
        // SAFETY: item `head` is published (above), so its slot holds an initialised value
        // that the producer will not touch again until the block is recycled; we read it
        // exactly once, then advance `head` past it.
        let value = unsafe { (*block).slots[index].with(|slot| (*slot).assume_init_read()) };
        self.head.store(head.wrapping_add(1), Ordering::Release);
        Some(value)
    }

    fn take_spare(&self) -> *mut Block<T> {
        let spare = self.spare.swap(ptr::null_mut(), Ordering::Acquire);
        if spare.is_null() {
            Block::alloc()
        } else {
            // SAFETY: the swap made us the block's only owner; it came from `recycle`.
            unsafe { (*spare).next.store(ptr::null_mut(), Ordering::Relaxed) };
            spare
        }
    }

    /// Keeps `block` as the spare, or frees it if there already is one.
    ///
    /// # Safety
    ///
    /// `block` came from `Block::alloc`, holds no live item and is used by nobody else.
    unsafe fn recycle(&self, block: *mut Block<T>) {
        if self
            .spare
            .compare_exchange(ptr::null_mut(), block, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            // SAFETY: per this function's contract, we own `block` and it holds no value
            // (slots are `MaybeUninit`, so nothing is dropped twice).
            drop(unsafe { Box::from_raw(block) });
        }
    }
}

impl<T> Drop for Queue<T> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: neither side can be inside `push` or `pop`.
        while unsafe { self.pop() }.is_some() {}
        // After draining, the consumer has made the same block moves as the producer, so
        // `head_block == tail_block`: the one block still in use.
        let block = self.head_block.load(Ordering::Relaxed);
        // SAFETY: the queue owns this block and it holds no live item (drained above).
        drop(unsafe { Box::from_raw(block) });
        let spare = self.spare.load(Ordering::Relaxed);
        if !spare.is_null() {
            // SAFETY: a spare block is owned by the queue and holds no live item.
            drop(unsafe { Box::from_raw(spare) });
        }
    }
}

impl<T> core::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Queue").field("len", &self.len()).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use alloc::vec::Vec;
    use std::sync::Arc;

    const N: usize = if cfg!(miri) { 200 } else { 100_000 };

    #[test]
    fn fifo_across_blocks() {
        let q = Queue::new();
        for round in 0..3 {
            for i in 0..(BLOCK_LEN * 3 + 5) {
                // SAFETY: this thread is the only producer and consumer.
                unsafe { q.push(round * 1000 + i) };
            }
            let mut out = Vec::new();
            // SAFETY: as above.
            while let Some(v) = unsafe { q.pop() } {
                out.push(v);
            }
            let expected: Vec<_> = (0..(BLOCK_LEN * 3 + 5)).map(|i| round * 1000 + i).collect();
            assert_eq!(out, expected);
        }
    }

    #[test]
    fn drop_frees_items_left_behind() {
        let item = Arc::new(());
        {
            let q = Queue::new();
            for _ in 0..(BLOCK_LEN * 2 + 3) {
                // SAFETY: single thread.
                unsafe { q.push(item.clone()) };
            }
            // SAFETY: single thread.
            drop(unsafe { q.pop() });
            assert_eq!(Arc::strong_count(&item), BLOCK_LEN * 2 + 3);
        }
        assert_eq!(Arc::strong_count(&item), 1);
    }

    #[test]
    fn counters_wrap() {
        let q: Queue<usize> = Queue::new();
        // Start just below the wrap of the counters; BLOCK_LEN divides 2^usize::BITS.
        q.head.store(usize::MAX - 40, Ordering::Relaxed);
        q.tail.store(usize::MAX - 40, Ordering::Relaxed);
        // The first items land mid-block; then the queue crosses block boundaries and the wrap.
        for i in 0..200 {
            // SAFETY: single thread.
            unsafe { q.push(i) };
            // SAFETY: single thread.
            assert_eq!(unsafe { q.pop() }, Some(i));
        }
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn handles_share_state() {
        let (mut tx, mut rx) = spsc::<u8, &str>("state");
        tx.push(1);
        assert_eq!(rx.shared().len(), 1);
        assert_eq!(tx.shared().state, "state");
        assert_eq!(rx.pop(), Some(1));
        assert_eq!(rx.pop(), None);
    }

    #[test]
    fn two_threads_in_order() {
        let q = Arc::new(Queue::new());
        let producer = {
            let q = q.clone();
            std::thread::spawn(move || {
                for i in 0..N {
                    // SAFETY: this thread is the only producer.
                    unsafe { q.push(i) };
                }
            })
        };
        let mut next = 0;
        while next < N {
            // SAFETY: this thread is the only consumer.
            if let Some(v) = unsafe { q.pop() } {
                assert_eq!(v, next);
                next += 1;
            } else {
                std::thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert_eq!(q.len(), 0);
    }
}
