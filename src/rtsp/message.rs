//! RTSP/1.0 request framing and parsing (RFC 2326), sans I/O: what the server's read loop feeds
//! its buffer to. Also recognizes interleaved `$` frames a client may send (RTCP over TCP).

/// Longest request head accepted.
pub const MAX_HEAD: usize = 8 * 1024;
/// Longest request body accepted.
pub const MAX_BODY: usize = 4 * 1024;

/// One request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtspRequest {
    /// `OPTIONS`, `DESCRIBE`, ...
    pub method: String,
    /// The request URI as sent.
    pub uri: String,
    headers: Vec<(String, String)>,
}

/// What the front of a buffer holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A whole request, and the bytes it used.
    Request(RtspRequest, usize),
    /// An interleaved binary frame of this many bytes, to skip.
    Interleaved(usize),
    /// More bytes are needed.
    Incomplete,
    /// Not RTSP; the connection should get a 400 and close.
    Invalid(String),
}

impl RtspRequest {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Parses the front of `buf`.
pub fn parse(buf: &[u8]) -> Parsed {
    if buf.first() == Some(&b'$') {
        return match buf.get(2..4) {
            Some(len) => {
                let total = 4 + usize::from(u16::from_be_bytes([len[0], len[1]]));
                if buf.len() >= total {
                    Parsed::Interleaved(total)
                } else {
                    Parsed::Incomplete
                }
            }
            None => Parsed::Incomplete,
        };
    }
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if buf.len() > MAX_HEAD { Parsed::Invalid("request head too long".into()) } else { Parsed::Incomplete };
    };
    if head_end > MAX_HEAD {
        return Parsed::Invalid("request head too long".into());
    }
    let Ok(head) = std::str::from_utf8(&buf[..head_end]) else {
        return Parsed::Invalid("request head is not UTF-8".into());
    };
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(uri), Some("RTSP/1.0"), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Parsed::Invalid(format!("bad request line {request_line:?}"));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase() || b == b'_' || b == b'-') {
        return Parsed::Invalid(format!("bad method {method:?}"));
    }
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Parsed::Invalid(format!("bad header line {line:?}"));
        };
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let request = RtspRequest { method: method.to_owned(), uri: uri.to_owned(), headers };
    let body_len = match request.header("Content-Length").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) if n <= MAX_BODY => n,
        Some(_) => return Parsed::Invalid("bad Content-Length".into()),
    };
    let total = head_end + 4 + body_len;
    if buf.len() < total {
        return Parsed::Incomplete;
    }
    Parsed::Request(request, total)
}

/// A response: status line, CSeq, `headers`, and an optional body with its length.
pub fn response(status: u16, reason: &str, cseq: Option<&str>, headers: &[(&str, String)], body: &str) -> String {
    let mut out = format!("RTSP/1.0 {status} {reason}\r\n");
    if let Some(c) = cseq {
        out.push_str(&format!("CSeq: {c}\r\n"));
    }
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    out.push_str(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_framed() {
        let raw = b"OPTIONS rtsp://h/axis-media/media.amp RTSP/1.0\r\nCSeq: 0\r\nUser-Agent: HASS Axis\r\n\r\nDESCRIBE";
        let Parsed::Request(r, used) = parse(raw) else { panic!("not parsed") };
        assert_eq!((r.method.as_str(), r.header("cseq")), ("OPTIONS", Some("0")));
        assert_eq!(&raw[used..], b"DESCRIBE");
        assert_eq!(parse(b"DESCRIBE rtsp://h RTSP/1.0\r\nCSeq: 1\r\n"), Parsed::Incomplete);
        assert_eq!(parse(b"SET_PARAMETER rtsp://h RTSP/1.0\r\nContent-Length: 4\r\n\r\nab"), Parsed::Incomplete);
        assert_eq!(parse(&[b'$', 1, 0, 2, 9, 9, 7]), Parsed::Interleaved(6));
    }

    #[test]
    fn garbage_is_invalid() {
        assert!(matches!(parse(b"GET / HTTP/1.1\r\n\r\n"), Parsed::Invalid(_)));
        assert!(matches!(parse(b"OPTIONS x RTSP/1.0\r\nno colon\r\n\r\n"), Parsed::Invalid(_)));
        assert!(matches!(parse(b"OPTIONS x RTSP/1.0\r\nContent-Length: 99999\r\n\r\n"), Parsed::Invalid(_)));
        assert!(matches!(parse(&vec![b'A'; MAX_HEAD + 1]), Parsed::Invalid(_)));
    }
}
