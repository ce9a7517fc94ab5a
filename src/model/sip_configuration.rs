//! `SIPConfiguration` with its `STUNServer` and `TURNServer` lists (spec: "SIP configuration").

use serde::Serialize;

use super::address::{validate_host, validate_sip_uri};
use super::attribute::{read_attributes, Attribute};
use super::error::{ModelError, ModelResult};
use super::fields::{Fields, MAX_TEXT_LEN};

/// Longest list accepted in a configuration field (STUN/TURN servers, access lists).
const MAX_LIST_LEN: usize = 100;

/// The device-wide SIP configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SipConfiguration {
    /// SIP on or off. Default off.
    #[serde(rename = "SIPEnabled")]
    pub sip_enabled: bool,
    /// UDP and TCP listen port.
    #[serde(rename = "SIPPort")]
    pub sip_port: u16,
    /// TLS listen port.
    #[serde(rename = "SIPTLSPort")]
    pub sip_tls_port: u16,
    /// STUN on or off.
    #[serde(rename = "STUNEnabled")]
    pub stun_enabled: bool,
    /// STUN servers.
    #[serde(rename = "STUNServers")]
    pub stun_servers: Vec<StunServer>,
    /// TURN on or off.
    #[serde(rename = "TURNEnabled")]
    pub turn_enabled: bool,
    /// TURN servers.
    #[serde(rename = "TURNServers")]
    pub turn_servers: Vec<TurnServer>,
    /// ICE on or off.
    #[serde(rename = "ICEEnabled")]
    pub ice_enabled: bool,
    /// Whether incoming calls are accepted at all.
    #[serde(rename = "AllowIncomingCalls")]
    pub allow_incoming_calls: bool,
    /// For future use (spec).
    #[serde(rename = "ApplyUserAuthentication")]
    pub apply_user_authentication: bool,
    /// For future use (spec).
    #[serde(rename = "AllowedUsers")]
    pub allowed_users: Vec<String>,
    /// Deprecated alias of `ApplyAccessList`, stored as given.
    #[serde(rename = "ApplyAllowedURIs")]
    pub apply_allowed_uris: bool,
    /// Deprecated alias of `AccessList`, stored as given.
    #[serde(rename = "AllowedURIs")]
    pub allowed_uris: Vec<String>,
    /// Supported attributes (see `attribute`).
    #[serde(rename = "Attribute")]
    pub attribute: Vec<Attribute>,
    /// First RTP port for SIP calls.
    #[serde(rename = "RTPStartPort")]
    pub rtp_start_port: u16,
    /// Seconds before an unanswered outgoing SIP call ends with NoAnswer, 1..=600.
    #[serde(rename = "CallingTimeout")]
    pub calling_timeout: u32,
    /// Whether `AccessList` is applied to incoming calls.
    #[serde(rename = "ApplyAccessList")]
    pub apply_access_list: bool,
    /// SIP URIs of the access list.
    #[serde(rename = "AccessList")]
    pub access_list: Vec<String>,
    /// Whether the access list allows or blocks.
    #[serde(rename = "AccessListPolicy")]
    pub access_list_policy: AccessListPolicy,
}

/// Whether `AccessList` is an allowlist or a blocklist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum AccessListPolicy {
    /// Only listed callers may call.
    #[default]
    Allow,
    /// Listed callers are declined.
    Block,
}

/// A STUN server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StunServer {
    /// Server address.
    pub server: String,
}

/// A TURN server with its credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TurnServer {
    /// Server address.
    pub server: String,
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl Default for SipConfiguration {
    fn default() -> Self {
        Self {
            sip_enabled: false,
            sip_port: 5060,
            sip_tls_port: 5061,
            stun_enabled: false,
            stun_servers: Vec::new(),
            turn_enabled: false,
            turn_servers: Vec::new(),
            ice_enabled: false,
            allow_incoming_calls: false,
            apply_user_authentication: false,
            allowed_users: Vec::new(),
            apply_allowed_uris: false,
            allowed_uris: Vec::new(),
            attribute: Vec::new(),
            rtp_start_port: 4000,
            calling_timeout: 60,
            apply_access_list: false,
            access_list: Vec::new(),
            access_list_policy: AccessListPolicy::Allow,
        }
    }
}

