//! HTTP helpers: [`HttpStatus`], the error for a response whose status is not a success,
//! classified for retries.

use core::fmt;
use core::time::Duration;
use std::io;

use super::retry::{Retry, Retryable};

/// A response whose status is not a success (nor `206`), as an error: what a fetch returns
/// for a 404 or a 503, so that a [`RetryPolicy`](super::RetryPolicy) can tell them apart.
///
/// ```
/// use std::time::Duration;
/// use kithara_stream::sources::{HttpStatus, Retry, Retryable};
///
/// assert_eq!(HttpStatus::check(206, None), None);
/// let busy = HttpStatus::check(429, Some("3")).unwrap();
/// assert_eq!(busy.retry(), Retry::After(Duration::from_secs(3)));
/// assert_eq!(HttpStatus::check(404, None).unwrap().retry(), Retry::No);
/// let error: std::io::Error = HttpStatus::check(404, None).unwrap().into();
/// assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpStatus {
    /// The status code.
    pub status: u16,
    /// The response's `Retry-After`, in seconds (the date form is not read).
    pub retry_after: Option<Duration>,
}

impl HttpStatus {
    /// `None` for a success (`2xx`); else the error, with the `Retry-After` header's value.
    pub fn check(status: u16, retry_after: Option<&str>) -> Option<Self> {
        if (200..300).contains(&status) {
            return None;
        }
        let retry_after = retry_after
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        Some(Self {
            status,
            retry_after,
        })
    }
}

impl Retryable for HttpStatus {
    /// Retried: 408, 425, 429, 500 and every other 5xx but 501 and 505 (with `Retry-After`
    /// when the response gave one). Not retried: every other status.
    fn retry(&self) -> Retry {
        let transient = matches!(self.status, 408 | 425 | 429)
            || ((500..600).contains(&self.status) && !matches!(self.status, 501 | 505));
        match (transient, self.retry_after) {
            (false, _) => Retry::No,
            (true, Some(after)) => Retry::After(after),
            (true, None) => Retry::Yes,
        }
    }
}

impl fmt::Display for HttpStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP status {}", self.status)
    }
}

impl std::error::Error for HttpStatus {}

impl From<HttpStatus> for io::Error {
    /// `NotFound` for 404 and 410, `PermissionDenied` for 401 and 403, `Other` else; the
    /// status is inside.
    fn from(status: HttpStatus) -> Self {
        let kind = match status.status {
            404 | 410 => io::ErrorKind::NotFound,
            401 | 403 => io::ErrorKind::PermissionDenied,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, status)
    }
}
