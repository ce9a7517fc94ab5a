//! SIP messages (RFC 3261 section 7), sans I/O: parsing with compact header forms, folded lines
//! and comma-joined values; framing by Content-Length for stream transports; serializing.
//!
//! Written here rather than taken from `rsip` 0.4: that crate ignores Content-Length and has
//! gaps with compact forms, folded and comma-joined headers (see LAB.md), which are exactly the
//! parts a UA facing real peers and the RFC 4475 torture messages must get right. The model is
//! deliberately thin: a start line, an ordered header list, a body.

use std::fmt::Write as _;

use bytes::Bytes;

use super::headers::params::split_outside_quotes;
use super::headers::NameAddr;
use thiserror::Error;

/// Largest message accepted (a UDP datagram is at most 65 507 bytes anyway).
pub const MAX_MESSAGE: usize = 64 * 1024;
/// Most header lines accepted.
const MAX_HEADERS: usize = 128;

/// Why a message was refused, with the response a UAS sends for it (when it can).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SipError {
    /// Malformed: 400 Bad Request.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// Not SIP/2.0: 505 Version Not Supported.
    #[error("version not supported: {0}")]
    VersionNotSupported(String),
}

/// First line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `METHOD Request-URI SIP/2.0`
    Request {
        /// Method name.
        method: String,
        /// Request-URI as sent.
        uri: String,
    },
    /// `SIP/2.0 Status-Code Reason-Phrase`
    Response {
        /// Status code 100..=699.
        code: u16,
        /// Reason phrase.
        reason: String,
    },
}

/// A parsed SIP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipMessage {
    /// Request or status line.
    pub start: StartLine,
    /// Headers in order, names in their long canonical form, one entry per line.
    pub headers: Vec<(String, String)>,
    /// Body (exactly Content-Length bytes).
    pub body: Bytes,
}

/// Compact forms (RFC 3261 section 7.3.3 and later RFCs) and their long names.
const COMPACT: [(&str, &str); 13] = [
    ("i", "Call-ID"),
    ("m", "Contact"),
    ("e", "Content-Encoding"),
    ("l", "Content-Length"),
    ("c", "Content-Type"),
    ("f", "From"),
    ("s", "Subject"),
    ("k", "Supported"),
    ("t", "To"),
    ("v", "Via"),
    ("o", "Event"),
    ("r", "Refer-To"),
    ("u", "Allow-Events"),
];

/// Headers that must appear at most once (RFC 3261 section 7.3.1).
const SINGLE: [&str; 5] = ["Call-ID", "CSeq", "From", "To", "Content-Length"];

/// Header names in their usual spelling, so lookups and copies need no case folding.
const KNOWN: [&str; 30] = [
    "Via",
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Contact",
    "Content-Length",
    "Content-Type",
    "Max-Forwards",
    "Record-Route",
    "Route",
    "Expires",
    "Allow",
    "Supported",
    "Require",
    "User-Agent",
    "Authorization",
    "WWW-Authenticate",
    "Proxy-Authenticate",
    "Proxy-Authorization",
    "Accept",
    "Subject",
    "Event",
    "Refer-To",
    "Allow-Events",
    "Content-Encoding",
    "Server",
    "Min-Expires",
    "Unsupported",
    "Reason",
];

fn canonical(name: &str) -> String {
    COMPACT
        .iter()
        .find(|(short, _)| short.eq_ignore_ascii_case(name))
        .map(|(_, long)| *long)
        .or_else(|| KNOWN.iter().find(|l| l.eq_ignore_ascii_case(name)).copied())
        .map_or_else(|| name.to_owned(), str::to_owned)
}

fn bad(why: impl Into<String>) -> SipError {
    SipError::BadRequest(why.into())
}

/// How much of a stream buffer holds one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// A whole message of this many bytes.
    Message(usize),
    /// Keep-alive CRLFs to skip (RFC 5626), this many bytes.
    KeepAlive(usize),
    /// More bytes are needed.
    Incomplete,
}

/// Frames the front of a stream buffer (TCP, TLS) by its Content-Length.
pub fn frame(buf: &[u8]) -> Result<Framing, SipError> {
    let crlfs = buf.iter().take_while(|b| **b == b'\r' || **b == b'\n').count();
    if crlfs > 0 {
        return Ok(Framing::KeepAlive(crlfs));
    }
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_MESSAGE { Err(bad("message head too long")) } else { Ok(Framing::Incomplete) };
    };
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let mut length = None;
    for line in head.split("\r\n").skip(1) {
        if let Some((name, value)) = line.split_once(':') {
            if canonical(name.trim()) == "Content-Length" {
                let n: usize = value.trim().parse().map_err(|_| bad("bad Content-Length"))?;
                if length.replace(n).is_some() {
                    return Err(bad("Content-Length given twice"));
                }
            }
        }
    }
    // A Content-Length near usize::MAX from a peer must not wrap the sum (fuzzing found it).
    let total = (head_end + 4).checked_add(length.unwrap_or(0)).filter(|t| *t <= MAX_MESSAGE);
    let Some(total) = total else {
        return Err(bad("message too long"));
    };
    Ok(if buf.len() >= total { Framing::Message(total) } else { Framing::Incomplete })
}

