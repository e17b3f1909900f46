//! The crate's only unsafe code: three small lock-free primitives, each with a single writer
//! per field that the safe layers above guarantee.
//!
//! - [`queue::Queue`]: an unbounded single-producer single-consumer queue made of fixed-size
//!   blocks that the consumer hands back to the producer for reuse, so a steady stream
//!   allocates nothing. The byte budget that bounds it lives in `ring`.
//! - [`oneshot::Oneshot`]: a value set once and taken once (a seek's result).
//! - [`latest::Latest`]: a slot that keeps only the newest value put in (the pending seek
//!   request, "latest wins").
//!
//! Every `unsafe` block carries a `// SAFETY:` comment; loom models live in `tests/loom.rs`
//! and the unit tests below also run under miri.
#![allow(unsafe_code)]

pub(crate) mod latest;
pub(crate) mod oneshot;
pub(crate) mod queue;
