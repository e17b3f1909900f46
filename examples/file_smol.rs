//! A file on smol: `AsyncReadSource` over `smol::fs::File`, the engine spawned on smol, and an
//! `AsyncReader` (futures-io `AsyncRead + AsyncSeek`) reading it, with progress events from
//! the side queue.
//!
//! ```text
//! cargo run --example file_smol
//! ```

#[path = "shared/wav.rs"]
mod wav;

use std::io::SeekFrom;

use futures::{AsyncReadExt, AsyncSeekExt};
use kithara_stream::io::{AsyncReader, SideMsg};
use kithara_stream::sources::AsyncReadSource;
use kithara_stream::{Engine, StreamParams};

fn main() {
    let contents = wav::wav(&wav::melody(3.0));
    let path = std::env::temp_dir().join(format!("kithara-file-smol-{}.wav", std::process::id()));
    std::fs::write(&path, &contents).expect("write the file");

    smol::block_on(async {
        let opener_path = path.clone();
        let source = AsyncReadSource::new(move || smol::fs::File::open(opener_path.clone()))
            .with_chunk_size(16 * 1024);
        let (engine, handle, stream) = Engine::build(
            source,
            StreamParams::default().with_buffer_capacity(32 * 1024),
        );
        let engine = smol::spawn(engine.run());
        let mut reader = AsyncReader::new(stream, handle);

        let mut header = [0u8; wav::HEADER_LEN];
        reader.read_exact(&mut header).await.expect("read");
        println!(
            "header: {:?} ... {} bytes total",
            std::str::from_utf8(&header[..4]).unwrap(),
            reader.byte_len().unwrap_or(0)
        );

        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).await.expect("read");
        for msg in reader.take_messages() {
            if let SideMsg::Event(progress) = msg {
                println!(
                    "progress {:>6} / {} bytes ({:>3.0}%)",
                    progress.fetched_to,
                    progress.total.unwrap_or(0),
                    progress.fraction().unwrap_or(0.0) * 100.0
                );
            }
        }
        assert_eq!(rest, &contents[wav::HEADER_LEN..]);

        // Seek from the end: the source learned the file's length when it opened it.
        let at = reader.seek(SeekFrom::End(-1000)).await.expect("seek");
        let mut tail = Vec::new();
        reader.read_to_end(&mut tail).await.expect("read");
        assert_eq!(tail, &contents[at as usize..]);
        println!(
            "seek to {at} (End(-1000)): {} bytes, equal to the file's tail",
            tail.len()
        );

        drop(reader);
        engine.await;
    });
    let _ = std::fs::remove_file(&path);
    println!(
        "done: {} bytes read through the engine, all equal to the file",
        contents.len()
    );
}
