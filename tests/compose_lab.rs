//! The compose lab (`docker-compose.yml`), checked without Docker (which cannot run here):
//! `docker-compose config` (Debian `docker-compose`, installed by scripts/test.sh) accepts the
//! file, and the *same* kamailio and baresip configuration files and doorsim preset state that
//! it mounts run on this machine, in a network namespace whose addresses and names are the
//! compose network's: the door and the softphone register, the softphone calls the door
//! through kamailio with audio both ways, keys 1234, and the door output opens.
//!
//! Needs root (network namespaces), kamailio and baresip-core (Debian).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use serde_json::{json, Value};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// The compose network and its services' addresses (docker-compose.yml gives the same).
const SUBNET_HOST: &str = "10.77.11.1";
const SERVICES: [(&str, &str); 3] =
    [("kamailio", "10.77.11.2"), ("doorsim", "10.77.11.10"), ("baresip", "10.77.11.20")];

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip (iproute2)");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// The lab's namespace, its processes and files; all removed on drop.
struct Lab {
    namespace: String,
    link: String,
    dir: PathBuf,
    processes: Vec<Child>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.processes {
            let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).status();
            let _ = child.wait();
        }
        let _ = Command::new("ip").args(["link", "del", &self.link]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.namespace]).status();
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.namespace));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Lab {
    /// A namespace joined to this one by a veth pair: the host end at [`SUBNET_HOST`], the
    /// services' addresses on the other, their names in the namespace's hosts file.
    fn new() -> Lab {
        let id = std::process::id() % 100_000;
        let (namespace, link) = (format!("dlab{id}"), format!("vlab{id}"));
        let dir = std::env::temp_dir().join(format!("doorsim-compose-lab-{id}"));
        let lab = Lab { namespace: namespace.clone(), link: link.clone(), dir: dir.clone(), processes: Vec::new() };
        ip(&["netns", "add", &namespace]);
        ip(&["link", "add", &link, "type", "veth", "peer", "name", "lab0"]);
        ip(&["link", "set", "lab0", "netns", &namespace]);
        ip(&["addr", "add", &format!("{SUBNET_HOST}/24"), "dev", &link]);
        ip(&["link", "set", &link, "up"]);
        for (_, address) in SERVICES {
            ip(&["netns", "exec", &namespace, "ip", "addr", "add", &format!("{address}/24"), "dev", "lab0"]);
        }
        ip(&["netns", "exec", &namespace, "ip", "link", "set", "lab0", "up"]);
        ip(&["netns", "exec", &namespace, "ip", "link", "set", "lo", "up"]);
        let hosts: String = SERVICES.iter().map(|(name, address)| format!("{address} {name}\n")).collect();
        std::fs::create_dir_all(format!("/etc/netns/{namespace}")).expect("netns dir");
        std::fs::write(format!("/etc/netns/{namespace}/hosts"), format!("127.0.0.1 localhost\n{hosts}"))
            .expect("hosts");
        std::fs::create_dir_all(dir.join("baresip")).expect("dir");
        lab
    }

    /// Runs `program args` in the namespace, its output in `log` under the lab's directory.
    fn run(&mut self, program: &str, args: &[&str], log: &str) {
        let log = std::fs::File::create(self.dir.join(log)).expect("log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.namespace, program])
            .args(args)
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e}"));
        self.processes.push(child);
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }
}

/// Copies the compose files baresip and doorsim write next to (their directories must be
/// writable); kamailio reads its file in place.
fn copy(from: &str, to: &Path) {
    std::fs::copy(Path::new(ROOT).join(from), to).unwrap_or_else(|e| panic!("{from}: {e}"));
}

/// A ctrl_tcp command to baresip (a JSON netstring).
fn baresip(command: &str, params: &str) {
    let address = format!("{}:4444", SERVICES[2].1);
    let mut s = TcpStream::connect(&address).expect("baresip ctrl_tcp");
    let body = json!({"command": command, "params": params, "token": "t"}).to_string();
    s.write_all(format!("{}:{body},", body.len()).as_bytes()).expect("send");
    s.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
    let _ = s.read(&mut [0u8; 512]);
}

