//! `POST /emulator/v1/reset` returns the device to its power-on state, so a test suite can reuse
//! one device: calls end on the wire (BYE for the answered one, a final answer for the ringing
//! one) and are forgotten with their counters, the event log empties, I/O ports and virtual
//! inputs are back to the profile's state, runtime door actions are gone; and
//! `GET /emulator/v1/events?after=CURSOR` shows only what came after a cursor.

mod common;

use std::time::Duration;

use common::Doorsim;
use serde_json::{json, Value};
use tokio::net::UdpSocket;

fn invite(me: u16, call_id: &str) -> String {
    let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n";
    format!(
        "INVITE sip:door@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:{me};branch=z9hG4bK{call_id}\r\n\
         From: <sip:peer@127.0.0.1>;tag=p-{call_id}\r\nTo: <sip:door@127.0.0.1>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:peer@127.0.0.1:{me}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// The first lines of the messages `socket` receives within `within`.
async fn first_lines(socket: &UdpSocket, within: Duration) -> Vec<String> {
    let mut lines = Vec::new();
    let mut buf = vec![0u8; 65536];
    let deadline = tokio::time::Instant::now() + within;
    while let Ok(Ok(n)) = tokio::time::timeout_at(deadline, socket.recv(&mut buf)).await {
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let call_id = text.lines().find_map(|l| l.strip_prefix("Call-ID: ")).unwrap_or("").to_owned();
        lines.push(format!("{} [{call_id}]", text.lines().next().unwrap_or("")));
    }
    lines
}

async fn calls(d: &Doorsim) -> Vec<Value> {
    d.ok("GetCallStatuses", json!({})).await["CallStatus"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn reset_returns_the_device_to_its_power_on_state() {
    let d = Doorsim::start_on_own_address(&[]);
    let (port, _) = d.enable_sip(json!({})).await;
    let peer = UdpSocket::bind((d.ip().as_str(), 0)).await.expect("peer");
    peer.connect((d.ip().as_str(), port)).await.expect("connect");
    let me = peer.local_addr().expect("addr").port();
    // One call answered, one ringing.
    peer.send(invite(me, "up").as_bytes()).await.expect("invite");
    peer.send(invite(me, "ringing").as_bytes()).await.expect("invite");
    let mut ids = Vec::new();
    for _ in 0..50 {
        ids = calls(&d).await.iter().map(|c| c["CallId"].as_str().unwrap_or("").to_owned()).collect();
        if ids.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ids.len(), 2);
    let answered = d.request("POST", &format!("/emulator/v1/calls/{}/answer", ids[0]), None).await;
    assert_eq!(answered.status, 200, "{}", answered.body);
    first_lines(&peer, Duration::from_millis(300)).await; // 180s and the 200
                                                          // Door output on, a virtual input on, a runtime door action.
    assert_eq!(d.request("POST", "/emulator/v1/io/1/activate", None).await.status, 200);
    let virtual_on = d.request("GET", "/axis-cgi/virtualinput/activate.cgi?schemaversion=1&port=3", None).await;
    assert_eq!(virtual_on.status, 200, "{}", virtual_on.body);
    d.ok("SetDTMFEvent", json!({"DTMFEvent": {"Id": "open", "Name": "Open"}})).await;
    let bound =
        d.request("POST", "/emulator/v1/dtmf-actions", Some(r#"{"DTMFEventId":"open","Port":1,"Seconds":5}"#)).await;
    assert_eq!(bound.status, 200, "{}", bound.body);

    let reset = d.request("POST", "/emulator/v1/reset", None).await;
    assert_eq!(reset.status, 200, "{}", reset.body);
    let cursor = reset.json()["Cursor"].as_u64().expect("a cursor");

    // On the wire: the answered call got a BYE, the ringing one a final answer.
    let wire = first_lines(&peer, Duration::from_millis(500)).await.join("\n");
    assert!(wire.contains(&format!("BYE sip:peer@127.0.0.1:{me} SIP/2.0 [up]")), "{wire}");
    assert!(wire.lines().any(|l| l.starts_with("SIP/2.0 4") && l.ends_with("[ringing]")), "{wire}");
    assert!(calls(&d).await.is_empty(), "calls are forgotten");
    assert_eq!(d.request("GET", "/axis-cgi/io/port.cgi?checkactive=2", None).await.body.trim(), "port2=inactive");
    let actions = d.request("GET", "/emulator/v1/dtmf-actions", None).await.json();
    assert_eq!(actions["DtmfActions"], json!([]), "runtime door actions are gone");
    let state = d.state().await;
    assert_eq!(state["Store"]["SIPConfiguration"]["SIPEnabled"], false);
    let log = d.request("GET", "/emulator/v1/events", None).await.json();
    assert_eq!(log["Events"], json!([]), "the event log is empty");

    // What a test causes after the reset, and only that, follows the cursor; counters restart.
    let pressed = d.request("POST", "/emulator/v1/button/press", None).await.json();
    assert!(pressed["CallId"].as_str().is_some_and(|id| id.starts_with("Out-0-")), "{pressed}");
    let after = d.request("GET", &format!("/emulator/v1/events?after={cursor}"), None).await.json();
    let events = after["Events"].as_array().expect("events");
    assert!(!events.is_empty() && events.iter().all(|e| e["cursor"].as_u64() > Some(cursor)), "{after}");
    let later = after["Cursor"].as_u64().expect("cursor");
    let none = d.request("GET", &format!("/emulator/v1/events?after={later}"), None).await.json();
    assert_eq!(none["Events"], json!([]));
    assert_eq!(d.request("GET", "/emulator/v1/events?after=x", None).await.status, 400);
}
