//! Synchronisation shim: the crate's atomics, `Arc`, `UnsafeCell` and `AtomicWaker` come from
//! here, so that `RUSTFLAGS="--cfg loom"` swaps them all for loom's model-checked versions.

#[cfg(not(loom))]
pub(crate) use alloc::sync::Arc;
#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering, fence,
};

#[cfg(loom)]
pub(crate) use loom::sync::Arc;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU32, AtomicUsize, Ordering, fence,
};

use core::task::Waker;

/// A cell whose accesses go through closures, as loom's does, so that loom can check them.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// One task's waker, registered and woken without a lock (futures' `AtomicWaker`, or loom's).
#[derive(Debug, Default)]
pub(crate) struct AtomicWaker {
    #[cfg(not(loom))]
    inner: futures_util::task::AtomicWaker,
    #[cfg(loom)]
    inner: loom::future::AtomicWaker,
}

impl AtomicWaker {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Registers `waker`, replacing the previous one; a wake racing with this call is not lost.
    pub(crate) fn register(&self, waker: &Waker) {
        #[cfg(not(loom))]
        self.inner.register(waker);
        #[cfg(loom)]
        self.inner.register_by_ref(waker);
    }

    /// Wakes and removes the registered waker, if any.
    pub(crate) fn wake(&self) {
        self.inner.wake();
    }
}

/// A value alone on its cache line(s), so that a field one side writes often does not slow
/// down the other side's accesses to its neighbours (false sharing). 128 bytes: x86_64
/// prefetches lines in pairs, and some aarch64 cores have 128-byte lines.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> core::ops::Deref for CachePadded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

/// An `Option<u64>` written and read by any thread, without a lock and without 64-bit
/// atomics (which 32-bit targets such as `thumbv7em-none-eabihf` lack).
///
/// Two slots of two 32-bit halves: a write fills the slot that is not published, then
/// publishes it. A reader reads the published slot, which no write touches until the write
/// after next begins, so a reader never waits for a writer: an interrupt that preempts a
/// writer mid-write still reads the last value at once. Readers retry only when two writes
/// completed during their read. Writers take turns through `seq` (odd while one writes);
/// writes are rare.
#[derive(Debug)]
pub(crate) struct AtomicLen {
    /// `2 * completed writes`, plus one while a write is in progress. The published slot is
    /// `(seq / 2) % 2`.
    seq: AtomicUsize,
    slots: [(AtomicU32, AtomicU32); 2],
}

impl AtomicLen {
    /// `u64::MAX` stands for "unknown".
    const UNKNOWN: u64 = u64::MAX;

    pub(crate) fn new() -> Self {
        let unknown = || (AtomicU32::new(u32::MAX), AtomicU32::new(u32::MAX));
        Self {
            seq: AtomicUsize::new(0),
            slots: [unknown(), unknown()],
        }
    }

    /// Stores `len`.
    pub(crate) fn store(&self, len: Option<u64>) {
        self.update(|_| len);
    }

    /// Stores `len` if it is larger than the stored length (or that is unknown): a known
    /// length is never lowered.
    #[cfg_attr(not(feature = "std"), allow(dead_code))] // the sources use it
    pub(crate) fn raise(&self, len: Option<u64>) {
        self.update(|old| match (old, len) {
            (Some(old), Some(new)) => Some(old.max(new)),
            (old, new) => new.or(old),
        });
    }

