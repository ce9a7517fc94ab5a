//! Test harness: starts the real `doorsim` binary on an ephemeral port and talks HTTP to it
//! with a Digest-authenticating client. Each test gets its own device; the process is killed
//! when the handle drops, even if the test fails.
#![allow(dead_code)] // each test binary uses a different part of the harness

pub(crate) mod kamailio;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use digest_auth::{AuthContext, HttpMethod, WwwAuthenticateHeader};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// A running doorsim process.
pub(crate) struct Doorsim {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub(crate) base: String,
    /// `127.0.0.1:PORT` of the RTSP server.
    pub(crate) rtsp: String,
    client: reqwest::Client,
    prompt: Mutex<Option<WwwAuthenticateHeader>>,
}

impl Drop for Doorsim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One HTTP answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) body: String,
}

impl Answer {
    /// The body as JSON (panics with the body when it is not).
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// The body as simple-format `Key=Value` lines, values as written.
    pub(crate) fn lines(&self) -> Vec<(String, String)> {
        self.body
            .lines()
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap_or_else(|| panic!("not a Key=Value line: {l:?}"));
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    /// The value written for `key` in a simple-format body.
    pub(crate) fn line(&self, key: &str) -> Option<String> {
        self.lines().into_iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl Doorsim {
    /// Starts `doorsim --http 127.0.0.1:0 --rtsp 127.0.0.1:0` with extra `args` and waits for
    /// its banner.
    pub(crate) fn start(args: &[&str]) -> Doorsim {
        Self::start_at("127.0.0.1:0", "127.0.0.1:0", args)
    }

    /// Starts doorsim with its HTTP API on `http` and its RTSP server on `rtsp`.
    pub(crate) fn start_at(http: &str, rtsp: &str, args: &[&str]) -> Doorsim {
        Self::spawn(http, rtsp, args, Stdio::inherit())
    }

    /// Starts doorsim like [`Doorsim::start`], its log (stderr) written to `log`.
    pub(crate) fn start_logging_to(log: &std::path::Path, args: &[&str]) -> Doorsim {
        let file = std::fs::File::create(log).expect("log file");
        Self::spawn("127.0.0.1:0", "127.0.0.1:0", args, Stdio::from(file))
    }

    fn spawn(http: &str, rtsp: &str, args: &[&str], stderr: Stdio) -> Doorsim {
        let mut child = Command::new(env!("CARGO_BIN_EXE_doorsim"))
            .args(["--http", http, "--rtsp", rtsp])
            .args(if args.contains(&"--log") { &[][..] } else { &["--log", "warn"][..] })
            .args(args)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn doorsim");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut listening = Vec::new();
        for line in lines.by_ref() {
            let line = line.expect("banner line");
            if let Some(rest) = line.split("listening on ").nth(1) {
                listening.push(rest.trim_end_matches(')').to_owned());
                if listening.len() == 2 {
                    break;
                }
            }
        }
        assert_eq!(listening.len(), 2, "doorsim printed no listening addresses");
        // Keep reading the rest of stdout so the device never writes into a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Doorsim {
            child,
            base: format!("http://{}", listening[0]),
            rtsp: listening[1].clone(),
            client: reqwest::Client::new(),
            prompt: Mutex::new(None),
        }
    }

    /// Starts doorsim on a loopback address of its own (see [`own_address`]).
    pub(crate) fn start_on_own_address(args: &[&str]) -> Doorsim {
        let at = format!("{}:0", own_address());
        Self::start_at(&at, &at, args)
    }

    /// The IP address the device's HTTP API listens on.
    pub(crate) fn ip(&self) -> String {
        let host = self.base.trim_start_matches("http://");
        host.rsplit_once(':').map_or(host, |(h, _)| h).to_owned()
    }

    /// The reasons of the call StateChange events logged so far, oldest first.
    pub(crate) async fn reasons(&self) -> Vec<String> {
        let log = self.request("GET", "/emulator/v1/events?topic=tnsaxis:Call/StateChange", None).await.json();
        log["Events"]
            .as_array()
            .expect("log")
            .iter()
            .filter_map(|e| e["data"]["Reason"].as_str().map(str::to_owned))
            .collect()
    }

    /// The device's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The device's resident memory in KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("/proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("VmRSS")
    }

    /// Sends a request with Digest auth (root:pass), answering a challenge when needed.
    pub(crate) async fn request(&self, method: &str, path: &str, body: Option<&str>) -> Answer {
        self.request_as("root", "pass", method, path, body).await
    }

    /// Sends a request as `user:pass` with Digest auth.
    pub(crate) async fn request_as(
        &self,
        user: &str,
        pass: &str,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> Answer {
        for _ in 0..2 {
            let mut req = self.client.request(method.parse().expect("method"), format!("{}{path}", self.base));
            if let Some(b) = body {
                req = req.body(b.to_owned());
            }
            let auth = self.prompt.lock().expect("lock").as_mut().map(|prompt| {
                let ctx = AuthContext::new_with_method(
                    user,
                    pass,
                    path,
                    Option::<&[u8]>::None,
                    HttpMethod(method.to_owned().into()),
                );
                prompt.respond(&ctx).expect("digest").to_string()
            });
            if let Some(a) = auth {
                req = req.header("Authorization", a);
            }
            let resp = req.send().await.expect("HTTP request");
            let status = resp.status().as_u16();
            if status == 401 {
                let challenge = resp
                    .headers()
                    .get_all("www-authenticate")
                    .iter()
                    .filter_map(|h| h.to_str().ok())
                    .find(|h| h.starts_with("Digest"))
                    .map(str::to_owned);
                if let Some(c) = challenge {
                    let fresh = WwwAuthenticateHeader::parse(&c).expect("parse challenge");
                    let mut prompt = self.prompt.lock().expect("lock");
                    let retry = prompt.as_ref().is_none_or(|p| p.nonce != fresh.nonce);
                    *prompt = Some(fresh);
                    if retry {
                        continue;
                    }
                }
            }
            return answer(resp).await;
        }
        panic!("authentication did not succeed");
    }

    /// An `Authorization` header value for `method path` (answering a challenge first if needed).
    pub(crate) async fn authorization(&self, method: &str, path: &str) -> String {
        if self.prompt.lock().expect("lock").is_none() {
            self.request("GET", "/emulator/v1/state", None).await;
        }
        let mut guard = self.prompt.lock().expect("lock");
        let prompt = guard.as_mut().expect("a digest challenge");
        let ctx = AuthContext::new_with_method(
            "root",
            "pass",
            path,
            Option::<&[u8]>::None,
            HttpMethod(method.to_owned().into()),
        );
        prompt.respond(&ctx).expect("digest").to_string()
    }

    /// Starts streaming µ-law audio into `transmit.cgi`: 160 bytes every 20 ms until the returned
    /// upload is stopped or dropped. The answer arrives through the join handle.
    pub(crate) async fn transmit_audio(&self) -> Upload {
        let path = "/axis-cgi/audio/transmit.cgi";
        let auth = self.authorization("POST", path).await;
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let chunks = futures_util::stream::unfold(0u32, move |n| {
            let wait = tokio::time::sleep(std::time::Duration::from_millis(20));
            async move {
                wait.await;
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0xFFu8; 160])), n + 1))
            }
        });
        let body = futures_util::StreamExt::take_until(chunks, async move {
            let _ = (&mut stopped).await;
        });
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Authorization", auth)
            .header("Content-Type", "audio/basic")
            .body(reqwest::Body::wrap_stream(body))
            .send();
        let handle = tokio::spawn(async move { request.await.map(|r| r.status().as_u16()) });
        Upload { stop: Some(stop), handle }
    }

    /// Opens a streaming GET (receive.cgi, video.cgi); the stream lasts while the response lives.
    pub(crate) async fn request_stream(&self, path: &str) -> reqwest::Response {
        let auth = self.authorization("GET", path).await;
        let r =
            self.client.get(format!("{}{path}", self.base)).header("Authorization", auth).send().await.expect("stream");
        assert_eq!(r.status().as_u16(), 200, "{path}");
        r
    }

    /// Opens the event WebSocket with a session token and configures `filters`.
    /// Returns the socket after the device's `data:{}` answer.
    pub(crate) async fn events(&self, filters: &[&str]) -> EventSocket {
        self.open_events(filters, None).await
    }

    /// Like [`Doorsim::events`] over a socket whose receive buffer is `4 KiB` (no autotuning),
    /// for clients that stop reading.
    pub(crate) async fn events_with_small_window(&self, filters: &[&str]) -> EventSocket {
        self.open_events(filters, Some(4096)).await
    }

    async fn open_events(&self, filters: &[&str], receive_buffer: Option<u32>) -> EventSocket {
        let token = self.request("GET", "/axis-cgi/wssession.cgi", None).await;
        assert_eq!(token.status, 200, "{}", token.body);
        let url = format!(
            "{}/vapix/ws-data-stream?sources=events&wssession={}",
            self.base.replace("http://", "ws://"),
            token.body.trim()
        );
        let addr: std::net::SocketAddr = self.base.trim_start_matches("http://").parse().expect("address");
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        if let Some(size) = receive_buffer {
            socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
        }
        let stream = socket.connect(addr).await.expect("connect");
        let (mut ws, _) = tokio_tungstenite::client_async(url, tokio_tungstenite::MaybeTlsStream::Plain(stream))
            .await
            .expect("WebSocket upgrade");
        let list: Vec<Value> = filters.iter().map(|f| serde_json::json!({ "topicFilter": f })).collect();
        let configure = serde_json::json!({"apiVersion": "1.0", "method": "events:configure",
            "params": {"eventFilterList": list}});
        ws.send(Message::text(configure.to_string())).await.expect("send configure");
        let mut socket = EventSocket { ws };
        let first = socket.next_json().await;
        assert_eq!(first, serde_json::json!({"apiVersion": "1.0", "method": "events:configure", "data": {}}));
        socket
    }

    pub(crate) async fn call(&self, command: &str, params: Value) -> Answer {
        let body = serde_json::json!({ format!("axcall:{command}"): params }).to_string();
        self.request("POST", "/vapix/call", Some(&body)).await
    }

    /// `POST /vapix/call`; panics unless the answer is 200. Returns the JSON body.
    pub(crate) async fn ok(&self, command: &str, params: Value) -> Value {
        let a = self.call(command, params).await;
        assert_eq!(a.status, 200, "{command}: {}", a.body);
        a.json()
    }

    /// `GET /vapix/call?format=simple&action=axcall:<command>&<rest>` (rest already encoded).
    pub(crate) async fn simple(&self, command: &str, rest: &str) -> Answer {
        let sep = if rest.is_empty() { "" } else { "&" };
        self.request("GET", &format!("/vapix/call?format=simple&action=axcall:{command}{sep}{rest}"), None).await
    }

    /// The whole store, from the control API.
    /// The device's configuration store as `/emulator/v1/state` shows it.
    pub(crate) async fn store(&self) -> Value {
        self.state().await["Store"].clone()
    }

    pub(crate) async fn state(&self) -> Value {
        let a = self.request("GET", "/emulator/v1/state", None).await;
        assert_eq!(a.status, 200, "{}", a.body);
        a.json()
    }
}

