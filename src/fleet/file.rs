//! Fleet files: a site described in JSON or TOML. Each entry names one device (`index`) or a
//! range (`range = "0-199"`), and may give its profile (any built-in name or a file), its
//! address (single devices only), and set-up requests in the Call service's own JSON, applied at
//! start, where `{index}` in any string becomes the device's index.
//!
//! Everything is checked while the file is read, set-up requests included (they run against a
//! scratch device), so a bad file is refused with the line and the reason before any device
//! starts.
//!
//! ```toml
//! [[devices]]
//! range = "0-199"
//! profile = "A8207-VE"
//! setup = [
//!   { "axcall:SetSIPConfiguration" = { SIPConfiguration = { SIPEnabled = true, SIPPort = 5060 } } },
//!   { "axcall:SetSIPAccount" = { SIPAccount = { UserId = "door{index}", Password = "secret", Registrar = "127.0.0.1:5070" } } },
//! ]
//! ```

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;

use crate::calls::{CallEngine, EngineConfig};
use crate::profile::Profile;
use crate::store::Store;
use crate::vapix::call_service::{CallService, RequestContext};

/// Most devices a file may describe.
pub const MAX_DEVICES: usize = 100_000;

/// Why a fleet file was refused.
#[derive(Debug, Error)]
pub enum FileError {
    /// It could not be read.
    #[error("cannot read {0}: {1}")]
    Read(String, std::io::Error),
    /// Its syntax or a value's type is wrong; the parser's message names the line.
    #[error("{0}")]
    Syntax(String),
    /// An entry is wrong: where it starts, and why.
    #[error("{0}: {1}")]
    Entry(String, EntryError),
    /// Two entries describe one device.
    #[error("{0}: device {1} is described twice")]
    Twice(String, usize),
    /// One of the above, in the named file.
    #[error("{0}: {1}")]
    In(String, Box<FileError>),
}

/// Why one entry was refused.
#[derive(Debug, Error)]
pub enum EntryError {
    /// Neither or both of `index` and `range`.
    #[error("each entry needs exactly one of `index` or `range`")]
    IndexOrRange,
    /// A range that is not `FIRST-LAST`.
    #[error("range {0:?} is not FIRST-LAST")]
    Range(String),
    /// A range that runs down or too far.
    #[error("range {0:?} must run upward and stay below {MAX_DEVICES}")]
    RangeBounds(String),
    /// An address on a range.
    #[error("`address` is for a single device (`index`), not a range")]
    AddressOnRange,
    /// An unknown or broken profile.
    #[error("{0}")]
    Profile(#[from] crate::profile::ProfileError),
    /// A set-up request that is not one `axcall:` request.
    #[error("setup[{0}] must be one {{\"axcall:Action\": {{...}}}} object")]
    SetupShape(usize),
    /// A set-up request the Call service refuses: its position, action, and fault.
    #[error("setup[{0}] {1}: {2}")]
    Setup(usize, String, String),
}

/// A parsed fleet file: the devices it describes, by index.
#[derive(Debug, Clone, Default)]
pub struct FleetFile {
    /// Index → what the file says of that device.
    pub devices: BTreeMap<usize, DeviceEntry>,
}

/// One device as the file describes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceEntry {
    /// The profile name or path, when given.
    pub profile: Option<String>,
    /// The address, when given.
    pub address: Option<Ipv4Addr>,
    /// Set-up requests with `{index}` already replaced.
    pub setup: Vec<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    devices: Vec<RawEntry>,
}

/// One entry, checked.
#[derive(Debug)]
struct Entry {
    indices: std::ops::RangeInclusive<usize>,
    profile: Option<String>,
    address: Option<Ipv4Addr>,
    setup: Vec<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    index: Option<usize>,
    range: Option<String>,
    profile: Option<String>,
    address: Option<Ipv4Addr>,
    #[serde(default)]
    setup: Vec<Value>,
}

impl TryFrom<RawEntry> for Entry {
    type Error = EntryError;

