//! Byte adapters over an [`EngineStream`](crate::EngineStream), for decoders and for code that
//! wants `Read`/`AsyncRead` rather than a stream of messages (`std` feature).
//!
//! - [`AsyncReader`]: futures-io `AsyncRead + AsyncBufRead + AsyncSeek`. Tokio users wrap it
//!   with `tokio_util::compat::FuturesAsyncReadCompatExt::compat()` to get tokio's
//!   `AsyncRead + AsyncBufRead + AsyncSeek`.
//! - [`BlockingReader`]: `std::io::Read + BufRead + Seek` for a decoder thread (symphonia,
//!   rodio). It parks its thread while it waits; no runtime needed. With the `symphonia`
//!   feature it is a symphonia `MediaSource`.
//!
//! Both hand the `Control` and `Event` messages they pass over to a callback
//! ([`AsyncReader::on_message`]) or keep them in a side queue ([`AsyncReader::take_messages`]),
//! in stream order: nothing is lost. Stream errors become `io::Error`s that carry the
//! [`StreamError`] inside ([`stream_error`] gets it back). A [`SeekSwitch`] turns seeking off
//! and on again from outside, for a format probe that would otherwise seek to the end of a
//! download.

mod async_reader;
mod blocking;

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::fmt;
use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub use async_reader::AsyncReader;
pub use blocking::BlockingReader;

use crate::error::StreamError;

/// A `Control` or `Event` message that a byte adapter passed over, in stream order.
///
/// `C` and `Ev` are the stream's control and event types, defaulting to `()` like
/// [`StreamMsg`](crate::StreamMsg)'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SideMsg<C = (), Ev = ()> {
    /// A new control state of the source.
    Control(C),
    /// An event of the source (for example download progress).
    Event(Ev),
}

/// Where a byte adapter puts the messages it passes over.
enum Sink<C, Ev> {
    Queue(VecDeque<SideMsg<C, Ev>>),
    Callback(Box<dyn FnMut(SideMsg<C, Ev>) + Send>),
}

impl<C, Ev> Sink<C, Ev> {
    fn push(&mut self, msg: SideMsg<C, Ev>) {
        match self {
            Sink::Queue(queue) => queue.push_back(msg),
            Sink::Callback(callback) => callback(msg),
        }
    }

    fn take(&mut self) -> Vec<SideMsg<C, Ev>> {
        match self {
            Sink::Queue(queue) => queue.drain(..).collect(),
            Sink::Callback(_) => Vec::new(),
        }
    }
}

impl<C, Ev> fmt::Debug for Sink<C, Ev> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Sink::Queue(queue) => write!(f, "Queue({} messages)", queue.len()),
            Sink::Callback(_) => f.write_str("Callback"),
        }
    }
}

/// Turns an adapter's seeking off and on, from outside it; clones share the switch.
///
/// A decoder's format probe that finds a seekable source may seek to its end (to look for
/// trailing tags), which for an HTTP download means fetching everything before playback
/// starts. Turn seeking off for the probe and on again after it:
///
/// ```no_run
/// # fn probe(_: Box<dyn std::io::Read>) {}
/// # let (stream, handle): (kithara_stream::EngineStream, kithara_stream::EngineHandle) = todo!();
/// use kithara_stream::io::BlockingReader;
///
/// let reader = BlockingReader::new(stream, handle);
/// let switch = reader.seek_switch();
/// switch.set(false); // the probe sees a forward-only source
/// probe(Box::new(reader));
/// switch.set(true); // playback may seek again
/// ```
///
/// While off, the adapter reports itself not seekable and a seek that needs the engine
/// fails with `io::ErrorKind::Unsupported`; seeks within the bytes it holds still work.
#[derive(Debug, Clone)]
pub struct SeekSwitch(Arc<AtomicBool>);

impl SeekSwitch {
    fn new() -> Self {
        Self(Arc::new(AtomicBool::new(true)))
    }

    /// Turns seeking on (`true`, the default) or off (`false`).
    pub fn set(&self, enabled: bool) {
        self.0.store(enabled, Ordering::Release);
    }

    /// Whether seeking is on.
    pub fn is_enabled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// The `io::Error` for a stream error: it carries `error` inside (see [`stream_error`]).
///
/// Kinds: `Source` is `Other`, `ChannelClosed` is `BrokenPipe`, `SeekNotSupported` is
/// `Unsupported`, `Cancelled` is `Other`.
pub fn io_error<E>(error: StreamError<E>) -> io::Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    let kind = match &error {
        StreamError::ChannelClosed => io::ErrorKind::BrokenPipe,
        StreamError::SeekNotSupported => io::ErrorKind::Unsupported,
        StreamError::Source(_) | StreamError::Cancelled => io::ErrorKind::Other,
    };
    io::Error::new(kind, error)
}

/// The error of a read or seek that waited longer than the reader's timeout.
pub(crate) fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "no bytes within the read timeout")
}

/// The [`StreamError`] inside an `io::Error` that an adapter returned, if there is one.
///
/// ```
/// use kithara_stream::StreamError;
/// use kithara_stream::io::{io_error, stream_error};
///
/// let error = io_error(StreamError::Source(std::fmt::Error));
/// assert!(matches!(stream_error::<std::fmt::Error>(&error), Some(StreamError::Source(_))));
/// ```
pub fn stream_error<E>(error: &io::Error) -> Option<&StreamError<E>>
where
    E: std::error::Error + Send + Sync + 'static,
{
    error.get_ref()?.downcast_ref::<StreamError<E>>()
}
