//! A live stream on async-std: any `Stream<Item = Result<Bytes, E>>` (here a generated
//! "radio" stream paced by a timer) through a `StreamSource`, which cannot seek, read with an
//! `AsyncReader`.
//!
//! ```text
//! cargo run --example live_async_std
//! ```

use std::io::{ErrorKind, SeekFrom};
use std::time::Duration;

use bytes::Bytes;
use futures::{AsyncReadExt, AsyncSeekExt};
use kithara_stream::io::{AsyncReader, SideMsg};
use kithara_stream::sources::StreamSource;
use kithara_stream::{Engine, StreamParams};

const CHUNKS: u8 = 20;
const CHUNK_LEN: usize = 2048;

fn main() {
    async_std::task::block_on(async {
        // A live source: a chunk every 10 ms, as a radio stream would arrive.
        let live = futures::stream::unfold(0u8, |i| async move {
            if i == CHUNKS {
                return None;
            }
            async_std::task::sleep(Duration::from_millis(10)).await;
            Some((
                Ok::<_, std::io::Error>(Bytes::from(vec![i; CHUNK_LEN])),
                i + 1,
            ))
        });
        let (engine, handle, stream) =
            Engine::build(StreamSource::new(live), StreamParams::default());
        assert!(!handle.supports_seek());
        let engine = async_std::task::spawn(engine.run());

        let mut reader = AsyncReader::new(stream, handle);
        let mut buf = vec![0; CHUNK_LEN];
        for i in 0..CHUNKS {
            reader.read_exact(&mut buf).await.expect("read");
            assert!(buf.iter().all(|&b| b == i), "chunk {i} in order");
            let mut received = reader
                .take_messages()
                .into_iter()
                .filter_map(|msg| match msg {
                    SideMsg::Event(progress) => Some(progress.fetched_to),
                    SideMsg::Control(()) => None,
                });
            if let Some(fetched) = received.next_back() {
                println!(
                    "read chunk {i:>2}; the progress events met so far report {fetched:>6} bytes"
                );
            }
            if i == 5 {
                let error = reader.seek(SeekFrom::Start(0)).await.unwrap_err();
                assert_eq!(error.kind(), ErrorKind::Unsupported);
                println!("seek: {error} (a live stream cannot seek)");
            }
        }
        assert_eq!(reader.read(&mut buf).await.expect("read"), 0);
        drop(reader);
        engine.await;
        println!(
            "done: {} bytes, in order, then the end of the stream",
            usize::from(CHUNKS) * CHUNK_LEN
        );
    });
}
