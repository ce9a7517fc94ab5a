//! Paths to peers the device opens itself, seen from raw TCP peers: a call target that never
//! accepts fails that one call and never stops the device answering (RFC 3261 8.1.3.1: a
//! transport failure is a 503), and a TCP registrar that restarts gets the next refresh on a new
//! connection (a registration names its registrar by address, not by socket).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{free_port, Doorsim};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};

/// A TCP listener whose accept queue is full: further connects hang in SYN retransmissions.
/// Returns it and the queued connections, which must stay alive.
async fn never_accepting() -> (TcpListener, Vec<TcpStream>, u16) {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
    let listener = socket.listen(0).expect("listen");
    let at = listener.local_addr().expect("addr");
    let mut queued = Vec::new();
    // Fill the queue (backlog 0 admits one, Linux a little more): stop at the first connect that hangs.
    for _ in 0..8 {
        match tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(at)).await {
            Ok(Ok(s)) => queued.push(s),
            _ => break,
        }
    }
    (listener, queued, at.port())
}

async fn options_answered(port: u16, call_id: &str) -> bool {
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("socket");
    let me = socket.local_addr().expect("addr").port();
    let options = format!(
        "OPTIONS sip:door@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK{call_id}\r\n\
         From: <sip:probe@127.0.0.1>;tag=o\r\nTo: <sip:door@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    socket.send_to(options.as_bytes(), ("127.0.0.1", port)).await.expect("send");
    let mut buf = [0u8; 4096];
    matches!(tokio::time::timeout(Duration::from_secs(1), socket.recv(&mut buf)).await,
        Ok(Ok(n)) if buf[..n].starts_with(b"SIP/2.0 200"))
}

#[tokio::test]
async fn udp_options_are_answered_while_a_tcp_call_target_never_accepts() {
    let (_listener, _queued, dead) = never_accepting().await;
    let d = Doorsim::start(&[]);
    let (port, _) = d.enable_sip(json!({})).await;
    d.ok("SetSIPAccount", json!({"SIPAccount": {"Id": "tcp", "UserId": "door", "Transport": "tcp"}})).await;
    let id = d.ok("Call", json!({"To": format!("sip:guard@127.0.0.1:{dead}"), "SIPAccountId": "tcp"})).await["CallId"]
        .as_str()
        .expect("CallId")
        .to_owned();
    for i in 0..3 {
        assert!(options_answered(port, &format!("while-connecting-{i}")).await, "OPTIONS {i} answered within 1 s");
    }
    // The one call fails when its connect times out; the device is fine.
    let mut status = serde_json::Value::Null;
    for _ in 0..150 {
        status = d.ok("GetCallStatus", json!({"CallId": id})).await["CallStatus"].clone();
        if status["CallState"] == "Terminated" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        (status["CallState"].as_str(), status["CallStateReason"].as_str()),
        (Some("Terminated"), Some("Failed"))
    );
    assert!(options_answered(port, "after").await);
}

/// Reads one SIP request (no body) from a stream.
async fn read_request(stream: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(15), stream.read(&mut chunk))
            .await
            .expect("a request in time")
            .expect("read");
        assert!(n > 0, "connection closed before a request");
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

fn header<'a>(message: &'a str, name: &str) -> &'a str {
    message
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
        .map(str::trim)
        .unwrap_or_default()
}

/// A 200 to a REGISTER granting `expires` seconds.
fn ok_for(register: &str, expires: u32) -> String {
    let copied: String =
        ["Via", "From", "Call-ID", "CSeq"].iter().map(|h| format!("{h}: {}\r\n", header(register, h))).collect();
    format!(
        "SIP/2.0 200 OK\r\n{copied}To: {};tag=reg\r\nContact: {};expires={expires}\r\nExpires: {expires}\r\nContent-Length: 0\r\n\r\n",
        header(register, "To"),
        header(register, "Contact")
    )
}

#[tokio::test]
async fn a_tcp_registrar_restarted_mid_run_gets_the_next_refresh() {
    let port = free_port();
    let at: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let registrar = TcpListener::bind(at).await.expect("registrar");
    let d = Doorsim::start(&[]);
    d.enable_sip(json!({})).await;
    d.ok(
        "SetSIPAccount",
        json!({"SIPAccount": {"Id": "pbx", "UserId": "6001", "Registrar": format!("127.0.0.1:{port}"),
            "PublicDomain": "127.0.0.1", "Transport": "tcp"}}),
    )
    .await;
    let (mut first, _) =
        tokio::time::timeout(Duration::from_secs(10), registrar.accept()).await.expect("connects").expect("accept");
    let register = read_request(&mut first).await;
    assert!(register.starts_with("REGISTER "), "{register}");
    assert!(header(&register, "Via").starts_with("SIP/2.0/TCP "), "{register}");
    first.write_all(ok_for(&register, 2).as_bytes()).await.expect("answer");
    // The registrar restarts: its connection and listener are gone, then it listens again.
    drop(first);
    drop(registrar);
    let registrar = TcpListener::bind(at).await.expect("registrar again");
    let (mut second, _) =
        tokio::time::timeout(Duration::from_secs(10), registrar.accept()).await.expect("reconnects").expect("accept");
    let refresh = read_request(&mut second).await;
    assert!(refresh.starts_with("REGISTER "), "{refresh}");
    assert_eq!(header(&refresh, "Call-ID"), header(&register, "Call-ID"), "a refresh of the same registration");
    let number = |m: &str| header(m, "CSeq").split(' ').next().and_then(|n| n.parse::<u32>().ok());
    assert!(number(&refresh) > number(&register), "{refresh}");
    second.write_all(ok_for(&refresh, 60).as_bytes()).await.expect("answer");
    let mut status = serde_json::Value::Null;
    for _ in 0..50 {
        status = d.ok("GetSIPAccountStatus", json!({"SIPAccountId": "pbx"})).await["SIPAccountStatus"].clone();
        if status["Status"] == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status["Status"], 200, "{status}");
}
