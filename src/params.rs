//! Stream configuration.

/// The default [`StreamParams::buffer_capacity`]: 256 KiB.
pub const DEFAULT_BUFFER_CAPACITY: usize = 256 * 1024;
/// The default [`StreamParams::chunk_size`]: 32 KiB.
pub const DEFAULT_CHUNK_SIZE: usize = 32 * 1024;
/// What one queued `Control` or `Event` message counts toward
/// [`StreamParams::buffer_capacity`], in bytes: roughly what a queue slot costs in memory.
///
/// It bounds a writer that produces only messages, as bytes bound one that produces data.
pub const MESSAGE_COST: usize = 64;

/// Sizes of the ring between writer and reader.
///
/// Built in builder style; the accessors have the same names without `with_`.
///
/// ```
/// use kithara_stream::StreamParams;
///
/// let params = StreamParams::default()
///     .with_buffer_capacity(1 << 20)
///     .with_chunk_size(16 * 1024);
/// assert_eq!(params.buffer_capacity(), 1 << 20);
/// assert!(params.validate().is_ok());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StreamParams {
    buffer_capacity: usize,
    chunk_size: usize,
}

impl Default for StreamParams {
    fn default() -> Self {
        Self {
            buffer_capacity: DEFAULT_BUFFER_CAPACITY,
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }
}

impl StreamParams {
    /// Sets how many bytes the ring holds between writer and reader before the writer waits
    /// (default 256 KiB). Queued messages count [`MESSAGE_COST`] each.
    ///
    /// The writer may add one chunk while the ring holds less than this, so the ring holds
    /// at most `buffer_capacity` plus one produced chunk.
    #[must_use]
    pub fn with_buffer_capacity(mut self, bytes: usize) -> Self {
        self.buffer_capacity = bytes;
        self
    }

    /// Sets the largest `Data` item the reader yields (default 32 KiB). Larger produced
    /// chunks are split without copying.
    #[must_use]
    pub fn with_chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes;
        self
    }

    /// Bytes the ring holds before the writer waits.
    pub fn buffer_capacity(&self) -> usize {
        self.buffer_capacity
    }

    /// Largest `Data` item the reader yields.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Checks that both sizes are non-zero.
    ///
    /// # Errors
    ///
    /// [`InvalidParams`] naming the first field that is zero.
    pub fn validate(&self) -> Result<(), InvalidParams> {
        if self.buffer_capacity == 0 {
            return Err(InvalidParams::ZeroBufferCapacity);
        }
        if self.chunk_size == 0 {
            return Err(InvalidParams::ZeroChunkSize);
        }
        Ok(())
    }

    /// Panics with the validation message; used by the constructors.
    #[track_caller]
    pub(crate) fn assert_valid(&self) {
        if let Err(e) = self.validate() {
            panic!("invalid StreamParams: {e}");
        }
    }
}

/// Why [`StreamParams::validate`] rejected a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidParams {
    /// `buffer_capacity` is 0: the writer could never add a byte.
    #[error("buffer_capacity must be greater than zero")]
    ZeroBufferCapacity,
    /// `chunk_size` is 0: the reader could never yield a byte.
    #[error("chunk_size must be greater than zero")]
    ZeroChunkSize,
}
