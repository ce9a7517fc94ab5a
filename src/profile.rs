//! Device profiles: the identity and I/O ports of an emulated model, from `fixtures/profiles/`.
//!
//! The built-in profiles are compiled into the binary, so `--profile A8105-E` works from any
//! directory; `--profile path/to/file.json` loads another one.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The built-in profiles by product number.
const BUILT_IN: [(&str, &str); 7] = [
    ("A8207-VE", include_str!("../fixtures/profiles/A8207-VE.json")),
    ("A8105-E", include_str!("../fixtures/profiles/A8105-E.json")),
    ("I8116-E", include_str!("../fixtures/profiles/I8116-E.json")),
    ("2N-IP-Verso", include_str!("../fixtures/profiles/2N-IP-Verso.json")),
    ("V1CGI-Panel", include_str!("../fixtures/profiles/V1CGI-Panel.json")),
    ("BAS-IP-AA-07", include_str!("../fixtures/profiles/BAS-IP-AA-07.json")),
    ("Suprema-BioStation-A2", include_str!("../fixtures/profiles/Suprema-BioStation-A2.json")),
];

/// Default profile.
pub const DEFAULT_PROFILE: &str = "A8207-VE";

/// Whose API a device serves: the profile's `Brand`. Every brand runs the same core (store,
/// SIP user agent, RTP, DTMF, events, `/emulator/v1/`); the brand picks the HTTP face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Brand {
    /// Axis: the Call service (`/vapix/call`) and the VAPIX endpoints around it.
    #[serde(rename = "AXIS", alias = "Axis")]
    Axis,
    /// 2N: `/api/phone/config`.
    #[serde(rename = "2N")]
    TwoN,
    /// BAS-IP (Android monitor API v0): `/api/v0/sip/settings`.
    #[serde(rename = "BAS-IP")]
    BasIp,
    /// A `v1.cgi` panel: `/api/v1.cgi/intercom/sip/config`.
    #[serde(rename = "V1CGI")]
    V1Cgi,
    /// Suprema (G-SDK VoIP over gRPC).
    #[serde(rename = "Suprema")]
    Suprema,
}

impl Brand {
    /// The brand as the vendor writes it (device information, `Brand` of a profile file).
    pub fn vendor_text(self) -> &'static str {
        match self {
            Brand::Axis => "AXIS",
            other => other.name(),
        }
    }

    /// The name `/emulator/v1/state` shows.
    pub fn name(self) -> &'static str {
        match self {
            Brand::Axis => "Axis",
            Brand::TwoN => "2N",
            Brand::BasIp => "BAS-IP",
            Brand::V1Cgi => "V1CGI",
            Brand::Suprema => "Suprema",
        }
    }
}

/// Direction of an I/O port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortDirection {
    /// A digital input.
    Input,
    /// A digital output (relay).
    Output,
}

/// One I/O port of the model. Ports are numbered by their place in the list, from 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortSpec {
    /// Port name as the device shows it.
    pub name: String,
    /// Input or output.
    pub direction: PortDirection,
}

/// The identity of an emulated device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Profile {
    /// e.g. `A8207-VE`.
    pub prod_nbr: String,
    /// e.g. `AXIS A8207-VE Network Video Door Station`.
    pub prod_full_name: String,
    /// e.g. `AXIS A8207-VE`.
    pub prod_short_name: String,
    /// e.g. `Network Video Door Station`.
    pub prod_type: String,
    /// Usually empty.
    pub prod_variant: String,
    /// Whose API the device serves (`AXIS`, `2N`, `BAS-IP`, `V1CGI`, `Suprema`).
    pub brand: Brand,
    /// Vendor web site.
    #[serde(rename = "WebURL")]
    pub web_url: String,
    /// Firmware version.
    pub version: String,
    /// Firmware build date, as `Mon DD YYYY HH:MM`.
    pub build_date: String,
    /// Firmware build number.
    pub build_number: String,
    /// Hardware id.
    #[serde(rename = "HardwareID")]
    pub hardware_id: String,
    /// CPU architecture.
    pub architecture: String,
    /// System on chip.
    pub soc: String,
    /// MAC address `AA:BB:CC:DD:EE:FF`.
    #[serde(rename = "MAC")]
    pub mac: String,
    /// Serial number; `null` derives it from the MAC, as Axis devices do.
    pub serial_number: Option<String>,
    /// The I/O ports.
    pub ports: Vec<PortSpec>,
    /// The device's id in its vendor's management API (Suprema's G-SDK `deviceID`).
    #[serde(default, rename = "DeviceID", skip_serializing_if = "Option::is_none")]
    pub device_id: Option<u32>,
    /// DTMF events bound to outputs from the start (like a pre-configured action rule).
    #[serde(default, rename = "DtmfActions")]
    pub dtmf_actions: Vec<DtmfAction>,
}

