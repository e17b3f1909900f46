//! Compile-time checks of the auto traits of the adapters and sources: symphonia needs its
//! `MediaSource` to be `Send + Sync`, executors need futures-io readers `Send + Unpin`.

use std::cell::Cell;
use std::convert::Infallible;

use kithara_stream::io::{AsyncReader, BlockingReader, SeekSwitch, SideMsg};
use kithara_stream::sources::{Progress, ProgressWatch, RangeResponse, StreamSource};

fn send<T: Send>() {}
fn sync<T: Sync>() {}
fn unpin<T: Unpin>() {}

#[test]
fn auto_traits_of_adapters() {
    send::<AsyncReader<u8, Progress, std::io::Error>>();
    sync::<AsyncReader<u8, Progress, std::io::Error>>();
    unpin::<AsyncReader<u8, Progress, std::io::Error>>();
    // Messages that are not `Sync` or `Unpin` do not make the reader lose either.
    unpin::<AsyncReader<std::marker::PhantomPinned, (), Infallible>>();
    send::<AsyncReader<Cell<u8>, Cell<u8>, Infallible>>();

    send::<BlockingReader<(), Progress, std::io::Error>>();
    sync::<BlockingReader<(), Progress, std::io::Error>>();
    unpin::<BlockingReader<(), Progress, std::io::Error>>();

    send::<SideMsg<u8, u8>>();
    sync::<SideMsg<u8, u8>>();
    send::<SeekSwitch>();
    sync::<SeekSwitch>();
    send::<ProgressWatch>();
    sync::<ProgressWatch>();
    send::<RangeResponse<()>>();
    send::<StreamSource<futures::stream::Empty<Result<bytes::Bytes, Infallible>>>>();
    sync::<StreamSource<futures::stream::Empty<Result<bytes::Bytes, Infallible>>>>();

    // Stores: a `CachedSource` holds one under a mutex shared with its writer tasks, and
    // a disk cache is cloned across threads.
    send::<kithara_stream::store::MemoryStore>();
    sync::<kithara_stream::store::MemoryStore>();
    send::<kithara_stream::store::DiskStore>();
    sync::<kithara_stream::store::DiskStore>();
    send::<kithara_stream::store::DiskCache>();
    sync::<kithara_stream::store::DiskCache>();
    send::<kithara_stream::store::Validator>();
    sync::<kithara_stream::store::Validator>();
}

/// The `symphonia` feature: the blocking reader is a `MediaSource`.
#[test]
fn blocking_reader_is_a_media_source() {
    fn media_source<T: symphonia::core::io::MediaSource>() {}
    media_source::<BlockingReader<(), Progress, std::io::Error>>();
}
