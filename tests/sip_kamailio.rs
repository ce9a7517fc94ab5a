//! Registration against kamailio (Debian `kamailio`, installed by scripts/test.sh) as a
//! loopback registrar with digest auth: the device registers (Status 200), fails with a wrong
//! password (401 in StatusText) and recovers when it is corrected; after SIPPort moves A → B → A
//! the device still listens on A and kamailio sees its REGISTERs come from A.

mod common;

use std::time::Duration;

use common::kamailio::Kamailio;
use common::{free_port, Doorsim};
use serde_json::{json, Value};

async fn status_of(d: &Doorsim, id: &str, want: u64) -> Value {
    let mut s = Value::Null;
    for _ in 0..60 {
        s = d.ok("GetSIPAccountStatus", json!({"SIPAccountId": id})).await["SIPAccountStatus"].clone();
        if s["Status"] == want {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("status never became {want}: {s}");
}

#[tokio::test]
async fn registers_fails_with_a_wrong_password_and_recovers() {
    let registrar = free_port();
    let _kamailio = Kamailio::start(include_str!("kamailio/registrar.cfg"), registrar, "secure");
    let d = Doorsim::start(&[]);
    d.ok(
        "SetSIPConfiguration",
        json!({"SIPConfiguration": {"SIPEnabled": true, "SIPPort": free_port(), "SIPTLSPort": free_port()}}),
    )
    .await;
    let account = |password: &str| {
        json!({"SIPAccount": {"Id": "pbx", "UserId": "6001", "Password": password,
            "Registrar": format!("127.0.0.1:{registrar}"), "PublicDomain": "127.0.0.1"}})
    };
    d.ok("SetSIPAccount", account("secure")).await;
    let s = status_of(&d, "pbx", 200).await;
    assert_eq!(
        (s["StatusText"].as_str(), s["RegURI"].as_str()),
        (Some("OK"), Some(format!("127.0.0.1:{registrar}").as_str()))
    );
    assert_eq!(s["SIPURI"], "sip:6001@127.0.0.1");

    d.ok("SetSIPAccount", account("wrong")).await;
    let s = status_of(&d, "pbx", 401).await;
    assert!(s["StatusText"].as_str().is_some_and(|t| t.contains("Unauthorized")), "{s}");

    d.ok("SetSIPAccount", account("secure")).await;
    status_of(&d, "pbx", 200).await;

    // SIP off: every account says so.
    d.ok("SetSIPConfiguration", json!({"SIPConfiguration": {"SIPEnabled": false}})).await;
    let s = d.ok("GetSIPAccountStatus", json!({"SIPAccountId": "pbx"})).await["SIPAccountStatus"].clone();
    assert_eq!((s["Status"].as_u64(), s["StatusText"].as_str()), (Some(0), Some("SIP disabled")));
}

/// The source port kamailio saw on user 6001's last accepted REGISTER.
async fn register_source_port(registrar: u16) -> Option<u16> {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("socket");
    let me = socket.local_addr().expect("addr").port();
    let options = format!(
        "OPTIONS sip:6001@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK{me}x\r\n\
         From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:6001@127.0.0.1>\r\nCall-ID: probe-{me}\r\nCSeq: 1 OPTIONS\r\n\
         Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    socket.send_to(options.as_bytes(), ("127.0.0.1", registrar)).await.expect("send");
    let mut buf = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(2), socket.recv(&mut buf)).await.ok()?.ok()?;
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .find_map(|l| l.strip_prefix("X-Register-Source-Port:"))
        .and_then(|p| p.trim().parse().ok())
}

async fn wait_for_register_from(registrar: u16, port: u16) {
    let mut seen = None;
    for _ in 0..100 {
        seen = register_source_port(registrar).await;
        if seen == Some(port) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("kamailio saw REGISTERs from {seen:?}, not from {port}");
}

#[tokio::test]
async fn sip_port_a_then_b_then_a_keeps_answering_and_registering_from_a() {
    let registrar = free_port();
    let _kamailio = Kamailio::start(include_str!("kamailio/registrar.cfg"), registrar, "secure");
    let d = Doorsim::start(&[]);
    let (a, b) = (free_port(), free_port());
    let config =
        |port: u16| json!({"SIPConfiguration": {"SIPEnabled": true, "SIPPort": port, "SIPTLSPort": free_port()}});
    d.ok("SetSIPConfiguration", config(a)).await;
    d.ok(
        "SetSIPAccount",
        json!({"SIPAccount": {"Id": "pbx", "UserId": "6001", "Password": "secure",
            "Registrar": format!("127.0.0.1:{registrar}"), "PublicDomain": "127.0.0.1"}}),
    )
    .await;
    wait_for_register_from(registrar, a).await;
    d.ok("SetSIPConfiguration", config(b)).await;
    wait_for_register_from(registrar, b).await;
    d.ok("SetSIPConfiguration", config(a)).await;
    wait_for_register_from(registrar, a).await;
    status_of(&d, "pbx", 200).await;
    let state = d.state().await;
    assert_eq!(state["Store"]["SIPConfiguration"]["SIPPort"], a, "{state}");
    // And A answers: the listener came back on it.
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.expect("socket");
    let me = socket.local_addr().expect("addr").port();
    let options = format!(
        "OPTIONS sip:door@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKaba\r\n\
         From: <sip:probe@127.0.0.1>;tag=p\r\nTo: <sip:door@127.0.0.1>\r\nCall-ID: aba\r\nCSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    socket.send_to(options.as_bytes(), ("127.0.0.1", a)).await.expect("send");
    let mut buf = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf)).await.expect("answered").expect("recv");
    assert!(buf[..n].starts_with(b"SIP/2.0 200"));
}
