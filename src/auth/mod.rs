//! HTTP authentication as the device does it: Digest (MD5 and SHA-256, `qop=auth`) and Basic.
//!
//! Nonces carry their own proof: `<issued-at hex>.<serial hex>.<HMAC-like tag>`, so the device
//! recognises its own without storing them. A nonce is good for [`NONCE_LIFETIME`]; an older one
//! (or one from another run) gets a fresh challenge, with `stale=true` when the credentials
//! were right, which clients answer without asking the user again. Each authenticated `qop`
//! request must bring a count (`nc`) its nonce has not used: a replayed count is refused.
//! Counts may arrive out of order (a client's parallel connections share a nonce), so each
//! nonce keeps a 64-count window above a floor, as IPsec's anti-replay window does; counts of
//! at most [`MAX_TRACKED_NONCES`] nonces are kept (the oldest are forgotten first). The headers
//! are read in place ([`digest_params`]). The challenges' own algorithms (MD5 and SHA-256 with
//! `qop=auth` or none) are checked from each account's HA1 (`H(user:realm:password)`), computed
//! once, as servers that store HA1 do: two hashes per request. Anything else (`-sess`,
//! `auth-int`, SHA-512-256) goes through `AuthorizationHeader::digest`, which recomputes all.

mod digest_params;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use digest_auth::{AuthContext, AuthorizationHeader, HttpMethod};

use digest_params::DigestParams;
use hyper::header::HeaderValue;
use md5::Md5;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// How long a nonce stays valid.
pub const NONCE_LIFETIME: Duration = Duration::from_secs(300);
/// Nonces whose last count is remembered, at most.
pub const MAX_TRACKED_NONCES: usize = 4096;

