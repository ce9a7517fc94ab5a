//! Object identifiers: their format and how new ones are generated (DESIGN.md decision 3).

use super::error::{ModelError, ModelResult};

/// Longest stored id, as the spec's `maxLength=64`.
pub const MAX_ID_LEN: usize = 64;

/// The kinds of stored objects, each with its generated-id prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// `sip_account_N`
    SipAccount,
    /// `dtmf_config_N`
    DtmfConfiguration,
    /// `dtmf_event_N`
    DtmfEvent,
    /// `dtmf_trigger_N`
    DtmfTrigger,
}

impl IdKind {
    fn prefix(self) -> &'static str {
        match self {
            IdKind::SipAccount => "sip_account_",
            IdKind::DtmfConfiguration => "dtmf_config_",
            IdKind::DtmfEvent => "dtmf_event_",
            IdKind::DtmfTrigger => "dtmf_trigger_",
        }
    }

    /// The lowest `prefixN` (N from 0) for which `taken` is false.
    pub fn generate(self, taken: impl Fn(&str) -> bool) -> String {
        (0u32..).map(|n| format!("{}{n}", self.prefix())).find(|id| !taken(id)).unwrap_or_default()
    }
}

/// Checks a stored id: 1..=64 characters of `[A-Za-z0-9_.-]`.
pub fn validate_id(id: &str, path: &str) -> ModelResult<()> {
    if id.is_empty() || id.len() > MAX_ID_LEN {
        return Err(ModelError::invalid(path, format!("an id has 1 to {MAX_ID_LEN} characters")));
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
        return Err(ModelError::invalid(path, "an id uses only A-Z, a-z, 0-9, '_', '.' and '-'"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_take_the_lowest_free_number() {
        let taken = ["sip_account_0", "sip_account_2"];
        assert_eq!(IdKind::SipAccount.generate(|id| taken.contains(&id)), "sip_account_1");
        assert_eq!(IdKind::DtmfEvent.generate(|_| false), "dtmf_event_0");
    }

    #[test]
    fn ids_are_checked_for_length_and_alphabet() {
        assert!(validate_id("peer-to-peer", "Id").is_ok());
        assert!(validate_id("a.b_c-9", "Id").is_ok());
        assert!(validate_id("", "Id").is_err());
        assert!(validate_id(&"x".repeat(65), "Id").is_err());
        assert!(validate_id("has space", "Id").is_err());
        assert!(validate_id("' OR 1=1 --", "Id").is_err());
    }
}
