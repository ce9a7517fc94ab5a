//! Registration of the accounts that have a Registrar or PublicDomain (RFC 3261 section 10):
//! REGISTER with digest auth, refresh at 90 % of the granted time, re-register when the account
//! or the device's SIP ports change, un-register (Expires: 0) when it goes or SIP is disabled.
//! Results land in the store, where GetSIPAccountStatus(es) read them: RegURI, the last status
//! code and reason phrase.
//!
//! REGISTERs go through client transactions (retransmission and the 408 of Timer F are theirs).
//! A registration names its registrar by address: when a TCP or TLS connection to it is gone
//! (the registrar restarted), the next REGISTER opens a new one.

use std::collections::HashMap;
use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio_util::time::{delay_queue, DelayQueue};

use super::address::{random_token, Local};
use super::connect::{ConnectError, Connector, Destination, Purpose};
use super::digest;
use super::headers::{CSeq, NameAddr, Uri};
use super::message::{SipMessage, StartLine};
use super::transaction::Transactions;
use super::transport::{Path, Transports};
use super::uac::kind_of;
use crate::model::attribute::int_attribute;
use crate::model::sip_account::{Registration, Transport};
use crate::model::SipAccount;
use crate::store::Store;

/// How long to wait before trying again after a failure.
const RETRY: Duration = Duration::from_secs(30);
/// How long to wait when the registrar could not even be addressed (SIP starting, DNS).
const RETRY_UNREACHABLE: Duration = Duration::from_secs(1);
/// Un-registrations in flight at most (each is one REGISTER, and a second with credentials).
const MAX_LEAVING: usize = 256;

/// What a registration needs; a change of any of it means registering again.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Params {
    user: String,
    auth_user: String,
    password: String,
    domain: String,
    registrar: String,
    transport: Transport,
    verify: bool,
    interval: u32,
    /// The device's address and ports, which the Contact carries.
    local: Local,
}

impl Params {
    fn of(account: &SipAccount, config_attributes: &[crate::model::Attribute], local: Local) -> Option<Params> {
        if !account.enabled || !account.registers() {
            return None;
        }
        let registrar = if account.registrar.is_empty() { &account.public_domain } else { &account.registrar };
        let domain = if account.public_domain.is_empty() { &account.registrar } else { &account.public_domain };
        // The account's RegistrationInterval attribute wins over the configuration's.
        let interval = if account.attribute.iter().any(|a| a.name == "RegistrationInterval") {
            int_attribute(&account.attribute, "RegistrationInterval")
        } else {
            int_attribute(config_attributes, "RegistrationInterval")
        };
        Some(Params {
            user: account.user_id.clone(),
            auth_user: if account.authentication_id.is_empty() {
                account.user_id.clone()
            } else {
                account.authentication_id.clone()
            },
            password: account.password.clone(),
            domain: domain.clone(),
            registrar: registrar.clone(),
            transport: account.transport,
            verify: account.verify_server_certificate,
            interval: u32::try_from(interval).unwrap_or(3600),
            local,
        })
    }

    fn destination(&self) -> Option<Destination> {
        let (host, port) = Uri::parse(&format!("sip:{}", self.registrar)).ok()?.host_port()?;
        Some(Destination { kind: kind_of(self.transport), host, port, verify: self.verify })
    }
}

#[derive(Debug)]
struct Entry {
    params: Params,
    call_id: String,
    local_tag: String,
    cseq: u32,
    /// Where the registrar is, once known.
    path: Option<Path>,
    /// The Expires of the REGISTER in flight (0 when leaving).
    expires: u32,
    auth_tried: bool,
    /// The refresh or retry timer.
    timer: Option<delay_queue::Key>,
}

/// The registrations of one device.
#[derive(Debug, Default)]
pub struct Registrations {
    /// By account id.
    entries: HashMap<String, Entry>,
    /// Un-registering, until their final answer.
    leaving: Vec<Entry>,
    /// Refresh and retry times, by account id.
    due: DelayQueue<String>,
}

/// What registering needs from the user agent.
pub struct Context<'a> {
    /// The store (accounts, configuration, status board).
    pub store: &'a Arc<Store>,
    /// Where REGISTERs are sent.
    pub transactions: &'a mut Transactions<Arc<Transports>>,
    /// Opens paths to registrars.
    pub connector: &'a Connector,
    /// The device's address and ports.
    pub local: Local,
    /// Where registration outcomes are counted.
    pub metrics: &'a crate::metrics::DeviceMetrics,
}

