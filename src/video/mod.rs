//! Video from the door: a generated test pattern (device name, time and call state drawn in),
//! encoded to H.264 and cut into RTP payloads, one thread per stream so encoding never holds
//! up the runtime that serves SIP, HTTP and RTSP.

pub mod h264;
pub mod jpeg;
pub mod packetize;
pub mod pattern;

use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use h264::H264Encoder;
use pattern::Picture;

/// How pictures are coded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// H.264 (RFC 6184).
    H264,
    /// Motion JPEG (RFC 2435).
    Jpeg,
}

/// Size, rate and coding of a video stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VideoFormat {
    /// Width in pixels (even; a multiple of 8 for JPEG).
    pub width: u16,
    /// Height in pixels (even; a multiple of 8 for JPEG).
    pub height: u16,
    /// Pictures a second.
    pub fps: u8,
    /// The coding.
    pub codec: VideoCodec,
}

impl VideoFormat {
    /// What a stream sends unless its URL says otherwise: H.264, 640x480 at 15 fps.
    pub const DEFAULT: VideoFormat = VideoFormat { width: 640, height: 480, fps: 15, codec: VideoCodec::H264 };
}

/// Largest RTP payload sent: a packet with its headers stays inside a 1500-byte MTU.
pub const MAX_PAYLOAD: usize = 1400;

/// One encoded picture, cut into RTP payloads.
#[derive(Debug, Clone)]
pub struct EncodedPicture {
    /// Its presentation time, counted from the stream's start.
    pub at: Duration,
    /// The payloads in order; the last one ends the picture (RTP marker).
    pub payloads: Vec<Vec<u8>>,
    /// Whether a decoder can start here.
    pub keyframe: bool,
}

/// The lines drawn into every picture, asked for again for each one.
pub type Overlay = Box<dyn Fn() -> Vec<String> + Send>;

/// Starts a thread that draws, encodes and packetizes pictures of `format` at its rate into
/// `to`, until the receiver is dropped. A receiver that falls behind makes the thread wait, and
/// then skip the pictures whose time has passed (timestamps stay on the wall clock).
pub fn spawn_stream(format: VideoFormat, overlay: Overlay, to: mpsc::Sender<EncodedPicture>) -> std::io::Result<()> {
    let mut encoder = match format.codec {
        VideoCodec::H264 => Some(H264Encoder::new(format).map_err(std::io::Error::other)?),
        VideoCodec::Jpeg => None,
    };
    std::thread::Builder::new().name("doorsim-video".into()).spawn(move || {
        let started = Instant::now();
        let fps = u64::from(format.fps.max(1));
        let time_of = |n: u64| Duration::from_micros(n * 1_000_000 / fps);
        let mut n = 0u64;
        while !to.is_closed() {
            let due = started + time_of(n);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let at = time_of(n);
            let picture = Picture::test_pattern(usize::from(format.width), usize::from(format.height), n, &overlay());
            let coded = match encoder.as_mut() {
                Some(h264) => h264.encode(&picture, at.as_millis() as u64).map(|unit| {
                    let payloads = unit.nals.iter().flat_map(|nal| packetize::payloads(nal, MAX_PAYLOAD)).collect();
                    (payloads, unit.keyframe)
                }),
                // Every JPEG picture stands alone.
                None => jpeg::payloads(&picture, MAX_PAYLOAD).map(|payloads| (payloads, true)),
            };
            let (payloads, keyframe) = match coded {
                Ok(coded) => coded,
                Err(e) => return tracing::error!(error = %e, "the video encoder failed; the stream stops"),
            };
            if to.blocking_send(EncodedPicture { at, payloads, keyframe }).is_err() {
                return;
            }
            // The next picture due; pictures whose time passed while the receiver was slow are skipped.
            let late = started.elapsed().as_micros() as u64 * fps / 1_000_000;
            n = (n + 1).max(late);
        }
    })?;
    Ok(())
}
