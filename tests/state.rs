//! `--state PATH`: the configuration survives restarts and `kill -9` at any moment, a bad file
//! is refused at start and left as it is, a reset resets the file, and a fleet keeps one file
//! per device.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::Doorsim;
use serde_json::{json, Value};

fn state_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("doorsim-state-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    dir.join("door.json")
}

fn start(path: &std::path::Path) -> Doorsim {
    Doorsim::start(&["--state", path.to_str().expect("path")])
}

#[tokio::test]
async fn the_configuration_survives_a_restart_and_a_reset_resets_the_file() {
    let path = state_path("restart");
    let d = start(&path);
    d.ok("SetDTMFEvent", json!({"DTMFEvent": {"Id": "open", "Name": "Open\nthe door"}})).await;
    d.ok("SetSIPAccount", json!({"SIPAccount": {"UserId": "6001", "Registrar": "192.0.2.1"}})).await;
    d.ok("SetSIPConfiguration", json!({"SIPConfiguration": {"CallingTimeout": 42}})).await;
    let ports = r#"{"apiVersion":"1.0","method":"setPorts","params":{"ports":[
        {"port":"1","name":"Strike","usage":"Main entrance","normalState":"closed"}]}}"#;
    let r = d.request("POST", "/axis-cgi/io/portmanagement.cgi", Some(ports)).await;
    assert!(r.status == 200 && r.json().get("error").is_none(), "{}", r.body);
    let action = r#"{"DTMFEventId":"open","Port":1,"Seconds":7}"#;
    assert_eq!(d.request("POST", "/emulator/v1/dtmf-actions", Some(action)).await.status, 200);
    let before = device_state(&d).await;
    assert_eq!(before.1[1]["name"], "Strike");
    assert!(before.2.iter().any(|a| a["DTMFEventId"] == "open" && a["Seconds"] == 7.0), "{:?}", before.2);
    drop(d); // SIGKILL
    let d = start(&path);
    assert_eq!(device_state(&d).await, before, "everything came back: store, port settings, door actions");
    let r = d.request("POST", "/emulator/v1/reset", None).await;
    assert_eq!(r.status, 200);
    let factory = device_state(&d).await;
    assert_eq!(factory.1[1]["name"], "Door lock");
    drop(d);
    let d = start(&path);
    assert_eq!(device_state(&d).await, factory, "the reset reached the file");
    let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
}

/// What persists: the Call service store, the port settings and the door actions.
async fn device_state(d: &Doorsim) -> (Value, Vec<Value>, Vec<Value>) {
    let get_ports = r#"{"apiVersion":"1.0","method":"getPorts"}"#;
    let ports = d.request("POST", "/axis-cgi/io/portmanagement.cgi", Some(get_ports)).await.json();
    let ports = ports["data"]["items"].as_array().cloned().unwrap_or_default();
    let actions = d.request("GET", "/emulator/v1/dtmf-actions", None).await.json();
    let mut actions = actions["DtmfActions"].as_array().cloned().unwrap_or_default();
    actions.sort_by_key(|a| a["DTMFEventId"].to_string());
    (d.state().await["Store"].clone(), ports, actions)
}

/// The Call service sections of a valid file, without the braces around them.
const VALID_STORE: &str = r#""SIPConfiguration": {}, "SIPAccount": [],
    "DTMFEvent": [], "DTMFTrigger": [], "DTMFConfiguration": [],
    "VMSCallConfiguration": {"Enabled": true, "AudioFromDeviceToNetworkStreams": 0,
    "AudioFromNetworkToDeviceStreams": 1, "VideoFromDeviceToNetworkStreams": 0},
    "AudioCodec": [{"Name": "PCMU"}]"#;

