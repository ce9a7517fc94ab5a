//! The SIP user agent of the device: it follows the SIP configuration (listeners start, stop and
//! move with SIPEnabled and SIPPort), answers OPTIONS, and runs calls both ways.
//!
//! Incoming: INVITE rings (180) as an incoming call of the call engine, is answered (200 with an
//! SDP answer, retransmitted over UDP until the ACK) by the control API or `--auto-answer`, or
//! declined (486) when AllowIncomingCalls is off, the access list refuses (403) or the device is
//! busy; CANCEL, BYE, re-INVITE and INFO are handled.
//! Outgoing: `Call` to a `sip:` URI sends an INVITE with an offer from the codec priority list
//! (through the account's first SIP proxy when it has one), answers a 401/407 challenge with the
//! account's credentials, ACKs the final answer, maps 486/600 to Busy and other failures to
//! Failed, CANCELs on CallingTimeout or TerminateCall, and sends BYE to end an active call.
//! RTP runs once a call is answered.
//!
//! One task owns all dialogs; the engine reaches it through [`Signalling`], which only queues.
//!
//! Accounts with a registrar register (see [`registration`]).
//!
//! Not implemented yet: authentication of incoming requests.

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

use super::address::{host_of, hostport, random_token, uri_of};
use super::dialog::{
    ack_for, authorized_invite, bye_for, cancel_for, in_dialog, start_media, Dialog, Phase, Retransmit, Side,
};
use super::message::{has_tag, tag_of, SipMessage, StartLine};
use super::network::Network;
use super::registration::{self, Registrations};
use super::sdp;
use super::tls::Tls;
use super::transport::{self, Inbound, Kind, Reply};
use crate::calls::{CallEngine, CallState, MediaCounters, Reason, Signalling};
use crate::dtmf::{self, CallDtmf, Method};
use crate::events::EventBus;
use crate::model::sip_configuration::AccessListPolicy;
use crate::model::SipConfiguration;
use crate::rtp::session as rtp;
use crate::store::Store;
use std::sync::Mutex;
use tokio_rustls::TlsAcceptor;

/// Methods the device handles.
const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO";
/// Responses kept to answer retransmitted requests.
const ANSWERED_CACHE: usize = 256;
/// Our non-INVITE requests retransmitted at once, at most.
const OUTSTANDING: usize = 64;
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
    /// Certificates and TLS sides.
    pub tls: Tls,
    /// DTMF inter-digit timeout (already scaled).
    pub inter_digit: Duration,
}

enum Command {
    Answered(String),
    Ended(String, Reason),
    Place { id: String, to: String, account: String },
    SendDtmf { id: String, digits: String, over_rtp: bool },
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
            Command::Place { id, to, .. } => write!(f, "Place({id}, {to})"),
            Command::SendDtmf { id, digits, .. } => write!(f, "SendDtmf({id}, {digits})"),
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

    fn send_dtmf(&self, id: &str, digits: &str, over_rtp: bool) {
        let command = Command::SendDtmf { id: id.to_owned(), digits: digits.to_owned(), over_rtp };
        if self.commands.try_send(command).is_err() {
            tracing::warn!(id, "SIP command queue full");
        }
    }

    fn place(&self, id: &str, to: &str, account: &str) {
        let command = Command::Place { id: id.to_owned(), to: to.to_owned(), account: account.to_owned() };
        if self.commands.try_send(command).is_err() {
            tracing::warn!(id, "SIP command queue full");
        }
    }
}

