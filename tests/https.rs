//! `--https ADDR:PORT`: the device serves over HTTPS what it serves over HTTP (the Call service
//! with Digest, the control API, the web page, metrics), with the certificate its SIP over TLS
//! shows; plain HTTP on that port gets no answer. curl and openssl are the clients (the Home
//! Assistant library over HTTPS is in tests/ha_axis_library.rs).

mod common;

use std::process::Command;

use common::{free_port, Doorsim};
use serde_json::json;

/// curl -k with Digest against `url`; the body (`-d` when given).
fn curl(url: &str, body: Option<&str>) -> (bool, String) {
    let mut c = Command::new("curl");
    c.args(["-sk", "--anyauth", "-u", "root:pass", "--max-time", "10", "-w", "\n%{http_code}", url]);
    if let Some(b) = body {
        c.args(["-d", b]);
    }
    let out = c.output().expect("curl");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The PEM certificate the TLS server at `127.0.0.1:port` shows.
fn certificate(port: u16) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl");
    let text = String::from_utf8_lossy(&out.stdout);
    let begin = text.find("-----BEGIN CERTIFICATE-----").unwrap_or_else(|| panic!("no certificate on {port}: {text}"));
    let end = text.find("-----END CERTIFICATE-----").expect("end of the certificate");
    text[begin..end].to_owned()
}

#[tokio::test]
async fn https_serves_the_same_api_with_the_sip_tls_certificate() {
    let port = free_port();
    let d = Doorsim::start(&[&format!("--https=127.0.0.1:{port}")]);
    let base = format!("https://127.0.0.1:{port}");
    let (ok, out) = curl(&format!("{base}/vapix/call"), Some(r#"{"axcall:GetSIPConfiguration":{}}"#));
    assert!(ok && out.ends_with("\n200") && out.contains("\"SIPConfiguration\""), "{out}");
    for path in ["/emulator/v1/state", "/emulator/", "/metrics", "/axis-cgi/wssession.cgi"] {
        let (ok, out) = curl(&format!("{base}{path}"), None);
        assert!(ok && out.ends_with("\n200"), "{path}: {out}");
    }
    // A change over HTTPS is the same device's.
    let (ok, _) = curl(&format!("{base}/emulator/v1/button/press"), Some("{}"));
    assert!(ok);
    assert_eq!(d.state().await["Calls"].as_array().map(Vec::len), Some(1));
    // Plain HTTP on the HTTPS port is not served.
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/emulator/v1/state")).await;
    assert!(plain.is_err() || plain.is_ok_and(|r| !r.status().is_success()));
    // The certificate is the one SIP over TLS shows.
    let (_, tls) = d.enable_sip(json!({})).await;
    assert_eq!(certificate(port), certificate(tls));
}

#[test]
fn an_https_address_in_use_is_a_clear_start_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let at = taken.local_addr().expect("addr");
    let out = Command::new(env!("CARGO_BIN_EXE_doorsim"))
        .args(["--http", "127.0.0.1:0", "--rtsp", "127.0.0.1:0", "--https", &at.to_string()])
        .output()
        .expect("doorsim");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&at.to_string()) && err.contains("--https"), "{err}");
}
