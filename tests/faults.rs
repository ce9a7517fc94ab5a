//! Faults: every fault code, and for each command a wrong type, an out-of-range value, a
//! missing mandatory field and an unknown id, each checked to change nothing in the store.

mod common;

use common::{assert_fault, Doorsim};
use serde_json::{json, Value};

/// An expected fault: FaultCode and FaultSubCode.
type Expected = (&'static str, Option<&'static str>);

const ARGS: (&str, Option<&str>) = ("ter:InvalidArgs", None);
const VAL: (&str, Option<&str>) = ("ter:InvalidArgVal", Some("ter:InvalidArgVal"));
const NOT_FOUND: (&str, Option<&str>) = ("ter:InvalidArgVal", Some("ter:NotFound"));
/// What the spec's Remove* tables list for removing what is still referenced.
const IN_USE: (&str, Option<&str>) = ("ter:Action", Some("ter:Failure"));

/// Puts one object of each kind in the store so references and unknown ids can be tested.
async fn populate(d: &Doorsim) {
    d.ok("SetDTMFEvent", json!({"DTMFEvent": {"Id": "ev", "Name": "Door"}})).await;
    d.ok("SetDTMFTrigger", json!({"DTMFTrigger": {"Id": "tr", "DTMFSequence": "#1234#", "DTMFEventId": "ev"}})).await;
    d.ok("SetDTMFConfiguration", json!({"DTMFConfiguration": {"Id": "conf", "Name": "C", "DTMFTriggerId": ["tr"]}}))
        .await;
    d.ok("SetSIPAccount", json!({"SIPAccount": {"Id": "acc", "UserId": "6001", "DTMFConfigurationId": "conf"}})).await;
}

