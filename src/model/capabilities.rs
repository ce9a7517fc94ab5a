//! `ServiceCapabilities` (spec: "Service capabilities").

use serde::Serialize;

/// What this Call service implementation supports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceCapabilities {
    /// SIP operations.
    #[serde(rename = "SIP")]
    pub sip: bool,
    /// DTMF operations.
    #[serde(rename = "DTMF")]
    pub dtmf: bool,
    /// Audio codec priority list operations.
    pub audio_codec: bool,
    /// Media encryption settings.
    pub media_encryption: bool,
    /// Certificate operations (not emulated).
    pub certificate: bool,
    /// SIP account and configuration attributes.
    pub attribute: bool,
}

impl ServiceCapabilities {
    /// The capabilities of this emulator.
    pub fn emulated() -> Self {
        Self { sip: true, dtmf: true, audio_codec: true, media_encryption: true, certificate: false, attribute: true }
    }
}
