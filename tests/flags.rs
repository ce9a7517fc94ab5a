//! Flags do what the README's table says: `--sip-addr` is the address SIP URIs and call events
//! show, the RTSP listener follows the HTTP address's IP, a failed bind names the flag and the
//! port, host names resolve, `--call-button-recipient` is checked at start, and a SIP port that
//! cannot be bound shows in the accounts' StatusText and in `/emulator/v1/state`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{free_port, Doorsim};
use serde_json::json;

/// Runs doorsim with `args` until its banner; returns the two "listening on" addresses (HTTP,
/// RTSP), or the exit output when it did not start.
fn banner(args: &[&str]) -> Result<(Vec<String>, std::process::Child), String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_doorsim"))
        .args(args)
        .args(["--log", "warn"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("doorsim");
    let stdout = child.stdout.take().expect("stdout");
    let listening: Vec<String> = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| l.split("listening on ").nth(1).map(|r| r.trim_end_matches(')').to_owned()))
        .take(2)
        .collect();
    if listening.len() == 2 {
        return Ok((listening, child));
    }
    let out = child.wait_with_output().expect("exit");
    Err(String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn sip_addr_is_the_address_sip_uris_and_call_events_show() {
    let d = Doorsim::start(&["--sip-addr", "127.0.0.9"]);
    let s = d.ok("GetSIPAccountStatus", json!({"SIPAccountId": "peer-to-peer"})).await["SIPAccountStatus"].clone();
    assert!(s["SIPURI"].as_str().is_some_and(|u| u.contains("127.0.0.9")), "{s}");
    let id = d.ok("Call", json!({"To": "VMS_CALL"})).await["CallId"].as_str().expect("id").to_owned();
    let call = d.ok("GetCallStatus", json!({"CallId": id})).await["CallStatus"].clone();
    assert!(call["DeviceURI"].as_str().is_some_and(|u| u.contains("127.0.0.9")), "{call}");
    let events = d.request("GET", "/emulator/v1/events?topic=tnsaxis:Call/StateChange", None).await.json();
    let data = &events["Events"][0]["data"];
    assert!(data["DeviceURI"].as_str().is_some_and(|u| u.contains("127.0.0.9")), "{events}");
}

#[test]
fn rtsp_follows_the_http_address_and_a_failed_bind_names_the_flag() {
    let http = format!("127.0.0.{}:0", 20 + std::process::id() % 200);
    let (listening, mut first) = banner(&["--http", &http]).expect("starts");
    let ip = http.split(':').next().expect("ip");
    assert_eq!(listening[1], format!("{ip}:8554"), "RTSP on the HTTP address's IP");
    // A second device on the same address: its RTSP port is taken.
    let refused = banner(&["--http", &http]).expect_err("the RTSP port is in use");
    assert!(refused.contains(&format!("{ip}:8554")) && refused.contains("--rtsp"), "{refused}");
    let _ = first.kill();
    let _ = first.wait();
}

#[test]
fn host_names_resolve_and_the_button_recipient_is_checked_at_start() {
    let port = free_port();
    let (listening, mut child) =
        banner(&["--http", &format!("localhost:{port}"), "--rtsp", &format!("localhost:{}", free_port())])
            .expect("localhost resolves");
    assert!(listening[0].ends_with(&format!(":{port}")), "{listening:?}");
    let _ = child.kill();
    let _ = child.wait();
    let refused = banner(&["--http", "127.0.0.1:0", "--rtsp", "127.0.0.1:0", "--call-button-recipient", "guard"])
        .expect_err("not a recipient");
    assert!(refused.contains("--call-button-recipient") && refused.contains("VMS_CALL"), "{refused}");
}

#[tokio::test]
async fn a_sip_port_that_cannot_be_bound_is_visible() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
    let port = taken.local_addr().expect("addr").port();
    let d = Doorsim::start(&[]);
    let config = json!({"SIPConfiguration": {"SIPEnabled": true, "SIPPort": port, "SIPTLSPort": free_port()}});
    d.ok("SetSIPConfiguration", config).await;
    let mut problem = serde_json::Value::Null;
    for _ in 0..50 {
        problem = d.state().await["SipListener"]["Problem"].clone();
        if problem.is_string() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(problem.as_str().is_some_and(|p| p.contains(&port.to_string())), "{problem}");
    let s = d.ok("GetSIPAccountStatus", json!({"SIPAccountId": "peer-to-peer"})).await["SIPAccountStatus"].clone();
    assert!(s["StatusText"].as_str().is_some_and(|t| t.contains("SIPPort")), "{s}");
    // Moving to a free port clears it.
    d.ok("SetSIPConfiguration", json!({"SIPConfiguration": {"SIPPort": free_port()}})).await;
    for _ in 0..50 {
        problem = d.state().await["SipListener"]["Problem"].clone();
        if problem.is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(problem.is_null(), "{problem}");
    drop(taken);
}

#[tokio::test]
async fn logs_are_plain_text_with_call_states_and_faults() {
    let log = std::env::temp_dir().join(format!("doorsim-log-{}.txt", std::process::id()));
    let file = std::fs::File::create(&log).expect("log file");
    let (http, rtsp) = (free_port(), free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_doorsim"))
        .args(["--http", &format!("127.0.0.1:{http}"), "--rtsp", &format!("127.0.0.1:{rtsp}"), "--log", "info"])
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("doorsim");
    let client = reqwest::Client::new();
    let call = |body: serde_json::Value| {
        client.post(format!("http://127.0.0.1:{http}/vapix/call")).basic_auth("root", Some("pass")).json(&body).send()
    };
    let mut up = false;
    for _ in 0..100 {
        if call(json!({"axcall:GetServiceCapabilities": {}})).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(up);
    call(json!({"axcall:Call": {"To": "VMS_CALL"}})).await.expect("call");
    let fault = call(json!({"axcall:SetSIPConfiguration": {"SIPConfiguration": {"CallingTimeout": 601}}})).await;
    assert_eq!(fault.expect("fault").status().as_u16(), 400);
    let _ = child.kill();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).expect("log");
    let _ = std::fs::remove_file(&log);
    assert!(!text.contains('\u{1b}'), "no colour codes in a file:\n{text}");
    assert!(text.lines().any(|l| l.contains("call state") && l.contains("Initiated")), "{text}");
    let fault_line = text.lines().find(|l| l.contains("call service fault")).expect("the fault is logged");
    assert!(fault_line.contains("601 is outside") && !fault_line.contains("Some("), "{fault_line}");
}
