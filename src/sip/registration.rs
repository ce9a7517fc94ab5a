//! Registration of the accounts that have a Registrar or PublicDomain (RFC 3261 section 10):
//! REGISTER with digest auth, refresh before expiry, re-register when the account changes,
//! un-register (Expires: 0) when it goes or SIP is disabled. Results land in the store, where
//! GetSIPAccountStatus(es) read them: RegURI, the last status code and reason phrase.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::address::{host_of, hostport, random_token};
use super::digest;
use super::message::{SipMessage, StartLine};
use super::network::Network;
use super::transport::{Kind, Reply};
use crate::model::attribute::int_attribute;
use crate::model::sip_account::{Registration, Transport};
use crate::model::SipAccount;
use crate::store::Store;

/// RFC 3261 T1 and the transaction timeout (Timer F) for REGISTER over UDP.
const T1: Duration = Duration::from_millis(500);
const TIMER_F: Duration = Duration::from_secs(32);
/// How long to wait before trying again after a failure.
const RETRY: Duration = Duration::from_secs(30);
/// How long to wait when the registrar could not even be addressed (SIP starting, DNS).
const RETRY_UNREACHABLE: Duration = Duration::from_secs(1);

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
}

impl Params {
    fn of(account: &SipAccount, config_attributes: &[crate::model::Attribute]) -> Option<Params> {
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
        })
    }
}

#[derive(Debug)]
struct Entry {
    params: Params,
    call_id: String,
    local_tag: String,
    cseq: u32,
    reply: Option<Reply>,
    /// The REGISTER in flight, with its retransmission schedule (UDP).
    in_flight: Option<(SipMessage, Instant, Duration, Instant)>,
    auth_tried: bool,
    /// When to register again (refresh or retry).
    next: Instant,
    /// Sending Expires: 0.
    leaving: bool,
}

/// The registrations of one device.
#[derive(Debug, Default)]
pub struct Registrations {
    entries: HashMap<String, Entry>,
}

/// What registering needs from the user agent.
pub struct Context<'a> {
    /// The store (accounts, configuration, status board).
    pub store: &'a Arc<Store>,
    /// The way out.
    pub network: &'a Network,
    /// Address written in Via and Contact.
    pub address: IpAddr,
}

impl Registrations {
    /// Brings the registrations in line with the store: new or changed accounts register,
    /// removed ones (or all, when SIP is off) un-register.
    pub async fn reconcile(&mut self, ctx: &Context<'_>) {
        let (enabled, wanted): (bool, HashMap<String, Params>) = ctx.store.read(|s| {
            let attrs = &s.sip_configuration.attribute;
            (
                s.sip_configuration.sip_enabled,
                s.sip_accounts.values().filter_map(|a| Params::of(a, attrs).map(|p| (a.id.clone(), p))).collect(),
            )
        });
        let wanted = if enabled { wanted } else { HashMap::new() };
        tracing::debug!(accounts = wanted.len(), "reconciling registrations");
        let gone: Vec<String> = self
            .entries
            .iter()
            .filter(|(id, e)| !e.leaving && wanted.get(*id) != Some(&e.params))
            .map(|(id, _)| id.clone())
            .collect();
        for id in gone {
            ctx.store.set_registration(&id, None);
            if let Some(e) = self.entries.get_mut(&id) {
                if enabled {
                    e.leaving = true;
                    e.auth_tried = false;
                    send(e, 0, ctx).await;
                } else {
                    self.entries.remove(&id); // the listeners are gone: nothing can be sent
                }
            }
        }
        for (id, params) in wanted {
            if self.entries.get(&id).is_some_and(|e| e.params == params && !e.leaving) {
                continue;
            }
            self.entries.remove(&id);
            let mut entry = Entry {
                params,
                call_id: format!("{}@doorsim", random_token()),
                local_tag: random_token(),
                cseq: 0,
                reply: None,
                in_flight: None,
                auth_tried: false,
                next: Instant::now(),
                leaving: false,
            };
            let interval = entry.params.interval;
            send(&mut entry, interval, ctx).await;
            self.entries.insert(id, entry);
        }
    }

    /// Retransmits over UDP, gives up after Timer F, refreshes and retries when due.
    pub async fn tick(&mut self, ctx: &Context<'_>) {
        let now = Instant::now();
        let ids: Vec<String> = self.entries.keys().cloned().collect();
        for id in ids {
            let Some(e) = self.entries.get_mut(&id) else { continue };
            if let Some((message, next, interval, give_up)) = e.in_flight.as_mut() {
                if now >= *give_up {
                    e.in_flight = None;
                    e.next = now + RETRY;
                    record(ctx.store, &id, e, 408, "Request Timeout");
                } else if now >= *next {
                    if let Some(r) = &e.reply {
                        r.send(message);
                    }
                    *interval = (*interval * 2).min(Duration::from_secs(4));
                    *next = now + *interval;
                }
            } else if !e.leaving && now >= e.next {
                e.auth_tried = false;
                let interval = e.params.interval;
                send(e, interval, ctx).await;
            }
        }
    }

