//! [`Retrying`]: a [`Fetch`] that resumes at the byte reached when a fetch fails, stalls or
//! ends short, under a [`RetryPolicy`].

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, ready};
use core::time::Duration;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_core::Stream;

use super::fetch::{ByteRange, Fetch, FetchError, RangeMismatch, RangeResponse, same_version};
use super::http::HttpStatus;
use super::range::Checked;
use crate::store::Validator;
use std::sync::Arc;

use crate::sync::AtomicLen;
use crate::timer::{Sleep, Timer};

/// Whether an error is worth another try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// It will not go away (a 404, a 403, a response that holds other bytes): surface it.
    No,
    /// It may go away (a reset, a timeout, a 5xx): try again after the backoff.
    Yes,
    /// Try again, but not before this long (an HTTP `Retry-After`).
    After(Duration),
}

/// The classification of an error for a [`RetryPolicy`].
///
/// Implemented for `std::io::Error` (by its kind, and by what it carries: a
/// [`RangeMismatch`], a [`Stalled`] or an [`HttpStatus`]) and for [`FetchError`]; implement
/// it for a fetch's own error type.
pub trait Retryable {
    /// Whether to try again.
    fn retry(&self) -> Retry;
}

impl Retryable for io::Error {
    /// `NotFound`, `PermissionDenied`, `InvalidInput`, `InvalidData` and `Unsupported` are
    /// not retried; an error carrying an [`HttpStatus`], a [`RangeMismatch`] or a
    /// [`Stalled`] is classified by it; anything else (resets, timeouts, an early end, a
    /// transport error) is retried.
    fn retry(&self) -> Retry {
        if let Some(inner) = self.get_ref() {
            if let Some(status) = inner.downcast_ref::<HttpStatus>() {
                return status.retry();
            }
            if let Some(mismatch) = inner.downcast_ref::<RangeMismatch>() {
                return mismatch.retry();
            }
            if inner.is::<Stalled>() {
                return Retry::Yes;
            }
        }
        match self.kind() {
            io::ErrorKind::NotFound
            | io::ErrorKind::PermissionDenied
            | io::ErrorKind::InvalidInput
            | io::ErrorKind::InvalidData
            | io::ErrorKind::Unsupported => Retry::No,
            _ => Retry::Yes,
        }
    }
}

impl Retryable for RangeMismatch {
    /// A truncated body is resumed; a response that starts elsewhere, or of a changed
    /// resource, is not retried.
    fn retry(&self) -> Retry {
        match self {
            Self::Truncated { .. } => Retry::Yes,
            Self::WrongStart { .. } | Self::Changed => Retry::No,
        }
    }
}

impl<E: Retryable> Retryable for FetchError<E> {
    fn retry(&self) -> Retry {
        match self {
            Self::Fetch(error) => error.retry(),
            Self::Mismatch(mismatch) => mismatch.retry(),
            Self::Stalled(_) => Retry::Yes,
        }
    }
}

/// No byte came for the stall timeout of a [`RetryPolicy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stalled {
    /// The position the fetch had reached.
    pub at: u64,
    /// How long nothing came.
    pub after: Duration,
}

impl fmt::Display for Stalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no byte for {:?} at byte {}", self.after, self.at)
    }
}

impl std::error::Error for Stalled {}

impl From<Stalled> for io::Error {
    /// `TimedOut`, with the stall inside.
    fn from(stalled: Stalled) -> Self {
        io::Error::new(io::ErrorKind::TimedOut, stalled)
    }
}

impl<E> From<Stalled> for FetchError<E> {
    fn from(stalled: Stalled) -> Self {
        Self::Stalled(stalled)
    }
}

/// What hears of each retry.
type OnRetry = dyn Fn(&RetryEvent) + Send + Sync;

/// A retry about to happen, for a player's "reconnecting".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryEvent {
    /// 1 for the first retry after bytes last came, then 2, 3, …
    pub attempt: u32,
    /// The byte the retry fetches from.
    pub position: u64,
    /// The wait before it.
    pub delay: Duration,
    /// What failed.
    pub cause: String,
}

