//! [`Timer`]: the one way the crate waits for time, handed in by the user, so that it stays
//! on any executor (or none).

use alloc::boxed::Box;
use core::future::Future;
use core::pin::Pin;
use core::time::Duration;

/// A future that completes once a duration has passed.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Sleeps: whatever the user's runtime offers. The crate never picks a runtime; a retry
/// policy's backoff and stall detection (and the readers' timeouts) wait through this.
///
/// A closure `Fn(Duration) -> impl Future<Output = ()>` is one, so a runtime's own sleep
/// function can be handed in as it is:
///
/// ```ignore
/// let tokio_timer = tokio::time::sleep;
/// let smol_timer = |d| async move { smol::Timer::after(d).await; };
/// let async_std_timer = async_std::task::sleep;
/// ```
pub trait Timer: Send + Sync + 'static {
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> Sleep;
}

impl<F, Fut> Timer for F
where
    F: Fn(Duration) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(self(duration))
    }
}