    /// Handles a response to a REGISTER; returns whether it was one of ours.
    pub async fn on_response(&mut self, response: &SipMessage, ctx: &Context<'_>) -> bool {
        let call_id = response.header("Call-ID").unwrap_or_default();
        let Some((id, e)) = self.entries.iter_mut().find(|(_, e)| e.call_id == call_id) else { return false };
        let id = id.clone();
        let Some(code) = response.code() else { return true };
        if response.cseq().map(|(n, _)| n) != Some(e.cseq) || code < 200 {
            return true;
        }
        e.in_flight = None;
        let reason = match &response.start {
            StartLine::Response { reason, .. } => reason.clone(),
            StartLine::Request { .. } => String::new(),
        };
        if e.leaving {
            self.entries.remove(&id);
            return true;
        }
        match code {
            200..=299 => {
                let granted = response
                    .header("Expires")
                    .and_then(|v| v.parse::<u64>().ok())
                    .or_else(|| {
                        response.header_values("Contact").iter().find_map(|c| {
                            c.split(';').find_map(|p| p.trim().strip_prefix("expires=").and_then(|v| v.parse().ok()))
                        })
                    })
                    .unwrap_or(u64::from(e.params.interval))
                    .max(1);
                // Refresh at 90 % of the granted time, as UAs commonly do.
                e.next = Instant::now() + Duration::from_secs(granted) * 9 / 10;
                e.auth_tried = false;
                record(ctx.store, &id, e, code, &reason);
            }
            401 | 407 if !e.auth_tried => {
                e.auth_tried = true;
                let uri = format!("sip:{}", e.params.domain);
                match digest::answer(response, "REGISTER", &uri, &e.params.auth_user, &e.params.password) {
                    Some(credentials) => {
                        let interval = e.params.interval;
                        send_with(e, interval, Some(credentials), ctx).await;
                    }
                    None => {
                        e.next = Instant::now() + RETRY;
                        record(ctx.store, &id, e, code, &reason);
                    }
                }
            }
            _ => {
                e.next = Instant::now() + RETRY;
                record(ctx.store, &id, e, code, &reason);
            }
        }
        true
    }
}

fn record(store: &Store, id: &str, e: &Entry, status: u16, text: &str) {
    store.set_registration(
        id,
        Some(Registration { reg_uri: e.params.registrar.clone(), status, status_text: text.to_owned() }),
    );
}

async fn send(e: &mut Entry, expires: u32, ctx: &Context<'_>) {
    send_with(e, expires, None, ctx).await;
}

/// Sends a REGISTER (a new CSeq each time), optionally with credentials.
async fn send_with(e: &mut Entry, expires: u32, credentials: Option<(&'static str, String)>, ctx: &Context<'_>) {
    if e.reply.is_none() {
        match ctx.network.path(e.params.transport, &hostport(&e.params.registrar), e.params.verify).await {
            Ok(r) => e.reply = Some(r),
            Err(why) => {
                tracing::info!(registrar = %e.params.registrar, why, "cannot reach the registrar");
                e.next = Instant::now() + RETRY_UNREACHABLE;
                return;
            }
        }
    }
    let Some(reply) = e.reply.clone() else { return };
    e.cseq += 1;
    let (port, kind) = (ctx.store.read(|s| s.sip_configuration.sip_port), reply.kind());
    let host = host_of(ctx.address);
    let aor = format!("<sip:{}@{}>", e.params.user, e.params.domain);
    let mut headers = vec![
        ("Via".to_owned(), format!("SIP/2.0/{} {host}:{port};branch=z9hG4bK{};rport", kind.via(), random_token())),
        ("Max-Forwards".to_owned(), "70".to_owned()),
        ("From".to_owned(), format!("{aor};tag={}", e.local_tag)),
        ("To".to_owned(), aor),
        ("Call-ID".to_owned(), e.call_id.clone()),
        ("CSeq".to_owned(), format!("{} REGISTER", e.cseq)),
        (
            "Contact".to_owned(),
            format!("<sip:{}@{host}:{port};transport={}>", e.params.user, kind.via().to_ascii_lowercase()),
        ),
        ("Expires".to_owned(), expires.to_string()),
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
    tracing::debug!(registrar = %e.params.registrar, cseq = e.cseq, expires, "REGISTER");
    reply.send(&register);
    let now = Instant::now();
    let retransmit_at = if kind == Kind::Udp { now + T1 } else { now + TIMER_F };
    e.in_flight = Some((register, retransmit_at, T1, now + TIMER_F));
}