#[test]
fn a_bad_file_is_refused_at_start_and_left_as_it_is() {
    let path = state_path("bad");
    let with = |extra: &str| format!(r#"{{{VALID_STORE}, {extra}}}"#);
    let cases = [
        ("{not json".to_owned(), "not a valid JSON object"),
        (with(r#""SIPAccount": [{"Id": "a", "UserId": "a", "DTMFConfigurationId": "gone"}]"#), "gone"),
        (with(r#""IOPorts": [{"Port": 9, "Name": "x", "Usage": "", "NormalState": "open"}]"#), "no port 9"),
        (with(r#""IOPorts": [{"Port": 1, "Name": "x", "Usage": "", "NormalState": "ajar"}]"#), "ajar"),
        (with(r#""DTMFActions": [{"DTMFEventId": "open", "Port": 0, "Seconds": 5}]"#), "port 0 is an input"),
    ];
    for (content, reason) in &cases {
        std::fs::write(&path, content).expect("write");
        let out = Command::new(env!("CARGO_BIN_EXE_doorsim"))
            .args(["--http", "127.0.0.1:0", "--rtsp", "127.0.0.1:0", "--state", path.to_str().expect("path")])
            .stdout(Stdio::null())
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "refused: {stderr}");
        assert!(stderr.contains(path.to_str().expect("path")) && stderr.contains(reason), "{stderr}");
        assert_eq!(&std::fs::read_to_string(&path).expect("read"), content, "left as it is");
    }
    let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
}

/// One write of round `round`, of one of the three kinds that persist: a DTMF event named
/// `n<round>`, the name of port 1, or a door action held `<round>` seconds. Returns what it
/// wrote (its key) if it was acknowledged.
async fn write(d: &Doorsim, round: usize) -> Option<String> {
    let slot = round % 20;
    let client = reqwest::Client::new();
    let (key, request) = match round % 3 {
        0 => {
            let body =
                json!({"axcall:SetDTMFEvent": {"DTMFEvent": {"Id": format!("e{slot}"), "Name": format!("n{round}")}}});
            (format!("event e{slot}"), client.post(format!("{}/vapix/call", d.base)).json(&body))
        }
        1 => {
            let body = json!({"apiVersion": "1.0", "method": "setPorts",
                "params": {"ports": [{"port": "1", "name": format!("n{round}")}]}});
            ("port 1".to_owned(), client.post(format!("{}/axis-cgi/io/portmanagement.cgi", d.base)).json(&body))
        }
        _ => {
            let body = json!({"DTMFEventId": format!("a{slot}"), "Port": 1, "Seconds": round});
            (format!("action a{slot}"), client.post(format!("{}/emulator/v1/dtmf-actions", d.base)).json(&body))
        }
    };
    let sent = request.basic_auth("root", Some("pass")).send().await.ok()?;
    if sent.status() != 200 {
        return None;
    }
    let body: Value = sent.json().await.ok()?;
    body.get("error").is_none().then_some(key)
}

/// The round of what each key holds now.
async fn written(d: &Doorsim) -> std::collections::HashMap<String, usize> {
    let round = |name: &Value| name.as_str().unwrap_or("").trim_start_matches('n').parse().unwrap_or(0);
    let mut seen = std::collections::HashMap::new();
    for e in d.ok("GetDTMFEvents", json!({})).await["DTMFEvent"].as_array().expect("events") {
        seen.insert(format!("event {}", e["Id"].as_str().unwrap_or("")), round(&e["Name"]));
    }
    let (_, ports, actions) = device_state(d).await;
    seen.insert("port 1".to_owned(), round(&ports[1]["name"]));
    for a in actions {
        seen.insert(
            format!("action {}", a["DTMFEventId"].as_str().unwrap_or("")),
            a["Seconds"].as_f64().unwrap_or(0.0) as usize,
        );
    }
    seen
}

#[tokio::test]
async fn kill_9_at_random_moments_never_loses_an_acknowledged_write() {
    let path = state_path("crash");
    let mut acknowledged: std::collections::HashMap<String, usize> = Default::default();
    let mut round = 1;
    let mut restarts = 0;
    while round <= 300 {
        let d = start(&path);
        // Every acknowledged write is there, and the file loaded.
        let seen = written(&d).await;
        for (key, last) in &acknowledged {
            let found = seen.get(key).copied().unwrap_or(0);
            // The last acknowledged write, or a later one that was in flight at the kill.
            assert!(found >= *last, "{key}: acknowledged round {last}, found round {found} after {restarts} restarts");
        }
        // Writes while a killer waits a random few milliseconds, then kill -9 mid-stream.
        let pid = d.pid();
        let wait = Duration::from_millis(5 + rand_millis(round) % 60);
        let killer = std::thread::spawn(move || {
            std::thread::sleep(wait);
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        });
        while round <= 300 {
            let Some(key) = write(&d, round).await else { break }; // killed: not acknowledged
            acknowledged.insert(key, round);
            round += 1;
        }
        let _ = killer.join();
        drop(d);
        restarts += 1;
    }
    assert!(restarts >= 3, "the device was killed several times ({restarts})");
    let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
}

/// A spread of small waits without a random number crate: mixes the round number.
fn rand_millis(round: usize) -> u64 {
    (round as u64).wrapping_mul(2_654_435_761) >> 7
}

#[tokio::test]
async fn a_fleet_keeps_one_file_per_device() {
    let dir = state_path("fleet").parent().expect("dir").to_owned();
    let (http, rtsp, manage) = (common::free_port(), common::free_port(), common::free_port());
    let mut child = Command::new(env!("CARGO_BIN_EXE_doorsim"))
        .args(["fleet", "3", "--base", "127.72.0.1", "--log", "warn", "--state", dir.to_str().expect("dir")])
        .args(["--http-port", &http.to_string(), "--rtsp-port", &rtsp.to_string()])
        .args(["--manage", &format!("127.0.0.1:{manage}")])
        .stdout(Stdio::piped())
        .spawn()
        .expect("fleet");
    let stdout = child.stdout.take().expect("stdout");
    let started = std::io::BufRead::lines(std::io::BufReader::new(stdout))
        .map_while(Result::ok)
        .any(|l| l.contains("Management"));
    assert!(started);
    let body = json!({"axcall:SetDTMFEvent": {"DTMFEvent": {"Id": "only1", "Name": "x"}}});
    let r = reqwest::Client::new()
        .post(format!("http://127.72.0.2:{http}/vapix/call"))
        .basic_auth("root", Some("pass"))
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 200);
    let _ = child.kill();
    let _ = child.wait();
    let file = |i: usize| -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("device-{i}.json"))).expect("file"))
            .expect("json")
    };
    assert_eq!(file(1)["DTMFEvent"][0]["Id"], "only1");
    assert_eq!(file(0)["DTMFEvent"], json!([]));
    assert_eq!(file(2)["DTMFEvent"], json!([]));
    let _ = std::fs::remove_dir_all(dir);
}
