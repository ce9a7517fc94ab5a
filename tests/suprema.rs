//! The Suprema face (issue: other door-station brands) against a gRPC client that is not ours:
//! Python's grpcio with stubs generated from the repository's protos (`proto/suprema/`) calls
//! GetConfig, SetConfig and SetConfigMulti, under both package names (`voip`, `gsdk.voip`);
//! invalid values are INVALID_ARGUMENT and change nothing, another device is NOT_FOUND; the
//! configuration makes the device register with kamailio; and a sipp call keying the exit button
//! over RFC 2833 opens the door.
//!
//! Needs `python3` with `venv` and PyPI (grpcio, grpcio-tools; the venv is made once under
//! `target/`), kamailio and sipp.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::kamailio::{self, Kamailio};
use common::{free_port, free_sip_ports, scenario, sipp, wait_for, Doorsim};
use serde_json::{json, Value};

const GRPC_VERSIONS: [&str; 2] = ["grpcio==1.85.1", "grpcio-tools==1.85.1"];
/// The deviceID of the Suprema-BioStation-A2 profile.
const DEVICE_ID: u64 = 544_000_001;

/// The venv's python and the directory of the generated stubs, made when missing.
fn python_and_stubs() -> (PathBuf, PathBuf) {
    let python = common::python_venv("grpc-venv", &GRPC_VERSIONS);
    let stubs = python.parent().and_then(std::path::Path::parent).expect("venv").join("stubs");
    // The stubs follow the protos of this checkout.
    std::fs::create_dir_all(&stubs).expect("stubs dir");
    let protos = concat!(env!("CARGO_MANIFEST_DIR"), "/proto/suprema");
    let generated = Command::new(&python)
        .args(["-m", "grpc_tools.protoc", "-I", protos])
        .arg(format!("--python_out={}", stubs.display()))
        .arg(format!("--grpc_python_out={}", stubs.display()))
        .args(["err.proto", "voip.proto", "gsdk_voip.proto"])
        .status()
        .expect("grpc_tools.protoc");
    assert!(generated.success(), "the protos compile for Python");
    (python, stubs)
}

/// One call of the Python client; its JSON answer.
async fn client(python: &PathBuf, stubs: &PathBuf, target: &str, args: &[&str]) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/suprema_grpc.py");
    let mut command = Command::new(python);
    command.arg(script).arg(stubs).arg(target).args(args);
    let out = tokio::task::spawn_blocking(move || command.output().expect("python")).await.expect("thread");
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text} {}", String::from_utf8_lossy(&out.stderr)))
}

#[tokio::test]
async fn a_grpc_client_configures_the_device_and_the_exit_key_opens_the_door() {
    let (python, stubs) = tokio::task::spawn_blocking(python_and_stubs).await.expect("venv");
    let registrar = free_port();
    let _kamailio = Kamailio::start(include_str!("kamailio/fleet.cfg"), registrar, "secure");
    let grpc = free_port();
    let sip = free_sip_ports();
    let d = Doorsim::start(&[
        "--profile",
        "Suprema-BioStation-A2",
        "--grpc",
        &format!("127.0.0.1:{grpc}"),
        "--sip-port",
        &sip.to_string(),
        "--auto-answer",
        "0",
    ]);
    assert_eq!(d.state().await["Brand"], "Suprema");
    assert_eq!(d.request("POST", "/vapix/call", Some("{}")).await.status, 404);
    let target = format!("127.0.0.1:{grpc}");
    let id = DEVICE_ID.to_string();

    let factory = client(&python, &stubs, &target, &["get", &id]).await;
    assert_eq!(factory["ok"], true, "{factory}");
    let config = &factory["result"]["config"];
    assert_eq!((config["exitButton"].clone(), config["DTMFMode"].clone()), (json!(1), json!(0)), "# over RFC 2833");
    let other = client(&python, &stubs, &target, &["get", "7"]).await;
    assert_eq!(other["code"], "NOT_FOUND", "{other}");

    // exitButton 3 is the key 1: the digits sipp's RFC 2833 captures key start with it.
    let wanted = json!({"serverURL": "127.0.0.1", "serverPort": registrar, "userID": "7004", "userPW": "secure",
        "enabled": true, "exitButton": 3, "DTMFMode": 0,
        "phones": [{"phoneNumber": "100", "description": "Lobby"}, {"phoneNumber": "101", "description": "Guard"}]});
    let before = d.store().await;
    let phones: Vec<Value> = (0..33).map(|i| json!({"phoneNumber": i.to_string()})).collect();
    for (name, value) in [
        ("exitButton", json!(12)),
        ("DTMFMode", json!(2)),
        ("serverPort", json!(0)),
        ("serverPort", json!(65536)),
        ("phones", json!(phones)),
    ] {
        let mut broken = wanted.clone();
        broken[name] = value;
        let answer = client(&python, &stubs, &target, &["set", &id, &broken.to_string()]).await;
        assert_eq!(answer["code"], "INVALID_ARGUMENT", "{name}: {answer}");
        assert!(answer["details"].as_str().unwrap_or_default().contains(name), "{answer}");
    }
    let elsewhere = client(&python, &stubs, &target, &["set", "7", &wanted.to_string()]).await;
    assert_eq!(elsewhere["code"], "NOT_FOUND");
    assert_eq!(d.store().await, before, "no refused call changed anything");

    let set = client(&python, &stubs, &target, &["set", &id, &wanted.to_string(), "gsdk"]).await;
    assert_eq!(set["ok"], true, "SetConfig under gsdk.voip: {set}");
    let got = client(&python, &stubs, &target, &["get", &id]).await;
    assert_eq!(got["result"]["config"], wanted, "GetConfig under voip returns what was set");
    let multi =
        client(&python, &stubs, &target, &["multi", &json!([DEVICE_ID, 9]).to_string(), &wanted.to_string()]).await;
    assert_eq!(multi["ok"], true, "{multi}");
    assert_eq!(multi["result"]["deviceErrors"], json!([{"deviceID": 9, "code": 5, "msg": "no device 9"}]));

    // The configuration drives the SIP user agent: the device registers with digest auth.
    wait_for("the registration", async || kamailio::holds(registrar, "7004").await).await;

    // A call keys 1, 2, 3, 4 over RFC 2833: the exit key 1 opens the door (port 1).
    let door_opened = async |d: &Doorsim| {
        let log = d.request("GET", "/emulator/v1/events?topic=tns1:Device/tnsaxis:IO/Port", None).await.json();
        log["Events"]
            .as_array()
            .is_some_and(|events| events.iter().any(|e| e["source"]["port"] == "1" && e["data"]["state"] == "1"))
    };
    assert!(!door_opened(&d).await, "the door is closed before the call");
    let (ok, out) = sipp(sip, "u1", &["-sf", &scenario("uac_dtmf_pcap.xml"), "-mi", "127.0.0.1"]).await;
    assert!(ok, "{out}");
    wait_for("the door opening", async || door_opened(&d).await).await;
}
