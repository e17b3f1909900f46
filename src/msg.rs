//! The items that flow from writer to reader.

use bytes::Bytes;

/// One item of a stream: bytes, or an in-band message at its byte position.
///
/// `C` is the source's control state (for example the current variant of an HLS playlist),
/// `Ev` its events (for example download progress). Both travel in order with the bytes:
/// a `Control` or `Event` is yielded after exactly the bytes that were produced before it.
/// Both default to `()`: a plain `StreamMsg` carries bytes, and its `Control` and `Event`
/// carry nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamMsg<C = (), Ev = ()> {
    /// Bytes of the stream; never empty when yielded, at most `chunk_size` long.
    Data(Bytes),
    /// A new control state. The engine also keeps the latest one and hands it to
    /// [`EngineSource::seek_bytes`](crate::EngineSource::seek_bytes).
    Control(C),
    /// An event for the consumer.
    Event(Ev),
}

impl<C, Ev> StreamMsg<C, Ev> {
    /// The bytes, if this is `Data`.
    pub fn as_data(&self) -> Option<&Bytes> {
        match self {
            Self::Data(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// The bytes, if this is `Data`.
    pub fn into_data(self) -> Option<Bytes> {
        match self {
            Self::Data(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// Whether this is `Data`.
    pub fn is_data(&self) -> bool {
        matches!(self, Self::Data(_))
    }
}

impl<C, Ev> From<Bytes> for StreamMsg<C, Ev> {
    fn from(bytes: Bytes) -> Self {
        Self::Data(bytes)
    }
}
