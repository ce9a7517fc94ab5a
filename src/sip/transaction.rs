//! The transaction layer (RFC 3261 section 17, with RFC 6026's Accepted state), sans I/O: it
//! sends through a [`Wire`] and keeps its timers on a [`DelayQueue`], so it runs the same on
//! sockets and in unit tests under paused time.
//!
//! - Server transactions, keyed by the top Via's branch and sent-by and the method (ACK matches
//!   its INVITE), keep the last response, provisional ones included, and answer a retransmitted
//!   request with it. A final non-2xx answer to an INVITE is retransmitted until the ACK (Timer
//!   G, given up at Timer H); a 2xx until the user agent reports the ACK (RFC 3261 13.3.1.4),
//!   when [`Outcome::NoAck`] ends the dialog. Completed transactions linger to absorb
//!   retransmissions (Timers I, J and L) and are then forgotten.
//! - Client transactions retransmit over UDP (Timer A for INVITE, E for the others, from T1
//!   doubling to T2), give up with a 408 delivered to the user agent (Timers B and F), ACK a
//!   final non-2xx answer to an INVITE themselves, and absorb retransmitted final answers while
//!   they linger (Timers D and K).

use std::collections::HashMap;
use std::future::poll_fn;
use std::time::Duration;

use tokio_util::time::{delay_queue, DelayQueue};

use super::headers::{CSeq, Via};
use super::message::{SipMessage, StartLine};
use super::transport::{Path, SendError, Wire};

/// RFC 3261 timer T1 (round-trip estimate), T2 (longest retransmission interval) and T4 (how
/// long a message lingers in the network).
pub const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
const T4: Duration = Duration::from_secs(5);
/// Transactions of each side at most; a request beyond this gets a stateless 503. Finished
/// transactions linger 64·T1 (32 s) by the RFC, two per call over UDP (the INVITE's and the
/// BYE's): this bound lets a device take about 8,000 calls a second over UDP for as long as a
/// load test runs (sipp's own UAS manages about that on the 2-core machine). A lingering
/// transaction costs about 600 bytes (measured: 100,000 took 57 MB of RSS), an acknowledged
/// INVITE's less as it drops its response, so a flood can take about 300 MB at most.
const MAX_TRANSACTIONS: usize = 1 << 19;

/// The one log line of a transaction: its final answer (`side` is `server` or `client`).
fn log_transaction(side: &'static str, key: &Key, status: u16, path: &Path) {
    tracing::info!(side, method = key.method, status, transport = path.kind.via(), peer = %path.peer, "SIP transaction");
}

/// A transaction's identity: its branch (with the sent-by for server transactions) and method.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    id: String,
    method: String,
}

impl Key {
    /// The key of a request, or of a response to it (RFC 3261 17.1.3 and 17.2.3); ACK takes
    /// INVITE's method, so it finds the INVITE it acknowledges. Requests without an RFC 3261
    /// branch are keyed by the fields RFC 2543 matched on.
    pub fn of(message: &SipMessage, server: bool) -> Option<Key> {
        let via = Via::parse(message.header("Via")?).ok()?;
        let cseq = CSeq::parse(message.header("CSeq")?).ok()?;
        let method = if cseq.method == "ACK" { "INVITE".to_owned() } else { cseq.method };
        let id = match via.branch() {
            Some(b) if b.starts_with(super::headers::MAGIC_COOKIE) => {
                if server {
                    format!("{b}|{}", via.sent_by())
                } else {
                    b.to_owned()
                }
            }
            _ => format!(
                "2543|{}|{}|{}|{}",
                message.header("Call-ID").unwrap_or_default(),
                cseq.number,
                message.header("From").unwrap_or_default(),
                via
            ),
        };
        Some(Key { id, method })
    }

    /// The key of the INVITE that a CANCEL (same branch) cancels.
    pub fn invite_of_cancel(cancel: &SipMessage) -> Option<Key> {
        Key::of(cancel, true).map(|k| Key { method: "INVITE".into(), ..k })
    }
}

/// What the user agent must act on, from a timer.
#[derive(Debug)]
pub enum Outcome {
    /// A client transaction ended without a final answer: this is the 408 the user agent
    /// treats as its answer (Timers B and F).
    TimedOut(SipMessage),
    /// Our 2xx to the INVITE of this server transaction was never acknowledged (UDP).
    NoAck(Key),
}

