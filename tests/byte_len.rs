//! Length reporting: `EngineSource::byte_len` reaches `EngineHandle::byte_len` once `open`
//! resolved, before the first item of the stream.

use futures::executor::block_on;
use futures::{StreamExt, future::join};
use kithara_stream::{BytesSource, Engine, StreamParams};

#[test]
fn byte_len_is_published_before_the_first_item() {
    let source = BytesSource::new(vec![7u8; 10_000]);
    let (engine, handle, mut stream) = Engine::build(source, StreamParams::default());
    assert_eq!(handle.byte_len(), None, "not asked before `open`");
    let consumer = async move {
        let first = stream.next().await.unwrap().unwrap();
        assert!(first.is_data());
        assert_eq!(handle.byte_len(), Some(10_000));
    };
    block_on(join(engine.run(), consumer));
}

mod common;

#[test]
fn byte_len_defaults_to_unknown() {
    let (source, _stats) = common::Config::new(1000).build();
    let (engine, handle, mut stream) = Engine::build(source, StreamParams::default());
    let consumer = async move {
        assert!(stream.next().await.unwrap().unwrap().is_data());
        assert_eq!(
            handle.byte_len(),
            None,
            "TestSource does not override `byte_len`"
        );
    };
    block_on(join(engine.run(), consumer));
}
