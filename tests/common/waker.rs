//! A waker that counts its wakes, for poll-by-hand tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Wake, Waker};

#[derive(Debug, Default)]
pub struct Counter(AtomicUsize);

impl Wake for Counter {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A waker and its wake count.
#[derive(Debug, Clone)]
pub struct CountingWaker {
    counter: Arc<Counter>,
    waker: Waker,
}

impl CountingWaker {
    pub fn new() -> Self {
        let counter = Arc::new(Counter::default());
        let waker = Waker::from(counter.clone());
        Self { counter, waker }
    }

    pub fn count(&self) -> usize {
        self.counter.0.load(Ordering::SeqCst)
    }

    pub fn context(&self) -> Context<'_> {
        Context::from_waker(&self.waker)
    }

    pub fn waker(&self) -> &Waker {
        &self.waker
    }
}
