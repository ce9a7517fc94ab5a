//! The user agent as a client of calls: `Call` to a `sip:` URI sends an INVITE with an offer
//! from the codec priority list (through the account's first SIP proxy when it has one, as a
//! pre-loaded Route), answers a 401/407 challenge with the account's credentials, ACKs a 2xx,
//! maps 486/600 to Busy and other failures (408 at Timer B, 503 when the path cannot be opened)
//! to Failed, CANCELs on CallingTimeout or TerminateCall, and ends a call with BYE.

use bytes::Bytes;
use rand::Rng;

use super::address::random_token;
use super::agent::{Agent, ALLOW};
use super::connect::{ConnectError, Destination, Purpose};
use super::dialog::{Dialog, Media, Phase, Side};
use super::headers::{NameAddr, Uri};
use super::message::{SipMessage, StartLine};
use super::sdp::{self, Direction};
use super::session_timer;
use super::transport::{Kind, Path};
use crate::calls::{CallState, Reason};
use crate::model::sip_account::Transport;

/// The transport kind of an account's transport setting.
pub(super) fn kind_of(transport: Transport) -> Kind {
    match transport {
        Transport::Udp => Kind::Udp,
        Transport::Tcp => Kind::Tcp,
        Transport::Tls => Kind::Tls,
    }
}

/// Why an outgoing call could not start.
#[derive(Debug, thiserror::Error)]
enum PlaceError {
    #[error("the account is gone")]
    NoAccount,
    #[error("the target is not a SIP URI: {0}")]
    BadTarget(String),
    #[error("no RTP port: {0}")]
    NoRtpPort(std::io::Error),
    #[error("the INVITE could not be sent: {0}")]
    NotSent(super::transport::SendError),
    #[error("{0}")]
    NoPath(ConnectError),
}

impl Agent {
    /// The engine placed call `id`: find the next hop and send the INVITE once a path is open.
    pub(super) fn place(&mut self, id: String, to: String, account_id: String) {
        let Some(account) = self.store.read(|s| s.sip_accounts.get(&account_id).cloned()) else {
            return self.call_failed(&id, &PlaceError::NoAccount);
        };
        let next_hop = match account.sip_proxies.first() {
            Some(p) => Uri::parse(&format!("sip:{}", p.server)).or_else(|_| Uri::parse(&p.server)),
            None => Uri::parse(&to),
        };
        let Some((host, port)) = next_hop.ok().and_then(|u| u.host_port()) else {
            return self.call_failed(&id, &PlaceError::BadTarget(to));
        };
        let destination =
            Destination { kind: kind_of(account.transport), host, port, verify: account.verify_server_certificate };
        match self.connector.ready(&destination) {
            Some(path) => self.send_invite(&id, &to, &account_id, path),
            None => {
                self.pending_calls.insert(id.clone(), (to, account_id));
                self.connector.open(Purpose::Call(id), destination);
            }
        }
    }

    /// A path for a call waiting for one was opened, or could not be.
    pub(super) fn on_call_path(&mut self, id: &str, result: Result<Path, ConnectError>) {
        let Some((to, account)) = self.pending_calls.remove(id) else { return }; // ended meanwhile
        match result {
            Ok(path) => self.send_invite(id, &to, &account, path),
            Err(e) => self.call_failed(id, &PlaceError::NoPath(e)),
        }
    }

    fn call_failed(&self, id: &str, why: &PlaceError) {
        tracing::info!(id, %why, "outgoing call failed");
        self.engine.transition(id, CallState::Terminated, Reason::Failed);
    }

    fn send_invite(&mut self, id: &str, to: &str, account_id: &str, path: Path) {
        if let Err(why) = self.try_send_invite(id, to, account_id, path) {
            self.call_failed(id, &why);
        }
    }