/// (command, parameters, expected fault) — grouped by command: wrong type, out of range or
/// invalid, missing mandatory data, unknown id.
fn cases() -> Vec<(&'static str, Value, Expected)> {
    let long = "x".repeat(5000);
    vec![
        ("SetSIPConfiguration", json!({"SIPConfiguration": {"SIPEnabled": "yes"}}), VAL),
        ("SetSIPConfiguration", json!({"SIPConfiguration": {"CallingTimeout": 601}}), VAL),
        ("SetSIPConfiguration", json!({"SIPConfiguration": {"CallingTimeout": 0}}), VAL),
        ("SetSIPConfiguration", json!({"SIPConfiguration": {"SIPPort": 65536}}), VAL),
        ("SetSIPConfiguration", json!({"SIPConfiguration": {"SIPEnabled": true, "SIPPort": -1}}), VAL),
        ("SetSIPConfiguration", json!({"SIPConfiguration": {"AccessListPolicy": "Sometimes"}}), VAL),
        ("SetSIPConfiguration", json!({"SIPConfiguration": {"SIPEnabled": true}, "KeepCurrent": "no"}), VAL),
        ("SetSIPConfiguration", json!({"SIPConfiguration": {"STUNServers": [{}]}}), ARGS),
        ("SetSIPConfiguration", json!({}), ARGS),
        ("SetSIPAccount", json!({"SIPAccount": {"UserId": 12345}}), VAL),
        ("SetSIPAccount", json!({"SIPAccount": {"UserId": "a", "Transport": "sctp"}}), VAL),
        (
            "SetSIPAccount",
            json!({"SIPAccount": {"UserId": "a", "MediaEncryption": "SRTPMandatory", "Transport": "udp"}}),
            VAL,
        ),
        ("SetSIPAccount", json!({"SIPAccount": {"UserId": long}}), VAL),
        ("SetSIPAccount", json!({"SIPAccount": {"UserId": "a", "Id": "bad id!"}}), VAL),
        ("SetSIPAccount", json!({"SIPAccount": {"UserId": "a", "Registrar": "<script>alert(1)</script>"}}), VAL),
        ("SetSIPAccount", json!({"SIPAccount": {"Password": "x"}}), ARGS),
        ("SetSIPAccount", json!({}), ARGS),
        ("SetSIPAccount", json!({"SIPAccount": {"UserId": "a", "DTMFConfigurationId": "unknown"}}), VAL),
        ("SetSIPAccounts", json!({"SIPAccount": "WRONG_TYPE"}), VAL),
        ("SetSIPAccounts", json!({"SIPAccount": [{"UserId": "ok"}, {"UserId": "a", "Transport": "x"}]}), VAL),
        ("SetSIPAccounts", json!({"SIPAccount": [{"UserId": "ok"}, {}]}), ARGS),
        ("SetSIPAccounts", json!({"SIPAccount": [{"Id": "dup", "UserId": "a"}, {"Id": "dup", "UserId": "b"}]}), VAL),
        (
            "SetSIPAccounts",
            json!({"SIPAccount": [{"UserId": "ok"}, {"UserId": "a", "DTMFConfigurationId": "unknown"}]}),
            VAL,
        ),
        ("GetSIPAccount", json!({"SIPAccountId": 5}), VAL),
        ("GetSIPAccount", json!({"SIPAccountId": long}), VAL),
        ("GetSIPAccount", json!({}), ARGS),
        ("GetSIPAccount", json!({"SIPAccountId": "unknown"}), NOT_FOUND),
        ("GetSIPAccounts", json!({"SIPAccountId": "not-a-list"}), VAL),
        ("RemoveSIPAccount", json!({"SIPAccountId": ["a"]}), VAL),
        ("RemoveSIPAccount", json!({}), ARGS),
        ("RemoveSIPAccounts", json!({}), ARGS),
        ("GetSIPAccountStatus", json!({"SIPAccountId": -1}), VAL),
        ("GetSIPAccountStatus", json!({}), ARGS),
        ("GetSIPAccountStatus", json!({"SIPAccountId": "unknown"}), NOT_FOUND),
        ("GetSIPAccountStatuses", json!({"SIPAccountId": {"a": 1}}), VAL),
        ("SetDTMFEvent", json!({"DTMFEvent": {"Name": ["x"]}}), VAL),
        ("SetDTMFEvent", json!({"DTMFEvent": {"Name": "x", "Id": long}}), VAL),
        ("SetDTMFEvent", json!({"DTMFEvent": {}}), ARGS),
        ("SetDTMFEvents", json!({"DTMFEvent": [{"Name": "ok"}, {"Name": "bad\u{0}"}]}), VAL),
        ("GetDTMFEvent", json!({"DTMFEventId": true}), VAL),
        ("GetDTMFEvent", json!({}), ARGS),
        ("GetDTMFEvent", json!({"DTMFEventId": "unknown"}), NOT_FOUND),
        ("RemoveDTMFEvent", json!({"DTMFEventId": "ev"}), IN_USE),
        ("RemoveDTMFEvents", json!({"DTMFEventId": ["unknown", "ev"]}), IN_USE),
        ("SetDTMFTrigger", json!({"DTMFTrigger": {"DTMFSequence": 1234, "DTMFEventId": "ev"}}), VAL),
        ("SetDTMFTrigger", json!({"DTMFTrigger": {"DTMFSequence": "12E4", "DTMFEventId": "ev"}}), VAL),
        ("SetDTMFTrigger", json!({"DTMFTrigger": {"DTMFSequence": "1".repeat(65), "DTMFEventId": "ev"}}), VAL),
        ("SetDTMFTrigger", json!({"DTMFTrigger": {"DTMFSequence": "#1234#", "DTMFEventId": "ev"}}), VAL),
        ("SetDTMFTrigger", json!({"DTMFTrigger": {"DTMFSequence": "99"}}), ARGS),
        ("SetDTMFTrigger", json!({"DTMFTrigger": {"DTMFSequence": "99", "DTMFEventId": "unknown"}}), VAL),
        (
            "SetDTMFTriggers",
            json!({"DTMFTrigger": [{"DTMFSequence": "7", "DTMFEventId": "ev"}, {"DTMFSequence": "7", "DTMFEventId": "ev"}]}),
            VAL,
        ),
        ("GetDTMFTrigger", json!({"DTMFTriggerId": 1.5}), VAL),
        ("GetDTMFTrigger", json!({}), ARGS),
        ("GetDTMFTrigger", json!({"DTMFTriggerId": "unknown"}), NOT_FOUND),
        ("RemoveDTMFTrigger", json!({"DTMFTriggerId": "tr"}), IN_USE),
        ("RemoveDTMFTriggers", json!({"DTMFTriggerId": "tr-not-a-list"}), VAL),
        ("SetDTMFConfiguration", json!({"DTMFConfiguration": {"Name": "C", "DTMFTriggerId": "tr"}}), VAL),
        (
            "SetDTMFConfiguration",
            json!({"DTMFConfiguration": {"Name": "C", "DTMFTriggerId": ["tr"], "RFC2833": 1}}),
            VAL,
        ),
        ("SetDTMFConfiguration", json!({"DTMFConfiguration": {"Name": "C"}}), ARGS),
        ("SetDTMFConfiguration", json!({"DTMFConfiguration": {"Name": "C", "DTMFTriggerId": ["unknown"]}}), VAL),
        (
            "SetDTMFConfigurations",
            json!({"DTMFConfiguration": [{"Name": "ok", "DTMFTriggerId": []}, {"DTMFTriggerId": []}]}),
            ARGS,
        ),
        ("GetDTMFConfiguration", json!({"DTMFConfigurationId": null}), ARGS),
        ("GetDTMFConfiguration", json!({"DTMFConfigurationId": "unknown"}), NOT_FOUND),
        ("RemoveDTMFConfiguration", json!({"DTMFConfigurationId": "conf"}), IN_USE),
        ("RemoveDTMFConfigurations", json!({"DTMFConfigurationId": ["conf"]}), IN_USE),
        (
            "SetVMSCallConfiguration",
            json!({"VMSCallConfiguration": {"Enabled": "true", "AudioFromDeviceToNetworkStreams": 0,
            "AudioFromNetworkToDeviceStreams": 1, "VideoFromDeviceToNetworkStreams": 0}}),
            VAL,
        ),
        (
            "SetVMSCallConfiguration",
            json!({"VMSCallConfiguration": {"Enabled": true, "AudioFromDeviceToNetworkStreams": 0,
            "AudioFromNetworkToDeviceStreams": 1, "VideoFromDeviceToNetworkStreams": 0, "Timeout": 0}}),
            VAL,
        ),
        ("SetVMSCallConfiguration", json!({"VMSCallConfiguration": {"Enabled": true}}), ARGS),
        ("SetVMSCallConfiguration", json!({}), ARGS),
        ("SetAudioCodecs", json!({"AudioCodec": [{"Name": 1}]}), VAL),
        ("SetAudioCodecs", json!({"AudioCodec": [{"Name": "opus"}]}), VAL),
        ("SetAudioCodecs", json!({"AudioCodec": [{"Name": "PCMU", "SampleRate": 16000}]}), VAL),
        ("SetAudioCodecs", json!({"AudioCodec": [{"SampleRate": 8000}]}), ARGS),
        ("SetAudioCodecs", json!({}), ARGS),
    ]
}

