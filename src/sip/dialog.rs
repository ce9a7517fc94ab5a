//! A call's SIP dialog as the user agent keeps it, and the requests made within it (BYE, INFO,
//! CANCEL, ACK, an INVITE with credentials), RFC 3261 sections 12, 9.1 and 17.1.1.3.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::address::{host_of, random_token, uri_of};
use super::digest;
use super::message::{tag_of, SipMessage, StartLine};
use super::sdp::Negotiated;
use super::transport::{Kind, Reply};
use crate::calls::{CallEngine, MediaCounters};
use crate::dtmf::CallDtmf;
use crate::model::SipAccount;
use crate::rtp::session::{MediaPlan, RtpSession};

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Incoming, ringing here.
    Ringing,
    /// Outgoing, waiting for the final answer.
    Calling,
    /// Outgoing, CANCEL sent, waiting for the 487 to ACK.
    Cancelling,
    /// Incoming, 200 sent, waiting for the ACK.
    Answered,
    /// The dialog is up.
    Confirmed,
}

/// Which side started the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    /// The peer called the device.
    Incoming,
    /// The device called the peer.
    Outgoing,
}

/// A message retransmitted over UDP at T1, 2·T1, ... up to T2 (RFC 3261 17.1.1.2, 13.3.1.4):
/// our 2xx to an INVITE until its ACK, or our INVITE until any answer.
#[derive(Debug)]
pub(super) struct Retransmit {
    pub(super) message: SipMessage,
    pub(super) next: Instant,
    pub(super) interval: Duration,
    pub(super) give_up: Instant,
}

#[derive(Debug)]
pub(super) struct Dialog {
    pub(super) engine_id: String,
    pub(super) side: Side,
    /// The INVITE: received (incoming) or sent (outgoing, the latest one).
    pub(super) invite: SipMessage,
    pub(super) reply: Reply,
    pub(super) local_tag: String,
    pub(super) phase: Phase,
    /// Agreed media, once known (at the offer for incoming, at the answer for outgoing).
    pub(super) negotiated: Option<(Negotiated, SocketAddr)>,
    pub(super) local_sdp: String,
    pub(super) rtp_socket: Option<UdpSocket>,
    pub(super) rtp: Option<RtpSession>,
    pub(super) counters: Arc<MediaCounters>,
    /// Our next CSeq number in this dialog.
    pub(super) next_cseq: u32,
    /// The peer's To tag and Contact URI, once the dialog is up (outgoing).
    pub(super) remote_tag: Option<String>,
    pub(super) remote_target: Option<String>,
    /// The account of an outgoing call (credentials for a challenge).
    pub(super) account: Option<SipAccount>,
    pub(super) auth_tried: bool,
    /// A 2xx (incoming) or our INVITE (outgoing, UDP) being retransmitted.
    pub(super) retransmit: Option<Retransmit>,
    /// DTMF received on the call (RTP and INFO), under the account's configuration.
    pub(super) dtmf: Arc<Mutex<CallDtmf>>,
}

/// A BYE within the dialog `d` (either direction); takes the next CSeq.
pub(super) fn bye_for(d: &mut Dialog, address: IpAddr) -> SipMessage {
    in_dialog(d, address, "BYE")
}

/// A request of `method` within the dialog `d` (either direction); takes the next CSeq.
pub(super) fn in_dialog(d: &mut Dialog, address: IpAddr, method: &str) -> SipMessage {
    let invite = &d.invite;
    let (target, from, to) = match d.side {
        Side::Incoming => {
            let target =
                invite.header("Contact").map(uri_of).or_else(|| invite.header("From").map(uri_of)).unwrap_or_default();
            let from = invite.header("To").unwrap_or_default();
            let from = if tag_of(from).is_some() { from.to_owned() } else { format!("{from};tag={}", d.local_tag) };
            (target.to_owned(), from, invite.header("From").unwrap_or_default().to_owned())
        }
        Side::Outgoing => {
            let to = invite.header("To").unwrap_or_default();
            let to = match &d.remote_tag {
                Some(tag) if tag_of(to).is_none() => format!("{to};tag={tag}"),
                _ => to.to_owned(),
            };
            let target =
                d.remote_target.clone().unwrap_or_else(|| uri_of(invite.header("To").unwrap_or_default()).to_owned());
            (target, invite.header("From").unwrap_or_default().to_owned(), to)
        }
    };
    let cseq = d.next_cseq;
    d.next_cseq += 1;
    let mut headers = vec![
        (
            "Via".into(),
            format!("SIP/2.0/{} {};branch=z9hG4bK{};rport", d.reply.kind().via(), host_of(address), random_token()),
        ),
        ("Max-Forwards".into(), "70".into()),
        ("From".into(), from),
        ("To".into(), to),
        ("Call-ID".into(), invite.header("Call-ID").unwrap_or_default().to_owned()),
        ("CSeq".into(), format!("{cseq} {method}")),
    ];
    if d.side == Side::Outgoing {
        headers.extend(invite.headers.iter().filter(|(n, _)| n == "Route").cloned());
    }
    SipMessage { start: StartLine::Request { method: method.into(), uri: target }, headers, body: Bytes::new() }
}