impl SipMessage {
    /// Parses one message. For a datagram, bytes after Content-Length are ignored (RFC 3261
    /// 18.3); a Content-Length beyond the end is an error.
    pub fn parse(data: &[u8]) -> Result<SipMessage, SipError> {
        if data.len() > MAX_MESSAGE {
            return Err(bad("message too long"));
        }
        let head_end =
            data.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no empty line after the headers"))?;
        let head = std::str::from_utf8(&data[..head_end]).map_err(|_| bad("headers are not UTF-8"))?;
        let mut lines = head.split("\r\n");
        let start = parse_start(lines.next().unwrap_or_default())?;
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                // A folded continuation of the previous header (RFC 3261 7.3.1).
                let last = headers.last_mut().ok_or_else(|| bad("continuation line before any header"))?;
                last.1.push(' ');
                last.1.push_str(line.trim());
                continue;
            }
            let (name, value) =
                line.split_once(':').ok_or_else(|| bad(format!("header line without a colon: {line:?}")))?;
            let name = name.trim_end();
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(bad(format!("bad header name {name:?}")));
            }
            if headers.len() >= MAX_HEADERS {
                return Err(bad("too many headers"));
            }
            headers.push((canonical(name), value.trim().to_owned()));
        }
        let mut message = SipMessage { start, headers, body: Bytes::new() };
        for single in SINGLE {
            let count: usize = message
                .headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(single))
                .map(|(_, v)| split_values(v).len())
                .sum();
            if count > 1 {
                return Err(bad(format!("{single} appears more than once")));
            }
        }
        let available = data.len() - head_end - 4;
        let length = match message.header("Content-Length") {
            Some(v) => v.parse::<usize>().map_err(|_| bad(format!("bad Content-Length {v:?}")))?,
            None => available,
        };
        if length > available {
            return Err(bad("Content-Length larger than the message"));
        }
        message.body = Bytes::copy_from_slice(&data[head_end + 4..head_end + 4 + length]);
        message.check()?;
        Ok(message)
    }

    /// The checks RFC 3261 and RFC 4475 expect of a request: the mandatory headers, a CSeq that
    /// matches the method, scalar fields in range.
    fn check(&self) -> Result<(), SipError> {
        let StartLine::Request { method, .. } = &self.start else { return Ok(()) };
        for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
            if self.header(name).is_none() {
                return Err(bad(format!("missing {name}")));
            }
        }
        let (_, cseq_method) = self.cseq().ok_or_else(|| bad("bad CSeq"))?;
        if cseq_method != *method {
            return Err(bad(format!("CSeq method {cseq_method} does not match {method}")));
        }
        if let Some(mf) = self.header("Max-Forwards") {
            mf.parse::<u8>().map_err(|_| bad(format!("bad Max-Forwards {mf:?}")))?;
        }
        if let Some(e) = self.header("Expires") {
            e.parse::<u32>().map_err(|_| bad(format!("bad Expires {e:?}")))?;
        }
        for name in ["From", "To"] {
            NameAddr::parse(self.header(name).unwrap_or_default()).map_err(|why| bad(format!("{name}: {why}")))?;
        }
        for contact in self.header_values("Contact").into_iter().filter(|c| *c != "*") {
            NameAddr::parse(contact).map_err(|why| bad(format!("Contact: {why}")))?;
        }
        Ok(())
    }

    /// The first value of header `name` (long name, case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`, comma-joined values split, in order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).flat_map(|(_, v)| split_values(v)).collect()
    }

    /// The CSeq number and method.
    pub fn cseq(&self) -> Option<(u32, String)> {
        let (n, m) = self.header("CSeq")?.split_once(char::is_whitespace)?;
        let n: u32 = n.parse().ok().filter(|n| *n < 1 << 31)?;
        Some((n, m.trim().to_owned()))
    }

    /// The request method, or the CSeq method of a response.
    pub fn method(&self) -> String {
        match &self.start {
            StartLine::Request { method, .. } => method.clone(),
            StartLine::Response { .. } => self.cseq().map(|(_, m)| m).unwrap_or_default(),
        }
    }

    /// The response code, for a response.
    pub fn code(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// Replaces (or adds) header `name` with a single value.
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.to_owned(), value.into()));
    }

    /// A response to this request: Via, From, To, Call-ID and CSeq copied; `to_tag` added to
    /// To when it has none (not for 100 Trying).
    pub fn response(&self, code: u16, reason: &str, to_tag: Option<&str>) -> SipMessage {
        let mut headers = Vec::new();
        for (name, value) in &self.headers {
            if matches!(name.as_str(), "Via" | "From" | "Call-ID" | "CSeq" | "Record-Route") {
                headers.push((name.clone(), value.clone()));
            } else if name == "To" {
                let value = match to_tag {
                    Some(tag) if code != 100 && NameAddr::parse(value).is_ok_and(|n| n.tag().is_none()) => {
                        format!("{value};tag={tag}")
                    }
                    _ => value.clone(),
                };
                headers.push((name.clone(), value));
            }
        }
        SipMessage { start: StartLine::Response { code, reason: reason.to_owned() }, headers, body: Bytes::new() }
    }

    /// Serializes with a correct Content-Length.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::new();
        match &self.start {
            StartLine::Request { method, uri } => {
                let _ = write!(out, "{method} {uri} SIP/2.0\r\n");
            }
            StartLine::Response { code, reason } => {
                let _ = write!(out, "SIP/2.0 {code} {reason}\r\n");
            }
        }
        for (name, value) in self.headers.iter().filter(|(n, _)| n != "Content-Length") {
            let _ = write!(out, "{name}: {value}\r\n");
        }
        let _ = write!(out, "Content-Length: {}\r\n\r\n", self.body.len());
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// The answer to a request that could not be parsed, when one is possible: 400 (or 505) with
/// whatever Via, From, To, Call-ID and CSeq lines can be read. `None` for responses and for bytes
/// without a Via (nowhere to answer).
pub fn error_response(raw: &[u8], error: &SipError) -> Option<SipMessage> {
    let text = String::from_utf8_lossy(raw.get(..raw.len().min(MAX_MESSAGE))?);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut lines = head.split("\r\n");
    if lines.next()?.starts_with("SIP/") {
        return None;
    }
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (canonical(n.trim()), v.trim().to_owned()))
        .filter(|(n, _)| matches!(n.as_str(), "Via" | "From" | "To" | "Call-ID" | "CSeq"))
        .collect();
    if !headers.iter().any(|(n, _)| n == "Via") {
        return None;
    }
    let (code, reason) = match error {
        SipError::BadRequest(_) => (400, "Bad Request"),
        SipError::VersionNotSupported(_) => (505, "Version Not Supported"),
    };
    let mut response =
        SipMessage { start: StartLine::Response { code, reason: reason.to_owned() }, headers, body: Bytes::new() };
    response.set_header("Warning", format!("399 doorsim \"{}\"", error.to_string().replace('"', "'")));
    Some(response)
}

