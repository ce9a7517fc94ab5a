//! Test harness: starts the real `doorsim` binary on an ephemeral port and talks HTTP to it
//! with a Digest-authenticating client. Each test gets its own device; the process is killed
//! when the handle drops, even if the test fails.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use digest_auth::{AuthContext, HttpMethod, WwwAuthenticateHeader};
use serde_json::Value;

/// A running doorsim process.
pub(crate) struct Doorsim {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub(crate) base: String,
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
    /// Starts `doorsim --http 127.0.0.1:0` with extra `args` and waits for its banner.
    pub(crate) fn start(args: &[&str]) -> Doorsim {
        let mut child = Command::new(env!("CARGO_BIN_EXE_doorsim"))
            .args(["--http", "127.0.0.1:0", "--log", "warn"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn doorsim");
        let stdout = child.stdout.take().expect("stdout");
        let mut base = None;
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let line = line.expect("banner line");
            if let Some(rest) = line.split("listening on ").nth(1) {
                base = Some(format!("http://{}", rest.trim_end_matches(')')));
                break;
            }
        }
        let base = base.expect("doorsim printed no listening address");
        // Keep reading the rest of stdout so the device never writes into a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Doorsim { child, base, client: reqwest::Client::new(), prompt: Mutex::new(None) }
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

    /// `POST /vapix/call` with `{"axcall:<command>": params}`.
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
