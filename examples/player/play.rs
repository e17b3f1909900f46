//! The player's reusable part, shared by `examples/player/main.rs` and `tests/player.rs`: a
//! resource (a URL through reqwest, or a file) behind a `CachedSource`, the engine on tokio,
//! symphonia decoding through `io::BlockingReader`, seeks, and what it all cost.

// Some of it is for the test only.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::future::Future;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use kithara_stream::io::BlockingReader;
use kithara_stream::sources::{
    BufferWatch, ByteRange, CachedSource, Fetch, HttpError, HttpFetch, Progress, ReadFetch,
    RetryPolicy, Retrying, StoreParams,
};
use kithara_stream::store::{DiskStore, Store};
use kithara_stream::{Engine, StreamParams};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, Decoder, DecoderOptions};
use symphonia::core::errors::Error as DecodeError;
use symphonia::core::formats::{FormatOptions, FormatReader, SeekMode, SeekTo};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;
use symphonia::core::units::Time;

/// Requests made and body bytes received by a [`counted`] fetch.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    requests: Arc<AtomicUsize>,
    bytes: Arc<AtomicU64>,
    trace: bool,
}

impl Counters {
    /// Fetches asked for (each one a request once its future is polled).
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Body bytes received.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::SeqCst)
    }

    /// Also prints each range asked for to stderr.
    pub fn traced(mut self) -> Self {
        self.trace = true;
        self
    }
}

/// `fetch`, counting its requests and the body bytes it receives in `counters`.
pub fn counted<F: Fetch>(fetch: F, counters: &Counters) -> impl Fetch<Error = F::Error> {
    let (requests, bytes) = (counters.requests.clone(), counters.bytes.clone());
    let trace = counters.trace;
    move |range: ByteRange| {
        let number = requests.fetch_add(1, Ordering::SeqCst);
        if trace {
            eprintln!("request {number}: {}", range.header());
        }
        // Boxed: the fetch's future is 'static, but its type names the borrow of `fetch`.
        let response: Pin<Box<dyn Future<Output = _> + Send>> = Box::pin(fetch.fetch(range));
        let bytes = bytes.clone();
        async move {
            let response = response.await?;
            // The start, the length and the validator go on with the counted body.
            Ok::<_, F::Error>(response.map_body(|body| {
                body.inspect_ok(move |chunk| {
                    bytes.fetch_add(chunk.len() as u64, Ordering::SeqCst);
                })
            }))
        }
    }
}

/// HTTP range requests for `url` with the crate's `HttpFetch` (reqwest), counted by
/// `counters` and retried as `policy` says: a cut or a stall resumes where it stopped.
pub fn http_fetch(
    url: &str,
    counters: &Counters,
    policy: RetryPolicy,
) -> impl Fetch<Error = HttpError> {
    let fetch = HttpFetch::new(reqwest::Client::new(), url);
    Retrying::new(counted(fetch, counters), policy)
}

/// The retry policy of the player: tokio's timer, a stall after `stall` without a byte.
pub fn retry_policy(stall: Duration) -> RetryPolicy {
    RetryPolicy::default()
        .with_stall_timeout(stall)
        .with_backoff(Duration::from_millis(50), Duration::from_secs(4))
        .with_timer(tokio::time::sleep)
        .on_retry(|event| {
            eprintln!(
                "reconnecting at byte {} (attempt {}, in {:?}): {}",
                event.position, event.attempt, event.delay, event.cause
            )
        })
}

/// The file at `path`, opened with tokio for each fetch (futures-io through tokio-util).
pub fn file_fetch(path: PathBuf) -> impl Fetch<Error = io::Error> {
    use tokio_util::compat::TokioAsyncReadCompatExt;
    ReadFetch::new(move || {
        let path = path.clone();
        async move { Ok(tokio::fs::File::open(path).await?.compat()) }
    })
}

/// `fetch` behind a `CachedSource` of `budget` bytes in memory (0: the engine's ring only),
/// its engine spawned on `runtime`.
pub fn open<F>(
    fetch: F,
    budget: u64,
    runtime: &tokio::runtime::Handle,
) -> (BlockingReader<(), Progress, F::Error>, BufferWatch)
where
    F: Fetch,
    F::Error: std::error::Error + Send + Sync,
{
    let source = CachedSource::new(fetch, StoreParams::with_budget(budget));
    let (reader, watch, _engine) = start(source, runtime);
    (reader, watch)
}

