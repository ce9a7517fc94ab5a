//! The SIP user agent of the device: it follows the SIP configuration (listeners start, stop and
//! move with SIPEnabled and SIPPort), answers OPTIONS, and runs incoming calls: INVITE rings
//! (180) as an incoming call of the call engine, is answered (200 with an SDP answer, retransmitted
//! over UDP until the ACK) by the control API or `--auto-answer`, or declined (486) when
//! AllowIncomingCalls is off, the access list refuses (403) or the device is busy; CANCEL, BYE,
//! re-INVITE and INFO are handled. RTP runs once the call is answered.
//!
//! One task owns all dialogs; the engine reaches it through [`Signalling`], which only queues.
//!
//! Not implemented yet (see the closing note of the session): outgoing calls, registration,
//! TLS, client transactions (our BYE is sent once), authentication of incoming requests.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::Rng;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::message::{has_tag, tag_of, SipMessage, StartLine};
use super::sdp::{self, Negotiated};
use super::transport::{self, Inbound, Kind, Reply};
use crate::calls::{CallEngine, CallState, MediaCounters, Reason, Signalling};
use crate::model::sip_configuration::AccessListPolicy;
use crate::model::SipConfiguration;
use crate::rtp::session::{self as rtp, RtpSession};
use crate::store::Store;

/// Methods the device handles.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO";
/// Responses kept to answer retransmitted requests.
const ANSWERED_CACHE: usize = 256;
/// RFC 3261 timer T1 and T2.
const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
/// Queue of engine commands.
const COMMAND_QUEUE: usize = 256;

/// How the user agent runs.
#[derive(Debug, Clone)]
pub struct UaConfig {
    /// Address the SIP and RTP sockets bind to.
    pub bind: IpAddr,
    /// Address written in Contact, Via and SDP (the bind address, or loopback for "any").
    pub address: IpAddr,
    /// Answer incoming calls after this long (already scaled), or never.
    pub auto_answer: Option<Duration>,
}

enum Command {
    Answered(String),
    Ended(String, Reason),
}

/// The engine's handle on the user agent.
#[derive(Debug)]
pub struct SipUa {
    commands: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Command::Answered(id) => write!(f, "Answered({id})"),
            Command::Ended(id, r) => write!(f, "Ended({id}, {r:?})"),
        }
    }
}

impl Signalling for SipUa {
    fn answered(&self, id: &str) {
        if self.commands.try_send(Command::Answered(id.to_owned())).is_err() {
            tracing::warn!(id, "SIP command queue full");
        }
    }

    fn ended(&self, id: &str, reason: Reason) {
        if self.commands.try_send(Command::Ended(id.to_owned(), reason)).is_err() {
            tracing::warn!(id, "SIP command queue full");
        }
    }
}

/// Starts the user agent: it follows the store's SIP configuration for the device's lifetime.
pub fn start(config: UaConfig, store: Arc<Store>, engine: Arc<CallEngine>, shutdown: CancellationToken) -> Arc<SipUa> {
    let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
    let ua = Arc::new(SipUa { commands });
    engine.set_signalling(ua.clone());
    let (inbound_tx, inbound_rx) = mpsc::channel(transport::INBOUND_QUEUE);
    tokio::spawn(follow_configuration(config.bind, store.clone(), inbound_tx, shutdown.clone()));
    let agent = Agent { config, store, engine, dialogs: HashMap::new(), answered: VecDeque::new() };
    tokio::spawn(agent.run(inbound_rx, command_rx, shutdown));
    ua
}