    fn try_send_invite(&mut self, id: &str, to: &str, account_id: &str, path: Path) -> Result<(), PlaceError> {
        let (account, rtp_start, codecs) = self.store.read(|s| {
            (
                s.sip_accounts.get(account_id).cloned(),
                s.sip_configuration.rtp_start_port,
                s.audio_codecs.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
            )
        });
        let account = account.ok_or(PlaceError::NoAccount)?;
        let target = Uri::parse(to).map_err(|_| PlaceError::BadTarget(to.to_owned()))?;
        let socket = self.rtp_ports.bind(self.config.bind, rtp_start).map_err(PlaceError::NoRtpPort)?;
        let local = self.local();
        let session = rand::thread_rng().gen::<u32>().into();
        let port = socket.local_addr().map(|a| a.port()).unwrap_or_default();
        let media = Media {
            negotiated: None,
            formats: sdp::offer_formats(&codecs),
            port,
            session: (session, session),
            socket: Some(socket),
            rtp: None,
            counters: self.media_counters(port),
            dtmf: self.call_dtmf(Some(account_id), id),
            direction: Direction::SendRecv,
            sdes: sdp::offer_security(account.media_encryption, path.kind == Kind::Tls),
            remote_key: None,
        };
        let domain = [&account.public_domain, &account.registrar]
            .into_iter()
            .find(|d| !d.is_empty())
            .cloned()
            .unwrap_or_else(|| super::headers::Host::Ip(local.address).to_string());
        let from_uri = Uri::parse(&format!("sip:{}@{domain}", account.user_id))
            .unwrap_or_else(|_| local.contact(&account.user_id, path.kind).uri);
        let mut from = NameAddr::new(from_uri).with_tag(&random_token());
        if !account.caller_id.is_empty() {
            from.display = Some(account.caller_id.clone());
        }
        let route: Vec<NameAddr> = account
            .sip_proxies
            .iter()
            .filter_map(|p| Uri::parse(&format!("sip:{}", p.server)).ok())
            .map(|mut u| {
                u.set_param("lr", None);
                NameAddr::new(u)
            })
            .collect();
        let mut d = Dialog {
            engine_id: id.to_owned(),
            side: Side::Outgoing,
            call_id: format!("{}@{}", random_token(), super::headers::Host::Ip(local.address)),
            local: from,
            remote: NameAddr::new(target.clone()),
            remote_target: target,
            route,
            path,
            next_cseq: 1,
            phase: Phase::Calling,
            invite: SipMessage {
                start: StartLine::Request { method: "INVITE".into(), uri: String::new() },
                headers: Vec::new(),
                body: Bytes::new(),
            },
            invite_key: None,
            pending_ack: None,
            media,
            account: Some(account.clone()),
            auth_tried: false,
            reliable: None,
            session: None,
            acknowledged_rseq: None,
        };
        let mut invite = d.request("INVITE", &local);
        invite.set_header("Contact", local.contact(&account.user_id, path.kind).to_string());
        invite.set_header("Allow", ALLOW);
        // Reliable provisional responses and session timers are taken when the callee uses them.
        invite.set_header("Supported", "100rel, timer");
        invite.set_header("Session-Expires", session_timer::OFFERED_INTERVAL.to_string());
        invite.set_header("Min-SE", session_timer::MIN_SE.to_string());
        invite.set_header("Content-Type", "application/sdp");
        invite.body = Bytes::from(d.media.sdp(&local));
        d.invite = invite.clone();
        self.transactions.request(path, invite).map_err(PlaceError::NotSent)?;
        self.dialogs.insert(d);
        Ok(())
    }

