//! [`Fetch`]: a resource whose byte ranges can be fetched, and what a fetch returns.

use core::fmt;
use core::future::Future;
use std::io;

use alloc::format;
use alloc::string::String;
use bytes::Bytes;
use futures_core::Stream;

use crate::store::Validator;

/// The bytes of a resource to fetch: from `start` up to `end` (exclusive), or to the end of
/// the resource when `end` is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteRange {
    /// The first byte.
    pub start: u64,
    /// One past the last byte; `None` for "to the end of the resource".
    pub end: Option<u64>,
}

impl ByteRange {
    /// From `start` to the end of the resource.
    pub fn from(start: u64) -> Self {
        Self { start, end: None }
    }

    /// The bytes `start..end`.
    ///
    /// # Panics
    ///
    /// If `end < start`.
    #[track_caller]
    pub fn new(start: u64, end: u64) -> Self {
        assert!(
            end >= start,
            "byte range end {end} before its start {start}"
        );
        Self {
            start,
            end: Some(end),
        }
    }

    /// The number of bytes, if the range has an end.
    pub fn len(&self) -> Option<u64> {
        self.end.map(|end| end - self.start)
    }

    /// Whether the range has an end and holds no byte.
    pub fn is_empty(&self) -> bool {
        self.len() == Some(0)
    }

    /// The HTTP `Range` header value that asks for these bytes: `bytes=start-` or
    /// `bytes=start-last` (HTTP's last byte is inclusive). Not for an empty range, which
    /// HTTP cannot ask for.
    ///
    /// ```
    /// use kithara_stream::sources::ByteRange;
    ///
    /// assert_eq!(ByteRange::from(1024).header(), "bytes=1024-");
    /// assert_eq!(ByteRange::new(0, 100).header(), "bytes=0-99");
    /// ```
    pub fn header(&self) -> String {
        match self.end {
            Some(end) if end > self.start => format!("bytes={}-{}", self.start, end - 1),
            _ => format!("bytes={}-", self.start),
        }
    }
}

/// What a fetch returns: the body from the requested start, and what the response told
/// about the resource.
#[derive(Debug)]
pub struct RangeResponse<S> {
    /// The bytes from the requested start: to the requested end, or to the end of the
    /// resource.
    pub body: S,
    /// The total length of the resource (not of this body), if known: an HTTP
    /// `Content-Range: bytes a-b/total`, or the `Content-Length` of a full (`200`) response.
    pub total_len: Option<u64>,
    /// Where the body starts, if the response says: the first byte of an HTTP
    /// `Content-Range`, or 0 for a full (`200`) response. A body that starts before the byte
    /// asked for (a server that ignored the range) is skipped forward to it; one that starts
    /// after it is refused ([`RangeMismatch::WrongStart`]); `None` trusts the fetch.
    pub start: Option<u64>,
    /// The version of the resource the body is of, if the response says (an HTTP `ETag`
    /// or `Last-Modified`): a source that fetches again compares it, and a store keeps it,
    /// so that bytes of two versions never meet ([`RangeMismatch::Changed`]).
    pub validator: Option<Validator>,
}

impl<S> RangeResponse<S> {
    /// A response with `body`, nothing known about the resource.
    pub fn new(body: S) -> Self {
        Self {
            body,
            total_len: None,
            start: None,
            validator: None,
        }
    }

    /// The response to an HTTP range request, from its status code and headers.
    ///
    /// - `206 Partial Content`: start and total from `Content-Range` (a total of `*` is
    ///   unknown; `Content-Length` is the length of the part, never the total);
    /// - `200 OK`: the whole resource, from byte 0, `Content-Length` long;
    /// - anything else: nothing known (check the status before: a fetch that got a 404
    ///   should fail instead).
    ///
    /// ```
    /// use kithara_stream::sources::RangeResponse;
    ///
    /// let part = RangeResponse::http(206, Some("bytes 5000-9999/100000"), Some(5000), ());
    /// assert_eq!((part.start, part.total_len), (Some(5000), Some(100_000)));
    /// let unknown_total = RangeResponse::http(206, Some("bytes 5000-9999/*"), Some(5000), ());
    /// assert_eq!((unknown_total.start, unknown_total.total_len), (Some(5000), None));
    /// let whole = RangeResponse::http(200, None, Some(100_000), ());
    /// assert_eq!((whole.start, whole.total_len), (Some(0), Some(100_000)));
    /// ```
    pub fn http(
        status: u16,
        content_range: Option<&str>,
        content_length: Option<u64>,
        body: S,
    ) -> Self {
        match status {
            206 => {
                let range = content_range.and_then(ContentRange::parse);
                Self {
                    body,
                    total_len: range.and_then(|range| range.total),
                    start: range.and_then(|range| range.first),
                    validator: None,
                }
            }
            200 => Self {
                body,
                total_len: content_length,
                start: Some(0),
                validator: None,
            },
            _ => Self::new(body),
        }
    }

