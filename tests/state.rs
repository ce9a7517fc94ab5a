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
    let before = d.state().await["Store"].clone();
    drop(d); // SIGKILL
    let d = start(&path);
    assert_eq!(d.state().await["Store"], before, "everything came back");
    let r = d.request("POST", "/emulator/v1/reset", None).await;
    assert_eq!(r.status, 200);
    let factory = d.state().await["Store"].clone();
    drop(d);
    let d = start(&path);
    assert_eq!(d.state().await["Store"], factory, "the reset reached the file");
    let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
}

#[test]
fn a_bad_file_is_refused_at_start_and_left_as_it_is() {
    let path = state_path("bad");
    for (content, reason) in [
        ("{not json", "not valid JSON"),
        (
            r#"{"SIPConfiguration": {}, "SIPAccount": [{"Id": "a", "UserId": "a", "DTMFConfigurationId": "gone"}],
               "DTMFEvent": [], "DTMFTrigger": [], "DTMFConfiguration": [],
               "VMSCallConfiguration": {"Enabled": true, "AudioFromDeviceToNetworkStreams": 0,
               "AudioFromNetworkToDeviceStreams": 1, "VideoFromDeviceToNetworkStreams": 0},
               "AudioCodec": [{"Name": "PCMU"}]}"#,
            "gone",
        ),
    ] {
        std::fs::write(&path, content).expect("write");
        let out = Command::new(env!("CARGO_BIN_EXE_doorsim"))
            .args(["--http", "127.0.0.1:0", "--rtsp", "127.0.0.1:0", "--state", path.to_str().expect("path")])
            .stdout(Stdio::null())
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "refused: {stderr}");
        assert!(stderr.contains(path.to_str().expect("path")) && stderr.contains(reason), "{stderr}");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), content, "left as it is");
    }
    let _ = std::fs::remove_dir_all(path.parent().expect("dir"));
}

/// One acknowledged write: DTMF event `e<slot>` named `n<round>`.
async fn write(d: &Doorsim, slot: usize, round: usize) -> bool {
    let body = json!({"axcall:SetDTMFEvent": {"DTMFEvent": {"Id": format!("e{slot}"), "Name": format!("n{round}")}}});
    let url = format!("{}/vapix/call", d.base);
    let sent = reqwest::Client::new().post(url).basic_auth("root", Some("pass")).json(&body).send().await;
    matches!(sent, Ok(r) if r.status() == 200)
}

#[tokio::test]
async fn kill_9_at_random_moments_never_loses_an_acknowledged_write() {
    let path = state_path("crash");
    let mut acknowledged: std::collections::HashMap<usize, usize> = Default::default();
    let mut round = 0;
    let mut restarts = 0;
    while round < 300 {
        let d = start(&path);
        // Every acknowledged write is there, and the file loaded.
        let events = d.ok("GetDTMFEvents", json!({})).await["DTMFEvent"].clone();
        let names: std::collections::HashMap<String, String> = events
            .as_array()
            .expect("events")
            .iter()
            .map(|e| (e["Id"].as_str().unwrap_or("").to_owned(), e["Name"].as_str().unwrap_or("").to_owned()))
            .collect();
        for (slot, last) in &acknowledged {
            let name = names.get(&format!("e{slot}")).map(String::as_str).unwrap_or("missing");
            let seen: usize = name.trim_start_matches('n').parse().unwrap_or(0);
            // The last acknowledged write, or a later one that was in flight at the kill.
            assert!(seen >= *last, "e{slot}: acknowledged n{last}, found {name} after {restarts} restarts");
        }
        // Writes while a killer waits a random few milliseconds, then kill -9 mid-stream.
        let pid = d.pid();
        let wait = Duration::from_millis(5 + rand_millis(round) % 60);
        let killer = std::thread::spawn(move || {
            std::thread::sleep(wait);
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        });
        while round < 300 {
            let slot = round % 40;
            if !write(&d, slot, round).await {
                break; // killed: this one was not acknowledged
            }
            acknowledged.insert(slot, round);
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
