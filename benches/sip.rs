//! SIP call-rate benchmark (issue: performance), printed with ratios against a baseline measured
//! in the same run: sipp's UAC (`-sn uac`: INVITE, 200, ACK, BYE, 200, no hold time) at rising
//! rates against
//! 1. sipp's own UAS (`-sn uas`), the baseline;
//! 2. doorsim answering at once (`--auto-answer 0 --max-calls 100000`): every call is a real
//!    call, with its RTP session set up and its events emitted.
//!
//! For each, the highest rate at which every call of a run succeeds and the run keeps the rate
//! (its calls made within 10 % more than their time), over UDP and over TCP (`-t t1`). Each
//! step runs `SIP_BENCH_SECONDS` (default 3) seconds of calls.
//!
//! Then memory per call: doorsim's RSS after a warm-up, and again after `SIP_BENCH_CALLS`
//! (default 100,000) more calls at 1,500 calls/s, each time once the finished transactions have
//! lingered out (64·T1, 32 s): a per-call leak shows as growth.
//!
//! Run: `cargo bench --bench sip` (target: doorsim ≥ 0.8× sipp's UAS, UDP and TCP; RSS flat).

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{free_port, rss_kib, Running};

/// Call rates tried, in calls per second.
const RATES: &[u32] = &[
    250, 500, 1000, 1500, 2000, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000, 11000, 12000, 13500, 15000, 16000,
    17500, 20000, 25000, 30000, 35000, 40000, 50000,
];

/// What answers the calls.
enum Callee {
    Sipp,
    Doorsim,
}

/// Starts the callee on a free port over `transport` (`u1` or `t1`); returns it and its port
/// once it answers.
fn start(callee: &Callee, transport: &str) -> (Running, u16) {
    let port = free_port();
    let callee = match callee {
        Callee::Sipp => Command::new("sipp")
            .args(["-sn", "uas", "-i", "127.0.0.1", "-p", &port.to_string(), "-t", transport, "-nostdin"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map(Running)
            .expect("sipp (Debian sip-tester)"),
        Callee::Doorsim => {
            let setup = format!(
                r#"{{"axcall:SetSIPConfiguration":{{"SIPConfiguration":{{"SIPEnabled":true,"AllowIncomingCalls":true,"SIPPort":{port},"SIPTLSPort":{}}}}}}}"#,
                free_port()
            );
            let (door, http) = common::doorsim(&["--auto-answer", "0", "--max-calls", "100000"]);
            let answer = Command::new("curl")
                .args(["-s", "-u", "root:pass", "--anyauth", "-d", &setup])
                .arg(format!("http://127.0.0.1:{http}/vapix/call"))
                .output()
                .expect("curl");
            assert!(String::from_utf8_lossy(&answer.stdout).contains('{'), "SIP enabled");
            door
        }
    };
    // It answers when a one-call run succeeds.
    for _ in 0..100 {
        if calls(port, transport, 10, 1) {
            return (callee, port);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("the callee never answered calls");
}

/// sipp's UAC making `total` calls at `rate` per second to `port`; whether every call succeeded.
fn calls(port: u16, transport: &str, rate: u32, total: u32) -> bool {
    calls_timed(port, transport, rate, total).0
}

/// As [`calls`], with how long the run took.
fn calls_timed(port: u16, transport: &str, rate: u32, total: u32) -> (bool, Duration) {
    let started = std::time::Instant::now();
    let status = Command::new("sipp")
        .arg(format!("127.0.0.1:{port}"))
        .args(["-sn", "uac", "-i", "127.0.0.1", "-p", &free_port().to_string(), "-t", transport])
        .args(["-r", &rate.to_string(), "-m", &total.to_string(), "-s", "door", "-d", "0"])
        .args(["-nostdin", "-timeout", "60s", "-timeout_error", "-max_socket", "2000"])
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("sipp");
    (status.success(), started.elapsed())
}

/// The highest rate of [`RATES`] kept for a run of `seconds` with no failed call (0: none).
/// Kept means the run's calls were made within a tenth more than `seconds` (plus a second for
/// sipp to start and finish): a caller or callee that cannot keep up makes the run longer
/// without failing a call, and must not count as keeping the rate.
fn highest_clean_rate(callee: &Callee, transport: &str, seconds: u32) -> u32 {
    let (running, port) = start(callee, transport);
    let allowed = Duration::from_secs(u64::from(seconds)).mul_f64(1.1) + Duration::from_secs(1);
    let mut best = 0;
    for &rate in RATES {
        let (clean, took) = calls_timed(port, transport, rate, rate * seconds);
        if !clean || took > allowed {
            break;
        }
        best = rate;
    }
    drop(running);
    best
}

/// RSS after a warm-up and after `total` more calls, both once transactions lingered out.
fn memory_per_call(total: u32) {
    const RATE: u32 = 1500;
    let linger = Duration::from_secs(34);
    let (door, port) = start(&Callee::Doorsim, "u1");
    assert!(calls(port, "u1", RATE, RATE * 3), "warm-up calls");
    std::thread::sleep(linger);
    let before = rss_kib(door.0.id());
    let clean = calls(port, "u1", RATE, total);
    let peak = rss_kib(door.0.id());
    std::thread::sleep(linger);
    let after = rss_kib(door.0.id());
    let per_call = (after as f64 - before as f64) * 1024.0 / f64::from(total);
    println!(
        "  memory: RSS {before} KiB after warm-up, {peak} KiB right after {total} calls ({}), \
         {after} KiB once they lingered out: {:.2}x, {per_call:.1} bytes per call",
        if clean { "all succeeded" } else { "SOME FAILED" },
        after as f64 / before as f64
    );
}

fn main() {
    let seconds: u32 = std::env::var("SIP_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    println!(
        "SIP: sipp UAC INVITE/200/ACK/BYE, no hold time, {seconds} s per rate step; highest rate with no failed call"
    );
    for (name, transport) in [("UDP", "u1"), ("TCP", "t1")] {
        let baseline = highest_clean_rate(&Callee::Sipp, transport, seconds);
        let doorsim = highest_clean_rate(&Callee::Doorsim, transport, seconds);
        let ratio = if baseline == 0 { 0.0 } else { f64::from(doorsim) / f64::from(baseline) };
        println!(
            "  {name}: sipp UAS {baseline:>6} calls/s, doorsim {doorsim:>6} calls/s: {ratio:.2}x (target >= 0.80)"
        );
    }
    let total: u32 = std::env::var("SIP_BENCH_CALLS").ok().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    if total > 0 {
        memory_per_call(total);
    }
}