    /// Sets the total length of the resource.
    #[must_use]
    pub fn with_total_len(mut self, total_len: Option<u64>) -> Self {
        self.total_len = total_len;
        self
    }

    /// Sets where the body starts.
    #[must_use]
    pub fn with_start(mut self, start: Option<u64>) -> Self {
        self.start = start;
        self
    }

    /// The same response with its body passed through `f` (to count or trace its bytes,
    /// say): the start, the length and the validator are kept.
    ///
    /// ```
    /// use kithara_stream::sources::RangeResponse;
    /// use kithara_stream::store::Validator;
    ///
    /// let response = RangeResponse::http(206, Some("bytes 10-19/100"), Some(10), "body")
    ///     .with_validator(Some(Validator::ETag("\"v1\"".into())));
    /// let wrapped = response.map_body(|body| body.len());
    /// assert_eq!((wrapped.body, wrapped.start, wrapped.total_len), (4, Some(10), Some(100)));
    /// assert!(wrapped.validator.is_some());
    /// ```
    pub fn map_body<T>(self, f: impl FnOnce(S) -> T) -> RangeResponse<T> {
        RangeResponse {
            body: f(self.body),
            total_len: self.total_len,
            start: self.start,
            validator: self.validator,
        }
    }

    /// Sets the version of the resource the body is of.
    #[must_use]
    pub fn with_validator(mut self, validator: Option<Validator>) -> Self {
        self.validator = validator;
        self
    }
}

/// Compares the version a response reports with the one `known` from the responses before
/// it (learning it from the first that reports one): bytes of another version fail with
/// [`RangeMismatch::Changed`].
pub(super) fn same_version(
    known: &mut Option<Validator>,
    now: Option<&Validator>,
) -> Result<(), RangeMismatch> {
    match (&*known, now) {
        (Some(known), Some(now)) if known != now => Err(RangeMismatch::Changed),
        (None, Some(now)) => {
            *known = Some(now.clone());
            Ok(())
        }
        _ => Ok(()),
    }
}

/// An HTTP `Content-Range` header value: `bytes first-last/total`, `bytes first-last/*` or
/// `bytes */total`. The unit is matched without regard to case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    /// The first byte of the part (`None` for `bytes */total`, the answer to an
    /// unsatisfiable range).
    pub first: Option<u64>,
    /// The last byte of the part, inclusive.
    pub last: Option<u64>,
    /// The resource's total length (`None` for `*`).
    pub total: Option<u64>,
}

impl ContentRange {
    /// Parses a header value; `None` if it is malformed.
    ///
    /// ```
    /// use kithara_stream::sources::ContentRange;
    ///
    /// let range = ContentRange::parse("Bytes 100-199/1234").unwrap();
    /// assert_eq!((range.first, range.last, range.total), (Some(100), Some(199), Some(1234)));
    /// assert_eq!(ContentRange::parse("bytes 0-99/*").unwrap().total, None);
    /// assert_eq!(ContentRange::parse("bytes */1234").unwrap().first, None);
    /// assert_eq!(ContentRange::parse("bytes 9-0/10"), None);
    /// ```
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let unit = value.get(..5)?;
        if !unit.eq_ignore_ascii_case("bytes") {
            return None;
        }
        let (range, total) = value[5..].trim_start().rsplit_once('/')?;
        let total = match total.trim() {
            "*" => None,
            total => Some(total.parse().ok()?),
        };
        let (first, last) = match range.trim() {
            "*" => (None, None),
            range => {
                let (first, last) = range.split_once('-')?;
                let (first, last): (u64, u64) =
                    (first.trim().parse().ok()?, last.trim().parse().ok()?);
                if last < first || total.is_some_and(|total| last >= total) {
                    return None;
                }
                (Some(first), Some(last))
            }
        };
        if first.is_none() && total.is_none() {
            return None;
        }
        Some(Self { first, last, total })
    }
}

/// The total length in an HTTP `Content-Range` header value (`bytes 0-99/1234` gives 1234);
/// `None` if it is unknown (`*`) or the value is malformed. See [`ContentRange`].
///
/// ```
/// use kithara_stream::sources::content_range_total;
///
/// assert_eq!(content_range_total("bytes 100-199/1234"), Some(1234));
/// assert_eq!(content_range_total("BYTES */1234"), Some(1234));
/// assert_eq!(content_range_total("bytes 0-99/*"), None);
/// ```
pub fn content_range_total(value: &str) -> Option<u64> {
    ContentRange::parse(value)?.total
}

/// The HTTP `Range` header value that asks for the bytes from `start` on: `bytes=start-`
/// (see [`ByteRange::header`] for a range with an end).
///
/// ```
/// assert_eq!(kithara_stream::sources::range_header(1024), "bytes=1024-");
/// ```
pub fn range_header(start: u64) -> String {
    ByteRange::from(start).header()
}

