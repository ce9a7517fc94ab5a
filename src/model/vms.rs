//! `VMSCallConfiguration` (spec: "VMS call configuration"), with DESIGN.md decision 12's defaults.

use serde::Serialize;

use super::error::ModelResult;
use super::fields::Fields;

/// Thresholds are integers; 0 or below means "not used". Bounded to keep arithmetic trivial.
const THRESHOLD_RANGE: std::ops::RangeInclusive<i64> = -1_000_000..=1_000_000;

/// When VMS calls exist and when they count as active.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct VmsCallConfiguration {
    /// VMS calls on or off.
    pub enabled: bool,
    /// Threshold of audio streams from the device.
    pub audio_from_device_to_network_streams: i32,
    /// Threshold of audio streams to the device.
    pub audio_from_network_to_device_streams: i32,
    /// Threshold of video streams from the device.
    pub video_from_device_to_network_streams: i32,
    /// Seconds before an unanswered VMS call ends with NoAnswer.
    pub timeout: u32,
}

impl Default for VmsCallConfiguration {
    fn default() -> Self {
        Self {
            enabled: true,
            audio_from_device_to_network_streams: 0,
            audio_from_network_to_device_streams: 1,
            video_from_device_to_network_streams: 0,
            timeout: 30,
        }
    }
}

impl VmsCallConfiguration {
    /// Reads a whole configuration. `Timeout` (API 1.5) may be absent and then keeps 30 s.
    pub fn read(f: &Fields<'_>) -> ModelResult<Self> {
        let threshold = |name: &str| -> ModelResult<i32> { Ok(f.req_int(name, THRESHOLD_RANGE)? as i32) };
        Ok(Self {
            enabled: f.req_bool("Enabled")?,
            audio_from_device_to_network_streams: threshold("AudioFromDeviceToNetworkStreams")?,
            audio_from_network_to_device_streams: threshold("AudioFromNetworkToDeviceStreams")?,
            video_from_device_to_network_streams: threshold("VideoFromDeviceToNetworkStreams")?,
            timeout: f.opt_int("Timeout", 1..=3600)?.map_or(30, |t| t as u32),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ModelError;
    use serde_json::json;

    #[test]
    fn reads_and_checks() {
        let v = json!({"Enabled": false, "AudioFromDeviceToNetworkStreams": 1,
            "AudioFromNetworkToDeviceStreams": -1, "VideoFromDeviceToNetworkStreams": 0});
        let c = VmsCallConfiguration::read(&Fields::new(&v, "V", false).expect("object")).expect("valid");
        assert!(!c.enabled);
        assert_eq!(c.timeout, 30);
        let v = json!({"Enabled": true});
        assert!(matches!(
            VmsCallConfiguration::read(&Fields::new(&v, "V", false).expect("object")),
            Err(ModelError::Missing(_))
        ));
    }
}
