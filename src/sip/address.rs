//! Small helpers for SIP addresses and identifiers shared by the user agent's parts.

use std::net::IpAddr;

use rand::Rng;

/// A random token for tags, branches and Call-IDs.
pub fn random_token() -> String {
    let n: u64 = rand::thread_rng().gen();
    format!("{n:016x}")
}

/// The URI of a name-addr (`"Name" <sip:...>;tag=x`) or addr-spec.
pub fn uri_of(name_addr: &str) -> &str {
    match (name_addr.find('<'), name_addr.find('>')) {
        (Some(a), Some(b)) if a < b => &name_addr[a + 1..b],
        _ => name_addr.split(';').next().unwrap_or(name_addr).trim(),
    }
}

/// An address as a URI host: IPv6 in brackets.
pub fn host_of(address: IpAddr) -> String {
    match address {
        IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    }
}

/// The `host[:port]` a SIP URI or proxy address points at, with 5060 as the default port.
pub fn hostport(uri: &str) -> String {
    let rest = uri.strip_prefix("sips:").or_else(|| uri.strip_prefix("sip:")).unwrap_or(uri);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host = rest.split([';', '?', '>']).next().unwrap_or(rest);
    let has_port = if host.starts_with('[') { host.contains("]:") } else { host.contains(':') };
    if has_port {
        host.to_owned()
    } else {
        format!("{host}:5060")
    }
}
