//! A generated WAV file (16-bit PCM, mono) whose samples are known, and a symphonia decoder
//! of it, for the end-to-end tests.

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{Decoder, DecoderOptions};
use symphonia::core::errors::Error as DecodeError;
use symphonia::core::formats::{FormatOptions, FormatReader, SeekMode, SeekTo};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

pub const SAMPLE_RATE: u32 = 8_000;
/// The size of the header `wav` writes: the samples start here.
pub const HEADER_LEN: usize = 44;

/// Sample `i` of the generated audio: a sweep with a pattern on top, so that a sample from the
/// wrong place is caught.
pub fn sample(i: u64) -> i16 {
    let sweep = ((i * i / 64) % 20_000) as i32 - 10_000;
    let noise = (super::pattern(i) as i32) - 128;
    (sweep + noise) as i16
}

/// A WAV file of `frames` samples of `sample`.
pub fn wav(frames: u64) -> Vec<u8> {
    let data_len = (frames * 2) as u32;
    let mut out = Vec::with_capacity(HEADER_LEN + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes()); // fmt chunk size
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    out.extend_from_slice(&(SAMPLE_RATE * 2).to_le_bytes()); // byte rate
    out.extend_from_slice(&2u16.to_le_bytes()); // block align
    out.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for i in 0..frames {
        out.extend_from_slice(&sample(i).to_le_bytes());
    }
    out
}

/// A symphonia format reader and decoder over a media source.
pub struct Decoded {
    pub format: Box<dyn FormatReader>,
    pub decoder: Box<dyn Decoder>,
    pub track_id: u32,
    /// The frames the header's data chunk length gives: the file's end.
    pub frames: u64,
    /// The frame the next packet must start at.
    next_ts: u64,
}

impl Decoded {
    /// Probes `source` as WAV.
    pub fn open(source: Box<dyn MediaSource>) -> Self {
        let stream = MediaSourceStream::new(source, Default::default());
        let mut hint = Hint::new();
        hint.with_extension("wav");
        let probed = symphonia::default::get_probe()
            .format(
                &hint,
                stream,
                &FormatOptions::default(),
                &MetadataOptions::default(),
            )
            .expect("probe");
        let format = probed.format;
        let track = format.default_track().expect("a track");
        let decoder = symphonia::default::get_codecs()
            .make(&track.codec_params, &DecoderOptions::default())
            .expect("decoder");
        let track_id = track.id;
        let frames = track
            .codec_params
            .n_frames
            .expect("the header gives the data chunk's length");
        Self {
            format,
            decoder,
            track_id,
            frames,
            next_ts: 0,
        }
    }

    /// The next packet's timestamp and samples; `None` at the end of the file.
    ///
    /// # Panics
    ///
    /// If the packet does not start where the previous one (or the last seek) ended, or if
    /// the data ends before the data chunk's length in the header. symphonia hides a short
    /// read: it cuts the last packet short (fewer frames than the packet's duration, which
    /// comes from the header's length) and reports the end of the chunk and a read past the
    /// end of the file alike, as `UnexpectedEof`. So every packet must decode to its whole
    /// duration, and the end is accepted only at the header's frame count.
    pub fn next(&mut self) -> Option<(u64, Vec<i16>)> {
        let packet = match self.format.next_packet() {
            Ok(packet) => packet,
            Err(DecodeError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                assert_eq!(
                    self.next_ts, self.frames,
                    "the data ended at frame {} of the header's {}: a short read",
                    self.next_ts, self.frames
                );
                return None;
            }
            Err(e) => panic!("next packet: {e}"),
        };
        assert_eq!(packet.ts(), self.next_ts, "a packet out of sequence");
        let decoded = self.decoder.decode(&packet).expect("decode");
        let frames = decoded.frames() as u64;
        assert_eq!(
            frames,
            packet.dur(),
            "the packet at {} is short: a short read",
            packet.ts()
        );
        self.next_ts = packet.ts() + frames;
        let mut buf = SampleBuffer::<i16>::new(decoded.capacity() as u64, *decoded.spec());
        buf.copy_interleaved_ref(decoded);
        Some((packet.ts(), buf.samples().to_vec()))
    }

    /// Checks every packet from here to the end against `sample`; returns the frames seen.
    pub fn check_to_end(&mut self) -> u64 {
        let mut frames = 0;
        while let Some((ts, samples)) = self.next() {
            let want: Vec<i16> = (ts..ts + samples.len() as u64).map(sample).collect();
            assert_eq!(samples, want, "samples of the packet at {ts}");
            frames += samples.len() as u64;
        }
        frames
    }

    /// Seeks to frame `ts`; returns the frame the next packet starts at.
    pub fn seek(&mut self, ts: u64) -> u64 {
        let seeked = self
            .format
            .seek(
                SeekMode::Accurate,
                SeekTo::TimeStamp {
                    ts,
                    track_id: self.track_id,
                },
            )
            .expect("seek");
        self.decoder.reset();
        self.next_ts = seeked.actual_ts;
        seeked.actual_ts
    }
}
