//! What an `axis-media/media.amp` URL asks for, and the SDP that describes it.
//!
//! Parameters as Axis devices read them: `video=0|1` and `audio=0|1` (both on unless turned
//! off), `event=on|off` (off unless on), `videocodec=h264|jpeg` (H.264 unless it says jpeg),
//! `resolution=WxH` (sides multiples of 8 for JPEG), `fps=N`. Others Axis knows
//! (`compression`, `camera`, ...) are accepted and ignored. Tracks are numbered from 1 in
//! the order video, audio, metadata, then the ONVIF back channel when the client asks for it.

use crate::video::{jpeg, VideoCodec, VideoFormat};

/// Payload type of H.264 video.
pub const H264_PAYLOAD_TYPE: u8 = 96;
/// Payload type of the event metadata.
pub const METADATA_PAYLOAD_TYPE: u8 = 98;
/// Payload type of G.711 µ-law (static).
pub const PCMU_PAYLOAD_TYPE: u8 = 0;
/// The ONVIF option that asks for an audio back channel (ONVIF Streaming spec, 5.3).
pub const BACKCHANNEL: &str = "www.onvif.org/ver20/backchannel";

/// The RTP payload type of video coded with `codec`.
pub fn video_payload_type(codec: VideoCodec) -> u8 {
    match codec {
        VideoCodec::H264 => H264_PAYLOAD_TYPE,
        VideoCodec::Jpeg => jpeg::PAYLOAD_TYPE,
    }
}

/// Widest and tallest picture served.
const MAX_SIZE: (u16, u16) = (1920, 1080);
/// Smallest picture served.
const MIN_SIZE: (u16, u16) = (160, 90);
/// Highest frame rate served.
const MAX_FPS: u8 = 30;

/// One track of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    /// H.264 from the device.
    Video(VideoFormat),
    /// µ-law audio from the device.
    Audio,
    /// The event metadata stream.
    Metadata,
    /// µ-law audio to the device (ONVIF back channel).
    Backchannel,
}

impl TrackKind {
    /// The RTP clock rate.
    pub fn clock_rate(self) -> u32 {
        match self {
            TrackKind::Video(_) | TrackKind::Metadata => 90_000,
            TrackKind::Audio | TrackKind::Backchannel => 8_000,
        }
    }
}

/// The tracks a URL asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    /// Video, with its format, unless `video=0`.
    pub video: Option<VideoFormat>,
    /// Audio from the device unless `audio=0`.
    pub audio: bool,
    /// The event metadata when `event=on`.
    pub events: bool,
}

impl StreamSpec {
    /// Reads a stream URL's query; an error says which parameter is wrong and why.
    pub fn from_query(query: &str) -> Result<StreamSpec, String> {
        let mut spec = StreamSpec { video: Some(VideoFormat::DEFAULT), audio: true, events: false };
        let mut format = VideoFormat::DEFAULT;
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let switch = || match value.as_ref() {
                "1" | "on" | "yes" => Ok(true),
                "0" | "off" | "no" => Ok(false),
                other => Err(format!("{key}={other} is not 0 or 1")),
            };
            match key.as_ref() {
                "video" => spec.video = switch()?.then_some(format),
                "audio" => spec.audio = switch()?,
                "event" => spec.events = switch()?,
                "videocodec" => {
                    format.codec = match value.to_ascii_lowercase().as_str() {
                        "h264" => VideoCodec::H264,
                        "jpeg" | "mjpeg" => VideoCodec::Jpeg,
                        other => return Err(format!("videocodec={other} is not served; use h264 or jpeg")),
                    }
                }
                "resolution" => (format.width, format.height) = resolution(&value)?,
                "fps" => format.fps = fps(&value)?,
                _ => {}
            }
        }
        if format.codec == VideoCodec::Jpeg && (!format.width.is_multiple_of(8) || !format.height.is_multiple_of(8)) {
            return Err(format!(
                "resolution={}x{} does not suit videocodec=jpeg: both sides must be multiples of 8",
                format.width, format.height
            ));
        }
        spec.video = spec.video.map(|_| format);
        if spec.video.is_none() && !spec.audio && !spec.events {
            return Err("the URL turns every stream off (video=0, audio=0, no event=on)".to_owned());
        }
        Ok(spec)
    }

    /// The tracks in their order (numbered from 1), with the back channel last when asked for.
    pub fn tracks(&self, backchannel: bool) -> Vec<TrackKind> {
        let mut tracks: Vec<TrackKind> = self.video.map(TrackKind::Video).into_iter().collect();
        if self.audio {
            tracks.push(TrackKind::Audio);
        }
        if self.events {
            tracks.push(TrackKind::Metadata);
        }
        if backchannel {
            tracks.push(TrackKind::Backchannel);
        }
        tracks
    }
}

