//! BAS-IP's Android monitor API v0 over the core: `GET /api/v0/login` trades the first user's
//! MD5-hashed password for a bearer token (as the device does), and `GET`/`POST
//! /api/v0/sip/settings` read and write the SIP settings, every rule of the vendor's schema
//! checked before anything changes.
//!
//! The settings are the core's account `1`: `user` its UserId, `user_id` its AuthenticationId,
//! `password`, `transport`, `realm` its Registrar and PublicDomain (so a realm makes the device
//! register there), `proxy` its proxy, `enable` its Enabled flag, `registration_interval` its
//! RegistrationInterval (30 s allowed here, as the brand does); `timeout` is the device's
//! MaxCallDuration and `stun` its STUN server. `is_enable_ring_code` is kept beside the core.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hyper::{Method, Response, StatusCode};
use md5::{Digest, Md5};
use serde_json::{json, Map, Value};

use crate::auth::hex;
use crate::model::attribute::{int_attribute, Attribute};
use crate::model::sip_account::{SipProxy, Transport};
use crate::model::sip_configuration::StunServer;
use crate::model::ModelError;
use crate::reply::{json_response, plain, Body};
use crate::store::{DeviceState, Store};

use super::{join_host_port, new_account, split_host_port, update, valid_host, Refused};

/// The core account the settings are.
const ACCOUNT: &str = "1";
/// How long a login token is good for.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(2 * 3600);
/// Tokens kept at most; the oldest goes first.
const MAX_TOKENS: usize = 64;
/// The call timeouts the schema allows, in seconds.
const TIMEOUTS: [i64; 5] = [120, 300, 600, 1200, 1800];
/// The registration intervals the schema allows, in seconds.
const REGISTRATION_INTERVALS: std::ops::RangeInclusive<i64> = 30..=900;
/// Shown while no account holds one.
const DEFAULT_REGISTRATION_INTERVAL: i64 = 300;
/// The STUN port shown while none is set.
const DEFAULT_STUN_PORT: u16 = 3478;
const RING_CODE_KEY: &str = "BAS-IP.is_enable_ring_code";

/// The login sessions of one device.
#[derive(Debug)]
pub struct Sessions {
    /// The user name and the MD5 hex of the password a login must present.
    login: (String, String),
    /// Issued tokens with their expiry, oldest first.
    tokens: Mutex<VecDeque<(String, Instant)>>,
}

impl Sessions {
    /// Logins as `user` (or `admin`, the name the device's own clients send) with `password`.
    pub fn new(user: &str, password: &str) -> Self {
        Self { login: (user.to_owned(), password_hash(password)), tokens: Mutex::new(VecDeque::new()) }
    }

    fn tokens(&self) -> std::sync::MutexGuard<'_, VecDeque<(String, Instant)>> {
        self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `GET /api/v0/login?username=..&password=<md5 hex>`.
    pub fn login(&self, query: Option<&str>) -> Response<Body> {
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(query.unwrap_or_default().as_bytes()).into_owned().collect();
        let value = |k: &str| pairs.iter().find(|(name, _)| name == k).map(|(_, v)| v.as_str());
        let user_ok = value("username").is_some_and(|u| u == "admin" || u == self.login.0);
        let password_ok = value("password").is_some_and(|p| p.eq_ignore_ascii_case(&self.login.1));
        if !(user_ok && password_ok) {
            return log_in();
        }
        let token = hex(&rand::random::<[u8; 16]>());
        let mut tokens = self.tokens();
        let now = Instant::now();
        tokens.retain(|(_, expiry)| *expiry > now);
        if tokens.len() >= MAX_TOKENS {
            tokens.pop_front();
        }
        tokens.push_back((token.clone(), now + TOKEN_LIFETIME));
        json_response(StatusCode::OK, &json!({ "token": token, "account_type": "admin" }))
    }

    /// Whether `authorization` carries a live token.
    pub fn admits(&self, authorization: Option<&str>) -> bool {
        let Some(token) = authorization.and_then(|a| a.strip_prefix("Bearer ")).map(str::trim) else {
            return false;
        };
        let now = Instant::now();
        self.tokens().iter().any(|(t, expiry)| t == token && *expiry > now)
    }
}

/// The answer to a request without a valid token.
pub fn log_in() -> Response<Body> {
    json_response(StatusCode::UNAUTHORIZED, &json!({ "error": "Log In" }))
}

/// What a login sends for `password`: its MD5, in lower-case hexadecimal.
pub fn password_hash(password: &str) -> String {
    hex(&Md5::digest(password.as_bytes()))
}

/// The settings in the vendor's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    enable: bool,
    proxy: String,
    realm: String,
    user: String,
    password: String,
    transport: Transport,
    user_id: String,
    ring_code: bool,
    timeout: i64,
    registration_interval: i64,
    stun_ip: String,
    stun_port: u16,
}

