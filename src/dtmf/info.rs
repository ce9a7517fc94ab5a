//! DTMF in SIP INFO bodies (RFC 2976 transport): `application/dtmf-relay`
//! (`Signal=5\r\nDuration=160`) and `application/dtmf` (one character).

use thiserror::Error;

/// Why an INFO body carries no digit (the INFO then gets 400).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InfoError {
    /// Not UTF-8.
    #[error("the body is not text")]
    NotText,
    /// A dtmf-relay body without `Signal=`.
    #[error("no Signal= line")]
    NoSignal,
    /// Another content type.
    #[error("{0:?} is not a DTMF body type")]
    ContentType(String),
    /// Not one of 0-9, A-D, *, #.
    #[error("{0:?} is not a DTMF digit")]
    NotADigit(String),
}

/// The digit an INFO carries, or why the body is refused.
pub fn digit(content_type: &str, body: &[u8]) -> Result<char, InfoError> {
    let text = std::str::from_utf8(body).map_err(|_| InfoError::NotText)?;
    let kind = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    let raw = match kind.as_str() {
        "application/dtmf-relay" => text
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once('=')?;
                k.trim().eq_ignore_ascii_case("signal").then(|| v.trim().to_owned())
            })
            .ok_or(InfoError::NoSignal)?,
        "application/dtmf" => text.trim().to_owned(),
        other => return Err(InfoError::ContentType(other.to_owned())),
    };
    let mut chars = raw.chars();
    match (chars.next().map(|c| c.to_ascii_uppercase()), chars.next()) {
        (Some(c), None) if c.is_ascii_digit() || matches!(c, '*' | '#' | 'A'..='D') => Ok(c),
        // Some phones send the event number for * and #.
        _ if raw == "10" => Ok('*'),
        _ if raw == "11" => Ok('#'),
        _ => Err(InfoError::NotADigit(raw)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtmf_relay_and_plain_dtmf_bodies() {
        assert_eq!(digit("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n"), Ok('5'));
        assert_eq!(digit("Application/DTMF-Relay; charset=x", b"Signal= #\r\nDuration=100"), Ok('#'));
        assert_eq!(digit("application/dtmf-relay", b"Signal=11\r\n"), Ok('#'));
        assert_eq!(digit("application/dtmf", b"a"), Ok('A'));
        assert!(digit("application/dtmf-relay", b"Duration=160").is_err());
        assert!(digit("application/dtmf-relay", b"Signal=55").is_err());
        assert!(digit("application/sdp", b"v=0").is_err());
        assert!(digit("application/dtmf", &[0xFF]).is_err());
    }
}
