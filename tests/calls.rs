//! Calls and events, as the spec's "VMS calls" and "Event examples" describe them: whole flows
//! driven through the real HTTP API, real media streams and a real WebSocket client.

mod common;

use std::time::Duration;

use common::{assert_fault, Doorsim};
use serde_json::{json, Value};

const CALL_TOPICS: &[&str] = &["tnsaxis:Call/State", "tnsaxis:Call/StateChange"];

async fn call_status(d: &Doorsim, id: &str) -> Value {
    d.ok("GetCallStatus", json!({"CallId": id})).await["CallStatus"].clone()
}

/// Polls until call `id` is in `state` (a stream's end reaches the device asynchronously).
async fn wait_for_state(d: &Doorsim, id: &str, state: &str) -> Value {
    for _ in 0..100 {
        let s = call_status(d, id).await;
        if s["CallState"] == state {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("call {id} never became {state}: {}", call_status(d, id).await);
}

#[tokio::test]
async fn event_examples_outgoing_vms_call_answered_by_audio_then_ended() {
    let d = Doorsim::start(&[]);
    let mut events = d.events(CALL_TOPICS).await;
    assert_eq!(events.next_event().await, "State=Idle", "the current state comes first");

    let id = d.ok("Call", json!({"To": "VMS_CALL"})).await["CallId"].as_str().expect("CallId").to_owned();
    assert!(id.starts_with("Out-0-"), "{id}");
    assert_eq!(events.next_events(2).await, ["StateChange=Initiated", "State=Calling"]);
    let s = call_status(&d, &id).await;
    assert_eq!(
        (s["CallState"].clone(), s["CallType"].clone(), s["Direction"].clone()),
        (json!("Calling"), json!("VMS"), json!("Outgoing"))
    );
    assert_eq!(s["RemoteURI"], "VMS_CALL");
    for field in [
        "CallId",
        "Source",
        "CallState",
        "CallStateReason",
        "StartTime",
        "Direction",
        "DeviceURI",
        "RemoteURI",
        "CallType",
    ] {
        assert!(s.get(field).is_some(), "CallStatus lacks {field}: {s}");
    }
    assert!(s.get("StopTime").is_none());

    let upload = d.transmit_audio().await;
    assert_eq!(events.next_events(2).await, ["StateChange=AcceptedByRemote", "State=Active"]);
    assert_eq!(call_status(&d, &id).await["CallStateReason"], "AcceptedByRemote");
    assert_eq!(d.state().await["Streams"]["AudioToDevice"], 1);

    assert_eq!(upload.finish().await, 200);
    assert_eq!(events.next_events(2).await, ["StateChange=Terminated", "State=Idle"]);
    let s = wait_for_state(&d, &id, "Terminated").await;
    assert_eq!(s["CallStateReason"], "Terminated");
    assert!(s["StopTime"].is_string());
}

#[tokio::test]
async fn event_examples_incoming_vms_call_from_audio_alone() {
    let d = Doorsim::start(&[]);
    let mut events = d.events(&["tnsaxis:Call//."]).await;
    assert_eq!(events.next_event().await, "State=Idle");
    let upload = d.transmit_audio().await;
    assert_eq!(events.next_events(2).await, ["StateChange=AcceptedByDevice", "State=Active"]);
    let calls = d.ok("GetCallStatuses", json!({})).await["CallStatus"].clone();
    assert_eq!(calls.as_array().map(Vec::len), Some(1));
    assert_eq!((calls[0]["Direction"].clone(), calls[0]["CallState"].clone()), (json!("Incoming"), json!("Active")));
    assert!(calls[0]["CallId"].as_str().is_some_and(|id| id.starts_with("In-")));
    upload.finish().await;
    assert_eq!(events.next_events(2).await, ["StateChange=Terminated", "State=Idle"]);
}

#[tokio::test]
async fn event_examples_vms_call_times_out_with_no_answer() {
    // VMS Timeout 30 s at --time-scale 30 is one second.
    let d = Doorsim::start(&["--time-scale", "30"]);
    let mut events = d.events(CALL_TOPICS).await;
    events.next_event().await;
    let id = d.ok("Call", json!({"To": "VMS_CALL"})).await["CallId"].as_str().expect("CallId").to_owned();
    assert_eq!(
        events.next_events(4).await,
        ["StateChange=Initiated", "State=Calling", "StateChange=NoAnswer", "State=Idle"]
    );
    let s = call_status(&d, &id).await;
    assert_eq!((s["CallState"].clone(), s["CallStateReason"].clone()), (json!("Terminated"), json!("NoAnswer")));
}

#[tokio::test]
async fn terminate_call_while_calling_and_while_active() {
    let d = Doorsim::start(&[]);
    let mut events = d.events(&["tnsaxis:Call/StateChange"]).await;
    let calling = d.ok("Call", json!({"To": "VMS_CALL"})).await["CallId"].as_str().expect("id").to_owned();
    assert_eq!(d.ok("TerminateCall", json!({"CallId": calling})).await, json!({}));
    assert_eq!(events.next_events(2).await, ["StateChange=Initiated", "StateChange=Terminated"]);
    assert_eq!(call_status(&d, &calling).await["CallState"], "Terminated");

    let active = d.ok("Call", json!({"To": "VMS_CALL"})).await["CallId"].as_str().expect("id").to_owned();
    let upload = d.transmit_audio().await;
    assert_eq!(events.next_events(2).await, ["StateChange=Initiated", "StateChange=AcceptedByRemote"]);
    let a = d.simple("TerminateCall", &format!("CallId={active}")).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(events.next_event().await, "StateChange=Terminated");
    // A terminated call cannot be terminated again.
    assert_fault(&d.call("TerminateCall", json!({"CallId": active})).await, "ter:InvalidArgVal", Some("ter:NotFound"));
    upload.finish().await;
}

#[tokio::test]
async fn vms_stream_counts_are_judged_independently() {
    let d = Doorsim::start(&[]);
    // Spec example: audio both ways with both thresholds at 1 makes two calls.
    d.ok("SetVMSCallConfiguration", json!({"VMSCallConfiguration": {"Enabled": true,
        "AudioFromDeviceToNetworkStreams": 1, "AudioFromNetworkToDeviceStreams": 1, "VideoFromDeviceToNetworkStreams": 0}}))
        .await;
    let mut events = d.events(&["tnsaxis:Call/StateChange"]).await;
    let listen = d.request_stream("/axis-cgi/audio/receive.cgi").await;
    assert_eq!(events.next_event().await, "StateChange=AcceptedByDevice");
    let upload = d.transmit_audio().await;
    assert_eq!(events.next_event().await, "StateChange=AcceptedByDevice");
    let calls = d.ok("GetCallStatuses", json!({})).await["CallStatus"].clone();
    assert_eq!(calls.as_array().map(Vec::len), Some(2));
    drop(listen);
    assert_eq!(events.next_event().await, "StateChange=Terminated");
    upload.finish().await;
    assert_eq!(events.next_event().await, "StateChange=Terminated");

    // Spec example: with the default thresholds a video stream triggers no call.
    d.ok("SetVMSCallConfiguration", json!({"VMSCallConfiguration": {"Enabled": true,
        "AudioFromDeviceToNetworkStreams": 0, "AudioFromNetworkToDeviceStreams": 1, "VideoFromDeviceToNetworkStreams": 0}}))
        .await;
    let video = d.request_stream("/axis-cgi/mjpg/video.cgi").await;
    for _ in 0..100 {
        if d.state().await["Streams"]["VideoFromDevice"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(d.state().await["Streams"]["VideoFromDevice"], 1);
    tokio::time::sleep(Duration::from_millis(200)).await; // time for a (wrong) call to appear
    let active = d.ok("GetCallStatuses", json!({})).await["CallStatus"]
        .as_array()
        .map(|c| c.iter().filter(|s| s["CallState"] != "Terminated").count());
    assert_eq!(active, Some(0));
    drop(video);
}

#[tokio::test]
async fn media_streams_carry_real_audio_and_video() {
    let d = Doorsim::start(&[]);
    let mut audio = d.request_stream("/axis-cgi/audio/receive.cgi").await;
    assert_eq!(audio.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("audio/basic"));
    let started = std::time::Instant::now();
    let mut received = 0;
    while received < 4000 {
        received += audio.chunk().await.expect("audio").expect("more audio").len();
    }
    let elapsed = started.elapsed();
    // 4000 µ-law bytes are half a second of audio, sent at real-time pace.
    assert!(elapsed >= Duration::from_millis(350) && elapsed < Duration::from_secs(3), "{elapsed:?}");

    let mut video = d.request_stream("/axis-cgi/mjpg/video.cgi").await;
    let content_type = video.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(content_type.starts_with("multipart/x-mixed-replace; boundary="), "{content_type}");
    let mut bytes = Vec::new();
    while bytes.windows(2).filter(|w| *w == [0xFF, 0xD9]).count() < 2 {
        bytes.extend_from_slice(&video.chunk().await.expect("video").expect("more video"));
    }
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("--doorsimframe\r\nContent-Type: image/jpeg\r\nContent-Length: "), "{}", &text[..60]);
    assert!(bytes.windows(2).any(|w| w == [0xFF, 0xD8]), "a JPEG start marker");
}

#[tokio::test]
async fn call_button_press_emits_port_events_and_calls_the_vms() {
    let d = Doorsim::start(&[]);
    let mut events = d.events(&["tns1:Device/tnsaxis:IO/Port", "tnsaxis:Call/StateChange"]).await;
    // The current state of each of the A8207-VE's three ports comes first.
    assert_eq!(events.next_events(3).await, ["Port=0", "Port=0", "Port=0"]);
    let r = d.request("POST", "/emulator/v1/button/press", None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let id = r.json()["CallId"].as_str().expect("CallId").to_owned();
    assert_eq!(events.next_events(3).await, ["Port=1", "StateChange=Initiated", "Port=0"]);
    assert_eq!(call_status(&d, &id).await["CallType"], "VMS");
    let log = d.request("GET", "/emulator/v1/events?topic=tns1:Device/tnsaxis:IO/Port", None).await.json();
    let states: Vec<&str> = log["Events"]
        .as_array()
        .expect("log")
        .iter()
        .filter(|e| e["source"]["port"] == "0")
        .filter_map(|e| e["data"]["state"].as_str())
        .collect();
    assert_eq!(states, ["0", "1", "0"], "initial state, press, release");
}

#[tokio::test]
async fn bad_call_requests_fault_clearly() {
    let d = Doorsim::start(&[]);
    let long = "x".repeat(65);
    for (command, params, code, sub) in [
        ("TerminateCall", json!({"CallId": "Out-0-1.2-unknown"}), "ter:InvalidArgVal", Some("ter:NotFound")),
        ("TerminateCall", json!({"CallId": long}), "ter:InvalidArgVal", Some("ter:InvalidArgVal")),
        ("TerminateCall", json!({}), "ter:InvalidArgs", None),
        ("GetCallStatus", json!({"CallId": "nope"}), "ter:InvalidArgVal", Some("ter:NotFound")),
        ("GetCallStatus", json!({"CallId": 7}), "ter:InvalidArgVal", Some("ter:InvalidArgVal")),
        ("Call", json!({"To": "http://example.com"}), "ter:InvalidArgVal", Some("ter:InvalidArgVal")),
        ("Call", json!({"To": "VMS_CALL", "SIPAccountId": "nope"}), "ter:InvalidArgVal", Some("ter:InvalidArgVal")),
        ("Call", json!({}), "ter:InvalidArgs", None),
        ("Call", json!({"To": "sip:6002@example.axis.com"}), "ter:Action", Some("ter:Failure")),
    ] {
        assert_fault(&d.call(command, params).await, code, sub);
    }
    // GetCallStatuses skips unknown ids.
    assert_eq!(d.ok("GetCallStatuses", json!({"CallId": ["nope"]})).await, json!({"CallStatus": []}));
    // VMS calls can be disabled.
    d.ok("SetVMSCallConfiguration", json!({"VMSCallConfiguration": {"Enabled": false,
        "AudioFromDeviceToNetworkStreams": 0, "AudioFromNetworkToDeviceStreams": 1, "VideoFromDeviceToNetworkStreams": 0}}))
        .await;
    assert_fault(&d.call("Call", json!({"To": "VMS_CALL"})).await, "ter:Action", Some("ter:Failure"));
    // ...and then streams make no calls either.
    let upload = d.transmit_audio().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(d.ok("GetCallStatuses", json!({})).await, json!({"CallStatus": []}));
    upload.finish().await;
}

#[tokio::test]
async fn the_concurrent_call_limit_is_sixteen() {
    let d = Doorsim::start(&[]);
    for _ in 0..16 {
        d.ok("Call", json!({"To": "VMS_CALL"})).await;
    }
    assert_fault(&d.call("Call", json!({"To": "VMS_CALL"})).await, "ter:Action", Some("ter:Failure"));
}

#[tokio::test]
async fn websocket_garbage_gets_errors_and_the_stream_keeps_working() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message;

    let d = Doorsim::start(&[]);
    let mut events = d.events(&["tnsaxis:Call/StateChange"]).await;
    for garbage in [
        "not json",
        r#"{"method":"events:unknown"}"#,
        r#"{"method":"events:configure","params":{"eventFilterList":[{}]}}"#,
    ] {
        events.ws.send(Message::text(garbage)).await.expect("send");
        let answer = events.next_json().await;
        assert_eq!(answer["error"]["code"], 400, "{garbage}: {answer}");
    }
    events.ws.send(Message::binary(vec![0u8, 1, 2])).await.expect("send");
    assert_eq!(events.next_json().await["error"]["code"], 400);
    d.ok("Call", json!({"To": "VMS_CALL"})).await;
    assert_eq!(events.next_event().await, "StateChange=Initiated");

    // A used or invented session token does not open the stream.
    let url = format!("{}/vapix/ws-data-stream?sources=events&wssession=deadbeef", d.base.replace("http://", "ws://"));
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
}

#[tokio::test]
async fn answer_and_reject_need_a_ringing_incoming_call() {
    let d = Doorsim::start(&[]);
    let id = d.ok("Call", json!({"To": "VMS_CALL"})).await["CallId"].as_str().expect("id").to_owned();
    for action in ["answer", "reject"] {
        for target in [id.as_str(), "In-0-1.2-unknown"] {
            let r = d.request("POST", &format!("/emulator/v1/calls/{target}/{action}"), None).await;
            assert_eq!(r.status, 404, "{action} {target}: {}", r.body);
            assert!(r.json()["Error"].as_str().is_some_and(|e| e.contains("no ringing incoming call")));
        }
    }
    assert_eq!(call_status(&d, &id).await["CallState"], "Calling", "an outgoing call is not answered by the device");
}

#[tokio::test]
async fn a_slow_event_subscriber_never_blocks_the_device() {
    let d = Doorsim::start(&[]);
    // Subscribe with a small receive window, then never read: the socket's buffers fill and
    // the device must drop for it.
    let _stalled = d.events_with_small_window(&[]).await;
    let started = std::time::Instant::now();
    let mut presses = 0;
    while d.request("GET", "/emulator/v1/events?topic=none", None).await.json()["Dropped"] == 0 {
        for _ in 0..500 {
            d.request("POST", "/emulator/v1/button/press", None).await;
        }
        presses += 500;
        assert!(presses <= 20_000, "no event was dropped after {presses} presses");
    }
    // Meanwhile the device answered every request; it still does, promptly.
    let before = std::time::Instant::now();
    d.ok("GetServiceCapabilities", json!({})).await;
    assert!(before.elapsed() < Duration::from_secs(1));
    eprintln!("{presses} presses ({} events) in {:?} filled the stalled subscriber", presses * 2, started.elapsed());
}

#[tokio::test]
async fn stream_counts_return_to_zero_when_clients_leave() {
    let d = Doorsim::start(&[]);
    let audio = d.request_stream("/axis-cgi/audio/receive.cgi").await;
    let video = d.request_stream("/axis-cgi/mjpg/video.cgi").await;
    let upload = d.transmit_audio().await;
    let all_open = json!({"AudioFromDevice": 1, "AudioToDevice": 1, "VideoFromDevice": 1});
    let mut streams = Value::Null;
    for _ in 0..100 {
        streams = d.state().await["Streams"].clone();
        if streams == all_open {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(streams, all_open);
    drop((audio, video));
    upload.finish().await;
    let mut streams = Value::Null;
    for _ in 0..50 {
        streams = d.state().await["Streams"].clone();
        if streams == json!({"AudioFromDevice": 0, "AudioToDevice": 0, "VideoFromDevice": 0}) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("streams still counted after their clients left: {streams}");
}