/// Splits a header value at top-level commas (not inside quotes or angle brackets).
pub fn split_values(value: &str) -> Vec<&str> {
    split_outside_quotes(value, ',').into_iter().map(str::trim).filter(|v| !v.is_empty()).collect()
}

fn parse_start(line: &str) -> Result<StartLine, SipError> {
    if let Some(rest) = line.strip_prefix("SIP/") {
        let mut parts = rest.splitn(3, ' ');
        let version = parts.next().unwrap_or_default();
        if version != "2.0" {
            return Err(SipError::VersionNotSupported(format!("SIP/{version}")));
        }
        let code: u16 = parts
            .next()
            .and_then(|c| c.parse().ok())
            .filter(|c| (100..=699).contains(c))
            .ok_or_else(|| bad("bad status code"))?;
        return Ok(StartLine::Response { code, reason: parts.next().unwrap_or_default().to_owned() });
    }
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, uri, version] = parts.as_slice() else {
        return Err(bad(format!("bad request line {line:?}")));
    };
    if !version.starts_with("SIP/") {
        return Err(bad(format!("bad request line {line:?}")));
    }
    if *version != "SIP/2.0" {
        return Err(SipError::VersionNotSupported((*version).to_owned()));
    }
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b));
    if !token(method) {
        return Err(bad(format!("bad method {method:?}")));
    }
    if uri.is_empty() || uri.starts_with('<') || !uri.contains(':') {
        return Err(bad(format!("bad Request-URI {uri:?}")));
    }
    Ok(StartLine::Request { method: (*method).to_owned(), uri: (*uri).to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS: &[u8] = b"OPTIONS sip:door@127.0.0.1 SIP/2.0\r\nv: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n\
        f: <sip:vms@127.0.0.1>;tag=a\r\nt: <sip:door@127.0.0.1>\r\ni: abc@h\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\
        Subject: folded\r\n  line\r\nl: 0\r\n\r\n";

    #[test]
    fn compact_and_folded_headers() {
        let m = SipMessage::parse(OPTIONS).expect("valid");
        assert_eq!(m.header("Call-ID"), Some("abc@h"));
        assert_eq!(m.header("via"), Some("SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1"));
        assert_eq!(m.header("Subject"), Some("folded line"));
        assert_eq!(SipMessage::parse(&OPTIONS.to_ascii_uppercase()).map(|m| m.headers[0].0.clone()), Ok("Via".into()));
        assert_eq!(m.cseq(), Some((1, "OPTIONS".into())));
        let r = m.response(200, "OK", Some("xyz"));
        let text = String::from_utf8(r.to_bytes()).expect("utf8");
        assert!(text.starts_with("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n"), "{text}");
        assert!(text.contains("To: <sip:door@127.0.0.1>;tag=xyz\r\n") && text.ends_with("Content-Length: 0\r\n\r\n"));
        assert_eq!(SipMessage::parse(&r.to_bytes()).expect("reparse").code(), Some(200));
    }

    #[test]
    fn unparseable_requests_get_a_400_with_their_headers() {
        let raw = b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nCall-ID: c\r\nCSeq: 1 ACK\r\n\r\n";
        let err = SipMessage::parse(raw).expect_err("CSeq mismatch");
        let r = error_response(raw, &err).expect("answerable");
        assert_eq!(r.code(), Some(400));
        assert_eq!(r.header("Via"), Some("SIP/2.0/UDP h;branch=z9hG4bKx"));
        assert!(error_response(b"SIP/2.0 200 OK\r\n\r\n", &err).is_none());
        assert!(error_response(b"garbage", &err).is_none());
    }

    #[test]
    fn comma_joined_values() {
        assert_eq!(split_values("<sip:a@b;x=1,2>, \"Doe, J\" <sip:c@d>"), ["<sip:a@b;x=1,2>", "\"Doe, J\" <sip:c@d>"]);
    }

    #[test]
    fn framing_by_content_length() {
        let msg = b"MESSAGE sip:a@b SIP/2.0\r\nl: 5\r\n\r\nhello";
        assert_eq!(frame(&msg[..20]), Ok(Framing::Incomplete));
        assert_eq!(frame(&msg[..msg.len() - 1]), Ok(Framing::Incomplete));
        let mut two = msg.to_vec();
        two.extend_from_slice(b"\r\n\r\n");
        assert_eq!(frame(&two), Ok(Framing::Message(msg.len())));
        assert_eq!(frame(b"\r\n\r\nINVITE"), Ok(Framing::KeepAlive(4)));
        assert!(frame(b"A sip:x SIP/2.0\r\nContent-Length: -1\r\n\r\n").is_err());
    }

    #[test]
    fn rfc4475_invalid_messages_are_refused() {
        let cases: [(&[u8], &str); 5] = [
            (b"OPTIONS sip:a SIP/7.0\r\nVia: x\r\n\r\n", "version"),
            (b"INVITE <sip:a@b> SIP/2.0\r\n\r\n", "bracketed Request-URI"),
            (b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\nFrom: <sip:a>;tag=1\r\nTo: <sip:b>\r\nCall-ID: c\r\nCSeq: 1 ACK\r\n\r\n", "CSeq mismatch"),
            (b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\nFrom: <sip:a>;tag=1\r\nTo: <sip:b>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 9\r\n\r\nabc", "length beyond the end"),
            (b"INVITE sip:a@b SIP/2.0\r\nVia: x\r\nFrom: <sip:a>;tag=1\r\nTo: <sip:b>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nMax-Forwards: 300\r\n\r\n", "Max-Forwards"),
        ];
        for (raw, why) in cases {
            assert!(SipMessage::parse(raw).is_err(), "{why}");
        }
        assert!(matches!(SipMessage::parse(b"OPTIONS sip:a SIP/7.0\r\n\r\n"), Err(SipError::VersionNotSupported(_))));
    }

    #[test]
    fn a_content_length_near_the_top_of_usize_is_refused_not_wrapped() {
        // The fuzz finding (fuzz/artifacts/sip_message/crash-dae8e66d...): the sum overflowed.
        let framed = frame(b"INVITE sip:a@b SIP/2.0\r\nContent-Length: 18446744073709551615\r\n\r\n");
        assert!(matches!(framed, Err(SipError::BadRequest(_))), "{framed:?}");
    }
}
