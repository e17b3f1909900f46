//! The best first run of kithara-stream: generated audio served through a `RangeSource`
//! (as an HTTP client with Range requests would), the `Engine` on a plain thread, a
//! `BlockingReader` and symphonia decoding it, with a buffer bar, seeks and a summary.
//! No runtime, no network.
//!
//! ```text
//! cargo run --example demo
//! ```

#[path = "shared/wav.rs"]
mod wav;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures::stream;
use kithara_stream::exec::block_on;
use kithara_stream::io::{BlockingReader, SideMsg};
use kithara_stream::sources::{ByteRange, RangeResponse, RangeSource};
use kithara_stream::{Engine, StreamParams};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::DecoderOptions;
use symphonia::core::errors::Error as DecodeError;
use symphonia::core::formats::{FormatOptions, SeekMode, SeekTo};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

const SECONDS: f64 = 6.0;
/// The "network" delivers the body in pieces of this size.
const PIECE: usize = 4 * 1024;

fn main() {
    let samples = wav::melody(SECONDS);
    let file = Bytes::from(wav::wav(&samples));
    let rate = f64::from(wav::SAMPLE_RATE);
    println!(
        "kithara-stream demo: {SECONDS} s of generated audio ({} KB WAV)\n  \
         RangeSource -> Engine (plain thread) -> BlockingReader -> symphonia\n",
        file.len() / 1024
    );

    // 1. A range source: `fetch(range)` returns the bytes from `range.start` on, in pieces,
    //    and the total length, as an HTTP client answering `Range: bytes=start-` would.
    let requests = Arc::new(AtomicUsize::new(0));
    let source = {
        let (file, requests) = (file.clone(), requests.clone());
        RangeSource::new(move |range: ByteRange| {
            requests.fetch_add(1, Ordering::SeqCst);
            let body = file.slice(range.start as usize..);
            let total = file.len() as u64;
            async move {
                let pieces = (0..body.len()).step_by(PIECE).map(move |at| {
                    Ok::<_, io::Error>(body.slice(at..(at + PIECE).min(body.len())))
                });
                Ok(RangeResponse::new(stream::iter(pieces.collect::<Vec<_>>()))
                    .with_total_len(Some(total)))
            }
        })
    };

    // The download progress as the engine fetches: the buffer bar ahead of the play position.
    let watch = source.progress_watch();

    // 2. The engine, with a ring smaller than the file: it fetches ahead while there is room.
    let params = StreamParams::default()
        .with_buffer_capacity(64 * 1024)
        .with_chunk_size(8 * 1024);
    let (engine, handle, stream) = Engine::build(source, params);
    // The library spawns nothing: run it on any executor; here a plain thread is enough.
    let engine_thread = std::thread::spawn(move || block_on(engine.run()));

    // 3. The blocking reader for the decoder. In-band messages (here the source's progress
    //    events, met in stream order) go to a callback.
    let events = Arc::new(AtomicUsize::new(0));
    let reader = {
        let events = events.clone();
        BlockingReader::new(stream, handle).on_message(move |msg| {
            if let SideMsg::Event(_progress) = msg {
                events.fetch_add(1, Ordering::Relaxed);
            }
        })
    };

    // 4. symphonia. The probe sees a forward-only source, so that it cannot seek to the end
    //    of a download before playback starts; seeking comes back on after it.
    let switch = reader.seek_switch();
    switch.set(false);
    let source = MediaSourceStream::new(Box::new(reader), Default::default());
    let mut hint = Hint::new();
    hint.with_extension("wav");
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            source,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .expect("a WAV file");
    switch.set(true);
    let mut format = probed.format;
    let track = format.default_track().expect("a track").clone();
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .expect("a PCM decoder");
    println!(
        "probe    {} Hz, {} channel, {} frames; {} range request so far (seeking was off)",
        track.codec_params.sample_rate.unwrap_or(0),
        track.codec_params.channels.map_or(0, |c| c.count()),
        track.codec_params.n_frames.unwrap_or(0),
        requests.load(Ordering::SeqCst)
    );

    // 5. Play: decode, check every sample, draw the bar, and seek now and then.
    let total = file.len() as f64;
    let mut seeks = vec![(1.0, 4.5), (5.0, 2.0), (3.0, SECONDS - 0.3)]; // (at, to) in seconds
    let (mut frames, mut packets, mut next_bar) = (0u64, 0u64, 0.0);
    loop {
        let packet = match format.next_packet() {
            Ok(packet) => packet,
            Err(DecodeError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) => panic!("decoding failed: {e}"),
        };
        let decoded = decoder.decode(&packet).expect("PCM decodes");
        let mut buf = SampleBuffer::<i16>::new(decoded.capacity() as u64, *decoded.spec());
        buf.copy_interleaved_ref(decoded);
        let ts = packet.ts() as usize;
        assert_eq!(
            buf.samples(),
            &samples[ts..ts + buf.samples().len()],
            "samples at {ts}"
        );
        frames += buf.samples().len() as u64;
        packets += 1;

        let now = (ts + buf.samples().len()) as f64 / rate;
        if now >= next_bar {
            next_bar = now + 0.5;
            let play_byte = wav::HEADER_LEN as f64 + now * rate * 2.0;
            let buffered = watch.get().fetched_to as f64;
            println!(
                "play {now:>5.2} s {} buffered to {:>4.2} s",
                wav::bar(play_byte / total, buffered / total, 40),
                (buffered - wav::HEADER_LEN as f64).max(0.0) / rate / 2.0
            );
        }
        if let Some(&(at, to)) = seeks.first() {
            if now >= at {
                seeks.remove(0);
                let seeked = format
                    .seek(
                        SeekMode::Accurate,
                        SeekTo::Time {
                            time: to.into(),
                            track_id: Some(track.id),
                        },
                    )
                    .expect("seekable");
                decoder.reset();
                next_bar = 0.0;
                println!(
                    "seek     {now:.2} s -> {:.2} s (range request #{})",
                    seeked.actual_ts as f64 / rate,
                    requests.load(Ordering::SeqCst)
                );
            }
        }
    }
    drop(format); // drops the reader: the engine completes
    engine_thread.join().expect("the engine thread");
    println!(
        "\nsummary: {frames} frames in {packets} packets, every sample equal to the generated \
         audio; 3 seeks; {} range requests; {} progress events",
        requests.load(Ordering::SeqCst),
        events.load(Ordering::Relaxed)
    );
}