impl Settings {
    fn of(state: &DeviceState) -> Settings {
        let core = state.sip_accounts.get(ACCOUNT);
        let stun = state.sip_configuration.stun_servers.first().map(|s| s.server.as_str()).unwrap_or_default();
        let (stun_ip, stun_port) = split_host_port(stun);
        let interval = core
            .filter(|a| a.attribute.iter().any(|x| x.name == "RegistrationInterval"))
            .map_or(DEFAULT_REGISTRATION_INTERVAL, |a| int_attribute(&a.attribute, "RegistrationInterval"));
        Settings {
            enable: core.is_some_and(|a| a.enabled),
            proxy: core.and_then(|a| a.sip_proxies.first()).map(|p| p.server.clone()).unwrap_or_default(),
            realm: core.map(|a| a.registrar.clone()).unwrap_or_default(),
            user: core.map(|a| a.user_id.clone()).unwrap_or_default(),
            password: core.map(|a| a.password.clone()).unwrap_or_default(),
            transport: core.map_or(Transport::Udp, |a| a.transport),
            user_id: core.map(|a| a.authentication_id.clone()).unwrap_or_default(),
            ring_code: state.vendor.get(RING_CODE_KEY).is_some_and(|v| v == "true"),
            timeout: int_attribute(&state.sip_configuration.attribute, "MaxCallDuration"),
            registration_interval: interval,
            stun_ip: stun_ip.to_owned(),
            stun_port: stun_port.parse().unwrap_or(DEFAULT_STUN_PORT),
        }
    }

    /// The GET shape, in the order of the vendor's example.
    fn to_json(&self) -> Value {
        json!({
            "enable": self.enable,
            "proxy": self.proxy,
            "realm": self.realm,
            "user": self.user,
            "password": self.password,
            "transport": match self.transport { Transport::Udp => "udp", Transport::Tcp => "tcp", Transport::Tls => "tls" },
            "user_id": self.user_id,
            "is_enable_ring_code": self.ring_code,
            "timeout": self.timeout,
            "registration_interval": self.registration_interval,
            "stun": { "ip": self.stun_ip, "port": self.stun_port },
        })
    }

    /// Applies a POST body, every field checked in the schema's order; the first error wins.
    fn merge(&mut self, body: &Map<String, Value>) -> Result<(), String> {
        let field = |name: &str, required: bool| match body.get(name) {
            None | Some(Value::Null) if required => Err(format!("Wrong JSON body: no value for `{name}`")),
            other => Ok(other.filter(|v| !v.is_null())),
        };
        let wrong_type = |name: &str| format!("Wrong JSON body: value `{name}` was of the wrong type");
        let wrong_value = |name: &str| format!("Wrong `{name}` value");
        let string = |name: &str, v: &Value| v.as_str().map(str::to_owned).ok_or_else(|| wrong_type(name));
        let boolean = |name: &str, v: &Value| v.as_bool().ok_or_else(|| wrong_type(name));
        let integer = |name: &str, v: &Value| v.as_i64().ok_or_else(|| wrong_type(name));

        if let Some(v) = field("enable", true)? {
            self.enable = boolean("enable", v)?;
        }
        for (name, slot) in [("proxy", &mut self.proxy), ("realm", &mut self.realm)] {
            if let Some(v) = field(name, false)? {
                let text = string(name, v)?;
                if !valid_host(text.strip_prefix("sip:").unwrap_or(&text)) {
                    return Err(wrong_value(name));
                }
                *slot = text;
            }
        }
        if let Some(v) = field("user", true)? {
            let user = string("user", v)?;
            if !allowed(&user, 1..=31) {
                return Err(wrong_value("user"));
            }
            self.user = user;
        }
        if let Some(v) = field("password", true)? {
            let password = string("password", v)?;
            if !allowed(&password, 6..=31) {
                return Err(wrong_value("password"));
            }
            self.password = password;
        }
        if let Some(v) = field("transport", true)? {
            self.transport = match string("transport", v)?.as_str() {
                "udp" => Transport::Udp,
                "tcp" => Transport::Tcp,
                "tls" => Transport::Tls,
                _ => return Err(wrong_value("transport")),
            };
        }
        if let Some(v) = field("user_id", false)? {
            let id = string("user_id", v)?;
            if !allowed(&id, 0..=31) {
                return Err(wrong_value("user_id"));
            }
            self.user_id = id;
        }
        if let Some(v) = field("is_enable_ring_code", false)? {
            self.ring_code = boolean("is_enable_ring_code", v)?;
        }
        if let Some(v) = field("timeout", false)? {
            self.timeout =
                Some(integer("timeout", v)?).filter(|t| TIMEOUTS.contains(t)).ok_or_else(|| wrong_value("timeout"))?;
        }
        if let Some(v) = field("registration_interval", false)? {
            let interval = integer("registration_interval", v)?;
            if !REGISTRATION_INTERVALS.contains(&interval) {
                return Err(wrong_value("registration_interval"));
            }
            self.registration_interval = interval;
        }
        if let Some(v) = field("stun", false)? {
            let stun = v.as_object().ok_or_else(|| wrong_type("stun"))?;
            if let Some(ip) = stun.get("ip") {
                let ip = string("stun", ip)?;
                if !valid_host(&ip) {
                    return Err(wrong_value("stun"));
                }
                self.stun_ip = ip;
            }
            if let Some(port) = stun.get("port") {
                let port = integer("stun", port)?;
                self.stun_port = u16::try_from(port).ok().filter(|p| *p > 0).ok_or_else(|| wrong_value("stun"))?;
            }
        }
        Ok(())
    }

