//! 2N's `/api/phone/config` (HTTP API 5.6.3) over the core: `GET` lists the two SIP accounts in
//! 2N's shape (never the password), `PUT` uploads the same file (`blob-json`, as a multipart
//! part, a form field or the body itself) and applies all of it or, on any error, none.
//!
//! Account `n` is the core's SIP account `n`: `enabled` its Enabled flag, `sipNumber` its
//! UserId, `authId` its AuthenticationId (empty means `sipNumber`, as in the core), `password`,
//! `displayName` its CallerId, `proxyAddress`/`proxyPort` its proxy, and with
//! `registrationEnabled` its Registrar (`registrarAddress:registrarPort`) and PublicDomain
//! (`domain:domainPort`). With registration off the account has neither (so it does not
//! register) and the addresses wait in the vendor settings, with `answerMode`.

use hyper::{Method, Response, StatusCode};
use serde_json::{json, Map, Value};

use crate::model::sip_account::SipProxy;
use crate::model::ModelError;
use crate::reply::{json_response, Body};
use crate::store::{DeviceState, Store};

use super::{join_host_port, new_account, split_host_port, update, valid_host, valid_port, Refused};

/// The accounts a 2N device has.
const ACCOUNTS: [u8; 2] = [1, 2];
/// Longest text parameter accepted.
const MAX_TEXT: usize = 255;

/// A 2N API error: HTTP 200 with `success: false`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ApiError {
    code: u16,
    param: String,
    description: String,
}

impl ApiError {
    fn missing(param: &str) -> Self {
        Self { code: 11, param: param.to_owned(), description: "missing mandatory parameter".into() }
    }

    fn invalid(param: &str, why: impl std::fmt::Display) -> Self {
        Self { code: 12, param: param.to_owned(), description: format!("invalid parameter value: {why}") }
    }

    fn response(&self) -> Response<Body> {
        let error = json!({ "code": self.code, "param": self.param, "description": self.description });
        json_response(StatusCode::OK, &json!({ "success": false, "error": error }))
    }
}

/// One account as 2N shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Account {
    account: u8,
    enabled: bool,
    display_name: String,
    sip_number: String,
    domain: String,
    domain_port: String,
    auth_id: String,
    proxy_address: String,
    proxy_port: String,
    registration_enabled: bool,
    registrar_address: String,
    registrar_port: String,
    answer_mode: String,
    /// Kept for writing back; never shown.
    password: String,
}

fn vendor_key(n: u8, field: &str) -> String {
    format!("2N.{n}.{field}")
}

impl Account {
    /// Account `n` as the core holds it.
    fn of(state: &DeviceState, n: u8) -> Account {
        let core = state.sip_accounts.get(&n.to_string());
        let vendor = |field: &str| state.vendor.get(&vendor_key(n, field)).cloned().unwrap_or_default();
        let registers = core.is_some_and(|a| a.registers());
        let (registrar, domain) = match core {
            Some(a) if registers => (a.registrar.clone(), a.public_domain.clone()),
            _ => (vendor("registrar"), vendor("domain")),
        };
        let proxy = core.and_then(|a| a.sip_proxies.first()).map(|p| p.server.clone()).unwrap_or_default();
        let (domain, domain_port) = split_host_port(&domain);
        let (registrar_address, registrar_port) = split_host_port(&registrar);
        let (proxy_address, proxy_port) = split_host_port(&proxy);
        let answer_mode = state.vendor.get(&vendor_key(n, "answerMode")).cloned().unwrap_or_else(|| "1".into());
        Account {
            account: n,
            enabled: core.is_some_and(|a| a.enabled),
            display_name: core.map(|a| a.caller_id.clone()).unwrap_or_default(),
            sip_number: core.map(|a| a.user_id.clone()).unwrap_or_default(),
            domain: domain.to_owned(),
            domain_port: domain_port.to_owned(),
            auth_id: core.map(|a| a.authentication_id.clone()).unwrap_or_default(),
            proxy_address: proxy_address.to_owned(),
            proxy_port: proxy_port.to_owned(),
            registration_enabled: registers,
            registrar_address: registrar_address.to_owned(),
            registrar_port: registrar_port.to_owned(),
            answer_mode,
            password: core.map(|a| a.password.clone()).unwrap_or_default(),
        }
    }

    /// The GET shape, in the order the device writes it.
    fn to_json(&self) -> Value {
        json!({
            "account": self.account,
            "enabled": self.enabled,
            "displayName": self.display_name,
            "sipNumber": self.sip_number,
            "domain": self.domain,
            "domainPort": self.domain_port,
            "authId": self.auth_id,
            "proxyAddress": self.proxy_address,
            "proxyPort": self.proxy_port,
            "registrationEnabled": self.registration_enabled,
            "registrarAddress": self.registrar_address,
            "registrarPort": self.registrar_port,
            "answerMode": self.answer_mode,
        })
    }