/// How [`Retrying`] retries: how often, how long it waits, what counts as a stall, and who
/// hears of it.
///
/// Defaults: 8 attempts (counted since the last byte that came), backoff from 250 ms,
/// doubling up to 8 s, each wait shortened by up to half at random (jitter), no stall
/// timeout, no timer. Without a [`Timer`] nothing is timed: retries follow at once and a
/// stall is not noticed. `Retry-After` is honoured up to the ceiling.
///
/// ```
/// use std::time::Duration;
/// use kithara_stream::sources::RetryPolicy;
///
/// let policy = RetryPolicy::default()
///     .with_attempts(5)
///     .with_backoff(Duration::from_millis(100), Duration::from_secs(4))
///     .with_stall_timeout(Duration::from_secs(5))
///     .with_timer(|d| async move { std::thread::sleep(d) }); // a runtime's sleep, in practice
/// assert_eq!(policy.attempts(), 5);
/// ```
pub struct RetryPolicy {
    attempts: u32,
    base: Duration,
    ceiling: Duration,
    jitter: f64,
    stall: Option<Duration>,
    timer: Option<Arc<dyn Timer>>,
    on_retry: Option<Arc<OnRetry>>,
    seed: AtomicU64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 8,
            base: Duration::from_millis(250),
            ceiling: Duration::from_secs(8),
            jitter: 0.5,
            stall: None,
            timer: None,
            on_retry: None,
            seed: AtomicU64::new(0x9e37_79b9_7f4a_7c15),
        }
    }
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("attempts", &self.attempts)
            .field("base", &self.base)
            .field("ceiling", &self.ceiling)
            .field("jitter", &self.jitter)
            .field("stall", &self.stall)
            .field("timer", &self.timer.is_some())
            .finish_non_exhaustive()
    }
}

impl RetryPolicy {
    /// No retries: every error surfaces at once (what a plain [`RangeSource`] does).
    ///
    /// [`RangeSource`]: super::RangeSource
    pub fn never() -> Self {
        Self::default().with_attempts(0)
    }

    /// At most `attempts` retries in a row without a byte coming in between.
    #[must_use]
    pub fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }

    /// The retries allowed in a row.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The first wait, doubled for each retry in a row up to `ceiling`.
    ///
    /// # Panics
    ///
    /// If `base > ceiling`.
    #[must_use]
    #[track_caller]
    pub fn with_backoff(mut self, base: Duration, ceiling: Duration) -> Self {
        assert!(base <= ceiling, "the backoff's base is above its ceiling");
        self.base = base;
        self.ceiling = ceiling;
        self
    }

    /// Each wait is shortened by up to `fraction` of it at random, so that clients that
    /// failed together do not retry together (default 0.5).
    ///
    /// # Panics
    ///
    /// If `fraction` is not within `0.0..=1.0`.
    #[must_use]
    #[track_caller]
    pub fn with_jitter(mut self, fraction: f64) -> Self {
        assert!(
            (0.0..=1.0).contains(&fraction),
            "jitter must be within 0..=1"
        );
        self.jitter = fraction;
        self
    }

    /// Seeds the jitter's random source (for reproducible tests).
    #[must_use]
    pub fn with_jitter_seed(self, seed: u64) -> Self {
        self.seed.store(seed | 1, Ordering::Relaxed);
        self
    }

    /// No byte (nor response) for `timeout` counts as a retryable error ([`Stalled`]).
    /// Needs a timer.
    #[must_use]
    pub fn with_stall_timeout(mut self, timeout: Duration) -> Self {
        self.stall = Some(timeout);
        self
    }

    /// The timer that waits for backoffs and stalls (see [`Timer`]).
    #[must_use]
    pub fn with_timer(mut self, timer: impl Timer) -> Self {
        self.timer = Some(Arc::new(timer));
        self
    }

    /// Calls `f` before each retry.
    #[must_use]
    pub fn on_retry(mut self, f: impl Fn(&RetryEvent) + Send + Sync + 'static) -> Self {
        self.on_retry = Some(Arc::new(f));
        self
    }

    /// The wait before retry number `attempt` (1, 2, …) after `error`, or `None` to give up.
    fn delay(&self, retry: Retry, attempt: u32) -> Option<Duration> {
        if attempt > self.attempts {
            return None;
        }
        let doubled = self
            .base
            .saturating_mul(1u32 << (attempt - 1).min(20))
            .min(self.ceiling);
        let backoff = doubled.mul_f64(1.0 - self.jitter * self.random());
        match retry {
            Retry::No => None,
            Retry::Yes => Some(backoff),
            Retry::After(after) => Some(after.max(backoff).min(self.ceiling)),
        }
    }

    /// A number in `0.0..1.0` (xorshift64*).
    fn random(&self) -> f64 {
        let mut x = self.seed.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.seed.store(x, Ordering::Relaxed);
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }

    fn stall_timer(&self) -> Option<Sleep> {
        Some(self.timer.as_ref()?.sleep(self.stall?))
    }
}