    fn store(&self, state: &mut DeviceState) -> Result<(), ModelError> {
        let mut core = state.sip_accounts.get(ACCOUNT).cloned().unwrap_or_else(|| new_account(ACCOUNT));
        core.enabled = self.enable;
        core.user_id = self.user.clone();
        core.authentication_id = self.user_id.clone();
        core.password = self.password.clone();
        core.transport = self.transport;
        core.registrar = self.realm.clone();
        core.public_domain = self.realm.clone();
        // Kept as written (`sip:host` or `host`): the core reads either as the next hop.
        core.sip_proxies = match self.proxy.is_empty() {
            true => Vec::new(),
            false => vec![SipProxy { server: self.proxy.clone(), username: String::new(), password: String::new() }],
        };
        set_attribute(&mut core.attribute, "RegistrationInterval", self.registration_interval);
        let config = &mut state.sip_configuration;
        set_attribute(&mut config.attribute, "MaxCallDuration", self.timeout);
        let stun = join_host_port(&self.stun_ip, &self.stun_port.to_string());
        config.stun_enabled = !stun.is_empty();
        config.stun_servers = if stun.is_empty() { Vec::new() } else { vec![StunServer { server: stun }] };
        state.vendor.insert(RING_CODE_KEY.into(), self.ring_code.to_string());
        state.set_sip_accounts(vec![core]).map(drop)
    }
}

/// Whether `text` has a length in `lengths` and only the characters the schema allows: letters,
/// digits, white space and ``~`!@#$%^&;*()_-+={[}]|"<,>.?/``.
fn allowed(text: &str, lengths: std::ops::RangeInclusive<usize>) -> bool {
    lengths.contains(&text.chars().count())
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c.is_whitespace() || "~`!@#$%^&;*()_-+={[}]|\"<,>.?/".contains(c))
}

fn set_attribute(attributes: &mut Vec<Attribute>, name: &str, value: i64) {
    attributes.retain(|a| a.name != name);
    attributes.push(Attribute { name: name.to_owned(), value: value.to_string() });
}

fn error(text: &str) -> Response<Body> {
    json_response(StatusCode::BAD_REQUEST, &json!({ "error": text }))
}

/// Answers `/api/v0/sip/settings` (the token already checked).
pub fn sip_settings(method: &Method, body: &[u8], store: &Store) -> Response<Body> {
    match *method {
        Method::GET => json_response(StatusCode::OK, &store.read(Settings::of).to_json()),
        Method::POST => {
            let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
                return error("Wrong JSON body");
            };
            let applied = update(store, |state| {
                let mut settings = Settings::of(state);
                settings.merge(&request).map_err(Refused::Face)?;
                Ok(settings.store(state)?)
            });
            match applied {
                Ok(()) => json_response(StatusCode::OK, &store.read(Settings::of).to_json()),
                Err(Refused::Face(e)) => error(&e),
                Err(Refused::Store(e)) => error(&e.to_string()),
            }
        }
        _ => plain(StatusCode::METHOD_NOT_ALLOWED, "405 Method Not Allowed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_character_sets_and_lengths() {
        assert!(allowed("101", 1..=31) && allowed("~`!@#$%^&;*()_-+={[}]|\"<,>.?/", 1..=31) && allowed("a b", 1..=31));
        assert!(!allowed("", 1..=31) && !allowed(&"x".repeat(32), 1..=31) && !allowed("a:b", 1..=31));
        assert!(!allowed("12345", 6..=31) && allowed("123abc", 6..=31) && !allowed("pässwort", 6..=31));
    }

    #[test]
    fn tokens_are_issued_for_the_right_password_only() {
        let sessions = Sessions::new("root", "pass");
        let wrong = sessions.login(Some("username=admin&password=0123"));
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
        let hashed = password_hash("pass");
        assert_eq!(hashed, "1a1dc91c907325c69271ddf0c944bc72");
        assert_eq!(sessions.login(Some(&format!("username=admin&password={hashed}"))).status(), StatusCode::OK);
        let token = sessions.tokens().back().map(|(t, _)| t.clone()).expect("a token");
        assert!(sessions.admits(Some(&format!("Bearer {token}"))));
        assert!(!sessions.admits(Some("Bearer nope")) && !sessions.admits(None));
    }
}