fn resolution(value: &str) -> Result<(u16, u16), String> {
    let parsed = value.split_once(['x', 'X']).and_then(|(w, h)| Some((w.parse::<u16>().ok()?, h.parse::<u16>().ok()?)));
    match parsed {
        Some((w, h))
            if (MIN_SIZE.0..=MAX_SIZE.0).contains(&w)
                && (MIN_SIZE.1..=MAX_SIZE.1).contains(&h)
                && w % 2 == 0
                && h % 2 == 0 =>
        {
            Ok((w, h))
        }
        _ => Err(format!(
            "resolution={value} is not WIDTHxHEIGHT with even sides from {}x{} to {}x{}",
            MIN_SIZE.0, MIN_SIZE.1, MAX_SIZE.0, MAX_SIZE.1
        )),
    }
}

fn fps(value: &str) -> Result<u8, String> {
    match value.parse::<u8>() {
        // Axis reads 0 as "as fast as the camera goes".
        Ok(0) => Ok(VideoFormat::DEFAULT.fps),
        Ok(n) if n <= MAX_FPS => Ok(n),
        _ => Err(format!("fps={value} is not a frame rate from 1 to {MAX_FPS}")),
    }
}

/// The SDP of a session: `tracks` under `base` (the stream URL without query), `query` kept on
/// every control URL, the host the origin line shows, and the H.264 `(sprop-parameter-sets,
/// profile-level-id)` when there is video.
pub fn sdp(host: &str, base: &str, query: &str, tracks: &[TrackKind], h264: Option<&(String, String)>) -> String {
    let mut sdp = format!(
        "v=0\r\no=- 1 1 IN IP4 {host}\r\ns=Session streamed with doorsim\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n\
         a=control:*\r\na=range:npt=0.000000-\r\n"
    );
    let query = if query.is_empty() { String::new() } else { format!("?{query}") };
    for (i, track) in tracks.iter().enumerate() {
        let media = match track {
            TrackKind::Video(format) => {
                let coding = match (format.codec, h264) {
                    (VideoCodec::H264, Some((sprop, profile))) => format!(
                        "a=rtpmap:{H264_PAYLOAD_TYPE} H264/90000\r\na=fmtp:{H264_PAYLOAD_TYPE} packetization-mode=1;\
                         profile-level-id={profile};sprop-parameter-sets={sprop}\r\n"
                    ),
                    (VideoCodec::H264, None) => format!("a=rtpmap:{H264_PAYLOAD_TYPE} H264/90000\r\n"),
                    (VideoCodec::Jpeg, _) => format!("a=rtpmap:{} JPEG/90000\r\n", jpeg::PAYLOAD_TYPE),
                };
                let pt = video_payload_type(format.codec);
                format!(
                    "m=video 0 RTP/AVP {pt}\r\nb=AS:1000\r\na=framerate:{}\r\na=framesize:{pt} {}-{}\r\n{coding}",
                    format.fps, format.width, format.height
                )
            }
            TrackKind::Audio => format!("m=audio 0 RTP/AVP {PCMU_PAYLOAD_TYPE}\r\na=rtpmap:0 PCMU/8000\r\n"),
            TrackKind::Metadata => format!(
                "m=application 0 RTP/AVP {METADATA_PAYLOAD_TYPE}\r\na=rtpmap:{METADATA_PAYLOAD_TYPE} vnd.onvif.metadata/90000\r\n"
            ),
            // ONVIF marks the back channel `sendonly`: the client sends on it.
            TrackKind::Backchannel => format!("m=audio 0 RTP/AVP {PCMU_PAYLOAD_TYPE}\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\n"),
        };
        sdp.push_str(&media);
        sdp.push_str(&format!("a=control:{base}/trackID={}{query}\r\n", i + 1));
    }
    sdp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_h264_640x480_at_15_fps_with_audio() {
        let spec = StreamSpec::from_query("").expect("valid");
        assert_eq!(spec.video, Some(VideoFormat::DEFAULT));
        assert!(spec.audio && !spec.events);
        assert_eq!(spec.tracks(false), vec![TrackKind::Video(VideoFormat::DEFAULT), TrackKind::Audio]);
    }

    #[test]
    fn parameters_shape_the_tracks() {
        let spec = StreamSpec::from_query("videocodec=h264&resolution=320x240&fps=10&audio=0&event=on").expect("valid");
        let format = VideoFormat { width: 320, height: 240, fps: 10, codec: VideoCodec::H264 };
        assert_eq!(spec.tracks(true), vec![TrackKind::Video(format), TrackKind::Metadata, TrackKind::Backchannel]);
        let events = StreamSpec::from_query("video=0&audio=0&event=on").expect("valid");
        assert_eq!(events.tracks(false), vec![TrackKind::Metadata]);
        assert_eq!(StreamSpec::from_query("fps=0").expect("valid").video.map(|v| v.fps), Some(15));
        assert!(StreamSpec::from_query("compression=30&camera=1").is_ok(), "other Axis parameters are ignored");
    }

    #[test]
    fn bad_parameters_are_refused_with_their_name() {
        let jpeg = StreamSpec::from_query("videocodec=jpeg&resolution=320x240").expect("valid");
        assert_eq!(jpeg.video.map(|v| v.codec), Some(VideoCodec::Jpeg));
        for bad in
            ["videocodec=mpeg4", "resolution=641x480", "resolution=big", "resolution=4000x3000", "fps=60", "audio=2"]
        {
            let e = StreamSpec::from_query(bad).expect_err(bad);
            assert!(e.contains(bad.split('=').next().unwrap_or_default()), "{bad}: {e}");
        }
        assert!(StreamSpec::from_query("video=0&audio=0").is_err());
        assert!(StreamSpec::from_query("videocodec=jpeg&resolution=324x240").is_err(), "JPEG sides are multiples of 8");
    }

    #[test]
    fn the_sdp_numbers_tracks_and_carries_the_parameter_sets() {
        let tracks = [TrackKind::Video(VideoFormat::DEFAULT), TrackKind::Audio, TrackKind::Backchannel];
        let sets = ("Z0LAHg==,aM4G4g==".to_owned(), "42C01E".to_owned());
        let sdp = sdp("10.0.0.5", "rtsp://10.0.0.5/axis-media/media.amp", "audio=1", &tracks, Some(&sets));
        assert!(sdp.contains("m=video 0 RTP/AVP 96\r\n"), "{sdp}");
        assert!(sdp.contains("sprop-parameter-sets=Z0LAHg==,aM4G4g=="), "{sdp}");
        assert!(sdp.contains("profile-level-id=42C01E"), "{sdp}");
        assert!(sdp.contains("a=control:rtsp://10.0.0.5/axis-media/media.amp/trackID=2?audio=1\r\n"), "{sdp}");
        assert!(
            sdp.contains("a=sendonly\r\na=control:rtsp://10.0.0.5/axis-media/media.amp/trackID=3?audio=1"),
            "{sdp}"
        );
    }
}
