//! A value set once (the first `set` wins) and taken once.

use core::mem::MaybeUninit;

use crate::sync::{AtomicUsize, Ordering, UnsafeCell};

const EMPTY: usize = 0;
const WRITING: usize = 1;
const FULL: usize = 2;
const TAKEN: usize = 3;

/// See the module docs. Waiting for the value is the owner's business (a seek's reply
/// pairs it with an `AtomicWaker`), so this holds no waker.
pub(crate) struct Oneshot<T> {
    state: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

// SAFETY: the value moves from the setter's thread to the taker's (`T: Send`); the state
// machine gives the slot to exactly one writer (EMPTY -> WRITING) and then to exactly one
// reader (FULL -> TAKEN), so shared access never touches the value concurrently.
unsafe impl<T: Send> Send for Oneshot<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Oneshot<T> {}

impl<T> Oneshot<T> {
    pub(crate) fn new() -> Self {
        Self {
            state: AtomicUsize::new(EMPTY),
            value: UnsafeCell::new(MaybeUninit::uninit()),
        }
    }

    /// Stores `value` if nothing was stored before; otherwise hands it back.
    pub(crate) fn set(&self, value: T) -> Result<(), T> {
        if self
            .state
            .compare_exchange(EMPTY, WRITING, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(value);
        }
        // SAFETY: the EMPTY -> WRITING exchange makes this the only thread touching the slot,
        // and nobody reads it before the FULL store below.
        self.value.with_mut(|slot| unsafe { (*slot).write(value) });
        self.state.store(FULL, Ordering::Release);
        Ok(())
    }

    /// Takes the value if it was set and not taken yet.
    pub(crate) fn take(&self) -> Option<T> {
        self.state
            .compare_exchange(FULL, TAKEN, Ordering::Acquire, Ordering::Relaxed)
            .ok()?;
        // SAFETY: FULL means the value was written (the `Acquire` pairs with `set`'s
        // `Release`); the FULL -> TAKEN exchange lets exactly one caller read it, once.
        Some(
            self.value
                .with(|slot| unsafe { (*slot).assume_init_read() }),
        )
    }
}

impl<T> Drop for Oneshot<T> {
    fn drop(&mut self) {
        if self.state.load(Ordering::Acquire) == FULL {
            // SAFETY: FULL: the value is initialised and was never taken; `&mut self` means
            // no other access.
            self.value
                .with_mut(|slot| unsafe { (*slot).assume_init_drop() });
        }
    }
}

impl<T> core::fmt::Debug for Oneshot<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let state = match self.state.load(Ordering::Acquire) {
            EMPTY | WRITING => "empty",
            FULL => "full",
            _ => "taken",
        };
        f.debug_struct("Oneshot").field("state", &state).finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn first_set_wins_and_take_is_once() {
        let cell = Oneshot::new();
        assert_eq!(cell.take(), None);
        assert_eq!(cell.set(1), Ok(()));
        assert_eq!(cell.set(2), Err(2));
        assert_eq!(cell.take(), Some(1));
        assert_eq!(cell.take(), None);
    }

    #[test]
    fn drop_frees_an_untaken_value() {
        let value = Arc::new(());
        let cell = Oneshot::new();
        cell.set(value.clone()).unwrap();
        assert_eq!(Arc::strong_count(&value), 2);
        drop(cell);
        assert_eq!(Arc::strong_count(&value), 1);
    }

    #[test]
    fn set_on_one_thread_take_on_another() {
        let cell = Arc::new(Oneshot::new());
        let setter = {
            let cell = cell.clone();
            std::thread::spawn(move || cell.set(7u64).unwrap())
        };
        let value = loop {
            if let Some(v) = cell.take() {
                break v;
            }
            std::thread::yield_now();
        };
        setter.join().unwrap();
        assert_eq!(value, 7);
    }
}
