//! The user agent's task: it routes what arrives (messages, engine commands, opened paths,
//! configuration changes, transaction and registration timers) to the part that handles it,
//! and never awaits the network itself. Incoming calls are in [`super::uas`], outgoing calls in
//! [`super::uac`], registration in [`super::registration`], the transaction layer in
//! [`super::transaction`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::address::{random_token, Local};
use super::connect::{Connected, Connector, Purpose};
use super::dialog::Dialogs;
use super::listeners::follow_configuration;
use super::message::SipMessage;
use super::message::StartLine;
use super::registration::{self, Registrations};
use super::signalling::{Command, SipUa};
use super::tls::Tls;
use super::transaction::{Matched, Outcome, Transactions};
use super::transport::{self, Inbound, Path, Streams, Transports, Wire};
use crate::calls::{CallEngine, CallState, Reason};
use crate::dtmf::{CallDtmf, DtmfPolicy, Trigger, TriggerSink};
use crate::events::EventBus;
use crate::store::Store;

/// Methods the device handles.
pub(super) const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK";
/// Opened paths waiting for the agent.
const CONNECTED_QUEUE: usize = 256;

/// How the user agent runs.
#[derive(Debug, Clone)]
pub struct UaConfig {
    /// Address the SIP and RTP sockets bind to.
    pub bind: IpAddr,
    /// Address written in Contact, Via and SDP (the bind address, or loopback for "any").
    pub address: IpAddr,
    /// Certificates and TLS sides.
    pub tls: Tls,
    /// DTMF inter-digit timeout (already scaled).
    pub inter_digit: Duration,
    /// Where DTMF matches go at once (the door actions).
    pub door: Option<Arc<dyn TriggerSink>>,
    /// Where SIP and RTP are also written (`--pcap`).
    pub capture: Option<Arc<crate::capture::Capture>>,
}

/// What the agent owns.
pub(super) struct Agent {
    pub(super) config: UaConfig,
    pub(super) store: Arc<Store>,
    pub(super) engine: Arc<CallEngine>,
    /// Where DTMF events go.
    pub(super) bus: Arc<EventBus>,
    pub(super) transactions: Transactions<Arc<Transports>>,
    pub(super) connector: Connector,
    pub(super) registrations: Registrations,
    /// Dialogs by SIP Call-ID; bounded by the engine's call limit (a refused call gets none).
    pub(super) dialogs: Dialogs,
    /// Outgoing calls waiting for a path to their next hop: engine id → (target, account).
    pub(super) pending_calls: HashMap<String, (String, String)>,
    /// The RTP ports of new calls.
    pub(super) rtp_ports: crate::rtp::session::RtpPorts,
    /// Set while the device winds down: told when the last un-registration is answered.
    pub(super) winding_down: Option<tokio::sync::oneshot::Sender<()>>,
    /// Timers of calls, by Call-ID: at most one of each kind per dialog.
    pub(super) dialog_timers: tokio_util::time::DelayQueue<(String, DialogTimer)>,
    /// Our BYEs waiting for their answer, by Call-ID: the engine call and the reason it ends
    /// with (at most [`MAX_BYES_IN_FLIGHT`]).
    pub(super) byes_in_flight: indexmap::IndexMap<String, (String, Reason)>,
}

/// Most BYEs followed at once; far above what the call limit lets be in flight within Timer F.
const MAX_BYES_IN_FLIGHT: usize = 4096;

impl<W: Wire> Wire for Arc<W> {
    fn send_bytes(&self, path: &Path, bytes: &[u8]) -> Result<(), transport::SendError> {
        (**self).send_bytes(path, bytes)
    }
}

