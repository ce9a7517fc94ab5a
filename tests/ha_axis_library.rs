//! The Home Assistant `axis` library (from PyPI, version pinned below) against a running doorsim:
//! device setup, ports, and an input-port change arriving through the library's own event
//! stream (version 60 offers RTSP only, on port 554 of the device's address).
//!
//! Needs `python3` with `venv` and PyPI; the venv is made once under `target/`.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::Doorsim;
use serde_json::Value;

const AXIS_VERSION: &str = "axis==60";

/// The venv's python, created with the pinned library when missing.
fn python() -> PathBuf {
    common::python_venv("ha-axis-venv", &[AXIS_VERSION])
}

#[tokio::test]
async fn home_assistant_axis_library_sets_up_the_device_and_gets_port_events_over_rtsp() {
    the_library_sets_up_the_device(false).await;
}

#[tokio::test]
async fn home_assistant_axis_library_works_over_https() {
    the_library_sets_up_the_device(true).await;
}

/// The library against a device over HTTP, or over its HTTPS port.
async fn the_library_sets_up_the_device(https: bool) {
    let python = tokio::task::spawn_blocking(python).await.expect("venv");
    // The library's RTSP port is fixed at 554: give this device an address of its own.
    let host = format!("127.77.{}.{}", std::process::id() % 250 + 1, rand_byte() / 2 * 2 + u8::from(https));
    let https_port = common::free_port().to_string();
    let https_at = format!("--https={host}:{https_port}");
    let mut args = vec!["--profile", "A8105-E"];
    if https {
        args.push(&https_at);
    }
    let d = Doorsim::start_at(&format!("{host}:0"), &format!("{host}:554"), &args);
    let port = if https { https_port } else { d.base.rsplit(':').next().expect("port").to_owned() };
    let proto = if https { "https" } else { "http" };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/ha_axis.py");
    let (python, host2, base) = (python.clone(), host.clone(), d.base.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python).args([script, &host2, &port, &base, proto]).output().expect("run the axis library")
    })
    .await
    .expect("script");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_str(stdout.trim()).expect("JSON from the script");
    assert_eq!(seen["product_number"], "A8105-E");
    assert_eq!(seen["product_type"], "Network Video Door Station");
    assert_eq!(seen["serial_number"], "ACCC8E51C23D");
    assert_eq!(seen["firmware_version"], "9.80.55");
    let ports = seen["ports"].as_array().expect("ports");
    assert_eq!(ports.len(), 2);
    assert_eq!((ports[0]["name"].as_str(), ports[0]["direction"].as_str()), (Some("Call button"), Some("input")));
    assert_eq!((ports[1]["name"].as_str(), ports[1]["direction"].as_str()), (Some("Door lock"), Some("output")));
    assert_eq!(seen["press_status"], 200);
    let port0: Vec<(String, String)> = seen["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["topic"] == "tns1:Device/tnsaxis:IO/Port" && e["id"] == "0")
        .map(|e| {
            (e["operation"].as_str().unwrap_or_default().to_owned(), e["state"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    assert_eq!(port0.first().map(|(op, state)| (op.as_str(), state.as_str())), Some(("Initialized", "0")), "{port0:?}");
    assert!(port0.contains(&("Changed".to_owned(), "1".to_owned())), "{port0:?}");
}

fn rand_byte() -> u8 {
    (std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(7, |d| d.subsec_nanos()) % 250 + 1) as u8
}
