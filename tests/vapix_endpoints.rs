//! The VAPIX endpoints clients read a device with, compared field by field with fixtures:
//! golden answers of the A8207-VE profile in `fixtures/vapix/` (shaped like the real devices'
//! answers; `DOORSIM_BLESS_FIXTURES=1` rewrites them), and the key/type shapes of real Axis
//! answers from the Home Assistant library's test suite (`../shared/corpus/kane610-axis`).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::Doorsim;
use serde_json::{json, Value};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/vapix").join(name)
}

/// Compares `actual` with fixture `name` (or writes it when blessing).
fn assert_fixture(name: &str, actual: &str) {
    let path = fixture(name);
    if std::env::var_os("DOORSIM_BLESS_FIXTURES").is_some() {
        std::fs::write(&path, actual).expect("write fixture");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if name.ends_with(".json") {
        let (a, e): (Value, Value) =
            (serde_json::from_str(actual).expect("JSON"), serde_json::from_str(&expected).expect("JSON"));
        assert_eq!(a, e, "{name} differs from its fixture");
    } else {
        assert_eq!(
            actual.lines().collect::<Vec<_>>(),
            expected.lines().collect::<Vec<_>>(),
            "{name} differs from its fixture"
        );
    }
}

#[tokio::test]
async fn json_cgis_match_their_fixtures() {
    let d = Doorsim::start(&[]);
    for (path, body, name) in [
        (
            "/axis-cgi/apidiscovery.cgi",
            json!({"apiVersion": "1.0", "method": "getApiList", "context": "t"}),
            "apidiscovery_getApiList.json",
        ),
        (
            "/axis-cgi/basicdeviceinfo.cgi",
            json!({"apiVersion": "1.1", "method": "getAllProperties", "context": "t"}),
            "basicdeviceinfo_getAllProperties.json",
        ),
        (
            "/axis-cgi/basicdeviceinfo.cgi",
            json!({"apiVersion": "1.1", "method": "getProperties", "context": "t",
            "params": {"propertyList": ["ProdNbr", "SerialNumber"]}}),
            "basicdeviceinfo_getProperties.json",
        ),
        (
            "/axis-cgi/io/portmanagement.cgi",
            json!({"apiVersion": "1.0", "method": "getPorts", "context": "t"}),
            "portmanagement_getPorts.json",
        ),
    ] {
        let a = d.request("POST", path, Some(&body.to_string())).await;
        assert_eq!(a.status, 200, "{path}");
        assert_fixture(name, &a.body);
    }
    // Errors come in the same envelope, with HTTP 200, as on devices.
    let a = d.request("POST", "/axis-cgi/basicdeviceinfo.cgi", Some(r#"{"apiVersion":"1.1","method":"reboot"}"#)).await;
    assert_eq!(a.json()["error"]["code"], 2002);
    let a = d.request("POST", "/axis-cgi/io/portmanagement.cgi", Some("not json")).await;
    assert_eq!(a.json()["error"]["code"], 4002);
}

#[tokio::test]
async fn param_cgi_and_pwdgrp_match_their_fixtures() {
    let d = Doorsim::start(&[]);
    for (group, name) in [
        ("root.Brand", "param_Brand.txt"),
        ("root.Properties", "param_Properties.txt"),
        ("IOPort,Input,Output", "param_IOPort.txt"),
    ] {
        let a = d.request("GET", &format!("/axis-cgi/param.cgi?action=list&group={group}"), None).await;
        assert_eq!(a.status, 200);
        assert_fixture(name, &a.body);
    }
    let props = d.request("POST", "/axis-cgi/param.cgi", Some("action=list&group=root.Properties")).await.body;
    for line in [
        "root.Properties.API.HTTP.Version=3",
        "root.Properties.API.SIP.SIP=yes",
        "root.Properties.System.SerialNumber=ACCC8E7A0B01",
    ] {
        assert!(props.lines().any(|l| l == line), "{line}");
    }
    let unknown = d.request("GET", "/axis-cgi/param.cgi?action=list&group=root.Nope", None).await.body;
    assert!(unknown.starts_with("# Error"), "{unknown}");
    assert_fixture("pwdgrp_get.txt", &d.request("GET", "/axis-cgi/pwdgrp.cgi?action=get", None).await.body);
}

#[tokio::test]
async fn real_axis_response_shapes_from_the_corpus() {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/kane610-axis/compare_shapes.py");
    if !script.exists() {
        eprintln!("SKIPPED: {} not found (the corpus is only beside the project's CI checkout)", script.display());
        return;
    }
    let d = Doorsim::start(&[]);
    let base = d.base.clone();
    let out = tokio::task::spawn_blocking(move || Command::new("python3").arg(script).args(["--base", &base]).output())
        .await
        .expect("thread")
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && stdout.trim_end().ends_with(", 0 failed"), "{stdout}");
}

#[tokio::test]
async fn port_cgi_drives_outputs_and_reports_states() {
    let d = Doorsim::start(&[]);
    assert_eq!(
        d.request("GET", "/axis-cgi/io/port.cgi?checkactive=1,2", None).await.body,
        "port1=inactive\nport2=inactive\n"
    );
    let mut monitor = d.request_stream("/axis-cgi/io/port.cgi?monitor=2").await;
    let first = String::from_utf8_lossy(&monitor.chunk().await.expect("monitor").expect("part")).into_owned();
    assert!(first.contains("port2=inactive"), "{first}");
    // Output 2 (the door lock): on for 200 ms, then off again.
    assert_eq!(d.request("GET", "/axis-cgi/io/port.cgi?action=2:/200%5C", None).await.status, 200);
    let on = String::from_utf8_lossy(&monitor.chunk().await.expect("monitor").expect("part")).into_owned();
    assert!(on.contains("port2=active"), "{on}");
    assert_eq!(d.request("GET", "/axis-cgi/io/port.cgi?checkactive=2", None).await.body, "port2=active\n");
    let off =
        tokio::time::timeout(Duration::from_secs(2), monitor.chunk()).await.expect("pulse ends").expect("monitor");
    assert!(String::from_utf8_lossy(&off.expect("part")).contains("port2=inactive"));
    // JSON port management sees the same state.
    let ports =
        d.request("POST", "/axis-cgi/io/portmanagement.cgi", Some(r#"{"apiVersion":"1.0","method":"getPorts"}"#)).await;
    assert_eq!(ports.json()["data"]["items"][1]["state"], "open");
    // An input cannot be driven; unknown ports and bad sequences are refused.
    for bad in ["action=1:/", "action=9:/", "action=2:x", "checkactive=0", "monitor=7", "nothing=1"] {
        let a = d.request("GET", &format!("/axis-cgi/io/port.cgi?{bad}"), None).await;
        assert_eq!(a.status, 400, "{bad}: {}", a.body);
    }
}

#[tokio::test]
async fn set_ports_renames_and_switches_outputs_all_or_nothing() {
    let d = Doorsim::start(&[]);
    let d = &d;
    let call = |body: Value| async move {
        d.request("POST", "/axis-cgi/io/portmanagement.cgi", Some(&body.to_string())).await.json()
    };
    let bad = call(json!({"apiVersion": "1.0", "method": "setPorts", "params": {"ports": [
        {"port": "1", "name": "Main door"}, {"port": "0", "state": "closed"}]}}))
    .await;
    assert!(bad["error"].is_object(), "an input cannot be switched: {bad}");
    let ok = call(json!({"apiVersion": "1.0", "method": "setPorts", "params": {"ports": [
        {"port": "1", "name": "Main door", "state": "closed"}]}}))
    .await;
    assert!(ok["error"].is_null(), "{ok}");
    let ports = call(json!({"apiVersion": "1.0", "method": "getPorts"})).await;
    assert_eq!(
        (ports["data"]["items"][1]["name"].as_str(), ports["data"]["items"][1]["state"].as_str()),
        (Some("Main door"), Some("closed"))
    );
    assert_eq!(d.request("GET", "/axis-cgi/io/port.cgi?checkactive=2", None).await.body, "port2=active\n");
}

#[tokio::test]
async fn virtual_inputs_answer_xml_and_emit_events() {
    let d = Doorsim::start(&[]);
    let a = d.request("GET", "/axis-cgi/virtualinput/activate.cgi?schemaversion=1&port=5", None).await;
    assert!(a.body.contains("<ActivateSuccess><StateChanged>true</StateChanged></ActivateSuccess>"), "{}", a.body);
    roxmltree::Document::parse(&a.body).expect("XML");
    let again = d.request("GET", "/axis-cgi/virtualinput/activate.cgi?schemaversion=1&port=5", None).await;
    assert!(again.body.contains("<StateChanged>false</StateChanged>"));
    let off = d.request("GET", "/axis-cgi/virtualinput/deactivate.cgi?schemaversion=1&port=5", None).await;
    assert!(off.body.contains("<DeactivateSuccess><StateChanged>true</StateChanged>"));
    let bad = d.request("GET", "/axis-cgi/virtualinput/activate.cgi?schemaversion=1&port=33", None).await;
    assert!(bad.body.contains("<Error>"), "{}", bad.body);
    let log = d.request("GET", "/emulator/v1/events?topic=tns1:Device/tnsaxis:IO/VirtualInput", None).await.json();
    let states: Vec<&str> =
        log["Events"].as_array().expect("log").iter().filter_map(|e| e["data"]["active"].as_str()).collect();
    assert_eq!(states, ["1", "0"]);
}

#[tokio::test]
async fn event_instances_list_call_topics_and_dtmf_events_by_name() {
    let d = Doorsim::start(&[]);
    d.ok("SetDTMFEvent", json!({"DTMFEvent": {"Id": "open_door", "Name": "Open <front> door"}})).await;
    let soap = r#"<?xml version="1.0"?><soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><aev:GetEventInstances xmlns:aev="http://www.axis.com/vapix/ws/event1"/></soap:Body></soap:Envelope>"#;
    let a = d.request("POST", "/vapix/services", Some(soap)).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let doc = roxmltree::Document::parse(&a.body).expect("SOAP XML");
    let topic = |ns: &str, name: &str| {
        doc.descendants().find(|n| n.tag_name().name() == name && n.tag_name().namespace() == Some(ns))
    };
    let axis = "http://www.axis.com/2009/event/topics";
    let call = topic(axis, "Call").expect("tnsaxis:Call");
    let names: Vec<&str> = call.children().filter(|n| n.is_element()).map(|n| n.tag_name().name()).collect();
    assert_eq!(names, ["State", "StateChange", "DTMF"]);
    let dtmf = doc
        .descendants()
        .find(|n| n.tag_name().name() == "Value" && n.text() == Some("open_door"))
        .expect("the DTMF event id as a source value");
    assert_eq!(dtmf.attribute(("http://www.axis.com/vapix/ws/event1", "NiceName")), Some("Open <front> door"));
    assert!(topic(axis, "IO").is_some());
    let bad = d.request("POST", "/vapix/services", Some("<Envelope/>")).await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn profiles_change_identity_and_ports() {
    let d = Doorsim::start(&["--profile", "I8116-E"]);
    let info = d
        .request("POST", "/axis-cgi/basicdeviceinfo.cgi", Some(r#"{"apiVersion":"1.1","method":"getAllProperties"}"#))
        .await
        .json();
    let p = &info["data"]["propertyList"];
    assert_eq!((p["ProdNbr"].as_str(), p["SerialNumber"].as_str()), (Some("I8116-E"), Some("B8A44F123456")));
    let ports = d
        .request("POST", "/axis-cgi/io/portmanagement.cgi", Some(r#"{"apiVersion":"1.0","method":"getPorts"}"#))
        .await
        .json();
    assert_eq!(ports["data"]["items"][2]["name"], "Tamper");
    // A profile from a file, with a serial number of its own.
    let dir = std::env::temp_dir().join(format!("doorsim-profile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("custom.json");
    let mut custom: Value = serde_json::from_str(include_str!("../fixtures/profiles/A8105-E.json")).expect("profile");
    custom["SerialNumber"] = json!("TESTSERIAL01");
    custom["ProdNbr"] = json!("A8105-E-TEST");
    custom["DtmfActions"] = json!([{"DTMFEventId": "open_door", "Port": 1, "Seconds": 4}]);
    std::fs::write(&path, custom.to_string()).expect("write");
    let d = Doorsim::start(&["--profile", path.to_str().expect("path")]);
    let brand = d.request("GET", "/axis-cgi/param.cgi?action=list&group=root.Brand.ProdNbr", None).await.body;
    assert_eq!(brand, "root.Brand.ProdNbr=A8105-E-TEST\n");
    let props =
        d.request("GET", "/axis-cgi/param.cgi?action=list&group=Properties.System.SerialNumber", None).await.body;
    assert_eq!(props, "root.Properties.System.SerialNumber=TESTSERIAL01\n");
    let actions = d.request("GET", "/emulator/v1/dtmf-actions", None).await.json();
    assert_eq!(actions, json!({"DtmfActions": [{"DTMFEventId": "open_door", "Port": 1, "Seconds": 4.0}]}));
    let _ = std::fs::remove_dir_all(dir);
    // An unknown profile is a clear CLI error.
    let out = Command::new(env!("CARGO_BIN_EXE_doorsim")).args(["--profile", "X9999"]).output().expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no profile \"X9999\""));
}

/// Width and height from a JPEG's SOF0 segment.
fn jpeg_size(jpeg: &[u8]) -> Option<(u16, u16)> {
    let at = jpeg.windows(2).position(|w| w == [0xFF, 0xC0])?;
    let be = |i: usize| u16::from_be_bytes([jpeg[i], jpeg[i + 1]]);
    Some((be(at + 7), be(at + 5)))
}

#[tokio::test]
async fn image_cgi_answers_a_snapshot_at_the_asked_resolution() {
    let d = Doorsim::start(&[]);
    let get = |query: &str| {
        reqwest::Client::new()
            .get(format!("{}/axis-cgi/jpg/image.cgi{query}", d.base))
            .basic_auth("root", Some("pass"))
            .send()
    };
    let r = get("").await.expect("image");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    let jpeg = r.bytes().await.expect("body");
    assert_eq!((&jpeg[..2], &jpeg[jpeg.len() - 2..]), (&[0xFF, 0xD8][..], &[0xFF, 0xD9][..]), "a whole JPEG");
    assert_eq!(jpeg_size(&jpeg), Some((320, 240)));
    let big = get("?resolution=640x480").await.expect("image").bytes().await.expect("body");
    assert_eq!(jpeg_size(&big), Some((640, 480)));
    for bad in ["?resolution=big", "?resolution=0x10", "?resolution=99999x2"] {
        let r = get(bad).await.expect("image");
        assert_eq!(r.status().as_u16(), 400, "{bad}");
        assert!(r.text().await.expect("text").starts_with("Error: resolution="), "{bad}");
    }
    let anonymous = reqwest::get(format!("{}/axis-cgi/jpg/image.cgi", d.base)).await.expect("image");
    assert_eq!(anonymous.status().as_u16(), 401);
}