    fn try_from(raw: RawEntry) -> Result<Self, EntryError> {
        let indices = match (raw.index, &raw.range) {
            (Some(i), None) => i..=i,
            (None, Some(r)) => {
                let (a, b) = r.split_once('-').ok_or_else(|| EntryError::Range(r.clone()))?;
                let parse = |s: &str| s.trim().parse::<usize>().map_err(|_| EntryError::Range(r.clone()));
                let (a, b) = (parse(a)?, parse(b)?);
                if a > b || b >= MAX_DEVICES {
                    return Err(EntryError::RangeBounds(r.clone()));
                }
                a..=b
            }
            _ => return Err(EntryError::IndexOrRange),
        };
        if raw.address.is_some() && indices.start() != indices.end() {
            return Err(EntryError::AddressOnRange);
        }
        if let Some(name) = &raw.profile {
            Profile::load(name)?;
        }
        check_setup(&raw.setup, *indices.start())?;
        Ok(Entry { indices, profile: raw.profile, address: raw.address, setup: raw.setup })
    }
}

/// `setup` with `{index}` replaced in every string.
pub fn instantiate(setup: &[Value], index: usize) -> Vec<Value> {
    fn walk(v: &Value, index: &str) -> Value {
        match v {
            Value::String(s) => Value::String(s.replace("{index}", index)),
            Value::Array(a) => Value::Array(a.iter().map(|x| walk(x, index)).collect()),
            Value::Object(o) => Value::Object(o.iter().map(|(k, x)| (k.clone(), walk(x, index))).collect()),
            other => other.clone(),
        }
    }
    let index = index.to_string();
    setup.iter().map(|v| walk(v, &index)).collect()
}

/// Runs the set-up requests against a scratch device: each must be one `axcall:` request that
/// the Call service accepts.
fn check_setup(setup: &[Value], index: usize) -> Result<(), EntryError> {
    if setup.is_empty() {
        return Ok(());
    }
    let store = std::sync::Arc::new(Store::new());
    let shutdown = tokio_util::sync::CancellationToken::new();
    let engine = CallEngine::start(EngineConfig::default(), store.clone(), std::sync::Arc::default(), shutdown.clone());
    let service = CallService::new(store, engine);
    let ctx = RequestContext::at_host("127.0.0.1");
    let result = instantiate(setup, index).iter().enumerate().try_for_each(|(i, request)| {
        let (action, params) = request
            .as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.iter().next())
            .ok_or(EntryError::SetupShape(i))?;
        service.handle(action, params, crate::vapix::format::Format::Json, &ctx).map(drop).map_err(|fault| {
            let why = fault.msg.unwrap_or_else(|| fault.reason.to_owned());
            EntryError::Setup(i, action.clone(), format!("{} {}: {why}", fault.fault, fault.code))
        })
    });
    shutdown.cancel();
    result
}

impl FleetFile {
    /// Reads a fleet file: TOML when the name ends in `.toml`, JSON otherwise.
    pub fn load(path: &Path) -> Result<FleetFile, FileError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| FileError::Read(name.clone(), e))?;
        let toml = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("toml"));
        Self::parse(&text, toml).map_err(|e| FileError::In(name, Box::new(e)))
    }

    /// Reads fleet-file text (TOML or JSON).
    pub fn parse(text: &str, toml: bool) -> Result<FleetFile, FileError> {
        let raw: RawFile = if toml {
            toml::from_str(text).map_err(|e| FileError::Syntax(e.to_string()))?
        } else {
            serde_json::from_str(text).map_err(|e| FileError::Syntax(e.to_string()))?
        };
        let lines = entry_lines(text, toml);
        let mut devices = BTreeMap::new();
        for (k, raw) in raw.devices.into_iter().enumerate() {
            let at = lines.get(k).map_or_else(|| format!("devices[{k}]"), |l| format!("line {l} (devices[{k}])"));
            let entry = Entry::try_from(raw).map_err(|e| FileError::Entry(at.clone(), e))?;
            for index in entry.indices.clone() {
                let device = DeviceEntry {
                    profile: entry.profile.clone(),
                    address: entry.address,
                    setup: instantiate(&entry.setup, index),
                };
                if devices.insert(index, device).is_some() {
                    return Err(FileError::Twice(at, index));
                }
            }
        }
        Ok(FleetFile { devices })
    }
}

