//! HTTP: Digest (MD5, SHA-256) and Basic auth as real clients send them, challenges, routing.
//! Uses the system `curl` as an independent client.

mod common;

use std::process::Command;

use common::Doorsim;

fn curl(args: &[&str]) -> (String, String) {
    let out = Command::new("curl").args(["-s", "-S"]).args(args).output().expect("run curl");
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn curl_anyauth_digest_and_basic_are_accepted() {
    let d = Doorsim::start(&[]);
    let url = format!("{}/vapix/call", d.base);
    for mode in ["--anyauth", "--digest", "--basic"] {
        let (out, err) = curl(&[mode, "-u", "root:pass", &url, "-d", r#"{"axcall:GetServiceCapabilities":{}}"#]);
        assert!(out.contains("\"Capabilities\""), "{mode}: {out} {err}");
    }
    // curl --anyauth picks the strongest challenge: SHA-256.
    let (_, trace) = curl(&["-v", "--anyauth", "-u", "root:pass", &url, "-d", "{}"]);
    assert!(trace.contains("algorithm=SHA-256"), "{trace}");
}

#[tokio::test]
async fn curl_digest_md5_only_client_is_accepted() {
    // An MD5-only client: answer the MD5 challenge by hand-picking it with the digest_auth crate.
    let d = Doorsim::start(&[]);
    let (headers, _) = curl(&["-D", "-", "-o", "/dev/null", &format!("{}/vapix/call", d.base)]);
    let md5 = headers
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("www-authenticate: digest") && l.contains("algorithm=MD5"))
        .expect("an MD5 challenge");
    let mut prompt = digest_auth::parse(md5.split_once(": ").expect("header").1.trim()).expect("parse");
    let ctx = digest_auth::AuthContext::new_post("root", "pass", "/vapix/call", Option::<&[u8]>::None);
    let auth = prompt.respond(&ctx).expect("respond").to_string();
    assert!(auth.contains("algorithm=MD5"), "{auth}");
    let (out, err) = curl(&[
        "-H",
        &format!("Authorization: {auth}"),
        &format!("{}/vapix/call", d.base),
        "-d",
        r#"{"axcall:GetSIPConfiguration":{}}"#,
    ]);
    assert!(out.contains("SIPConfiguration"), "{out} {err}");
}

#[tokio::test]
async fn wrong_or_missing_credentials_get_a_401_challenge() {
    let d = Doorsim::start(&["--user", "admin:secret"]);
    let url = format!("{}/vapix/call", d.base);
    let (headers, _) = curl(&["-D", "-", "-o", "/dev/null", &url, "-d", "{}"]);
    assert!(headers.starts_with("HTTP/1.1 401"), "{headers}");
    let challenges: Vec<&str> = headers.lines().filter(|l| l.to_ascii_lowercase().starts_with("www-authenticate:")).collect();
    assert_eq!(challenges.len(), 3, "{headers}");
    assert!(challenges[0].contains("Digest realm=\"AXIS_") && challenges[0].contains("algorithm=SHA-256"));
    assert!(challenges[0].contains("qop=\"auth\""));
    assert!(challenges[1].contains("algorithm=MD5"));
    assert!(challenges[2].contains("Basic realm="));
    for (mode, cred) in [("--anyauth", "root:pass"), ("--digest", "admin:wrong"), ("--basic", "admin:wrong")] {
        let (code, _) = curl(&[mode, "-u", cred, "-o", "/dev/null", "-w", "%{http_code}", &url, "-d", "{}"]);
        assert_eq!(code, "401", "{mode} {cred}");
    }
    let (code, _) = curl(&["--anyauth", "-u", "admin:secret", "-o", "/dev/null", "-w", "%{http_code}", &url, "-d", "{}"]);
    assert_eq!(code, "400", "right credentials reach the service (and {{}} is a fault)");
    // The control API takes the same auth.
    let (code, _) = curl(&["-o", "/dev/null", "-w", "%{http_code}", &format!("{}/emulator/v1/state", d.base)]);
    assert_eq!(code, "401");
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    let d = Doorsim::start(&[]);
    let (code, _) = curl(&["-o", "/dev/null", "-w", "%{http_code}", &format!("{}/axis-cgi/nope.cgi", d.base)]);
    assert_eq!(code, "404");
    let (code, _) = curl(&["--anyauth", "-u", "root:pass", "-X", "DELETE", "-o", "/dev/null", "-w", "%{http_code}", &format!("{}/vapix/call", d.base)]);
    assert_eq!(code, "405");
}
