//! A slot that keeps only the newest value: `put` swaps the new value in and returns the one
//! it replaced, `take` empties it. Ownership moves whole through one atomic pointer swap, so
//! no thread ever reads a value it did not swap out (no ABA, no use after free).

use alloc::boxed::Box;
use core::ptr;

use crate::sync::{AtomicPtr, Ordering};

pub(crate) struct Latest<T> {
    slot: AtomicPtr<T>,
}

// SAFETY: values move between threads through the slot (`T: Send`), and only the thread that
// swapped a pointer out ever dereferences it.
unsafe impl<T: Send> Send for Latest<T> {}
// SAFETY: as above; `&Latest` only offers whole-value swaps.
unsafe impl<T: Send> Sync for Latest<T> {}

impl<T> Latest<T> {
    pub(crate) fn new() -> Self {
        Self {
            slot: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// Stores `value`, returning the value it replaced (one nobody had taken).
    ///
    /// `SeqCst`, so that a `put` followed by a check of another flag cannot miss a `take`
    /// that follows the setting of that flag (see the engine's shutdown).
    pub(crate) fn put(&self, value: T) -> Option<T> {
        let new = Box::into_raw(Box::new(value));
        let old = self.slot.swap(new, Ordering::SeqCst);
        // SAFETY: non-null pointers in the slot come from `Box::into_raw` above, and the swap
        // made us their only owner.
        (!old.is_null()).then(|| *unsafe { Box::from_raw(old) })
    }

    /// Empties the slot, returning what it held.
    pub(crate) fn take(&self) -> Option<T> {
        let old = self.slot.swap(ptr::null_mut(), Ordering::SeqCst);
        // SAFETY: as in `put`: the swap made us the only owner of `old`.
        (!old.is_null()).then(|| *unsafe { Box::from_raw(old) })
    }

    /// Whether the slot holds a value (a hint: it may change right after).
    pub(crate) fn is_occupied(&self) -> bool {
        !self.slot.load(Ordering::SeqCst).is_null()
    }
}

impl<T> Drop for Latest<T> {
    fn drop(&mut self) {
        drop(self.take());
    }
}

impl<T> core::fmt::Debug for Latest<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Latest")
            .field("occupied", &self.is_occupied())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn keeps_only_the_newest() {
        let slot = Latest::new();
        assert!(!slot.is_occupied());
        assert_eq!(slot.put(1), None);
        assert_eq!(slot.put(2), Some(1));
        assert!(slot.is_occupied());
        assert_eq!(slot.take(), Some(2));
        assert_eq!(slot.take(), None);
    }

    #[test]
    fn drop_frees_the_value() {
        let value = Arc::new(());
        let slot = Latest::new();
        slot.put(value.clone());
        drop(slot);
        assert_eq!(Arc::strong_count(&value), 1);
    }
}