async fn answer(resp: reqwest::Response) -> Answer {
    let status = resp.status().as_u16();
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let body = resp.text().await.expect("body");
    Answer { status, content_type, body }
}

/// A local port free for both UDP and TCP at the time of asking.
/// A loopback address of this test's own (127.X.Y.1, X from the process, Y counted), so a
/// device's default SIP port 5060 does not clash with another test's.
pub(crate) fn own_address() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("127.{}.{}.1", 100 + std::process::id() % 100, n % 256)
}

/// Waits (up to 20 s) until something on this machine listens on `port`: a bound UDP socket,
/// or with `tcp` a listening TCP socket (read from `/proc/net`, so the probe sends nothing a
/// peer under test could see). For peers started as processes, such as sipp.
pub(crate) async fn wait_listening(port: u16, tcp: bool) {
    let files: &[&str] = if tcp { &["/proc/net/tcp", "/proc/net/tcp6"] } else { &["/proc/net/udp", "/proc/net/udp6"] };
    let listening = || {
        files.iter().filter_map(|f| std::fs::read_to_string(f).ok()).any(|table| {
            table.lines().skip(1).any(|line| {
                let mut cols = line.split_whitespace();
                let local = cols.nth(1).unwrap_or_default();
                let state = cols.nth(1).unwrap_or_default();
                let bound = local.rsplit_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok()) == Some(port);
                bound && (!tcp || state == "0A")
            })
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !listening() {
        assert!(std::time::Instant::now() < deadline, "nothing listens on port {port}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

pub(crate) fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
        let port = udp.local_addr().expect("addr").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A first port P for `count` devices whose ports are `step` apart (P, P + step, …, and each
/// one's next port, where SIP puts TLS), all free for TCP and UDP. Taken from 20000–29999,
/// below the kernel's ephemeral range, so the ports other tests' sockets get cannot land there.
pub(crate) fn free_ports_apart(count: u16, step: u16) -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    // Each call of a test binary starts from its own place; processes differ by their pid.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let free = |q: u16| {
        std::net::TcpListener::bind(("127.0.0.1", q)).is_ok() && std::net::UdpSocket::bind(("127.0.0.1", q)).is_ok()
    };
    loop {
        let span = count * step + 2;
        let slot = (std::process::id() as u16).wrapping_mul(7).wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed));
        let base = 20_000 + (slot % (10_000 / span)) * span;
        if (0..count).all(|k| free(base + k * step) && free(base + k * step + 1)) {
            return base;
        }
    }
}

impl Doorsim {
    /// Enables SIP on free ports with incoming calls allowed, `extra` merged into the
    /// SIPConfiguration, and waits for the listeners; returns (SIPPort, SIPTLSPort).
    pub(crate) async fn enable_sip(&self, extra: Value) -> (u16, u16) {
        let (port, tls) = (free_port(), free_port());
        let mut sip =
            serde_json::json!({"SIPEnabled": true, "SIPPort": port, "SIPTLSPort": tls, "AllowIncomingCalls": true});
        if let (Some(s), Some(extra)) = (sip.as_object_mut(), extra.as_object()) {
            s.extend(extra.clone());
        }
        self.ok("SetSIPConfiguration", serde_json::json!({ "SIPConfiguration": sip })).await;
        // The listeners follow the store: wait until the UDP port answers OPTIONS.
        let host = self.base.trim_start_matches("http://").rsplit_once(':').map_or("127.0.0.1", |(h, _)| h);
        assert!(answers_options(host, port).await, "SIP never came up on {host}:{port}");
        (port, tls)
    }

    /// Binds DTMF `sequence` to the DTMF event `open_door` on the default account, with the
    /// methods `rfc2833` and `rfc2976` honoured.
    pub(crate) async fn configure_dtmf(&self, sequence: &str, rfc2833: bool, rfc2976: bool) {
        use serde_json::json;
        self.ok("SetDTMFEvent", json!({"DTMFEvent": {"Id": "open_door", "Name": "Open door"}})).await;
        self.ok(
            "SetDTMFTrigger",
            json!({"DTMFTrigger": {"Id": "code", "DTMFSequence": sequence, "DTMFEventId": "open_door"}}),
        )
        .await;
        let config =
            json!({"Id": "door", "Name": "Door", "DTMFTriggerId": ["code"], "RFC2833": rfc2833, "RFC2976": rfc2976});
        self.ok("SetDTMFConfiguration", json!({ "DTMFConfiguration": config })).await;
        let account = json!({"Id": "peer-to-peer", "UserId": "door", "IsDefault": true, "DTMFConfigurationId": "door"});
        self.ok("SetSIPAccount", json!({ "SIPAccount": account })).await;
    }

    /// The first call in `state`, with its media counters from the control API (waits up to
    /// 20 s: a bound for a loaded machine, not a timing claim).
    pub(crate) async fn call_in(&self, state: &str) -> (Value, Value) {
        self.call_where(state, |_| true).await
    }

    /// The first call in `state` whose media counters pass `ready`, with them (waits up to 20 s).
    async fn call_where(&self, state: &str, ready: impl Fn(&Value) -> bool) -> (Value, Value) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let mut last = Value::Null;
        while std::time::Instant::now() < deadline {
            let s = self.state().await;
            let call = s["Calls"].as_array().and_then(|c| c.iter().find(|c| c["CallState"] == state)).cloned();
            if let Some(call) = call {
                let media = s["Media"][call["CallId"].as_str().unwrap_or_default()].clone();
                if ready(&media) {
                    return (call, media);
                }
            }
            last = s;
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "no call became {state} (with the media asked for): {}",
            serde_json::json!({"Calls": last["Calls"], "Media": last["Media"]})
        );
    }

    /// The first Active call once it has sent and received more than `packets` RTP packets:
    /// waits for the media, not for a time.
    pub(crate) async fn call_with_media(&self, packets: u64) -> (Value, Value) {
        let both_ways = |m: &Value| m["RtpSent"].as_u64() > Some(packets) && m["RtpReceived"].as_u64() > Some(packets);
        self.call_where("Active", both_ways).await
    }
}

/// Asserts `a` is a fault with the given code and subcode (`None` for InvalidArgs) in JSON.
pub(crate) fn assert_fault(a: &Answer, code: &str, subcode: Option<&str>) {
    assert_eq!(a.status, 400, "expected a fault, got {}: {}", a.status, a.body);
    let v = a.json();
    assert_eq!(v["FaultCode"], code, "{}", a.body);
    assert_eq!(v["FaultSubCode"].as_str(), subcode, "{}", a.body);
    let env = if code == "ter:ActionNotSupported" || code == "ter:Action" { "env:Receiver" } else { "env:Sender" };
    assert_eq!(v["Fault"], env, "{}", a.body);
    assert!(v["FaultReason"].is_string(), "{}", a.body);
}

/// A running audio upload.
pub(crate) struct Upload {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<Result<u16, reqwest::Error>>,
}

impl Upload {
    /// Ends the upload cleanly and returns the device's HTTP status.
    pub(crate) async fn finish(mut self) -> u16 {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.handle).await.expect("upload task").expect("upload answer")
    }
}

