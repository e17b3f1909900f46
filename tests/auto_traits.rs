//! Compile-time checks of the auto traits of every public type: these tests fail to compile,
//! rather than fail, when a change loses `Send`, `Sync` or `Unpin`.

use kithara_stream::{
    BytesSource, Engine, EngineHandle, EngineStream, InvalidParams, Reader, Run, SeekFuture,
    SendFuture, StreamError, StreamMsg, StreamParams, Writer, WriterTask,
};

fn send<T: Send>() {}
fn sync<T: Sync>() {}
fn unpin<T: Unpin>() {}

/// A control type that is `Send` but not `Sync`, as a `Cell` would be.
type NotSync = std::cell::Cell<u8>;

#[test]
fn auto_traits_of_public_types() {
    send::<Engine<BytesSource>>();
    send::<Run<BytesSource>>();
    unpin::<Run<BytesSource>>();

    send::<EngineHandle<()>>();
    sync::<EngineHandle<()>>();
    unpin::<EngineHandle<()>>();
    send::<SeekFuture<()>>();
    unpin::<SeekFuture<()>>();

    send::<EngineStream<u8, u8, ()>>();
    sync::<EngineStream<u8, u8, ()>>();
    unpin::<EngineStream<u8, u8, ()>>();
    send::<Reader<NotSync, NotSync, NotSync>>();
    unpin::<Reader<NotSync, NotSync, NotSync>>();

    send::<Writer<u8, u8, ()>>();
    sync::<Writer<u8, u8, ()>>();
    unpin::<Writer<u8, u8, ()>>();
    send::<Writer<NotSync, NotSync, NotSync>>();
    send::<SendFuture<'static, u8, u8, ()>>();
    unpin::<SendFuture<'static, std::marker::PhantomPinned, (), ()>>();

    send::<WriterTask<u8, u8, ()>>();
    unpin::<WriterTask<u8, u8, ()>>();

    send::<StreamParams>();
    sync::<StreamParams>();
    send::<InvalidParams>();
    sync::<InvalidParams>();
    send::<StreamMsg<u8, u8>>();
    sync::<StreamMsg<u8, u8>>();
    send::<StreamError<()>>();
    sync::<StreamError<()>>();
    send::<BytesSource>();
    sync::<BytesSource>();
}

/// `Run` is `Send` for every source: checked generically, so for all of them.
#[test]
fn run_is_send_when_the_source_is() {
    fn run_is_send<S: kithara_stream::EngineSource>() {
        send::<Run<S>>();
    }
    run_is_send::<BytesSource>();
}
