//! A SIP call over TLS between two doorsim instances: each side sees the call on TLS, RTP flows
//! both ways, and the caller's hang-up reaches the callee over the same TLS connection.

mod common;

use std::time::Duration;

use common::Doorsim;
use serde_json::{json, Value};

fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
        let port = udp.local_addr().expect("addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

async fn sip_on(d: &Doorsim) -> (u16, u16) {
    let (port, tls) = (free_port(), free_port());
    d.ok(
        "SetSIPConfiguration",
        json!({"SIPConfiguration": {"SIPEnabled": true, "SIPPort": port, "SIPTLSPort": tls,
        "AllowIncomingCalls": true, "RTPStartPort": 20000 + 2 * (free_port() % 10000)}}),
    )
    .await;
    (port, tls)
}

/// The only call of `d` once it is in `state`, with its media counters.
async fn call_in(d: &Doorsim, state: &str) -> (Value, Value) {
    for _ in 0..100 {
        let state_json = d.state().await;
        let call = state_json["Calls"].as_array().and_then(|c| c.first()).cloned().unwrap_or(Value::Null);
        if call["CallState"] == state {
            let media = state_json["Media"][call["CallId"].as_str().unwrap_or_default()].clone();
            return (call, media);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no call became {state}: {}", d.state().await["Calls"]);
}

#[tokio::test]
async fn a_tls_call_between_two_doorsims() {
    let callee = Doorsim::start(&["--auto-answer", "0"]);
    let caller = Doorsim::start(&[]);
    let (_, callee_tls) = sip_on(&callee).await;
    sip_on(&caller).await;
    caller
        .ok(
            "SetSIPAccount",
            json!({"SIPAccount": {"Id": "peer-to-peer", "UserId": "door", "IsDefault": true,
            "Transport": "tls", "VerifyServerCertificate": false}}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let id = caller.ok("Call", json!({"To": format!("sip:door@127.0.0.1:{callee_tls};transport=tls")})).await["CallId"]
        .as_str()
        .expect("CallId")
        .to_owned();
    let (out_call, _) = call_in(&caller, "Active").await;
    let (in_call, _) = call_in(&callee, "Active").await;
    assert_eq!(
        (out_call["CallStateReason"].as_str(), in_call["CallStateReason"].as_str()),
        (Some("AcceptedByRemote"), Some("AcceptedByDevice"))
    );
    // Let a second of audio flow, then check both sides: TLS signalling, RTP both ways.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (name, d) in [("caller", &caller), ("callee", &callee)] {
        let (_, media) = call_in(d, "Active").await;
        assert_eq!(media["SipTransport"], "TLS", "{name}: {media}");
        assert!(media["RtpSent"].as_u64() > Some(10) && media["RtpReceived"].as_u64() > Some(10), "{name}: {media}");
    }
    caller.ok("TerminateCall", json!({"CallId": id})).await;
    let (ended, _) = call_in(&callee, "Terminated").await;
    assert_eq!(ended["CallStateReason"], "Terminated");
}

#[tokio::test]
async fn a_verifying_client_refuses_a_certificate_it_does_not_trust() {
    let callee = Doorsim::start(&["--auto-answer", "0"]);
    let caller = Doorsim::start(&[]);
    let (_, callee_tls) = sip_on(&callee).await;
    sip_on(&caller).await;
    caller
        .ok(
            "SetSIPAccount",
            json!({"SIPAccount": {"Id": "peer-to-peer", "UserId": "door", "IsDefault": true,
            "Transport": "tls", "VerifyServerCertificate": true}}),
        )
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    caller.ok("Call", json!({"To": format!("sip:door@127.0.0.1:{callee_tls}")})).await;
    let (failed, _) = call_in(&caller, "Terminated").await;
    assert_eq!(failed["CallStateReason"], "Failed", "another device's self-signed certificate is not trusted");
    assert!(callee.state().await["Calls"].as_array().is_some_and(Vec::is_empty));
}
