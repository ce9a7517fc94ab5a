//! Reliable provisional responses (RFC 3262, 100rel and PRACK), the device as the callee: when
//! an INVITE requires `100rel`, its 180 carries `Require: 100rel` and an `RSeq`, and is sent
//! again (UDP only) at T1, doubling, until the caller's PRACK names it in `RAck`; a PRACK is
//! answered 200. Unacknowledged for 64·T1, the ringing call ends (reason Failed), as the RFC
//! has the callee give up on such an INVITE.

use std::time::Duration;

use rand::Rng;
use tokio_util::time::delay_queue;

use super::address::random_token;
use super::agent::{Agent, DialogTimer};
use super::dialog::Phase;
use super::message::SipMessage;
use super::transaction::{Key, T1};
use crate::calls::{CallState, Reason};

/// A reliable provisional response waiting for its PRACK.
#[derive(Debug)]
pub(super) struct Reliable {
    /// Its `RSeq`.
    rseq: u32,
    /// The response, to send again.
    response: SipMessage,
    /// The wait before the next retransmission.
    interval: Duration,
    /// How long it has been retransmitted so far.
    waited: Duration,
    /// The pending retransmission.
    timer: Option<delay_queue::Key>,
}

/// Whether `invite` requires reliable provisional responses.
pub(super) fn required(invite: &SipMessage) -> bool {
    invite.header_values("Require").iter().any(|o| o.eq_ignore_ascii_case("100rel"))
}

/// Makes `provisional` reliable: `Require: 100rel` and a random first `RSeq`.
pub(super) fn make_reliable(provisional: &mut SipMessage) -> Reliable {
    let rseq = rand::thread_rng().gen_range(1..1u32 << 31);
    provisional.set_header("Require", "100rel");
    provisional.set_header("RSeq", rseq.to_string());
    Reliable { rseq, response: provisional.clone(), interval: T1, waited: Duration::ZERO, timer: None }
}

impl Agent {
    /// Starts retransmitting dialog `call_id`'s reliable provisional response (over UDP).
    pub(super) fn schedule_reliable(&mut self, call_id: &str) {
        let Some(d) = self.dialogs.get_mut(call_id) else { return };
        if d.path.kind.reliable() {
            return;
        }
        let Some(r) = d.reliable.as_mut() else { return };
        r.timer = Some(self.dialog_timers.insert((call_id.to_owned(), DialogTimer::Reliable), r.interval));
    }

    /// Stops retransmitting dialog `call_id`'s reliable provisional response.
    pub(super) fn stop_reliable(&mut self, call_id: &str) {
        let Some(r) = self.dialogs.get_mut(call_id).and_then(|d| d.reliable.take()) else { return };
        if let Some(timer) = r.timer {
            self.dialog_timers.try_remove(&timer);
        }
    }

    /// The retransmission of `call_id`'s reliable provisional response is due.
    pub(super) fn on_reliable_due(&mut self, call_id: &str) {
        let Some(d) = self.dialogs.get_mut(call_id) else { return };
        let (Some(r), Some(key)) = (d.reliable.as_mut(), d.invite_key.clone()) else { return };
        r.timer = None;
        r.waited += r.interval;
        r.interval *= 2;
        if d.phase != Phase::Ringing {
            return;
        }
        if r.waited >= T1 * 64 {
            tracing::info!(call = %d.engine_id, "no PRACK for the reliable 180: the call ends");
            let id = d.engine_id.clone();
            self.engine.transition(&id, CallState::Terminated, Reason::Failed);
            return;
        }
        let again = r.response.clone();
        self.transactions.respond(&key, again);
        self.schedule_reliable(call_id);
    }

    /// A PRACK: 200 when its `RAck` names the dialog's reliable provisional response, else 481.
    pub(super) fn on_prack(&mut self, key: &Key, prack: &SipMessage) {
        let call_id = prack.header("Call-ID").unwrap_or_default().to_owned();
        let rack = prack.header("RAck").map(|r| r.split_whitespace().collect::<Vec<_>>());
        let names_ours = self.dialogs.get(&call_id).is_some_and(|d| {
            let (Some(r), Some((cseq, method))) = (&d.reliable, d.invite.cseq()) else { return false };
            rack.as_deref() == Some(&[r.rseq.to_string().as_str(), cseq.to_string().as_str(), method.as_str()][..])
        });
        if !names_ours {
            let r = prack.response(481, "Call/Transaction Does Not Exist", Some(&random_token()));
            return self.transactions.respond(key, r);
        }
        self.stop_reliable(&call_id);
        let tag = self.dialogs.get(&call_id).and_then(|d| d.local.tag().map(str::to_owned));
        let ok = prack.response(200, "OK", tag.as_deref());
        self.transactions.respond(key, ok);
    }
}