    /// Sets the parameters `item` names (besides `account`), checking each.
    fn merge(&mut self, item: &Map<String, Value>) -> Result<(), ApiError> {
        for (name, value) in item {
            match name.as_str() {
                "account" => {}
                "enabled" => self.enabled = boolean(name, value)?,
                "registrationEnabled" => self.registration_enabled = boolean(name, value)?,
                "displayName" => self.display_name = text(name, value)?,
                "password" => self.password = text(name, value)?,
                "sipNumber" => self.sip_number = user(name, value)?,
                "authId" => self.auth_id = user(name, value)?,
                "domain" => self.domain = host(name, value)?,
                "proxyAddress" => self.proxy_address = host(name, value)?,
                "registrarAddress" => self.registrar_address = host(name, value)?,
                "domainPort" => self.domain_port = port(name, value)?,
                "proxyPort" => self.proxy_port = port(name, value)?,
                "registrarPort" => self.registrar_port = port(name, value)?,
                "answerMode" => {
                    let mode = number_text(name, value)?;
                    if !matches!(mode.as_str(), "0" | "1" | "2" | "3") {
                        return Err(ApiError::invalid(name, "0, 1, 2 or 3"));
                    }
                    self.answer_mode = mode;
                }
                other => return Err(ApiError::invalid(other, "unknown parameter")),
            }
        }
        Ok(())
    }

    /// Writes this account into the core and the vendor settings.
    fn store(&self, state: &mut DeviceState) -> Result<(), ModelError> {
        let n = self.account;
        let id = n.to_string();
        let mut core = state.sip_accounts.get(&id).cloned().unwrap_or_else(|| new_account(&id));
        core.enabled = self.enabled;
        core.caller_id = self.display_name.clone();
        core.user_id = self.sip_number.clone();
        core.authentication_id = self.auth_id.clone();
        core.password = self.password.clone();
        let registrar = join_host_port(&self.registrar_address, &self.registrar_port);
        let domain = join_host_port(&self.domain, &self.domain_port);
        let parked = [("registrar", registrar.clone()), ("domain", domain.clone())];
        if self.registration_enabled {
            core.registrar = registrar;
            core.public_domain = domain;
            for (field, _) in &parked {
                state.vendor.remove(&vendor_key(n, field));
            }
        } else {
            core.registrar.clear();
            core.public_domain.clear();
            for (field, value) in parked {
                match value.is_empty() {
                    true => state.vendor.remove(&vendor_key(n, field)),
                    false => state.vendor.insert(vendor_key(n, field), value),
                };
            }
        }
        let proxy = join_host_port(&self.proxy_address, &self.proxy_port);
        core.sip_proxies = match proxy.is_empty() {
            true => Vec::new(),
            false => vec![SipProxy { server: proxy, username: String::new(), password: String::new() }],
        };
        state.vendor.insert(vendor_key(n, "answerMode"), self.answer_mode.clone());
        state.set_sip_accounts(vec![core]).map(drop)
    }
}

fn boolean(name: &str, value: &Value) -> Result<bool, ApiError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s == "true" || s == "1" => Ok(true),
        Value::String(s) if s == "false" || s == "0" => Ok(false),
        _ => Err(ApiError::invalid(name, "true or false")),
    }
}

fn text(name: &str, value: &Value) -> Result<String, ApiError> {
    match value {
        Value::String(s) if s.len() <= MAX_TEXT && !s.chars().any(char::is_control) => Ok(s.clone()),
        Value::String(_) => Err(ApiError::invalid(name, format!("at most {MAX_TEXT} printable characters"))),
        _ => Err(ApiError::invalid(name, "a string")),
    }
}

/// A number given as a string or as a JSON number.
fn number_text(name: &str, value: &Value) -> Result<String, ApiError> {
    match value {
        Value::Number(n) => Ok(n.to_string()),
        Value::String(s) => Ok(s.trim().to_owned()),
        _ => Err(ApiError::invalid(name, "a number")),
    }
}

fn user(name: &str, value: &Value) -> Result<String, ApiError> {
    let user = text(name, value)?;
    match user.bytes().any(|b| b.is_ascii_whitespace() || b"@:;<>\"".contains(&b)) {
        true => Err(ApiError::invalid(name, "a SIP user part")),
        false => Ok(user),
    }
}

fn host(name: &str, value: &Value) -> Result<String, ApiError> {
    let host = text(name, value)?;
    match valid_host(&host) {
        true => Ok(host),
        false => Err(ApiError::invalid(name, "a host name or address")),
    }
}

fn port(name: &str, value: &Value) -> Result<String, ApiError> {
    let port = number_text(name, value)?;
    match port.is_empty() || valid_port(&port) {
        true => Ok(port),
        false => Err(ApiError::invalid(name, "a port 1-65535 or empty")),
    }
}

/// The account number `value` names.
fn account_number(value: &Value) -> Result<u8, ApiError> {
    let n = number_text("account", value)?;
    ACCOUNTS.into_iter().find(|a| a.to_string() == n).ok_or_else(|| ApiError::invalid("account", "1 or 2"))
}

