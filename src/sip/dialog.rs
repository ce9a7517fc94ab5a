//! A call's SIP dialog as the user agent keeps it (RFC 3261 section 12), and the requests made
//! within it: BYE, INFO, the ACK of a 2xx, CANCEL of our INVITE, an INVITE with credentials.
//! Every header is built from typed values.

use std::collections::HashMap;

use tokio_util::time::delay_queue;

use super::session_timer::SessionTimer;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use std::net::UdpSocket;

use super::address::Local;
use super::digest;
use super::headers::{CSeq, NameAddr, Uri};
use super::message::{SipMessage, StartLine};
use super::sdp::{self, Direction, Negotiated, Sdes};
use super::transaction::Key;
use super::transport::Path;
use crate::calls::{CallEngine, MediaCounters, Reason};
use crate::dtmf::CallDtmf;
use crate::model::SipAccount;
use crate::rtp::session::{MediaPlan, RtpSession};
use crate::rtp::srtp::MasterKey;

/// Where a call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Incoming, ringing here.
    Ringing,
    /// Outgoing, waiting for the final answer.
    Calling,
    /// Outgoing, CANCEL sent (the call ending for this reason), waiting for the final answer.
    Cancelling(Reason),
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

/// The media half of a dialog: what was agreed and the RTP that runs it.
#[derive(Debug)]
pub(super) struct Media {
    /// Agreed codec and the peer's RTP address, once known.
    pub(super) negotiated: Option<(Negotiated, SocketAddr)>,
    /// Our formats (payload type, name) as offered or answered.
    pub(super) formats: Vec<(u8, &'static str)>,
    /// Our RTP port.
    pub(super) port: u16,
    /// `o=` session id and version (raised with each new description).
    pub(super) session: (u64, u64),
    /// The socket until media starts.
    pub(super) socket: Option<UdpSocket>,
    /// The running session.
    pub(super) rtp: Option<RtpSession>,
    /// RTP counters shown by the control API.
    pub(super) counters: Arc<MediaCounters>,
    /// DTMF received on the call (RTP and INFO), under the account's configuration.
    pub(super) dtmf: Arc<Mutex<CallDtmf>>,
    /// The direction of our latest description.
    pub(super) direction: Direction,
    /// Our SDES key line, when the call's media is (or is offered as) SRTP.
    pub(super) sdes: Option<Sdes>,
    /// The peer's SDES key, once agreed.
    pub(super) remote_key: Option<MasterKey>,
}

impl Media {
    /// Our session description, as of now.
    pub(super) fn sdp(&self, local: &Local) -> String {
        sdp::write(self.session, local.address, self.port, &self.formats, self.direction, self.sdes.as_ref())
    }
}

/// The user agent's dialogs by Call-ID, and the dialog of each engine call (found without
/// walking them all: a load test keeps thousands).
#[derive(Debug, Default)]
pub(super) struct Dialogs {
    by_call_id: HashMap<String, Dialog>,
    call_id_of: HashMap<String, String>,
}

impl Dialogs {
    /// Adds `dialog` under its Call-ID.
    pub(super) fn insert(&mut self, dialog: Dialog) {
        let (engine_id, call_id) = (dialog.engine_id.clone(), dialog.call_id.clone());
        if let Some(old) = self.by_call_id.insert(call_id.clone(), dialog) {
            self.forget_engine_id(&old);
        }
        self.call_id_of.insert(engine_id, call_id);
    }

    /// Takes dialog `call_id` out.
    pub(super) fn remove(&mut self, call_id: &str) -> Option<Dialog> {
        let dialog = self.by_call_id.remove(call_id)?;
        self.forget_engine_id(&dialog);
        Some(dialog)
    }

    fn forget_engine_id(&mut self, dialog: &Dialog) {
        if self.call_id_of.get(&dialog.engine_id) == Some(&dialog.call_id) {
            self.call_id_of.remove(&dialog.engine_id);
        }
    }

    /// Dialog `call_id`.
    pub(super) fn get(&self, call_id: &str) -> Option<&Dialog> {
        self.by_call_id.get(call_id)
    }

    /// Dialog `call_id`, to change.
    pub(super) fn get_mut(&mut self, call_id: &str) -> Option<&mut Dialog> {
        self.by_call_id.get_mut(call_id)
    }

    /// The Call-ID of engine call `engine_id`'s dialog.
    pub(super) fn call_id_of(&self, engine_id: &str) -> Option<&str> {
        self.call_id_of.get(engine_id).map(String::as_str)
    }

    /// How many dialogs there are.
    pub(super) fn len(&self) -> usize {
        self.by_call_id.len()
    }

