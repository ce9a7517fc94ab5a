//! Quoted strings as SIP and HTTP headers write them (RFC 3261 25.1, RFC 9110 5.6.4): below
//! both, so the SIP header parser and HTTP Digest share one reading of `\x` escapes.

/// A quoted string's content (without its quotes) with its `\x` escapes resolved.
pub fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' { chars.next().unwrap_or('\\') } else { c });
    }
    out
}