/// A [`Fetch`] that retries: when a fetch fails, stalls or ends short of its end, it fetches
/// again from the first byte not yet delivered, after a backoff, as its [`RetryPolicy`]
/// says. The reader sees only a pause; no byte is delivered twice. An error that is not
/// retryable ([`Retryable`]), or the last one once the attempts are spent, surfaces as the
/// fetch's error.
///
/// Wrap any fetch and hand it to [`RangeSource`](super::RangeSource) or
/// [`CachedSource`](super::CachedSource):
///
/// ```ignore
/// let fetch = Retrying::new(http_fetch, RetryPolicy::default().with_timer(tokio::time::sleep));
/// let source = RangeSource::new(fetch);
/// ```
pub struct Retrying<F> {
    inner: Arc<F>,
    policy: Arc<RetryPolicy>,
}

impl<F> Retrying<F> {
    /// `inner`, retried as `policy` says.
    pub fn new(inner: F, policy: RetryPolicy) -> Self {
        Self {
            inner: Arc::new(inner),
            policy: Arc::new(policy),
        }
    }
}

impl<F> fmt::Debug for Retrying<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retrying")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<F> Fetch for Retrying<F>
where
    F: Fetch,
    F::Error: Retryable + From<Stalled> + fmt::Display,
{
    type Error = F::Error;
    type Body = Resumed<F>;

    fn fetch(
        &self,
        range: ByteRange,
    ) -> impl Future<Output = Result<RangeResponse<Resumed<F>>, F::Error>> + Send + 'static {
        let mut body = Some(Resumed {
            inner: self.inner.clone(),
            policy: self.policy.clone(),
            len: Arc::new(AtomicLen::new()),
            pos: range.start,
            end: range.end,
            attempt: 0,
            stall: None,
            received: 0,
            validator: None,
            state: State::Opening(Box::pin(self.inner.fetch(range))),
        });
        futures_util::future::poll_fn(move |cx| {
            let opening = body.as_mut().expect("polled after it resolved");
            ready!(opening.poll_open(cx))?;
            let body = body.take().expect("polled after it resolved");
            let (total, validator) = (body.len.load(), body.validator.clone());
            Poll::Ready(Ok(RangeResponse::new(body)
                .with_total_len(total)
                .with_start(Some(range.start))
                .with_validator(validator)))
        })
    }
}

type Opening<F> = Pin<
    Box<dyn Future<Output = Result<RangeResponse<<F as Fetch>::Body>, <F as Fetch>::Error>> + Send>,
>;

/// Where a [`Resumed`] body is.
enum State<F: Fetch> {
    /// Waiting for a response.
    Opening(Opening<F>),
    /// Delivering a body.
    Streaming(Pin<Box<Checked<F::Body>>>),
    /// Waiting out the backoff before the next fetch.
    Backoff(Sleep),
    /// Ended, failed or handed on.
    Done,
}

/// The body of a [`Retrying`] fetch: the bytes from the range's start, across as many
/// fetches as it takes.
pub struct Resumed<F: Fetch> {
    inner: Arc<F>,
    policy: Arc<RetryPolicy>,
    len: Arc<AtomicLen>,
    /// The next byte to deliver.
    pos: u64,
    end: Option<u64>,
    /// Retries since the last byte came.
    attempt: u32,
    /// The stall timer, armed while waiting for a byte or a response.
    stall: Option<Sleep>,
    /// What the body had received when the stall timer was armed.
    received: u64,
    /// The version of the resource the first response was of: a retry must be of it too.
    validator: Option<Validator>,
    state: State<F>,
}

impl<F: Fetch> fmt::Debug for Resumed<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resumed")
            .field("pos", &self.pos)
            .field("end", &self.end)
            .field("attempt", &self.attempt)
            .finish_non_exhaustive()
    }
}

