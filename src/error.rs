//! The crate's error type.

use core::convert::Infallible;

/// Why a stream, a send or a seek did not give what was asked.
///
/// `E` is the source's own error type; it defaults to `Infallible`, for sources that cannot
/// fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError<E = Infallible> {
    /// The source failed with `E` (the writer task, `open` or `seek_bytes`).
    #[error("source error")]
    Source(#[source] E),
    /// The other side is gone: the engine stopped or was dropped, or the reader was dropped.
    #[error("channel closed")]
    ChannelClosed,
    /// A newer seek replaced this one before it was applied.
    #[error("seek cancelled by a newer seek")]
    Cancelled,
    /// The source does not support seeking.
    #[error("seek not supported")]
    SeekNotSupported,
}

impl<E> StreamError<E> {
    /// Whether this is [`StreamError::ChannelClosed`].
    pub fn is_closed(&self) -> bool {
        matches!(self, Self::ChannelClosed)
    }

    /// Whether this is [`StreamError::Cancelled`].
    pub fn is_cancelled(&self) -> bool {
        matches!(self, Self::Cancelled)
    }

    /// Whether this is [`StreamError::SeekNotSupported`].
    pub fn is_seek_not_supported(&self) -> bool {
        matches!(self, Self::SeekNotSupported)
    }

    /// The source's error, if this is [`StreamError::Source`].
    pub fn as_source(&self) -> Option<&E> {
        match self {
            Self::Source(e) => Some(e),
            _ => None,
        }
    }

    /// The source's error, if this is [`StreamError::Source`].
    pub fn into_source(self) -> Option<E> {
        match self {
            Self::Source(e) => Some(e),
            _ => None,
        }
    }

    /// Maps the source's error with `f`, keeping the other variants.
    pub fn map_source<F>(self, f: impl FnOnce(E) -> F) -> StreamError<F> {
        match self {
            Self::Source(e) => StreamError::Source(f(e)),
            Self::ChannelClosed => StreamError::ChannelClosed,
            Self::Cancelled => StreamError::Cancelled,
            Self::SeekNotSupported => StreamError::SeekNotSupported,
        }
    }
}
