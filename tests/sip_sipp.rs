//! SIP interop with sipp (Debian `sip-tester`, installed by scripts/test.sh) as the caller:
//! OPTIONS, incoming calls answered automatically or through the control API, declined,
//! refused by the access list, cancelled while ringing and hung up by the device, over UDP and
//! TCP, each checked against the call states and events. Scenario files are in `tests/sipp/`.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::{callee, scenario, sipp, Doorsim};
use serde_json::{json, Value};

/// A device with SIP enabled on a free port, with `config` merged into its SIPConfiguration.
async fn sip_device(args: &[&str], config: Value) -> (Doorsim, u16) {
    let d = Doorsim::start(args);
    let (port, _) = d.enable_sip(config).await;
    (d, port)
}

/// The call state change reasons once there are `n` of them (up to 20 s): a peer may finish
/// its scenario a moment before the device has published the last change.
async fn reasons_when(d: &Doorsim, n: usize) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = d.reasons().await;
        if r.len() >= n || std::time::Instant::now() >= deadline {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until a call is in `state`; returns its status.
async fn wait_for_call(d: &Doorsim, state: &str) -> Value {
    d.call_in(state).await.0
}

#[tokio::test]
async fn options_over_udp_and_tcp() {
    let (_d, port) = sip_device(&[], json!({})).await;
    for transport in ["u1", "t1"] {
        let (ok, out) = sipp(port, transport, &["-sf", &scenario("uac_options.xml")]).await;
        assert!(ok, "{transport}: {out}");
    }
}

#[tokio::test]
async fn incoming_calls_answered_automatically_over_udp_and_tcp() {
    let (d, port) = sip_device(&["--auto-answer", "0.1"], json!({})).await;
    for transport in ["u1", "t1"] {
        let (ok, out) = sipp(port, transport, &["-sn", "uac", "-d", "500"]).await;
        assert!(ok, "{transport}: {out}");
    }
    assert_eq!(
        reasons_when(&d, 6).await,
        ["Initiated", "AcceptedByDevice", "Terminated", "Initiated", "AcceptedByDevice", "Terminated"]
    );
    let calls = d.ok("GetCallStatuses", json!({})).await["CallStatus"].clone();
    for c in calls.as_array().expect("calls") {
        assert_eq!((c["Direction"].as_str(), c["CallType"].as_str()), (Some("Incoming"), Some("SIP")));
        assert!(c["RemoteURI"].as_str().is_some_and(|u| u.starts_with("sip:sipp@127.0.0.1")), "{c}");
        assert_eq!(c["AudioCodec"], "PCMU");
    }
    // The device sent RTP (a tone at 50 packets/s) while each call lasted half a second.
    let media = d.state().await["Media"].clone();
    assert!(media.as_object().is_some_and(|m| m.values().all(|v| v["RtpSent"].as_u64() > Some(5))), "{media}");
}

#[tokio::test]
async fn an_incoming_call_rings_until_the_control_api_answers_then_the_device_hangs_up() {
    let (d, port) = sip_device(&[], json!({})).await;
    let caller = tokio::spawn(async move { sipp(port, "u1", &["-sf", &scenario("uac_wait_bye.xml")]).await });
    let ringing = wait_for_call(&d, "Calling").await;
    assert_eq!(ringing["Direction"], "Incoming");
    let id = ringing["CallId"].as_str().expect("id").to_owned();
    assert!(id.starts_with("In-"), "{id}");
    let r = d.request("POST", &format!("/emulator/v1/calls/{id}/answer"), None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    wait_for_call(&d, "Active").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    d.ok("TerminateCall", json!({"CallId": id})).await;
    let (ok, out) = caller.await.expect("sipp task");
    assert!(ok, "{out}");
    assert_eq!(reasons_when(&d, 3).await, ["Initiated", "AcceptedByDevice", "Terminated"]);
}

#[tokio::test]
async fn calls_are_declined_when_incoming_calls_are_off_or_the_caller_is_not_allowed() {
    let template = std::fs::read_to_string(scenario("uac_expect_status.xml")).expect("scenario");
    let dir = std::env::temp_dir().join(format!("doorsim-sipp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    for (config, status) in [
        (json!({"AllowIncomingCalls": false}), "486"),
        (json!({"ApplyAccessList": true, "AccessList": ["sip:guard@pbx.local"], "AccessListPolicy": "Allow"}), "403"),
        (json!({"ApplyAccessList": true, "AccessList": ["sip:sipp@127.0.0.1"], "AccessListPolicy": "Block"}), "403"),
    ] {
        let (d, port) = sip_device(&[], config.clone()).await;
        let file = dir.join(format!("expect_{status}.xml"));
        std::fs::write(&file, template.replace("[$status]", status)).expect("write scenario");
        let (ok, out) = sipp(port, "u1", &["-sf", file.to_str().expect("path")]).await;
        assert!(ok, "{config}: {out}");
        assert_eq!(reasons_when(&d, 1).await, ["Denied"], "{config}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_caller_cancels_while_the_device_rings() {
    let (d, port) = sip_device(&[], json!({})).await;
    for transport in ["u1", "t1"] {
        let (ok, out) = sipp(port, transport, &["-sf", &scenario("uac_cancel.xml")]).await;
        assert!(ok, "{transport}: {out}");
    }
    assert_eq!(reasons_when(&d, 4).await, ["Initiated", "Terminated", "Initiated", "Terminated"]);
    let calls = d.ok("GetCallStatuses", json!({})).await["CallStatus"].clone();
    assert!(calls.as_array().expect("calls").iter().all(|c| c["CallState"] == "Terminated"));
}

#[tokio::test]
async fn rfc4475_torture_messages_never_silence_the_device() {
    let runner = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/rfc4475-torture/send_torture.py");
    if !runner.exists() {
        eprintln!("SKIPPED: {} not found (the corpus is only beside the project's CI checkout)", runner.display());
        return;
    }
    let (d, port) = sip_device(&[], json!({})).await;
    for transport in ["udp", "tcp"] {
        let (runner, port) = (runner.clone(), port.to_string());
        let out = tokio::task::spawn_blocking(move || {
            Command::new("python3")
                .arg(runner)
                .args(["--port", &port, "--transport", transport, "--reply-wait", "0.2"])
                .output()
        })
        .await
        .expect("thread")
        .expect("python3");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.trim_end().ends_with(", 0 failed"), "{transport}: {stdout}");
    }
    // Torture INVITEs are valid calls to a device that takes incoming calls: none may linger
    // in a state other than ringing or ended, and the HTTP side still answers.
    let calls = d.ok("GetCallStatuses", json!({})).await["CallStatus"].clone();
    assert!(calls.as_array().expect("calls").iter().all(|c| c["CallState"] != "Active"), "{calls}");
}

/// Waits (up to 20 s) until call `id` has ended.
async fn wait_terminated(d: &Doorsim, id: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while d.ok("GetCallStatus", json!({"CallId": id})).await["CallStatus"]["CallState"] != "Terminated" {
        assert!(std::time::Instant::now() < deadline, "call {id} never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Places a call to `uri` and returns its id.
async fn call(d: &Doorsim, uri: &str) -> String {
    d.ok("Call", json!({ "To": uri })).await["CallId"].as_str().expect("CallId").to_owned()
}

#[tokio::test]
async fn outgoing_calls_answered_then_ended_by_the_device_over_udp_and_tcp() {
    let (d, _) = sip_device(&[], json!({})).await;
    for (transport, sipp_transport) in [("udp", "u1"), ("tcp", "t1")] {
        d.ok(
            "SetSIPAccount",
            json!({"SIPAccount": {"Id": "peer-to-peer", "UserId": "door", "IsDefault": true, "Transport": transport}}),
        )
        .await;
        let (port, task) = callee(vec!["-sn".into(), "uas".into(), "-t".into(), sipp_transport.into()]).await;
        let id = call(&d, &format!("sip:callee@127.0.0.1:{port}")).await;
        let active = {
            let mut s = Value::Null;
            for _ in 0..100 {
                s = d.ok("GetCallStatus", json!({"CallId": id})).await["CallStatus"].clone();
                if s["CallState"] != "Calling" {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            s
        };
        assert_eq!(
            (active["CallState"].as_str(), active["CallStateReason"].as_str()),
            (Some("Active"), Some("AcceptedByRemote")),
            "{transport}"
        );
        assert_eq!(
            (active["Direction"].as_str(), active["SIPAccountId"].as_str()),
            (Some("Outgoing"), Some("peer-to-peer"))
        );
        d.ok("TerminateCall", json!({"CallId": id})).await;
        let (ok, out) = task.await.expect("sipp task");
        assert!(ok, "{transport}: {out}");
    }
    assert_eq!(
        reasons_when(&d, 6).await,
        ["Initiated", "AcceptedByRemote", "Terminated", "Initiated", "AcceptedByRemote", "Terminated"]
    );
}

#[tokio::test]
async fn outgoing_call_failures_map_to_busy_and_failed() {
    let template = std::fs::read_to_string(scenario("uas_status.xml")).expect("scenario");
    let dir = std::env::temp_dir().join(format!("doorsim-uas-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (d, _) = sip_device(&[], json!({})).await;
    for (status, reason) in [("486", "Busy"), ("600", "Busy"), ("603", "Failed"), ("404", "Failed")] {
        let file = dir.join(format!("uas_{status}.xml"));
        std::fs::write(&file, template.replace("[$status]", status)).expect("write");
        let (port, task) = callee(vec!["-sf".into(), file.to_string_lossy().into_owned()]).await;
        let id = call(&d, &format!("sip:callee@127.0.0.1:{port}")).await;
        let (ok, out) = task.await.expect("sipp task");
        assert!(ok, "{status}: {out}");
        wait_terminated(&d, &id).await;
        let s = d.ok("GetCallStatus", json!({"CallId": id})).await["CallStatus"].clone();
        assert_eq!(
            (s["CallState"].as_str(), s["CallStateReason"].as_str()),
            (Some("Terminated"), Some(reason)),
            "{status}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_unanswered_outgoing_call_is_cancelled_with_no_answer_or_by_terminate_call() {
    let (d, _) = sip_device(&[], json!({"CallingTimeout": 1})).await;
    let (port, task) = callee(vec!["-sf".into(), scenario("uas_no_answer.xml")]).await;
    let id = call(&d, &format!("sip:callee@127.0.0.1:{port}")).await;
    let (ok, out) = task.await.expect("sipp task");
    assert!(ok, "CallingTimeout: {out}");
    let s = d.ok("GetCallStatus", json!({"CallId": id})).await["CallStatus"].clone();
    assert_eq!(s["CallStateReason"], "NoAnswer");

    d.ok("SetSIPConfiguration", json!({"SIPConfiguration": {"CallingTimeout": 60}})).await;
    let (port, task) = callee(vec!["-sf".into(), scenario("uas_no_answer.xml")]).await;
    let id = call(&d, &format!("sip:callee@127.0.0.1:{port}")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    d.ok("TerminateCall", json!({"CallId": id})).await;
    let (ok, out) = task.await.expect("sipp task");
    assert!(ok, "TerminateCall: {out}");
    assert_eq!(reasons_when(&d, 4).await, ["Initiated", "NoAnswer", "Initiated", "Terminated"]);
}

#[tokio::test]
async fn an_outgoing_call_through_a_proxy_answers_a_digest_challenge_and_the_remote_hangs_up() {
    let (d, _) = sip_device(&[], json!({})).await;
    let (port, task) = callee(vec!["-sf".into(), scenario("uas_auth_then_bye.xml")]).await;
    d.ok(
        "SetSIPAccount",
        json!({"SIPAccount": {"Id": "pbx", "UserId": "6001", "Password": "secure", "IsDefault": true,
        "SIPProxies": [{"Server": format!("127.0.0.1:{port}")}]}}),
    )
    .await;
    let id = call(&d, "sip:6002@pbx.invalid").await;
    let (ok, out) = task.await.expect("sipp task");
    assert!(ok, "{out}");
    wait_terminated(&d, &id).await;
    let s = d.ok("GetCallStatus", json!({"CallId": id})).await["CallStatus"].clone();
    assert_eq!((s["CallState"].as_str(), s["CallStateReason"].as_str()), (Some("Terminated"), Some("Terminated")));
    assert_eq!(s["AudioCodec"], "PCMA", "the callee answered with PCMA only");
    assert_eq!(reasons_when(&d, 3).await, ["Initiated", "AcceptedByRemote", "Terminated"]);
}

/// A device that answers at once with `#1234#` (INFO test) or `1234` (pcap test) bound to the
/// DTMF event `open_door` on its default account.
async fn dtmf_device(sequence: &str) -> (Doorsim, u16) {
    let (d, port) = sip_device(&["--auto-answer", "0"], json!({})).await;
    d.configure_dtmf(sequence, true, true).await;
    (d, port)
}

async fn dtmf_event_sources(d: &Doorsim) -> Vec<Value> {
    let log = d.request("GET", "/emulator/v1/events?topic=tnsaxis:Call/DTMF", None).await.json();
    log["Events"].as_array().expect("log").iter().map(|e| e["source"].clone()).collect()
}

#[tokio::test]
async fn dtmf_over_sip_info_from_sipp() {
    let (d, port) = dtmf_device("#1234#").await;
    let (ok, out) = sipp(port, "u1", &["-sf", &scenario("uac_info_dtmf.xml")]).await;
    assert!(ok, "{out}");
    assert_eq!(dtmf_event_sources(&d).await, [json!({"DTMFEventId": "open_door"})]);
}

#[tokio::test]
async fn rfc2833_pcaps_from_debian_sip_tester_are_decoded() {
    let pcap = "/usr/share/sip-tester/dtmf_2833_1.pcap";
    assert!(std::path::Path::new(pcap).exists(), "{pcap} comes with Debian's sip-tester");
    let (d, port) = dtmf_device("1234").await;
    let (ok, out) = sipp(port, "u1", &["-sf", &scenario("uac_dtmf_pcap.xml"), "-mi", "127.0.0.1"]).await;
    assert!(ok, "{out}");
    assert_eq!(dtmf_event_sources(&d).await, [json!({"DTMFEventId": "open_door"})]);
}