/// A response that does not hold the bytes that were asked for. Seekable sources refuse it
/// instead of passing wrong bytes on or ending early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RangeMismatch {
    /// The body ended at byte `at`, before `expected`: the end asked for, or the resource's
    /// known length. A cut connection looks like this.
    Truncated {
        /// Where the body ended.
        at: u64,
        /// Where it should have ended.
        expected: u64,
    },
    /// The response starts at byte `got`, after the byte `asked` for: the bytes in between
    /// would be missing.
    WrongStart {
        /// The first byte asked for.
        asked: u64,
        /// The first byte of the response.
        got: u64,
    },
    /// The response is of another version of the resource than the bytes before it: its
    /// validator (or its length) differs. Bytes of the two are never mixed; a store drops
    /// what it held of the old one, so that a new attempt starts over.
    Changed,
}

impl fmt::Display for RangeMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { at, expected } => {
                write!(f, "body ended at byte {at}, before byte {expected}")
            }
            Self::WrongStart { asked, got } => {
                write!(
                    f,
                    "asked for bytes from {asked}, the response starts at {got}"
                )
            }
            Self::Changed => f.write_str("the resource changed (its validator or length differs)"),
        }
    }
}

impl std::error::Error for RangeMismatch {}

impl From<RangeMismatch> for io::Error {
    /// `UnexpectedEof` for a truncated body, `InvalidData` for a wrong start or a changed resource; the mismatch
    /// is inside.
    fn from(mismatch: RangeMismatch) -> Self {
        let kind = match mismatch {
            RangeMismatch::Truncated { .. } => io::ErrorKind::UnexpectedEof,
            RangeMismatch::WrongStart { .. } | RangeMismatch::Changed => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, mismatch)
    }
}

/// The error of a [`RangeSource`](super::RangeSource): the fetch's own error, or a response
/// that does not hold the bytes asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FetchError<E> {
    /// The fetch, or its body, failed.
    Fetch(E),
    /// The response does not hold the bytes asked for.
    Mismatch(RangeMismatch),
    /// No byte came for the stall timeout of a retry policy.
    Stalled(super::retry::Stalled),
}

impl<E> FetchError<E> {
    /// The fetch's own error, if it is one.
    pub fn into_fetch(self) -> Option<E> {
        match self {
            Self::Fetch(error) => Some(error),
            Self::Mismatch(_) | Self::Stalled(_) => None,
        }
    }

    /// Whether the body ended before the bytes asked for.
    pub fn is_truncated(&self) -> bool {
        matches!(self, Self::Mismatch(RangeMismatch::Truncated { .. }))
    }
}

impl<E> From<RangeMismatch> for FetchError<E> {
    fn from(mismatch: RangeMismatch) -> Self {
        Self::Mismatch(mismatch)
    }
}

impl<E: fmt::Display> fmt::Display for FetchError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fetch(error) => write!(f, "fetch failed: {error}"),
            Self::Mismatch(mismatch) => mismatch.fmt(f),
            Self::Stalled(stalled) => stalled.fmt(f),
        }
    }
}

impl<E> std::error::Error for FetchError<E>
where
    E: std::error::Error + 'static,
{
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Fetch(error) => Some(error),
            Self::Mismatch(mismatch) => Some(mismatch),
            Self::Stalled(stalled) => Some(stalled),
        }
    }
}

/// A resource whose byte ranges can be fetched: a URL (HTTP range requests), a file, an
/// object in a store, the segments of a playlist. [`RangeSource`](super::RangeSource) turns
/// one into a seekable [`EngineSource`](crate::EngineSource).
///
/// A closure `Fn(ByteRange) -> impl Future<Output = Result<RangeResponse<S>, E>>` is one,
/// when `E` can hold a [`RangeMismatch`] (`std::io::Error` and [`FetchError`] can);
/// implement the trait for anything else.
pub trait Fetch: Send + Sync + 'static {
    /// The fetch's error. A [`RangeMismatch`] found in a response converts into it.
    type Error: From<RangeMismatch> + Send + 'static;
    /// The bytes of one fetch.
    type Body: Stream<Item = Result<Bytes, Self::Error>> + Send + 'static;

    /// Starts fetching `range`. The body holds the bytes from `range.start` to `range.end`
    /// (or to the end of the resource); a body that holds fewer is refused as
    /// [`RangeMismatch::Truncated`] when the end is known, bytes past the end are dropped.
    fn fetch(
        &self,
        range: ByteRange,
    ) -> impl Future<Output = Result<RangeResponse<Self::Body>, Self::Error>> + Send + 'static;
}

impl<F, Fut, B, E> Fetch for F
where
    F: Fn(ByteRange) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<RangeResponse<B>, E>> + Send + 'static,
    B: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: From<RangeMismatch> + Send + 'static,
{
    type Error = E;
    type Body = B;

    fn fetch(
        &self,
        range: ByteRange,
    ) -> impl Future<Output = Result<RangeResponse<B>, E>> + Send + 'static {
        self(range)
    }
}
