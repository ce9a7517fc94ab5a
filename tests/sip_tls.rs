//! A SIP call over TLS between two doorsim instances: each side sees the call on TLS, RTP flows
//! both ways, and the caller's hang-up reaches the callee over the same TLS connection.

mod common;

use common::Doorsim;
use serde_json::json;

/// A callee that answers at once and a caller whose default account uses TLS, verifying the
/// server's certificate or not; returns them with the callee's TLS port.
async fn two_devices(verify: bool) -> (Doorsim, Doorsim, u16) {
    let callee = Doorsim::start(&["--auto-answer", "0"]);
    let caller = Doorsim::start(&[]);
    let (_, callee_tls) = callee.enable_sip(json!({})).await;
    caller.enable_sip(json!({})).await;
    let account = json!({"Id": "peer-to-peer", "UserId": "door", "IsDefault": true, "Transport": "tls",
        "VerifyServerCertificate": verify});
    caller.ok("SetSIPAccount", json!({ "SIPAccount": account })).await;
    (callee, caller, callee_tls)
}

#[tokio::test]
async fn a_tls_call_between_two_doorsims() {
    let (callee, caller, callee_tls) = two_devices(false).await;
    let id = caller.ok("Call", json!({"To": format!("sip:door@127.0.0.1:{callee_tls};transport=tls")})).await["CallId"]
        .as_str()
        .expect("CallId")
        .to_owned();
    let (out_call, _) = caller.call_in("Active").await;
    let (in_call, _) = callee.call_in("Active").await;
    assert_eq!(
        (out_call["CallStateReason"].as_str(), in_call["CallStateReason"].as_str()),
        (Some("AcceptedByRemote"), Some("AcceptedByDevice"))
    );
    // Both sides: TLS signalling, RTP both ways.
    for (name, d) in [("caller", &caller), ("callee", &callee)] {
        let (_, media) = d.call_with_media(10).await;
        assert_eq!(media["SipTransport"], "TLS", "{name}: {media}");
    }
    caller.ok("TerminateCall", json!({"CallId": id})).await;
    let (ended, _) = callee.call_in("Terminated").await;
    assert_eq!(ended["CallStateReason"], "Terminated");
}

#[tokio::test]
async fn a_verifying_client_refuses_a_certificate_it_does_not_trust() {
    let (callee, caller, callee_tls) = two_devices(true).await;
    caller.ok("Call", json!({"To": format!("sip:door@127.0.0.1:{callee_tls}")})).await;
    let (failed, _) = caller.call_in("Terminated").await;
    assert_eq!(failed["CallStateReason"], "Failed", "another device's self-signed certificate is not trusted");
    assert!(callee.state().await["Calls"].as_array().is_some_and(Vec::is_empty));
}

#[tokio::test]
async fn srtp_between_two_doorsims_follows_each_sides_media_encryption() {
    // (caller's MediaEncryption, callee's, whether the call connects)
    for (caller_mode, callee_mode, connects) in [
        ("SRTPMandatory", "SRTPMandatory", true),
        ("SRTPBestEffort", "None", true),
        ("SRTPMandatory", "None", false),
        ("None", "SRTPMandatory", false),
    ] {
        let (callee, caller, callee_tls) = two_devices(false).await;
        let account = |mode: &str| {
            json!({"SIPAccount": {"Id": "peer-to-peer", "UserId": "door", "IsDefault": true, "Transport": "tls",
                "MediaEncryption": mode}})
        };
        caller.ok("SetSIPAccount", account(caller_mode)).await;
        callee.ok("SetSIPAccount", account(callee_mode)).await;
        let case = format!("{caller_mode} calling {callee_mode}");
        caller.ok("Call", json!({"To": format!("sip:door@127.0.0.1:{callee_tls};transport=tls")})).await;
        if connects {
            // Packets are counted once authenticated: both ways means both sides decrypt.
            for d in [&caller, &callee] {
                let (_, media) = d.call_with_media(10).await;
                assert_eq!(media["SipTransport"], "TLS", "{case}: {media}");
            }
        } else {
            let (failed, _) = caller.call_in("Terminated").await;
            assert_eq!(failed["CallStateReason"], "Failed", "{case}");
            assert_eq!(callee.state().await["Calls"], json!([]), "{case}: the callee answered 488");
        }
    }
}
