//! The `v1.cgi` intercom panel's `/api/v1.cgi/intercom/sip/config` over the core: `GET` answers
//! the flat object of the spec, `POST {"oSip": {...}}` changes what it names and nothing else,
//! or, on any invalid field, nothing at all (HTTP 400 `{"error": "..."}` naming the field).
//!
//! The panel has one SIP account, the core's account `1`: `sUser` its UserId, `sPassword`,
//! `sDomain` with `iPort` its Registrar and PublicDomain (so a domain makes the panel register
//! there and an empty one un-registers it), `sProxy` its proxy, `sProtocol` its Transport.
//! `sRealm` (the core answers any realm's challenge) is kept in the vendor settings.

use hyper::{Method, Response, StatusCode};
use serde_json::{json, Map, Value};

use crate::model::sip_account::{SipProxy, Transport};
use crate::model::ModelError;
use crate::reply::{json_response, plain, Body};
use crate::store::{DeviceState, Store};

use super::{join_host_port, new_account, split_host_port, update, valid_host, Refused, DEFAULT_SIP_PORT};

/// The core account the panel's settings are.
const ACCOUNT: &str = "1";
/// Longest text field accepted.
const MAX_TEXT: usize = 255;
const REALM_KEY: &str = "V1CGI.sRealm";

/// The panel's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    port: u16,
    domain: String,
    password: String,
    protocol: Transport,
    proxy: String,
    realm: String,
    user: String,
}

impl Settings {
    fn of(state: &DeviceState) -> Settings {
        let core = state.sip_accounts.get(ACCOUNT);
        let (domain, port) = split_host_port(core.map_or("", |a| a.public_domain.as_str()));
        Settings {
            port: port.parse().unwrap_or(DEFAULT_SIP_PORT),
            domain: domain.to_owned(),
            password: core.map(|a| a.password.clone()).unwrap_or_default(),
            protocol: core.map_or(Transport::Udp, |a| a.transport),
            proxy: core.and_then(|a| a.sip_proxies.first()).map(|p| p.server.clone()).unwrap_or_default(),
            realm: state.vendor.get(REALM_KEY).cloned().unwrap_or_else(|| "*".into()),
            user: core.map(|a| a.user_id.clone()).unwrap_or_default(),
        }
    }

    fn to_json(&self) -> Value {
        json!({
            "iPort": self.port,
            "sDomain": self.domain,
            "sPassword": self.password,
            "sProtocol": protocol_name(self.protocol),
            "sProxy": self.proxy,
            "sRealm": self.realm,
            "sUser": self.user,
        })
    }

    /// Sets the fields `changes` names; the first invalid one is the error.
    fn merge(&mut self, changes: &Map<String, Value>) -> Result<(), String> {
        for (name, value) in changes {
            let text = || match value {
                Value::String(s) if s.len() <= MAX_TEXT && !s.chars().any(char::is_control) => Ok(s.clone()),
                _ => Err(format!("{name} must be a string of at most {MAX_TEXT} characters")),
            };
            match name.as_str() {
                "iPort" => {
                    self.port = value
                        .as_u64()
                        .and_then(|p| u16::try_from(p).ok())
                        .filter(|p| *p > 0)
                        .ok_or("iPort must be an integer 1-65535")?;
                }
                "sProtocol" => {
                    self.protocol = match value.as_str() {
                        Some("udp") => Transport::Udp,
                        Some("tcp") => Transport::Tcp,
                        Some("tls") => Transport::Tls,
                        _ => return Err("sProtocol must be udp, tcp or tls".into()),
                    };
                }
                "sDomain" | "sProxy" => {
                    let host = text()?;
                    if !valid_host(&host) {
                        return Err(format!("{name} must be a host name or address"));
                    }
                    *(if name == "sDomain" { &mut self.domain } else { &mut self.proxy }) = host;
                }
                "sUser" => {
                    let user = text()?;
                    if user.bytes().any(|b| b.is_ascii_whitespace() || b"@:;<>\"".contains(&b)) {
                        return Err("sUser must be a SIP user name".into());
                    }
                    self.user = user;
                }
                "sPassword" => self.password = text()?,
                "sRealm" => self.realm = text()?,
                other => return Err(format!("unknown field {other}")),
            }
        }
        Ok(())
    }

    fn store(&self, state: &mut DeviceState) -> Result<(), ModelError> {
        let mut core = state.sip_accounts.get(ACCOUNT).cloned().unwrap_or_else(|| new_account(ACCOUNT));
        core.user_id = self.user.clone();
        core.password = self.password.clone();
        core.transport = self.protocol;
        let server = join_host_port(&self.domain, &self.port.to_string());
        core.registrar = server.clone();
        core.public_domain = server;
        core.sip_proxies = match self.proxy.is_empty() {
            true => Vec::new(),
            false => vec![SipProxy { server: self.proxy.clone(), username: String::new(), password: String::new() }],
        };
        state.vendor.insert(REALM_KEY.into(), self.realm.clone());
        state.set_sip_accounts(vec![core]).map(drop)
    }
}

fn protocol_name(t: Transport) -> &'static str {
    match t {
        Transport::Udp => "udp",
        Transport::Tcp => "tcp",
        Transport::Tls => "tls",
    }
}

fn bad_request(error: &str) -> Response<Body> {
    json_response(StatusCode::BAD_REQUEST, &json!({ "error": error }))
}

/// Answers `/api/v1.cgi/intercom/sip/config`.
pub fn handle(method: &Method, body: &[u8], store: &Store) -> Response<Body> {
    match *method {
        Method::GET => json_response(StatusCode::OK, &store.read(Settings::of).to_json()),
        Method::POST => post(body, store),
        _ => plain(StatusCode::METHOD_NOT_ALLOWED, "405 Method Not Allowed"),
    }
}

fn post(body: &[u8], store: &Store) -> Response<Body> {
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return bad_request(&format!("the body is not JSON: {e}")),
    };
    let Some(changes) = request.get("oSip").and_then(Value::as_object) else {
        return bad_request("oSip: an object of the SIP settings is required");
    };
    let applied = update(store, |state| {
        let mut settings = Settings::of(state);
        settings.merge(changes).map_err(Refused::Face)?;
        Ok(settings.store(state)?)
    });
    match applied {
        Ok(()) => json_response(StatusCode::OK, &store.read(Settings::of).to_json()),
        Err(Refused::Face(error)) => bad_request(&error),
        Err(Refused::Store(e)) => bad_request(&e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_change_keeps_the_rest_and_a_domain_makes_the_panel_register() {
        let mut state = DeviceState::default();
        let factory = Settings::of(&state);
        assert_eq!(factory.to_json()["sRealm"], "*");
        let mut s = factory.clone();
        s.merge(json!({"sUser": "alice", "sDomain": "example.com", "iPort": 5062}).as_object().expect("object"))
            .expect("valid");
        s.store(&mut state).expect("stored");
        assert_eq!(state.sip_accounts[ACCOUNT].registrar, "example.com:5062");
        assert_eq!(Settings::of(&state), s);
        let mut t = s.clone();
        assert!(t.merge(json!({"iPort": 0}).as_object().expect("object")).is_err());
        assert!(t.merge(json!({"sProtocol": "sctp"}).as_object().expect("object")).is_err());
    }
}