/// Runs the listeners the configuration asks for, restarting them when SIPEnabled or SIPPort change.
async fn follow_configuration(
    address: IpAddr,
    store: Arc<Store>,
    inbound: mpsc::Sender<Inbound>,
    shutdown: CancellationToken,
) {
    let mut changes = store.changes();
    let mut running: Option<(u16, CancellationToken)> = None;
    loop {
        let (enabled, port) = store.read(|s| (s.sip_configuration.sip_enabled, s.sip_configuration.sip_port));
        let wanted = enabled.then_some(port);
        if running.as_ref().map(|(p, _)| *p) != wanted {
            if let Some((_, stop)) = running.take() {
                stop.cancel();
            }
            if let Some(port) = wanted {
                let stop = shutdown.child_token();
                match listen(SocketAddr::new(address, port), inbound.clone(), stop.clone()).await {
                    Ok(()) => {
                        tracing::info!(%address, port, "SIP listening on UDP and TCP");
                        running = Some((port, stop));
                    }
                    Err(e) => tracing::error!(%address, port, error = %e, "cannot listen for SIP"),
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = changes.changed() => if changed.is_err() { return },
        }
    }
}

async fn listen(at: SocketAddr, inbound: mpsc::Sender<Inbound>, stop: CancellationToken) -> std::io::Result<()> {
    let udp = Arc::new(UdpSocket::bind(at).await?);
    let tcp = TcpListener::bind(at).await?;
    tokio::spawn(transport::run_udp(udp, inbound.clone(), stop.clone()));
    tokio::spawn(transport::run_tcp(tcp, inbound, stop));
    Ok(())
}

/// Where an incoming call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Ringing,
    Answered,
    Confirmed,
}

/// A 2xx to an INVITE, retransmitted over UDP until its ACK (RFC 3261 13.3.1.4).
#[derive(Debug)]
struct Retransmit {
    response: SipMessage,
    next: Instant,
    interval: Duration,
    give_up: Instant,
}

#[derive(Debug)]
struct Dialog {
    engine_id: String,
    invite: SipMessage,
    reply: Reply,
    local_tag: String,
    phase: Phase,
    negotiated: Negotiated,
    remote_media: SocketAddr,
    local_sdp: String,
    rtp_socket: Option<UdpSocket>,
    rtp: Option<RtpSession>,
    counters: Arc<MediaCounters>,
    our_cseq: u32,
    retransmit: Option<Retransmit>,
}

struct Agent {
    config: UaConfig,
    store: Arc<Store>,
    engine: Arc<CallEngine>,
    /// Dialogs by SIP Call-ID; bounded by the engine's call limit (a refused call gets none).
    dialogs: HashMap<String, Dialog>,
    /// (Call-ID, CSeq, branch) of answered requests and the answer, for retransmissions.
    answered: VecDeque<(String, SipMessage)>,
}

fn random_token() -> String {
    let n: u64 = rand::thread_rng().gen();
    format!("{n:016x}")
}

fn uri_of(name_addr: &str) -> &str {
    match (name_addr.find('<'), name_addr.find('>')) {
        (Some(a), Some(b)) if a < b => &name_addr[a + 1..b],
        _ => name_addr.split(';').next().unwrap_or(name_addr).trim(),
    }
}

/// Whether `caller` is the address-of-record `listed`: scheme, user and host equal (case-
/// insensitively), and the port too when the list entry names one. Parameters are ignored.
fn same_aor(listed: &str, caller: &str) -> bool {
    let parts = |uri: &str| -> (String, Option<String>) {
        let bare = uri.split([';', '?']).next().unwrap_or(uri).to_ascii_lowercase();
        let bare = bare.replacen("sips:", "sip:", 1);
        match bare.rsplit_once(':') {
            Some((head, port)) if !head.ends_with("sip") && port.bytes().all(|b| b.is_ascii_digit()) => {
                (head.to_owned(), Some(port.to_owned()))
            }
            _ => (bare, None),
        }
    };
    let (listed, listed_port) = parts(listed);
    let (caller, caller_port) = parts(caller);
    listed == caller && (listed_port.is_none() || listed_port == caller_port)
}

impl Agent {
    async fn run(
        mut self,
        mut inbound: mpsc::Receiver<Inbound>,
        mut commands: mpsc::Receiver<Command>,
        shutdown: CancellationToken,
    ) {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                Some(message) = inbound.recv() => self.on_message(message).await,
                Some(command) = commands.recv() => self.on_command(command),
                _ = tick.tick() => self.retransmit(),
            }
        }
    }

    fn key(m: &SipMessage) -> String {
        let branch = m
            .header("Via")
            .and_then(|v| v.split(';').find_map(|p| p.trim().strip_prefix("branch=")))
            .unwrap_or_default();
        format!("{}|{}|{}", m.header("Call-ID").unwrap_or_default(), m.header("CSeq").unwrap_or_default(), branch)
    }

    /// Sends a response to `request` and remembers it for retransmissions of the request.
    fn respond(&mut self, request: &SipMessage, reply: &Reply, response: SipMessage) {
        reply.send(&response);
        if self.answered.len() >= ANSWERED_CACHE {
            self.answered.pop_front();
        }
        self.answered.push_back((Self::key(request), response));
    }

    async fn on_message(&mut self, Inbound { message, reply, .. }: Inbound) {
        let StartLine::Request { method, .. } = &message.start else {
            return; // no client transactions yet: stray responses are dropped, as RFC 3261 allows
        };
        let method = method.clone();
        if method != "ACK" {
            let key = Self::key(&message);
            if let Some((_, cached)) = self.answered.iter().find(|(k, _)| *k == key) {
                reply.send(cached);
                return;
            }
        }
        match method.as_str() {
            "OPTIONS" => {
                let mut r = message.response(200, "OK", Some(&random_token()));
                r.set_header("Allow", ALLOW);
                r.set_header("Accept", "application/sdp, application/dtmf-relay, application/dtmf");
                self.respond(&message, &reply, r);
            }
            "INVITE" => self.on_invite(message, reply).await,
            "ACK" => self.on_ack(&message),
            "BYE" => self.on_bye(message, reply),
            "CANCEL" => self.on_cancel(message, reply),
            "INFO" => {
                let known = message.header("Call-ID").is_some_and(|c| self.dialogs.contains_key(c));
                let (code, text) = if known { (200, "OK") } else { (481, "Call/Transaction Does Not Exist") };
                let r = message.response(code, text, None);
                self.respond(&message, &reply, r);
            }
            "REGISTER" | "SUBSCRIBE" | "NOTIFY" | "MESSAGE" | "UPDATE" | "PRACK" | "REFER" | "PUBLISH" => {
                let mut r = message.response(405, "Method Not Allowed", Some(&random_token()));
                r.set_header("Allow", ALLOW);
                self.respond(&message, &reply, r);
            }
            _ => {
                let mut r = message.response(501, "Not Implemented", Some(&random_token()));
                r.set_header("Allow", ALLOW);
                self.respond(&message, &reply, r);
            }
        }
    }

    fn contact(&self, kind: Kind) -> String {
        let port = self.store.read(|s| s.sip_configuration.sip_port);
        let host = match self.config.address {
            IpAddr::V6(v6) => format!("[{v6}]"),
            v4 => v4.to_string(),
        };
        format!("<sip:door@{host}:{port};transport={}>", kind.via().to_ascii_lowercase())
    }

    /// Whether the configuration lets `caller` in: 403 or 486 when not.
    fn admission(config: &SipConfiguration, caller: &str) -> Option<(u16, &'static str)> {
        if !config.allow_incoming_calls {
            return Some((486, "Busy Here"));
        }
        if config.apply_access_list {
            let listed = config.access_list.iter().any(|u| same_aor(u, caller));
            let refused = match config.access_list_policy {
                AccessListPolicy::Allow => !listed,
                AccessListPolicy::Block => listed,
            };
            if refused {
                return Some((403, "Forbidden"));
            }
        }
        None
    }

    async fn on_invite(&mut self, invite: SipMessage, reply: Reply) {
        let call_id = invite.header("Call-ID").unwrap_or_default().to_owned();
        if invite.header("To").is_some_and(has_tag) {
            return self.on_reinvite(invite, reply, &call_id);
        }
        let to_tag = random_token();
        let caller = uri_of(invite.header("From").unwrap_or_default()).to_owned();
        let (config, codecs) = self
            .store
            .read(|s| (s.sip_configuration.clone(), s.audio_codecs.iter().map(|c| c.name.clone()).collect::<Vec<_>>()));
        if let Some((code, text)) = Self::admission(&config, &caller) {
            let _ = self.engine.incoming_sip(&caller, None, true);
            let r = invite.response(code, text, Some(&to_tag));
            return self.respond(&invite, &reply, r);
        }
        let offer = std::str::from_utf8(&invite.body).ok().and_then(|b| sdp::parse(b).ok());
        let Some((remote, negotiated)) = offer.and_then(|o| sdp::negotiate(&o, &codecs).map(|n| (o, n))) else {
            let r = invite.response(488, "Not Acceptable Here", Some(&to_tag));
            return self.respond(&invite, &reply, r);
        };
        let socket = match rtp::bind(self.config.bind, config.rtp_start_port).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "no RTP port");
                let r = invite.response(503, "Service Unavailable", Some(&to_tag));
                return self.respond(&invite, &reply, r);
            }
        };
        let engine_id = match self.engine.incoming_sip(&caller, None, false) {
            Ok(id) => id,
            Err(_) => {
                let r = invite.response(486, "Busy Here", Some(&to_tag));
                return self.respond(&invite, &reply, r);
            }
        };
        let port = socket.local_addr().map(|a| a.port()).unwrap_or_default();
        let mut formats = vec![(negotiated.payload_type, negotiated.codec.name())];
        if let Some(pt) = negotiated.telephone_event {
            formats.push((pt, "telephone-event"));
        }
        let local_sdp = sdp::write(rand::thread_rng().gen::<u32>().into(), self.config.address, port, &formats);
        let mut ringing = invite.response(180, "Ringing", Some(&to_tag));
        ringing.set_header("Contact", self.contact(reply.kind()));
        reply.send(&ringing);
        let dialog = Dialog {
            engine_id: engine_id.clone(),
            invite,
            reply,
            local_tag: to_tag,
            phase: Phase::Ringing,
            negotiated,
            remote_media: SocketAddr::new(remote.address, remote.port),
            local_sdp,
            rtp_socket: Some(socket),
            rtp: None,
            counters: Arc::new(MediaCounters::default()),
            our_cseq: 1,
            retransmit: None,
        };
        self.dialogs.insert(call_id, dialog);
        if let Some(delay) = self.config.auto_answer {
            let engine = self.engine.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = engine.answer(&engine_id);
            });
        }
    }

    fn on_reinvite(&mut self, invite: SipMessage, reply: Reply, call_id: &str) {
        let Some(dialog) = self.dialogs.get_mut(call_id) else {
            let r = invite.response(481, "Call/Transaction Does Not Exist", None);
            return self.respond(&invite, &reply, r);
        };
        // Session refresh or hold: keep our media, answer with the same description.
        let mut ok = invite.response(200, "OK", None);
        ok.set_header("Contact", format!("<sip:door@{}>", self.config.address));
        ok.set_header("Content-Type", "application/sdp");
        ok.body = Bytes::from(dialog.local_sdp.clone());
        self.respond(&invite, &reply, ok);
    }

    fn on_ack(&mut self, ack: &SipMessage) {
        if let Some(d) = ack.header("Call-ID").and_then(|c| self.dialogs.get_mut(c)) {
            d.retransmit = None;
            if d.phase == Phase::Answered {
                d.phase = Phase::Confirmed;
            }
        }
    }

    fn on_bye(&mut self, bye: SipMessage, reply: Reply) {
        let Some(dialog) = bye.header("Call-ID").and_then(|c| self.dialogs.remove(c)) else {
            let r = bye.response(481, "Call/Transaction Does Not Exist", None);
            return self.respond(&bye, &reply, r);
        };
        let r = bye.response(200, "OK", None);
        self.respond(&bye, &reply, r);
        self.engine.transition(&dialog.engine_id, CallState::Terminated, Reason::Terminated);
    }

    fn on_cancel(&mut self, cancel: SipMessage, reply: Reply) {
        let call_id = cancel.header("Call-ID").unwrap_or_default().to_owned();
        let ringing = self.dialogs.get(&call_id).is_some_and(|d| d.phase == Phase::Ringing);
        if !ringing {
            let r = cancel.response(481, "Call/Transaction Does Not Exist", None);
            return self.respond(&cancel, &reply, r);
        }
        let r = cancel.response(200, "OK", None);
        self.respond(&cancel, &reply, r);
        if let Some(dialog) = self.dialogs.remove(&call_id) {
            let terminated = dialog.invite.response(487, "Request Terminated", Some(&dialog.local_tag));
            self.respond(&dialog.invite.clone(), &dialog.reply, terminated);
            self.engine.transition(&dialog.engine_id, CallState::Terminated, Reason::Terminated);
        }
    }

    fn dialog_of(&mut self, engine_id: &str) -> Option<String> {
        self.dialogs.iter().find(|(_, d)| d.engine_id == engine_id).map(|(c, _)| c.clone())
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Answered(id) => {
                let Some(call_id) = self.dialog_of(&id) else { return };
                let contact = self.dialogs.get(&call_id).map(|d| self.contact(d.reply.kind())).unwrap_or_default();
                let Some(d) = self.dialogs.get_mut(&call_id) else { return };
                if d.phase != Phase::Ringing {
                    return;
                }
                let mut ok = d.invite.response(200, "OK", Some(&d.local_tag));
                ok.set_header("Contact", contact);
                ok.set_header("Allow", ALLOW);
                ok.set_header("Content-Type", "application/sdp");
                ok.body = Bytes::from(d.local_sdp.clone());
                d.reply.send(&ok);
                d.phase = Phase::Answered;
                if let Some(socket) = d.rtp_socket.take() {
                    let n = d.negotiated;
                    d.rtp =
                        Some(RtpSession::start(socket, d.remote_media, n.codec, n.payload_type, d.counters.clone()));
                    self.engine.set_media(&id, n.codec.name(), d.counters.clone());
                }
                if d.reply.kind() == Kind::Udp {
                    let now = Instant::now();
                    d.retransmit =
                        Some(Retransmit { response: ok, next: now + T1, interval: T1, give_up: now + T1 * 64 });
                }
            }
            Command::Ended(id, reason) => {
                let Some(call_id) = self.dialog_of(&id) else { return };
                let Some(d) = self.dialogs.remove(&call_id) else { return };
                match d.phase {
                    Phase::Ringing => {
                        let code = if reason == Reason::Denied { (603, "Decline") } else { (486, "Busy Here") };
                        let r = d.invite.response(code.0, code.1, Some(&d.local_tag));
                        self.respond(&d.invite.clone(), &d.reply, r);
                    }
                    Phase::Answered | Phase::Confirmed => d.reply.send(&bye_for(&d, &self.config)),
                }
            }
        }
    }

    fn retransmit(&mut self) {
        let now = Instant::now();
        let mut gave_up = Vec::new();
        for (call_id, d) in &mut self.dialogs {
            let Some(r) = d.retransmit.as_mut() else { continue };
            if now >= r.give_up {
                // Timer H: no ACK ever came; the call cannot stand (RFC 3261 13.3.1.4).
                gave_up.push(call_id.clone());
            } else if now >= r.next {
                d.reply.send(&r.response);
                r.interval = (r.interval * 2).min(T2);
                r.next = now + r.interval;
            }
        }
        for call_id in gave_up {
            if let Some(d) = self.dialogs.remove(&call_id) {
                d.reply.send(&bye_for(&d, &self.config));
                self.engine.transition(&d.engine_id, CallState::Terminated, Reason::Failed);
            }
        }
    }
}