    /// Every dialog.
    pub(super) fn values(&self) -> impl Iterator<Item = &Dialog> {
        self.by_call_id.values()
    }
}

#[derive(Debug)]
pub(super) struct Dialog {
    pub(super) engine_id: String,
    pub(super) side: Side,
    pub(super) call_id: String,
    /// Our side's name-addr with our tag (From of ours, To of theirs).
    pub(super) local: NameAddr,
    /// The peer's name-addr; its tag once known.
    pub(super) remote: NameAddr,
    /// Where in-dialog requests are addressed (the peer's Contact).
    pub(super) remote_target: Uri,
    /// The route set (RFC 3261 12.1): Record-Route in order (incoming), reversed (outgoing);
    /// the account's proxies until the dialog is up.
    pub(super) route: Vec<NameAddr>,
    /// Where the dialog's messages go.
    pub(super) path: Path,
    /// Our next CSeq number in this dialog.
    pub(super) next_cseq: u32,
    pub(super) phase: Phase,
    /// The INVITE: received (incoming) or sent (outgoing, the latest one).
    pub(super) invite: SipMessage,
    /// The server transaction of a received INVITE.
    pub(super) invite_key: Option<Key>,
    /// Our 2xx waiting for its ACK: the INVITE's CSeq number and server transaction.
    pub(super) pending_ack: Option<(u32, Key)>,
    pub(super) media: Media,
    /// The account of an outgoing call (credentials for a challenge).
    pub(super) account: Option<SipAccount>,
    pub(super) auth_tried: bool,
    /// The reliable provisional response (RFC 3262) waiting for its PRACK.
    pub(super) reliable: Option<super::reliable::Reliable>,
    /// The session timer (RFC 4028) of the call, and its pending refresh or expiry.
    pub(super) session: Option<(SessionTimer, Option<delay_queue::Key>)>,
    /// The `RSeq` of the latest reliable provisional response we PRACKed (outgoing calls).
    pub(super) acknowledged_rseq: Option<u32>,
}

impl Dialog {
    /// A request of `method` within the dialog; takes the next CSeq.
    pub(super) fn request(&mut self, method: &str, local: &Local) -> SipMessage {
        let cseq = self.next_cseq;
        self.next_cseq += 1;
        self.build(method, CSeq::new(cseq, method), local)
    }

    /// The ACK of a 2xx to our INVITE: a transaction of its own, to the remote target, with the
    /// INVITE's CSeq number (RFC 3261 13.2.2.4).
    pub(super) fn ack(&self, local: &Local) -> SipMessage {
        let number = self.invite.cseq().map_or(1, |(n, _)| n);
        self.build("ACK", CSeq::new(number, "ACK"), local)
    }

    fn build(&self, method: &str, cseq: CSeq, local: &Local) -> SipMessage {
        let mut headers = vec![
            ("Via".to_owned(), local.via(self.path.kind).to_string()),
            ("Max-Forwards".to_owned(), "70".to_owned()),
            ("From".to_owned(), self.local.to_string()),
            ("To".to_owned(), self.remote.to_string()),
            ("Call-ID".to_owned(), self.call_id.clone()),
            ("CSeq".to_owned(), cseq.to_string()),
        ];
        headers.extend(self.route.iter().map(|r| ("Route".to_owned(), r.to_string())));
        let uri = self.remote_target.to_string();
        SipMessage { start: StartLine::Request { method: method.into(), uri }, headers, body: Bytes::new() }
    }

    /// The CANCEL of our INVITE (RFC 3261 9.1): its Request-URI, top Via, From, To, Call-ID,
    /// Route and CSeq number.
    pub(super) fn cancel(&self) -> SipMessage {
        let uri = match &self.invite.start {
            StartLine::Request { uri, .. } => uri.clone(),
            StartLine::Response { .. } => self.remote_target.to_string(),
        };
        let number = self.invite.cseq().map_or(1, |(n, _)| n);
        let mut headers: Vec<(String, String)> = self
            .invite
            .headers
            .iter()
            .filter(|(n, _)| matches!(n.as_str(), "Via" | "From" | "To" | "Call-ID" | "Route" | "Max-Forwards"))
            .cloned()
            .collect();
        headers.push(("CSeq".into(), CSeq::new(number, "CANCEL").to_string()));
        SipMessage { start: StartLine::Request { method: "CANCEL".into(), uri }, headers, body: Bytes::new() }
    }

    /// Our INVITE again with credentials for the challenge in `response`, from the account's
    /// AuthenticationId (or UserId) and Password, with a new branch and CSeq; `None` without a
    /// usable challenge.
    pub(super) fn authorized_invite(&mut self, response: &SipMessage, local: &Local) -> Option<SipMessage> {
        let account = self.account.as_ref()?;
        let StartLine::Request { uri, .. } = &self.invite.start else { return None };
        let user = if account.authentication_id.is_empty() { &account.user_id } else { &account.authentication_id };
        let (header, value) = digest::answer(response, "INVITE", uri, user, &account.password)?;
        Some(self.invite_again(local, &[(header, value)]))
    }

    /// Our INVITE again with a new branch and CSeq and `headers` set.
    pub(super) fn invite_again(&mut self, local: &Local, headers: &[(&str, String)]) -> SipMessage {
        let mut invite = self.invite.clone();
        let cseq = self.next_cseq;
        self.next_cseq += 1;
        invite.set_header("CSeq", CSeq::new(cseq, "INVITE").to_string());
        invite.headers.retain(|(n, _)| n != "Via");
        invite.headers.insert(0, ("Via".to_owned(), local.via(self.path.kind).to_string()));
        for (name, value) in headers {
            invite.set_header(name, value.clone());
        }
        invite
    }

    /// Starts the RTP of an answered call and tells the engine its codec and counters.
    pub(super) fn start_media(&mut self, engine: &CallEngine) {
        let m = &mut self.media;
        if let (Some(socket), Some((n, remote))) = (m.socket.take(), m.negotiated) {
            let srtp = m.sdes.zip(m.remote_key).map(|(ours, theirs)| (ours.key, theirs));
            let plan = MediaPlan {
                remote,
                codec: n.codec,
                payload_type: n.payload_type,
                telephone_event: n.telephone_event,
                srtp,
            };
            m.rtp = Some(RtpSession::start(socket, plan, m.counters.clone(), m.dtmf.clone()));
            engine.set_media(&self.engine_id, n.codec.name(), self.path.kind.via(), m.counters.clone());
        }
    }
}
