//! Prometheus metrics at `/metrics`: after a known sequence of requests and two sipp calls
//! (Debian `sip-tester`: one keying DTMF by SIP INFO, one replaying Debian's RFC 2833 capture),
//! every family holds what happened, and `promtool check metrics` (Debian `prometheus`)
//! accepts the exposition.

mod common;

use common::{metric, promtool_accepts, scenario, sipp, Doorsim};
use serde_json::json;

#[tokio::test]
async fn metrics_count_requests_commands_calls_sip_rtp_and_dtmf() {
    let d = Doorsim::start(&["--auto-answer", "0"]);
    let (port, _) = d.enable_sip(json!({})).await;
    d.configure_dtmf("#1234#", true, true).await;
    for _ in 0..3 {
        d.ok("GetSIPConfiguration", json!({})).await;
    }
    let refused = d.call("SetSIPConfiguration", json!({"SIPConfiguration": {"SIPPort": "nope"}})).await;
    assert_eq!(refused.status, 400);
    let (ok, out) = sipp(port, "u1", &["-sf", &scenario("uac_info_dtmf.xml")]).await;
    assert!(ok, "{out}");
    let (ok, out) = sipp(port, "u1", &["-sf", &scenario("uac_dtmf_pcap.xml"), "-mi", "127.0.0.1"]).await;
    assert!(ok, "{out}");
    common::wait_for("both calls terminated", async || {
        let text = d.request("GET", "/metrics", None).await.body;
        metric(&text, "doorsim_call_state_changes_total", &[("state", "Terminated")]) == 2.0
    })
    .await;

    let answer = d.request("GET", "/metrics", None).await;
    assert_eq!(answer.status, 200);
    assert!(answer.content_type.starts_with("text/plain"), "{}", answer.content_type);
    let text = answer.body;
    promtool_accepts(&text);
    let m = |name: &str, labels: &[(&str, &str)]| metric(&text, name, labels);

    assert_eq!(m("doorsim_build_info", &[("version", env!("CARGO_PKG_VERSION"))]), 1.0);
    // Call service commands by name and fault.
    let get = [("command", "GetSIPConfiguration"), ("fault", "")];
    assert_eq!(m("doorsim_call_service_commands_total", &get), 3.0, "{text}");
    let refused = [("command", "SetSIPConfiguration"), ("fault", "ter:InvalidArgVal")];
    assert_eq!(m("doorsim_call_service_commands_total", &refused), 1.0, "{text}");
    // HTTP requests by class and status: the Digest client's first request was challenged.
    assert!(m("doorsim_http_requests_total", &[("path", "call_service"), ("status", "200")]) >= 3.0);
    assert_eq!(m("doorsim_http_requests_total", &[("path", "call_service"), ("status", "400")]), 1.0);
    assert!(m("doorsim_http_requests_total", &[("status", "401")]) >= 1.0);
    // Calls by direction, state and reason: two incoming calls answered and ended.
    let calls = |state: &str, reason: &str| {
        m("doorsim_call_state_changes_total", &[("direction", "Incoming"), ("state", state), ("reason", reason)])
    };
    assert_eq!((calls("Calling", "Initiated"), calls("Active", "AcceptedByDevice")), (2.0, 2.0), "{text}");
    assert_eq!(calls("Terminated", "Terminated"), 2.0);
    // SIP messages by method or status, direction and transport.
    let sip = |labels: &[(&str, &str)]| m("doorsim_sip_messages_total", labels);
    assert_eq!(sip(&[("direction", "in"), ("message", "INVITE"), ("transport", "UDP")]), 2.0, "{text}");
    assert_eq!(sip(&[("direction", "in"), ("message", "INFO")]), 7.0, "{text}");
    assert_eq!(sip(&[("direction", "out"), ("status", "400")]), 1.0, "the INFO without a digit");
    assert!(sip(&[("direction", "out"), ("message", "2xx"), ("status", "200")]) >= 2.0 + 6.0 + 2.0);
    // RTP both ways (the device's tone out, the capture in), bytes beyond the 12-byte headers.
    let rtp = |name: &str, direction: &str| m(name, &[("direction", direction)]);
    for direction in ["in", "out"] {
        let packets = rtp("doorsim_rtp_packets_total", direction);
        assert!(packets > 0.0, "{direction}: {text}");
        assert!(rtp("doorsim_rtp_bytes_total", direction) > 12.0 * packets, "{direction}: {text}");
    }
    // DTMF digits by method: #1234# by SIP INFO, 1234 from the capture.
    assert_eq!(m("doorsim_dtmf_events_total", &[("method", "RFC2976")]), 6.0, "{text}");
    assert_eq!(m("doorsim_dtmf_events_total", &[("method", "RFC2833")]), 4.0, "{text}");
    assert_eq!(m("doorsim_events_dropped_total", &[]), 0.0);
    assert!(text.contains("doorsim_event_subscribers"), "{text}");
}

#[tokio::test]
async fn metrics_need_the_device_credentials() {
    let d = Doorsim::start(&[]);
    let anonymous = reqwest::get(format!("{}/metrics", d.base)).await.expect("request");
    assert_eq!(anonymous.status(), 401);
}
