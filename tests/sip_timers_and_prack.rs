//! Session timers (RFC 4028) and reliable provisional responses (RFC 3262) against sipp (Debian `sip-tester`) callers, on a device whose
//! timers run 30 times faster (`--time-scale 30`: the 90 s minimum interval lasts 3 s; the
//! scenarios' pauses leave a second of margin either side): the caller refreshes with UPDATE
//! and the call lasts; a caller that stops refreshing is hung up on (BYE); the device refreshes
//! when it is the refresher, and hangs up when its refresh is answered 481; an interval below
//! 90 s gets 422 with `Min-SE: 90`. A caller that
//! requires 100rel gets a reliable 180, again until its PRACK, and the PRACK is answered.
//! On the calls the device places (sipp callees): it refreshes when the 2xx makes it the
//! refresher, hangs up on a callee that stops refreshing, asks again after a 422 with the
//! callee's `Min-SE`, and PRACKs a reliable 180.

mod common;

use common::{scenario, sipp, wait_for, Doorsim};
use serde_json::json;

async fn device() -> (Doorsim, u16) {
    let d = Doorsim::start(&["--auto-answer", "0", "--time-scale", "30"]);
    let (port, _) = d.enable_sip(json!({})).await;
    (d, port)
}

/// Runs sipp scenario `file` against `port` (it must pass); the call's StateChange reasons
/// once it has ended.
async fn reasons_after(d: &Doorsim, port: u16, file: &str) -> Vec<String> {
    let (ok, out) = sipp(port, "u1", &["-sf", &scenario(file)]).await;
    assert!(ok, "{out}");
    wait_for("the call's end", async || d.reasons().await.len() == 3).await;
    d.reasons().await
}

#[tokio::test]
async fn a_caller_that_refreshes_keeps_its_call() {
    let (d, port) = device().await;
    assert_eq!(
        reasons_after(&d, port, "uac_session_refresh.xml").await,
        ["Initiated", "AcceptedByDevice", "Terminated"],
        "the caller hung up, not the device"
    );
}

#[tokio::test]
async fn a_caller_that_stops_refreshing_is_hung_up_on() {
    let (d, port) = device().await;
    assert_eq!(reasons_after(&d, port, "uac_session_expiry.xml").await, ["Initiated", "AcceptedByDevice", "Failed"]);
}

#[tokio::test]
async fn the_device_refreshes_when_it_is_the_refresher() {
    let (_d, port) = device().await;
    let (ok, out) = sipp(port, "u1", &["-sf", &scenario("uac_session_uas_refresh.xml")]).await;
    assert!(ok, "{out}");
}

#[tokio::test]
async fn a_refused_refresh_ends_the_call() {
    let (d, port) = device().await;
    assert_eq!(
        reasons_after(&d, port, "uac_session_refresh_refused.xml").await,
        ["Initiated", "AcceptedByDevice", "Failed"]
    );
}

#[tokio::test]
async fn an_interval_below_90_s_is_refused_with_422() {
    let (d, port) = device().await;
    let (ok, out) = sipp(port, "u1", &["-sf", &scenario("uac_session_too_small.xml")]).await;
    assert!(ok, "{out}");
    assert!(d.reasons().await.is_empty(), "no call was made");
}

#[tokio::test]
async fn a_caller_that_requires_100rel_gets_a_reliable_180_until_its_prack() {
    let d = Doorsim::start(&["--auto-answer", "2"]);
    let (port, _) = d.enable_sip(json!({})).await;
    let (ok, out) = sipp(port, "u1", &["-sf", &scenario("uac_prack.xml")]).await;
    assert!(ok, "{out}");
    // sipp's table: the 180 line's columns are messages, retransmissions, timeouts, unexpected.
    let line = out.lines().rfind(|l| l.contains("180 <----------")).expect("the 180 line");
    let retransmitted: u32 = line.split_whitespace().nth(3).and_then(|n| n.parse().ok()).expect("a count");
    assert!(retransmitted >= 1, "the 180 came again before the PRACK: {line}");
    wait_for("the call's end", async || d.reasons().await.len() == 3).await;
    assert_eq!(d.reasons().await, ["Initiated", "AcceptedByDevice", "Terminated"]);
}

/// The device calls sipp's callee scenario `file` (it must pass); the call's StateChange
/// reasons once it has ended.
async fn reasons_calling(file: &str) -> Vec<String> {
    let (d, _) = device().await;
    let (port, callee) = common::callee(vec!["-sf".into(), scenario(file)]).await;
    d.ok("Call", json!({"To": format!("sip:callee@127.0.0.1:{port}")})).await;
    let (ok, out) = callee.await.expect("sipp task");
    assert!(ok, "{out}");
    wait_for("the call's end", async || d.reasons().await.len() == 3).await;
    d.reasons().await
}

#[tokio::test]
async fn the_device_refreshes_the_sessions_of_the_calls_it_places() {
    let reasons = reasons_calling("uas_session_device_refreshes.xml").await;
    assert_eq!(reasons, ["Initiated", "AcceptedByRemote", "Terminated"], "the callee hung up, not the device");
}

#[tokio::test]
async fn a_callee_that_stops_refreshing_is_hung_up_on() {
    assert_eq!(reasons_calling("uas_session_expiry.xml").await, ["Initiated", "AcceptedByRemote", "Failed"]);
}

#[tokio::test]
async fn a_callee_that_wants_a_longer_session_interval_is_asked_again() {
    assert_eq!(reasons_calling("uas_session_too_small.xml").await, ["Initiated", "AcceptedByRemote", "Terminated"]);
}

#[tokio::test]
async fn reliable_ringing_from_a_callee_is_pracked() {
    assert_eq!(reasons_calling("uas_prack.xml").await, ["Initiated", "AcceptedByRemote", "Terminated"]);
}