/// Starts the user agent: it follows the store's SIP configuration for the device's lifetime.
pub fn start(
    config: UaConfig,
    store: Arc<Store>,
    engine: Arc<CallEngine>,
    bus: Arc<EventBus>,
    shutdown: CancellationToken,
) -> Arc<SipUa> {
    let (commands, command_rx) = mpsc::channel(COMMAND_QUEUE);
    let ua = Arc::new(SipUa { commands });
    engine.set_signalling(ua.clone());
    let (inbound_tx, inbound_rx) = mpsc::channel(transport::INBOUND_QUEUE);
    let udp = Arc::new(std::sync::Mutex::new(None));
    tokio::spawn(follow_configuration(
        config.bind,
        config.tls.acceptor.clone(),
        store.clone(),
        inbound_tx.clone(),
        udp.clone(),
        shutdown.clone(),
    ));
    let network = Network { udp, inbound: inbound_tx, shutdown: shutdown.clone(), tls: config.tls.clone() };
    let agent = Agent {
        config,
        store,
        engine,
        network,
        bus,
        registrations: Registrations::default(),
        dialogs: HashMap::new(),
        answered: VecDeque::new(),
        outstanding: VecDeque::new(),
    };
    tokio::spawn(agent.run(inbound_rx, command_rx, shutdown));
    ua
}

