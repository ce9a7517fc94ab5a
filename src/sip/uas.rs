//! The user agent as a server: requests that arrive (OPTIONS, INVITE and re-INVITE, ACK, BYE,
//! CANCEL, INFO), each answered in its server transaction.
//!
//! An INVITE rings (180) as an incoming call of the call engine once the device admits it
//! (AllowIncomingCalls, the access list: 486/403), the offer has a common codec (488) and the
//! call limit allows (486); the engine answers it (control API or its auto-answer timer) or
//! declines it. An initial INVITE for a dialog that exists is a retransmission (the last answer
//! again) or a merged request (482). A re-INVITE that puts the call on hold (`sendonly`,
//! `inactive`) stops our RTP; a later one resumes it.

use bytes::Bytes;
use rand::Rng;

use super::address::random_token;
use super::agent::{Agent, DialogTimer, ALLOW};
use super::dialog::{Dialog, Media, Phase, Side};
use super::headers::{NameAddr, Uri};
use super::message::SipMessage;
use super::reliable;
use super::sdp::{self, Direction};
use super::session_timer::{self, Asked};
use super::transaction::Key;
use super::transport::{Kind, Path};
use crate::calls::{CallState, Reason};
use crate::dtmf::{self, Method};
use crate::model::sip_configuration::AccessListPolicy;
use crate::model::SipConfiguration;

/// Whether `caller` is the address-of-record `listed`: scheme, user and host equal (case-
/// insensitively), and the port too when the list entry names one. Parameters are ignored.
fn same_aor(listed: &str, caller: &Uri) -> bool {
    let (Ok(listed), Uri::Sip { user: caller_user, host: caller_host, port: caller_port, .. }) =
        (Uri::parse(listed), caller)
    else {
        return false;
    };
    let Uri::Sip { user, host, port, .. } = listed else { return false };
    let lower = |s: &Option<String>| s.as_deref().map(str::to_ascii_lowercase);
    lower(&user) == lower(caller_user)
        && host.to_string().eq_ignore_ascii_case(&caller_host.to_string())
        && (port.is_none() || port == *caller_port)
}

