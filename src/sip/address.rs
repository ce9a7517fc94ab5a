//! How the device names itself in what it sends: its address and the port of each transport,
//! as Via sent-by and Contact (RFC 3261 sections 18.1.1 and 8.1.1.8), and random tokens for
//! tags, branches and Call-IDs.

use std::net::IpAddr;

use rand::Rng;

use super::headers::{Host, NameAddr, Uri, Via};
use super::transport::Kind;

/// A random token for tags, branches and Call-IDs.
pub fn random_token() -> String {
    let n: u64 = rand::thread_rng().gen();
    format!("{n:016x}")
}

/// The device's own address and listening ports, as the configuration has them now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Local {
    /// The address written in Via, Contact and SDP.
    pub address: IpAddr,
    /// SIPPort (UDP and TCP).
    pub sip_port: u16,
    /// SIPTLSPort.
    pub tls_port: u16,
}

impl Local {
    /// The port the device listens on for `kind`.
    pub fn port(&self, kind: Kind) -> u16 {
        if kind == Kind::Tls {
            self.tls_port
        } else {
            self.sip_port
        }
    }

    /// A Via for a new request over `kind`, with a fresh branch.
    pub fn via(&self, kind: Kind) -> Via {
        Via::ours(kind.via(), Host::Ip(self.address), self.port(kind), &random_token())
    }

    /// The Contact for `user` over `kind`: address, port and transport always written.
    pub fn contact(&self, user: &str, kind: Kind) -> NameAddr {
        let user = (!user.is_empty()).then_some(user);
        let mut uri = Uri::sip(user, Host::Ip(self.address), Some(self.port(kind)));
        uri.set_param("transport", Some(kind.param()));
        NameAddr::new(uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_and_via_carry_the_transport_port_and_brackets() {
        let local = Local { address: "::1".parse().expect("valid in the test"), sip_port: 5060, tls_port: 5061 };
        assert_eq!(local.contact("door", Kind::Tls).to_string(), "<sip:door@[::1]:5061;transport=tls>");
        assert_eq!(local.contact("door", Kind::Tcp).to_string(), "<sip:door@[::1]:5060;transport=tcp>");
        let via = local.via(Kind::Tls);
        assert_eq!((via.transport.as_str(), via.port), ("TLS", Some(5061)));
    }
}
