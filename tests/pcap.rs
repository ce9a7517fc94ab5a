//! `--pcap PATH`: the device writes the SIP and RTP it sends and receives as a pcap file, and
//! tshark (Debian `tshark`, installed by scripts/test.sh) finds in it a call's INVITE, its RTP
//! both ways and its RFC 4733 events. sipp (Debian `sip-tester`) is the caller, replaying
//! Debian's RFC 2833 capture of the digits 1234; an OPTIONS over TCP shows SIP over TCP.

mod common;

use std::process::Command;

use common::{scenario, sipp, wait_for, Doorsim};
use serde_json::json;

/// The values of `field` in the packets of `file` that match `filter`.
fn tshark(file: &std::path::Path, filter: &str, field: &str) -> Vec<String> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-o", "rtp.heuristic_rtp:TRUE", "-Y", filter, "-T", "fields", "-e", field])
        .output()
        .expect("tshark (Debian package tshark) is installed");
    assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

#[tokio::test]
async fn a_call_is_captured_with_its_invite_rtp_and_dtmf_events() {
    let dir = std::env::temp_dir().join(format!("doorsim-pcap-{}", std::process::id()));
    let file = dir.join("door.pcap");
    let d = Doorsim::start(&["--auto-answer", "0", "--pcap", file.to_str().expect("path")]);
    let (port, _) = d.enable_sip(json!({})).await;
    d.configure_dtmf("1234", true, true).await;
    let (ok, out) = sipp(port, "u1", &["-sf", &scenario("uac_dtmf_pcap.xml"), "-mi", "127.0.0.1"]).await;
    assert!(ok, "{out}");
    let (ok, out) = sipp(port, "t1", &["-sf", &scenario("uac_options.xml")]).await;
    assert!(ok, "{out}");
    wait_for("the call's BYE answered in the capture", async || {
        tshark(&file, "sip.CSeq.method == \"BYE\" && sip.Status-Code == 200", "sip.Status-Code").len() == 1
    })
    .await;

    let invites = tshark(&file, "sip.Method == \"INVITE\" && udp", "sip.r-uri");
    assert_eq!(invites.len(), 1, "{invites:?}");
    assert_eq!(tshark(&file, "sip.CSeq.method == \"INVITE\" && sip.Status-Code == 200", "sip.Status-Code").len(), 1);
    assert_eq!(tshark(&file, "sip.Method == \"OPTIONS\" && tcp", "sip.Method"), ["OPTIONS"], "SIP over TCP");
    assert_eq!(tshark(&file, "sip.Status-Code == 200 && tcp", "sip.CSeq.method"), ["OPTIONS"], "its answer");
    // RTP both ways: the device's tone out, the capture's packets in.
    let (sip_port, rtp_sources) = (port.to_string(), tshark(&file, "rtp", "udp.srcport"));
    assert!(rtp_sources.iter().all(|p| *p != sip_port), "RTP is not on the SIP port");
    let device_rtp = tshark(&file, "sip.Status-Code == 200 && sdp", "sdp.media.port");
    assert_eq!(device_rtp.len(), 1, "{device_rtp:?}");
    let sent = rtp_sources.iter().filter(|p| **p == device_rtp[0]).count();
    assert!(sent > 0 && sent < rtp_sources.len(), "RTP from the device ({sent}) and to it ({})", rtp_sources.len());
    // The RFC 4733 events the caller sent: 1, 2, 3, 4 (each in several packets).
    let mut events = tshark(&file, "rtpevent", "rtpevent.event_id");
    events.dedup();
    assert_eq!(events, ["1", "2", "3", "4"], "{events:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_unwritable_capture_path_is_a_clear_start_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_doorsim"))
        .args(["--http", "127.0.0.1:0", "--rtsp", "127.0.0.1:0", "--pcap", "/proc/doorsim.pcap"])
        .output()
        .expect("doorsim");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--pcap /proc/doorsim.pcap"), "{err}");
}
