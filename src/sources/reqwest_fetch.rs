//! [`HttpFetch`] (`reqwest` feature): HTTP range requests with reqwest, checked and
//! classified for retries.

use alloc::boxed::Box;
use alloc::string::String;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use futures_core::Stream;
use futures_util::TryStreamExt;

use super::fetch::{ByteRange, Fetch, RangeMismatch, RangeResponse};
use super::http::HttpStatus;
use super::retry::{Retry, Retryable, Stalled};
use crate::store::Validator;
use std::sync::Arc;

/// A [`Fetch`] of one URL with reqwest: what a player needs from HTTP, without writing the
/// closure.
///
/// - Each fetch is a `GET` with `Range: bytes=start-[end]`.
/// - A `206` must start where it was asked (the core checks its `Content-Range`); a `200`
///   (the whole resource) is taken only for a range from byte 0: a server that ignores
///   `Range` for a later start fails with [`HttpError::RangeIgnored`].
/// - The length comes from `Content-Range` (or a `200`'s `Content-Length`). The validator
///   (the `ETag`, else `Last-Modified`) of the first response is compared with each later
///   response's: a resource that changed fails with [`HttpError::Changed`], never mixing
///   bytes of two versions. A strong `ETag` is also sent as `If-Range`.
/// - A status that is not a success is an [`HttpError::Status`]; [`Retryable`] retries 408,
///   425, 429 (after its `Retry-After`) and 5xx, and transport errors (resets, timeouts,
///   a body cut short), and surfaces the rest at once.
///
/// Compose it with the other layers:
///
/// ```no_run
/// use kithara_stream::sources::{CachedSource, HttpFetch, RetryPolicy, Retrying, StoreParams};
///
/// let fetch = HttpFetch::new(reqwest::Client::new(), "http://127.0.0.1:8000/track.flac");
/// let policy = RetryPolicy::default().with_timer(tokio::time::sleep);
/// let source = CachedSource::new(Retrying::new(fetch, policy), StoreParams::with_budget(32 << 20));
/// ```
#[derive(Debug, Clone)]
pub struct HttpFetch {
    client: reqwest::Client,
    url: String,
    validator: Arc<Mutex<Option<Validator>>>,
}

impl HttpFetch {
    /// Fetches `url` with `client`.
    pub fn new(client: reqwest::Client, url: impl Into<String>) -> Self {
        Self {
            client,
            url: url.into(),
            validator: Arc::default(),
        }
    }

    /// The validator learned from the first response, if it had one: a key for a store
    /// that must not serve a changed resource.
    pub fn validator(&self) -> Option<Validator> {
        lock(&self.validator).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Fetch for HttpFetch {
    type Error = HttpError;
    type Body = HttpBody;

    fn fetch(
        &self,
        range: ByteRange,
    ) -> impl Future<Output = Result<RangeResponse<HttpBody>, HttpError>> + Send + 'static {
        let known = self.validator();
        let mut request = self.client.get(&self.url).header("Range", range.header());
        // A weak entity tag never matches `If-Range` (RFC 9110, 13.1.5): send only a strong
        // one; the validator of every response is compared all the same.
        if let Some(Validator::ETag(tag)) = &known {
            if !tag.starts_with("W/") {
                request = request.header("If-Range", tag.as_str());
            }
        }
        let sent = request.send();
        let learned = self.validator.clone();
        async move {
            let response = sent.await.map_err(HttpError::Transport)?;
            let header = |name| {
                response
                    .headers()
                    .get(name)?
                    .to_str()
                    .ok()
                    .map(String::from)
            };
            let status = response.status().as_u16();
            if let Some(error) = HttpStatus::check(status, header("retry-after").as_deref()) {
                return Err(HttpError::Status(error));
            }
            let validator = header("etag")
                .map(Validator::ETag)
                .or_else(|| header("last-modified").map(Validator::LastModified));
            match (&known, &validator) {
                (Some(known), Some(now)) if known != now => return Err(HttpError::Changed),
                (None, Some(now)) => *lock(&learned) = Some(now.clone()),
                _ => {}
            }
            if status == 200 && range.start > 0 {
                return Err(HttpError::RangeIgnored { asked: range.start });
            }
            let content_range = header("content-range");
            let content_length = response.content_length();
            let body = HttpBody(Box::pin(
                response.bytes_stream().map_err(HttpError::Transport),
            ));
            Ok(
                RangeResponse::http(status, content_range.as_deref(), content_length, body)
                    .with_validator(validator),
            )
        }
    }
}

/// The body of an [`HttpFetch`].
pub struct HttpBody(Pin<Box<dyn Stream<Item = Result<Bytes, HttpError>> + Send>>);

impl fmt::Debug for HttpBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpBody").finish_non_exhaustive()
    }
}

impl Stream for HttpBody {
    type Item = Result<Bytes, HttpError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.as_mut().poll_next(cx)
    }
}

/// The error of an [`HttpFetch`].
#[derive(Debug)]
#[non_exhaustive]
pub enum HttpError {
    /// The response's status is not a success.
    Status(HttpStatus),
    /// The request or its body failed (connecting, a reset, a timeout, a cut body).
    Transport(reqwest::Error),
    /// The response does not hold the bytes asked for.
    Mismatch(RangeMismatch),
    /// No byte came for the stall timeout of a retry policy.
    Stalled(Stalled),
    /// A range from `asked` was answered with the whole resource (`200`).
    RangeIgnored {
        /// The first byte asked for.
        asked: u64,
    },
    /// The resource's validator changed since the first response.
    Changed,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status(status) => status.fmt(f),
            Self::Transport(error) => write!(f, "HTTP transport: {error}"),
            Self::Mismatch(mismatch) => mismatch.fmt(f),
            Self::Stalled(stalled) => stalled.fmt(f),
            Self::RangeIgnored { asked } => {
                write!(
                    f,
                    "the server ignored a range from byte {asked} (200, whole resource)"
                )
            }
            Self::Changed => f.write_str("the resource changed (its validator differs)"),
        }
    }
}

impl std::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Status(status) => Some(status),
            Self::Transport(error) => Some(error),
            Self::Mismatch(mismatch) => Some(mismatch),
            Self::Stalled(stalled) => Some(stalled),
            Self::RangeIgnored { .. } | Self::Changed => None,
        }
    }
}

impl From<RangeMismatch> for HttpError {
    fn from(mismatch: RangeMismatch) -> Self {
        Self::Mismatch(mismatch)
    }
}

impl From<Stalled> for HttpError {
    fn from(stalled: Stalled) -> Self {
        Self::Stalled(stalled)
    }
}

impl Retryable for HttpError {
    /// Statuses as [`HttpStatus`] says; transport errors are retried but for a request
    /// that could not be built or a redirect loop; a truncated body and a stall are
    /// retried; a misplaced part, an ignored range and a changed resource are not.
    fn retry(&self) -> Retry {
        match self {
            Self::Status(status) => status.retry(),
            Self::Transport(error) if error.is_builder() || error.is_redirect() => Retry::No,
            Self::Transport(_) | Self::Stalled(_) => Retry::Yes,
            Self::Mismatch(mismatch) => mismatch.retry(),
            Self::RangeIgnored { .. } | Self::Changed => Retry::No,
        }
    }
}
