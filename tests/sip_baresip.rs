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
             module g711.so\nmodule aufile.so\nmodule account.so\nmodule contact.so\nmodule menu.so\nmodule ctrl_tcp.so\n\
             ctrl_tcp_listen {phone}:4444\n",
            dir = dir.display()
        );
        std::fs::write(dir.join("config"), config).expect("config");
        std::fs::write(
            dir.join("accounts"),
            format!("<sip:phone@{phone}>;auth_pass=none;answermode=auto;regint=0;audio_codecs=PCMU,PCMA\n"),
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
        let mut s = TcpStream::connect(format!("{}:4444", self.phone)).expect("ctrl_tcp");
        let body = json!({"command": command, "params": params, "token": "t"}).to_string();
        s.write_all(format!("{}:{body},", body.len()).as_bytes()).expect("send");
        s.set_read_timeout(Some(Duration::from_millis(500))).expect("timeout");
        let mut buf = [0u8; 512];
        let _ = s.read(&mut buf);
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
