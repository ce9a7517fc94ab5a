//! DTMF end to end between two doorsims: the caller sends digits (RFC 4733 over RTP, then SIP
//! INFO) through the control API; the callee decodes them, matches its account's trigger, emits
//! `tnsaxis:Call/DTMF` on the WebSocket and in the event log, and opens its door output.
//! Also: a method the account's DTMF configuration disables is not honoured.

mod common;

use std::time::Duration;

use common::Doorsim;
use serde_json::{json, Value};

/// The callee's DTMF set-up: `#1234#` opens the door for one second; `rtp` and `info` say which
/// methods its configuration honours.
async fn configure_callee(d: &Doorsim, rtp: bool, info: bool) {
    d.configure_dtmf("#1234#", rtp, info).await;
    let bound = d
        .request("POST", "/emulator/v1/dtmf-actions", Some(r#"{"DTMFEventId":"open_door","Port":1,"Seconds":1}"#))
        .await;
    assert_eq!(bound.status, 200, "{}", bound.body);
}

/// Places a call from `caller` to `callee` and waits until both sides are active; returns the
/// caller's and the callee's call ids.
async fn connect(caller: &Doorsim, callee: &Doorsim, callee_port: u16) -> (String, String) {
    caller.ok("Call", json!({"To": format!("sip:door@127.0.0.1:{callee_port}")})).await;
    let (outgoing, _) = caller.call_in("Active").await;
    let (incoming, _) = callee.call_in("Active").await;
    let id = |c: &Value| c["CallId"].as_str().expect("id").to_owned();
    (id(&outgoing), id(&incoming))
}

async fn dtmf_events(d: &Doorsim) -> Vec<Value> {
    d.request("GET", "/emulator/v1/events?topic=tnsaxis:Call/DTMF", None).await.json()["Events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

async fn send(d: &Doorsim, call: &str, digits: &str, method: &str) {
    let body = json!({"Digits": digits, "Method": method}).to_string();
    let r = d.request("POST", &format!("/emulator/v1/calls/{call}/dtmf"), Some(&body)).await;
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test]
async fn a_code_over_rtp_and_over_info_opens_the_door() {
    let callee = Doorsim::start(&["--auto-answer", "0"]);
    let caller = Doorsim::start(&[]);
    let (callee_port, _) = callee.enable_sip(json!({})).await;
    caller.enable_sip(json!({})).await;
    configure_callee(&callee, true, true).await;
    let mut ws = callee.events(&["tnsaxis:Call/DTMF"]).await;
    let (out, incoming) = connect(&caller, &callee, callee_port).await;

    let sent = std::time::Instant::now();
    send(&caller, &out, "#1234#", "RFC2833").await;
    let event = ws.next_json().await;
    let n = &event["params"]["notification"];
    assert_eq!(n["topic"], "tnsaxis:Call/DTMF");
    assert_eq!(n["message"]["source"], json!({"DTMFEventId": "open_door"}));
    assert_eq!(n["message"]["data"], json!({"CallId": incoming}));
    // The door action follows the event on the bus: wait for the lock to open.
    let mut lock = String::new();
    for _ in 0..40 {
        lock = callee.request("GET", "/axis-cgi/io/port.cgi?checkactive=2", None).await.body;
        if lock == "port2=active\n" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(lock, "port2=active\n");
    // It closes again by itself, and not before its 1 s hold (a lower bound: load only delays).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while callee.request("GET", "/axis-cgi/io/port.cgi?checkactive=2", None).await.body != "port2=inactive\n" {
        assert!(std::time::Instant::now() < deadline, "the lock never closed");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(sent.elapsed() >= Duration::from_secs(1), "held {:?}, less than 1 s", sent.elapsed());

    send(&caller, &out, "#1234#", "RFC2976").await;
    let again = ws.next_json().await;
    assert_eq!(again["params"]["notification"]["message"]["source"]["DTMFEventId"], "open_door");
    assert_eq!(dtmf_events(&callee).await.len(), 2);
    // Digits that match nothing emit nothing: the code after them is the third event, and it
    // arrives after anything the digits could have caused (INFO requests are handled in order).
    send(&caller, &out, "999", "RFC2976").await;
    send(&caller, &out, "#1234#", "RFC2976").await;
    ws.next_json().await;
    assert_eq!(dtmf_events(&callee).await.len(), 3);
}

#[tokio::test]
async fn a_method_the_configuration_disables_is_not_honoured() {
    let callee = Doorsim::start(&["--auto-answer", "0"]);
    let caller = Doorsim::start(&[]);
    let (callee_port, _) = callee.enable_sip(json!({})).await;
    caller.enable_sip(json!({})).await;
    configure_callee(&callee, false, true).await;
    let mut ws = callee.events(&["tnsaxis:Call/DTMF"]).await;
    let (out, _) = connect(&caller, &callee, callee_port).await;
    send(&caller, &out, "#1234#", "RFC2833").await;
    // An absence: a bounded look (the RFC 4733 digits take about 0.5 s to send).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(dtmf_events(&callee).await.is_empty(), "RFC 2833 is off for this account");
    send(&caller, &out, "#1234#", "RFC2976").await;
    ws.next_json().await;
    assert_eq!(dtmf_events(&callee).await.len(), 1, "SIP INFO is on");
}

#[tokio::test]
async fn dtmf_requests_are_checked() {
    let d = Doorsim::start(&[]);
    let r = d.request("POST", "/emulator/v1/calls/nope/dtmf", Some(r#"{"Digits":"1"}"#)).await;
    assert_eq!(r.status, 404);
    let r = d.request("POST", "/emulator/v1/dtmf-actions", Some(r#"{"DTMFEventId":"x","Port":0,"Seconds":1}"#)).await;
    assert_eq!(r.status, 409, "port 0 is the call button, an input: {}", r.body);
    let r = d.request("POST", "/emulator/v1/dtmf-actions", Some(r#"{"DTMFEventId":"x","Port":9,"Seconds":1}"#)).await;
    assert_eq!(r.status, 404, "no port 9: {}", r.body);
    let r = d.request("POST", "/emulator/v1/dtmf-actions", Some(r#"{"DTMFEventId":"x","Port":1,"Seconds":-1}"#)).await;
    assert_eq!(r.status, 400);
}
