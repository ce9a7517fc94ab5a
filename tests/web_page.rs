//! The device's web page (`/emulator/`) in a real headless Chromium (Debian `chromium` and
//! `chromium-driver`, driven by Selenium from PyPI in a venv under `target/`; all installed by
//! scripts/test.sh): a person presses the call button and hangs that call up, answers a SIP
//! call from sipp, keys 1234 on the keypad, and sees the DTMF event and the door output in the
//! page. Screenshots of the page (idle, ringing, active with DTMF) are saved under
//! `target/tmp/web-page-screenshots/`. The fleet's page lists its devices with links.

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use common::{scenario, sipp, Doorsim};
use serde_json::{json, Value};

const SELENIUM: &str = "selenium==4.27.1";

#[tokio::test]
async fn a_person_drives_the_door_from_its_page_in_chromium() {
    let python = tokio::task::spawn_blocking(|| common::python_venv("web-venv", &[SELENIUM])).await.expect("venv");
    let d = Doorsim::start(&[]);
    let (port, _) = d.enable_sip(json!({})).await;
    d.configure_dtmf("1234", true, false).await;
    let bound =
        d.request("POST", "/emulator/v1/dtmf-actions", Some(r#"{"DTMFEventId":"open_door","Port":1,"Seconds":60}"#));
    assert_eq!(bound.await.status, 200);
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("web-page-screenshots");
    let address = d.base.trim_start_matches("http://").to_owned();
    let mut browser = Command::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/web_page.py"))
        .args([address.as_str(), "root", "pass"])
        .arg(&shots)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("python");
    let stdout = browser.stdout.take().expect("stdout");
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let lines = std::thread::spawn(move || {
        let mut ready = Some(ready_tx);
        let mut last = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line == "READY" {
                ready.take().map(|r| r.send(()));
            } else {
                last = line;
            }
        }
        last
    });
    // The incoming call starts once the page has done its call-button part.
    let caller = async {
        if ready_rx.await.is_ok() {
            Some(sipp(port, "u1", &["-sf", &scenario("uac_wait_bye.xml")]).await)
        } else {
            None
        }
    };
    let (called, status) = tokio::join!(caller, tokio::task::spawn_blocking(move || browser.wait()));
    let seen: Value = serde_json::from_str(&lines.join().expect("reader")).unwrap_or(Value::Null);
    assert!(status.expect("thread").expect("wait").success(), "the browser run failed: {seen}");
    let (ok, out) = called.expect("the page got to the incoming call");
    assert!(ok, "sipp: {out}");
    assert!(seen["button_call"].as_str().is_some_and(|t| t.contains("VMS")), "{seen}");
    assert_eq!(seen["digits"], "1234", "{seen}");
    assert!(seen["dtmf_event"].as_str().is_some_and(|t| t.contains("DTMFEventId=open_door")), "{seen}");
    assert_eq!(seen["door_lit"], true, "{seen}");
    for shot in ["idle.png", "ringing.png", "active-dtmf.png"] {
        let size = std::fs::metadata(shots.join(shot)).map(|m| m.len()).unwrap_or(0);
        assert!(size > 10_000, "{shot}: {size} bytes");
    }
}

#[tokio::test]
async fn the_page_needs_the_device_credentials_and_shows_its_identity() {
    let d = Doorsim::start(&[]);
    let anonymous = reqwest::get(format!("{}/emulator/", d.base)).await.expect("request");
    assert_eq!(anonymous.status(), 401);
    let page = d.request("GET", "/emulator/", None).await;
    assert_eq!(page.status, 200);
    assert!(page.content_type.starts_with("text/html"), "{}", page.content_type);
    let serial = d.ok("GetServiceCapabilities", json!({})).await; // any call: the device is up
    assert!(serial.is_object());
    assert!(page.body.contains("AXIS A8207-VE"), "the model's name");
    for control in ["Press call button", "Send DTMF"] {
        assert!(page.body.contains(control), "{control}");
    }
    assert!(!page.body.contains("http://") && !page.body.contains("https://"), "nothing is fetched from elsewhere");
}