/// The line (from 1) where each entry of `devices` starts: each `[[devices]]` header in TOML,
/// each element of the top-level `"devices"` array in JSON. Only for messages; empty when the
/// shape is not found.
fn entry_lines(text: &str, toml: bool) -> Vec<usize> {
    let line_of = |offset: usize| text[..offset].matches('\n').count() + 1;
    if toml {
        let mut offset = 0;
        let mut lines = Vec::new();
        for line in text.split_inclusive('\n') {
            if line.trim() == "[[devices]]" {
                lines.push(line_of(offset));
            }
            offset += line.len();
        }
        return lines;
    }
    // JSON: walk the structure by depth, outside strings.
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    let (mut key_at_depth1, mut in_devices, mut expecting_element) = (String::new(), false, false);
    let mut string_start = 0;
    let mut lines = Vec::new();
    for (i, c) in text.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => {
                    in_string = false;
                    if depth == 1 {
                        key_at_depth1 = text[string_start..i].to_owned();
                    }
                }
                _ => {}
            }
            continue;
        }
        if in_devices && depth == 2 && expecting_element && !c.is_whitespace() {
            lines.push(line_of(i));
            expecting_element = false;
        }
        match c {
            '"' => {
                in_string = true;
                string_start = i + 1;
            }
            '{' | '[' => {
                depth += 1;
                if depth == 2 && c == '[' && key_at_depth1 == "devices" {
                    in_devices = true;
                    expecting_element = true;
                }
            }
            '}' | ']' => {
                if depth == 2 && in_devices {
                    in_devices = false;
                }
                depth = depth.saturating_sub(1);
            }
            ',' if in_devices && depth == 2 => expecting_element = true,
            _ => {}
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn json_and_toml_describe_the_same_site() {
        let json = r#"{"devices": [
            {"range": "0-2", "profile": "A8105-E",
             "setup": [{"axcall:SetSIPAccount": {"SIPAccount": {"UserId": "door{index}"}}}]},
            {"index": 3, "profile": "I8116-E", "address": "127.9.0.1"}
        ]}"#;
        let toml = r#"
            [[devices]]
            range = "0-2"
            profile = "A8105-E"
            setup = [ { "axcall:SetSIPAccount" = { SIPAccount = { UserId = "door{index}" } } } ]

            [[devices]]
            index = 3
            profile = "I8116-E"
            address = "127.9.0.1"
        "#;
        let (a, b) = (FleetFile::parse(json, false).expect("json"), FleetFile::parse(toml, true).expect("toml"));
        assert_eq!(a.devices, b.devices);
        assert_eq!(a.devices.len(), 4);
        assert_eq!(a.devices[&2].setup[0]["axcall:SetSIPAccount"]["SIPAccount"]["UserId"], "door2");
        assert_eq!(a.devices[&3].address, Some(Ipv4Addr::new(127, 9, 0, 1)));
    }

    #[tokio::test]
    async fn bad_files_name_the_line_and_the_reason() {
        let cases = [
            ("{\"devices\": [\n{\"index\": 0},\n{\"index\": 1, \"profile\": \"X999\"}\n]}", "line 3", "no profile"),
            ("{\"devices\": [\n{\"range\": \"5-1\"}\n]}", "line 2", "upward"),
            ("{\"devices\": [\n{\"index\": 0,\n \"setup\": [{\"axcall:SetSIPAccount\": {\"SIPAccount\": {\"UserId\": \"a b\"}}}]}\n]}", "line 2", "setup[0]"),
            ("{\"devices\": [{\"index\": 0}, {\"index\": 0}]}", "devices[1]", "twice"),
            ("{\"devices\": [\n  {\"range\": \"0-9\"},\n  {\"index\": 10,\n   \"setup\": [{\"axcall:SetSIPConfiguration\": {\"SIPConfiguration\": {\"SIPPort\": 0}}}]}\n]}", "line 3", "SIPPort"),
            ("{\"devices\": [\n{\"index\": 0, \"colour\": 1}]}", "line 2", "colour"),
            ("{\"devices\": [\n{\"range\": \"0-3\", \"address\": \"127.1.0.1\"}]}", "line 2", "single device"),
        ];
        for (text, line, reason) in cases {
            let why = FleetFile::parse(text, false).expect_err(text).to_string();
            assert!(why.contains(line) && why.contains(reason), "{why}");
        }
        let why = FleetFile::parse("[[devices]]\nindex = 0\n\n[[devices]]\nrange = \"x\"\n", true)
            .expect_err("toml")
            .to_string();
        assert_eq!(entry_lines("{\"x\": [1], \"devices\": [\n{\"a\": [1, 2]},\n\n {\"b\": \"],\"}\n]}", false), [2, 4]);
        assert!(why.contains("line 4") && why.contains("FIRST-LAST"), "{why}");
    }
}