/// Why a profile could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    /// Neither a built-in name nor a file.
    #[error("no profile {0:?}: use one of {1} or a path to a JSON file")]
    Unknown(String, String),
    /// The file could not be read.
    #[error("cannot read profile {0}: {1}")]
    Read(String, String),
    /// Not a valid profile.
    #[error("profile {0} is not valid: {1}")]
    Invalid(String, String),
}

impl Profile {
    /// Loads a built-in profile by name, or a JSON file by path.
    pub fn load(name_or_path: &str) -> Result<Profile, ProfileError> {
        let text = match BUILT_IN.iter().find(|(name, _)| name.eq_ignore_ascii_case(name_or_path)) {
            Some((_, text)) => (*text).to_owned(),
            None if Path::new(name_or_path).is_file() => std::fs::read_to_string(name_or_path)
                .map_err(|e| ProfileError::Read(name_or_path.to_owned(), e.to_string()))?,
            None => {
                let names = BUILT_IN.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
                return Err(ProfileError::Unknown(name_or_path.to_owned(), names));
            }
        };
        let mut profile: Profile =
            serde_json::from_str(&text).map_err(|e| ProfileError::Invalid(name_or_path.to_owned(), e.to_string()))?;
        if profile.serial_number.is_none() {
            profile.serial_number = Some(profile.mac.replace([':', '-'], "").to_ascii_uppercase());
        }
        Ok(profile)
    }

    /// This profile as device `index` of a fleet: its MAC address is the profile's plus `index`
    /// in the lower three bytes (the vendor part stays), and the serial number follows the MAC.
    pub fn member(&self, index: usize) -> Profile {
        let bytes: Vec<u8> =
            self.mac.split([':', '-']).filter_map(|b| u8::from_str_radix(b, 16).ok()).collect::<Vec<_>>();
        let mut profile = self.clone();
        if let [a, b, c, d, e, f] = bytes[..] {
            let low = (u32::from_be_bytes([0, d, e, f]).wrapping_add(index as u32)) & 0x00ff_ffff;
            let [_, d, e, f] = low.to_be_bytes();
            profile.mac = format!("{a:02X}:{b:02X}:{c:02X}:{d:02X}:{e:02X}:{f:02X}");
            profile.serial_number = Some(profile.mac.replace(':', ""));
        }
        profile.device_id = self.device_id.map(|id| id.wrapping_add(index as u32));
        profile
    }

    /// The serial number (set by [`Profile::load`]).
    pub fn serial(&self) -> &str {
        self.serial_number.as_deref().unwrap_or_default()
    }
}

/// A door action a profile (or the control API) binds: a DTMF event activates an output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DtmfAction {
    /// The DTMF event that fires it.
    #[serde(rename = "DTMFEventId")]
    pub dtmf_event_id: String,
    /// The output port to activate (index from 0, as portmanagement numbers them).
    #[serde(deserialize_with = "whole_number")]
    pub port: usize,
    /// For how long, in seconds.
    pub seconds: f64,
}

/// A non-negative whole number, also written as a JSON float (`109.0` is the integer 109 to
/// JSON Schema, and to the clients it generates).
fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = f64::deserialize(d)?;
    if n.fract() != 0.0 || !(0.0..=u32::MAX as f64).contains(&n) {
        return Err(serde::de::Error::custom(format!("{n} is not a port index")));
    }
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_profiles_load_with_serials_from_their_mac() {
        for (name, _) in BUILT_IN {
            let p = Profile::load(name).expect(name);
            assert_eq!(p.prod_nbr, name);
            assert_eq!(p.serial().len(), 12, "{name}");
            assert!(p.ports.iter().any(|port| port.direction == PortDirection::Input), "{name}");
        }
        assert_eq!(Profile::load("a8207-ve").expect("case-insensitive").serial(), "ACCC8E7A0B01");
        assert!(Profile::load("X1234").is_err());
    }

    #[test]
    fn fleet_members_get_their_own_mac_and_serial() {
        let p = Profile::load(DEFAULT_PROFILE).expect("built in");
        let (first, next) = (p.member(0), p.member(1));
        assert_ne!(first.serial(), next.serial());
        assert_eq!(first.mac[..8], next.mac[..8], "the vendor part stays");
        assert_eq!(next.serial(), next.mac.replace(':', ""));
        let serials: std::collections::HashSet<String> = (0..1000).map(|i| p.member(i).serial().to_owned()).collect();
        assert_eq!(serials.len(), 1000, "a thousand devices, a thousand serials");
    }
}
