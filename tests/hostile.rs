//! Hostile clients held: a thousand HTTP clients that trickle a request line do not stop a
//! normal client from being served (a header read timeout, and a connection limit with room
//! for new clients), and a trickling client is cut off once its head is 10 s late; garbage on
//! SIP over TCP and mutated SIP datagrams leave the device answering OPTIONS.

mod common;

use std::time::Duration;

use common::Doorsim;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

#[tokio::test]
async fn a_thousand_slow_clients_do_not_lock_out_a_normal_one() {
    // This test holds a thousand sockets itself.
    rlimit::increase_nofile_limit(4096).expect("open-files limit");
    let d = Doorsim::start(&[]);
    let at = d.base.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for _ in 0..1000 {
        let mut s = TcpStream::connect(&at).await.expect("connect");
        s.write_all(b"GET /vapix/call?format=sim").await.expect("a trickle");
        slow.push(s);
    }
    let client = reqwest::Client::builder().timeout(Duration::from_secs(1)).build().expect("client");
    let body = json!({"axcall:GetServiceCapabilities": {}});
    let served =
        client.post(format!("{}/vapix/call", d.base)).basic_auth("root", Some("pass")).json(&body).send().await;
    assert!(served.is_ok_and(|r| r.status() == 200), "a normal client is served within 1 s beside 1000 slow ones");
    drop(slow);
}

/// Reads until the server ends the connection; what it sent meanwhile.
async fn until_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(30), s.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return got,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the connection was still open 30 s on; it sent {:?}", String::from_utf8_lossy(&got)),
        }
    }
}

#[tokio::test]
async fn a_request_head_not_complete_in_ten_seconds_ends_the_connection() {
    let d = Doorsim::start(&[]);
    let at = d.base.trim_start_matches("http://").to_owned();
    // A first request served on a keep-alive connection, then the next head trickles.
    let mut s = TcpStream::connect(&at).await.expect("connect");
    let body = r#"{"axcall:GetServiceCapabilities":{}}"#;
    let request = format!(
        "POST /vapix/call HTTP/1.1\r\nHost: {at}\r\nAuthorization: Basic cm9vdDpwYXNz\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let sent = std::time::Instant::now();
    s.write_all(request.as_bytes()).await.expect("request");
    let mut first = [0u8; 16];
    s.read_exact(&mut first).await.expect("an answer");
    assert_eq!(&first[..12], b"HTTP/1.1 200", "the first request is served");
    s.write_all(b"GET /vapix/call?format=sim").await.expect("a trickle");
    until_closed(&mut s).await;
    let waited = sent.elapsed();
    assert!(
        waited >= Duration::from_secs(10),
        "the next head had 10 s from the end of the first; closed after {waited:?}"
    );
    // A connection that never sends a byte is ended the same way.
    let mut idle = TcpStream::connect(&at).await.expect("connect");
    assert!(until_closed(&mut idle).await.is_empty(), "nothing is sent to a client that sent nothing");
    // The server still serves new clients.
    let mut next = TcpStream::connect(&at).await.expect("connect");
    next.write_all(request.as_bytes()).await.expect("request");
    next.read_exact(&mut first).await.expect("an answer");
    assert_eq!(&first[..12], b"HTTP/1.1 200");
}

#[tokio::test]
async fn garbage_and_mutated_sip_leave_the_device_answering() {
    let d = Doorsim::start(&[]);
    let (port, _) = d.enable_sip(json!({})).await;
    let before = d.rss_kib();
    // 200 TCP connections sending garbage.
    for i in 0..200u32 {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await {
            let _ = s.write_all(format!("\x16\x03\x01 garbage {i} \r\n\r\n\0\0\0").as_bytes()).await;
        }
    }
    // 20,000 mutated datagrams: a valid OPTIONS with bytes flipped.
    let socket = UdpSocket::bind("127.0.0.1:0").await.expect("udp");
    let me = socket.local_addr().expect("addr").port();
    let options = format!(
        "OPTIONS sip:door@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bKm\r\n\
         From: <sip:p@127.0.0.1>;tag=1\r\nTo: <sip:door@127.0.0.1>\r\nCall-ID: m\r\nCSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut drain = vec![0u8; 65536];
    for i in 0..20_000 {
        let mut bytes = options.clone().into_bytes();
        for _ in 0..3 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed as usize) % bytes.len();
            bytes[at] = (seed >> 32) as u8;
        }
        let _ = socket.send_to(&bytes, ("127.0.0.1", port)).await;
        if i % 100 == 0 {
            // Read what came back, so this socket's own buffer never overflows.
            while let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(1), socket.recv(&mut drain)).await {}
        }
    }
    assert!(common::answers_options("127.0.0.1", port).await, "OPTIONS still answered");
    // What the garbage leaves: no dialog, at most one (lingering) transaction per datagram, and
    // memory within a budget of 4 KiB per transaction.
    let sip = d.state().await["Sip"].clone();
    assert_eq!(sip["Dialogs"], 0, "{sip}");
    let transactions = sip["Transactions"].as_u64().expect("count");
    assert!(transactions <= 20_001, "one transaction per request at most: {sip}");
    let after = d.rss_kib();
    assert!(after < before + 16 * 1024 + transactions * 4, "memory grew from {before} KiB to {after} KiB ({sip})");
}
