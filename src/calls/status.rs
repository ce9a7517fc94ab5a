//! `CallStatus` and its enums (spec: "Call status"), and call ids (DESIGN.md decision 4).

use std::time::{SystemTime, UNIX_EPOCH};

use rand::distributions::{Distribution, Uniform};
use serde::Serialize;

/// Overall state of a call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub enum CallState {
    /// No call (only used for the device's aggregate state).
    #[default]
    Idle,
    /// Initiated, not answered.
    Calling,
    /// Answered.
    Active,
    /// Being ended.
    Terminating,
    /// Ended.
    Terminated,
}

/// Why a call changed state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Reason {
    /// Idle -> Calling.
    Initiated,
    /// Idle -> Terminated: an incoming call was refused.
    Denied,
    /// Calling -> Terminated: not answered in time.
    NoAnswer,
    /// Calling -> Terminated: busy.
    Busy,
    /// Calling -> Terminated: any other failure.
    Failed,
    /// Calling -> Active: the remote side answered.
    AcceptedByRemote,
    /// Calling -> Active: the device answered.
    AcceptedByDevice,
    /// Active -> Terminated, or a call ended by TerminateCall.
    Terminated,
}

impl Reason {
    /// The reason as the event data writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Initiated => "Initiated",
            Reason::Denied => "Denied",
            Reason::NoAnswer => "NoAnswer",
            Reason::Busy => "Busy",
            Reason::Failed => "Failed",
            Reason::AcceptedByRemote => "AcceptedByRemote",
            Reason::AcceptedByDevice => "AcceptedByDevice",
            Reason::Terminated => "Terminated",
        }
    }
}

impl CallState {
    /// How many states there are (`state as usize` is below it).
    pub const COUNT: usize = 5;

    /// Idle < Calling < Active, for the device's aggregate state.
    pub fn rank(self) -> u8 {
        match self {
            CallState::Idle | CallState::Terminated => 0,
            CallState::Calling | CallState::Terminating => 1,
            CallState::Active => 2,
        }
    }

    /// The state as the event data writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Idle => "Idle",
            CallState::Calling => "Calling",
            CallState::Active => "Active",
            CallState::Terminating => "Terminating",
            CallState::Terminated => "Terminated",
        }
    }
}

/// Direction of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Direction {
    /// From the device.
    Outgoing,
    /// To the device.
    Incoming,
}

/// Kind of call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CallType {
    /// A SIP call.
    #[serde(rename = "SIP")]
    Sip,
    /// A simulated call driven by VAPIX media streams.
    #[serde(rename = "VMS")]
    Vms,
}

/// The runtime status of one call, as GetCallStatus returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallStatus {
    /// Call identifier.
    #[serde(rename = "CallId")]
    pub call_id: String,
    /// Media source (video channel) of the call.
    #[serde(rename = "Source")]
    pub source: String,
    /// State.
    #[serde(rename = "CallState")]
    pub call_state: CallState,
    /// Why it is in that state.
    #[serde(rename = "CallStateReason")]
    pub call_state_reason: Reason,
    /// When the call started (RFC 3339, UTC).
    #[serde(rename = "StartTime")]
    pub start_time: String,
    /// Direction.
    #[serde(rename = "Direction")]
    pub direction: Direction,
    /// The device's address.
    #[serde(rename = "DeviceURI")]
    pub device_uri: String,
    /// The remote address (`VMS_CALL` for VMS calls).
    #[serde(rename = "RemoteURI")]
    pub remote_uri: String,
    /// SIP or VMS.
    #[serde(rename = "CallType")]
    pub call_type: CallType,
    /// When the call ended; only for terminated calls.
    #[serde(rename = "StopTime", skip_serializing_if = "Option::is_none")]
    pub stop_time: Option<String>,
    /// Audio codec in use.
    #[serde(rename = "AudioCodec", skip_serializing_if = "Option::is_none")]
    pub audio_codec: Option<String>,
    /// Video codec in use.
    #[serde(rename = "VideoCodec", skip_serializing_if = "Option::is_none")]
    pub video_codec: Option<String>,
    /// The SIP account of a SIP call.
    #[serde(rename = "SIPAccountId", skip_serializing_if = "Option::is_none")]
    pub sip_account_id: Option<String>,
}

/// Now as RFC 3339 UTC with milliseconds.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// A new call id: `Out-<n>-<epoch.micro>-<22 random [A-Za-z0-9_-]>` (or `In-...`), at most 64
/// characters.
pub fn new_call_id(direction: Direction, n: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let pick = Uniform::from(0..ALPHABET.len());
    let mut rng = rand::thread_rng();
    let random: String = (0..22).map(|_| ALPHABET[pick.sample(&mut rng)] as char).collect();
    let prefix = match direction {
        Direction::Outgoing => "Out",
        Direction::Incoming => "In",
    };
    format!("{prefix}-{n}-{}.{:06}-{random}", now.as_secs(), now.subsec_micros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_have_the_device_shape() {
        let id = new_call_id(Direction::Outgoing, 0);
        let parts: Vec<&str> = id.splitn(4, '-').collect();
        assert_eq!(parts[0], "Out");
        assert_eq!(parts[1], "0");
        assert!(parts[2].contains('.'));
        assert_eq!(parts[3].len(), 22);
        assert!(id.len() <= 64);
        assert!(new_call_id(Direction::Incoming, 12345).starts_with("In-12345-"));
        assert_ne!(new_call_id(Direction::Outgoing, 1), new_call_id(Direction::Outgoing, 1));
    }

    #[test]
    fn times_are_rfc3339_utc_with_millis() {
        let t = now_rfc3339();
        assert!(t.ends_with('Z') && t.len() == 24, "{t}");
    }
}
