//! HTTP `Authorization` headers (Digest and Basic) from any client.
#![no_main]
use std::sync::OnceLock;

use doorsim::auth::Authenticator;

libfuzzer_sys::fuzz_target!(|input: (&str, &str)| {
    static AUTH: OnceLock<Authenticator> = OnceLock::new();
    let auth = AUTH.get_or_init(|| Authenticator::new(vec![("root".into(), "pass".into())], "AXIS_FUZZ".into()));
    if let Ok(header) = hyper::header::HeaderValue::from_str(input.1) {
        let _ = auth.check("POST", input.0, Some(&header));
    }
});