/// Runs the listeners the configuration asks for, restarting them when SIPEnabled or SIPPort change.
async fn follow_configuration(
    address: IpAddr,
    tls: TlsAcceptor,
    store: Arc<Store>,
    inbound: mpsc::Sender<Inbound>,
    udp: Arc<std::sync::Mutex<Option<Arc<UdpSocket>>>>,
    shutdown: CancellationToken,
) {
    let mut changes = store.changes();
    let mut running: Option<Listening> = None;
    loop {
        let (enabled, ports) = store.read(|s| {
            (s.sip_configuration.sip_enabled, (s.sip_configuration.sip_port, s.sip_configuration.sip_tls_port))
        });
        let wanted = enabled.then_some(ports);
        if running.as_ref().map(|(p, _, _)| *p) != wanted {
            if let Some((_, stop, tasks)) = running.take() {
                stop.cancel();
                *udp.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
                // The sockets close when their tasks end; wait, so a port can be bound again.
                for task in tasks {
                    let _ = task.await;
                }
            }
            if let Some((port, tls_port)) = wanted {
                let stop = shutdown.child_token();
                let at = (SocketAddr::new(address, port), SocketAddr::new(address, tls_port));
                match listen(at, tls.clone(), inbound.clone(), stop.clone()).await {
                    Ok((socket, tasks)) => {
                        tracing::info!(%address, port, tls_port, "SIP listening on UDP, TCP and TLS");
                        *udp.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(socket);
                        running = Some(((port, tls_port), stop, tasks));
                    }
                    Err(e) => tracing::error!(%address, port, tls_port, error = %e, "cannot listen for SIP"),
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = changes.changed() => if changed.is_err() { return },
        }
    }
}

/// Listeners in place: their (SIP, TLS) ports, how to stop them, and their tasks.
type Listening = ((u16, u16), CancellationToken, Vec<tokio::task::JoinHandle<()>>);

async fn listen(
    (at, tls_at): (SocketAddr, SocketAddr),
    tls: TlsAcceptor,
    inbound: mpsc::Sender<Inbound>,
    stop: CancellationToken,
) -> std::io::Result<(Arc<UdpSocket>, Vec<tokio::task::JoinHandle<()>>)> {
    let udp = Arc::new(UdpSocket::bind(at).await?);
    let tcp = TcpListener::bind(at).await?;
    let tls_listener = TcpListener::bind(tls_at).await?;
    let tasks = vec![
        tokio::spawn(transport::run_udp(udp.clone(), inbound.clone(), stop.clone())),
        tokio::spawn(transport::run_stream(tcp, None, inbound.clone(), stop.clone())),
        tokio::spawn(transport::run_stream(tls_listener, Some(tls), inbound, stop)),
    ];
    Ok((udp, tasks))
}

struct Agent {
    config: UaConfig,
    store: Arc<Store>,
    engine: Arc<CallEngine>,
    /// How requests the device sends leave it.
    network: Network,
    /// Where DTMF events go.
    bus: Arc<EventBus>,
    /// Registration of the accounts that register.
    registrations: Registrations,
    /// Dialogs by SIP Call-ID; bounded by the engine's call limit (a refused call gets none).
    dialogs: HashMap<String, Dialog>,
    /// (Call-ID, CSeq, branch) of answered requests and the answer, for retransmissions.
    answered: VecDeque<(String, SipMessage)>,
    /// Our BYE, CANCEL and INFO requests over UDP waiting for a final answer (Timer E/F).
    outstanding: VecDeque<(String, Reply, Retransmit)>,
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
        let mut changes = self.store.changes();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                Some(message) = inbound.recv() => self.on_message(message).await,
                Some(command) = commands.recv() => self.on_command(command).await,
                Ok(()) = changes.changed() => {
                    // Let the listeners follow first, so a REGISTER has a socket to leave on.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let ctx = registration::Context { store: &self.store, network: &self.network, address: self.config.address };
                    self.registrations.reconcile(&ctx).await;
                }
                _ = tick.tick() => {
                    self.retransmit();
                    let ctx = registration::Context { store: &self.store, network: &self.network, address: self.config.address };
                    self.registrations.tick(&ctx).await;
                }
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

    fn request_key(m: &SipMessage) -> String {
        format!("{}|{}", m.header("Call-ID").unwrap_or_default(), m.header("CSeq").unwrap_or_default())
    }

    /// Sends a non-INVITE request of ours; over UDP it is retransmitted until a final answer.
    fn send_request(&mut self, request: SipMessage, reply: &Reply) {
        reply.send(&request);
        if reply.kind() == Kind::Udp {
            if self.outstanding.len() >= OUTSTANDING {
                self.outstanding.pop_front();
            }
            let now = Instant::now();
            let retransmit =
                Retransmit { message: request.clone(), next: now + T1, interval: T1, give_up: now + T1 * 64 };
            self.outstanding.push_back((Self::request_key(&request), reply.clone(), retransmit));
        }
    }

    async fn on_message(&mut self, Inbound { message, reply, .. }: Inbound) {
        let StartLine::Request { method, .. } = &message.start else {
            if message.method() == "REGISTER" {
                let ctx =
                    registration::Context { store: &self.store, network: &self.network, address: self.config.address };
                self.registrations.on_response(&message, &ctx).await;
                return;
            }
            return self.on_response(message);
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
                let dialog = message.header("Call-ID").and_then(|c| self.dialogs.get(c));
                let (code, text) = match dialog {
                    None => (481, "Call/Transaction Does Not Exist"),
                    Some(_) if message.body.is_empty() => (200, "OK"), // a keep-alive
                    Some(d) => {
                        match dtmf::info::digit(message.header("Content-Type").unwrap_or_default(), &message.body) {
                            Ok(digit) => {
                                d.dtmf.lock().unwrap_or_else(std::sync::PoisonError::into_inner).digit(
                                    digit,
                                    Method::Rfc2976,
                                    std::time::Instant::now(),
                                );
                                (200, "OK")
                            }
                            Err(why) => {
                                tracing::info!(why, "INFO body refused");
                                (400, "Bad Request")
                            }
                        }
                    }
                };
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
        let port = self.store.read(|s| {
            if kind == Kind::Tls {
                s.sip_configuration.sip_tls_port
            } else {
                s.sip_configuration.sip_port
            }
        });
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
        let dtmf = self.call_dtmf(None, &engine_id);
        let dialog = Dialog {
            dtmf,
            engine_id: engine_id.clone(),
            side: Side::Incoming,
            invite,
            reply,
            local_tag: to_tag,
            phase: Phase::Ringing,
            negotiated: Some((negotiated, SocketAddr::new(remote.address, remote.port))),
            local_sdp,
            rtp_socket: Some(socket),
            rtp: None,
            counters: Arc::new(MediaCounters::default()),
            next_cseq: 1,
            remote_tag: None,
            remote_target: None,
            account: None,
            auth_tried: false,
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

    /// Sends the INVITE of outgoing call `id`.
    async fn place(&mut self, id: &str, to: &str, account_id: &str) -> Result<(), String> {
        let (account, config, codecs) = self.store.read(|s| {
            (
                s.sip_accounts.get(account_id).cloned(),
                s.sip_configuration.clone(),
                s.audio_codecs.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
            )
        });
        let account = account.ok_or("the account is gone")?;
        let next_hop = account.sip_proxies.first().map_or_else(|| hostport(to), |p| hostport(&p.server));
        let reply = self.network.path(account.transport, &next_hop, account.verify_server_certificate).await?;
        let socket = rtp::bind(self.config.bind, config.rtp_start_port).await.map_err(|e| e.to_string())?;
        let port = socket.local_addr().map(|a| a.port()).unwrap_or_default();
        let local_sdp =
            sdp::write(rand::thread_rng().gen::<u32>().into(), self.config.address, port, &sdp::offer_formats(&codecs));
        let host = host_of(self.config.address);
        let domain = [&account.public_domain, &account.registrar]
            .into_iter()
            .find(|d| !d.is_empty())
            .cloned()
            .unwrap_or_else(|| host.clone());
        let display = if account.caller_id.is_empty() {
            String::new()
        } else {
            format!("\"{}\" ", account.caller_id.replace('"', ""))
        };
        let local_tag = random_token();
        let kind = reply.kind();
        let mut headers = vec![
            (
                "Via".to_owned(),
                format!("SIP/2.0/{} {host}:{};branch=z9hG4bK{};rport", kind.via(), config.sip_port, random_token()),
            ),
            ("Max-Forwards".to_owned(), "70".to_owned()),
            ("From".to_owned(), format!("{display}<sip:{}@{domain}>;tag={local_tag}", account.user_id)),
            ("To".to_owned(), format!("<{to}>")),
            ("Call-ID".to_owned(), format!("{}@{host}", random_token())),
            ("CSeq".to_owned(), "1 INVITE".to_owned()),
            (
                "Contact".to_owned(),
                format!(
                    "<sip:{}@{host}:{};transport={}>",
                    account.user_id,
                    config.sip_port,
                    kind.via().to_ascii_lowercase()
                ),
            ),
        ];
        headers.extend(
            account.sip_proxies.iter().map(|p| ("Route".to_owned(), format!("<sip:{};lr>", hostport(&p.server)))),
        );
        headers.push(("Allow".to_owned(), ALLOW.to_owned()));
        headers.push(("Content-Type".to_owned(), "application/sdp".to_owned()));
        let invite = SipMessage {
            start: StartLine::Request { method: "INVITE".into(), uri: to.to_owned() },
            headers,
            body: Bytes::from(local_sdp.clone()),
        };
        reply.send(&invite);
        let now = Instant::now();
        let retransmit = (kind == Kind::Udp).then(|| Retransmit {
            message: invite.clone(),
            next: now + T1,
            interval: T1,
            give_up: now + T1 * 64,
        });
        let call_id = invite.header("Call-ID").unwrap_or_default().to_owned();
        self.dialogs.insert(
            call_id,
            Dialog {
                dtmf: self.call_dtmf(Some(account_id), id),
                engine_id: id.to_owned(),
                side: Side::Outgoing,
                invite,
                reply,
                local_tag,
                phase: Phase::Calling,
                negotiated: None,
                local_sdp,
                rtp_socket: Some(socket),
                rtp: None,
                counters: Arc::new(MediaCounters::default()),
                next_cseq: 2,
                remote_tag: None,
                remote_target: None,
                account: Some(account),
                auth_tried: false,
                retransmit,
            },
        );
        Ok(())
    }

    /// A response to a request the device sent.
    fn on_response(&mut self, response: SipMessage) {
        let Some(code) = response.code() else { return };
        let call_id = response.header("Call-ID").unwrap_or_default().to_owned();
        if response.method() != "INVITE" {
            // An answer to our BYE, CANCEL or INFO: a final one ends its retransmission.
            let key = Self::request_key(&response);
            if code >= 200 {
                self.outstanding.retain(|(k, _, _)| *k != key);
            } else if let Some((_, _, r)) = self.outstanding.iter_mut().find(|(k, _, _)| *k == key) {
                r.interval = T2; // a provisional answer: retransmit at T2 (RFC 3261 17.1.2.2)
            }
            return;
        }
        let Some(d) = self.dialogs.get_mut(&call_id).filter(|d| d.side == Side::Outgoing) else { return };
        if response.cseq().map(|(n, _)| n) != d.invite.cseq().map(|(n, _)| n) {
            return; // a late answer to an INVITE we already replaced
        }
        d.retransmit = None; // any answer stops Timer A
        match code {
            100..=199 => {}
            200..=299 => {
                d.remote_tag = response.header("To").and_then(tag_of).map(str::to_owned);
                d.remote_target = response.header("Contact").map(|c| uri_of(c).to_owned());
                let ack =
                    ack_for(&d.invite, &response, d.remote_target.as_deref(), self.config.address, d.reply.kind());
                d.reply.send(&ack);
                match d.phase {
                    Phase::Calling => {
                        let codecs =
                            self.store.read(|s| s.audio_codecs.iter().map(|c| c.name.clone()).collect::<Vec<_>>());
                        let answer = std::str::from_utf8(&response.body).ok().and_then(|b| sdp::parse(b).ok());
                        d.negotiated = answer
                            .and_then(|a| sdp::negotiate(&a, &codecs).map(|n| (n, SocketAddr::new(a.address, a.port))));
                        d.phase = Phase::Confirmed;
                        start_media(d, &self.engine);
                        self.engine.transition(&d.engine_id, CallState::Active, Reason::AcceptedByRemote);
                    }
                    Phase::Cancelling => {
                        // The answer crossed our CANCEL: the call is over, end the dialog it made.
                        if let Some(mut d) = self.dialogs.remove(&call_id) {
                            let bye = bye_for(&mut d, self.config.address);
                            self.send_request(bye, &d.reply);
                        }
                    }
                    _ => {} // a retransmitted 2xx: ACKed again above
                }
            }
            401 | 407 if !d.auth_tried && d.phase == Phase::Calling => {
                let ack = ack_for(&d.invite, &response, None, self.config.address, d.reply.kind());
                d.reply.send(&ack);
                match authorized_invite(d, &response) {
                    Some(invite) => {
                        d.reply.send(&invite);
                        if d.reply.kind() == Kind::Udp {
                            let now = Instant::now();
                            d.retransmit = Some(Retransmit {
                                message: invite.clone(),
                                next: now + T1,
                                interval: T1,
                                give_up: now + T1 * 64,
                            });
                        }
                        d.invite = invite;
                        d.auth_tried = true;
                    }
                    None => self.fail(&call_id, Reason::Failed),
                }
            }
            _ => {
                let ack = ack_for(&d.invite, &response, None, self.config.address, d.reply.kind());
                d.reply.send(&ack);
                let reason = match code {
                    486 | 600 => Reason::Busy,
                    _ => Reason::Failed,
                };
                self.fail(&call_id, reason);
            }
        }
    }

    /// Ends outgoing dialog `call_id` with `reason` (a no-op for the engine if the call already ended).
    fn fail(&mut self, call_id: &str, reason: Reason) {
        if let Some(d) = self.dialogs.remove(call_id) {
            self.engine.transition(&d.engine_id, CallState::Terminated, reason);
        }
    }

    /// The DTMF policy of a new call: the given account's, or the default account's.
    fn call_dtmf(&self, account: Option<&str>, engine_id: &str) -> Arc<Mutex<CallDtmf>> {
        let dtmf = self.store.read(|s| {
            let account =
                account.map(str::to_owned).or_else(|| s.default_account().map(|a| a.id.clone())).unwrap_or_default();
            CallDtmf::for_account(s, &account, engine_id, self.bus.clone(), self.config.inter_digit)
        });
        Arc::new(Mutex::new(dtmf))
    }

    fn dialog_of(&mut self, engine_id: &str) -> Option<String> {
        self.dialogs.iter().find(|(_, d)| d.engine_id == engine_id).map(|(c, _)| c.clone())
    }

    async fn on_command(&mut self, command: Command) {
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
                start_media(d, &self.engine);
                if d.reply.kind() == Kind::Udp {
                    let now = Instant::now();
                    d.retransmit =
                        Some(Retransmit { message: ok, next: now + T1, interval: T1, give_up: now + T1 * 64 });
                }
            }
            Command::Ended(id, reason) => {
                let Some(call_id) = self.dialog_of(&id) else { return };
                let Some(mut d) = self.dialogs.remove(&call_id) else { return };
                match d.phase {
                    Phase::Ringing => {
                        let code = if reason == Reason::Denied { (603, "Decline") } else { (486, "Busy Here") };
                        let r = d.invite.response(code.0, code.1, Some(&d.local_tag));
                        self.respond(&d.invite.clone(), &d.reply, r);
                    }
                    Phase::Calling => {
                        // CANCEL the INVITE; the dialog stays to ACK the 487 that follows.
                        self.send_request(cancel_for(&d.invite), &d.reply);
                        d.phase = Phase::Cancelling;
                        d.retransmit = None;
                        self.dialogs.insert(call_id, d);
                    }
                    Phase::Cancelling => {}
                    Phase::Answered | Phase::Confirmed => {
                        let bye = bye_for(&mut d, self.config.address);
                        self.send_request(bye, &d.reply);
                    }
                }
            }
            Command::SendDtmf { id, digits, over_rtp } => {
                let Some(call_id) = self.dialog_of(&id) else { return };
                let Some(d) = self.dialogs.get_mut(&call_id) else { return };
                if over_rtp {
                    if !d.rtp.as_ref().is_some_and(|r| r.send_digits(&digits)) {
                        tracing::info!(id, "no RFC 2833 on this call: digits not sent");
                    }
                } else {
                    let mut requests = Vec::new();
                    for digit in digits.chars() {
                        let mut info = in_dialog(d, self.config.address, "INFO");
                        info.set_header("Content-Type", "application/dtmf-relay");
                        info.body = Bytes::from(format!("Signal={digit}\r\nDuration=160\r\n"));
                        requests.push(info);
                    }
                    let reply = d.reply.clone();
                    for info in requests {
                        self.send_request(info, &reply);
                    }
                }
            }
            Command::Place { id, to, account } => {
                if let Err(why) = self.place(&id, &to, &account).await {
                    tracing::info!(id, to, why, "outgoing call failed");
                    self.engine.transition(&id, CallState::Terminated, Reason::Failed);
                }
            }
        }
    }

    fn retransmit(&mut self) {
        let now = Instant::now();
        // Timer F: give up on requests never answered; Timer E: resend the others when due.
        self.outstanding.retain(|(_, _, r)| now < r.give_up);
        for (_, reply, r) in &mut self.outstanding {
            if now >= r.next {
                reply.send(&r.message);
                r.interval = (r.interval * 2).min(T2);
                r.next = now + r.interval;
            }
        }
        let mut gave_up = Vec::new();
        for (call_id, d) in &mut self.dialogs {
            let Some(r) = d.retransmit.as_mut() else { continue };
            if now >= r.give_up {
                // Timer H: no ACK ever came; the call cannot stand (RFC 3261 13.3.1.4).
                gave_up.push(call_id.clone());
            } else if now >= r.next {
                d.reply.send(&r.message);
                r.interval = (r.interval * 2).min(T2);
                r.next = now + r.interval;
            }
        }
        for call_id in gave_up {
            if let Some(mut d) = self.dialogs.remove(&call_id) {
                if d.side == Side::Incoming {
                    let bye = bye_for(&mut d, self.config.address);
                    self.send_request(bye, &d.reply);
                }
                // Incoming: Timer H, no ACK; outgoing: Timer B, no answer at all.
                self.engine.transition(&d.engine_id, CallState::Terminated, Reason::Failed);
            }
        }
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
