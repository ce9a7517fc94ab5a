//! The Axis event WebSocket: `GET /axis-cgi/wssession.cgi` hands out a session token, and
//! `/vapix/ws-data-stream?sources=events&wssession=TOKEN` upgrades to a WebSocket on which the
//! client sends `events:configure` with topic filters and the device answers `data:{}` before
//! any `events:notify`. Current property values are sent first, then live events.
//!
//! A slow client only slows its own connection: its messages wait in a bounded queue that
//! drops the oldest when full, and every drop is counted in the bus's drop counter.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use indexmap::IndexMap;
use rand::RngCore;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::Notify;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::events::{Event, EventBus, Subscription};
use crate::reply::{plain, Body};

/// Session tokens kept at once; the oldest is forgotten beyond this.
const MAX_SESSIONS: usize = 64;
/// How long a token may wait for its upgrade.
const SESSION_TTL: Duration = Duration::from_secs(60);
/// Largest message a client may send.
const MAX_MESSAGE: usize = 64 * 1024;
/// Most topic filters one client may set.
const MAX_FILTERS: usize = 64;

/// The event stream of one device.
#[derive(Debug)]
pub struct EventStream {
    bus: Arc<EventBus>,
    /// Token -> issue time. Held only to add, check or remove a token.
    sessions: Mutex<IndexMap<String, Instant>>,
    shutdown: CancellationToken,
    /// The device's tasks (one per WebSocket client).
    tracker: TaskTracker,
}

impl EventStream {
    /// The event stream over `bus`.
    pub fn new(bus: Arc<EventBus>, shutdown: CancellationToken, tracker: TaskTracker) -> Self {
        Self { bus, sessions: Mutex::default(), shutdown, tracker }
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, IndexMap<String, Instant>> {
        self.sessions.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `GET /axis-cgi/wssession.cgi`: a new single-use session token.
    pub fn new_session(&self) -> Response<Body> {
        let mut raw = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut raw);
        let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let mut sessions = self.sessions();
        sessions.retain(|_, issued| issued.elapsed() < SESSION_TTL);
        if sessions.len() >= MAX_SESSIONS {
            sessions.shift_remove_index(0);
        }
        sessions.insert(token.clone(), Instant::now());
        plain(StatusCode::OK, &token)
    }

    /// Whether `query` carries a valid session token; the token is used up.
    pub fn take_token(&self, query: Option<&str>) -> bool {
        let token =
            query.and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "wssession")).map(|(_, v)| v);
        let Some(token) = token else { return false };
        self.sessions().shift_remove(token.as_ref()).is_some_and(|issued| issued.elapsed() < SESSION_TTL)
    }

    /// `GET /vapix/ws-data-stream?sources=events`: upgrades to the event WebSocket.
    pub fn upgrade(&self, mut req: Request<Incoming>) -> Response<Body> {
        let events = req.uri().query().is_some_and(|q| {
            form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "sources" && v.split(',').any(|s| s == "events"))
        });
        if !events {
            return plain(StatusCode::BAD_REQUEST, "ws-data-stream serves sources=events");
        }
        let headers = req.headers();
        let is_upgrade =
            headers.get(UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        let version_ok = headers.get(SEC_WEBSOCKET_VERSION).is_some_and(|v| v == "13");
        let Some(key) = headers.get(SEC_WEBSOCKET_KEY).filter(|_| is_upgrade && version_ok) else {
            return plain(StatusCode::BAD_REQUEST, "expected a WebSocket upgrade (version 13)");
        };
        let accept = derive_accept_key(key.as_bytes());
        let bus = self.bus.clone();
        let shutdown = self.shutdown.clone();
        self.tracker.spawn(async move {
            match hyper::upgrade::on(&mut req).await {
                Ok(upgraded) => {
                    let config = WebSocketConfig {
                        max_message_size: Some(MAX_MESSAGE),
                        max_frame_size: Some(MAX_MESSAGE),
                        ..Default::default()
                    };
                    let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
                    serve(ws, &bus, shutdown).await;
                }
                Err(e) => tracing::debug!(error = %e, "WebSocket upgrade failed"),
            }
        });
        let mut r = plain(StatusCode::SWITCHING_PROTOCOLS, "");
        let h = r.headers_mut();
        h.insert(UPGRADE, HeaderValue::from_static("websocket"));
        h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
        if let Ok(v) = HeaderValue::from_str(&accept) {
            h.insert(SEC_WEBSOCKET_ACCEPT, v);
        }
        h.remove(hyper::header::CONTENT_TYPE);
        r
    }
}

/// What a client asked for.
enum ClientRequest {
    /// Subscribe with these filters (empty: every topic).
    Configure(Vec<String>),
    /// Not understood: answer with this error.
    Invalid(String, String),
}

