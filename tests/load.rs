//! `doorsim load` against sipp's UAS (Debian sip-tester): 50 doors make 200 calls at 20 calls/s,
//! each held 1 s with DTMF `1234` keyed over RTP; every call succeeds, and doorsim's counts equal
//! sipp's own statistics. Also: failures are counted and set the exit status, and the report is
//! written as CSV or JSON; Ctrl-C hangs up the calls in progress with BYE and still writes
//! the report.

mod common;

use std::process::{Command, Stdio};

use common::free_port;
use serde_json::Value;

fn scenario(name: &str) -> String {
    format!("{}/tests/sipp/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// sipp's cumulative "Successful call" and "Failed call" counts from its final screen.
fn sipp_counts(screen: &str) -> (u64, u64) {
    let count = |name: &str| {
        screen
            .lines()
            .rev()
            .filter(|l| l.trim_start().starts_with(name))
            .find_map(|l| l.rsplit('|').next().and_then(|v| v.trim().parse::<u64>().ok()))
            .unwrap_or(0)
    };
    (count("Successful call"), count("Failed call"))
}

/// sipp's UAS with `tests/sipp/uas_load.xml` on `port`, ending after `calls` calls.
fn sipp_uas(port: u16, calls: u32, timeout: &str) -> std::process::Child {
    Command::new("sipp")
        .args(["-sf", &scenario("uas_load.xml"), "-i", "127.0.0.1", "-p", &port.to_string()])
        .args(["-m", &calls.to_string(), "-nostdin", "-timeout", timeout, "-timeout_error"])
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sipp (Debian sip-tester) must be installed")
}

fn load(args: &[&str]) -> std::process::Output {
    let (http, rtsp) = (free_port(), free_port());
    Command::new(env!("CARGO_BIN_EXE_doorsim"))
        .args(["load", "--log", "warn", "--http-port", &http.to_string(), "--rtsp-port", &rtsp.to_string()])
        .args(args)
        .output()
        .expect("run doorsim load")
}

#[test]
fn fifty_doors_make_200_calls_at_20_per_second_against_sipp() {
    let sipp_port = free_port();
    let sipp = sipp_uas(sipp_port, 200, "60s");
    let report = std::env::temp_dir().join(format!("doorsim-load-{}.json", std::process::id()));
    let target = format!("sip:door-service@127.0.0.1:{sipp_port}");
    let out = load(&[
        "--doors",
        "50",
        "--base",
        "127.30.0.1",
        "--target",
        &target,
        "--rate",
        "20",
        "--calls",
        "200",
        "--hold",
        "1s",
        "--dtmf",
        "1234",
        "--report",
        report.to_str().expect("path"),
    ]);
    let summary = String::from_utf8_lossy(&out.stdout);
    let sipp = sipp.wait_with_output().expect("sipp ends after 200 calls");
    let screen = String::from_utf8_lossy(&sipp.stdout);
    assert!(out.status.success(), "{summary}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(summary.contains("answered        200") && summary.contains("failed          0"), "{summary}");
    assert!(sipp.status.success(), "sipp saw a failed call:\n{screen}");
    assert_eq!(sipp_counts(&screen), (200, 0), "sipp's own statistics");
    let calls: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
    assert_eq!(calls.len(), 200);
    let doors: std::collections::HashSet<u64> = calls.iter().filter_map(|c| c["door"].as_u64()).collect();
    assert_eq!(doors.len(), 50, "every door placed calls");
    for c in &calls {
        assert_eq!(c["ok"], true, "{c}");
        assert_eq!(c["note"], "", "DTMF was sent: {c}");
        assert!(c["setup"].as_f64().is_some() && c["rtp_sent"].as_u64() > Some(25), "RTP for the hold time: {c}");
    }
    let _ = std::fs::remove_file(report);
}

#[test]
fn failures_are_counted_set_the_exit_status_and_land_in_the_csv_report() {
    // Nobody listens at the target: every INVITE times out (Timer B, scaled) and fails.
    let dead = free_port();
    let report = std::env::temp_dir().join(format!("doorsim-load-fail-{}.csv", std::process::id()));
    let target = format!("sip:nobody@127.0.0.1:{dead}");
    let out = load(&[
        "--doors",
        "2",
        "--base",
        "127.31.0.1",
        "--target",
        &target,
        "--rate",
        "50",
        "--calls",
        "4",
        "--answer-timeout",
        "300ms",
        "--report",
        report.to_str().expect("path"),
    ]);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "failures above --max-failures fail the run: {summary}");
    assert!(summary.contains("failed          4"), "{summary}");
    let csv = std::fs::read_to_string(&report).expect("report");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 5, "a header and one row per call: {csv}");
    assert!(rows[1..].iter().all(|r| r.contains(",false,") && r.contains("not answered")), "{csv}");
    let allowed = load(&[
        "--doors",
        "1",
        "--base",
        "127.32.0.1",
        "--target",
        &target,
        "--calls",
        "1",
        "--rate",
        "10",
        "--answer-timeout",
        "200ms",
        "--max-failures",
        "1",
    ]);
    assert!(allowed.status.success(), "within --max-failures the run passes");
    let _ = std::fs::remove_file(report);
}

/// `GetCallStatuses` of the device at `address:port` (Basic auth as root:pass).
async fn call_states(address: &str, port: u16) -> Vec<String> {
    let body = serde_json::json!({"axcall:GetCallStatuses": {}});
    let url = format!("http://{address}:{port}/vapix/call");
    let Ok(r) = reqwest::Client::new().post(url).basic_auth("root", Some("pass")).json(&body).send().await else {
        return Vec::new();
    };
    let v: Value = r.json().await.unwrap_or_default();
    v["CallStatus"]
        .as_array()
        .map_or_else(Vec::new, |calls| calls.iter().map(|c| c["CallState"].as_str().unwrap_or("").to_owned()).collect())
}

#[tokio::test]
async fn ctrl_c_hangs_up_the_calls_in_progress_and_still_writes_the_report() {
    let sipp_port = free_port();
    let sipp = sipp_uas(sipp_port, 4, "60s");
    let report = std::env::temp_dir().join(format!("doorsim-load-stop-{}.json", std::process::id()));
    let (http, rtsp) = (free_port(), free_port());
    let target = format!("sip:door-service@127.0.0.1:{sipp_port}");
    let child = Command::new(env!("CARGO_BIN_EXE_doorsim"))
        .args(["load", "--log", "warn", "--http-port", &http.to_string(), "--rtsp-port", &rtsp.to_string()])
        .args(["--doors", "2", "--base", "127.33.0.1", "--target", &target, "--rate", "100", "--calls", "4"])
        .args(["--hold", "10m", "--report", report.to_str().expect("path")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run doorsim load");
    // Wait until both doors hold two answered calls each.
    let mut active = 0;
    for _ in 0..100 {
        active = 0;
        for door in ["127.33.0.1", "127.33.0.2"] {
            active += call_states(door, http).await.iter().filter(|s| *s == "Active").count();
        }
        if active == 4 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(active, 4, "four calls up");
    let interrupted = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    assert!(interrupted.success());
    let out = child.wait_with_output().expect("doorsim load ends");
    let sipp = sipp.wait_with_output().expect("sipp ends once every call got its BYE");
    assert!(sipp.status.success(), "sipp got a BYE for every call:\n{}", String::from_utf8_lossy(&sipp.stdout));
    let calls: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json");
    assert_eq!(calls.len(), 4, "{}", String::from_utf8_lossy(&out.stdout));
    assert!(calls.iter().all(|c| c["ok"] == true && c["note"].as_str().is_some_and(|n| n.contains("stopped"))));
    let _ = std::fs::remove_file(report);
}

#[tokio::test]
async fn vms_calls_are_answered_when_the_vms_streams_audio_to_the_door() {
    let (http, rtsp) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_doorsim"))
        .args(["load", "--log", "warn", "--http-port", &http.to_string(), "--rtsp-port", &rtsp.to_string()])
        .args(["--vms", "--doors", "1", "--base", "127.34.0.1", "--calls", "1", "--hold", "300ms"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run doorsim load");
    // The VMS under test: sees the VMS call ring, then streams audio into the door.
    let mut ringing = false;
    for _ in 0..100 {
        if call_states("127.34.0.1", http).await.iter().any(|s| s == "Calling") {
            ringing = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(ringing, "the door raised a VMS call");
    let chunks = futures_util::stream::unfold((), |()| async {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        Some((Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0xFFu8; 160])), ()))
    });
    let upload = tokio::spawn(
        reqwest::Client::new()
            .post(format!("http://127.34.0.1:{http}/axis-cgi/audio/transmit.cgi"))
            .basic_auth("root", Some("pass"))
            .header("Content-Type", "audio/basic")
            .body(reqwest::Body::wrap_stream(chunks))
            .send(),
    );
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await.expect("join").expect("load ends");
    upload.abort();
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{summary}{}", String::from_utf8_lossy(&out.stderr));
    assert!(summary.contains("answered        1"), "{summary}");
}

#[tokio::test]
async fn doors_register_first_when_asked() {
    let registrar = free_port();
    let _kamailio = common::kamailio::Kamailio::start(include_str!("kamailio/fleet.cfg"), registrar, "secret");
    let sipp_port = free_port();
    let sipp = sipp_uas(sipp_port, 3, "30s");
    let target = format!("sip:door-service@127.0.0.1:{sipp_port}");
    let out = load(&[
        "--doors",
        "3",
        "--base",
        "127.35.0.1",
        "--target",
        &target,
        "--calls",
        "3",
        "--rate",
        "10",
        "--hold",
        "200ms",
        "--register",
        &format!("127.0.0.1:{registrar}"),
        "--password",
        "secret",
    ]);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{summary}{}", String::from_utf8_lossy(&out.stderr));
    assert!(summary.contains("answered        3"), "{summary}");
    assert!(sipp.wait_with_output().expect("sipp").status.success());
    // kamailio held door0..door2 (they were registered before the calls started).
    for i in 0..3 {
        assert!(common::kamailio::holds(registrar, &format!("door{i}")).await, "door{i} registered");
    }
}
