//! Other vendors' SIP configuration APIs over the same core (DESIGN.md `facades/`).
//!
//! Each brand's face translates its vendor's shapes to the store's SIP configuration and
//! accounts and back, one `Store::update` per request (all or nothing), so whatever a face sets
//! drives the one SIP user agent (a registrar set through any face makes the device register
//! there). Only settings the core has no field for are kept beside it, in the store's vendor
//! settings (`DeviceState::vendor`, keys `<brand>.<field>`).

pub mod bas_ip;
pub mod suprema;
pub mod two_n;
pub mod v1cgi;

use crate::model::sip_account::SipAccount;
use crate::model::ModelError;
use crate::profile::Brand;
use crate::store::{DeviceState, Store};

/// The SIP port every brand's device listens on by default.
pub const DEFAULT_SIP_PORT: u16 = 5060;

/// The state a device of `brand` starts from and resets to. An Axis device has SIP off until
/// the Call service enables it; the other brands' APIs set only the server side, so their
/// devices listen from the start, on `sip_port` (TLS on the next port) and take calls.
pub fn factory(brand: Brand, sip_port: Option<u16>) -> DeviceState {
    let mut state = DeviceState::default();
    if let Some(port) = sip_port {
        state.sip_configuration.sip_port = port;
        state.sip_configuration.sip_tls_port = port.saturating_add(1);
    }
    if brand != Brand::Axis {
        state.sip_configuration.sip_enabled = true;
        state.sip_configuration.allow_incoming_calls = true;
    }
    if brand == Brand::Suprema {
        if let Err(e) = suprema::factory_dtmf(&mut state) {
            tracing::error!(error = %e, "the Suprema exit button could not be set up");
        }
    }
    if brand == Brand::BasIp {
        // The vendor's call timeouts start at 120 s; an unlimited call has no value there.
        let longest = crate::model::attribute::Attribute { name: "MaxCallDuration".into(), value: "120".into() };
        state.sip_configuration.attribute.push(longest);
    }
    state
}

/// Why a face's change was refused: the face's own check of the request, or the store's rules.
#[derive(Debug)]
enum Refused<E> {
    Face(E),
    Store(ModelError),
}

impl<E> From<ModelError> for Refused<E> {
    fn from(e: ModelError) -> Self {
        Refused::Store(e)
    }
}

/// Applies `change` in one `Store::update`, so the request is checked against the very state
/// it changes and either all of it lands or none.
fn update<E>(store: &Store, change: impl FnOnce(&mut DeviceState) -> Result<(), Refused<E>>) -> Result<(), Refused<E>> {
    let mut face_error = None;
    let applied = store.update(|state| {
        change(state).map_err(|refused| match refused {
            Refused::Store(e) => e,
            Refused::Face(e) => {
                face_error = Some(e);
                ModelError::Invalid(String::new()) // replaced below by the face's own error
            }
        })
    });
    match face_error {
        Some(e) => Err(Refused::Face(e)),
        None => applied.map_err(Refused::Store),
    }
}

/// `host[:port]` as two parts (the port empty when absent); brackets of an IPv6 host stay.
fn split_host_port(address: &str) -> (&str, &str) {
    let split = match address.rfind(':') {
        Some(i) if address.starts_with('[') => address[..i].ends_with(']').then_some(i),
        Some(i) if address[..i].contains(':') => None, // a bare IPv6 address
        other => other,
    };
    match split {
        Some(i) => (&address[..i], &address[i + 1..]),
        None => (address, ""),
    }
}

/// `host:port`, or `host` when the port is empty; empty when the host is.
fn join_host_port(host: &str, port: &str) -> String {
    match (host.is_empty(), port.is_empty()) {
        (true, _) => String::new(),
        (false, true) => host.to_owned(),
        (false, false) => format!("{host}:{port}"),
    }
}

/// Whether `port` is a port number 1..=65535 written in decimal.
fn valid_port(port: &str) -> bool {
    port.parse::<u16>().is_ok_and(|p| p > 0) && port.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `host` could be a SIP host: a name or an address, without spaces, `@`, `;` or `<>`.
fn valid_host(host: &str) -> bool {
    host.len() <= 253 && !host.bytes().any(|b| b.is_ascii_whitespace() || b"@;<>\",".contains(&b) || b < 0x20)
}

/// A SIP account as a face creates it: the factory account's settings under `id`, enabled,
/// without a user, not the default.
fn new_account(id: &str) -> SipAccount {
    SipAccount { id: id.to_owned(), user_id: String::new(), is_default: false, ..SipAccount::peer_to_peer() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port_split_and_join_back() {
        assert_eq!(split_host_port("pbx.example.com:5062"), ("pbx.example.com", "5062"));
        assert_eq!(split_host_port("10.0.0.1"), ("10.0.0.1", ""));
        assert_eq!(split_host_port("[::1]:5060"), ("[::1]", "5060"));
        assert_eq!(split_host_port("::1"), ("::1", ""));
        assert_eq!(join_host_port("pbx", "5062"), "pbx:5062");
        assert_eq!(join_host_port("pbx", ""), "pbx");
        assert_eq!(join_host_port("", "5062"), "");
        assert!(valid_port("5060") && !valid_port("0") && !valid_port("65536") && !valid_port("+5") && !valid_port(""));
    }

    #[test]
    fn other_brands_listen_from_the_start() {
        assert!(!factory(Brand::Axis, None).sip_configuration.sip_enabled);
        let two_n = factory(Brand::TwoN, Some(5070)).sip_configuration;
        assert!(two_n.sip_enabled && two_n.allow_incoming_calls);
        assert_eq!((two_n.sip_port, two_n.sip_tls_port), (5070, 5071));
    }
}