/// A CANCEL for our INVITE (RFC 3261 9.1): same Request-URI, Via, From, To, Call-ID, Route and
/// CSeq number.
pub(super) fn cancel_for(invite: &SipMessage) -> SipMessage {
    let StartLine::Request { uri, .. } = &invite.start else { return invite.clone() };
    let number = invite.cseq().map(|(n, _)| n).unwrap_or(1);
    let mut headers: Vec<(String, String)> = invite
        .headers
        .iter()
        .filter(|(n, _)| matches!(n.as_str(), "Via" | "From" | "To" | "Call-ID" | "Route" | "Max-Forwards"))
        .cloned()
        .collect();
    headers.push(("CSeq".into(), format!("{number} CANCEL")));
    SipMessage { start: StartLine::Request { method: "CANCEL".into(), uri: uri.clone() }, headers, body: Bytes::new() }
}

/// The ACK for a final response to our INVITE: for a 2xx a new transaction to the remote target,
/// for an error the same branch (RFC 3261 17.1.1.3).
pub(super) fn ack_for(
    invite: &SipMessage,
    response: &SipMessage,
    target: Option<&str>,
    address: IpAddr,
    kind: Kind,
) -> SipMessage {
    let StartLine::Request { uri, .. } = &invite.start else { return invite.clone() };
    let success = response.code().is_some_and(|c| (200..300).contains(&c));
    let via = if success {
        format!("SIP/2.0/{} {};branch=z9hG4bK{};rport", kind.via(), host_of(address), random_token())
    } else {
        invite.header("Via").unwrap_or_default().to_owned()
    };
    let number = invite.cseq().map(|(n, _)| n).unwrap_or(1);
    let mut headers = vec![
        ("Via".to_owned(), via),
        ("Max-Forwards".to_owned(), "70".to_owned()),
        ("From".to_owned(), invite.header("From").unwrap_or_default().to_owned()),
        ("To".to_owned(), response.header("To").unwrap_or_default().to_owned()),
        ("Call-ID".to_owned(), invite.header("Call-ID").unwrap_or_default().to_owned()),
        ("CSeq".to_owned(), format!("{number} ACK")),
    ];
    headers.extend(invite.headers.iter().filter(|(n, _)| n == "Route").cloned());
    let uri = if success { target.unwrap_or(uri).to_owned() } else { uri.clone() };
    SipMessage { start: StartLine::Request { method: "ACK".into(), uri }, headers, body: Bytes::new() }
}

/// The INVITE again with credentials for the challenge in `response`, from the account's
/// AuthenticationId (or UserId) and Password; `None` without a usable challenge.
pub(super) fn authorized_invite(d: &mut Dialog, response: &SipMessage) -> Option<SipMessage> {
    let account = d.account.as_ref()?;
    let StartLine::Request { uri, .. } = &d.invite.start else { return None };
    let user = if account.authentication_id.is_empty() { &account.user_id } else { &account.authentication_id };
    let (header, value) = digest::answer(response, "INVITE", uri, user, &account.password)?;
    let mut invite = d.invite.clone();
    let cseq = d.next_cseq;
    d.next_cseq += 1;
    invite.set_header("CSeq", format!("{cseq} INVITE"));
    if let Some(via) = invite.header("Via").map(|v| v.split(";branch=").next().unwrap_or(v).to_owned()) {
        invite.set_header("Via", format!("{via};branch=z9hG4bK{};rport", random_token()));
    }
    invite.set_header(header, value);
    // Keep the header order sensible: Via first.
    invite.headers.sort_by_key(|(n, _)| n != "Via");
    Some(invite)
}

/// Starts the RTP of an answered call and tells the engine its codec and counters.
pub(super) fn start_media(d: &mut Dialog, engine: &CallEngine) {
    if let (Some(socket), Some((n, remote))) = (d.rtp_socket.take(), d.negotiated) {
        let plan =
            MediaPlan { remote, codec: n.codec, payload_type: n.payload_type, telephone_event: n.telephone_event };
        d.rtp = Some(RtpSession::start(socket, plan, d.counters.clone(), d.dtmf.clone()));
        engine.set_media(&d.engine_id, n.codec.name(), d.reply.kind().via(), d.counters.clone());
    }
}