async fn door_state(client: &reqwest::Client) -> Value {
    let url = format!("http://{}:8080/emulator/v1/state", SERVICES[1].1);
    match client.get(url).basic_auth("root", Some("pass")).send().await {
        Ok(r) => r.json().await.unwrap_or(Value::Null),
        Err(_) => Value::Null,
    }
}

#[test]
fn docker_compose_accepts_the_file_and_it_mounts_the_tested_files() {
    let out = Command::new("docker-compose")
        .args(["-f", &format!("{ROOT}/docker-compose.yml"), "config"])
        .output()
        .expect("docker-compose (Debian package) is installed");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let config = String::from_utf8_lossy(&out.stdout);
    for file in ["kamailio/kamailio.cfg", "baresip/config", "baresip/accounts", "doorsim/state.json"] {
        assert!(config.contains(&format!("{ROOT}/deploy/compose/{file}")), "{file} is mounted: {config}");
    }
    for (name, address) in SERVICES {
        assert!(config.contains(&format!("ipv4_address: {address}")), "{name} at {address}: {config}");
    }
    assert!(config.contains("10.77.11.0/24"), "{config}");
}

#[tokio::test]
async fn the_compose_lab_files_register_call_and_open_the_door() {
    let mut lab = tokio::task::spawn_blocking(Lab::new).await.expect("lab");
    copy("deploy/compose/doorsim/state.json", &lab.dir.join("state.json"));
    for file in ["config", "accounts", "contacts"] {
        copy(&format!("deploy/compose/baresip/{file}"), &lab.dir.join("baresip").join(file));
    }
    let kamailio_cfg = format!("{ROOT}/deploy/compose/kamailio/kamailio.cfg");
    lab.run("kamailio", &["-DD", "-E", "-f", &kamailio_cfg], "kamailio.log");
    let state = lab.dir.join("state.json").display().to_string();
    let door = SERVICES[1].1;
    let (http, rtsp) = (format!("--http={door}:8080"), format!("--rtsp={door}:8554"));
    let (sip_addr, state) = (format!("--sip-addr={door}"), format!("--state={state}"));
    let doorsim = env!("CARGO_BIN_EXE_doorsim");
    lab.run(doorsim, &[&http, &rtsp, &sip_addr, &state, "--auto-answer=0"], "doorsim.log");
    let baresip_dir = lab.dir.join("baresip").display().to_string();
    lab.run("baresip", &["-f", &baresip_dir], "baresip.log");

    let client = reqwest::Client::new();
    common::wait_for("the door registered with kamailio", async || {
        door_state(&client).await["SipAccounts"]
            .as_array()
            .is_some_and(|a| a.iter().any(|s| s["SIPAccountId"] == "lab" && s["Status"] == 200))
    })
    .await;
    common::wait_for("the softphone registered", async || lab.log("baresip.log").contains("200 OK")).await;

    baresip("dial", &format!("sip:1000@{}", SERVICES[0].1));
    common::wait_for("the door answered the softphone's call", async || {
        let s = door_state(&client).await;
        let active = s["Calls"].as_array().is_some_and(|c| c.iter().any(|c| c["CallState"] == "Active"));
        let media = s["Media"].as_object().is_some_and(|m| m.values().any(|v| v["RtpReceived"].as_u64() > Some(5)));
        active && media
    })
    .await;
    for digit in ["1", "2", "3", "4"] {
        baresip("sndcode", digit);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    common::wait_for("the door output opened", async || {
        door_state(&client).await["Ports"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["Port"] == 1 && p["Active"] == true))
    })
    .await;
    let media = door_state(&client).await["Media"].clone();
    assert!(
        media.as_object().is_some_and(|m| m
            .values()
            .any(|v| v["RtpSent"].as_u64() > Some(5) && v["RtpReceived"].as_u64() > Some(5))),
        "audio both ways: {media}"
    );
    baresip("hangup", "");
}
