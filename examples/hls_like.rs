//! A segmented source, as an HLS player has: the byte stream is made of segments fetched one
//! by one from the playlist of the current variant (bitrate). `Control` carries the
//! playlist state (variant and segment) and the variant switch, `Event` carries segment
//! progress, and a seek maps a byte position to a segment and an offset in it.
//!
//! ```text
//! cargo run --example hls_like
//! ```

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures::executor::{ThreadPool, block_on};
use futures::{StreamExt, stream};
use kithara_stream::{Engine, EngineSource, OpenResult, StreamMsg, StreamParams, WriterTask};

const SEGMENT_LEN: u64 = 16 * 1024;
const SEGMENTS: u64 = 8;
const PIECE: u64 = 4 * 1024;
const VARIANTS: [&str; 2] = ["128 kbit/s", "320 kbit/s"];

/// The control state: where in which playlist the producer is.
#[derive(Clone, Debug, PartialEq)]
struct Playlist {
    variant: usize,
    segment: u64,
}

/// Events for the player.
#[derive(Debug)]
enum HlsEvent {
    /// `fetched` of the segment's `SEGMENT_LEN` bytes are downloaded.
    SegmentProgress { segment: u64, fetched: u64 },
}

/// Byte `pos` of a variant's rendition (they differ, so a switch shows in the bytes).
fn byte(variant: usize, pos: u64) -> u8 {
    ((pos / 7) as u8).wrapping_add(variant as u8 * 100)
}

/// Fetches segments of the current variant; switches variant at a segment boundary when the
/// player asks (adaptive bitrate).
struct HlsSource {
    wanted_variant: Arc<AtomicUsize>,
}

impl HlsSource {
    /// The writer task from byte `pos` on, starting in `playlist`'s variant.
    fn task_from(
        &self,
        pos: u64,
        playlist: Playlist,
    ) -> WriterTask<Playlist, HlsEvent, Infallible> {
        let wanted = self.wanted_variant.clone();
        let messages = stream::unfold((pos, playlist, true), move |(pos, mut playlist, first)| {
            let wanted = wanted.clone();
            async move {
                if pos >= SEGMENT_LEN * SEGMENTS {
                    return None;
                }
                let (segment, offset) = (pos / SEGMENT_LEN, pos % SEGMENT_LEN);
                let mut out = Vec::new();
                if offset == 0 || first {
                    // A new segment: follow the player's variant choice, announce the position.
                    playlist = Playlist {
                        variant: wanted.load(Ordering::SeqCst),
                        segment,
                    };
                    out.push(StreamMsg::Control(playlist.clone()));
                }
                // "Download" the next piece of the segment.
                let end = (pos + PIECE - offset % PIECE).min((segment + 1) * SEGMENT_LEN);
                let piece: Bytes = (pos..end).map(|p| byte(playlist.variant, p)).collect();
                out.push(StreamMsg::Data(piece));
                out.push(StreamMsg::Event(HlsEvent::SegmentProgress {
                    segment,
                    fetched: end - segment * SEGMENT_LEN,
                }));
                Some((
                    stream::iter(out.into_iter().map(Ok)),
                    (end, playlist, false),
                ))
            }
        });
        WriterTask::new(messages.flatten())
    }
}

impl EngineSource for HlsSource {
    type Error = Infallible;
    type Control = Playlist;
    type Event = HlsEvent;

    fn open(
        &self,
        _params: StreamParams,
    ) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
        let playlist = Playlist {
            variant: self.wanted_variant.load(Ordering::SeqCst),
            segment: 0,
        };
        let task = self.task_from(0, playlist.clone());
        async move { Ok((task, playlist)) }
    }

    /// Maps the byte position to a segment and an offset in it, in the current variant.
    fn seek_bytes(
        &self,
        pos: u64,
        control: Playlist,
    ) -> impl Future<Output = OpenResult<Self>> + Send + 'static {
        let playlist = Playlist {
            variant: control.variant,
            segment: pos / SEGMENT_LEN,
        };
        println!(
            "  source: seek to byte {pos} = segment {} + {} bytes, staying on {}",
            playlist.segment,
            pos % SEGMENT_LEN,
            VARIANTS[playlist.variant]
        );
        let task = self.task_from(pos, playlist.clone());
        async move { Ok((task, playlist)) }
    }

    fn supports_seek(&self) -> bool {
        true
    }
}

fn main() {
    let wanted_variant = Arc::new(AtomicUsize::new(0));
    let source = HlsSource {
        wanted_variant: wanted_variant.clone(),
    };
    let params = StreamParams::default()
        .with_buffer_capacity(8 * 1024)
        .with_chunk_size(4 * 1024);
    let (engine, handle, mut stream) = Engine::build(source, params);
    ThreadPool::new()
        .expect("thread pool")
        .spawn_ok(engine.run());

    block_on(async move {
        let (mut pos, mut variant, mut bytes) = (0u64, 0usize, 0u64);
        let (mut switched, mut seeked, mut controls, mut events) = (false, false, 0, 0);
        while let Some(msg) = stream.next().await {
            match msg.expect("never fails") {
                StreamMsg::Control(playlist) => {
                    controls += 1;
                    if playlist.variant != variant {
                        println!(
                            "control at byte {pos:>6}: switched to {}",
                            VARIANTS[playlist.variant]
                        );
                    }
                    println!(
                        "control at byte {pos:>6}: segment {} of {SEGMENTS} ({})",
                        playlist.segment, VARIANTS[playlist.variant]
                    );
                    variant = playlist.variant;
                }
                StreamMsg::Event(HlsEvent::SegmentProgress { segment, fetched }) => {
                    events += 1;
                    if fetched == SEGMENT_LEN {
                        println!("event   at byte {pos:>6}: segment {segment} downloaded");
                    }
                }
                StreamMsg::Data(data) => {
                    assert!(
                        data.iter()
                            .enumerate()
                            .all(|(i, &b)| b == byte(variant, pos + i as u64)),
                        "bytes of the announced variant"
                    );
                    pos += data.len() as u64;
                    bytes += data.len() as u64;
                }
            }
            // The player's choices: a better variant after two segments, then a seek.
            if !switched && pos >= 2 * SEGMENT_LEN {
                switched = true;
                wanted_variant.store(1, Ordering::SeqCst);
                println!(
                    "player: bandwidth is good, asks for {} (applied at a segment boundary)",
                    VARIANTS[1]
                );
            }
            if !seeked && pos >= 4 * SEGMENT_LEN {
                seeked = true;
                let to = 6 * SEGMENT_LEN + 1000;
                println!("player: seek to byte {to}");
                handle.seek_bytes(to).await.expect("seekable");
                pos = to;
            }
        }
        println!(
            "summary: {bytes} bytes verified against their variant, {controls} controls, {events} events, 1 switch, 1 seek"
        );
    });
}