    /// Replaces the stored value with `f(value)`, as one write.
    fn update(&self, f: impl FnOnce(Option<u64>) -> Option<u64>) {
        // Take the writer's turn: from an even `seq` to the odd one after it.
        let seq = loop {
            let seq = self.seq.load(Ordering::Relaxed);
            if seq % 2 == 0
                && self
                    .seq
                    .compare_exchange_weak(seq, seq + 1, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
            {
                break seq;
            }
            spin_loop();
        };
        let published = &self.slots[(seq / 2) % 2];
        let old = Self::decode(published);
        let value = f(old).unwrap_or(Self::UNKNOWN);
        // Readers of the other slot finished before this write's turn began, or retry.
        fence(Ordering::Release);
        let (hi, lo) = &self.slots[(seq / 2 + 1) % 2];
        hi.store((value >> 32) as u32, Ordering::Relaxed);
        lo.store(value as u32, Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    fn decode((hi, lo): &(AtomicU32, AtomicU32)) -> Option<u64> {
        let value =
            (u64::from(hi.load(Ordering::Relaxed)) << 32) | u64::from(lo.load(Ordering::Relaxed));
        (value != Self::UNKNOWN).then_some(value)
    }

    /// The last length stored. Never waits for a write in progress.
    pub(crate) fn load(&self) -> Option<u64> {
        loop {
            let before = self.seq.load(Ordering::Acquire);
            let value = Self::decode(&self.slots[(before / 2) % 2]);
            fence(Ordering::Acquire);
            let after = self.seq.load(Ordering::Relaxed);
            // The slot read is rewritten by the write that begins once `seq` passes the
            // next even value: until then the read is whole.
            if after.wrapping_sub(before & !1) <= 2 {
                return value;
            }
        }
    }
}

/// A busy-wait hint; under loom, a yield so that the model lets the writer go on.
fn spin_loop() {
    #[cfg(not(loom))]
    core::hint::spin_loop();
    #[cfg(loom)]
    loom::thread::yield_now();
}

/// Run with `RUSTFLAGS="--cfg loom" cargo test --release --lib loom_`.
#[cfg(all(test, loom))]
mod loom_tests {
    use super::{Arc, AtomicLen};

    /// A load racing two stores sees one of the stored values whole, never a mix.
    #[test]
    fn loom_atomic_len_never_tears() {
        loom::model(|| {
            let len = Arc::new(AtomicLen::new());
            let writer = {
                let len = len.clone();
                loom::thread::spawn(move || {
                    len.store(Some(0x1111_1111_2222_2222));
                    len.store(Some(0x3333_3333_4444_4444));
                })
            };
            let seen = len.load();
            assert!(
                matches!(
                    seen,
                    None | Some(0x1111_1111_2222_2222 | 0x3333_3333_4444_4444)
                ),
                "torn read: {seen:x?}"
            );
            writer.join().unwrap();
            assert_eq!(len.load(), Some(0x3333_3333_4444_4444));
        });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::AtomicLen;

    #[test]
    fn atomic_len_round_trips() {
        let len = AtomicLen::new();
        assert_eq!(len.load(), None);
        for value in [
            0,
            1,
            u64::from(u32::MAX),
            1 << 32,
            (1 << 40) + 7,
            u64::MAX - 1,
        ] {
            len.store(Some(value));
            assert_eq!(len.load(), Some(value));
        }
        len.store(None);
        assert_eq!(len.load(), None);
    }

    /// A writer stopped mid-write (an interrupt preempted it, say) does not make a reader
    /// wait: it reads the last value at once.
    #[test]
    fn atomic_len_load_does_not_wait_for_a_stalled_writer() {
        use super::Ordering;
        let len = AtomicLen::new();
        len.store(Some(7));
        // What `update` does first: take the writer's turn, then stall.
        len.seq.fetch_add(1, Ordering::Acquire);
        assert_eq!(len.load(), Some(7));
    }

    #[test]
    fn atomic_len_raise_never_lowers() {
        let len = AtomicLen::new();
        len.raise(None);
        assert_eq!(len.load(), None);
        len.raise(Some(100));
        len.raise(Some(50));
        len.raise(None);
        assert_eq!(len.load(), Some(100));
        len.raise(Some(150));
        assert_eq!(len.load(), Some(150));
    }

    #[test]
    fn atomic_len_never_tears() {
        let len = std::sync::Arc::new(AtomicLen::new());
        let writer = {
            let len = len.clone();
            std::thread::spawn(move || {
                for i in 0..20_000u64 {
                    // Both halves differ between the two values.
                    len.store(Some(if i % 2 == 0 {
                        0x1111_1111_2222_2222
                    } else {
                        0x3333_3333_4444_4444
                    }));
                }
            })
        };
        for _ in 0..20_000 {
            let seen = len.load();
            assert!(
                matches!(
                    seen,
                    None | Some(0x1111_1111_2222_2222 | 0x3333_3333_4444_4444)
                ),
                "torn read: {seen:x?}"
            );
        }
        writer.join().unwrap();
    }
}