    /// A response to one of our INVITEs, passed up by its transaction (a 408 from Timer B
    /// included), or a retransmitted 2xx.
    pub(super) fn on_invite_response(&mut self, response: &SipMessage) {
        let Some(code) = response.code() else { return };
        let call_id = response.header("Call-ID").unwrap_or_default().to_owned();
        let local = self.local();
        let Some(d) = self.dialogs.get_mut(&call_id).filter(|d| d.side == Side::Outgoing) else { return };
        if response.cseq().map(|(n, _)| n) != d.invite.cseq().map(|(n, _)| n) {
            return; // an answer to an INVITE we already replaced
        }
        match code {
            100..=199 if d.phase == Phase::Calling => self.on_provisional(&call_id, response),
            100..=199 => {}
            200..=299 => {
                if let Some(to) = response.header("To").and_then(|t| NameAddr::parse(t).ok()) {
                    d.remote = to;
                }
                if let Some(contact) = response.header("Contact").and_then(|c| NameAddr::parse(c).ok()) {
                    d.remote_target = contact.uri;
                }
                if d.phase == Phase::Calling {
                    // The route set: Record-Route of the 2xx, reversed (RFC 3261 12.1.2).
                    let mut route: Vec<NameAddr> =
                        response.header_values("Record-Route").iter().filter_map(|r| NameAddr::parse(r).ok()).collect();
                    route.reverse();
                    d.route = route;
                }
                let ack = d.ack(&local);
                let _ = super::transport::Wire::send(self.transactions.wire(), &d.path, &ack);
                match d.phase {
                    Phase::Calling => {
                        let codecs =
                            self.store.read(|s| s.audio_codecs.iter().map(|c| c.name.clone()).collect::<Vec<_>>());
                        let answer = std::str::from_utf8(&response.body).ok().and_then(|b| sdp::parse(b).ok());
                        if let Some(a) = &answer {
                            d.media.negotiated =
                                sdp::negotiate(a, &codecs).map(|n| (n, std::net::SocketAddr::new(a.address, a.port)));
                        }
                        d.phase = Phase::Confirmed;
                        d.session = session_timer::answered(response).map(|t| (t, None));
                        // Our offer's key: the peer's key in its answer makes the call SRTP; no
                        // key falls back to plain RTP unless SRTP was mandatory (RTP/SAVP).
                        match (d.media.sdes, answer.as_ref().and_then(sdp::RemoteAudio::usable_key)) {
                            (Some(_), Some((_, theirs))) => d.media.remote_key = Some(theirs),
                            (Some(ours), None) if ours.savp => {
                                tracing::info!(id = %d.engine_id, "the answer has no SDES key: SRTP is mandatory");
                                return self.hang_up(&call_id, Reason::Failed);
                            }
                            _ => d.media.sdes = None,
                        }
                        d.start_media(&self.engine);
                        if let (Some(rtp), Some(a)) = (&d.media.rtp, &answer) {
                            rtp.set_sending(a.port != 0 && a.direction.peer_receives());
                        }
                        self.engine.transition(&d.engine_id, CallState::Active, Reason::AcceptedByRemote);
                        self.schedule_session(&call_id);
                    }
                    // The answer crossed our CANCEL: the call is over, end the dialog it made.
                    Phase::Cancelling(reason) => self.hang_up(&call_id, reason),
                    _ => {} // a retransmitted 2xx: ACKed again above
                }
            }
            // The callee or a proxy wants a longer session interval (RFC 4028 section 7.3).
            422 if d.phase == Phase::Calling => {
                let asked = session_timer::min_se(response)
                    .filter(|m| *m > session_timer::session_expires(&d.invite).map_or(0, |(interval, _)| interval));
                let Some(min_se) = asked else { return self.fail(&call_id, Reason::Failed) };
                let invite =
                    d.invite_again(&local, &[("Session-Expires", min_se.to_string()), ("Min-SE", min_se.to_string())]);
                d.invite = invite.clone();
                let path = d.path;
                if let Err(e) = self.transactions.request(path, invite) {
                    tracing::info!(error = %e, "INVITE with a longer session interval not sent");
                    self.fail(&call_id, Reason::Failed);
                }
            }
            401 | 407 if !d.auth_tried && d.phase == Phase::Calling => match d.authorized_invite(response, &local) {
                Some(invite) => {
                    d.invite = invite.clone();
                    d.auth_tried = true;
                    let path = d.path;
                    if let Err(e) = self.transactions.request(path, invite) {
                        tracing::info!(error = %e, "authorized INVITE not sent");
                        self.fail(&call_id, Reason::Failed);
                    }
                }
                None => self.fail(&call_id, Reason::Failed),
            },
            _ => {
                let reason = match code {
                    486 | 600 => Reason::Busy,
                    _ => Reason::Failed,
                };
                self.fail(&call_id, reason);
            }
        }
    }

