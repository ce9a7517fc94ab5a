//! H.264 of the test pattern by OpenH264 (Cisco's encoder, built from source by the `openh264`
//! crate): constrained baseline, one slice a picture, an IDR picture (with SPS and PPS before
//! it) every two seconds, no skipped pictures.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};

use base64::Engine as _;
use openh264::encoder::{
    Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, QpRange, RateControlMode, UsageType,
};
use openh264::formats::YUVSlices;
use openh264::{OpenH264API, Timestamp};

use super::pattern::Picture;
use super::VideoFormat;

/// NAL unit type of a sequence parameter set.
const NAL_SPS: u8 = 7;
/// NAL unit type of a picture parameter set.
const NAL_PPS: u8 = 8;

/// The NAL units of one encoded picture, without start codes.
#[derive(Debug, Clone, Default)]
pub struct AccessUnit {
    /// In decoding order.
    pub nals: Vec<Vec<u8>>,
    /// Whether it is an IDR picture (a decoder can start here).
    pub keyframe: bool,
}

/// One stream's encoder.
pub struct H264Encoder {
    encoder: Encoder,
    format: VideoFormat,
}

impl std::fmt::Debug for H264Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Encoder").field("format", &self.format).finish_non_exhaustive()
    }
}

impl H264Encoder {
    /// An encoder for `format`.
    pub fn new(format: VideoFormat) -> Result<Self, String> {
        let config = EncoderConfig::new()
            .usage_type(UsageType::CameraVideoRealTime)
            // A fixed quantizer: rate control would need skipped pictures, and a generated
            // picture needs no bit budget.
            .rate_control_mode(RateControlMode::Off)
            .qp(QpRange::new(24, 32))
            .max_frame_rate(FrameRate::from_hz(f32::from(format.fps)))
            .skip_frames(false)
            .intra_frame_period(IntraFramePeriod::from_num_frames(2 * u32::from(format.fps)))
            .num_threads(1);
        let encoder = Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| format!("OpenH264 refused its configuration: {e}"))?;
        Ok(Self { encoder, format })
    }

    /// Encodes `picture` (of this encoder's size), shown `at_ms` after the stream began.
    pub fn encode(&mut self, picture: &Picture, at_ms: u64) -> Result<AccessUnit, String> {
        let (w, h) = (usize::from(self.format.width), usize::from(self.format.height));
        if (picture.width, picture.height) != (w, h) {
            return Err(format!("picture is {}x{}, the stream {w}x{h}", picture.width, picture.height));
        }
        let yuv = YUVSlices::new((&picture.y, &picture.u, &picture.v), (w, h), (w, w / 2, w / 2));
        let stream = self.encoder.encode_at(&yuv, Timestamp::from_millis(at_ms)).map_err(|e| e.to_string())?;
        let keyframe = matches!(stream.frame_type(), FrameType::IDR);
        let mut nals = Vec::new();
        for layer in (0..stream.num_layers()).filter_map(|i| stream.layer(i)) {
            for nal in (0..layer.nal_count()).filter_map(|i| layer.nal_unit(i)) {
                let body = strip_start_code(nal);
                if !body.is_empty() {
                    nals.push(body.to_vec());
                }
            }
        }
        Ok(AccessUnit { nals, keyframe })
    }
}

/// A NAL unit without its Annex B start code (`00 00 01` or `00 00 00 01`).
fn strip_start_code(nal: &[u8]) -> &[u8] {
    nal.strip_prefix(&[0, 0, 0, 1]).or_else(|| nal.strip_prefix(&[0, 0, 1])).unwrap_or(nal)
}

/// Formats whose parameter sets are remembered; a client asking for more distinct sizes and
/// rates than this gets them encoded afresh.
const REMEMBERED_FORMATS: usize = 64;

/// What an SDP says of a stream (RFC 6184 section 8.1): `sprop-parameter-sets` (SPS and PPS in
/// base64) and `profile-level-id` (hex), taken from the first picture an encoder for `format`
/// makes (every stream of that format starts with the same sets, so each format's are made once).
pub fn parameter_sets(format: VideoFormat) -> Result<(String, String), String> {
    static REMEMBERED: LazyLock<Mutex<HashMap<VideoFormat, (String, String)>>> = LazyLock::new(Mutex::default);
    let remembered = || REMEMBERED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(sets) = remembered().get(&format).cloned() {
        return Ok(sets);
    }
    let sets = first_parameter_sets(format)?;
    let mut map = remembered();
    if map.len() < REMEMBERED_FORMATS {
        map.insert(format, sets.clone());
    }
    Ok(sets)
}

/// [`parameter_sets`] from a new encoder's first picture.
fn first_parameter_sets(format: VideoFormat) -> Result<(String, String), String> {
    let mut encoder = H264Encoder::new(format)?;
    let picture = Picture::test_pattern(usize::from(format.width), usize::from(format.height), 0, &[]);
    let unit = encoder.encode(&picture, 0)?;
    let find = |kind: u8| unit.nals.iter().find(|n| n.first().is_some_and(|b| b & 0x1F == kind));
    let (Some(sps), Some(pps)) = (find(NAL_SPS), find(NAL_PPS)) else {
        return Err("the encoder's first picture has no SPS and PPS".to_owned());
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    let profile_level_id = sps.get(1..4).map(|b| format!("{:02X}{:02X}{:02X}", b[0], b[1], b[2])).unwrap_or_default();
    Ok((format!("{},{}", b64.encode(sps), b64.encode(pps)), profile_level_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::VideoCodec;

    #[test]
    fn the_first_picture_is_an_idr_with_parameter_sets_and_idrs_recur_within_two_seconds() {
        let format = VideoFormat { width: 320, height: 240, fps: 10, codec: VideoCodec::H264 };
        let mut encoder = H264Encoder::new(format).expect("encoder");
        let mut keyframes = Vec::new();
        for n in 0..45u64 {
            let picture = Picture::test_pattern(320, 240, n, &[format!("frame {n}")]);
            let unit = encoder.encode(&picture, n * 100).expect("encoded");
            assert!(!unit.nals.is_empty(), "picture {n} produced no NAL unit");
            if unit.keyframe {
                keyframes.push(n);
                let types: Vec<u8> = unit.nals.iter().map(|n| n[0] & 0x1F).collect();
                assert!(types.contains(&NAL_SPS) && types.contains(&NAL_PPS) && types.contains(&5), "{types:?}");
            }
        }
        assert_eq!(keyframes.first(), Some(&0));
        assert!(keyframes.windows(2).all(|w| w[1] - w[0] <= 20), "an IDR at least every 2 s: {keyframes:?}");
        assert!(keyframes.len() >= 3, "{keyframes:?}");
        let (sprop, profile) = parameter_sets(format).expect("sets");
        assert_eq!(sprop.split(',').count(), 2, "{sprop}");
        assert_eq!(profile.len(), 6, "{profile}");
    }

    #[test]
    fn a_picture_of_another_size_is_refused() {
        let mut encoder = H264Encoder::new(VideoFormat { width: 320, height: 240, fps: 10, codec: VideoCodec::H264 })
            .expect("encoder");
        assert!(encoder.encode(&Picture::test_pattern(160, 120, 0, &[]), 0).is_err());
    }
}