impl SipConfiguration {
    /// Reads a configuration from `f`, taking every absent field from `base` (the current
    /// configuration when KeepCurrent, the defaults otherwise).
    pub fn read(f: &Fields<'_>, base: &SipConfiguration) -> ModelResult<Self> {
        let port = |name: &str, current: u16| -> ModelResult<u16> {
            Ok(f.opt_int(name, 1..=65_535)?.map_or(current, |p| p as u16))
        };
        let flag = |name: &str, current: bool| -> ModelResult<bool> { Ok(f.opt_bool(name)?.unwrap_or(current)) };
        let texts = |name: &str, current: &Vec<String>, check_uri: bool| -> ModelResult<Vec<String>> {
            let Some(items) = f.opt_list(name)? else {
                return Ok(current.clone());
            };
            bounded(name, items.len(), f)?;
            items
                .into_iter()
                .enumerate()
                .map(|(i, item)| {
                    let s = f.item_text(name, item, MAX_TEXT_LEN)?;
                    if check_uri {
                        validate_sip_uri(&s, &format!("{}[{i}]", f.path_of(name)))?;
                    }
                    Ok(s)
                })
                .collect()
        };
        let config = Self {
            sip_enabled: flag("SIPEnabled", base.sip_enabled)?,
            sip_port: port("SIPPort", base.sip_port)?,
            sip_tls_port: port("SIPTLSPort", base.sip_tls_port)?,
            stun_enabled: flag("STUNEnabled", base.stun_enabled)?,
            stun_servers: read_objects(f, "STUNServers", &base.stun_servers, StunServer::read)?,
            turn_enabled: flag("TURNEnabled", base.turn_enabled)?,
            turn_servers: read_objects(f, "TURNServers", &base.turn_servers, TurnServer::read)?,
            ice_enabled: flag("ICEEnabled", base.ice_enabled)?,
            allow_incoming_calls: flag("AllowIncomingCalls", base.allow_incoming_calls)?,
            apply_user_authentication: flag("ApplyUserAuthentication", base.apply_user_authentication)?,
            allowed_users: texts("AllowedUsers", &base.allowed_users, false)?,
            apply_allowed_uris: flag("ApplyAllowedURIs", base.apply_allowed_uris)?,
            allowed_uris: texts("AllowedURIs", &base.allowed_uris, true)?,
            attribute: if f.has("Attribute") { read_attributes(f)? } else { base.attribute.clone() },
            rtp_start_port: f.opt_int("RTPStartPort", 1024..=65_000)?.map_or(base.rtp_start_port, |p| p as u16),
            calling_timeout: f.opt_int("CallingTimeout", 1..=600)?.map_or(base.calling_timeout, |t| t as u32),
            apply_access_list: flag("ApplyAccessList", base.apply_access_list)?,
            access_list: texts("AccessList", &base.access_list, true)?,
            access_list_policy: match f.opt_text("AccessListPolicy")?.as_deref() {
                // The spec: "Null: Default to Allow".
                None if f.is_null("AccessListPolicy") => AccessListPolicy::Allow,
                None => base.access_list_policy,
                Some("Allow") => AccessListPolicy::Allow,
                Some("Block") => AccessListPolicy::Block,
                Some(other) => {
                    return Err(ModelError::invalid(
                        &f.path_of("AccessListPolicy"),
                        format!("{other:?} is not Allow or Block"),
                    ))
                }
            },
        };
        if config.sip_port == config.sip_tls_port {
            return Err(ModelError::invalid(&f.path_of("SIPTLSPort"), "SIPPort and SIPTLSPort must differ"));
        }
        if !config.rtp_start_port.is_multiple_of(2) {
            return Err(ModelError::invalid(&f.path_of("RTPStartPort"), "RTP ports start on an even number"));
        }
        Ok(config)
    }
}

/// The list of objects `name` read with `read`, or `current` when the request leaves it out.
fn read_objects<T: Clone>(
    f: &Fields<'_>,
    name: &str,
    current: &[T],
    read: fn(&Fields<'_>) -> ModelResult<T>,
) -> ModelResult<Vec<T>> {
    let Some(items) = f.opt_list(name)? else {
        return Ok(current.to_vec());
    };
    bounded(name, items.len(), f)?;
    items.into_iter().map(|i| read(&f.item(name, i)?)).collect()
}

fn bounded(name: &str, len: usize, f: &Fields<'_>) -> ModelResult<()> {
    if len > MAX_LIST_LEN {
        return Err(ModelError::invalid(&f.path_of(name), format!("at most {MAX_LIST_LEN} entries")));
    }
    Ok(())
}

impl StunServer {
    fn read(f: &Fields<'_>) -> ModelResult<Self> {
        let server = f.req_text("Server")?;
        validate_host(&server, &f.path_of("Server"))?;
        Ok(Self { server })
    }
}

impl TurnServer {
    fn read(f: &Fields<'_>) -> ModelResult<Self> {
        let server = f.req_text("Server")?;
        validate_host(&server, &f.path_of("Server"))?;
        Ok(Self { server, username: f.req_text("Username")?, password: f.req_text("Password")? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(v: serde_json::Value, base: &SipConfiguration) -> ModelResult<SipConfiguration> {
        SipConfiguration::read(&Fields::new(&v, "SIPConfiguration", false)?, base)
    }

    #[test]
    fn absent_fields_come_from_the_base() {
        let base = SipConfiguration { calling_timeout: 90, ..Default::default() };
        let c = read(json!({"SIPEnabled": true}), &base).expect("valid");
        assert!(c.sip_enabled);
        assert_eq!(c.calling_timeout, 90);
    }

    #[test]
    fn ranges_and_conflicts_are_refused() {
        let d = SipConfiguration::default();
        assert!(read(json!({"CallingTimeout": 0}), &d).is_err());
        assert!(read(json!({"CallingTimeout": 601}), &d).is_err());
        assert!(read(json!({"CallingTimeout": 600}), &d).is_ok());
        assert!(read(json!({"SIPPort": 70000}), &d).is_err());
        assert!(read(json!({"SIPPort": 5061}), &d).is_err());
        assert!(read(json!({"AccessList": ["not a uri"]}), &d).is_err());
        assert!(read(json!({"AccessListPolicy": "Maybe"}), &d).is_err());
        assert!(read(json!({"TURNServers": [{"Server": "turn.local"}]}), &d).is_err());
    }

    #[test]
    fn access_list_and_policy_are_read() {
        let c = read(
            json!({"ApplyAccessList": true, "AccessList": ["sip:6002@pbx"], "AccessListPolicy": "Block"}),
            &SipConfiguration::default(),
        )
        .expect("valid");
        assert_eq!(c.access_list, vec!["sip:6002@pbx".to_owned()]);
        assert_eq!(c.access_list_policy, AccessListPolicy::Block);
    }
}
