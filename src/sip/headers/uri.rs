//! SIP and SIPS URIs (RFC 3261 section 19.1): `sip:user:password@host:port;params?headers`.
//! Other schemes are kept whole, so a `tel:` caller is still printed back as it came.

use std::fmt;
use std::net::IpAddr;

use super::{malformed, HeaderError, Params};

/// A URI host: a name, an IPv4 address, or an IPv6 reference (printed in brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A host name or IPv4 address, as written.
    Name(String),
    /// An IP address (IPv6 ones print in brackets).
    Ip(IpAddr),
}

impl Host {
    /// The host of an address.
    pub fn ip(address: IpAddr) -> Host {
        Host::Ip(address)
    }

    fn parse(text: &str) -> Result<Host, HeaderError> {
        if let Some(v6) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
            return v6.parse().map(Host::Ip).map_err(|_| malformed("URI", "bad IPv6 reference"));
        }
        if text.is_empty() || text.contains(['[', ']', ' ', '<', '>', '"']) {
            return Err(malformed("URI", "bad host"));
        }
        Ok(text.parse().map_or_else(|_| Host::Name(text.to_owned()), Host::Ip))
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(IpAddr::V6(v6)) => write!(f, "[{v6}]"),
            Host::Ip(v4) => write!(f, "{v4}"),
        }
    }
}

/// A parsed URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uri {
    /// `sip:` or `sips:`.
    Sip {
        /// `sips:` rather than `sip:`.
        secure: bool,
        /// The user part (with `:password` when one was given), still escaped.
        user: Option<String>,
        /// The host.
        host: Host,
        /// The port, when written.
        port: Option<u16>,
        /// URI parameters (`;transport=tcp;lr`).
        params: Params,
        /// The `?headers` part, without the `?`.
        headers: Option<String>,
    },
    /// Any other scheme, whole (`tel:+1234`).
    Other(String),
}

impl Uri {
    /// A `sip:` URI for `user@host:port`.
    pub fn sip(user: Option<&str>, host: Host, port: Option<u16>) -> Uri {
        Uri::Sip { secure: false, user: user.map(str::to_owned), host, port, params: Params::default(), headers: None }
    }

    /// Reads a URI.
    pub fn parse(text: &str) -> Result<Uri, HeaderError> {
        let text = text.trim();
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(malformed("URI", "white space in a URI"));
        }
        let (scheme, rest) = text.split_once(':').ok_or(malformed("URI", "no scheme"))?;
        let secure = match scheme.to_ascii_lowercase().as_str() {
            "sip" => false,
            "sips" => true,
            _ if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) => {
                return Ok(Uri::Other(text.to_owned()))
            }
            _ => return Err(malformed("URI", "bad scheme")),
        };
        let (rest, headers) = match rest.split_once('?') {
            Some((r, h)) => (r, Some(h.to_owned())),
            None => (rest, None),
        };
        let (user, rest) = match rest.rsplit_once('@') {
            Some((u, r)) if !u.is_empty() => (Some(u.to_owned()), r),
            Some(_) => return Err(malformed("URI", "empty user")),
            None => (None, rest),
        };
        let (hostport, params) = match rest.split_once(';') {
            Some((h, p)) => (h, Params::parse(p)),
            None => (rest, Params::default()),
        };
        let (host, port) = split_host_port(hostport)?;
        Ok(Uri::Sip { secure, user, host: Host::parse(host)?, port, params, headers })
    }

    /// The user part, for SIP URIs that have one.
    pub fn user(&self) -> Option<&str> {
        match self {
            Uri::Sip { user, .. } => user.as_deref().map(|u| u.split(':').next().unwrap_or(u)),
            Uri::Other(_) => None,
        }
    }

    /// `host:port` to send to (5060, or 5061 for `sips:`, when no port is written), or `None`
    /// for other schemes.
    pub fn host_port(&self) -> Option<(String, u16)> {
        match self {
            Uri::Sip { secure, host, port, .. } => {
                let host = match host {
                    Host::Name(n) => n.clone(),
                    Host::Ip(ip) => ip.to_string(),
                };
                Some((host, port.unwrap_or(if *secure { 5061 } else { 5060 })))
            }
            Uri::Other(_) => None,
        }
    }

    /// The URI parameters (empty for other schemes).
    pub fn param(&self, name: &str) -> Option<&str> {
        match self {
            Uri::Sip { params, .. } => params.get(name),
            Uri::Other(_) => None,
        }
    }

    /// Sets a URI parameter (no effect on other schemes).
    pub fn set_param(&mut self, name: &str, value: Option<&str>) {
        if let Uri::Sip { params, .. } = self {
            params.set(name, value);
        }
    }
}

/// Splits `host[:port]`, with IPv6 references in brackets.
pub(crate) fn split_host_port(text: &str) -> Result<(&str, Option<u16>), HeaderError> {
    let (host, port) = if text.starts_with('[') {
        match text.find(']') {
            Some(end) if end + 1 == text.len() => (text, None),
            Some(end) => (&text[..=end], Some(text[end + 1..].strip_prefix(':').ok_or(malformed("URI", "bad port"))?)),
            None => return Err(malformed("URI", "unclosed IPv6 reference")),
        }
    } else {
        match text.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        }
    };
    let port = port.map(|p| p.parse::<u16>().map_err(|_| malformed("URI", "bad port"))).transpose()?;
    Ok((host, port))
}

impl fmt::Display for Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Uri::Sip { secure, user, host, port, params, headers } => {
                f.write_str(if *secure { "sips:" } else { "sip:" })?;
                if let Some(user) = user {
                    write!(f, "{user}@")?;
                }
                write!(f, "{host}")?;
                if let Some(port) = port {
                    write!(f, ":{port}")?;
                }
                write!(f, "{params}")?;
                if let Some(headers) = headers {
                    write!(f, "?{headers}")?;
                }
                Ok(())
            }
            Uri::Other(text) => f.write_str(text),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_print_round_trip() {
        for text in [
            "sip:door@127.0.0.1:5060;transport=tcp",
            "sips:alice@example.com",
            "sip:[2001:db8::1]:5070;lr",
            "sip:[::1]",
            "sip:10.0.0.1",
            "sip:6001:secret@pbx.local;user=phone?subject=x",
            "tel:+15551234",
        ] {
            let uri = Uri::parse(text).expect("valid in the test");
            assert_eq!(uri.to_string(), text);
            assert_eq!(Uri::parse(&uri.to_string()).expect("valid in the test"), uri);
        }
    }

    #[test]
    fn parts_are_read() {
        let uri = Uri::parse("sip:6001@[::1]:5070;transport=TLS").expect("valid in the test");
        assert_eq!(uri.user(), Some("6001"));
        assert_eq!(uri.host_port(), Some(("::1".into(), 5070)));
        assert_eq!(uri.param("transport"), Some("TLS"));
        assert_eq!(Uri::parse("sips:a@h").expect("valid in the test").host_port(), Some(("h".into(), 5061)));
        assert_eq!(
            Uri::sip(Some("door"), Host::ip("::1".parse().expect("valid in the test")), Some(5060)).to_string(),
            "sip:door@[::1]:5060"
        );
        for bad in ["", "nocolon", "sip:", "sip:@h", "sip:h:99999", "sip:[::1", "sip:a b"] {
            assert!(Uri::parse(bad).is_err(), "{bad}");
        }
    }
}