/// How a received request matched.
#[derive(Debug, PartialEq, Eq)]
pub enum Matched {
    /// A new request: the user agent answers it through [`Transactions::respond`] with this key.
    New(Key),
    /// An ACK that belongs to no transaction (the ACK of a 2xx): for the dialog.
    Ack,
    /// A retransmission or an ACK of a non-2xx answer: handled here.
    Absorbed,
    /// Too many transactions: answer statelessly with 503.
    Overloaded,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServerState {
    Proceeding,
    /// Final non-2xx sent; for INVITE waiting for the ACK.
    Completed,
    /// 2xx to INVITE sent (RFC 6026); waiting for the user agent to report the ACK.
    Accepted,
    /// ACK received (or lingering before being forgotten).
    Confirmed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientState {
    Calling,
    Proceeding,
    Completed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Timer {
    /// A, E (client) or G and the 2xx retransmission (server).
    Retransmit,
    /// B, F (client) or H, L (server): the transaction's life ends.
    Timeout,
    /// D, K (client) or I, J (server): the end of lingering.
    Linger,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

#[derive(Debug, Default)]
struct Timers {
    retransmit: Option<delay_queue::Key>,
    timeout: Option<delay_queue::Key>,
    linger: Option<delay_queue::Key>,
    interval: Duration,
}

#[derive(Debug)]
struct Server {
    path: Path,
    invite: bool,
    state: ServerState,
    /// The last response, serialized, for retransmissions (dropped once acknowledged).
    last: Option<Box<[u8]>>,
    timers: Timers,
}

#[derive(Debug)]
struct Client {
    path: Path,
    request: SipMessage,
    state: ClientState,
    timers: Timers,
}

/// Every transaction of one user agent.
#[derive(Debug)]
pub struct Transactions<W> {
    wire: W,
    servers: HashMap<Key, Server>,
    clients: HashMap<Key, Client>,
    timers: DelayQueue<(Side, Key, Timer)>,
}

impl<W: Wire> Transactions<W> {
    /// No transactions, sending through `wire`.
    pub fn new(wire: W) -> Self {
        Self { wire, servers: HashMap::new(), clients: HashMap::new(), timers: DelayQueue::new() }
    }

    /// The wire messages go out on.
    pub fn wire(&self) -> &W {
        &self.wire
    }

    fn schedule(&mut self, side: Side, key: &Key, timer: Timer, after: Duration) -> delay_queue::Key {
        self.timers.insert((side, key.clone(), timer), after)
    }

    fn cancel(&mut self, slot: Option<delay_queue::Key>) {
        if let Some(k) = slot {
            self.timers.try_remove(&k);
        }
    }

    fn forget_timers(&mut self, timers: Timers) {
        for slot in [timers.retransmit, timers.timeout, timers.linger] {
            self.cancel(slot);
        }
    }

    // ----- server side -----

    /// Matches a received request against the server transactions.
    pub fn on_request(&mut self, path: Path, request: &SipMessage) -> Matched {
        let Some(key) = Key::of(request, true) else { return Matched::Absorbed };
        let is_ack = request.method() == "ACK";
        if let Some(server) = self.servers.get_mut(&key) {
            if is_ack {
                if server.state != ServerState::Completed {
                    return Matched::Ack; // an RFC 2543 peer's ACK of our 2xx reuses the branch
                }
                server.state = ServerState::Confirmed;
                server.last = None; // acknowledged: nothing is sent again
                let retransmit = server.timers.retransmit.take();
                let timeout = server.timers.timeout.take();
                let reliable = server.path.kind.reliable();
                self.cancel(retransmit);
                self.cancel(timeout);
                self.linger(Side::Server, &key, if reliable { Duration::ZERO } else { T4 });
                return Matched::Absorbed;
            }
            if let Some(last) = &server.last {
                let _ = self.wire.send_bytes(&server.path, last);
            }
            return Matched::Absorbed;
        }
        if is_ack {
            return Matched::Ack;
        }
        if self.servers.len() >= MAX_TRANSACTIONS {
            return Matched::Overloaded;
        }
        let invite = key.method == "INVITE";
        let server = Server { path, invite, state: ServerState::Proceeding, last: None, timers: Timers::default() };
        self.servers.insert(key.clone(), server);
        Matched::New(key)
    }

    /// Sends `response` in server transaction `key` and keeps it for retransmissions.
    pub fn respond(&mut self, key: &Key, response: SipMessage) {
        let Some(server) = self.servers.get_mut(key) else { return };
        let code = response.code().unwrap_or(500);
        // Kept serialized: one allocation of the exact size, for as long as it lingers.
        let bytes = response.to_bytes().into_boxed_slice();
        let _ = self.wire.send_bytes(&server.path, &bytes);
        server.last = Some(bytes);
        if code < 200 || server.state != ServerState::Proceeding {
            return;
        }
        log_transaction("server", key, code, &server.path);
        let reliable = server.path.kind.reliable();
        if !server.invite {
            server.state = ServerState::Completed;
            // Timer J: absorb retransmitted requests for 64·T1 over UDP.
            return self.linger(Side::Server, key, if reliable { Duration::ZERO } else { T1 * 64 });
        }
        // A 2xx is retransmitted until the ACK (RFC 6026 Accepted, Timer L), a failure until
        // its ACK (Completed, Timers G and H); both over UDP only, both for at most 64·T1.
        server.state = if code < 300 { ServerState::Accepted } else { ServerState::Completed };
        server.timers.interval = T1;
        if !reliable {
            server.timers.retransmit = Some(self.timers.insert((Side::Server, key.clone(), Timer::Retransmit), T1));
        }
        server.timers.timeout = Some(self.timers.insert((Side::Server, key.clone(), Timer::Timeout), T1 * 64));
    }

    /// The ACK of our 2xx to INVITE `key` arrived: stop retransmitting the 2xx.
    pub fn acknowledged(&mut self, key: &Key) {
        let Some(server) = self.servers.get_mut(key) else { return };
        if server.state == ServerState::Accepted {
            server.state = ServerState::Confirmed;
            server.last = None; // acknowledged: retransmitted INVITEs are absorbed silently
            let retransmit = server.timers.retransmit.take();
            self.cancel(retransmit);
        }
    }

    /// Forgets server transaction `key` at once (a request the user agent answered another way).
    pub fn forget(&mut self, key: &Key) {
        if let Some(s) = self.servers.remove(key) {
            self.forget_timers(s.timers);
        }
    }

    /// The last response sent in server transaction `key`, serialized, until it is acknowledged.
    pub fn last_response(&self, key: &Key) -> Option<&[u8]> {
        self.servers.get(key)?.last.as_deref()
    }

    /// Whether server transaction `key` exists (lingering ones included).
    pub fn has_server(&self, key: &Key) -> bool {
        self.servers.contains_key(key)
    }

    /// Whether server transaction `key` still waits for its final answer.
    pub fn proceeding(&self, key: &Key) -> bool {
        self.servers.get(key).is_some_and(|s| s.state == ServerState::Proceeding)
    }

    // ----- client side -----

    /// Sends `request` on `path` in a new client transaction. An error means the transport
    /// refused it: the user agent treats that as a 503 (RFC 3261 8.1.3.1).
    pub fn request(&mut self, path: Path, request: SipMessage) -> Result<Key, SendError> {
        let key = Key::of(&request, false).ok_or(SendError::Refused)?;
        if self.clients.len() >= MAX_TRANSACTIONS {
            return Err(SendError::Refused);
        }
        self.wire.send(&path, &request)?;
        let mut timers = Timers { interval: T1, ..Timers::default() };
        if !path.kind.reliable() {
            timers.retransmit = Some(self.schedule(Side::Client, &key, Timer::Retransmit, T1));
        }
        timers.timeout = Some(self.schedule(Side::Client, &key, Timer::Timeout, T1 * 64));
        self.clients.insert(key.clone(), Client { path, request, state: ClientState::Calling, timers });
        Ok(key)
    }

    /// Matches a response against the client transactions: `Some` when the user agent should
    /// see it (the first provisional and final answers, and 2xx retransmissions of an INVITE,
    /// whose transaction is already gone), `None` when it was absorbed.
    pub fn on_response(&mut self, response: &SipMessage) -> Option<()> {
        let code = response.code()?;
        let key = Key::of(response, false)?;
        let Some(client) = self.clients.get_mut(&key) else {
            // A 2xx retransmission of an INVITE: the dialog ACKs it again.
            return (key.method == "INVITE" && (200..300).contains(&code)).then_some(());
        };
        let invite = key.method == "INVITE";
        if client.state == ClientState::Completed {
            if invite && code >= 300 {
                let ack = ack_of_failure(&client.request, response);
                let _ = self.wire.send(&client.path, &ack);
            }
            return None;
        }
        if code < 200 {
            client.state = ClientState::Proceeding;
            if invite {
                let retransmit = client.timers.retransmit.take(); // Timer A stops
                self.cancel(retransmit);
            } else {
                client.timers.interval = T2; // RFC 3261 17.1.2.2
            }
            return Some(());
        }
        log_transaction("client", &key, code, &client.path);
        let reliable = client.path.kind.reliable();
        let retransmit = client.timers.retransmit.take();
        let timeout = client.timers.timeout.take();
        if invite && code < 300 {
            // The 2xx ends an INVITE client transaction; the dialog ACKs it (RFC 3261 17.1.1.2).
            if let Some(c) = self.clients.remove(&key) {
                self.forget_timers(c.timers);
            }
            self.cancel(retransmit);
            self.cancel(timeout);
            return Some(());
        }
        client.state = ClientState::Completed;
        let linger = if invite {
            let ack = ack_of_failure(&client.request, response);
            let _ = self.wire.send(&client.path, &ack);
            if reliable {
                Duration::ZERO
            } else {
                T1 * 64 // Timer D: at least 32 s
            }
        } else if reliable {
            Duration::ZERO
        } else {
            T4 // Timer K
        };
        self.cancel(retransmit);
        self.cancel(timeout);
        self.linger(Side::Client, &key, linger);
        Some(())
    }

    /// Client transactions in progress.
    pub fn client_count(&self) -> usize {
        self.clients.len()
    }

    /// Server transactions remembered.
    pub fn server_count(&self) -> usize {
        self.servers.len()
    }

    fn linger(&mut self, side: Side, key: &Key, after: Duration) {
        if after.is_zero() {
            let timers = match side {
                Side::Server => self.servers.remove(key).map(|s| s.timers),
                Side::Client => self.clients.remove(key).map(|c| c.timers),
            };
            if let Some(t) = timers {
                self.forget_timers(t);
            }
            return;
        }
        let slot = self.schedule(side, key, Timer::Linger, after);
        let timers = match side {
            Side::Server => self.servers.get_mut(key).map(|s| &mut s.timers),
            Side::Client => self.clients.get_mut(key).map(|c| &mut c.timers),
        };
        match timers {
            Some(t) => t.linger = Some(slot),
            None => self.cancel(Some(slot)),
        }
    }

    // ----- timers -----

    /// The next timer outcome the user agent must act on; retransmissions happen inside.
    /// Cancel-safe: a timer is taken and handled within one poll. Pending while no timer runs.
    pub async fn next_outcome(&mut self) -> Outcome {
        loop {
            match poll_fn(|cx| self.timers.poll_expired(cx)).await {
                Some(expired) => {
                    let (side, key, timer) = expired.into_inner();
                    if let Some(outcome) = self.fire(side, &key, timer) {
                        return outcome;
                    }
                }
                None => std::future::pending::<()>().await,
            }
        }
    }

    fn fire(&mut self, side: Side, key: &Key, timer: Timer) -> Option<Outcome> {
        let outcome = match side {
            Side::Client => self.fire_client(key, timer),
            Side::Server => self.fire_server(key, timer),
        };
        self.shrink_when_sparse();
        outcome
    }

    /// Gives the memory of a burst back once it has lingered out: maps and the timer queue
    /// otherwise keep the capacity of their fullest moment. Amortised O(1): a map shrinks only
    /// after it emptied to an eighth of its capacity.
    fn shrink_when_sparse(&mut self) {
        fn sparse<K, V>(map: &HashMap<K, V>) -> bool {
            map.capacity() > 1024 && map.len() < map.capacity() / 8
        }
        if sparse(&self.servers) {
            self.servers.shrink_to(self.servers.len() * 2);
        }
        if sparse(&self.clients) {
            self.clients.shrink_to(self.clients.len() * 2);
        }
        if self.timers.capacity() > 4096 && self.timers.len() < self.timers.capacity() / 8 {
            self.timers.shrink_to_fit();
        }
    }

    fn fire_client(&mut self, key: &Key, timer: Timer) -> Option<Outcome> {
        let client = self.clients.get_mut(key)?;
        match timer {
            Timer::Retransmit => {
                let cap = if key.method == "INVITE" { Duration::MAX } else { T2 };
                let request = client.request.to_bytes();
                let again = Resend { side: Side::Client, key, path: &client.path, message: Some(&request), cap };
                again.run(&self.wire, &mut self.timers, &mut client.timers);
                None
            }
            Timer::Timeout => {
                client.timers.timeout = None;
                let c = self.clients.remove(key)?;
                log_transaction("client", key, 408, &c.path); // no answer: the local 408
                let timed_out = c.request.response(408, "Request Timeout", None);
                self.forget_timers(c.timers);
                Some(Outcome::TimedOut(timed_out))
            }
            Timer::Linger => {
                client.timers.linger = None;
                if let Some(c) = self.clients.remove(key) {
                    self.forget_timers(c.timers);
                }
                None
            }
        }
    }

    fn fire_server(&mut self, key: &Key, timer: Timer) -> Option<Outcome> {
        let server = self.servers.get_mut(key)?;
        match timer {
            Timer::Retransmit => {
                let again =
                    Resend { side: Side::Server, key, path: &server.path, message: server.last.as_deref(), cap: T2 };
                again.run(&self.wire, &mut self.timers, &mut server.timers);
                None
            }
            Timer::Timeout => {
                server.timers.timeout = None;
                let unacknowledged = server.state == ServerState::Accepted && !server.path.kind.reliable();
                if let Some(s) = self.servers.remove(key) {
                    self.forget_timers(s.timers);
                }
                unacknowledged.then(|| Outcome::NoAck(key.clone()))
            }
            Timer::Linger => {
                server.timers.linger = None;
                if let Some(s) = self.servers.remove(key) {
                    self.forget_timers(s.timers);
                }
                None
            }
        }
    }
}

/// A retransmission that is due: the message goes out again and the next one is scheduled at
/// twice the interval, up to `cap`.
struct Resend<'a> {
    side: Side,
    key: &'a Key,
    path: &'a Path,
    message: Option<&'a [u8]>,
    cap: Duration,
}

impl Resend<'_> {
    fn run<W: Wire>(self, wire: &W, queue: &mut DelayQueue<(Side, Key, Timer)>, timers: &mut Timers) {
        if let Some(message) = self.message {
            let _ = wire.send_bytes(self.path, message);
        }
        timers.interval = (timers.interval * 2).min(self.cap);
        timers.retransmit = Some(queue.insert((self.side, self.key.clone(), Timer::Retransmit), timers.interval));
    }
}

/// The ACK a client INVITE transaction sends for a final non-2xx answer (RFC 3261 17.1.1.3):
/// the INVITE's Request-URI, top Via, From, Call-ID and Route, the answer's To, CSeq ACK.
pub fn ack_of_failure(invite: &SipMessage, response: &SipMessage) -> SipMessage {
    let uri = match &invite.start {
        StartLine::Request { uri, .. } => uri.clone(),
        StartLine::Response { .. } => String::new(),
    };
    let number = invite.cseq().map_or(1, |(n, _)| n);
    let mut headers = Vec::new();
    if let Some(via) = invite.header("Via") {
        headers.push(("Via".to_owned(), via.to_owned()));
    }
    headers.push(("Max-Forwards".to_owned(), "70".to_owned()));
    for name in ["From", "Call-ID"] {
        if let Some(v) = invite.header(name) {
            headers.push((name.to_owned(), v.to_owned()));
        }
    }
    if let Some(to) = response.header("To") {
        headers.push(("To".to_owned(), to.to_owned()));
    }
    headers.push(("CSeq".to_owned(), CSeq::new(number, "ACK").to_string()));
    headers.extend(invite.headers.iter().filter(|(n, _)| n == "Route").cloned());
    SipMessage { start: StartLine::Request { method: "ACK".into(), uri }, headers, body: bytes::Bytes::new() }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::sip::transport::Kind;

    /// Records what would go on the wire, with the (paused) time it was sent.
    #[derive(Debug, Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<(tokio::time::Instant, String)>>>);

    impl Wire for Recorder {
        fn send_bytes(&self, _: &Path, bytes: &[u8]) -> Result<(), SendError> {
            let line = String::from_utf8_lossy(bytes).lines().next().unwrap_or("").to_owned();
            self.0.lock().expect("valid in the test").push((tokio::time::Instant::now(), line));
            Ok(())
        }
    }

    impl Recorder {
        fn lines(&self) -> Vec<String> {
            self.0.lock().expect("valid in the test").iter().map(|(_, l)| l.clone()).collect()
        }
        fn offsets(&self, start: tokio::time::Instant) -> Vec<u64> {
            self.0.lock().expect("valid in the test").iter().map(|(t, _)| (*t - start).as_millis() as u64).collect()
        }
    }

    fn udp() -> Path {
        Path { kind: Kind::Udp, peer: SocketAddr::from(([127, 0, 0, 1], 5070)) }
    }

    fn tcp() -> Path {
        Path { kind: Kind::Tcp, ..udp() }
    }

    fn request(method: &str, branch: &str) -> SipMessage {
        let text = format!(
            "{method} sip:door@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK{branch}\r\n\
             From: <sip:a@h>;tag=1\r\nTo: <sip:door@h>\r\nCall-ID: c1\r\nCSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
        );
        SipMessage::parse(text.as_bytes()).expect("valid in the test")
    }

    /// Runs the timers until `until` has passed (paused time advances by itself).
    async fn run_until(t: &mut Transactions<Recorder>, until: Duration) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        let deadline = tokio::time::Instant::now() + until;
        while let Ok(o) = tokio::time::timeout_at(deadline, t.next_outcome()).await {
            outcomes.push(o);
        }
        outcomes
    }

    #[tokio::test(start_paused = true)]
    async fn invite_client_retransmits_on_timer_a_and_gives_up_at_timer_b() {
        let wire = Recorder::default();
        let mut t = Transactions::new(wire.clone());
        let start = tokio::time::Instant::now();
        t.request(udp(), request("INVITE", "a")).expect("valid in the test");
        let outcomes = run_until(&mut t, Duration::from_secs(40)).await;
        // T1, doubling without a cap: 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s; Timer B at 32 s.
        assert_eq!(wire.offsets(start), vec![0, 500, 1500, 3500, 7500, 15500, 31500]);
        assert!(matches!(&outcomes[..], [Outcome::TimedOut(r)] if r.code() == Some(408) && r.method() == "INVITE"));
        assert_eq!(t.client_count(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn non_invite_client_caps_at_t2_and_a_provisional_answer_moves_to_t2() {
        let wire = Recorder::default();
        let mut t = Transactions::new(wire.clone());
        let start = tokio::time::Instant::now();
        t.request(udp(), request("BYE", "b")).expect("valid in the test");
        let outcomes = run_until(&mut t, Duration::from_secs(13)).await;
        assert!(outcomes.is_empty());
        assert_eq!(wire.offsets(start), vec![0, 500, 1500, 3500, 7500, 11500]);
        let trying = request("BYE", "b").response(100, "Trying", None);
        assert_eq!(t.on_response(&trying), Some(()));
        let outcomes = run_until(&mut t, Duration::from_secs(25)).await;
        assert!(matches!(&outcomes[..], [Outcome::TimedOut(r)] if r.method() == "BYE"), "Timer F at 32 s");
    }

    #[tokio::test(start_paused = true)]
    async fn reliable_transports_never_retransmit_but_still_time_out() {
        let wire = Recorder::default();
        let mut t = Transactions::new(wire.clone());
        t.request(tcp(), request("REGISTER", "r")).expect("valid in the test");
        let outcomes = run_until(&mut t, Duration::from_secs(33)).await;
        assert_eq!(wire.lines().len(), 1);
        assert_eq!(outcomes.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_final_answer_is_delivered_once_and_its_retransmissions_absorbed() {
        let wire = Recorder::default();
        let mut t = Transactions::new(wire.clone());
        let invite = request("INVITE", "c");
        t.request(udp(), invite.clone()).expect("valid in the test");
        let busy = invite.response(486, "Busy Here", Some("x"));
        assert_eq!(t.on_response(&busy), Some(()));
        assert_eq!(t.on_response(&busy), None, "a retransmitted final answer is absorbed");
        let lines = wire.lines();
        assert_eq!(lines.iter().filter(|l| l.starts_with("ACK")).count(), 2, "each 486 is ACKed: {lines:?}");
        assert!(run_until(&mut t, Duration::from_secs(40)).await.is_empty(), "no Timer B after an answer");
        assert_eq!(t.client_count(), 0, "Timer D ends the transaction");
        // A 2xx with no transaction left still reaches the dialog (it ACKs again).
        assert_eq!(t.on_response(&invite.response(200, "OK", Some("x"))), Some(()));
    }

    #[tokio::test(start_paused = true)]
    async fn a_retransmitted_request_gets_the_last_response_provisional_included() {
        let wire = Recorder::default();
        let mut t = Transactions::new(wire.clone());
        let invite = request("INVITE", "d");
        let Matched::New(key) = t.on_request(udp(), &invite) else { panic!("new") };
        t.respond(&key, invite.response(180, "Ringing", Some("x")));
        assert_eq!(t.on_request(udp(), &invite), Matched::Absorbed);
        assert_eq!(wire.lines(), vec!["SIP/2.0 180 Ringing", "SIP/2.0 180 Ringing"]);
        t.respond(&key, invite.response(200, "OK", Some("x")));
        assert_eq!(t.on_request(udp(), &invite), Matched::Absorbed);
        assert_eq!(wire.lines().last().map(String::as_str), Some("SIP/2.0 200 OK"));
        // The CANCEL of the same branch is its own transaction and finds the INVITE.
        let cancel = request("CANCEL", "d");
        assert!(matches!(t.on_request(udp(), &cancel), Matched::New(_)));
        assert_eq!(Key::invite_of_cancel(&cancel), Some(key));
    }

    #[tokio::test(start_paused = true)]
    async fn an_unacknowledged_2xx_is_retransmitted_until_64_t1_then_reported() {
        let wire = Recorder::default();
        let mut t = Transactions::new(wire.clone());
        let invite = request("INVITE", "e");
        let Matched::New(key) = t.on_request(udp(), &invite) else { panic!("new") };
        let start = tokio::time::Instant::now();
        t.respond(&key, invite.response(200, "OK", Some("x")));
        let outcomes = run_until(&mut t, Duration::from_secs(40)).await;
        assert_eq!(wire.offsets(start), vec![0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
        assert!(matches!(&outcomes[..], [Outcome::NoAck(k)] if *k == key));
        assert_eq!(t.server_count(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_acknowledged_2xx_stops_and_the_transaction_is_forgotten_quietly() {
        let wire = Recorder::default();
        let mut t = Transactions::new(wire.clone());
        let invite = request("INVITE", "f");
        let Matched::New(key) = t.on_request(udp(), &invite) else { panic!("new") };
        t.respond(&key, invite.response(200, "OK", Some("x")));
        assert_eq!(t.on_request(udp(), &request("ACK", "new-branch")), Matched::Ack);
        t.acknowledged(&key);
        assert!(run_until(&mut t, Duration::from_secs(40)).await.is_empty());
        assert_eq!(wire.lines().len(), 1);
        assert_eq!(t.server_count(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_answer_is_retransmitted_on_timer_g_until_its_ack() {
        let wire = Recorder::default();
        let mut t = Transactions::new(wire.clone());
        let invite = request("INVITE", "g");
        let Matched::New(key) = t.on_request(udp(), &invite) else { panic!("new") };
        t.respond(&key, invite.response(486, "Busy Here", Some("x")));
        assert!(run_until(&mut t, Duration::from_millis(1600)).await.is_empty());
        assert_eq!(t.on_request(udp(), &request("ACK", "g")), Matched::Absorbed, "the ACK shares the branch");
        let sent = wire.lines().len();
        assert_eq!(sent, 3, "sent at 0, 0.5 and 1.5 s");
        assert!(run_until(&mut t, Duration::from_secs(40)).await.is_empty());
        assert_eq!(wire.lines().len(), sent, "nothing after the ACK");
        assert_eq!(t.server_count(), 0, "Timer I ends it");
    }

    #[tokio::test(start_paused = true)]
    async fn a_non_invite_answer_lingers_for_timer_j_over_udp_only() {
        let wire = Recorder::default();
        let mut t = Transactions::new(wire.clone());
        let bye = request("BYE", "h");
        let Matched::New(key) = t.on_request(udp(), &bye) else { panic!("new") };
        t.respond(&key, bye.response(200, "OK", None));
        assert_eq!(t.on_request(udp(), &bye), Matched::Absorbed);
        assert_eq!(wire.lines().len(), 2, "the retransmitted BYE got the cached 200");
        run_until(&mut t, Duration::from_secs(33)).await;
        assert!(matches!(t.on_request(udp(), &bye), Matched::New(_)), "forgotten after Timer J");
        let mut t = Transactions::new(Recorder::default());
        let Matched::New(key) = t.on_request(tcp(), &bye) else { panic!("new") };
        t.respond(&key, bye.response(200, "OK", None));
        assert_eq!(t.server_count(), 0, "Timer J is zero on reliable transports");
    }
}