impl Registrations {
    /// Brings the registrations in line with the store: new or changed accounts register,
    /// removed ones (or all, when SIP is off) un-register.
    pub fn reconcile(&mut self, ctx: &mut Context<'_>) {
        let local = ctx.local;
        let (enabled, wanted): (bool, HashMap<String, Params>) = ctx.store.read(|s| {
            let attrs = &s.sip_configuration.attribute;
            (
                s.sip_configuration.sip_enabled,
                s.sip_accounts
                    .values()
                    .filter_map(|a| Params::of(a, attrs, local).map(|p| (a.id.clone(), p)))
                    .collect(),
            )
        });
        let wanted = if enabled { wanted } else { HashMap::new() };
        let gone: Vec<String> = self
            .entries
            .iter()
            .filter(|(id, e)| wanted.get(*id) != Some(&e.params))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            // With SIP off there is no socket left to un-register on.
            self.leave(&id, enabled, ctx);
        }
        for (id, params) in wanted {
            if self.entries.contains_key(&id) {
                continue;
            }
            let expires = params.interval;
            let entry = Entry {
                params,
                call_id: format!("{}@doorsim", random_token()),
                local_tag: random_token(),
                cseq: 0,
                path: None,
                expires,
                auth_tried: false,
                timer: None,
            };
            self.entries.insert(id.clone(), entry);
            self.register(&id, ctx);
        }
    }

    /// Forgets account `id`'s registration; with `unregister`, sends `Expires: 0` where it
    /// registered (answering a challenge to it as well).
    fn leave(&mut self, id: &str, unregister: bool, ctx: &mut Context<'_>) {
        ctx.store.set_registration(id, None);
        let Some(mut e) = self.entries.remove(id) else { return };
        if let Some(k) = e.timer.take() {
            self.due.try_remove(&k);
        }
        if unregister && e.path.is_some() && self.leaving.len() < MAX_LEAVING {
            e.auth_tried = false;
            e.expires = 0;
            if send(&mut e, None, ctx).is_ok() {
                self.leaving.push(e);
            }
        }
    }

    /// The device is stopping: un-registers every account.
    pub fn leave_all(&mut self, ctx: &mut Context<'_>) {
        let ids: Vec<String> = self.entries.keys().cloned().collect();
        for id in ids {
            self.leave(&id, true, ctx);
        }
    }

    /// Whether no un-registration waits for its answer.
    pub fn all_left(&self) -> bool {
        self.leaving.is_empty()
    }

    /// The next account whose refresh or retry is due. Pending while none is scheduled.
    pub async fn next_due(&mut self) -> String {
        match poll_fn(|cx| self.due.poll_expired(cx)).await {
            Some(expired) => expired.into_inner(),
            None => std::future::pending().await,
        }
    }

    /// Account `id`'s refresh or retry is due.
    pub fn due(&mut self, id: &str, ctx: &mut Context<'_>) {
        if let Some(e) = self.entries.get_mut(id) {
            e.timer = None;
            e.auth_tried = false;
            e.expires = e.params.interval;
            self.register(id, ctx);
        }
    }

    /// Sends account `id`'s REGISTER, opening a path to the registrar first when there is none
    /// (or its connection is gone).
    fn register(&mut self, id: &str, ctx: &mut Context<'_>) {
        let Some(e) = self.entries.get_mut(id) else { return };
        let connected = |p: &Path| !p.kind.reliable() || ctx.connector.streams.transports.connected(p.kind, p.peer);
        if !e.path.as_ref().is_some_and(connected) {
            e.path = None;
            let Some(destination) = e.params.destination() else {
                return self.failed(id, ctx, 400, "Bad Registrar", RETRY);
            };
            match ctx.connector.ready(&destination) {
                Some(path) => e.path = Some(path),
                None => return ctx.connector.open(Purpose::Register(id.to_owned()), destination),
            }
        }
        if let Err(why) = send(e, None, ctx) {
            tracing::info!(registrar = %e.params.registrar, %why, "REGISTER not sent");
            e.path = None;
            self.failed(id, ctx, 503, "Service Unavailable", RETRY_UNREACHABLE);
        }
    }

    /// A path to account `id`'s registrar was opened, or could not be.
    pub fn on_path(&mut self, id: &str, result: Result<Path, ConnectError>, ctx: &mut Context<'_>) {
        let Some(e) = self.entries.get_mut(id) else { return };
        match result {
            Ok(path) => {
                e.path = Some(path);
                self.register(id, ctx);
            }
            Err(why) => {
                tracing::info!(registrar = %e.params.registrar, %why, "cannot reach the registrar");
                self.failed(id, ctx, 503, "Service Unavailable", RETRY_UNREACHABLE);
            }
        }
    }

    fn failed(&mut self, id: &str, ctx: &Context<'_>, status: u16, text: &str, retry: Duration) {
        if let Some(e) = self.entries.get_mut(id) {
            record(ctx, id, e, status, text);
            schedule(&mut self.due, id, e, retry);
        }
    }

    /// A final response to a REGISTER (or the 408 of its Timer F).
    pub fn on_response(&mut self, response: &SipMessage, ctx: &mut Context<'_>) {
        let Some(code) = response.code().filter(|c| *c >= 200) else { return };
        let call_id = response.header("Call-ID").unwrap_or_default();
        let number = response.cseq().map(|(n, _)| n);
        if let Some(i) = self.leaving.iter().position(|e| e.call_id == call_id && Some(e.cseq) == number) {
            let mut e = self.leaving.swap_remove(i);
            if matches!(code, 401 | 407) && !e.auth_tried {
                e.auth_tried = true;
                if let Some(credentials) = credentials(&e, response) {
                    if send(&mut e, Some(credentials), ctx).is_ok() {
                        self.leaving.push(e);
                    }
                }
            }
            return;
        }
        let Some((id, e)) = self.entries.iter_mut().find(|(_, e)| e.call_id == call_id) else { return };
        if number != Some(e.cseq) {
            return;
        }
        let id = id.clone();
        let reason = match &response.start {
            StartLine::Response { reason, .. } => reason.clone(),
            StartLine::Request { .. } => String::new(),
        };
        match code {
            200..=299 => {
                let granted = response
                    .header("Expires")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .or_else(|| {
                        response
                            .header_values("Contact")
                            .iter()
                            .find_map(|c| NameAddr::parse(c).ok()?.params.get("expires")?.parse().ok())
                    })
                    .unwrap_or(u64::from(e.params.interval))
                    .max(1);
                e.auth_tried = false;
                record(ctx, &id, e, code, &reason);
                // Refresh at 90 % of the granted time, as UAs commonly do.
                schedule(&mut self.due, &id, e, Duration::from_secs(granted) * 9 / 10);
            }
            401 | 407 if !e.auth_tried => {
                e.auth_tried = true;
                match credentials(e, response) {
                    Some(c) => {
                        if let Err(why) = send(e, Some(c), ctx) {
                            tracing::info!(%why, "REGISTER not sent");
                            e.path = None;
                            self.failed(&id, ctx, 503, "Service Unavailable", RETRY_UNREACHABLE);
                        }
                    }
                    None => self.failed(&id, ctx, code, &reason, RETRY),
                }
            }
            _ => {
                if code == 408 || code == 503 {
                    e.path = None; // look the registrar up (and connect) afresh
                }
                self.failed(&id, ctx, code, &reason, RETRY);
            }
        }
    }
}