/// Starts the user agent: it follows the store's SIP configuration for the device's lifetime.
pub fn start(
    config: UaConfig,
    store: Arc<Store>,
    engine: Arc<CallEngine>,
    bus: Arc<EventBus>,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) -> Arc<SipUa> {
    let (commands, command_rx) = mpsc::unbounded_channel();
    let ua = Arc::new(SipUa { commands });
    engine.set_signalling(ua.clone());
    let (inbound_tx, inbound_rx) = mpsc::channel(transport::INBOUND_QUEUE);
    let (changed_tx, changed_rx) = mpsc::channel(1);
    let (connected_tx, connected_rx) = mpsc::channel(CONNECTED_QUEUE);
    let capture = config.capture.clone().map(|c| (c, config.address));
    let transports = Arc::new(Transports::new(engine.metrics().clone(), capture));
    let streams = Streams::new(transports.clone(), inbound_tx, tracker.clone());
    tracker.spawn(follow_configuration(
        config.bind,
        config.tls.acceptor.clone(),
        store.clone(),
        streams.clone(),
        changed_tx,
        shutdown.clone(),
    ));
    let connector = Connector { streams, tls: config.tls.clone(), results: connected_tx, shutdown: shutdown.clone() };
    let agent = Agent {
        config,
        store,
        engine,
        bus,
        transactions: Transactions::new(transports),
        connector,
        registrations: Registrations::default(),
        dialogs: Dialogs::default(),
        pending_calls: HashMap::new(),
        byes_in_flight: indexmap::IndexMap::new(),
        rtp_ports: crate::rtp::session::RtpPorts::default(),
        winding_down: None,
        dialog_timers: tokio_util::time::DelayQueue::new(),
    };
    let queues = Queues { inbound: inbound_rx, commands: command_rx, connected: connected_rx, changed: changed_rx };
    tracker.spawn(agent.run(queues, shutdown));
    ua
}

/// What a dialog's timer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DialogTimer {
    /// Its session timer (RFC 4028): a refresh or the session's end.
    Session,
    /// Retransmitting its reliable provisional response (RFC 3262).
    Reliable,
}

/// The next dialog timer that is due; pending while there is none.
async fn next_dialog_timer(timers: &mut tokio_util::time::DelayQueue<(String, DialogTimer)>) -> (String, DialogTimer) {
    match std::future::poll_fn(|cx| timers.poll_expired(cx)).await {
        Some(expired) => expired.into_inner(),
        None => std::future::pending().await,
    }
}

/// Everything the agent task reads from.
struct Queues {
    inbound: mpsc::Receiver<Inbound>,
    commands: mpsc::UnboundedReceiver<Command>,
    connected: mpsc::Receiver<Connected>,
    changed: mpsc::Receiver<()>,
}

