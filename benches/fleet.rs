//! Benchmark of cheap doors (issue: a site, not a door): starts `doorsim fleet 1000` and prints
//! the time until every device answers HTTP on its own address, the process's RSS and the RSS
//! per device (against a one-device fleet measured in the same run), and, with kamailio
//! installed, 1000 devices registering at one kamailio and refreshing (RegistrationInterval 60 s,
//! so the refresh comes after 54 s) with no failed registration.
//!
//! Run: `cargo bench --bench fleet` (or `scripts/bench.sh`). Set `FLEET_SIZE` for another size,
//! `FLEET_SKIP_REGISTER=1` to skip the kamailio part.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use common::{free_port, rss_kib, Running};

/// Starts a fleet; returns it, its management address and HTTP port once the banner is out.
fn fleet(base: &str, args: &[&str]) -> (Running, String, u16) {
    let http = free_port();
    let manage = format!("127.0.0.1:{}", free_port());
    let (http_port, rtsp_port) = (http.to_string(), free_port().to_string());
    let mut all = vec!["fleet", "--base", base, "--log", "error", "--manage", &manage];
    all.extend_from_slice(&["--http-port", &http_port, "--rtsp-port", &rtsp_port]);
    all.extend_from_slice(args);
    (common::started(&all, "Management"), manage, http)
}

async fn devices(client: &reqwest::Client, manage: &str) -> Vec<Value> {
    let v: Value = client
        .get(format!("http://{manage}/emulator/v1/fleet"))
        .send()
        .await
        .expect("fleet")
        .json()
        .await
        .expect("json");
    v["Devices"].as_array().cloned().unwrap_or_default()
}

#[tokio::main]
async fn main() {
    let size: usize = std::env::var("FLEET_SIZE").ok().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let client = reqwest::Client::new();

    let (one, _, _) = fleet("127.50.0.1", &["1"]);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let baseline = rss_kib(one.0.id());
    drop(one);

    let started = Instant::now();
    let (many, manage, http) = fleet("127.51.0.1", &[&size.to_string()]);
    let addresses: Vec<String> =
        devices(&client, &manage).await.iter().filter_map(|d| d["Address"].as_str().map(str::to_owned)).collect();
    assert_eq!(addresses.len(), size);
    // Every device answers HTTP (an authenticated basicdeviceinfo request), 64 at a time.
    let body = json!({"apiVersion": "1.0", "method": "getAllProperties"});
    let mut answered = 0;
    for chunk in addresses.chunks(64) {
        let requests = chunk.iter().map(|a| {
            client
                .post(format!("http://{a}:{http}/axis-cgi/basicdeviceinfo.cgi"))
                .basic_auth("root", Some("pass"))
                .json(&body)
                .send()
        });
        answered += futures_util::future::join_all(requests)
            .await
            .iter()
            .filter(|r| r.as_ref().is_ok_and(|r| r.status() == 200))
            .count();
    }
    let all_answer = started.elapsed();
    let rss = rss_kib(many.0.id());
    let per_device = rss.saturating_sub(baseline) as f64 / (size.max(2) - 1) as f64;
    println!(
        "fleet of {size}: {answered}/{size} answered HTTP {:.0} ms after the process started (target: 2 s)",
        all_answer.as_secs_f64() * 1000.0
    );
    println!(
        "RSS {:.1} MiB in all (target: under 1 GiB); one device alone {:.1} MiB",
        rss as f64 / 1024.0,
        baseline as f64 / 1024.0
    );
    println!("RSS per idle device {per_device:.0} KiB (target: under 1024 KiB, ratio {:.2})", per_device / 1024.0);
    drop(many);

    if std::env::var("FLEET_SKIP_REGISTER").is_ok() || Command::new("kamailio").arg("-v").output().is_err() {
        println!("registration part skipped (FLEET_SKIP_REGISTER set or kamailio not installed)");
        return;
    }
    let registrar = free_port();
    let config = include_str!("../tests/kamailio/fleet.cfg")
        .replace("LISTEN", &format!("udp:127.0.0.1:{registrar}"))
        .replace("PASSWORD", "secret");
    let path = std::env::temp_dir().join(format!("doorsim-bench-kamailio-{}.cfg", std::process::id()));
    std::fs::write(&path, config).expect("config");
    let _kamailio = Running(
        Command::new("kamailio")
            .arg("-f")
            .arg(&path)
            .args(["-DD", "-E", "-m", "256"])
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("kamailio"),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let setup = json!([
        {"axcall:SetSIPConfiguration": {"SIPConfiguration": {"SIPEnabled": true, "SIPPort": 5060, "SIPTLSPort": 5061,
            "Attribute": [{"Name": "RegistrationInterval", "Value": "60"}]}}},
        {"axcall:SetSIPAccount": {"SIPAccount": {"Id": "pbx", "UserId": "door{index}", "Password": "secret",
            "Registrar": format!("127.0.0.1:{registrar}"), "PublicDomain": "127.0.0.1"}}}
    ]);
    let file = std::env::temp_dir().join(format!("doorsim-bench-fleet-{}.json", std::process::id()));
    std::fs::write(&file, json!({"devices": [{"range": format!("0-{}", size - 1), "setup": setup}]}).to_string())
        .expect("file");
    let started = Instant::now();
    let (_registering, manage, _) = fleet("127.52.0.1", &["--fleet-file", file.to_str().expect("path")]);
    let statuses = |devices: &[Value]| -> (usize, usize) {
        let ok = devices.iter().filter(|d| d["Registrations"][0]["Status"] == 200).count();
        let failed =
            devices.iter().filter(|d| d["Registrations"][0]["Status"].as_u64().is_some_and(|s| s != 200)).count();
        (ok, failed)
    };
    let mut first_round = None;
    let mut worst_failed = 0;
    while started.elapsed() < Duration::from_secs(75) {
        let (ok, failed) = statuses(&devices(&client, &manage).await);
        worst_failed = worst_failed.max(failed);
        if ok == size && first_round.is_none() {
            first_round = Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (ok, failed) = statuses(&devices(&client, &manage).await);
    match first_round {
        Some(t) => println!("{size} devices registered at one kamailio {:.1} s after start", t.as_secs_f64()),
        None => println!("not every device registered within 75 s ({ok}/{size})"),
    }
    println!("after 75 s (one refresh at 54 s): {ok}/{size} registered, {failed} failed now, at most {worst_failed} failed at any sample");
    let _ = std::fs::remove_file(file);
    let _ = std::fs::remove_file(path);
}
