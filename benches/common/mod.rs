//! What the benchmarks share: child processes that are killed with their group, free ports,
//! a process's RSS, and an in-process device with a DTMF code bound.
#![allow(dead_code)] // each benchmark uses a different part

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use doorsim::device::{Device, DeviceConfig};
use doorsim::profile::Profile;
use tokio_util::sync::CancellationToken;

/// A child process killed (with its process group) on drop.
pub(crate) struct Running(pub(crate) Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.0.id())]).status();
        let _ = self.0.wait();
    }
}

/// A port free for both UDP and TCP on 127.0.0.1.
pub(crate) fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
        let port = udp.local_addr().expect("addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A doorsim process (its release build) on a free HTTP port with `args`, once its banner is
/// out; returns it and the port.
pub(crate) fn doorsim(args: &[&str]) -> (Running, u16) {
    let port = free_port();
    let (http, rtsp) = (format!("127.0.0.1:{port}"), format!("127.0.0.1:{}", free_port()));
    let mut all = vec!["--http", &http, "--rtsp", &rtsp, "--log", "error"];
    all.extend_from_slice(args);
    (started(&all, "Call service API"), port)
}

/// Runs the doorsim binary with `args` and returns once its banner has printed a line
/// containing `ready`; the rest of its output is read and dropped.
pub(crate) fn started(args: &[&str], ready: &str) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_doorsim"))
        .args(args)
        .stdout(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("doorsim");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    lines.by_ref().map_while(Result::ok).find(|l| l.contains(ready)).expect("banner");
    std::thread::spawn(move || lines.for_each(drop));
    Running(child)
}

/// The resident set size of process `pid`, in KiB.
pub(crate) fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// CPU time process `pid` has used so far (user and system, all threads), at the kernel's tick
/// resolution (usually 10 ms).
pub(crate) fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks: u64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum();
    // sysconf(_SC_CLK_TCK) is 100 on every Linux that matters here.
    Duration::from_millis(ticks * 10)
}

/// An in-process device on loopback that answers calls at once, with SIP on a free port
/// (returned) and the DTMF code `1` bound to the event `e` on its account; up to `max_calls`.
pub(crate) async fn dtmf_device(max_calls: usize) -> (Device, CancellationToken, u16) {
    let stop = CancellationToken::new();
    let config = DeviceConfig {
        auto_answer: Some(Duration::ZERO),
        max_calls,
        ..DeviceConfig::on_loopback(Profile::load("A8207-VE").expect("profile"))
    };
    let device = Device::start(config, stop.clone()).await.expect("device");
    let sip_port = free_port();
    device
        .store
        .update(|s| {
            s.sip_configuration.sip_enabled = true;
            s.sip_configuration.sip_port = sip_port;
            s.sip_configuration.sip_tls_port = free_port();
            s.sip_configuration.allow_incoming_calls = true;
            s.set_dtmf_events(vec![doorsim::model::DtmfEvent { id: "e".into(), name: "e".into() }])?;
            s.set_dtmf_triggers(vec![doorsim::model::DtmfTrigger {
                id: "t".into(),
                dtmf_sequence: "1".into(),
                dtmf_event_id: "e".into(),
            }])?;
            s.set_dtmf_configurations(vec![doorsim::model::DtmfConfiguration {
                id: "c".into(),
                name: "c".into(),
                dtmf_trigger_id: vec!["t".into()],
                rfc2833: true,
                rfc2976: true,
            }])?;
            if let Some(a) = s.sip_accounts.get_mut("peer-to-peer") {
                a.dtmf_configuration_id = "c".into();
            }
            Ok(())
        })
        .expect("configure");
    (device, stop, sip_port)
}