/// `fetch` behind a `CachedSource` that keeps what it fetched in `store` (a resource of a
/// `DiskCache`), its engine spawned on `runtime`. The engine's task ends, and the store is
/// closed (its index published), once the reader is dropped.
pub fn open_on_disk<F>(
    fetch: F,
    store: DiskStore,
    params: StoreParams,
    runtime: &tokio::runtime::Handle,
) -> (
    BlockingReader<(), Progress, F::Error>,
    BufferWatch,
    tokio::task::JoinHandle<()>,
)
where
    F: Fetch,
    F::Error: std::error::Error + Send + Sync,
{
    // The disk store has its own budget: `params` sets the look-ahead and the fetches.
    let source = CachedSource::with_store(fetch, store, params);
    start(source, runtime)
}

fn start<F, S>(
    source: CachedSource<F, S>,
    runtime: &tokio::runtime::Handle,
) -> (
    BlockingReader<(), Progress, F::Error>,
    BufferWatch,
    tokio::task::JoinHandle<()>,
)
where
    F: Fetch,
    F::Error: std::error::Error + Send + Sync,
    S: Store,
{
    let watch = source.buffer_watch();
    let params = StreamParams::default().with_buffer_capacity(64 * 1024);
    let (engine, handle, stream) = Engine::build(source, params);
    let task = runtime.spawn(engine.run());
    (BlockingReader::new(stream, handle), watch, task)
}

/// The key of a URL in a `DiskCache`: the URL without its query and fragment, where
/// expiring tokens live (`--key` names it otherwise).
pub fn cache_key(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_owned()
}

/// One decoded packet: its timestamp, its frames and a digest of its samples (as `f32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    pub ts: u64,
    pub frames: usize,
    pub digest: u64,
}

/// One seek and the packets decoded after it.
#[derive(Debug, Clone)]
pub struct Seek {
    /// Where to, in seconds.
    pub target: f64,
    /// The timestamp the demuxer says the seek needs, and the one it landed on.
    pub required_ts: u64,
    pub actual_ts: u64,
    /// From the seek call to the first packet decoded after it (`None`: none was).
    pub latency: Option<Duration>,
    pub packets: Vec<Packet>,
}

/// A whole decode, then the seeks.
#[derive(Debug, Clone)]
pub struct Playback {
    pub sample_rate: u32,
    /// The packets of the decode from the start to the end.
    pub whole: Vec<Packet>,
    /// From the call of [`play`] to the first packet decoded.
    pub first_packet: Option<Duration>,
    pub seeks: Vec<Seek>,
}

impl Playback {
    /// Packets decoded in all.
    pub fn packets(&self) -> usize {
        self.whole.len() + self.seeks.iter().map(|s| s.packets.len()).sum::<usize>()
    }

    /// The length of the whole decode, in seconds.
    pub fn seconds(&self) -> f64 {
        let frames: usize = self.whole.iter().map(|p| p.frames).sum();
        frames as f64 / f64::from(self.sample_rate.max(1))
    }

    /// The median and the worst seek latency.
    pub fn seek_latency(&self) -> Option<(Duration, Duration)> {
        let mut latencies: Vec<Duration> = self.seeks.iter().filter_map(|s| s.latency).collect();
        latencies.sort();
        let worst = *latencies.last()?;
        let n = latencies.len();
        let median = if n % 2 == 1 {
            latencies[n / 2]
        } else {
            (latencies[n / 2 - 1] + latencies[n / 2]) / 2
        };
        Some((median, worst))
    }

    /// The summary line: packets, requests, bytes fetched (and their ratio to `total`),
    /// time to the first packet, seek latencies.
    pub fn summary(&self, requests: usize, bytes: u64, total: Option<u64>) -> String {
        let ratio = match total {
            Some(total) if total > 0 => format!(" ({:.2}x the file)", bytes as f64 / total as f64),
            _ => String::new(),
        };
        let ms = |d: Option<Duration>| match d {
            Some(d) => format!("{:.1} ms", d.as_secs_f64() * 1e3),
            None => "-".to_owned(),
        };
        let (median, worst) = self.seek_latency().unzip();
        format!(
            "{} packets ({:.2} s + {} seeks), {requests} requests, {bytes} bytes fetched{ratio}, \
             first packet {}, seek latency median {} worst {}",
            self.packets(),
            self.seconds(),
            self.seeks.len(),
            ms(self.first_packet),
            ms(median),
            ms(worst),
        )
    }
}

/// Probes `source` with symphonia (`extension` as the hint), decodes its default track to
/// the end, then performs each seek of `seeks` (seconds) in order, `SeekMode::Accurate`, and
/// decodes up to `after_seek` packets after each. Fails on any probe, demux, seek or decode
/// error; the end of the stream ends a decode.
pub fn play(
    source: Box<dyn MediaSource>,
    extension: Option<&str>,
    seeks: &[f64],
    after_seek: usize,
) -> Result<Playback, String> {
    play_until(source, extension, seeks, after_seek, None)
}

