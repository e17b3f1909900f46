//! A minimal executor for plain threads (`std` feature): [`block_on`] runs a future on the
//! calling thread, parking it while the future is pending.
//!
//! The crate itself spawns nothing and needs no runtime; this is for the places where no
//! runtime is at hand: an engine on a thread of its own, a test, an example. The blocking
//! reader ([`io::BlockingReader`](crate::io::BlockingReader)) waits the same way.

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};
use std::sync::Arc;
use std::task::Wake;
use std::thread::{self, Thread};
use std::time::Instant;

struct Unparker(Thread);

impl Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

std::thread_local! {
    static WAKER: Waker = Waker::from(Arc::new(Unparker(thread::current())));
}

/// Calls `poll` until it is ready, parking the thread in between; the waker it passes
/// unparks this thread.
pub(crate) fn poll_blocking<T>(poll: impl FnMut(&mut Context<'_>) -> Poll<T>) -> T {
    poll_blocking_until(None, poll).expect("without a deadline the poll is always ready")
}

/// As [`poll_blocking`], but gives up at `deadline` (`None` once it has passed).
pub(crate) fn poll_blocking_until<T>(
    deadline: Option<Instant>,
    mut poll: impl FnMut(&mut Context<'_>) -> Poll<T>,
) -> Option<T> {
    WAKER.with(|waker| {
        let mut cx = Context::from_waker(waker);
        loop {
            if let Poll::Ready(value) = poll(&mut cx) {
                return Some(value);
            }
            // A wake that came before this park left a token: `park` returns at once.
            // Spurious returns only cost one more poll.
            match deadline {
                None => thread::park(),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return None;
                    }
                    thread::park_timeout(deadline - now);
                }
            }
        }
    })
}

/// Runs `future` to completion on this thread, parking it while the future is pending.
///
/// A minimal executor for a plain thread: enough to run an engine whose source needs no
/// runtime (for example `std::thread::spawn(move || block_on(engine.run()))`), or to wait
/// for a seek. Futures that need a runtime's reactor (tokio's sockets, say) still need that
/// runtime.
///
/// Do not call it inside an async task: it blocks the executor's thread.
///
/// ```
/// let four = kithara_stream::exec::block_on(async { 2 + 2 });
/// assert_eq!(four, 4);
/// ```
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    poll_blocking(|cx| future.as_mut().poll(cx))
}
