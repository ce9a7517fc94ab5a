//! `DTMFEvent`, `DTMFTrigger` and `DTMFConfiguration` (spec: "DTMF configuration", "DTMF events",
//! "DTMF triggers"). Cross-object rules (unique sequences, references) live in the store.

use serde::Serialize;

use super::error::{ModelError, ModelResult};
use super::fields::Fields;
use super::ids::{validate_id, MAX_ID_LEN};

/// Longest DTMF sequence, as the spec's `maxLength=64`.
pub const MAX_SEQUENCE_LEN: usize = 64;

/// A named DTMF event that a trigger emits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DtmfEvent {
    /// Identifier.
    pub id: String,
    /// Name, used as nice name in event declarations.
    pub name: String,
}

/// Connects one DTMF sequence to one DTMF event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DtmfTrigger {
    /// Identifier.
    #[serde(rename = "Id")]
    pub id: String,
    /// Digits `0-9`, `A-D`, `*`, `#`.
    #[serde(rename = "DTMFSequence")]
    pub dtmf_sequence: String,
    /// The event emitted on a match.
    #[serde(rename = "DTMFEventId")]
    pub dtmf_event_id: String,
}

/// A set of triggers and the DTMF methods honoured, referenced by SIP accounts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DtmfConfiguration {
    /// Identifier.
    #[serde(rename = "Id")]
    pub id: String,
    /// Descriptive name.
    #[serde(rename = "Name")]
    pub name: String,
    /// The triggers in force.
    #[serde(rename = "DTMFTriggerId")]
    pub dtmf_trigger_id: Vec<String>,
    /// DTMF over RTP (RFC 2833/4733) honoured.
    #[serde(rename = "RFC2833")]
    pub rfc2833: bool,
    /// DTMF over SIP INFO (RFC 2976) honoured.
    #[serde(rename = "RFC2976")]
    pub rfc2976: bool,
}

/// Reads the optional `Id` field: empty or absent means "create".
fn read_id(f: &Fields<'_>) -> ModelResult<String> {
    let id = f.opt_text("Id")?.unwrap_or_default();
    if !id.is_empty() {
        validate_id(&id, &f.path_of("Id"))?;
    }
    Ok(id)
}

/// Reads a mandatory reference to another object's id.
fn read_ref(f: &Fields<'_>, name: &str) -> ModelResult<String> {
    let id = f.req_text(name)?;
    validate_id(&id, &f.path_of(name))?;
    Ok(id)
}

/// Checks a DTMF sequence: 1..=64 characters of `0-9`, `A-D`, `*`, `#`.
pub fn validate_sequence(seq: &str, path: &str) -> ModelResult<()> {
    if seq.is_empty() || seq.len() > MAX_SEQUENCE_LEN {
        return Err(ModelError::invalid(path, format!("a DTMF sequence has 1 to {MAX_SEQUENCE_LEN} digits")));
    }
    if let Some(c) = seq.chars().find(|c| !matches!(c, '0'..='9' | 'A'..='D' | '*' | '#')) {
        return Err(ModelError::invalid(path, format!("{c:?} is not a DTMF digit (0-9, A-D, *, #)")));
    }
    Ok(())
}

impl DtmfEvent {
    /// Reads an event; `Id` may be empty.
    pub fn read(f: &Fields<'_>) -> ModelResult<Self> {
        Ok(Self { id: read_id(f)?, name: f.req_free_text("Name")? })
    }
}

impl DtmfTrigger {
    /// Reads a trigger; `Id` may be empty.
    pub fn read(f: &Fields<'_>) -> ModelResult<Self> {
        let dtmf_sequence = f.req_text("DTMFSequence")?;
        validate_sequence(&dtmf_sequence, &f.path_of("DTMFSequence"))?;
        Ok(Self { id: read_id(f)?, dtmf_sequence, dtmf_event_id: read_ref(f, "DTMFEventId")? })
    }
}

impl DtmfConfiguration {
    /// Reads a configuration; `Id` may be empty.
    pub fn read(f: &Fields<'_>) -> ModelResult<Self> {
        let mut dtmf_trigger_id = Vec::new();
        for item in f.req_list("DTMFTriggerId")? {
            let id = f.item_text("DTMFTriggerId", item, MAX_ID_LEN)?;
            validate_id(&id, &f.path_of("DTMFTriggerId"))?;
            if dtmf_trigger_id.contains(&id) {
                return Err(ModelError::invalid(&f.path_of("DTMFTriggerId"), format!("{id} listed twice")));
            }
            dtmf_trigger_id.push(id);
        }
        Ok(Self {
            id: read_id(f)?,
            name: f.req_free_text("Name")?,
            dtmf_trigger_id,
            rfc2833: f.opt_bool("RFC2833")?.unwrap_or(true),
            rfc2976: f.opt_bool("RFC2976")?.unwrap_or(true),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sequences_use_the_dtmf_alphabet() {
        assert!(validate_sequence("#1234#", "s").is_ok());
        assert!(validate_sequence("*0ABCD9", "s").is_ok());
        assert!(validate_sequence("", "s").is_err());
        assert!(validate_sequence("12a", "s").is_err());
        assert!(validate_sequence("E", "s").is_err());
        assert!(validate_sequence(&"1".repeat(65), "s").is_err());
    }

    #[test]
    fn the_spec_dtmf_example_reads() {
        let v = json!({"DTMFSequence": "#1234#", "DTMFEventId": "dtmf_event_0"});
        let t = DtmfTrigger::read(&Fields::new(&v, "DTMFTrigger", false).expect("object")).expect("valid");
        assert_eq!(t.id, "");
        let v = json!({"Name": "OpenDoorDTMFConf", "DTMFTriggerId": ["dtmf_trigger_0"]});
        let c = DtmfConfiguration::read(&Fields::new(&v, "DTMFConfiguration", false).expect("object")).expect("valid");
        assert!(c.rfc2833 && c.rfc2976);
    }

    #[test]
    fn mandatory_fields_are_required() {
        let v = json!({"DTMFSequence": "1"});
        let f = Fields::new(&v, "DTMFTrigger", false).expect("object");
        assert_eq!(DtmfTrigger::read(&f), Err(ModelError::Missing("DTMFTrigger.DTMFEventId".into())));
        let v = json!({"Name": "x"});
        let f = Fields::new(&v, "C", false).expect("object");
        assert!(matches!(DtmfConfiguration::read(&f), Err(ModelError::Missing(_))));
    }
}