/// The client side of the event WebSocket.
pub(crate) struct EventSocket {
    pub(crate) ws: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

impl EventSocket {
    /// The next text message as JSON (fails after 10 s).
    pub(crate) async fn next_json(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(std::time::Duration::from_secs(10), self.ws.next())
                .await
                .expect("a WebSocket message within 10 s")
                .expect("open socket")
                .expect("message");
            if let Message::Text(t) = msg {
                return serde_json::from_str(&t).expect("JSON message");
            }
        }
    }

    /// The next notification as `topic-suffix=value` (`State=Calling`, `StateChange=Initiated`,
    /// `Port=1`), checking the notification's shape on the way.
    pub(crate) async fn next_event(&mut self) -> String {
        let v = self.next_json().await;
        assert_eq!(v["method"], "events:notify", "{v}");
        let n = &v["params"]["notification"];
        assert!(n["timestamp"].is_u64(), "{v}");
        let topic = n["topic"].as_str().expect("topic");
        let data = n["message"]["data"].as_object().expect("data");
        let first = data.values().next().and_then(Value::as_str).unwrap_or_default();
        format!("{}={first}", topic.rsplit('/').next().unwrap_or(topic))
    }

    /// The next `n` notifications.
    pub(crate) async fn next_events(&mut self, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(self.next_event().await);
        }
        out
    }
}

