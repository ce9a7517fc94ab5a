//! Answering a SIP digest challenge (RFC 3261 22.2, RFC 8760) with the `digest_auth` crate.

use super::message::SipMessage;

/// The header and value that answer the challenge of a 401 (`WWW-Authenticate` ->
/// `Authorization`) or 407 (`Proxy-Authenticate` -> `Proxy-Authorization`) to a request of
/// `method` to `uri`. `None` when the response carries no usable challenge.
pub fn answer(
    response: &SipMessage,
    method: &str,
    uri: &str,
    user: &str,
    password: &str,
) -> Option<(&'static str, String)> {
    let (challenge, header) = match response.code() {
        Some(407) => ("Proxy-Authenticate", "Proxy-Authorization"),
        _ => ("WWW-Authenticate", "Authorization"),
    };
    let mut prompt = digest_auth::parse(response.header(challenge)?).ok()?;
    let context = digest_auth::AuthContext::new_with_method(
        user,
        password,
        uri,
        Option::<&[u8]>::None,
        digest_auth::HttpMethod(method.to_owned().into()),
    );
    Some((header, prompt.respond(&context).ok()?.to_header_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_a_www_authenticate_challenge() {
        let raw =
            b"SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\n\
            WWW-Authenticate: Digest realm=\"pbx\", nonce=\"abc\", qop=\"auth\"\r\n\r\n";
        let r = SipMessage::parse(raw).expect("response");
        let (header, value) = answer(&r, "REGISTER", "sip:pbx", "6001", "secret").expect("answer");
        assert_eq!(header, "Authorization");
        assert!(
            value.starts_with("Digest username=\"6001\", realm=\"pbx\", nonce=\"abc\", uri=\"sip:pbx\""),
            "{value}"
        );
        assert!(value.contains("qop=auth") && value.contains("nc=00000001"));
    }
}