impl Agent {
    async fn run(mut self, mut q: Queues, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return self.stop(&mut q.commands),
                Some(m) = q.inbound.recv() => self.on_inbound(m),
                Some(c) = q.commands.recv() => self.on_command(c),
                Some(c) = q.connected.recv() => self.on_connected(c),
                Some(()) = q.changed.recv() => if self.winding_down.is_none() {
                    self.registration(|r, ctx| r.reconcile(ctx));
                },
                outcome = self.transactions.next_outcome() => self.on_outcome(outcome),
                account = self.registrations.next_due() => self.registration(|r, ctx| r.due(&account, ctx)),
                (call_id, timer) = next_dialog_timer(&mut self.dialog_timers) => match timer {
                    DialogTimer::Session => self.on_session_due(&call_id),
                    DialogTimer::Reliable => self.on_reliable_due(&call_id),
                },
            }
            let load = self.store.sip_load();
            let transactions = self.transactions.server_count() + self.transactions.client_count();
            load.transactions.store(transactions, std::sync::atomic::Ordering::Relaxed);
            load.dialogs.store(self.dialogs.len(), std::sync::atomic::Ordering::Relaxed);
            if self.winding_down.is_some() && self.registrations.all_left() {
                if let Some(done) = self.winding_down.take() {
                    let _ = done.send(());
                }
            }
        }
    }

    /// The device stops: carry out the engine's last commands, then end every call on the wire
    /// (BYE when up, CANCEL while calling, 480 while ringing).
    fn stop(&mut self, commands: &mut mpsc::UnboundedReceiver<Command>) {
        while let Ok(c) = commands.try_recv() {
            self.on_command(c);
        }
        let ids: Vec<String> = self.dialogs.values().map(|d| d.engine_id.clone()).collect();
        for id in ids {
            self.end(&id, Reason::Failed);
        }
    }

    /// The device's address and the ports it listens on now.
    pub(super) fn local(&self) -> Local {
        let (sip_port, tls_port) =
            self.store.read(|s| (s.sip_configuration.sip_port, s.sip_configuration.sip_tls_port));
        Local { address: self.config.address, sip_port, tls_port }
    }

    /// Runs `f` on the registrations with what they need.
    fn registration(&mut self, f: impl FnOnce(&mut Registrations, &mut registration::Context<'_>)) {
        let local = self.local();
        let mut ctx = registration::Context {
            store: &self.store,
            transactions: &mut self.transactions,
            connector: &self.connector,
            local,
            metrics: self.engine.metrics(),
        };
        f(&mut self.registrations, &mut ctx);
    }

    fn on_inbound(&mut self, Inbound { message, path }: Inbound) {
        let metrics = self.engine.metrics();
        match &message.start {
            StartLine::Response { code, .. } => metrics.sip_response(true, *code, path.kind.via()),
            StartLine::Request { method, .. } => metrics.sip_request(true, method, path.kind.via()),
        }
        if message.code().is_some() {
            if self.transactions.on_response(&message).is_some() {
                self.on_response(message);
            }
            return;
        }
        match self.transactions.on_request(path, &message) {
            Matched::Absorbed => {}
            Matched::Overloaded => {
                let mut r = message.response(503, "Service Unavailable", Some(&random_token()));
                r.set_header("Retry-After", "1");
                let _ = self.transactions.wire().send(&path, &r);
            }
            Matched::Ack => self.on_ack(&message),
            Matched::New(key) => self.on_request(key, path, message),
        }
    }

    /// A response the transaction layer passed up (or a 408 it made at Timer B/F).
    fn on_response(&mut self, response: SipMessage) {
        match response.method().as_str() {
            "REGISTER" => self.registration(|r, ctx| r.on_response(&response, ctx)),
            "INVITE" => self.on_invite_response(&response),
            // A session refresh that found no dialog or no peer ends the call (RFC 4028 10).
            "UPDATE" if matches!(response.code(), Some(408 | 481)) => {
                if let Some(call_id) = response.header("Call-ID").map(str::to_owned) {
                    tracing::info!(call_id, "session refresh refused: ending the call");
                    self.hang_up(&call_id, Reason::Failed);
                }
            }
            // Our BYE answered (or timed out): its call has ended.
            "BYE" => {
                let call_id = response.header("Call-ID").unwrap_or_default();
                if let Some((engine_id, reason)) = self.byes_in_flight.shift_remove(call_id) {
                    self.engine.transition(&engine_id, CallState::Terminated, reason);
                }
            }
            _ => {} // answers to our CANCEL, INFO and UPDATE end their transactions
        }
    }

    fn on_outcome(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::TimedOut(response) => self.on_response(response),
            Outcome::NoAck(key) => {
                let Some(call_id) = self
                    .dialogs
                    .values()
                    .find(|d| d.pending_ack.as_ref().is_some_and(|(_, k)| *k == key))
                    .map(|d| d.call_id.clone())
                else {
                    return;
                };
                // RFC 3261 13.3.1.4: no ACK for our 2xx; the session cannot stand.
                tracing::info!(call_id, "no ACK for our 200 OK: ending the call");
                self.hang_up(&call_id, Reason::Failed);
            }
        }
    }

    fn on_connected(&mut self, Connected { purpose, result }: Connected) {
        match purpose {
            Purpose::Call(id) => self.on_call_path(&id, result),
            Purpose::Register(account) => self.registration(|r, ctx| r.on_path(&account, result, ctx)),
        }
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Answered(id) => self.answer(&id),
            Command::Ended(id, reason) => self.end(&id, reason),
            Command::SendDtmf { id, digits, over_rtp } => self.send_dtmf(&id, &digits, over_rtp),
            Command::Keyed { id, digits } => self.keyed(&id, &digits),
            Command::Place { id, to, account } => self.place(id, to, account),
            Command::Flush(done) => {
                let _ = done.send(());
            }
            Command::WindDown(done) => {
                let ids: Vec<String> = self.dialogs.values().map(|d| d.engine_id.clone()).collect();
                for id in ids {
                    self.end(&id, Reason::Failed);
                }
                self.registration(|r, ctx| r.leave_all(ctx));
                // An answer already here ends the wind-down at the next turn of the loop.
                self.winding_down = Some(done);
            }
        }
    }

    /// The Call-ID of the dialog of engine call `engine_id`.
    pub(super) fn dialog_of(&self, engine_id: &str) -> Option<String> {
        self.dialogs.call_id_of(engine_id).map(str::to_owned)
    }

    /// Sends BYE in dialog `call_id` and forgets the dialog; its call is Terminating until the
    /// BYE is answered or times out, then ends with `reason`.
    pub(super) fn hang_up(&mut self, call_id: &str, reason: Reason) {
        let Some(mut d) = self.dialogs.remove(call_id) else { return };
        let local = self.local();
        let bye = d.request("BYE", &local);
        if let Err(e) = self.transactions.request(d.path, bye) {
            tracing::debug!(error = %e, "BYE not sent");
            self.engine.transition(&d.engine_id, CallState::Terminated, reason);
            return;
        }
        self.engine.ending(&d.engine_id, reason);
        if self.byes_in_flight.len() >= MAX_BYES_IN_FLIGHT {
            // The oldest would have ended by Timer F long ago; the engine's backstop ends it.
            self.byes_in_flight.shift_remove_index(0);
        }
        self.byes_in_flight.insert(call_id.to_owned(), (d.engine_id, reason));
    }

    /// The RTP counters of a new call whose socket has `port`, writing to the capture if any.
    pub(super) fn media_counters(&self, port: u16) -> Arc<crate::calls::MediaCounters> {
        let local = std::net::SocketAddr::new(self.config.address, port);
        let tap = self.config.capture.as_ref().map(|c| crate::capture::Tap::new(c.clone(), local));
        self.engine.media_counters(tap)
    }

    /// The DTMF policy of a new call: the given account's, or the default account's.
    pub(super) fn call_dtmf(&self, account: Option<&str>, engine_id: &str) -> Arc<Mutex<CallDtmf>> {
        let policy = self.store.read(|s| {
            let account = account.map_or_else(|| s.default_account(), |a| s.sip_accounts.get(a));
            let config = account.and_then(|a| s.dtmf_configurations.get(&a.dtmf_configuration_id));
            // No configuration: every method is honoured and nothing matches.
            config.map_or(DtmfPolicy { rfc2833: true, rfc2976: true, triggers: Vec::new() }, |c| DtmfPolicy {
                rfc2833: c.rfc2833,
                rfc2976: c.rfc2976,
                triggers: c
                    .dtmf_trigger_id
                    .iter()
                    .filter_map(|t| s.dtmf_triggers.get(t))
                    .map(|t| Trigger { sequence: t.dtmf_sequence.clone(), event_id: t.dtmf_event_id.clone() })
                    .collect(),
            })
        });
        let sink = self.config.door.clone();
        Arc::new(Mutex::new(CallDtmf::new(
            policy,
            engine_id,
            self.bus.clone(),
            self.engine.metrics().clone(),
            sink,
            self.config.inter_digit,
        )))
    }

    fn keyed(&mut self, id: &str, digits: &str) {
        let Some(d) = self.dialog_of(id).and_then(|call_id| self.dialogs.get(&call_id)) else { return };
        let mut dtmf = d.media.dtmf.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for digit in digits.chars() {
            dtmf.digit(digit, crate::dtmf::Method::Rfc2833, std::time::Instant::now());
        }
    }

    fn send_dtmf(&mut self, id: &str, digits: &str, over_rtp: bool) {
        let Some(call_id) = self.dialog_of(id) else { return };
        let local = self.local();
        let Some(d) = self.dialogs.get_mut(&call_id) else { return };
        if over_rtp {
            if !d.media.rtp.as_ref().is_some_and(|r| r.send_digits(digits)) {
                tracing::info!(id, "no RFC 2833 on this call: digits not sent");
            }
            return;
        }
        let mut requests = Vec::new();
        for digit in digits.chars() {
            let mut info = d.request("INFO", &local);
            info.set_header("Content-Type", "application/dtmf-relay");
            info.body = bytes::Bytes::from(format!("Signal={digit}\r\nDuration=160\r\n"));
            requests.push(info);
        }
        let path = d.path;
        for info in requests {
            if let Err(e) = self.transactions.request(path, info) {
                tracing::debug!(error = %e, "INFO not sent");
            }
        }
    }
}