/// Whether `host:port` answers an OPTIONS over UDP within 20 s (sent again every 100 ms; a
/// bound for a loaded machine).
pub(crate) async fn answers_options(host: &str, port: u16) -> bool {
    let socket = tokio::net::UdpSocket::bind((host, 0)).await.expect("udp");
    let me = socket.local_addr().expect("addr").port();
    let options = format!(
        "OPTIONS sip:door@{host}:{port} SIP/2.0\r\nVia: SIP/2.0/UDP {host}:{me};branch=z9hG4bKup{me}\r\n\
         From: <sip:probe@{host}>;tag=up\r\nTo: <sip:door@{host}>\r\nCall-ID: up-{me}\r\nCSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    );
    let mut buf = [0u8; 4096];
    for _ in 0..200 {
        let _ = socket.send_to(options.as_bytes(), (host, port)).await;
        if let Ok(Ok(n)) = tokio::time::timeout(std::time::Duration::from_millis(100), socket.recv(&mut buf)).await {
            if buf[..n].starts_with(b"SIP/2.0 200") {
                return true;
            }
        }
    }
    false
}

/// The path of sipp scenario `name` under `tests/sipp/`.
pub(crate) fn scenario(name: &str) -> String {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sipp").join(name).to_string_lossy().into_owned()
}

/// Runs one sipp call against `port`; returns whether sipp reported success, and its output.
pub(crate) async fn sipp(port: u16, transport: &str, how: &[&str]) -> (bool, String) {
    sipp_at(&format!("127.0.0.1:{port}"), transport, how).await
}

/// Runs one sipp call against `target` (`host:port`, an address of this machine), sent from the
/// target's own address.
pub(crate) async fn sipp_at(target: &str, transport: &str, how: &[&str]) -> (bool, String) {
    let host = target.rsplit_once(':').map_or(target, |(h, _)| h).to_owned();
    let mut args: Vec<String> = vec![
        target.to_owned(),
        "-i".into(),
        host,
        "-p".into(),
        free_port().to_string(),
        "-m".into(),
        "1".into(),
        "-nostdin".into(),
        "-s".into(),
        "door".into(),
        "-t".into(),
        transport.into(),
        "-timeout".into(),
        "20s".into(),
        "-timeout_error".into(),
    ];
    args.extend(how.iter().map(|s| (*s).to_owned()));
    let out = tokio::task::spawn_blocking(move || {
        Command::new("sipp")
            .args(&args)
            .current_dir(std::env::temp_dir())
            .output()
            .expect("sipp (Debian sip-tester) must be installed")
    })
    .await
    .expect("sipp thread");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Starts a sipp callee on a free port with `how`; returns its port and the running task.
/// Returns once sipp listens (over TCP when `how` has `-t t1`).
pub(crate) async fn callee(how: Vec<String>) -> (u16, tokio::task::JoinHandle<(bool, String)>) {
    let port = free_port();
    let tcp = how.windows(2).any(|w| w[0] == "-t" && w[1] == "t1");
    let task = tokio::spawn(async move {
        let mut args =
            vec!["-i".to_owned(), "127.0.0.1".into(), "-p".into(), port.to_string(), "-m".into(), "1".into()];
        args.extend(["-nostdin".to_owned(), "-timeout".into(), "20s".into(), "-timeout_error".into()]);
        args.extend(how);
        let out = tokio::task::spawn_blocking(move || {
            Command::new("sipp").args(&args).current_dir(std::env::temp_dir()).output().expect("sipp")
        })
        .await
        .expect("sipp thread");
        (
            out.status.success(),
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        )
    });
    wait_listening(port, tcp).await;
    (port, task)
}

/// A SIP port whose next port (where TLS goes) is free too, for UDP and TCP.
pub(crate) fn free_sip_ports() -> u16 {
    loop {
        let port = free_port();
        let next = port.wrapping_add(1);
        if next > 1024
            && std::net::UdpSocket::bind(("127.0.0.1", next)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", next)).is_ok()
        {
            return port;
        }
    }
}

/// Polls `check` until it holds (10 s at most, then panics naming `what`).
pub(crate) async fn wait_for(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{what} never happened");
}

/// The sum of the samples of metric `name` (as exposed, e.g. `doorsim_rtp_packets_total`) whose
/// labels include every `key="value"` of `labels`, in a Prometheus text exposition.
pub(crate) fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            let all = labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            (metric == name && all).then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// Checks an exposition with `promtool check metrics` (Debian's `prometheus` package, installed
/// by scripts/test.sh); panics with promtool's words when it finds a problem.
pub(crate) fn promtool_accepts(text: &str) {
    use std::io::Write;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) is installed");
    child.stdin.take().expect("stdin").write_all(text.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The python of a venv named `name` under the target directory, with the pinned `packages`
/// installed (from PyPI, once: a marker file names what was installed).
pub(crate) fn python_venv(name: &str, packages: &[&str]) -> PathBuf {
    // Tests of one binary run on threads: one of them makes the venv, the others wait for it.
    static MAKING: Mutex<()> = Mutex::new(());
    let _making = MAKING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let python = venv.join("bin/python");
    let ready = venv.join(format!("installed {}", packages.join(" ")));
    if !ready.exists() {
        let made = Command::new("python3").args(["-m", "venv"]).arg(&venv).status().expect("python3 -m venv");
        assert!(made.success(), "python3 -m venv failed (install python3-venv)");
        let pip = Command::new(&python).args(["-m", "pip", "install", "-q"]).args(packages).status().expect("pip");
        assert!(pip.success(), "pip install {packages:?} failed");
        std::fs::write(&ready, "").expect("marker");
    }
    python
}
