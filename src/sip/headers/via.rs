//! The Via header (RFC 3261 section 20.42, RFC 3581 `rport`): `SIP/2.0/UDP host:port;branch=...`.

use std::fmt;

use super::uri::split_host_port;
use super::{malformed, HeaderError, Host, Params};

/// The RFC 3261 magic cookie that starts every compliant branch.
pub const MAGIC_COOKIE: &str = "z9hG4bK";

/// One Via value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// `UDP`, `TCP`, `TLS`, ...
    pub transport: String,
    /// The sent-by host.
    pub host: Host,
    /// The sent-by port, when written.
    pub port: Option<u16>,
    /// `branch`, `rport`, `received`, ...
    pub params: Params,
}

impl Via {
    /// A Via for a request we send, with a new branch and `rport`.
    pub fn ours(transport: &str, host: Host, port: u16, branch: &str) -> Via {
        let mut params = Params::default();
        params.set("branch", Some(&format!("{MAGIC_COOKIE}{branch}")));
        params.set("rport", None);
        Via { transport: transport.to_owned(), host, port: Some(port), params }
    }

    /// Reads the first Via of a header value (a value may hold several, comma-separated).
    pub fn parse(text: &str) -> Result<Via, HeaderError> {
        let first = text.split(',').next().unwrap_or(text).trim();
        // The protocol may have white space around its slashes (RFC 3261 section 25.1, LWS).
        let mut parts = first.splitn(3, '/').map(str::trim);
        let (name, version, rest) = (parts.next(), parts.next(), parts.next().unwrap_or_default());
        let (transport, rest) = rest.split_once(char::is_whitespace).ok_or(malformed("Via", "no sent-by"))?;
        let transport = Some(transport);
        if !name.is_some_and(|n| n.eq_ignore_ascii_case("SIP")) || version != Some("2.0") {
            return Err(malformed("Via", "not SIP/2.0"));
        }
        let transport = transport.filter(|t| !t.is_empty()).ok_or(malformed("Via", "no transport"))?;
        let (sent_by, params) = match rest.split_once(';') {
            Some((s, p)) => (s.trim(), Params::parse(p)),
            None => (rest.trim(), Params::default()),
        };
        let (host, port) = split_host_port(sent_by).map_err(|_| malformed("Via", "bad sent-by"))?;
        let host = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Host::Ip(v6.parse().map_err(|_| malformed("Via", "bad IPv6 sent-by"))?)
        } else if host.is_empty() || host.contains([' ', '[', ']']) {
            return Err(malformed("Via", "bad sent-by"));
        } else {
            host.parse().map_or_else(|_| Host::Name(host.to_owned()), Host::Ip)
        };
        Ok(Via { transport: transport.to_ascii_uppercase(), host, port, params })
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch").filter(|b| !b.is_empty())
    }

    /// `host:port` of sent-by, as a transaction key part.
    pub fn sent_by(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.to_string(),
        }
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, self.sent_by())?;
        write!(f, "{}", self.params)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_print_round_trip() {
        for text in [
            "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK776asdhds;rport",
            "SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bKx;received=10.0.0.1;rport=5062",
            "SIP/2.0/TCP pc33.example.com;branch=z9hG4bK1",
        ] {
            let via = Via::parse(text).expect("valid in the test");
            assert_eq!(via.to_string(), text);
            assert_eq!(Via::parse(&via.to_string()).expect("valid in the test"), via);
        }
    }

    #[test]
    fn parts_are_read() {
        let via = Via::parse("SIP / 2.0 / udp 10.0.0.1:5070 ; branch=z9hG4bKabc , SIP/2.0/UDP other")
            .expect("valid in the test");
        assert_eq!(via.transport, "UDP");
        assert_eq!(via.branch(), Some("z9hG4bKabc"));
        assert_eq!(via.sent_by(), "10.0.0.1:5070");
        let ours = Via::ours("TLS", Host::Ip("::1".parse().expect("valid in the test")), 5061, "42");
        assert_eq!(ours.to_string(), "SIP/2.0/TLS [::1]:5061;branch=z9hG4bK42;rport");
        for bad in ["", "SIP/2.0/UDP", "SIP/3.0/UDP h", "HTTP/2.0/UDP h", "SIP/2.0/UDP h:x"] {
            assert!(Via::parse(bad).is_err(), "{bad}");
        }
    }
}