/// A BYE within the dialog of incoming call `d`.
fn bye_for(d: &Dialog, config: &UaConfig) -> SipMessage {
    let invite = &d.invite;
    let target = invite.header("Contact").map(uri_of).or_else(|| invite.header("From").map(uri_of)).unwrap_or_default();
    let from = invite.header("To").unwrap_or_default();
    let from = if tag_of(from).is_some() { from.to_owned() } else { format!("{from};tag={}", d.local_tag) };
    let host = match config.address {
        IpAddr::V6(v6) => format!("[{v6}]"),
        v4 => v4.to_string(),
    };
    SipMessage {
        start: StartLine::Request { method: "BYE".into(), uri: target.to_owned() },
        headers: vec![
            ("Via".into(), format!("SIP/2.0/{} {host};branch=z9hG4bK{};rport", d.reply.kind().via(), random_token())),
            ("Max-Forwards".into(), "70".into()),
            ("From".into(), from),
            ("To".into(), invite.header("From").unwrap_or_default().to_owned()),
            ("Call-ID".into(), invite.header("Call-ID").unwrap_or_default().to_owned()),
            ("CSeq".into(), format!("{} BYE", d.our_cseq)),
        ],
        body: Bytes::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_list_entries_match_addresses_of_record() {
        assert!(same_aor("sip:sipp@127.0.0.1", "sip:sipp@127.0.0.1:5070;transport=udp"));
        assert!(same_aor("SIP:Guard@PBX.local", "sips:guard@pbx.local"));
        assert!(same_aor("sip:a@h:5060", "sip:a@h:5060"));
        assert!(!same_aor("sip:a@h:5060", "sip:a@h:5070"));
        assert!(!same_aor("sip:a@h", "sip:b@h"));
        assert!(same_aor("sip:10.0.0.1", "sip:10.0.0.1:5062"));
    }
}
