//! baresip (Debian `baresip-core`, installed by scripts/test.sh) as a softphone in a network
//! namespace of its own, joined to the device by a veth pair: it calls the device and is called
//! by it, with audio flowing both ways (RTP packet counts above zero on each side).
//!
//! Needs root (network namespaces), as CI and the lab machines run.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::Doorsim;
use serde_json::json;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A namespace with baresip in it, the device side of the veth pair at `host`, baresip at `phone`.
struct Softphone {
    namespace: String,
    link: String,
    host: String,
    phone: String,
    baresip: Option<Child>,
    dir: std::path::PathBuf,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip (iproute2)");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl Softphone {
    fn start() -> Softphone {
        Softphone::start_with("")
    }

    /// A softphone whose account line ends with `account_params` (e.g. `;mediaenc=srtp-mand`).
    fn start_with(account_params: &str) -> Softphone {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = (std::process::id() % 10_000) * 4 + n;
        let (namespace, link, peer) = (format!("dsim{id}"), format!("vdsim{id}"), format!("vphone{id}"));
        // A /30 of the benchmarking range (RFC 2544) that exists only inside this test.
        let (third, base) = (std::process::id() % 250, (n % 60) * 4);
        let (host, phone) = (format!("198.18.{third}.{}", base + 1), format!("198.18.{third}.{}", base + 2));
        ip(&["netns", "add", &namespace]);
        ip(&["link", "add", &link, "type", "veth", "peer", "name", &peer]);
        ip(&["link", "set", &peer, "netns", &namespace]);
        ip(&["addr", "add", &format!("{host}/30"), "dev", &link]);
        ip(&["link", "set", &link, "up"]);
        ip(&["netns", "exec", &namespace, "ip", "addr", "add", &format!("{phone}/30"), "dev", &peer]);
        ip(&["netns", "exec", &namespace, "ip", "link", "set", &peer, "up"]);
        ip(&["netns", "exec", &namespace, "ip", "link", "set", "lo", "up"]);
        let dir = std::env::temp_dir().join(format!("doorsim-baresip-{namespace}"));
        std::fs::create_dir_all(&dir).expect("dir");
        write_tone(&dir.join("tone.wav"));
        let config = format!(
            "poll_method epoll\nsip_listen {phone}:5060\naudio_player aufile,{dir}/received.wav\n\
             audio_source aufile,{dir}/tone.wav\naudio_alert aufile,/dev/null\nmodule_path /usr/lib/baresip/modules\n\
             module g711.so\nmodule aufile.so\nmodule srtp.so\nmodule account.so\nmodule contact.so\nmodule menu.so\n\
             module ctrl_tcp.so\n\
             ctrl_tcp_listen {phone}:4444\n",
            dir = dir.display()
        );
        std::fs::write(dir.join("config"), config).expect("config");
        std::fs::write(
            dir.join("accounts"),
            format!(
                "<sip:phone@{phone}>;auth_pass=none;answermode=auto;regint=0;audio_codecs=PCMU,PCMA{account_params}\n"
            ),
        )
        .expect("accounts");
        std::fs::write(dir.join("contacts"), "").expect("contacts");
        let baresip = Command::new("ip")
            .args(["netns", "exec", &namespace, "baresip", "-f"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("baresip must be installed");
        let phone_ctrl = format!("{phone}:4444");
        for _ in 0..50 {
            if TcpStream::connect_timeout(&phone_ctrl.parse().expect("addr"), Duration::from_millis(100)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Softphone { namespace, link, host, phone, baresip: Some(baresip), dir }
    }

    /// Sends a ctrl_tcp command (netstring JSON).
    fn command(&self, command: &str, params: &str) {
        self.ask(command, params);
    }

    /// Sends a ctrl_tcp command and returns what baresip wrote until its response.
    fn ask(&self, command: &str, params: &str) -> String {
        let mut s = TcpStream::connect(format!("{}:4444", self.phone)).expect("ctrl_tcp");
        let body = json!({"command": command, "params": params, "token": "t"}).to_string();
        s.write_all(format!("{}:{body},", body.len()).as_bytes()).expect("send");
        s.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
        let (mut text, mut buf) = (String::new(), [0u8; 4096]);
        while !text.contains("\"response\":true") {
            match s.read(&mut buf) {
                Ok(n) if n > 0 => text.push_str(&String::from_utf8_lossy(&buf[..n])),
                _ => break,
            }
        }
        text
    }
}

impl Drop for Softphone {
    fn drop(&mut self) {
        if let Some(mut child) = self.baresip.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = Command::new("ip").args(["link", "del", &self.link]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.namespace]).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Five seconds of a 440 Hz tone, 8 kHz mono 16-bit WAV, for baresip's microphone.
fn write_tone(path: &std::path::Path) {
    let samples: Vec<u8> = (0..40_000)
        .flat_map(|n| (((n as f64 * 440.0 * 2.0 * std::f64::consts::PI / 8000.0).sin() * 8000.0) as i16).to_le_bytes())
        .collect();
    let mut wav = Vec::new();
    let chunk = |tag: &[u8], len: u32| [tag, &len.to_le_bytes()[..]].concat();
    wav.extend(chunk(b"RIFF", 36 + samples.len() as u32));
    wav.extend_from_slice(b"WAVE");
    wav.extend(chunk(b"fmt ", 16));
    wav.extend_from_slice(&[1, 0, 1, 0]); // PCM, mono
    wav.extend_from_slice(&8000u32.to_le_bytes());
    wav.extend_from_slice(&16000u32.to_le_bytes());
    wav.extend_from_slice(&[2, 0, 16, 0]);
    wav.extend(chunk(b"data", samples.len() as u32));
    wav.extend(samples);
    std::fs::write(path, wav).expect("tone");
}

async fn device_facing(phone: &Softphone, args: &[&str]) -> Doorsim {
    let d = Doorsim::start_at(&format!("{}:0", phone.host), &format!("{}:0", phone.host), args);
    d.ok("SetSIPConfiguration", json!({"SIPConfiguration": {"SIPEnabled": true, "AllowIncomingCalls": true}})).await;
    assert!(common::answers_options(&phone.host, 5060).await, "SIP never came up");
    d
}

#[tokio::test]
async fn baresip_calls_the_device_with_audio_both_ways() {
    let phone = tokio::task::spawn_blocking(Softphone::start).await.expect("softphone");
    let d = device_facing(&phone, &["--auto-answer", "0"]).await;
    let target = format!("sip:door@{}:5060", phone.host);
    phone.command("dial", &target);
    let (call, _) = d.call_in("Active").await;
    assert_eq!(
        (call["Direction"].as_str(), call["CallStateReason"].as_str()),
        (Some("Incoming"), Some("AcceptedByDevice"))
    );
    d.call_with_media(20).await; // audio both ways
    phone.command("hangup", "");
    let (ended, _) = d.call_in("Terminated").await;
    assert_eq!(ended["CallStateReason"], "Terminated");
}

#[tokio::test]
async fn the_device_calls_baresip_with_audio_both_ways() {
    let phone = tokio::task::spawn_blocking(Softphone::start).await.expect("softphone");
    let d = device_facing(&phone, &[]).await;
    let id = d.ok("Call", json!({"To": format!("sip:phone@{}:5060", phone.phone)})).await["CallId"]
        .as_str()
        .expect("id")
        .to_owned();
    let (call, _) = d.call_in("Active").await;
    assert_eq!(call["CallStateReason"], "AcceptedByRemote");
    d.call_with_media(20).await; // audio both ways
    d.ok("TerminateCall", json!({"CallId": id})).await;
    d.call_in("Terminated").await;
}

#[tokio::test]
async fn baresip_keys_a_code_over_rtp_and_the_dtmf_event_arrives_on_the_websocket() {
    let phone = tokio::task::spawn_blocking(Softphone::start).await.expect("softphone");
    let d = device_facing(&phone, &["--auto-answer", "0"]).await;
    d.configure_dtmf("1234", true, true).await;
    let mut ws = d.events(&["tnsaxis:Call/DTMF"]).await;
    phone.command("dial", &format!("sip:door@{}:5060", phone.host));
    let (call, _) = d.call_with_media(5).await; // baresip's media is up
    for digit in ["1", "2", "3", "4"] {
        phone.command("sndcode", digit);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let event = ws.next_json().await;
    let n = &event["params"]["notification"];
    assert_eq!(n["message"]["source"], json!({"DTMFEventId": "open_door"}), "{event}");
    assert_eq!(n["message"]["data"]["CallId"], call["CallId"]);
    phone.command("hangup", "");
}

#[tokio::test]
async fn baresip_calls_an_srtp_mandatory_device_over_tls_with_encrypted_audio_and_dtmf() {
    let phone = tokio::task::spawn_blocking(|| Softphone::start_with(";mediaenc=srtp-mand")).await.expect("softphone");
    let dir = std::env::temp_dir().join(format!("doorsim-srtp-{}", std::process::id()));
    let capture = dir.join("door.pcap");
    let d = device_facing(&phone, &["--auto-answer", "0", "--pcap", capture.to_str().expect("path")]).await;
    d.configure_dtmf("1234", true, true).await;
    let door = r#"{"DTMFEventId":"open_door","Port":1,"Seconds":30}"#;
    assert_eq!(d.request("POST", "/emulator/v1/dtmf-actions", Some(door)).await.status, 200);
    let srtp = json!({"Id": "peer-to-peer", "UserId": "door", "IsDefault": true, "DTMFConfigurationId": "door",
        "Transport": "tls", "MediaEncryption": "SRTPMandatory"});
    d.ok("SetSIPAccount", json!({ "SIPAccount": srtp })).await;
    let mut ws = d.events(&["tnsaxis:Call/DTMF"]).await;
    phone.command("dial", &format!("sip:door@{}:5061;transport=tls", phone.host));
    let (call, media) = d.call_with_media(20).await; // authenticated SRTP both ways
    assert_eq!(media["SipTransport"], "TLS", "{media}");
    for digit in ["1", "2", "3", "4"] {
        phone.command("sndcode", digit);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let event = ws.next_json().await;
    assert_eq!(event["params"]["notification"]["message"]["data"]["CallId"], call["CallId"], "{event}");
    common::wait_for("the door output opened", async || {
        d.state().await["Ports"].as_array().is_some_and(|p| p.iter().any(|p| p["Port"] == 1 && p["Active"] == true))
    })
    .await;
    // baresip's SRTP layer drops what fails authentication: what its RTP session counts from
    // the device was decrypted.
    let debug = phone.ask("audio_debug", "");
    assert!(debug.contains("menc: srtp-mand (secure=yes)"), "{debug}");
    let received: u64 = debug
        .split("rcvd=")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
        .unwrap_or(0);
    assert!(received > 20, "baresip decrypted the device's packets: {debug}");
    phone.command("hangup", "");
    d.call_in("Terminated").await;

    // On the wire: SRTP (RTP/SAVP in the SDP, 10-byte tags), no tone and no digit in the clear.
    let fields = |filter: &str, field: &str| -> Vec<String> {
        let out = Command::new("tshark")
            .arg("-r")
            .arg(&capture)
            .args(["-Y", filter, "-T", "fields", "-e", field])
            .output()
            .expect("tshark (Debian package tshark) is installed");
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
    };
    assert_eq!(fields("sdp.media.proto == \"RTP/SAVP\"", "sdp.media.proto").len(), 2, "offer and answer are RTP/SAVP");
    let srtp_packets = fields("srtp.auth_tag", "udp.length");
    assert!(srtp_packets.len() > 40, "tshark sees SRTP: {}", srtp_packets.len());
    assert!(fields("rtpevent", "rtpevent.event_id").is_empty(), "no DTMF event readable on the wire");
    let tone = doorsim::media::tone_second().to_vec();
    for payload in fields("srtp.auth_tag", "srtp.enc_payload") {
        let bytes: Vec<u8> =
            (0..payload.len() / 2).filter_map(|i| u8::from_str_radix(&payload[2 * i..2 * i + 2], 16).ok()).collect();
        assert!(bytes.len() < 160 || !tone.windows(160).any(|w| w == &bytes[..160]), "the tone in the clear");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_plain_rtp_caller_gets_488_from_an_srtp_mandatory_device_and_best_effort_falls_back() {
    let phone = tokio::task::spawn_blocking(Softphone::start).await.expect("softphone");
    let d = device_facing(&phone, &["--auto-answer", "0"]).await;
    let account = |mode: &str| json!({"SIPAccount": {"Id": "peer-to-peer", "UserId": "door", "Transport": "tls", "MediaEncryption": mode}});
    d.ok("SetSIPAccount", account("SRTPMandatory")).await;
    // sipp offers plain RTP: 488, and no call starts.
    let template = std::fs::read_to_string(common::scenario("uac_expect_status.xml")).expect("scenario");
    let file = std::env::temp_dir().join(format!("doorsim-expect-488-{}.xml", std::process::id()));
    std::fs::write(&file, template.replace("[$status]", "488")).expect("write scenario");
    let sip = format!("{}:5060", phone.host);
    let (ok, out) = common::sipp_at(&sip, "u1", &["-sf", file.to_str().expect("path")]).await;
    let _ = std::fs::remove_file(&file);
    assert!(ok, "{out}");
    assert_eq!(d.state().await["Calls"], json!([]), "a refused offer starts no call");
    // Best effort: baresip without SRTP over TLS gets a plain call.
    d.ok("SetSIPAccount", account("SRTPBestEffort")).await;
    phone.command("dial", &format!("sip:door@{}:5061;transport=tls", phone.host));
    d.call_with_media(20).await; // plain RTP, both ways
    phone.command("hangup", "");
}
