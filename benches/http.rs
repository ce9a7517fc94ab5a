//! HTTP benchmark (issue: performance), printed with ratios against a baseline measured in the
//! same run: `POST /vapix/call` GetSIPConfiguration over keep-alive connections against
//! 1. a bare hyper server (this binary, re-run as a child) answering the same bytes;
//! 2. doorsim with Basic auth, on an empty store and on one holding 100 accounts and 100 triggers;
//! 3. doorsim with Digest auth as curl and VMS clients use it: one challenge per connection,
//!    then the nonce reused with an increasing `nc`.
//!
//! The load comes from a small raw HTTP/1.1 client in this binary (so Digest can be computed per
//! request) and, when `wrk` is installed, from `wrk -t2 -c64` for the bare server and Basic.
//! Both servers are separate processes with the same runtime (tokio, one worker per core).
//!
//! Run: `cargo bench --bench http` (targets: doorsim ≥ 0.8× bare hyper, Digest within 10 % of
//! Basic). `HTTP_BENCH_SECONDS` sets each run's length (default 2); every run is repeated
//! [`ROUNDS`] times, the servers taking turns, and the figures are medians.

mod common;

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use digest_auth::{AuthContext, HttpMethod, WwwAuthenticateHeader};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Barrier;

use common::{free_port, Running};

const CONNECTIONS: usize = 64;
const BODY_JSON: &str = r#"{"axcall:GetSIPConfiguration":{}}"#;

/// The bare baseline: hyper answering every request with `body` once it has read the request's.
async fn bare_server(port: u16, body: bytes::Bytes) {
    use http_body_util::{BodyExt, Full};
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let body = body.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let body = body.clone();
                async move {
                    let _ = req.into_body().collect().await;
                    let mut r = hyper::Response::new(Full::new(body));
                    r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
                    Ok::<_, std::convert::Infallible>(r)
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
        });
    }
}

/// How one connection authenticates.
#[derive(Clone, Copy, PartialEq)]
enum Auth {
    None,
    Basic,
    Digest,
}

/// One request as bytes, with `authorization` when given.
fn request(port: u16, authorization: Option<&str>) -> Vec<u8> {
    let auth = authorization.map(|a| format!("Authorization: {a}\r\n")).unwrap_or_default();
    format!(
        "POST /vapix/call HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n{auth}\
         Content-Length: {}\r\n\r\n{BODY_JSON}",
        BODY_JSON.len()
    )
    .into_bytes()
}

/// Reads one response; returns its status and its `WWW-Authenticate` header, if any.
async fn response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> (u16, Option<String>) {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Response::new(&mut headers);
        if let Ok(httparse::Status::Complete(head)) = parsed.parse(buf) {
            let header = |name: &str| {
                parsed.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.to_vec())
            };
            let length: usize = header("content-length")
                .and_then(|v| String::from_utf8(v).ok()?.trim().parse().ok())
                .expect("a response with Content-Length");
            let challenge = header("www-authenticate").and_then(|v| String::from_utf8(v).ok());
            let status = parsed.code.unwrap_or(0);
            while buf.len() < head + length {
                read_more(stream, buf).await;
            }
            buf.drain(..head + length);
            return (status, challenge);
        }
        read_more(stream, buf).await;
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) {
    let mut chunk = [0u8; 16 * 1024];
    let n = stream.read(&mut chunk).await.expect("read");
    assert!(n > 0, "the server closed the connection");
    buf.extend_from_slice(&chunk[..n]);
}

/// Digest `Authorization` headers a connection computes before the clock starts, so the
/// client's hashing does not take CPU from the server under test (more are made if it runs out).
const PRECOMPUTED_DIGESTS: usize = 3000;

/// One keep-alive connection, set up (and for Digest challenged) before every connection is
/// `ready`, then sending requests back to back for `seconds`; returns how many were answered 200.
async fn connection(port: u16, auth: Auth, ready: Arc<Barrier>, seconds: u64) -> u64 {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut buf = Vec::with_capacity(16 * 1024);
    let basic = request(port, Some(&format!("Basic {}", base64_root_pass())));
    let plain = request(port, None);
    let mut digests: Vec<Vec<u8>> = Vec::new();
    let mut challenge: Option<WwwAuthenticateHeader> = None;
    // `respond` counts nc up on the challenge: the nonce is reused, as curl does.
    let next_digest = |challenge: &mut WwwAuthenticateHeader| {
        let ctx =
            AuthContext::new_with_method("root", "pass", "/vapix/call", Some(BODY_JSON.as_bytes()), HttpMethod::POST);
        request(port, Some(&challenge.respond(&ctx).expect("digest").to_header_string()))
    };
    if auth == Auth::Digest {
        stream.write_all(&plain).await.expect("write");
        let (status, header) = response(&mut stream, &mut buf).await;
        assert_eq!(status, 401, "a challenge first");
        let mut c = WwwAuthenticateHeader::parse(&header.expect("WWW-Authenticate")).expect("digest challenge");
        digests = (0..PRECOMPUTED_DIGESTS).map(|_| next_digest(&mut c)).collect();
        digests.reverse();
        challenge = Some(c);
    }
    ready.wait().await;
    let until = Instant::now() + Duration::from_secs(seconds);
    let mut ok = 0;
    while Instant::now() < until {
        let bytes = match (auth, challenge.as_mut()) {
            (Auth::Digest, Some(c)) => digests.pop().unwrap_or_else(|| next_digest(c)),
            (Auth::Basic, _) => basic.clone(),
            _ => plain.clone(),
        };
        stream.write_all(&bytes).await.expect("write");
        let (status, _) = response(&mut stream, &mut buf).await;
        assert_eq!(status, 200, "every request is served");
        ok += 1;
    }
    ok
}

