//! HTTP: Digest (MD5, SHA-256) and Basic auth as real clients send them, challenges, routing.
//! Uses the system `curl` as an independent client.

mod common;

use std::process::Command;

use common::Doorsim;

/// The HTTP status curl gets for `args`.
fn status(args: &[&str]) -> String {
    curl(&[&["-o", "/dev/null", "-w", "%{http_code}"], args].concat()).0
}

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
}

#[tokio::test]
async fn each_digest_algorithm_is_accepted() {
    // Answer each challenge (MD5, then SHA-256) with the digest_auth crate and send it with curl.
    // Each answer takes a challenge of its own: a nonce's count may be used once.
    let d = Doorsim::start(&[]);
    let challenge = |index: usize| {
        let (headers, _) = curl(&["-D", "-", "-o", "/dev/null", &format!("{}/vapix/call", d.base)]);
        let digests: Vec<String> = headers
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with("www-authenticate: digest"))
            .filter_map(|l| l.split_once(": ").map(|(_, v)| v.trim().to_owned()))
            .collect();
        assert_eq!(digests.len(), 2, "{headers}");
        digests[index].clone()
    };
    let digests = [challenge(0), challenge(1)];
    for (challenge, algorithm) in digests.iter().zip(["MD5", "SHA-256"]) {
        let mut prompt = digest_auth::parse(challenge).expect("parse");
        let ctx = digest_auth::AuthContext::new_post("root", "pass", "/vapix/call", Option::<&[u8]>::None);
        let auth = prompt.respond(&ctx).expect("respond").to_string();
        assert!(auth.contains(&format!("algorithm={algorithm}")), "{auth}");
        let (out, err) = curl(&[
            "-H",
            &format!("Authorization: {auth}"),
            &format!("{}/vapix/call", d.base),
            "-d",
            r#"{"axcall:GetSIPConfiguration":{}}"#,
        ]);
        assert!(out.contains("SIPConfiguration"), "{algorithm}: {out} {err}");
    }
}

#[tokio::test]
async fn wrong_or_missing_credentials_get_a_401_challenge() {
    let d = Doorsim::start(&["--user", "admin:secret"]);
    let url = format!("{}/vapix/call", d.base);
    let (headers, _) = curl(&["-D", "-", "-o", "/dev/null", &url, "-d", "{}"]);
    assert!(headers.starts_with("HTTP/1.1 401"), "{headers}");
    let challenges: Vec<&str> =
        headers.lines().filter(|l| l.to_ascii_lowercase().starts_with("www-authenticate:")).collect();
    assert_eq!(challenges.len(), 3, "{headers}");
    assert!(challenges[0].contains("Digest realm=\"AXIS_") && challenges[0].contains("algorithm=MD5"));
    assert!(challenges[0].contains("qop=\"auth\""));
    assert!(challenges[1].contains("algorithm=SHA-256"));
    assert!(challenges[2].contains("Basic realm="));
    for (mode, cred) in [("--anyauth", "root:pass"), ("--digest", "admin:wrong"), ("--basic", "admin:wrong")] {
        let code = status(&[mode, "-u", cred, &url, "-d", "{}"]);
        assert_eq!(code, "401", "{mode} {cred}");
    }
    let code = status(&["--anyauth", "-u", "admin:secret", &url, "-d", "{}"]);
    assert_eq!(code, "400", "right credentials reach the service (and {{}} is a fault)");
    // The control API takes the same auth.
    let code = status(&[&format!("{}/emulator/v1/state", d.base)]);
    assert_eq!(code, "401");
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    let d = Doorsim::start(&[]);
    let code = status(&[&format!("{}/axis-cgi/nope.cgi", d.base)]);
    assert_eq!(code, "404");
    let code = status(&["--anyauth", "-u", "root:pass", "-X", "DELETE", &format!("{}/vapix/call", d.base)]);
    assert_eq!(code, "405");
}

#[tokio::test]
async fn python_requests_digest_auth_is_accepted() {
    let d = Doorsim::start(&[]);
    let script = r#"
import sys, requests
from requests.auth import HTTPDigestAuth
r = requests.post(sys.argv[1] + "/vapix/call", json={"axcall:GetAudioCodecs": {}}, auth=HTTPDigestAuth("root", "pass"))
print(r.status_code, r.json()["AudioCodec"][0]["Name"])
"#;
    let out = Command::new("python3").args(["-c", script, &d.base]).output().expect("python3 with requests");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.trim(), "200 PCMU", "{stdout}{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn a_replayed_digest_is_refused_and_a_foreign_nonce_is_stale() {
    let (a, b) = (Doorsim::start(&[]), Doorsim::start(&[]));
    let (headers, _) = curl(&["-D", "-", "-o", "/dev/null", &format!("{}/vapix/call", a.base)]);
    let challenge = headers
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("www-authenticate: digest"))
        .and_then(|l| l.split_once(": ").map(|(_, v)| v.trim().to_owned()))
        .expect("a challenge");
    let mut prompt = digest_auth::parse(&challenge).expect("parse");
    let ctx = digest_auth::AuthContext::new_post("root", "pass", "/vapix/call", Option::<&[u8]>::None);
    let auth = prompt.respond(&ctx).expect("respond").to_string();
    let send = |base: &str| {
        curl(&[
            "-D",
            "-",
            "-H",
            &format!("Authorization: {auth}"),
            &format!("{base}/vapix/call"),
            "-d",
            r#"{"axcall:GetSIPConfiguration":{}}"#,
        ])
        .0
    };
    assert!(send(&a.base).contains("SIPConfiguration"), "the first use is accepted");
    let replay = send(&a.base);
    assert!(replay.starts_with("HTTP/1.1 401"), "a replay is refused: {replay}");
    let foreign = send(&b.base);
    assert!(foreign.starts_with("HTTP/1.1 401") && foreign.contains("stale=true"), "{foreign}");
}