/// The accounts and secret one device checks requests against.
#[derive(Debug)]
pub struct Authenticator {
    users: Vec<(String, String)>,
    /// Each user's Basic credentials as the header carries them, `base64(user:password)`
    /// (same order): the canonical base64 of a text is the only one the decoder accepts, so
    /// comparing these is checking the decoded pair, without decoding.
    basic: Vec<String>,
    /// HA1 of each user (same order), MD5 and SHA-256, in lower-case hex.
    ha1: Vec<[String; 2]>,
    realm: String,
    secret: [u8; 32],
    /// Makes nonces issued in the same second differ.
    serial: std::sync::atomic::AtomicU64,
    /// The counts used per nonce, oldest nonce first. Held only to check and record.
    counts: std::sync::Mutex<indexmap::IndexMap<String, ReplayWindow>>,
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
        let ha1 = users
            .iter()
            .map(|(user, pass)| {
                let a1 = format!("{user}:{realm}:{pass}");
                [hash::<Md5>(&[a1.as_bytes()]), hash::<Sha256>(&[a1.as_bytes()])]
            })
            .collect();
        let basic = users
            .iter()
            .map(|(user, pass)| base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")))
            .collect();
        Self { users, basic, ha1, realm, secret, serial: Default::default(), counts: Default::default() }
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

    fn check_basic(&self, encoded: &str) -> Result<String, Refusal> {
        let mut users = self.users.iter().zip(&self.basic);
        let found = users.find(|(_, basic)| constant_time_eq(basic.as_bytes(), encoded.as_bytes()));
        found.map(|((user, _), _)| user.clone()).ok_or(Refusal::Unauthorized)
    }

    fn check_digest(&self, method: &str, uri: Option<&str>, params: &str) -> Result<String, Refusal> {
        let params = escape_quotes_in_uri(params);
        let sent = digest_params::parse(&params).ok_or(Refusal::Unauthorized)?;
        let user = self.users.iter().position(|(u, _)| *u == sent.username).ok_or(Refusal::Unauthorized)?;
        // The request target may have had raw quotes encoded on the way in (request_target).
        let same_target = |u: &str| sent.uri == u || crate::request_target::lenient(&sent.uri) == u;
        if sent.realm != self.realm || uri.is_some_and(|u| !same_target(u)) || sent.userhash {
            return Err(Refusal::Unauthorized);
        }
        // A nonce of another run (or an expired one) with a right response gets stale=true: the
        // client retries with the new nonce without asking its user again (RFC 7616 3.3).
        let fresh = self.nonce_is_fresh(&sent.nonce).unwrap_or(false);
        let right = match self.response_from_ha1(&sent, user, method) {
            Some(right) => right,
            None => self.response_by_digest_auth(&params, user, method).ok_or(Refusal::Unauthorized)?,
        };
        if !right {
            return Err(Refusal::Unauthorized);
        }
        if !fresh {
            return Err(Refusal::Stale);
        }
        if let Some(nc) = &sent.nc {
            let nc = u32::from_str_radix(nc, 16).map_err(|_| Refusal::Unauthorized)?;
            if !self.count_is_new(&sent.nonce, nc) {
                return Err(Refusal::Unauthorized); // a replayed request
            }
        }
        Ok(sent.username.into_owned())
    }

    /// Whether `sent` carries the right response, from the user's HA1, for the algorithms the
    /// device offers (MD5, SHA-256; `qop=auth` or none); `None` for the others.
    fn response_from_ha1(&self, sent: &DigestParams<'_>, user: usize, method: &str) -> Option<bool> {
        let algorithm = sent.algorithm.as_deref().unwrap_or("MD5");
        let (ha1, h): (&str, HashFn) = if algorithm.eq_ignore_ascii_case("MD5") {
            (&self.ha1[user][0], hash_into::<Md5>)
        } else if algorithm.eq_ignore_ascii_case("SHA-256") {
            (&self.ha1[user][1], hash_into::<Sha256>)
        } else {
            return None;
        };
        let (mut ha2, mut expected) = ([0; 64], [0; 64]);
        let ha2 = h(&[method.as_bytes(), b":", sent.uri.as_bytes()], &mut ha2);
        let (nonce, ha1) = (sent.nonce.as_bytes(), ha1.as_bytes());
        let expected = match sent.qop.as_deref() {
            None => h(&[ha1, b":", nonce, b":", ha2], &mut expected),
            Some("auth") => {
                let (Some(nc), Some(cnonce)) = (&sent.nc, &sent.cnonce) else { return Some(false) };
                h(&[ha1, b":", nonce, b":", nc.as_bytes(), b":", cnonce.as_bytes(), b":auth:", ha2], &mut expected)
            }
            Some(_) => return None,
        };
        Some(constant_time_eq_ignore_case(expected, sent.response.as_bytes()))
    }

    /// Whether the header `params` carries the right response, computed by `digest_auth` (the
    /// `-sess` and `auth-int` variants); `None` when it cannot read them.
    fn response_by_digest_auth(&self, params: &str, user: usize, method: &str) -> Option<bool> {
        let sent = AuthorizationHeader::parse(params).ok()?;
        let mut expected = sent.clone();
        let password = self.users[user].1.as_str();
        let context = AuthContext::new_with_method(
            sent.username.as_str(),
            password,
            sent.uri.as_str(),
            Option::<&[u8]>::None,
            HttpMethod(method.into()),
        );
        expected.digest(&context);
        Some(constant_time_eq_ignore_case(expected.response.as_bytes(), sent.response.as_bytes()))
    }

    /// Records `nc` for `nonce`; false when that count was used already (a replay).
    fn count_is_new(&self, nonce: &str, nc: u32) -> bool {
        let mut counts = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(window) = counts.get_mut(nonce) {
            return window.accept(nc);
        }
        if counts.len() >= MAX_TRACKED_NONCES {
            counts.shift_remove_index(0);
        }
        counts.entry(nonce.to_owned()).or_default().accept(nc)
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
        let serial = self.serial.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{issued:x}.{serial:x}.{}", self.tag(issued, serial))
    }

    fn tag(&self, issued: u64, serial: u64) -> String {
        let mut h = Sha256::new();
        h.update(self.secret);
        h.update(issued.to_be_bytes());
        h.update(serial.to_be_bytes());
        hex(&h.finalize()[..16])
    }

    /// `Some(true)` for a nonce of ours that is fresh, `Some(false)` for one that expired,
    /// `None` for one we never issued.
    fn nonce_is_fresh(&self, nonce: &str) -> Option<bool> {
        let mut parts = nonce.splitn(3, '.');
        let (issued, serial, tag) = (parts.next()?, parts.next()?, parts.next()?);
        let (issued, serial) = (u64::from_str_radix(issued, 16).ok()?, u64::from_str_radix(serial, 16).ok()?);
        // A nonce with counts recorded was checked when its first count was: a client reusing
        // its nonce (as curl and VMS clients do) costs no hash after the first request.
        let known = self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains_key(nonce);
        if !known && !constant_time_eq(tag.as_bytes(), self.tag(issued, serial).as_bytes()) {
            return None;
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        Some(now.saturating_sub(issued) <= NONCE_LIFETIME.as_secs())
    }
}

/// The counts one nonce has used: every count up to `floor` is spent, and bit `i` of `seen`
/// marks `floor + 1 + i` as spent.
#[derive(Debug, Default, Clone, Copy)]
struct ReplayWindow {
    floor: u32,
    seen: u64,
}

impl ReplayWindow {
    /// Marks `nc` spent; false when it already was (or is below the window).
    fn accept(&mut self, nc: u32) -> bool {
        if nc <= self.floor {
            return false;
        }
        let mut offset = nc - self.floor - 1;
        if offset >= 64 {
            // Slide the window up so that `nc` is its last count.
            let shift = offset - 63;
            self.seen = if shift >= 64 { 0 } else { self.seen >> shift };
            self.floor += shift;
            offset = 63;
        }
        let bit = 1u64 << offset;
        if self.seen & bit != 0 {
            return false;
        }
        self.seen |= bit;
        // Spent counts at the bottom of the window move into the floor.
        while self.seen & 1 == 1 {
            self.seen >>= 1;
            self.floor += 1;
        }
        true
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// [`constant_time_eq`] with `b` read lower-cased (a client may send its digest in capitals).
fn constant_time_eq_ignore_case(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y.to_ascii_lowercase())) == 0
}

/// A [`hash_into`] of one algorithm.
type HashFn = for<'b> fn(&[&[u8]], &'b mut [u8; 64]) -> &'b [u8];

/// The hash of the concatenated `parts` in lower-case hexadecimal, written into `out` (long
/// enough for SHA-256).
fn hash_into<'b, D: Digest>(parts: &[&[u8]], out: &'b mut [u8; 64]) -> &'b [u8] {
    let mut d = D::new();
    for p in parts {
        d.update(p);
    }
    let digest = d.finalize();
    for (pair, b) in out.chunks_exact_mut(2).zip(digest.iter()) {
        pair.copy_from_slice(&hex_pair(*b));
    }
    &out[..digest.len() * 2]
}

