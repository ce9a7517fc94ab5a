//! HTTP authentication as the device does it: Digest (MD5 and SHA-256, `qop=auth`) and Basic.
//!
//! Nonces are stateless: `<issued-at hex>.<HMAC-like tag>`, so no map grows with clients.
//! A nonce is good for [`NONCE_LIFETIME`]; an older one gets a fresh challenge with
//! `stale=true`, which clients answer without asking the user again. The digest arithmetic
//! itself comes from the `digest_auth` crate, whose `AuthorizationHeader::digest` recomputes the
//! expected response from the known password.
//! Known limit: nonce counts are not tracked, so a captured request can be replayed while its
//! nonce is fresh (real devices differ here; the emulator trades that for bounded memory).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use digest_auth::{AuthContext, AuthorizationHeader, HttpMethod};
use hyper::header::HeaderValue;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// How long a nonce stays valid.
pub const NONCE_LIFETIME: Duration = Duration::from_secs(300);

/// The accounts and secret one device checks requests against.
#[derive(Debug, Clone)]
pub struct Authenticator {
    users: Vec<(String, String)>,
    realm: String,
    secret: [u8; 32],
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No or wrong credentials.
    Unauthorized,
    /// Right credentials on an expired nonce.
    Stale,
}

impl Authenticator {
    /// An authenticator for `users` (name, password) in `realm`.
    pub fn new(users: Vec<(String, String)>, realm: String) -> Self {
        let mut secret = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut secret);
        Self { users, realm, secret }
    }

    /// Checks the `Authorization` header of an HTTP request to `uri` (path and query as sent).
    /// Returns the user name.
    pub fn check(&self, method: &str, uri: &str, header: Option<&HeaderValue>) -> Result<String, Refusal> {
        self.check_text(method, Some(uri), header.and_then(|h| h.to_str().ok()))
    }

    /// Checks the `Authorization` header of an RTSP request. The digest is verified against the
    /// URI the client signed, which RTSP clients set to the session URL even for SETUP.
    pub fn check_rtsp(&self, method: &str, header: Option<&str>) -> Result<String, Refusal> {
        self.check_text(method, None, header)
    }

    fn check_text(&self, method: &str, uri: Option<&str>, header: Option<&str>) -> Result<String, Refusal> {
        let header = header.ok_or(Refusal::Unauthorized)?;
        let (scheme, rest) = header.split_once(' ').ok_or(Refusal::Unauthorized)?;
        if scheme.eq_ignore_ascii_case("basic") {
            self.check_basic(rest.trim())
        } else if scheme.eq_ignore_ascii_case("digest") {
            self.check_digest(method, uri, rest)
        } else {
            Err(Refusal::Unauthorized)
        }
    }

    fn password_of(&self, user: &str) -> Option<&str> {
        self.users.iter().find(|(u, _)| u == user).map(|(_, p)| p.as_str())
    }

    fn check_basic(&self, encoded: &str) -> Result<String, Refusal> {
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|_| Refusal::Unauthorized)?;
        let text = String::from_utf8(decoded).map_err(|_| Refusal::Unauthorized)?;
        let (user, pass) = text.split_once(':').ok_or(Refusal::Unauthorized)?;
        match self.password_of(user) {
            Some(p) if constant_time_eq(p.as_bytes(), pass.as_bytes()) => Ok(user.to_owned()),
            _ => Err(Refusal::Unauthorized),
        }
    }

    fn check_digest(&self, method: &str, uri: Option<&str>, params: &str) -> Result<String, Refusal> {
        let params = escape_quotes_in_uri(params);
        let sent = AuthorizationHeader::parse(&params).map_err(|_| Refusal::Unauthorized)?;
        let password = self.password_of(&sent.username).ok_or(Refusal::Unauthorized)?;
        // The request target may have had raw quotes encoded on the way in (request_target).
        let same_target = |u: &str| sent.uri == u || crate::request_target::lenient(&sent.uri) == u;
        if sent.realm != self.realm || uri.is_some_and(|u| !same_target(u)) || sent.userhash {
            return Err(Refusal::Unauthorized);
        }
        let uri = sent.uri.as_str();
        let fresh = self.nonce_is_fresh(&sent.nonce).ok_or(Refusal::Unauthorized)?;
        let mut expected = sent.clone();
        let context = AuthContext::new_with_method(
            sent.username.as_str(),
            password,
            uri,
            Option::<&[u8]>::None,
            HttpMethod(method.into()),
        );
        expected.digest(&context);
        if !constant_time_eq(expected.response.as_bytes(), sent.response.to_ascii_lowercase().as_bytes()) {
            return Err(Refusal::Unauthorized);
        }
        if fresh {
            Ok(sent.username)
        } else {
            Err(Refusal::Stale)
        }
    }

    /// The `WWW-Authenticate` challenges of a 401: Digest MD5, Digest SHA-256, Basic, with one
    /// nonce. MD5 comes first because common clients (Python's urllib, httpx) take the first
    /// Digest challenge and some of them refuse SHA-256.
    pub fn challenges(&self, stale: bool) -> Vec<HeaderValue> {
        let nonce = self.new_nonce();
        let stale = if stale { ", stale=true" } else { "" };
        let realm = &self.realm;
        ["MD5", "SHA-256"]
            .iter()
            .map(|alg| format!("Digest realm=\"{realm}\", nonce=\"{nonce}\", algorithm={alg}, qop=\"auth\"{stale}"))
            .chain(std::iter::once(format!("Basic realm=\"{realm}\"")))
            .filter_map(|v| HeaderValue::from_str(&v).ok())
            .collect()
    }

    /// The RTSP challenge: Digest without qop, as Axis RTSP servers send it (clients such as the
    /// Home Assistant library parse `realm`, `nonce` and `stale` from exactly this form).
    pub fn rtsp_challenge(&self) -> String {
        format!("Digest realm=\"{}\", nonce=\"{}\", stale=FALSE", self.realm, self.new_nonce())
    }

    fn new_nonce(&self) -> String {
        let issued = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        format!("{issued:x}.{}", self.tag(issued))
    }

    fn tag(&self, issued: u64) -> String {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(issued.to_be_bytes());
        h.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
    }

    /// `Some(true)` for a nonce of ours that is fresh, `Some(false)` for one that expired,
    /// `None` for one we never issued.
    fn nonce_is_fresh(&self, nonce: &str) -> Option<bool> {
        let (issued, tag) = nonce.split_once('.')?;
        let issued = u64::from_str_radix(issued, 16).ok()?;
        if !constant_time_eq(tag.as_bytes(), self.tag(issued).as_bytes()) {
            return None;
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        Some(now.saturating_sub(issued) <= NONCE_LIFETIME.as_secs())
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// curl writes a request target with raw quotation marks into the Digest `uri` parameter as it
/// is (`uri="/x?a="b""`), which no parser can read. Escapes the quotes inside that value: it
/// runs from `uri="` to the `"` that is followed by `, key=` or by the end of the header.
fn escape_quotes_in_uri(params: &str) -> std::borrow::Cow<'_, str> {
    let Some(start) = params.find("uri=\"").map(|i| i + 5) else { return params.into() };
    let rest = &params[start..];
    let ends_value = |i: usize| {
        let after = rest[i + 1..].trim_start();
        after.is_empty()
            || after.strip_prefix(',').is_some_and(|a| {
                let key: String =
                    a.trim_start().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
                !key.is_empty() && a.trim_start()[key.len()..].starts_with('=')
            })
    };
    let Some(end) = rest.char_indices().filter(|(_, c)| *c == '"').map(|(i, _)| i).find(|i| ends_value(*i)) else {
        return params.into();
    };
    let value = &rest[..end];
    if !value.contains('"') || value.contains("\\\"") {
        return params.into();
    }
    format!("{}{}{}", &params[..start], value.replace('"', "\\\""), &rest[end..]).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use digest_auth::WwwAuthenticateHeader;

    fn auth() -> Authenticator {
        Authenticator::new(vec![("root".into(), "pass".into())], "AXIS_TEST".into())
    }

    fn respond(a: &Authenticator, challenge: &HeaderValue, user: &str, pass: &str, uri: &str) -> HeaderValue {
        let mut prompt = WwwAuthenticateHeader::parse(challenge.to_str().expect("ascii")).expect("challenge");
        let ctx = AuthContext::new_with_method(user, pass, uri, Option::<&[u8]>::None, HttpMethod::POST);
        let _ = a;
        HeaderValue::from_str(&prompt.respond(&ctx).expect("response").to_string()).expect("header")
    }

    #[test]
    fn digest_md5_and_sha256_are_accepted_and_wrong_passwords_refused() {
        let a = auth();
        for challenge in &a.challenges(false)[..2] {
            let ok = respond(&a, challenge, "root", "pass", "/vapix/call");
            assert_eq!(a.check("POST", "/vapix/call", Some(&ok)), Ok("root".into()));
            let bad = respond(&a, challenge, "root", "nope", "/vapix/call");
            assert_eq!(a.check("POST", "/vapix/call", Some(&bad)), Err(Refusal::Unauthorized));
            // A response computed for another URI does not open this one.
            assert_eq!(a.check("POST", "/other", Some(&ok)), Err(Refusal::Unauthorized));
        }
    }

    #[test]
    fn forged_and_expired_nonces() {
        let a = auth();
        assert_eq!(a.nonce_is_fresh("0.00"), None);
        let old = 1_000u64;
        assert_eq!(a.nonce_is_fresh(&format!("{old:x}.{}", a.tag(old))), Some(false));
        assert_eq!(a.nonce_is_fresh(&a.new_nonce()), Some(true));
        // Another device's nonce (another secret) is refused.
        assert_eq!(auth().nonce_is_fresh(&a.new_nonce()), None);
    }

    #[test]
    fn basic() {
        let a = auth();
        let ok = HeaderValue::from_static("Basic cm9vdDpwYXNz");
        assert_eq!(a.check("GET", "/", Some(&ok)), Ok("root".into()));
        let bad = HeaderValue::from_static("Basic cm9vdDpwYXN4");
        assert_eq!(a.check("GET", "/", Some(&bad)), Err(Refusal::Unauthorized));
        assert_eq!(a.check("GET", "/", None), Err(Refusal::Unauthorized));
        assert_eq!(a.check("GET", "/", Some(&HeaderValue::from_static("Basic !!!"))), Err(Refusal::Unauthorized));
    }

    #[test]
    fn raw_quotes_in_a_digest_uri_are_escaped() {
        let curl = r#"username="root", uri="/x?a="b"", nc=00000001, response="r""#;
        assert_eq!(escape_quotes_in_uri(curl), r#"username="root", uri="/x?a=\"b\"", nc=00000001, response="r""#);
        let plain = r#"username="root", uri="/x?a=b", nc=1"#;
        assert_eq!(escape_quotes_in_uri(plain), plain);
        let last = r#"username="root", uri="/x?a="b"""#;
        assert_eq!(escape_quotes_in_uri(last), r#"username="root", uri="/x?a=\"b\"""#);
    }
}
