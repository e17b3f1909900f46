//! A first run of kithara-stream: a source over embedded "audio" split into segments, an
//! engine spawned on a thread pool, and a consumer that reads, seeks and prints what flows.
//!
//! ```text
//! cargo run --example demo
//! ```

use std::convert::Infallible;
use std::future::Future;

use bytes::Bytes;
use futures::executor::{ThreadPool, block_on};
use futures::{StreamExt, stream};
use kithara_stream::{Engine, EngineSource, OpenResult, StreamMsg, StreamParams, WriterTask};

const SEGMENT_LEN: usize = 48 * 1024;
const SEGMENTS: usize = 4;
const CHUNK: usize = 8 * 1024;

/// Control state: which segment the producer is in (a player would switch playlists or
/// variants on it).
#[derive(Clone, Debug, PartialEq)]
struct Segment {
    index: usize,
}

/// Events: download progress, for a buffer bar.
#[derive(Debug)]
struct Progress {
    downloaded: u64,
    total: u64,
}

/// Embedded data served in chunks, announcing each segment and reporting progress.
struct SegmentedSource {
    data: Bytes,
}

impl SegmentedSource {
    fn task_from(&self, pos: u64) -> WriterTask<Segment, Progress, Infallible> {
        let data = self.data.clone();
        let total = data.len() as u64;
        let start = (pos as usize).min(data.len());
        let mut messages = Vec::new();
        let mut at = start;
        while at < data.len() {
            if at % SEGMENT_LEN == 0 || at == start {
                messages.push(StreamMsg::Control(Segment {
                    index: at / SEGMENT_LEN,
                }));
            }
            // Chunks end at segment boundaries.
            let end = (at + CHUNK)
                .min((at / SEGMENT_LEN + 1) * SEGMENT_LEN)
                .min(data.len());
            messages.push(StreamMsg::Data(data.slice(at..end)));
            messages.push(StreamMsg::Event(Progress {
                downloaded: end as u64,
                total,
            }));
            at = end;
        }
        WriterTask::new(stream::iter(messages.into_iter().map(Ok)))
    }
}

impl EngineSource for SegmentedSource {
    type Error = Infallible;
    type Control = Segment;
    type Event = Progress;

    fn open(
        &self,
        _params: StreamParams,
    ) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
        let opened = Ok((self.task_from(0), Segment { index: 0 }));
        async move { opened }
    }

    fn seek_bytes(
        &self,
        pos: u64,
        _control: Segment,
    ) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
        let task = self.task_from(pos);
        let segment = Segment {
            index: pos as usize / SEGMENT_LEN,
        };
        async move { Ok((task, segment)) }
    }

    fn supports_seek(&self) -> bool {
        true
    }
}

fn bar(downloaded: u64, total: u64) -> String {
    let filled = (downloaded * 30 / total) as usize;
    format!(
        "[{}{}] {:>3}%",
        "#".repeat(filled),
        ".".repeat(30 - filled),
        downloaded * 100 / total
    )
}

fn main() {
    // "Audio": a deterministic waveform, so that every byte can be checked.
    let audio: Vec<u8> = (0..SEGMENTS * SEGMENT_LEN)
        .map(|i| (i % 251) as u8)
        .collect();
    let source = SegmentedSource {
        data: Bytes::from(audio.clone()),
    };
    let params = StreamParams::default()
        .with_buffer_capacity(32 * 1024)
        .with_chunk_size(4 * 1024);
    let (engine, handle, mut stream) = Engine::build(source, params);

    // The library spawns nothing: run the engine on any executor.
    let pool = ThreadPool::new().expect("thread pool");
    pool.spawn_ok(engine.run());

    block_on(async move {
        let (mut position, mut bytes, mut items, mut controls, mut events) = (0u64, 0u64, 0, 0, 0);
        let mut seeks = vec![(20_000, 150_000), (160_000, 30_000)]; // (when, where to)
        while let Some(msg) = stream.next().await {
            match msg.expect("this source never fails") {
                StreamMsg::Data(data) => {
                    let start = position as usize;
                    assert_eq!(
                        &data[..],
                        &audio[start..start + data.len()],
                        "bytes out of place"
                    );
                    position += data.len() as u64;
                    bytes += data.len() as u64;
                    items += 1;
                }
                StreamMsg::Control(segment) => {
                    controls += 1;
                    println!(
                        "control  at byte {position:>6}: now in segment {}",
                        segment.index
                    );
                }
                StreamMsg::Event(progress) => {
                    events += 1;
                    if progress.downloaded % (16 * 1024) == 0 {
                        println!(
                            "event    at byte {position:>6}: {}",
                            bar(progress.downloaded, progress.total)
                        );
                    }
                }
            }
            if let Some(&(when, to)) = seeks.first() {
                if position >= when {
                    seeks.remove(0);
                    handle.seek_bytes(to).await.expect("seekable source");
                    println!("seek     from byte {position:>6} to {to}");
                    position = to;
                }
            }
        }
        println!(
            "summary: {bytes} bytes in {items} data items (all verified), {controls} controls, \
             {events} events, 2 seeks, ended at byte {position}"
        );
    });
}