/// Whether the configuration lets `caller` in: 403 or 486 when not.
fn admission(config: &SipConfiguration, caller: &Uri) -> Option<(u16, &'static str)> {
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

impl Agent {
    /// A new request in server transaction `key`.
    pub(super) fn on_request(&mut self, key: Key, path: Path, request: SipMessage) {
        match request.method().as_str() {
            "OPTIONS" => {
                let mut r = request.response(200, "OK", Some(&random_token()));
                r.set_header("Allow", ALLOW);
                r.set_header("Accept", "application/sdp, application/dtmf-relay, application/dtmf");
                self.transactions.respond(&key, r);
            }
            "INVITE" => self.on_invite(key, path, request),
            "BYE" => self.on_bye(&key, &request),
            "CANCEL" => self.on_cancel(&key, &request),
            "INFO" => self.on_info(&key, &request),
            "UPDATE" => self.on_update(key, &request),
            "PRACK" => self.on_prack(&key, &request),
            "REGISTER" | "SUBSCRIBE" | "NOTIFY" | "MESSAGE" | "REFER" | "PUBLISH" => {
                let mut r = request.response(405, "Method Not Allowed", Some(&random_token()));
                r.set_header("Allow", ALLOW);
                self.transactions.respond(&key, r);
            }
            _ => {
                let mut r = request.response(501, "Not Implemented", Some(&random_token()));
                r.set_header("Allow", ALLOW);
                self.transactions.respond(&key, r);
            }
        }
    }

    fn refuse(&mut self, key: &Key, request: &SipMessage, code: u16, text: &str) {
        let r = request.response(code, text, Some(&random_token()));
        self.transactions.respond(key, r);
    }

    fn on_invite(&mut self, key: Key, path: Path, invite: SipMessage) {
        let call_id = invite.header("Call-ID").unwrap_or_default().to_owned();
        let (Some(from), Some(to)) = (
            invite.header("From").and_then(|f| NameAddr::parse(f).ok()),
            invite.header("To").and_then(|t| NameAddr::parse(t).ok()),
        ) else {
            return self.refuse(&key, &invite, 400, "Bad From or To");
        };
        if to.tag().is_some() {
            return self.on_reinvite(key, invite, &call_id);
        }
        if let Some(d) = self.dialogs.get(&call_id) {
            // An initial INVITE for a dialog we have: the same one again, or a merged request.
            let same = d.side == Side::Incoming && d.remote.tag() == from.tag() && d.invite.cseq() == invite.cseq();
            if !same {
                return self.refuse(&key, &invite, 482, "Loop Detected");
            }
            let last = d.invite_key.as_ref().and_then(|k| self.transactions.last_response(k)).map(<[u8]>::to_vec);
            self.transactions.forget(&key);
            if let Some(last) = last {
                let _ = super::transport::Wire::send_bytes(self.transactions.wire(), &path, &last);
            }
            return;
        }
        let session_timer = match session_timer::asked(&invite) {
            Asked::TooSmall => return self.too_small(&key, &invite),
            Asked::Timer(t) => Some((t, None)),
            Asked::None => None,
        };
        let (config, codecs, media_encryption) = self.store.read(|s| {
            (
                s.sip_configuration.clone(),
                s.audio_codecs.iter().map(|c| c.name.clone()).collect::<Vec<_>>(),
                // The spec: with several accounts, the strictest MediaEncryption holds for all.
                s.sip_accounts.values().map(|a| a.media_encryption).max().unwrap_or_default(),
            )
        });
        let caller = from.uri.to_string();
        if let Some((code, text)) = admission(&config, &from.uri) {
            let _ = self.engine.incoming_sip(&caller, None, true);
            return self.refuse(&key, &invite, code, text);
        }
        let offer = std::str::from_utf8(&invite.body).ok().and_then(|b| sdp::parse(b).ok());
        let Some((remote, negotiated)) = offer.and_then(|o| sdp::negotiate(&o, &codecs).map(|n| (o, n))) else {
            return self.refuse(&key, &invite, 488, "Not Acceptable Here");
        };
        let security = sdp::answer_security(media_encryption, path.kind == Kind::Tls, &remote);
        let (sdes, remote_key) = match security {
            Ok(agreed) => (agreed.map(|(ours, _)| ours), agreed.map(|(_, theirs)| theirs)),
            Err(why) => {
                tracing::info!(%why, "incoming call refused");
                return self.refuse(&key, &invite, 488, "Not Acceptable Here");
            }
        };
        // The call limit first: a refused call binds no port and keeps nothing.
        let Ok(engine_id) = self.engine.incoming_sip(&caller, None, false) else {
            return self.refuse(&key, &invite, 486, "Busy Here");
        };
        let socket = match self.rtp_ports.bind(self.config.bind, config.rtp_start_port) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "no RTP port");
                self.engine.transition(&engine_id, CallState::Terminated, Reason::Failed);
                return self.refuse(&key, &invite, 503, "Service Unavailable");
            }
        };
        let local_tag = random_token();
        let port = socket.local_addr().map(|a| a.port()).unwrap_or_default();
        let mut formats = vec![(negotiated.payload_type, negotiated.codec.name())];
        if let Some(pt) = negotiated.telephone_event {
            formats.push((pt, "telephone-event"));
        }
        let session = rand::thread_rng().gen::<u32>().into();
        let remote_target =
            invite.header("Contact").and_then(|c| NameAddr::parse(c).ok()).map_or_else(|| from.uri.clone(), |c| c.uri);
        let route = invite.header_values("Record-Route").iter().filter_map(|r| NameAddr::parse(r).ok()).collect();
        let media = Media {
            negotiated: Some((negotiated, std::net::SocketAddr::new(remote.address, remote.port))),
            formats,
            port,
            session: (session, session),
            socket: Some(socket),
            rtp: None,
            counters: self.media_counters(port),
            dtmf: self.call_dtmf(None, &engine_id),
            direction: remote.direction.answer(),
            sdes,
            remote_key,
        };
        let local = self.local();
        let mut ringing = invite.response(180, "Ringing", Some(&local_tag));
        ringing.set_header("Contact", local.contact("door", path.kind).to_string());
        let reliable = reliable::required(&invite).then(|| reliable::make_reliable(&mut ringing));
        self.transactions.respond(&key, ringing);
        let dialog = Dialog {
            engine_id,
            side: Side::Incoming,
            call_id: call_id.clone(),
            local: to.with_tag(&local_tag),
            remote: from,
            remote_target,
            route,
            path,
            next_cseq: 1,
            phase: Phase::Ringing,
            invite,
            invite_key: Some(key),
            pending_ack: None,
            media,
            account: None,
            auth_tried: false,
            reliable,
            session: session_timer,
            acknowledged_rseq: None,
        };
        self.dialogs.insert(dialog);
        self.schedule_reliable(&call_id);
    }

    /// The engine answered ringing call `id`: 200 with our answer, retransmitted until the ACK.
    pub(super) fn answer(&mut self, id: &str) {
        let Some(call_id) = self.dialog_of(id) else { return };
        self.stop_reliable(&call_id); // the 2xx ends the 180's retransmissions
        let local = self.local();
        let Some(d) = self.dialogs.get_mut(&call_id) else { return };
        let Some(key) = d.invite_key.clone().filter(|_| d.phase == Phase::Ringing) else { return };
        let mut ok = d.invite.response(200, "OK", d.local.tag());
        ok.set_header("Contact", local.contact("door", d.path.kind).to_string());
        ok.set_header("Allow", ALLOW);
        ok.set_header("Content-Type", "application/sdp");
        ok.body = Bytes::from(d.media.sdp(&local));
        ok.set_header("Supported", "100rel, timer");
        if let Some((timer, _)) = d.session {
            timer.answer(&mut ok);
        }
        d.phase = Phase::Answered;
        d.pending_ack = d.invite.cseq().map(|(n, _)| (n, key.clone()));
        d.start_media(&self.engine);
        if let Some(rtp) = &d.media.rtp {
            rtp.set_sending(d.media.direction != Direction::Inactive && d.media.direction != Direction::RecvOnly);
        }
        self.transactions.respond(&key, ok);
        self.schedule_session(&call_id);
    }

    /// The engine declined ringing call `call_id`: 603 for a manual reject, else 486.
    pub(super) fn decline(&mut self, call_id: &str, reason: Reason) {
        let Some(d) = self.dialogs.remove(call_id) else { return };
        let Some(key) = d.invite_key else { return };
        let (code, text) = match reason {
            Reason::Denied => (603, "Decline"),
            // Nobody answered within CallingTimeout, or the device is going away.
            Reason::NoAnswer | Reason::Failed => (480, "Temporarily Unavailable"),
            _ => (486, "Busy Here"),
        };
        let r = d.invite.response(code, text, d.local.tag());
        self.transactions.respond(&key, r);
    }

    fn on_reinvite(&mut self, key: Key, invite: SipMessage, call_id: &str) {
        self.in_dialog_offer(key, &invite, call_id);
    }

    /// UPDATE (RFC 3311): a session refresh, with or without an offer.
    fn on_update(&mut self, key: Key, update: &SipMessage) {
        let call_id = update.header("Call-ID").unwrap_or_default().to_owned();
        self.in_dialog_offer(key, update, &call_id);
    }

    /// A re-INVITE or UPDATE in dialog `call_id`: a new offer (hold and resume) and a session
    /// refresh, both optional; answered 200 with our description and the session timer.
    fn in_dialog_offer(&mut self, key: Key, request: &SipMessage, call_id: &str) {
        let local = self.local();
        let Some(d) = self.dialogs.get_mut(call_id) else {
            return self.refuse(&key, request, 481, "Call/Transaction Does Not Exist");
        };
        let session = match session_timer::asked(request) {
            Asked::TooSmall => return self.too_small(&key, request),
            Asked::Timer(t) => Some(t),
            Asked::None => d.session.map(|(t, _)| t),
        };
        let invite = request.method() == "INVITE";
        if !request.body.is_empty() {
            let Some(offer) = std::str::from_utf8(&request.body).ok().and_then(|b| sdp::parse(b).ok()) else {
                return self.refuse(&key, request, 488, "Not Acceptable Here");
            };
            // Hold and resume (RFC 3264 section 8.4): answer the offered direction, and send
            // only while the peer wants to receive.
            let direction = if offer.port == 0 { Direction::Inactive } else { offer.direction };
            if d.media.direction != direction.answer() {
                // A changed description gets a new version; an unchanged one keeps it (RFC 3264 8).
                d.media.direction = direction.answer();
                d.media.session.1 += 1;
            }
            if let Some(rtp) = &d.media.rtp {
                rtp.set_sending(direction.peer_receives());
            }
            tracing::info!(call = %d.engine_id, direction = direction.as_str(), "new offer in the dialog");
        }
        let mut ok = request.response(200, "OK", d.local.tag());
        ok.set_header("Contact", local.contact("door", d.path.kind).to_string());
        ok.set_header("Allow", ALLOW);
        ok.set_header("Supported", "100rel, timer");
        // A re-INVITE always gets our description; an UPDATE only when it made an offer.
        if invite || !request.body.is_empty() {
            ok.set_header("Content-Type", "application/sdp");
            ok.body = Bytes::from(d.media.sdp(&local));
        }
        if let Some(timer) = session {
            timer.answer(&mut ok);
            d.session = Some((timer, d.session.and_then(|(_, k)| k)));
        }
        if invite {
            d.pending_ack = request.cseq().map(|(n, _)| (n, key.clone()));
        }
        self.transactions.respond(&key, ok);
        if session.is_some() {
            self.schedule_session(call_id); // the session was refreshed
        }
    }

    /// 422 for a session interval below the device's `Min-SE`.
    fn too_small(&mut self, key: &Key, request: &SipMessage) {
        let mut r = request.response(422, "Session Interval Too Small", Some(&random_token()));
        r.set_header("Min-SE", session_timer::MIN_SE.to_string());
        self.transactions.respond(key, r);
    }

    /// (Re)starts the session timer of dialog `call_id`: its refresh (the device refreshes) or
    /// its expiry (the caller refreshes), a scaled interval from now.
    pub(super) fn schedule_session(&mut self, call_id: &str) {
        let Some(d) = self.dialogs.get_mut(call_id) else { return };
        let Some((timer, pending)) = d.session.as_mut() else { return };
        if let Some(old) = pending.take() {
            self.dialog_timers.try_remove(&old);
        }
        let after = self.engine.scaled(timer.due_after());
        *pending = Some(self.dialog_timers.insert((call_id.to_owned(), DialogTimer::Session), after));
    }

    /// The session timer of `call_id` is due: the device refreshes with an UPDATE, or ends a
    /// session the caller stopped refreshing (BYE).
    pub(super) fn on_session_due(&mut self, call_id: &str) {
        let local = self.local();
        let Some(d) = self.dialogs.get_mut(call_id) else { return };
        let Some((timer, pending)) = d.session.as_mut() else { return };
        *pending = None;
        if !timer.device_refreshes {
            tracing::info!(call = %d.engine_id, "session expired: the peer stopped refreshing it");
            return self.hang_up(call_id, Reason::Failed);
        }
        let header = timer.refresh_header();
        let mut update = d.request("UPDATE", &local);
        update.set_header("Session-Expires", header);
        update.set_header("Supported", "timer");
        update.set_header("Contact", local.contact("door", d.path.kind).to_string());
        if let Err(e) = self.transactions.request(d.path, update) {
            tracing::debug!(error = %e, "session refresh not sent");
        }
        self.schedule_session(call_id);
    }

    /// An ACK outside any transaction: the ACK of our 2xx.
    pub(super) fn on_ack(&mut self, ack: &SipMessage) {
        let Some(d) = ack.header("Call-ID").and_then(|c| self.dialogs.get_mut(c)) else { return };
        let number = ack.cseq().map(|(n, _)| n);
        if let Some((_, key)) = d.pending_ack.take_if(|(n, _)| Some(*n) == number) {
            self.transactions.acknowledged(&key);
        }
        if d.phase == Phase::Answered {
            d.phase = Phase::Confirmed;
        }
    }

    fn on_bye(&mut self, key: &Key, bye: &SipMessage) {
        let Some(d) = bye.header("Call-ID").and_then(|c| self.dialogs.remove(c)) else {
            return self.refuse(key, bye, 481, "Call/Transaction Does Not Exist");
        };
        let r = bye.response(200, "OK", None);
        self.transactions.respond(key, r);
        if let Some((_, k)) = &d.pending_ack {
            self.transactions.acknowledged(k); // the peer is gone: stop the 2xx
        }
        self.engine.transition(&d.engine_id, CallState::Terminated, Reason::Terminated);
    }

    fn on_cancel(&mut self, key: &Key, cancel: &SipMessage) {
        // The INVITE it cancels: same branch (RFC 3261 9.2), or, for peers that give a CANCEL
        // a branch of its own, the ringing dialog with its Call-ID and CSeq number.
        let by_branch = Key::invite_of_cancel(cancel).filter(|k| self.transactions.has_server(k));
        let call_id = cancel.header("Call-ID").unwrap_or_default();
        let number = cancel.cseq().map(|(n, _)| n);
        let invite_key = by_branch.or_else(|| {
            let d = self.dialogs.get(call_id)?;
            (d.phase == Phase::Ringing && d.invite.cseq().map(|(n, _)| n) == number).then(|| d.invite_key.clone())?
        });
        let Some(invite_key) = invite_key else {
            return self.refuse(key, cancel, 481, "Call/Transaction Does Not Exist");
        };
        let r = cancel.response(200, "OK", None);
        self.transactions.respond(key, r);
        let ringing = self
            .dialogs
            .values()
            .find(|d| d.invite_key.as_ref() == Some(&invite_key) && d.phase == Phase::Ringing)
            .map(|d| d.call_id.clone());
        if let Some(d) = ringing.and_then(|c| self.dialogs.remove(&c)) {
            let terminated = d.invite.response(487, "Request Terminated", d.local.tag());
            self.transactions.respond(&invite_key, terminated);
            self.engine.transition(&d.engine_id, CallState::Terminated, Reason::Terminated);
        }
    }

    fn on_info(&mut self, key: &Key, info: &SipMessage) {
        let dialog = info.header("Call-ID").and_then(|c| self.dialogs.get(c));
        let (code, text) = match dialog {
            None => (481, "Call/Transaction Does Not Exist"),
            Some(_) if info.body.is_empty() => (200, "OK"), // a keep-alive
            Some(d) => match dtmf::info::digit(info.header("Content-Type").unwrap_or_default(), &info.body) {
                Ok(digit) => {
                    d.media.dtmf.lock().unwrap_or_else(std::sync::PoisonError::into_inner).digit(
                        digit,
                        Method::Rfc2976,
                        std::time::Instant::now(),
                    );
                    (200, "OK")
                }
                Err(why) => {
                    tracing::info!(%why, "INFO body refused");
                    (400, "Bad Request")
                }
            },
        };
        let r = info.response(code, text, None);
        self.transactions.respond(key, r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_list_entries_match_addresses_of_record() {
        let uri = |s: &str| Uri::parse(s).expect("valid in the test");
        assert!(same_aor("sip:sipp@127.0.0.1", &uri("sip:sipp@127.0.0.1:5070;transport=udp")));
        assert!(same_aor("SIP:Guard@PBX.local", &uri("sips:guard@pbx.local")));
        assert!(same_aor("sip:a@h:5060", &uri("sip:a@h:5060")));
        assert!(!same_aor("sip:a@h:5060", &uri("sip:a@h:5070")));
        assert!(!same_aor("sip:a@h", &uri("sip:b@h")));
        assert!(same_aor("sip:10.0.0.1", &uri("sip:10.0.0.1:5062")));
    }
}