fn schedule(due: &mut DelayQueue<String>, id: &str, e: &mut Entry, after: Duration) {
    if let Some(k) = e.timer.take() {
        due.try_remove(&k);
    }
    e.timer = Some(due.insert(id.to_owned(), after));
}

fn record(ctx: &Context<'_>, id: &str, e: &Entry, status: u16, text: &str) {
    tracing::info!(account = id, registrar = %e.params.registrar, status, text, "registration");
    ctx.metrics.registration(status);
    ctx.store.set_registration(
        id,
        Some(Registration { reg_uri: e.params.registrar.clone(), status, status_text: text.to_owned() }),
    );
}

fn credentials(e: &Entry, challenge: &SipMessage) -> Option<(&'static str, String)> {
    let uri = format!("sip:{}", e.params.domain);
    digest::answer(challenge, "REGISTER", &uri, &e.params.auth_user, &e.params.password)
}

/// Sends a REGISTER on the entry's path (a new CSeq each time), optionally with credentials.
fn send(
    e: &mut Entry,
    credentials: Option<(&'static str, String)>,
    ctx: &mut Context<'_>,
) -> Result<(), super::transport::SendError> {
    let path = e.path.ok_or(super::transport::SendError::NoConnection)?;
    e.cseq += 1;
    let local = e.params.local;
    let aor = Uri::parse(&format!("sip:{}@{}", e.params.user, e.params.domain))
        .map(NameAddr::new)
        .unwrap_or_else(|_| local.contact(&e.params.user, path.kind));
    let mut contact = local.contact(&e.params.user, path.kind);
    contact.params.remove("expires");
    let mut headers = vec![
        ("Via".to_owned(), local.via(path.kind).to_string()),
        ("Max-Forwards".to_owned(), "70".to_owned()),
        ("From".to_owned(), aor.clone().with_tag(&e.local_tag).to_string()),
        ("To".to_owned(), aor.to_string()),
        ("Call-ID".to_owned(), e.call_id.clone()),
        ("CSeq".to_owned(), CSeq::new(e.cseq, "REGISTER").to_string()),
        ("Contact".to_owned(), contact.to_string()),
        ("Expires".to_owned(), e.expires.to_string()),
        ("User-Agent".to_owned(), "doorsim".to_owned()),
    ];
    if let Some((name, value)) = credentials {
        headers.push((name.to_owned(), value));
    }
    let register = SipMessage {
        start: StartLine::Request { method: "REGISTER".into(), uri: format!("sip:{}", e.params.domain) },
        headers,
        body: Bytes::new(),
    };
    tracing::debug!(registrar = %e.params.registrar, cseq = e.cseq, expires = e.expires, "REGISTER");
    ctx.transactions.request(path, register).map(drop)
}
