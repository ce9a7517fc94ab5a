//! The parameters of a Digest `Authorization` header (RFC 7616 section 3.4), read in place.
//!
//! `digest_auth`'s parser builds a map of owned strings for every header it reads. A VMS sends
//! Digest on every request of its keep-alive connections, so the device's hot path reads the
//! parameters borrowed from the header (RFC 7235 `auth-param` syntax: `token=token` or
//! `token="quoted string"`, comma separated) and copies a value only to unescape it.
//! `digest_auth` still computes the digests this path does not (`-sess`, `auth-int`).

use std::borrow::Cow;

/// The parameters the device checks; unknown ones are skipped.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct DigestParams<'a> {
    pub(super) username: Cow<'a, str>,
    pub(super) realm: Cow<'a, str>,
    pub(super) nonce: Cow<'a, str>,
    pub(super) uri: Cow<'a, str>,
    pub(super) response: Cow<'a, str>,
    pub(super) algorithm: Option<Cow<'a, str>>,
    pub(super) qop: Option<Cow<'a, str>>,
    /// The nonce count as sent (8 hex digits).
    pub(super) nc: Option<Cow<'a, str>>,
    pub(super) cnonce: Option<Cow<'a, str>>,
    pub(super) userhash: bool,
}

/// The parameters of `header` (what follows `Digest `); `None` when it is not a well-formed
/// parameter list or lacks one of `username`, `realm`, `nonce`, `uri` and `response`.
pub(super) fn parse(header: &str) -> Option<DigestParams<'_>> {
    const NAMES: [&str; 10] =
        ["username", "realm", "nonce", "uri", "response", "algorithm", "qop", "nc", "cnonce", "userhash"];
    let mut values: [Option<Cow<'_, str>>; 10] = Default::default();
    let mut rest = header;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        if rest.is_empty() {
            break;
        }
        let (name, after) = rest.split_once('=')?;
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return None;
        }
        let (value, after) = value(after.trim_start())?;
        rest = after;
        if let Some(known) = NAMES.iter().position(|n| name.eq_ignore_ascii_case(n)) {
            values[known] = Some(value);
        }
    }
    let [username, realm, nonce, uri, response, algorithm, qop, nc, cnonce, userhash] = values;
    Some(DigestParams {
        username: username?,
        realm: realm?,
        nonce: nonce?,
        uri: uri?,
        response: response?,
        algorithm,
        qop,
        nc,
        cnonce,
        userhash: userhash.is_some_and(|u| u.eq_ignore_ascii_case("true")),
    })
}

/// One value at the start of `text` (a quoted string or a token) and what follows it, up to
/// and without the next comma.
fn value(text: &str) -> Option<(Cow<'_, str>, &str)> {
    let Some(quoted) = text.strip_prefix('"') else {
        let end = text.find(',').unwrap_or(text.len());
        let token = text[..end].trim_end();
        return (!token.is_empty()).then_some((Cow::Borrowed(token), &text[end..]));
    };
    let bytes = quoted.as_bytes();
    let (mut i, mut escaped) = (0, false);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                escaped = true;
                i += 2; // the escaped byte is content, whatever it is
            }
            b'"' => {
                let raw = &quoted[..i];
                let after = quoted[i + 1..].trim_start();
                if !after.is_empty() && !after.starts_with(',') {
                    return None;
                }
                let value = if escaped { Cow::Owned(crate::quoted::unescape(raw)) } else { Cow::Borrowed(raw) };
                return Some((value, after));
            }
            _ => i += 1,
        }
    }
    None // no closing quote
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_curl_header_is_read_in_place() {
        let header = r#"username="root", realm="AXIS_X", nonce="6b.0.3a", uri="/vapix/call", qop=auth, nc=00000006, cnonce="53e6", response="77cb", algorithm=MD5"#;
        let p = parse(header).expect("parsed");
        assert_eq!((p.username.as_ref(), p.realm.as_ref(), p.nonce.as_ref()), ("root", "AXIS_X", "6b.0.3a"));
        assert_eq!((p.uri.as_ref(), p.response.as_ref()), ("/vapix/call", "77cb"));
        assert_eq!(p.qop.as_deref(), Some("auth"));
        assert_eq!(p.nc.as_deref(), Some("00000006"));
        assert_eq!(p.cnonce.as_deref(), Some("53e6"));
        assert_eq!(p.algorithm.as_deref(), Some("MD5"));
        assert!(!p.userhash);
        assert!(matches!(p.username, Cow::Borrowed(_)), "no copy without escapes");
    }

    #[test]
    fn escapes_case_and_spacing() {
        let header =
            r#"USERNAME = "ro\"ot" ,Realm="r",nonce="n",uri="/x?a=\"b\"",response="x",opaque="o, p",userhash=TRUE"#;
        let p = parse(header).expect("parsed");
        assert_eq!(p.username, "ro\"ot");
        assert_eq!(p.uri, "/x?a=\"b\"");
        assert!(p.userhash);
    }

    #[test]
    fn malformed_or_incomplete_headers_are_refused() {
        for bad in [
            "",
            r#"username="root""#,
            r#"username="root, realm="r", nonce="n", uri="/", response="x""#,
            r#"username="root" realm="r", nonce="n", uri="/", response="x""#,
            r#"username="root", realm="r", nonce="n", uri="/", response="x", ="y""#,
            r#"username="root", realm="r", nonce="n", uri="/", response=, x=1"#,
            r#"username="root", realm="r", nonce="n", uri="/", response="x\"#,
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