/// Answers `/api/phone/config`.
pub async fn handle(
    method: &Method,
    query: Option<&str>,
    content_type: Option<&str>,
    body: bytes::Bytes,
    store: &Store,
) -> Response<Body> {
    let answer = match *method {
        Method::GET => get(query, store),
        Method::PUT => put(content_type, body, store).await,
        _ => Err(ApiError { code: 3, param: String::new(), description: "invalid request method".into() }),
    };
    match answer {
        Ok(result) => {
            let mut ok = Map::new();
            ok.insert("success".into(), Value::Bool(true));
            if let Some(result) = result {
                ok.insert("result".into(), result);
            }
            json_response(StatusCode::OK, &Value::Object(ok))
        }
        Err(e) => e.response(),
    }
}

fn get(query: Option<&str>, store: &Store) -> Result<Option<Value>, ApiError> {
    let wanted = form_urlencoded::parse(query.unwrap_or_default().as_bytes()).find(|(k, _)| k == "account");
    let numbers: Vec<u8> = match wanted {
        Some((_, n)) => vec![account_number(&Value::String(n.into_owned()))?],
        None => ACCOUNTS.to_vec(),
    };
    let accounts = store.read(|s| numbers.iter().map(|&n| Account::of(s, n).to_json()).collect::<Vec<_>>());
    Ok(Some(json!({ "accounts": accounts })))
}

async fn put(content_type: Option<&str>, body: bytes::Bytes, store: &Store) -> Result<Option<Value>, ApiError> {
    let blob = blob_json(content_type, body).await?;
    let file: Value = serde_json::from_slice(&blob).map_err(|e| ApiError::invalid("blob-json", e))?;
    // The file GET returns, whole (`success`, `result`) or its `result`.
    let root = file.get("result").unwrap_or(&file);
    let items = root
        .get("accounts")
        .ok_or_else(|| ApiError::missing("accounts"))?
        .as_array()
        .ok_or_else(|| ApiError::invalid("accounts", "a list"))?;
    let mut updates = Vec::with_capacity(items.len());
    for item in items {
        let item = item.as_object().ok_or_else(|| ApiError::invalid("accounts", "a list of objects"))?;
        let n = account_number(item.get("account").ok_or_else(|| ApiError::missing("account"))?)?;
        if item.len() < 2 {
            return Err(ApiError::missing("account parameters"));
        }
        updates.push((n, item));
    }
    // Every parameter is checked against the state it merges into, inside the one update.
    let applied = update(store, |state| {
        for (n, item) in &updates {
            let mut account = Account::of(state, *n);
            account.merge(item).map_err(Refused::Face)?;
            account.store(state)?;
        }
        Ok(())
    });
    match applied {
        Ok(()) => {}
        Err(Refused::Face(e)) => return Err(e),
        Err(Refused::Store(e)) => return Err(ApiError::invalid("accounts", e)),
    }
    Ok(None)
}

/// The uploaded file: the `blob-json` part of a multipart form (what `curl -F blob-json=@f`
/// sends), the `blob-json` field of a URL-encoded form, or the body itself (JSON).
async fn blob_json(content_type: Option<&str>, body: bytes::Bytes) -> Result<bytes::Bytes, ApiError> {
    let content_type = content_type.unwrap_or_default();
    if content_type.starts_with("multipart/form-data") {
        let boundary = multer::parse_boundary(content_type).map_err(|e| ApiError::invalid("blob-json", e))?;
        let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
        let mut form = multer::Multipart::new(stream, boundary);
        while let Some(field) = form.next_field().await.map_err(|e| ApiError::invalid("blob-json", e))? {
            if field.name() == Some("blob-json") {
                return field.bytes().await.map_err(|e| ApiError::invalid("blob-json", e));
            }
        }
        return Err(ApiError::missing("blob-json"));
    }
    // `curl -d` labels any body a form: a `blob-json` field if there is one, else the body.
    if content_type.starts_with("application/x-www-form-urlencoded") && body.starts_with(b"blob-json=") {
        if let Some((_, v)) = form_urlencoded::parse(&body).find(|(k, _)| k == "blob-json") {
            return Ok(bytes::Bytes::from(v.into_owned()));
        }
    }
    match body.is_empty() {
        true => Err(ApiError::missing("blob-json")),
        false => Ok(body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_round_trips_through_the_core() {
        let mut state = DeviceState::default();
        let mut a = Account::of(&state, 2);
        let item = json!({"account": 2, "enabled": true, "sipNumber": "4001", "password": "secret",
            "domain": "pbx.local", "domainPort": "5062", "registrationEnabled": true,
            "registrarAddress": "10.0.0.5", "registrarPort": 5070, "proxyAddress": "proxy", "answerMode": "0"});
        a.merge(item.as_object().expect("object")).expect("valid");
        a.store(&mut state).expect("stored");
        let core = &state.sip_accounts["2"];
        assert_eq!((core.registrar.as_str(), core.public_domain.as_str()), ("10.0.0.5:5070", "pbx.local:5062"));
        assert_eq!(Account::of(&state, 2), a);
        // Registration off: the core account stops registering, the addresses are kept.
        a.merge(json!({"registrationEnabled": false}).as_object().expect("object")).expect("valid");
        a.store(&mut state).expect("stored");
        assert!(!state.sip_accounts["2"].registers());
        assert_eq!(Account::of(&state, 2), a);
    }
}