/// The hash of the concatenated `parts` in lower-case hexadecimal.
fn hash<D: Digest>(parts: &[&[u8]]) -> String {
    String::from_utf8_lossy(hash_into::<D>(parts, &mut [0; 64])).into_owned()
}

/// One byte in lower-case hexadecimal.
fn hex_pair(b: u8) -> [u8; 2] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]]
}

/// Lower-case hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.extend(hex_pair(*b).map(char::from));
    }
    out
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
        for algorithm in 0..2 {
            let challenge = &a.challenges(false)[algorithm];
            let ok = respond(&a, challenge, "root", "pass", "/vapix/call");
            assert_eq!(a.check("POST", "/vapix/call", Some(&ok)), Ok("root".into()));
            let bad = respond(&a, challenge, "root", "nope", "/vapix/call");
            assert_eq!(a.check("POST", "/vapix/call", Some(&bad)), Err(Refusal::Unauthorized));
            // A response computed for another URI does not open this one.
            assert_eq!(a.check("POST", "/other", Some(&ok)), Err(Refusal::Unauthorized));
        }
    }

    #[test]
    fn digests_without_qop_and_with_sess_are_checked_too() {
        let a = auth();
        for extra in [
            "algorithm=MD5",
            "algorithm=SHA-256",
            "algorithm=MD5-sess, qop=\"auth\"",
            "algorithm=SHA-256-sess, qop=\"auth\"",
        ] {
            let challenge = format!("Digest realm=\"AXIS_TEST\", nonce=\"{}\", {extra}", a.new_nonce());
            let challenge = HeaderValue::from_str(&challenge).expect("header");
            let ok = respond(&a, &challenge, "root", "pass", "/vapix/call");
            assert_eq!(a.check("POST", "/vapix/call", Some(&ok)), Ok("root".into()), "{extra}");
            let bad = respond(&a, &challenge, "root", "nope", "/vapix/call");
            assert_eq!(a.check("POST", "/vapix/call", Some(&bad)), Err(Refusal::Unauthorized), "{extra}");
        }
    }

    #[test]
    fn forged_and_expired_nonces() {
        let a = auth();
        assert_eq!(a.nonce_is_fresh("0.00"), None);
        let old = 1_000u64;
        assert_eq!(a.nonce_is_fresh(&format!("{old:x}.0.{}", a.tag(old, 0))), Some(false));
        assert_ne!(a.new_nonce(), a.new_nonce(), "two clients in one second get two nonces");
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

    #[test]
    fn a_replayed_nonce_count_is_refused_and_a_rising_one_accepted() {
        let a = auth();
        let challenge = &a.challenges(false)[0];
        let mut prompt = WwwAuthenticateHeader::parse(challenge.to_str().expect("ascii")).expect("challenge");
        let ctx = AuthContext::new_with_method("root", "pass", "/vapix/call", Option::<&[u8]>::None, HttpMethod::POST);
        let first = HeaderValue::from_str(&prompt.respond(&ctx).expect("nc 1").to_string()).expect("header");
        let second = HeaderValue::from_str(&prompt.respond(&ctx).expect("nc 2").to_string()).expect("header");
        assert_eq!(a.check("POST", "/vapix/call", Some(&first)), Ok("root".into()));
        assert_eq!(a.check("POST", "/vapix/call", Some(&second)), Ok("root".into()), "nonce reuse with a rising nc");
        assert_eq!(a.check("POST", "/vapix/call", Some(&first)), Err(Refusal::Unauthorized), "a replay");
        assert_eq!(a.check("POST", "/vapix/call", Some(&second)), Err(Refusal::Unauthorized), "a replay");
    }

    #[test]
    fn the_replay_window_takes_counts_out_of_order_but_each_once() {
        let mut w = ReplayWindow::default();
        assert!(w.accept(3) && w.accept(1) && w.accept(2), "out of order");
        assert!(!w.accept(2) && !w.accept(3) && !w.accept(0), "each once");
        assert!(w.accept(200), "a jump slides the window");
        assert!(!w.accept(100), "far below the window is refused");
        assert!(w.accept(190) && !w.accept(190));
    }
}
