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

/// An `Option<u64>` written by one thread and read by any, without a lock and without 64-bit
/// atomics (which 32-bit targets such as `thumbv7em-none-eabihf` lack): a sequence lock over
/// two 32-bit halves. Readers retry while a write is in progress; writes are rare.
#[derive(Debug)]
pub(crate) struct AtomicLen {
    /// Odd while a write is in progress.
    seq: AtomicUsize,
    hi: AtomicU32,
    lo: AtomicU32,
}

impl AtomicLen {
    /// `u64::MAX` stands for "unknown".
    const UNKNOWN: u64 = u64::MAX;

    pub(crate) fn new() -> Self {
        Self {
            seq: AtomicUsize::new(0),
            hi: AtomicU32::new(u32::MAX),
            lo: AtomicU32::new(u32::MAX),
        }
    }

    /// Stores `len`. Only one thread may write (the engine).
    pub(crate) fn store(&self, len: Option<u64>) {
        let value = len.unwrap_or(Self::UNKNOWN);
        let seq = self.seq.load(Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        self.hi.store((value >> 32) as u32, Ordering::Relaxed);
        self.lo.store(value as u32, Ordering::Relaxed);
        self.seq.store(seq.wrapping_add(2), Ordering::Release);
    }

    /// The last length stored.
    pub(crate) fn load(&self) -> Option<u64> {
        loop {
            let before = self.seq.load(Ordering::Acquire);
            if before % 2 == 1 {
                spin_loop();
                continue;
            }
            let hi = self.hi.load(Ordering::Relaxed);
            let lo = self.lo.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == before {
                let value = (u64::from(hi) << 32) | u64::from(lo);
                return (value != Self::UNKNOWN).then_some(value);
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
