//! A graceful stop: on SIGTERM the device ends its calls on the wire (BYE) and un-registers
//! (kamailio no longer holds it) before it exits; a second SIGTERM during that exits at once.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::free_port;
use common::kamailio::Kamailio;
use serde_json::json;
use tokio::net::UdpSocket;

/// A doorsim process, killed on drop if it is still running (a failed test leaves nothing).
struct Process(Option<Child>);

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Process {
    fn signal(&self, name: &str) {
        let pid = self.0.as_ref().map(Child::id).unwrap_or_default();
        let sent = Command::new("kill").args([&format!("-{name}"), &pid.to_string()]).status().expect("kill");
        assert!(sent.success());
    }

    /// Waits for the exit; `None` when it is not done within 10 s.
    async fn exit(&mut self) -> Option<std::process::ExitStatus> {
        for _ in 0..200 {
            if let Some(status) = self.0.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

/// Starts doorsim on loopback with `args`; returns it and its HTTP address once the banner is out.
fn doorsim(args: &[&str]) -> (Process, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_doorsim"))
        .args(["--http", "127.0.0.1:0", "--rtsp", "127.0.0.1:0", "--log", "warn"])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("doorsim");
    let stdout = child.stdout.take().expect("stdout");
    let http = std::io::BufRead::lines(std::io::BufReader::new(stdout))
        .map_while(Result::ok)
        .find_map(|l| l.split("(listening on ").nth(1).map(|r| r.trim_end_matches(')').to_owned()))
        .expect("banner");
    (Process(Some(child)), http)
}

async fn call(http: &str, body: serde_json::Value) -> serde_json::Value {
    let r = reqwest::Client::new()
        .post(format!("http://{http}/vapix/call"))
        .basic_auth("root", Some("pass"))
        .json(&body)
        .send()
        .await
        .expect("request");
    r.json().await.unwrap_or_default()
}

#[tokio::test]
async fn sigterm_hangs_up_unregisters_and_exits() {
    let registrar = free_port();
    let _kamailio = Kamailio::start(include_str!("kamailio/fleet.cfg"), registrar, "secret");
    let (mut child, http) = doorsim(&["--auto-answer", "0"]);
    let sip = free_port();
    call(&http, json!({"axcall:SetSIPConfiguration": {"SIPConfiguration": {"SIPEnabled": true, "SIPPort": sip, "SIPTLSPort": free_port(), "AllowIncomingCalls": true}}})).await;
    call(
        &http,
        json!({"axcall:SetSIPAccount": {"SIPAccount": {"Id": "pbx", "UserId": "stopper", "Password": "secret",
        "Registrar": format!("127.0.0.1:{registrar}"), "PublicDomain": "127.0.0.1", "IsDefault": false}}}),
    )
    .await;
    let mut up = false;
    for _ in 0..100 {
        if common::kamailio::holds(registrar, "stopper").await {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "registered first");
    // A call in progress from a raw peer.
    let peer = UdpSocket::bind("127.0.0.1:0").await.expect("peer");
    let me = peer.local_addr().expect("addr").port();
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n";
    let invite = format!(
        "INVITE sip:door@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKstopcall\r\n\
         From: <sip:peer@127.0.0.1>;tag=p1\r\nTo: <sip:door@127.0.0.1>\r\nCall-ID: stopcall\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:peer@127.0.0.1:{me}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    peer.send_to(invite.as_bytes(), ("127.0.0.1", sip)).await.expect("invite");
    let mut buf = vec![0u8; 65536];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(3), peer.recv(&mut buf)).await.expect("answer").expect("recv");
        if buf[..n].starts_with(b"SIP/2.0 200") {
            break;
        }
    }
    child.signal("TERM");
    let mut got_bye = false;
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(3), peer.recv(&mut buf)).await {
        if buf[..n].starts_with(b"BYE ") {
            got_bye = true;
            break;
        }
    }
    assert!(got_bye, "the call was hung up");
    let status = child.exit().await.expect("it exits");
    assert!(status.success(), "a graceful stop exits 0: {status}");
    assert!(!common::kamailio::holds(registrar, "stopper").await, "un-registered: kamailio no longer holds it");
}

#[tokio::test]
async fn a_second_sigterm_exits_at_once() {
    // A registrar that never answers keeps the wind-down waiting.
    let (mut child, http) = doorsim(&[]);
    let dead = free_port();
    call(&http, json!({"axcall:SetSIPConfiguration": {"SIPConfiguration": {"SIPEnabled": true, "SIPPort": free_port(), "SIPTLSPort": free_port()}}})).await;
    call(
        &http,
        json!({"axcall:SetSIPAccount": {"SIPAccount": {"UserId": "x", "Registrar": format!("127.0.0.1:{dead}")}}}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await; // its REGISTER is out
    child.signal("TERM");
    tokio::time::sleep(Duration::from_millis(100)).await;
    child.signal("TERM");
    let status = child.exit().await.expect("it exits");
    assert!(!status.success(), "a forced stop exits non-zero: {status}");
}