impl<F> Resumed<F>
where
    F: Fetch,
    F::Error: Retryable + From<Stalled> + fmt::Display,
{
    /// Drives the opening, backoffs and retries until a body streams: `Ok` then, or the
    /// error that ends the attempts.
    fn poll_open(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), F::Error>> {
        loop {
            match &mut self.state {
                State::Streaming(_) => return Poll::Ready(Ok(())),
                State::Done => return Poll::Ready(Ok(())),
                State::Backoff(sleep) => {
                    ready!(sleep.as_mut().poll(cx));
                    self.reopen();
                }
                State::Opening(opening) => {
                    let response = match opening.as_mut().poll(cx) {
                        Poll::Ready(response) => response,
                        Poll::Pending => {
                            ready!(self.poll_stall(cx))?;
                            continue;
                        }
                    };
                    self.stall = None;
                    let range = ByteRange {
                        start: self.pos,
                        end: self.end,
                    };
                    let validator = &mut self.validator;
                    let checked = response.and_then(|response| {
                        same_version(validator, response.validator.as_ref())?;
                        Checked::new(response, range, self.len.clone()).map_err(Into::into)
                    });
                    match checked {
                        Ok(body) => {
                            self.received = 0;
                            self.state = State::Streaming(Box::pin(body));
                        }
                        Err(error) => self.fail(error)?,
                    }
                }
            }
        }
    }

    /// Fetches again from the byte reached.
    fn reopen(&mut self) {
        let range = ByteRange {
            start: self.pos,
            end: self.end,
        };
        self.state = State::Opening(Box::pin(self.inner.fetch(range)));
    }

    /// After `error`: waits and fetches again, or gives up with it.
    fn fail(&mut self, error: F::Error) -> Result<(), F::Error> {
        self.stall = None;
        self.attempt += 1;
        let Some(delay) = self.policy.delay(error.retry(), self.attempt) else {
            self.state = State::Done;
            return Err(error);
        };
        if let Some(on_retry) = &self.policy.on_retry {
            on_retry(&RetryEvent {
                attempt: self.attempt,
                position: self.pos,
                delay,
                cause: error.to_string(),
            });
        }
        match &self.policy.timer {
            Some(timer) => self.state = State::Backoff(timer.sleep(delay)),
            None => self.reopen(),
        }
        Ok(())
    }

    /// While nothing comes: the stall timer, armed on the first wait. `Ready(Err)` once it
    /// fires and the attempts are spent, `Ready(Ok)` once it fires and a retry is on its
    /// way.
    fn poll_stall(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), F::Error>> {
        if self.stall.is_none() {
            self.stall = self.policy.stall_timer();
        }
        let Some(stall) = &mut self.stall else {
            return Poll::Pending;
        };
        ready!(stall.as_mut().poll(cx));
        let stalled = Stalled {
            at: self.pos,
            after: self.policy.stall.unwrap_or_default(),
        };
        Poll::Ready(self.fail(stalled.into()))
    }
}

impl<F> Stream for Resumed<F>
where
    F: Fetch,
    F::Error: Retryable + From<Stalled> + fmt::Display,
{
    type Item = Result<Bytes, F::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Err(error) = ready!(this.poll_open(cx)) {
                return Poll::Ready(Some(Err(error)));
            }
            let State::Streaming(body) = &mut this.state else {
                return Poll::Ready(None);
            };
            match body.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    this.pos += bytes.len() as u64;
                    this.attempt = 0;
                    this.stall = None;
                    return Poll::Ready(Some(Ok(bytes)));
                }
                Poll::Ready(Some(Err(error))) => {
                    if let Err(error) = this.fail(error) {
                        return Poll::Ready(Some(Err(error)));
                    }
                }
                Poll::Ready(None) => {
                    this.state = State::Done;
                    return Poll::Ready(None);
                }
                Poll::Pending => {
                    // Bytes that came but were skipped are progress too.
                    if body.received() != this.received {
                        this.received = body.received();
                        this.stall = None;
                    }
                    if let Err(error) = ready!(this.poll_stall(cx)) {
                        return Poll::Ready(Some(Err(error)));
                    }
                }
            }
        }
    }
}