fn base64_root_pass() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode("root:pass")
}

/// Requests per second over `CONNECTIONS` connections for `seconds`.
async fn rate(port: u16, auth: Auth, seconds: u64) -> f64 {
    let ready = Arc::new(Barrier::new(CONNECTIONS));
    let tasks: Vec<_> =
        (0..CONNECTIONS).map(|_| tokio::spawn(connection(port, auth, ready.clone(), seconds))).collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("connection");
    }
    total as f64 / seconds as f64
}

/// `wrk -t2 -c64` with Basic auth when `basic`; requests per second, if wrk is installed.
fn wrk(port: u16, basic: bool, seconds: u64) -> Option<f64> {
    let script = std::env::temp_dir().join(format!("doorsim-wrk-{}.lua", std::process::id()));
    let auth = if basic {
        format!("wrk.headers[\"Authorization\"] = \"Basic {}\"\n", base64_root_pass())
    } else {
        String::new()
    };
    let lua = format!(
        "wrk.method = \"POST\"\nwrk.body = '{BODY_JSON}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n{auth}"
    );
    std::fs::write(&script, lua).ok()?;
    let out = Command::new("wrk")
        .args(["-t2", "-c64", &format!("-d{seconds}s"), "-s", script.to_str()?])
        .arg(format!("http://127.0.0.1:{port}/vapix/call"))
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("Non-2xx"), "wrk saw failures: {text}");
    text.lines().find_map(|l| l.strip_prefix("Requests/sec:")).and_then(|v| v.trim().parse().ok())
}

/// Runs `load` (a request rate over `seconds`) and returns the rate with the server's CPU time
/// per request, in µs, from process `pid`'s counters around it.
async fn measured(pid: u32, seconds: u64, load: impl std::future::Future<Output = f64>) -> (f64, f64) {
    let before = common::cpu_time(pid);
    let rate = load.await;
    let cpu = common::cpu_time(pid).saturating_sub(before);
    (rate, cpu.as_secs_f64() * 1e6 / (rate * seconds as f64).max(1.0))
}

/// How many times each run is repeated, bare and doorsim taking turns: on a shared 2-core
/// machine one run's rate moves by tens of percent, so figures are medians of the rounds.
const ROUNDS: usize = 5;

/// The runs of every round: (requests per second, server CPU µs a request), and wrk's rates
/// (bare, doorsim).
#[derive(Default)]
struct Rounds {
    bare: Vec<(f64, f64)>,
    basic: Vec<(f64, f64)>,
    digest: Vec<(f64, f64)>,
    wrk: Vec<(f64, f64)>,
}

/// The median of `values`.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// Ratios as a short list, to show the spread behind a median.
fn listed(ratios: &[f64]) -> String {
    ratios.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(" ")
}

