//! Generated "audio" for the examples: a little melody as 16-bit mono PCM, and its WAV file.
#![allow(dead_code)]

/// Sample rate of the generated audio.
pub const SAMPLE_RATE: u32 = 22_050;
/// Bytes before the samples in the WAV file `wav` writes.
pub const HEADER_LEN: usize = 44;

/// `seconds` of a melody (a note every quarter second), as samples.
pub fn melody(seconds: f64) -> Vec<i16> {
    const NOTES: [f64; 8] = [261.6, 293.7, 329.6, 349.2, 392.0, 440.0, 493.9, 523.3];
    let frames = (seconds * f64::from(SAMPLE_RATE)) as usize;
    (0..frames)
        .map(|i| {
            let t = i as f64 / f64::from(SAMPLE_RATE);
            let note = NOTES[(t * 4.0) as usize % NOTES.len()];
            let fade = 1.0 - (t * 4.0).fract(); // each note decays
            (f64::sin(t * note * std::f64::consts::TAU) * fade * 12_000.0) as i16
        })
        .collect()
}

/// A WAV file (16-bit PCM, mono) of `samples`.
pub fn wav(samples: &[i16]) -> Vec<u8> {
    let data_len = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(HEADER_LEN + data_len as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
    out.extend_from_slice(&(SAMPLE_RATE * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for sample in samples {
        out.extend_from_slice(&sample.to_le_bytes());
    }
    out
}

/// A text bar of `width` cells: `=` up to `play`, `#` up to `buffered`, `.` after.
pub fn bar(play: f64, buffered: f64, width: usize) -> String {
    let cells = |f: f64| ((f.clamp(0.0, 1.0)) * width as f64).round() as usize;
    let (p, b) = (cells(play), cells(buffered).max(cells(play)));
    format!(
        "[{}{}{}]",
        "=".repeat(p),
        "#".repeat(b - p),
        ".".repeat(width - b)
    )
}