#[tokio::test]
async fn every_bad_request_faults_and_changes_nothing() {
    let d = Doorsim::start(&[]);
    populate(&d).await;
    let before = d.state().await;
    for (command, params, (code, subcode)) in cases() {
        let a = d.call(command, params.clone()).await;
        assert!(a.status == 400, "{command} {params}: expected a fault, got {}: {}", a.status, a.body);
        let v = a.json();
        assert_eq!(
            (v["FaultCode"].as_str(), v["FaultSubCode"].as_str()),
            (Some(code), subcode),
            "{command} {params}: {}",
            a.body
        );
        assert!(v["FaultMsg"].is_string(), "{command}: a fault says what was wrong");
        assert_eq!(d.state().await, before, "{command} {params} changed the store");
    }
}

#[tokio::test]
async fn unknown_ids_on_remove_are_ignored() {
    let d = Doorsim::start(&[]);
    populate(&d).await;
    let before = d.state().await;
    for (command, field) in [
        ("RemoveSIPAccount", "SIPAccountId"),
        ("RemoveDTMFConfiguration", "DTMFConfigurationId"),
        ("RemoveDTMFEvent", "DTMFEventId"),
        ("RemoveDTMFTrigger", "DTMFTriggerId"),
    ] {
        assert_eq!(d.ok(command, json!({ field: "unknown" })).await, json!({}));
        assert_eq!(d.ok(&format!("{command}s"), json!({ field: ["unknown", "other"] })).await, json!({}));
    }
    assert_eq!(d.state().await, before);
}