/// Sends one Call service request (Basic auth); panics unless it is answered 200.
async fn call(port: u16, body: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let head = format!(
        "POST /vapix/call HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        base64_root_pass(),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
    let at = answer.windows(4).position(|w| w == b"\r\n\r\n").expect("head") + 4;
    answer.split_off(at)
}

/// 100 accounts (the peer-to-peer one and 99 more) and 100 DTMF triggers (with their event).
async fn fill(port: u16) {
    call(port, r#"{"axcall:SetDTMFEvent":{"DTMFEvent":{"Id":"open","Name":"Open"}}}"#).await;
    for i in 0..100 {
        if i > 0 {
            call(port, &format!(r#"{{"axcall:SetSIPAccount":{{"SIPAccount":{{"Id":"a{i}","UserId":"u{i}"}}}}}}"#))
                .await;
        }
        let trigger = format!(
            r#"{{"axcall:SetDTMFTrigger":{{"DTMFTrigger":{{"Id":"t{i}","DTMFSequence":"{i}#","DTMFEventId":"open"}}}}}}"#
        );
        call(port, &trigger).await;
    }
}

fn main() {
    if let Ok(spec) = std::env::var("DOORSIM_BENCH_BARE") {
        let (port, body) = spec.split_once(' ').expect("PORT BODY");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(bare_server(port.parse().expect("port"), bytes::Bytes::from(body.to_owned())));
        return;
    }
    let seconds: u64 = std::env::var("HTTP_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let (door, door_port) = common::doorsim(&[]);
        let answer = call(door_port, BODY_JSON).await;
        let bare_port = free_port();
        let bare = Running(
            Command::new(std::env::current_exe().expect("exe"))
                .env("DOORSIM_BENCH_BARE", format!("{bare_port} {}", String::from_utf8_lossy(&answer)))
                .process_group(0)
                .spawn()
                .expect("bare server"),
        );
        while TcpStream::connect(("127.0.0.1", bare_port)).await.is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        println!(
            "HTTP: POST /vapix/call GetSIPConfiguration ({} byte answer), {CONNECTIONS} keep-alive connections; \
             {ROUNDS} rounds of {seconds} s runs, bare and doorsim taking turns, medians",
            answer.len()
        );
        let (bare_pid, door_pid) = (bare.0.id(), door.0.id());
        let mut rounds = Rounds::default();
        for _ in 0..ROUNDS {
            rounds.bare.push(measured(bare_pid, seconds, rate(bare_port, Auth::None, seconds)).await);
            rounds.basic.push(measured(door_pid, seconds, rate(door_port, Auth::Basic, seconds)).await);
            rounds.digest.push(measured(door_pid, seconds, rate(door_port, Auth::Digest, seconds)).await);
            if let (Some(b), Some(d)) = (wrk(bare_port, false, seconds), wrk(door_port, true, seconds)) {
                rounds.wrk.push((b, d));
            }
        }
        let median_of = |runs: &[(f64, f64)], f: &dyn Fn(&(f64, f64)) -> f64| median(runs.iter().map(f).collect());
        let (bare_rate, bare_cpu) = (median_of(&rounds.bare, &|r| r.0), median_of(&rounds.bare, &|r| r.1));
        let (basic, basic_cpu) = (median_of(&rounds.basic, &|r| r.0), median_of(&rounds.basic, &|r| r.1));
        let (digest, digest_cpu) = (median_of(&rounds.digest, &|r| r.0), median_of(&rounds.digest, &|r| r.1));
        let per_round = |a: &[(f64, f64)], b: &[(f64, f64)]| -> Vec<f64> { a.iter().zip(b).map(|(a, b)| a.0 / b.0).collect() };
        let basic_ratios = per_round(&rounds.basic, &rounds.bare);
        let digest_ratios = per_round(&rounds.digest, &rounds.basic);
        println!("  bare hyper             {bare_rate:>9.0} req/s, {bare_cpu:>5.1} µs of server CPU a request");
        println!(
            "  doorsim, Basic         {basic:>9.0} req/s, {basic_cpu:>5.1} µs: {:.2}x bare hyper's rate (rounds: {}), \
             {:.2}x its cost (target rate >= 0.80x)",
            median(basic_ratios.clone()),
            listed(&basic_ratios),
            basic_cpu / bare_cpu
        );
        println!(
            "  doorsim, Digest        {digest:>9.0} req/s, {digest_cpu:>5.1} µs: {:.2}x Basic's rate (rounds: {}), \
             Basic's cost is {:.2}x Digest's (target >= 0.90; the client's own digests share the cores, so the cost \
             ratio is the server's part)",
            median(digest_ratios.clone()),
            listed(&digest_ratios),
            basic_cpu / digest_cpu
        );
        fill(door_port).await;
        let mut filled = Vec::new();
        for _ in 0..ROUNDS {
            filled.push(rate(door_port, Auth::Basic, seconds).await);
        }
        let filled = median(filled);
        println!("  doorsim, Basic, store filled (100 accounts, 100 triggers)  {filled:>9.0} req/s  {:.2}x empty", filled / basic);
        if rounds.wrk.is_empty() {
            println!("  wrk is not installed: no wrk figures");
        } else {
            let ratios: Vec<f64> = rounds.wrk.iter().map(|(b, d)| d / b).collect();
            println!(
                "  wrk -t2 -c64: bare hyper {:.0} req/s, doorsim Basic {:.0} req/s: {:.2}x (rounds: {}; target >= 0.80)",
                median(rounds.wrk.iter().map(|r| r.0).collect()),
                median(rounds.wrk.iter().map(|r| r.1).collect()),
                median(ratios.clone()),
                listed(&ratios)
            );
        }
        drop((door, bare));
    });
}
