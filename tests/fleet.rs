//! `doorsim fleet` as a user runs it: every device answers on its own loopback address with its
//! own serial, a call on one device is invisible to another, a fleet file with two models and
//! pre-set accounts comes up configured, a bad file is refused with its line before anything
//! listens, 100 devices register with kamailio (all in its location table), and the fleet's
//! metrics carry a `device` label.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::kamailio::Kamailio;
use common::{free_port, metric, promtool_accepts};
use serde_json::{json, Value};

/// A running `doorsim fleet`, killed on drop.
struct FleetProcess {
    child: Child,
    manage: String,
    http_port: u16,
}

impl Drop for FleetProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Ports for one fleet: (HTTP, RTSP, management).
fn ports() -> (u16, u16, u16) {
    (free_port(), free_port(), free_port())
}

fn fleet(base: &str, args: &[&str]) -> FleetProcess {
    fleet_at(base, ports(), args)
}

/// A fleet with its HTTP, RTSP and management ports given.
fn fleet_at(base: &str, (http_port, rtsp_port, manage_port): (u16, u16, u16), args: &[&str]) -> FleetProcess {
    let mut child = Command::new(env!("CARGO_BIN_EXE_doorsim"))
        .args(["fleet", "--base", base, "--log", "warn"])
        .args(["--http-port", &http_port.to_string(), "--rtsp-port", &rtsp_port.to_string()])
        .args(["--manage", &format!("127.0.0.1:{manage_port}")])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn doorsim fleet");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let manage = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.split("listening on ").nth(1).map(|r| r.trim_end_matches(')').to_owned()))
        .expect("the fleet printed its management address");
    std::thread::spawn(move || lines.for_each(drop));
    FleetProcess { child, manage, http_port }
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

impl FleetProcess {
    async fn devices(&self) -> Vec<Value> {
        let url = format!("http://{}/emulator/v1/fleet", self.manage);
        let v: Value = client().get(url).send().await.expect("fleet").json().await.expect("json");
        v["Devices"].as_array().expect("devices").clone()
    }

    /// POSTs a Call service request to the device at `address` (Basic auth, as root:pass).
    async fn call_service(&self, address: &str, action: &str, params: Value) -> Value {
        let url = format!("http://{address}:{}/vapix/call", self.http_port);
        let body = json!({ format!("axcall:{action}"): params });
        let r = client().post(url).basic_auth("root", Some("pass")).json(&body).send().await.expect("request");
        r.json().await.expect("json")
    }

    async fn device_info(&self, address: &str) -> Value {
        let url = format!("http://{address}:{}/axis-cgi/basicdeviceinfo.cgi", self.http_port);
        let body = json!({"apiVersion": "1.0", "method": "getAllProperties"});
        let r = client().post(url).basic_auth("root", Some("pass")).json(&body).send().await.expect("request");
        r.json::<Value>().await.expect("json")["data"]["propertyList"].clone()
    }
}

#[tokio::test]
async fn a_fleet_of_50_answers_on_its_own_addresses_with_distinct_serials() {
    let f = fleet("127.20.0.250", &["50"]);
    let devices = f.devices().await;
    assert_eq!(devices.len(), 50);
    let mut serials = std::collections::HashSet::new();
    for (i, d) in devices.iter().enumerate() {
        assert_eq!(d["Index"], i);
        let address = d["Address"].as_str().expect("address");
        let info = f.device_info(address).await;
        assert_eq!(info["SerialNumber"], d["Serial"], "device {i} at {address} shows its own serial");
        assert!(serials.insert(d["Serial"].as_str().expect("serial").to_owned()), "serial of {i} is unique");
    }
    // Counting through the octets: device 6 follows 127.20.0.255.
    assert_eq!(devices[5]["Address"], "127.20.0.255");
    assert_eq!(devices[6]["Address"], "127.20.1.0");
}

#[tokio::test]
async fn a_call_on_one_device_is_invisible_to_another() {
    let f = fleet("127.21.0.1", &["5"]);
    let pressed: Value = client()
        .post(format!("http://{}/emulator/v1/fleet/press", f.manage))
        .json(&json!({"Devices": [3]}))
        .send()
        .await
        .expect("press")
        .json()
        .await
        .expect("json");
    assert_eq!(pressed["Pressed"].as_array().map(Vec::len), Some(1), "{pressed}");
    let calls = |v: Value| v["CallStatus"].as_array().map_or(0, Vec::len);
    assert_eq!(calls(f.call_service("127.21.0.4", "GetCallStatuses", json!({})).await), 1);
    assert_eq!(calls(f.call_service("127.21.0.5", "GetCallStatuses", json!({})).await), 0);
    let devices = f.devices().await;
    assert_eq!(devices[3]["CallsInProgress"], 1);
    assert_eq!(devices[4]["CallsInProgress"], 0);
}

#[tokio::test]
async fn a_fleet_file_with_two_models_and_preset_accounts_comes_up_configured() {
    let file = std::env::temp_dir().join(format!("doorsim-fleet-{}.toml", std::process::id()));
    std::fs::write(
        &file,
        r#"
[[devices]]
range = "0-1"
profile = "A8105-E"
setup = [ { "axcall:SetSIPAccount" = { SIPAccount = { Id = "pbx", UserId = "door{index}", Registrar = "192.0.2.1", PublicDomain = "site.example" } } } ]

[[devices]]
index = 2
profile = "I8116-E"
"#,
    )
    .expect("write");
    let f = fleet("127.22.0.1", &["--fleet-file", file.to_str().expect("path")]);
    let devices = f.devices().await;
    let models: Vec<&str> = devices.iter().map(|d| d["Profile"].as_str().unwrap_or("")).collect();
    assert_eq!(models, ["A8105-E", "A8105-E", "I8116-E"]);
    for (i, address) in ["127.22.0.1", "127.22.0.2"].into_iter().enumerate() {
        assert_eq!(f.device_info(address).await["ProdNbr"], "A8105-E");
        let account = f.call_service(address, "GetSIPAccount", json!({"SIPAccountId": "pbx"})).await;
        assert_eq!(account["SIPAccount"]["UserId"], format!("door{i}"), "{account}");
    }
    assert_eq!(f.device_info("127.22.0.3").await["ProdNbr"], "I8116-E");
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn a_bad_fleet_file_fails_at_start_with_its_line_and_nothing_listens() {
    let file = std::env::temp_dir().join(format!("doorsim-bad-fleet-{}.json", std::process::id()));
    std::fs::write(
        &file,
        "{\"devices\": [\n  {\"range\": \"0-9\"},\n  {\"index\": 10, \"setup\": [{\"axcall:SetSIPConfiguration\": {\"SIPConfiguration\": {\"SIPPort\": 0}}}]}\n]}\n",
    )
    .expect("write");
    let (http_port, rtsp_port, manage_port) = ports();
    let out = Command::new(env!("CARGO_BIN_EXE_doorsim"))
        .args(["fleet", "--base", "127.23.0.1", "--fleet-file", file.to_str().expect("path")])
        .args(["--http-port", &http_port.to_string(), "--rtsp-port", &rtsp_port.to_string()])
        .args(["--manage", &format!("127.0.0.1:{manage_port}")])
        .output()
        .expect("run");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("line 3") && stderr.contains("SIPPort") && stderr.contains("setup[0]"), "{stderr}");
    assert!(out.stdout.is_empty(), "no banner: nothing started");
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn a_fleet_of_100_registers_with_kamailio() {
    let registrar = free_port();
    let _kamailio = Kamailio::start(include_str!("kamailio/fleet.cfg"), registrar, "secret");
    let file = std::env::temp_dir().join(format!("doorsim-kamailio-fleet-{}.json", std::process::id()));
    let setup = json!([
        {"axcall:SetSIPConfiguration": {"SIPConfiguration": {"SIPEnabled": true, "SIPPort": 5060, "SIPTLSPort": 5061}}},
        {"axcall:SetSIPAccount": {"SIPAccount": {"Id": "pbx", "UserId": "door{index}", "Password": "secret",
            "Registrar": format!("127.0.0.1:{registrar}"), "PublicDomain": "127.0.0.1"}}}
    ]);
    std::fs::write(&file, json!({"devices": [{"range": "0-99", "setup": setup}]}).to_string()).expect("write");
    let f = fleet("127.24.0.1", &["--fleet-file", file.to_str().expect("path")]);
    // Wait until the management face reports every account registered.
    let mut registered = 0;
    for _ in 0..300 {
        registered = f.devices().await.iter().filter(|d| d["Registrations"][0]["Status"] == 200).count();
        if registered == 100 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(registered, 100, "every device reports 200");
    // And kamailio holds all 100 in its location table.
    let mut found = 0;
    for i in 0..100 {
        if common::kamailio::holds(registrar, &format!("door{i}")).await {
            found += 1;
        }
    }
    assert_eq!(found, 100, "kamailio's location table holds every door");
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn fleet_metrics_carry_a_device_label_on_the_management_address_and_each_device() {
    let f = fleet("127.23.0.1", &["2"]);
    f.call_service("127.23.0.2", "GetSIPConfiguration", json!({})).await;
    let text =
        client().get(format!("http://{}/metrics", f.manage)).send().await.expect("metrics").text().await.expect("text");
    promtool_accepts(&text);
    let commands = |text: &str, device: &str| {
        metric(text, "doorsim_call_service_commands_total", &[("device", device), ("command", "GetSIPConfiguration")])
    };
    assert_eq!((commands(&text, "0"), commands(&text, "1")), (0.0, 1.0), "{text}");
    assert_eq!(metric(&text, "doorsim_build_info", &[]), 1.0, "one build, not one per device: {text}");
    // A device's own /metrics shows its own samples only.
    let own = client()
        .get(format!("http://127.23.0.2:{}/metrics", f.http_port))
        .basic_auth("root", Some("pass"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    promtool_accepts(&own);
    assert_eq!(commands(&own, "1"), 1.0, "{own}");
    assert!(!own.contains("device=\"0\""), "{own}");
    assert_eq!(metric(&own, "doorsim_build_info", &[]), 1.0, "{own}");
}

#[tokio::test]
async fn the_fleet_page_links_every_device_page() {
    let f = fleet("127.24.0.1", &["3"]);
    let page = client().get(format!("http://{}/emulator/", f.manage)).send().await.expect("page");
    assert!(page.headers()["content-type"].to_str().is_ok_and(|t| t.starts_with("text/html")));
    let page = page.text().await.expect("text");
    for address in ["127.24.0.1", "127.24.0.2", "127.24.0.3"] {
        let url = format!("http://{address}:{}/emulator/", f.http_port);
        assert!(page.contains(&format!("<a href=\"{url}\">")), "{url} in {page}");
        let device = client().get(&url).basic_auth("root", Some("pass")).send().await.expect("device page");
        assert_eq!(device.status(), 200, "{url}");
    }
}

#[tokio::test]
async fn a_slice_on_one_address_keeps_its_identities_with_ports_a_step_apart() {
    let state = std::env::temp_dir().join(format!("doorsim-slice-{}", std::process::id()));
    let (http, rtsp) = (common::free_ports_apart(3, 10), common::free_ports_apart(3, 10));
    let args = ["3", "--first-index", "20", "--port-step", "10", "--state", state.to_str().expect("path")];
    let slice = fleet_at("127.0.0.1", (http, rtsp, free_port()), &args);
    let devices = slice.devices().await;
    let indices: Vec<&Value> = devices.iter().map(|d| &d["Index"]).collect();
    assert_eq!(indices, [20, 21, 22]);
    // The same device of a site laid out an address per device has the same serial.
    let site = fleet("127.25.0.1", &["21"]);
    let serial_20 = site.devices().await[20]["Serial"].clone();
    assert_eq!(devices[0]["Serial"], serial_20);
    for (slot, d) in devices.iter().enumerate() {
        let port = http + 10 * slot as u16;
        let url = format!("http://127.0.0.1:{port}/axis-cgi/basicdeviceinfo.cgi");
        let body = json!({"apiVersion": "1.0", "method": "getAllProperties"});
        let r = client().post(url).basic_auth("root", Some("pass")).json(&body).send().await.expect("request");
        let info: Value = r.json().await.expect("json");
        assert_eq!(info["data"]["propertyList"]["SerialNumber"], d["Serial"], "slot {slot} on port {port}");
        assert!(state.join(format!("device-{}.json", 20 + slot)).exists(), "state file of device {}", 20 + slot);
    }
    drop(slice);
    let _ = std::fs::remove_dir_all(&state);
}
