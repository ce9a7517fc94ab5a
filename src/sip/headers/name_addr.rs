//! name-addr and addr-spec values with header parameters (RFC 3261 sections 20.10, 20.20,
//! 20.39): From, To, Contact, Route and Record-Route. Always printed in the `<uri>` form, which
//! keeps URI parameters apart from header parameters.

use std::fmt;

use super::params::split_outside_quotes;
use super::{malformed, HeaderError, Params, Uri};

/// One From, To, Contact or Route value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// The display name, unquoted.
    pub display: Option<String>,
    /// The URI.
    pub uri: Uri,
    /// Header parameters (`tag`, `expires`, `q`).
    pub params: Params,
}

impl NameAddr {
    /// `<uri>` with no display name or parameters.
    pub fn new(uri: Uri) -> NameAddr {
        NameAddr { display: None, uri, params: Params::default() }
    }

    /// Reads one value.
    pub fn parse(text: &str) -> Result<NameAddr, HeaderError> {
        let text = text.trim();
        if let Some(open) = find_unquoted(text, '<') {
            let close = text[open..].find('>').map(|c| c + open).ok_or(malformed("name-addr", "unclosed <"))?;
            let display = text[..open].trim();
            let token = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric() || " -.!%*_+`'~".contains(c));
            let display = if display.is_empty() {
                None
            } else if let Some(inner) = display.strip_prefix('"') {
                let inner = inner.strip_suffix('"').ok_or(malformed("name-addr", "unclosed quote"))?;
                Some(crate::quoted::unescape(inner))
            } else if token(display) {
                Some(display.to_owned())
            } else {
                return Err(malformed("name-addr", "bad display name"));
            };
            // White space may precede the ">" (RFC 4475 3.1.1.6) but not follow the "<" (3.1.2.7).
            let inside = &text[open + 1..close];
            if inside.starts_with(char::is_whitespace) {
                return Err(malformed("name-addr", "space after <"));
            }
            let uri = Uri::parse(inside)?;
            let rest = text[close + 1..].trim_start();
            let params = match rest.strip_prefix(';') {
                Some(p) => Params::parse(p),
                None if rest.is_empty() => Params::default(),
                None => return Err(malformed("name-addr", "text after >")),
            };
            return Ok(NameAddr { display, uri, params });
        }
        // addr-spec: parameters after the URI belong to the header (RFC 3261 section 20).
        let (uri, params) = match text.split_once(';') {
            Some((u, p)) => (u, Params::parse(p)),
            None => (text, Params::default()),
        };
        if uri.contains(['?', '"']) {
            return Err(malformed("name-addr", "a URI with headers or a quoted name needs <>"));
        }
        Ok(NameAddr { display: None, uri: Uri::parse(uri)?, params })
    }

    /// Reads a comma-separated list (Route, Record-Route, Contact).
    pub fn parse_list(text: &str) -> Result<Vec<NameAddr>, HeaderError> {
        split_outside_quotes(text, ',').into_iter().filter(|v| !v.trim().is_empty()).map(NameAddr::parse).collect()
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").filter(|t| !t.is_empty())
    }

    /// This value with `tag` set.
    pub fn with_tag(mut self, tag: &str) -> NameAddr {
        self.params.set("tag", Some(tag));
        self
    }
}

fn find_unquoted(text: &str, wanted: char) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == wanted && !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

impl fmt::Display for NameAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(display) = &self.display {
            // A quoted string cannot carry CR or LF; escape quotes and backslashes.
            let clean: String = display.chars().filter(|c| !c.is_control()).collect();
            write!(f, "\"{}\" ", clean.replace('\\', "\\\\").replace('"', "\\\""))?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_print_round_trip() {
        for text in [
            "<sip:door@127.0.0.1:5060;transport=udp>",
            "\"Front door\" <sip:6001@pbx.local>;tag=a1b2",
            "\"Say \\\"hi\\\"\" <sips:[::1]:5061>;expires=60;q=0.5",
            "<sip:proxy.example.com;lr>",
            "<tel:+15551234>;tag=x",
        ] {
            let value = NameAddr::parse(text).expect("valid in the test");
            assert_eq!(value.to_string(), text);
            assert_eq!(NameAddr::parse(&value.to_string()).expect("valid in the test"), value);
        }
    }

    #[test]
    fn forms_are_read() {
        for ok in ["\"J. \\\"Rose\\\"\" <sip:a@b>", "Alice <sip:a@b;lr>", "sips:[::1]:5061", "<sip:a@b >"] {
            assert!(NameAddr::parse(ok).is_ok(), "{ok}");
        }
        let tag = |s: &str| NameAddr::parse(s).expect("valid in the test").tag().map(str::to_owned);
        assert_eq!(tag("\"A\" <sip:a@b;tag=no>;tag=yes").as_deref(), Some("yes"));
        assert_eq!(tag("<sip:a@b>"), None);
        let bare = NameAddr::parse("sip:alice@h;tag=9").expect("valid in the test");
        assert_eq!(bare.tag(), Some("9"));
        assert_eq!(bare.to_string(), "<sip:alice@h>;tag=9");
        let token = NameAddr::parse("Alice <sip:alice@h>").expect("valid in the test");
        assert_eq!(token.display.as_deref(), Some("Alice"));
        let quoted = NameAddr::parse("\"a, <b>\" <sip:x@h>").expect("valid in the test");
        assert_eq!(quoted.display.as_deref(), Some("a, <b>"));
        let list = NameAddr::parse_list("<sip:a@h;lr>, \"x,y\" <sip:b@h>").expect("valid in the test");
        assert_eq!(list.len(), 2);
        assert_eq!(NameAddr::new(Uri::parse("sip:h").expect("valid in the test")).with_tag("t").tag(), Some("t"));
        for bad in [
            "<sip:a@h",
            "\"x <sip:a@h>",
            "<sip:a@h> junk",
            "",
            "< sip:a@h>",
            "sip:a@h?Route=x",
            "Bob\"s <sip:a@h>",
            "<sip:a @h>",
            "nothing",
        ] {
            assert!(NameAddr::parse(bad).is_err(), "{bad}");
        }
    }
}
