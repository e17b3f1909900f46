//! A player's download on tokio: `HttpFetch` (reqwest) behind `Retrying` through a
//! `RangeSource`, the engine spawned on tokio, symphonia decoding on a blocking thread, with
//! the playing position and a buffer bar. It serves a generated WAV on 127.0.0.1 itself (axum +
//! tower-http's `ServeFile`), or plays the WAV at the URL given.
//!
//! ```text
//! cargo run --example http_tokio [-- http://host/file.wav]
//! ```

#[path = "shared/wav.rs"]
mod wav;

use std::io;
use std::time::Duration;

use kithara_stream::io::BlockingReader;
use kithara_stream::sources::{HttpFetch, RangeSource, RetryPolicy, Retrying};
use kithara_stream::{Engine, StreamParams};
use symphonia::core::codecs::DecoderOptions;
use symphonia::core::errors::Error as DecodeError;
use symphonia::core::formats::{FormatOptions, SeekMode, SeekTo};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

#[tokio::main]
async fn main() {
    let (url, _server_file) = match std::env::args().nth(1) {
        Some(url) => (url, None),
        None => {
            let (url, file) = serve_generated_wav().await;
            (url, Some(file))
        }
    };
    println!("playing {url}");

    // The ready-made HTTP fetch (the `reqwest` feature) behind the retry layer: a cut or a
    // stall resumes at the byte reached. Any other client becomes a fetch through a closure
    // of a `ByteRange` (see `RangeSource`'s docs).
    let fetch = HttpFetch::new(reqwest::Client::new(), url.clone());
    let policy = RetryPolicy::default()
        .with_stall_timeout(Duration::from_secs(5))
        .with_timer(tokio::time::sleep)
        .on_retry(|event| eprintln!("reconnecting at byte {}: {}", event.position, event.cause));
    let source = RangeSource::new(Retrying::new(fetch, policy));
    let watch = source.progress_watch();
    let (engine, handle, stream) = Engine::build(
        source,
        StreamParams::default().with_buffer_capacity(64 * 1024),
    );
    tokio::spawn(engine.run());

    // The decoder blocks: give it a blocking thread, never an async task.
    let player = tokio::task::spawn_blocking(move || {
        let reader = BlockingReader::new(stream, handle);
        let switch = reader.seek_switch();
        switch.set(false); // the probe must not seek to the end of the download
        let mut hint = Hint::new();
        hint.with_extension("wav");
        let probed = symphonia::default::get_probe()
            .format(
                &hint,
                MediaSourceStream::new(Box::new(reader), Default::default()),
                &FormatOptions::default(),
                &MetadataOptions::default(),
            )
            .expect("a WAV file");
        switch.set(true);
        let mut format = probed.format;
        let track = format.default_track().expect("a track").clone();
        let rate = f64::from(track.codec_params.sample_rate.unwrap_or(wav::SAMPLE_RATE));
        let mut decoder = symphonia::default::get_codecs()
            .make(&track.codec_params, &DecoderOptions::default())
            .expect("decoder");
        let (mut frames, mut seeked, mut next_line) = (0u64, false, 0.0);
        loop {
            let packet = match format.next_packet() {
                Ok(packet) => packet,
                Err(DecodeError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(e) => panic!("decode: {e}"),
            };
            let decoded = decoder.decode(&packet).expect("decode");
            frames += decoded.frames() as u64;
            let now = (packet.ts() + decoded.frames() as u64) as f64 / rate;
            if now >= next_line {
                next_line = now + 0.5;
                let progress = watch.get();
                let total = progress.total.unwrap_or(1) as f64;
                let played = (wav::HEADER_LEN as f64 + now * rate * 2.0) / total;
                println!(
                    "play {now:>5.2} s {} fetched {:>6} / {} bytes",
                    wav::bar(played, progress.fetched_to as f64 / total, 40),
                    progress.fetched_to,
                    progress.total.unwrap_or(0)
                );
            }
            if !seeked && now >= 1.5 {
                seeked = true;
                format
                    .seek(
                        SeekMode::Accurate,
                        SeekTo::Time {
                            time: 3.0.into(),
                            track_id: Some(track.id),
                        },
                    )
                    .expect("seek");
                decoder.reset();
                next_line = 0.0;
                println!("seek -> 3.00 s (a new Range request)");
            }
        }
        frames
    });
    let frames = player.await.expect("player thread");
    println!("done: {frames} frames decoded");
}

/// Serves a generated WAV at `/audio.wav` on 127.0.0.1 (tower-http's `ServeFile` answers
/// Range requests); the server stops with the runtime.
async fn serve_generated_wav() -> (String, TempFile) {
    let file = TempFile(
        std::env::temp_dir().join(format!("kithara-http-tokio-{}.wav", std::process::id())),
    );
    std::fs::write(&file.0, wav::wav(&wav::melody(5.0))).expect("write the WAV");
    let app = axum::Router::new()
        .route_service("/audio.wav", tower_http::services::ServeFile::new(&file.0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/audio.wav", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, file)
}

/// Removed when dropped.
struct TempFile(std::path::PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
