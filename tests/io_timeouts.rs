//! The readers never wait forever: with a read timeout, a read (or seek) that waits longer
//! returns `TimedOut`, and the reader goes on afterwards with nothing lost.

mod common;

use std::io::{ErrorKind, Read};
use std::time::Duration;

use bytes::Bytes;
use common::hang_guard;
use futures::{AsyncReadExt, StreamExt};
use kithara_stream::exec::block_on;
use kithara_stream::io::{AsyncReader, BlockingReader};
use kithara_stream::sources::StreamSource;
use kithara_stream::{Engine, StreamParams};

/// A live source fed by hand: nothing comes until the test sends it.
fn fed() -> (
    futures::channel::mpsc::UnboundedSender<Bytes>,
    StreamSource<impl futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static>,
) {
    let (tx, rx) = futures::channel::mpsc::unbounded::<Bytes>();
    (tx, StreamSource::new(rx.map(Ok::<_, std::io::Error>)))
}

#[test]
fn blocking_read_times_out_then_goes_on() {
    hang_guard("blocking_timeout", || {
        let (tx, source) = fed();
        let (engine, handle, stream) = Engine::build(source, StreamParams::default());
        std::thread::spawn(move || block_on(engine.run()));
        let mut reader =
            BlockingReader::new(stream, handle).with_read_timeout(Duration::from_millis(50));
        let mut buf = [0; 8];
        let error = reader.read(&mut buf).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::TimedOut);
        tx.unbounded_send(Bytes::from_static(b"late")).unwrap();
        assert_eq!(reader.read(&mut buf).unwrap(), 4);
        assert_eq!(&buf[..4], b"late");
        assert_eq!(reader.position(), 4);
        drop(tx);
        assert_eq!(reader.read(&mut buf).unwrap(), 0, "the end, not a timeout");
    });
}

#[test]
fn async_read_times_out_with_the_users_timer_then_goes_on() {
    hang_guard("async_timeout", || {
        let runtime = common::tokio_runtime();
        let (tx, source) = fed();
        let (engine, handle, stream) = Engine::build(source, StreamParams::default());
        runtime.spawn(engine.run());
        runtime.block_on(async move {
            let mut reader = AsyncReader::new(stream, handle)
                .with_read_timeout(Duration::from_millis(50), tokio::time::sleep);
            let mut buf = [0; 8];
            let error = reader.read(&mut buf).await.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::TimedOut);
            tx.unbounded_send(Bytes::from_static(b"late")).unwrap();
            assert_eq!(reader.read(&mut buf).await.unwrap(), 4);
            assert_eq!(&buf[..4], b"late");
            // A second wait times out again: the timer is armed anew.
            let error = reader.read(&mut buf).await.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::TimedOut);
            drop(tx);
            let mut rest = Vec::new();
            reader.read_to_end(&mut rest).await.unwrap();
            assert!(rest.is_empty());
        });
    });
}