/// [`play`], stopped once the whole decode reaches `stop_after` seconds of the track (no
/// seek is done then): a listener who stops half-way.
pub fn play_until(
    source: Box<dyn MediaSource>,
    extension: Option<&str>,
    seeks: &[f64],
    after_seek: usize,
    stop_after: Option<f64>,
) -> Result<Playback, String> {
    let started = Instant::now();
    let mut hint = Hint::new();
    if let Some(extension) = extension {
        hint.with_extension(extension);
    }
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            MediaSourceStream::new(source, Default::default()),
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| format!("probe: {}", chain(&e)))?;
    let track = probed
        .format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or("no audio track")?
        .clone();
    let decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| format!("decoder: {e}"))?;
    let mut next = Next {
        format: probed.format,
        decoder,
        track: track.id,
        samples: None,
    };

    let mut whole = Vec::new();
    let mut first_packet = None;
    let time_base = track.codec_params.time_base;
    let mut stopped = false;
    while let Some(packet) = next.packet()? {
        first_packet.get_or_insert_with(|| started.elapsed());
        whole.push(packet);
        if let (Some(stop), Some(base)) = (stop_after, time_base) {
            let at = base.calc_time(packet.ts);
            if at.seconds as f64 + at.frac >= stop {
                stopped = true;
                break;
            }
        }
    }
    let seeks = if stopped { &[][..] } else { seeks };
    let mut done = Vec::with_capacity(seeks.len());
    for &target in seeks {
        let asked = Instant::now();
        let seeked = next
            .format
            .seek(
                SeekMode::Accurate,
                SeekTo::Time {
                    time: Time::from(target),
                    track_id: Some(track.id),
                },
            )
            .map_err(|e| format!("seek to {target} s: {}", chain(&e)))?;
        next.decoder.reset();
        let mut seek = Seek {
            target,
            required_ts: seeked.required_ts,
            actual_ts: seeked.actual_ts,
            latency: None,
            packets: Vec::with_capacity(after_seek),
        };
        while seek.packets.len() < after_seek {
            let Some(packet) = next.packet()? else {
                break;
            };
            seek.latency.get_or_insert_with(|| asked.elapsed());
            seek.packets.push(packet);
        }
        done.push(seek);
    }
    Ok(Playback {
        sample_rate: track.codec_params.sample_rate.unwrap_or(0),
        whole,
        first_packet,
        seeks: done,
    })
}

/// Reads and decodes the packets of one track.
struct Next {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track: u32,
    samples: Option<SampleBuffer<f32>>,
}

impl Next {
    /// The next packet of the track, decoded; `None` at the end of the stream.
    fn packet(&mut self) -> Result<Option<Packet>, String> {
        let packet = loop {
            match self.format.next_packet() {
                Ok(packet) if packet.track_id() == self.track => break packet,
                Ok(_) => {}
                Err(DecodeError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return Ok(None);
                }
                Err(e) => return Err(format!("demux: {}", chain(&e))),
            }
        };
        let decoded = self
            .decoder
            .decode(&packet)
            .map_err(|e| format!("decode at ts {}: {}", packet.ts(), chain(&e)))?;
        let frames = decoded.frames();
        let needed = decoded.capacity() * decoded.spec().channels.count();
        let samples = match &mut self.samples {
            Some(samples) if samples.capacity() >= needed => samples,
            slot => slot.insert(SampleBuffer::new(
                decoded.capacity() as u64,
                *decoded.spec(),
            )),
        };
        samples.copy_interleaved_ref(decoded);
        let mut hasher = DefaultHasher::new();
        for sample in samples.samples() {
            sample.to_bits().hash(&mut hasher);
        }
        Ok(Some(Packet {
            ts: packet.ts(),
            frames,
            digest: hasher.finish(),
        }))
    }
}

/// An error and what caused it: "demux: source error: fetch failed: ...".
fn chain(error: &DecodeError) -> String {
    let mut text = error.to_string();
    let mut source = match error {
        // The I/O error of a stream error: the source's own error inside.
        // The I/O error of a stream error: the `StreamError` inside, and the source's own
        // error inside that.
        DecodeError::IoError(e) => e
            .get_ref()
            .map(|inner| inner as &(dyn std::error::Error + 'static)),
        _ => std::error::Error::source(error),
    };
    while let Some(error) = source {
        let _ = write!(text, ": {error}");
        source = error.source();
    }
    text
}
