//! Generated media the device sends: a µ-law tone for audio streams and MJPEG frames for video.
//! Pure data, no I/O; the HTTP media endpoints (and later RTP) pace and send it.

pub mod g711;

use std::sync::OnceLock;

use bytes::Bytes;

/// A codec the device really sends and receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// G.711 µ-law.
    Pcmu,
    /// G.711 A-law.
    Pcma,
}

impl Codec {
    /// SDP encoding name.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// Static payload type.
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The codec of an SDP encoding name.
    pub fn from_sdp_name(name: &str) -> Option<Codec> {
        match name.to_ascii_uppercase().as_str() {
            "PCMU" => Some(Codec::Pcmu),
            "PCMA" => Some(Codec::Pcma),
            _ => None,
        }
    }
}

/// Audio sample rate of G.711.
pub const SAMPLE_RATE: usize = 8000;
/// The tone's frequency: 400 Hz divides 8000 Hz, so one second loops without a click.
const TONE_HZ: f64 = 400.0;

/// One second of the tone in `codec`, generated once (RTP sessions send slices of it).
pub fn tone_second_in(codec: Codec) -> &'static [u8] {
    static ALAW: OnceLock<Vec<u8>> = OnceLock::new();
    match codec {
        Codec::Pcmu => tone_second(),
        Codec::Pcma => {
            ALAW.get_or_init(|| tone_second().iter().map(|b| g711::alaw_encode(g711::ulaw_decode(*b))).collect())
        }
    }
}

/// One second of a 400 Hz tone as µ-law, generated once.
pub fn tone_second() -> &'static Bytes {
    static TONE: OnceLock<Bytes> = OnceLock::new();
    TONE.get_or_init(|| {
        (0..SAMPLE_RATE)
            .map(|n| {
                let phase = 2.0 * std::f64::consts::PI * TONE_HZ * n as f64 / SAMPLE_RATE as f64;
                g711::ulaw_encode((phase.sin() * 8000.0) as i16)
            })
            .collect::<Vec<u8>>()
            .into()
    })
}

/// Width and height of generated video frames.
pub const FRAME_SIZE: (u16, u16) = (320, 240);
/// Frames in the generated loop.
const FRAMES: usize = 25;

/// Frames per second of the generated video.
pub const VIDEO_FPS: u64 = 10;

/// A loop of JPEG frames (a bar sweeping across a gradient), encoded once.
pub fn jpeg_frames() -> &'static [Bytes] {
    static FRAMES_CACHE: OnceLock<Vec<Bytes>> = OnceLock::new();
    FRAMES_CACHE.get_or_init(|| (0..FRAMES).filter_map(|i| jpeg_frame(i, FRAME_SIZE)).collect())
}

/// The frame of the loop that is showing at `at` (time since the Unix epoch).
pub fn frame_index(at: std::time::Duration) -> usize {
    (at.as_millis() / u128::from(1000 / VIDEO_FPS)) as usize % FRAMES
}

/// Frame `index` of the loop encoded at `size` (width, height), or `None` if it cannot be.
pub fn jpeg_frame(index: usize, size: (u16, u16)) -> Option<Bytes> {
    let (w, h) = (usize::from(size.0), usize::from(size.1));
    let bar = (index % FRAMES) * w / FRAMES;
    let mut rgb = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let on_bar = x >= bar && x < bar + w / FRAMES;
            let shade = (y * 200 / h) as u8 + 30;
            let pixel = if on_bar { [230, 180, 20] } else { [shade, shade, shade] };
            rgb.extend_from_slice(&pixel);
        }
    }
    let mut jpeg = Vec::new();
    let encoder = jpeg_encoder::Encoder::new(&mut jpeg, 70);
    match encoder.encode(&rgb, size.0, size.1, jpeg_encoder::ColorType::Rgb) {
        Ok(()) => Some(jpeg.into()),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode a video frame");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tone_is_one_second_of_audible_ulaw() {
        let tone = tone_second();
        assert_eq!(tone.len(), SAMPLE_RATE);
        let peak = tone.iter().map(|b| g711::ulaw_decode(*b).unsigned_abs()).max().unwrap_or(0);
        assert!((7000..=8200).contains(&peak), "{peak}");
    }

    #[test]
    fn frames_are_jpegs() {
        let frames = jpeg_frames();
        assert_eq!(frames.len(), FRAMES);
        for f in frames {
            assert_eq!(&f[..2], &[0xFF, 0xD8], "SOI marker");
            assert_eq!(&f[f.len() - 2..], &[0xFF, 0xD9], "EOI marker");
        }
        assert_ne!(frames[0], frames[1], "the picture moves");
    }
}
