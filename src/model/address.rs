//! Checks for the address-like text fields: hosts, SIP URIs and SIP user names.
//!
//! These are deliberately shallow: they refuse what can never be an address (spaces, markup,
//! quotes, control characters) without resolving or fully parsing anything.

use super::error::{ModelError, ModelResult};

/// Longest host name (RFC 1035), plus room for `[v6]:port` and a `sip:` prefix.
const MAX_HOST_LEN: usize = 270;

/// A host, optionally with `:port` and a `sip:`/`sips:` scheme: `example.com`, `10.0.0.1:5060`,
/// `[fd12::90]`, `sip:pbx.local`.
pub fn validate_host(value: &str, path: &str) -> ModelResult<()> {
    if value.len() > MAX_HOST_LEN {
        return Err(ModelError::invalid(path, "address too long"));
    }
    if !value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'[' | b']')) {
        return Err(ModelError::invalid(path, format!("{value:?} is not a host[:port] address")));
    }
    Ok(())
}

/// A SIP or SIPS URI: `sip:` or `sips:` followed by a user part and/or host without spaces.
pub fn validate_sip_uri(value: &str, path: &str) -> ModelResult<()> {
    let rest = value
        .strip_prefix("sip:")
        .or_else(|| value.strip_prefix("sips:"))
        .ok_or_else(|| ModelError::invalid(path, format!("{value:?} is not a sip: or sips: URI")))?;
    if rest.is_empty() || rest.len() > MAX_HOST_LEN + 64 {
        return Err(ModelError::invalid(path, "URI without a host, or too long"));
    }
    if rest.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control() || matches!(b, b'<' | b'>' | b'"')) {
        return Err(ModelError::invalid(path, format!("{value:?} contains characters a URI cannot hold")));
    }
    Ok(())
}

/// A SIP user part (`UserId`, `AuthenticationId`): 1..=64 characters, no separators a URI uses.
pub fn validate_sip_user(value: &str, path: &str) -> ModelResult<()> {
    if value.is_empty() || value.chars().count() > 64 {
        return Err(ModelError::invalid(path, "a SIP user has 1 to 64 characters"));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control() || matches!(c, '@' | ':' | '<' | '>' | '"' | ';')) {
        return Err(ModelError::invalid(path, format!("{value:?} cannot be the user part of a SIP URI")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for ok in ["192.168.0.1", "example.axis.com", "[fd12:3456:789a:1::90]", "pbx:5062", "sip:pbx.local"] {
            assert!(validate_host(ok, "h").is_ok(), "{ok}");
        }
        for bad in ["<script>", "a b", "' OR 1=1 --", "漢字"] {
            assert!(validate_host(bad, "h").is_err(), "{bad}");
        }
    }

    #[test]
    fn sip_uris_and_users() {
        assert!(validate_sip_uri("sip:6002@example.axis.com", "u").is_ok());
        assert!(validate_sip_uri("sips:[::1]:5061", "u").is_ok());
        assert!(validate_sip_uri("http://x", "u").is_err());
        assert!(validate_sip_uri("sip:", "u").is_err());
        assert!(validate_sip_user("6001", "u").is_ok());
        assert!(validate_sip_user("a@b", "u").is_err());
        assert!(validate_sip_user("", "u").is_err());
    }
}