/// Reads one client text message.
fn parse_request(text: &str) -> ClientRequest {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return ClientRequest::Invalid(String::new(), "the message is not JSON".into());
    };
    let method = v["method"].as_str().unwrap_or_default().to_owned();
    if method != "events:configure" {
        return ClientRequest::Invalid(method, "unknown method; this stream takes events:configure".into());
    }
    let list = match &v["params"]["eventFilterList"] {
        Value::Array(items) => items,
        Value::Null => return ClientRequest::Configure(Vec::new()),
        _ => return ClientRequest::Invalid(method, "params.eventFilterList must be a list".into()),
    };
    if list.len() > MAX_FILTERS {
        return ClientRequest::Invalid(method, format!("at most {MAX_FILTERS} filters"));
    }
    let filters: Option<Vec<String>> = list.iter().map(|f| f["topicFilter"].as_str().map(str::to_owned)).collect();
    match filters {
        Some(f) => ClientRequest::Configure(f),
        None => ClientRequest::Invalid(method, "each filter needs a topicFilter string".into()),
    }
}

fn notify(event: &Event) -> String {
    json!({"apiVersion": "1.0", "method": "events:notify", "params": {"notification": {
        "topic": event.topic,
        "timestamp": event.timestamp,
        "message": {"source": event.source, "key": {}, "data": event.data},
    }}})
    .to_string()
}

fn selected(filters: &[String], event: &Event) -> bool {
    filters.is_empty() || filters.iter().any(|f| event.matches(f))
}

/// Messages waiting for a slow client, at most; beyond this the oldest is dropped and counted.
const OUTGOING_QUEUE: usize = 256;

/// The messages waiting to be written to one client: bounded, dropping the oldest.
#[derive(Default)]
struct Outgoing {
    queue: Mutex<VecDeque<String>>,
    ready: Notify,
}

impl Outgoing {
    /// Queues `text`; returns whether an older message had to be dropped for it.
    fn push(&self, text: String) -> bool {
        let mut q = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let dropped = q.len() >= OUTGOING_QUEUE && q.pop_front().is_some();
        q.push_back(text);
        drop(q);
        self.ready.notify_one();
        dropped
    }

    fn take(&self) -> VecDeque<String> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }
}

/// Serves one WebSocket until the client leaves or the device stops. Reading (client requests
/// and bus events) never waits for the client: a writer task drains a bounded queue.
async fn serve<S>(ws: WebSocketStream<S>, bus: &EventBus, shutdown: CancellationToken)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut incoming) = ws.split();
    let outgoing = Arc::new(Outgoing::default());
    let writer_queue = outgoing.clone();
    let mut writer = tokio::spawn(async move {
        loop {
            writer_queue.ready.notified().await;
            for text in writer_queue.take() {
                if sink.send(Message::text(text)).await.is_err() {
                    return;
                }
            }
        }
    });
    let send = |text: String| {
        if outgoing.push(text) {
            bus.count_dropped(1);
        }
    };
    let mut subscription: Option<(Vec<String>, Subscription)> = None;
    loop {
        let live = async {
            match subscription.as_mut() {
                Some((_, s)) => s.live.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = &mut writer => break,
            message = incoming.next() => match message {
                Some(Ok(Message::Text(text))) => match parse_request(&text) {
                    ClientRequest::Configure(filters) => {
                        let s = bus.subscribe();
                        send(json!({"apiVersion": "1.0", "method": "events:configure", "data": {}}).to_string());
                        s.current.iter().filter(|e| selected(&filters, e)).for_each(|e| send(notify(e)));
                        subscription = Some((filters, s));
                    }
                    ClientRequest::Invalid(method, message) => {
                        send(json!({"apiVersion": "1.0", "method": method, "error": {"code": 400, "message": message}}).to_string());
                    }
                },
                Some(Ok(Message::Binary(_))) => {
                    send(json!({"apiVersion": "1.0", "method": "", "error": {"code": 400, "message": "binary messages are not understood"}}).to_string());
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {} // ping/pong: answered by the library
            },
            event = live => match event {
                Ok(e) => {
                    if subscription.as_ref().is_some_and(|(filters, _)| selected(filters, &e)) {
                        send(notify(&e));
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    bus.count_dropped(n);
                    tracing::debug!(lost = n, "slow event subscriber lost events");
                }
                Err(RecvError::Closed) => break,
            },
        }
    }
    writer.abort();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages() {
        let ok = r#"{"apiVersion":"1.0","method":"events:configure","params":{"eventFilterList":[{"topicFilter":"tnsaxis:Call/State"}]}}"#;
        assert!(matches!(parse_request(ok), ClientRequest::Configure(f) if f == ["tnsaxis:Call/State"]));
        assert!(
            matches!(parse_request(r#"{"method":"events:configure","params":{}}"#), ClientRequest::Configure(f) if f.is_empty())
        );
        assert!(matches!(parse_request("garbage"), ClientRequest::Invalid(..)));
        assert!(matches!(
            parse_request(r#"{"method":"events:configure","params":{"eventFilterList":[{}]}}"#),
            ClientRequest::Invalid(..)
        ));
        assert!(matches!(parse_request(r#"{"method":"x"}"#), ClientRequest::Invalid(m, _) if m == "x"));
    }
}