#[tokio::test]
async fn unknown_actions_fault_action_not_supported() {
    let d = Doorsim::start(&[]);
    assert_fault(&d.call("NoSuchCommand", json!({})).await, "ter:ActionNotSupported", Some("ter:NotSupported"));
    let a = d.request("POST", "/vapix/call", Some(r#"{"GetSIPConfiguration":{}}"#)).await;
    assert_fault(&a, "ter:ActionNotSupported", Some("ter:NotSupported"));
    let s = d.simple("NoSuchCommand", "").await;
    assert_eq!(s.status, 400);
    assert_eq!(s.line("FaultCode").as_deref(), Some("\"ter:ActionNotSupported\""));
}

#[tokio::test]
async fn malformed_json_faults_invalid_args() {
    let d = Doorsim::start(&[]);
    for body in [
        "not json",
        "",
        "[]",
        "{}",
        r#"{"axcall:GetSIPConfiguration":{}, "axcall:GetSIPAccounts":{}}"#,
        r#"{"axcall:GetSIPConfiguration": 5}"#,
        r#"{"axcall:SetSIPConfiguration": {"SIPConfiguration": {"SIPEnabled": -Infinity}}}"#,
        "{\"axcall:GetSIPConfiguration\":{",
    ] {
        assert_fault(&d.request("POST", "/vapix/call", Some(body)).await, ARGS.0, ARGS.1);
    }
    // GET without format=simple has no body to read.
    assert_fault(&d.request("GET", "/vapix/call", None).await, ARGS.0, ARGS.1);
}

#[tokio::test]
async fn malformed_simple_queries_fault_invalid_args_in_simple_format() {
    let d = Doorsim::start(&[]);
    let before = d.state().await;
    for query in [
        "format=simple",
        "format=simple&action=axcall:SetSIPAccounts&SIPAccount_1_UserId=a",
        "format=simple&action=axcall:SetSIPAccount&SIPAccount_UserId=a&SIPAccount_UserId=b",
        "format=simple&action=axcall:SetSIPAccount&SIPAccount__UserId=a",
        "format=simple&action=axcall:SetSIPAccount&SIPAccount=a&SIPAccount_UserId=b",
    ] {
        let a = d.request("GET", &format!("/vapix/call?{query}"), None).await;
        assert_eq!(a.status, 400, "{query}");
        assert!(a.content_type.starts_with("text/plain"), "{query}: {}", a.content_type);
        assert_eq!(a.line("FaultCode").as_deref(), Some("\"ter:InvalidArgs\""), "{query}: {}", a.body);
    }
    // Values that are not of the field's type fault InvalidArgVal in the simple format too.
    let a = d.simple("SetSIPConfiguration", "SIPConfiguration_SIPEnabled=maybe").await;
    assert_eq!(a.line("FaultCode").as_deref(), Some("\"ter:InvalidArgVal\""), "{}", a.body);
    let a = d.simple("GetSIPAccount", "SIPAccountId=unknown").await;
    assert_eq!(a.line("FaultSubCode").as_deref(), Some("\"ter:NotFound\""), "{}", a.body);
    assert_eq!(d.state().await, before);
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_a_fault() {
    let d = Doorsim::start(&[]);
    d.state().await; // authenticate first: a 401 is sent before a body is read
    let body = format!(r#"{{"axcall:SetDTMFEvent":{{"DTMFEvent":{{"Name":"{}"}}}}}}"#, "x".repeat(70_000));
    let a = d.request("POST", "/vapix/call", Some(&body)).await;
    assert_eq!(a.status, 413, "{}", a.body);
    assert_eq!(a.json()["FaultCode"], "ter:InvalidArgs");
    assert_eq!(d.ok("GetDTMFEvents", json!({})).await, json!({"DTMFEvent": []}));
}

#[tokio::test]
async fn the_store_is_bounded_at_one_hundred_objects_per_kind() {
    let d = Doorsim::start(&[]);
    let events: Vec<Value> = (0..100).map(|i| json!({"Name": format!("e{i}")})).collect();
    d.ok("SetDTMFEvents", json!({"DTMFEvent": events})).await;
    let before = d.state().await;
    assert_fault(&d.call("SetDTMFEvent", json!({"DTMFEvent": {"Name": "one too many"}})).await, VAL.0, VAL.1);
    assert_eq!(d.state().await, before);
}

#[tokio::test]
async fn keys_nested_thousands_deep_fault_and_the_device_stays_up() {
    let d = Doorsim::start(&[]);
    for query in [
        format!("action=axcall:SetDTMFEvent&DTMFEvent{}=x", "_a".repeat(3000)),
        format!("action=axcall:RemoveDTMFEvents&DTMFEventId{}=x", "_0".repeat(5000)),
    ] {
        let a = d.request("GET", &format!("/vapix/call?format=simple&{query}"), None).await;
        assert_eq!(a.status, 400, "{}", a.body);
        assert_eq!(a.line("FaultCode").as_deref(), Some("\"ter:InvalidArgs\""), "{}", a.body);
    }
    assert_eq!(d.request("GET", "/emulator/v1/state", None).await.status, 200, "still up");
}

/// Sends raw bytes to the device's HTTP port and reads the whole answer.
async fn raw_http(d: &Doorsim, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(d.base.trim_start_matches("http://")).await.expect("connect");
    stream.write_all(request).await.expect("send");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn a_request_the_http_parser_refuses_gets_a_fault_body() {
    let d = Doorsim::start(&[]);
    let json = raw_http(&d, b"POST /vapix/call HTTP/1.1\r\nHost a\r\nContent-Length: 2\r\n\r\n{}").await;
    assert!(json.starts_with("HTTP/1.1 400"), "{json}");
    let body = json.split("\r\n\r\n").nth(1).unwrap_or_default();
    let fault: serde_json::Value = serde_json::from_str(body).expect("a JSON fault");
    assert_eq!((fault["Fault"].as_str(), fault["FaultCode"].as_str()), (Some("env:Sender"), Some("ter:InvalidArgs")));
    let simple =
        raw_http(&d, b"GET /vapix/call?format=simple&action=axcall:GetSIPConfiguration HTTP/1.1\r\nBad header\r\n\r\n")
            .await;
    assert!(simple.starts_with("HTTP/1.1 400") && simple.contains("FaultCode=\"ter:InvalidArgs\""), "{simple}");
    assert_eq!(d.request("GET", "/emulator/v1/state", None).await.status, 200, "the device goes on");
}