    /// A provisional answer to our INVITE: the early dialog learns the callee's tag, Contact and
    /// route; a reliable one (RFC 3262) is acknowledged with PRACK, once per `RSeq`.
    fn on_provisional(&mut self, call_id: &str, response: &SipMessage) {
        let local = self.local();
        let Some(d) = self.dialogs.get_mut(call_id) else { return };
        let to = response.header("To").and_then(|t| NameAddr::parse(t).ok()).filter(|t| t.tag().is_some());
        let Some(to) = to else { return }; // a 100 Trying or an 18x outside any early dialog
        d.remote = to;
        if let Some(contact) = response.header("Contact").and_then(|c| NameAddr::parse(c).ok()) {
            d.remote_target = contact.uri;
        }
        let mut route: Vec<NameAddr> =
            response.header_values("Record-Route").iter().filter_map(|r| NameAddr::parse(r).ok()).collect();
        if !route.is_empty() {
            route.reverse();
            d.route = route;
        }
        let reliable = response.header_values("Require").iter().any(|o| o.eq_ignore_ascii_case("100rel"));
        let rseq = response.header("RSeq").and_then(|r| r.trim().parse::<u32>().ok());
        let (true, Some(rseq), Some((cseq, _))) = (reliable, rseq, response.cseq()) else { return };
        if d.acknowledged_rseq.is_some_and(|last| rseq <= last) {
            return; // a retransmission: our PRACK for it is on its way
        }
        d.acknowledged_rseq = Some(rseq);
        let mut prack = d.request("PRACK", &local);
        prack.set_header("RAck", format!("{rseq} {cseq} INVITE"));
        if let Err(e) = self.transactions.request(d.path, prack) {
            tracing::debug!(error = %e, "PRACK not sent");
        }
    }

    /// Ends outgoing dialog `call_id` with `reason` (a no-op for the engine if the call already
    /// ended).
    fn fail(&mut self, call_id: &str, reason: Reason) {
        if let Some(d) = self.dialogs.remove(call_id) {
            // A cancelled call ends for the reason it was cancelled, whatever the answer says.
            let reason = if let Phase::Cancelling(why) = d.phase { why } else { reason };
            self.engine.transition(&d.engine_id, CallState::Terminated, reason);
        }
    }

    /// The engine ends call `id`: decline while ringing, CANCEL while calling, BYE when up.
    /// A call Terminating meanwhile ends when its CANCEL's INVITE or its BYE is answered (or
    /// times out); with nothing to send it ends at once.
    pub(super) fn end(&mut self, id: &str, reason: Reason) {
        let pending = self.pending_calls.remove(id).is_some();
        let Some(call_id) = self.dialog_of(id).filter(|_| !pending) else {
            // No INVITE went out yet, or no dialog is left: nothing is on the wire.
            self.engine.transition(id, CallState::Terminated, reason);
            return;
        };
        let Some(phase) = self.dialogs.get(&call_id).map(|d| d.phase) else { return };
        match phase {
            Phase::Ringing => self.decline(&call_id, reason),
            Phase::Calling => {
                let Some(d) = self.dialogs.get_mut(&call_id) else { return };
                // CANCEL the INVITE; the dialog stays for the final answer that follows.
                d.phase = Phase::Cancelling(reason);
                let (cancel, path) = (d.cancel(), d.path);
                if let Err(e) = self.transactions.request(path, cancel) {
                    tracing::debug!(error = %e, "CANCEL not sent");
                    self.dialogs.remove(&call_id);
                    self.engine.transition(id, CallState::Terminated, reason);
                }
            }
            Phase::Cancelling(_) => {}
            Phase::Answered | Phase::Confirmed => self.hang_up(&call_id, reason),
        }
    }
}
