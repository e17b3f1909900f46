//! Runtime-agnostic async byte streaming through a bounded ring buffer.
//!
//! `kithara-stream` moves a byte stream from an async producer (an HTTP download, a file, an
//! HLS segment fetcher) to an async consumer (an audio decoder, a player) through a bounded
//! ring shared by a [`Writer`] and a [`Reader`]. Next to the bytes travel in-band
//! [`StreamMsg::Control`] and [`StreamMsg::Event`] messages, anchored at their byte position,
//! and typed errors ([`StreamError`]). An [`Engine`] drives an [`EngineSource`] and applies
//! byte seeks requested through a cloneable [`EngineHandle`].
//!
//! Every future and stream here is a hand-written type whose `poll` drives the ring and
//! registers wakers, so any executor can run it: tokio, smol, async-std,
//! `futures::executor`, async-executor or an embedded one. The crate spawns nothing and
//! depends on no runtime; the core builds with `alloc` only (`default-features = false`).
//!
//! # Quick example
//!
//! ```
//! use futures::{StreamExt, executor::block_on, future};
//! use kithara_stream::{BytesSource, Engine, StreamMsg, StreamParams};
//!
//! let data: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
//! let source = BytesSource::new(data.clone()).with_chunk_size(4096);
//! let params = StreamParams::default().with_buffer_capacity(16 * 1024);
//! let (engine, handle, mut stream) = Engine::build(source, params);
//!
//! let consumer = async move {
//!     // Skip ahead: the next data starts at byte 50_000.
//!     handle.seek_bytes(50_000).await.unwrap();
//!     let mut received = Vec::new();
//!     while let Some(msg) = stream.next().await {
//!         if let StreamMsg::Data(bytes) = msg.unwrap() {
//!             received.extend_from_slice(&bytes);
//!         }
//!     }
//!     received
//! };
//! // Drive the engine and the consumer together; spawning `engine.run()` on any
//! // executor works the same way.
//! let (_, received) = block_on(future::join(engine.run(), consumer));
//! assert_eq!(received, &data[50_000..]);
//! ```
//!
//! Without an engine, [`pipe`] gives the ring on its own. The type parameters of
//! [`Writer`], [`Reader`], [`StreamMsg`] and the adapters default to a stream of bytes only
//! (`C = ()`, `Ev = ()`, `E = Infallible`), so `let (writer, reader): (Writer, Reader) =
//! pipe(params);` is a byte pipe.
//!
//! # Guarantees
//!
//! The crate's promises are written down as numbered rules in [the contract](contract)
//! (also `docs/contract.md` in the repository); the items they concern document them too.
//! In short:
//!
//! - the stream yields exactly what the source produced, in order, with `Data` items never
//!   empty and never longer than [`StreamParams::chunk_size`]
//!   ([D1](contract#d1--order-and-integrity), [B2](contract#b2--empty-chunks));
//! - the bytes held between writer and reader never exceed
//!   [`StreamParams::buffer_capacity`] plus one produced chunk, each queued message counting
//!   [`MESSAGE_COST`] bytes ([E3](contract#e3--backpressure), [W2](contract#w2--send-backpressure));
//! - a successful seek is applied before it resolves: no stale byte follows it
//!   ([S1](contract#s1--applied-not-sent));
//! - dropping any side stops or wakes the other: nothing hangs
//!   ([E1](contract#e1--stop-on-drop), [D5](contract#d5--engine-gone),
//!   [W1](contract#w1--pipe-without-an-engine)).
//!
//! # Features
//!
//! - `std` (default): `futures-io` [`AsyncWrite`](futures_util::io::AsyncWrite) for
//!   [`Writer`], `std::error::Error` for the error types, the byte adapters of [`io`]
//!   ([`io::AsyncReader`], [`io::BlockingReader`]), a plain-thread executor
//!   ([`exec::block_on`]) and the ready-made [`sources`]. Without it
//!   the crate is `#![no_std]` + `alloc` (it builds for `thumbv7em-none-eabihf`).
//! - `symphonia`: symphonia's `MediaSource` for [`io::BlockingReader`].
//! - `reqwest`: `sources::HttpFetch`, HTTP range requests with reqwest, checked and classified
//!   for retries (tokio-bound, as reqwest is).
//!
//! The range store ([`store::MemoryStore`], the [`store::Store`] trait) and the
//! [`timer::Timer`] trait need only `alloc`;
//! the sources that use them ([`sources::CachedSource`], [`sources::Retrying`]) need `std`.
#![no_std]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate alloc;
#[cfg(any(feature = "std", test))]
extern crate std;

mod bytes_source;
#[doc = include_str!("../docs/contract.md")]
pub mod contract {}
mod engine;
mod error;
#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub mod exec;
mod handle;
#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub mod io;
mod msg;
mod params;
mod raw;
mod reader;
mod ring;
mod source;
#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub mod sources;
pub mod store;
mod sync;
pub mod timer;
mod writer;

pub use bytes_source::BytesSource;
pub use engine::{Engine, EngineStream, Run};
pub use error::StreamError;
pub use handle::{EngineHandle, SeekFuture};
pub use msg::StreamMsg;
pub use params::{
    DEFAULT_BUFFER_CAPACITY, DEFAULT_CHUNK_SIZE, InvalidParams, MESSAGE_COST, StreamParams,
};
pub use reader::Reader;
pub use source::{EngineSource, OpenResult, WriterTask};
pub use writer::{SendFuture, Writer, pipe};

pub use bytes::Bytes;

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
