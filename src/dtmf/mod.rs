//! DTMF: RFC 4733 decoding ([`rfc4733`]), SIP INFO bodies ([`info`]), trigger matching
//! ([`matcher`]), and [`CallDtmf`], which applies an account's DTMF configuration to one call's
//! digits and emits `tnsaxis:Call/DTMF` events.

pub mod info;
pub mod matcher;
pub mod rfc4733;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::events::{topics, Event, EventBus};
use crate::store::DeviceState;
use matcher::{Matcher, Trigger};

/// How a digit arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// RFC 2833/4733 telephone-event over RTP.
    Rfc2833,
    /// SIP INFO (RFC 2976).
    Rfc2976,
}

/// Default inter-digit timeout (DESIGN.md decision 8).
pub const INTER_DIGIT: Duration = Duration::from_secs(3);

/// The DTMF side of one call: the methods honoured and the triggers in force, from the call's
/// account at the time the call started.
#[derive(Debug)]
pub struct CallDtmf {
    call_id: String,
    rfc2833: bool,
    rfc2976: bool,
    matcher: Matcher,
    bus: Arc<EventBus>,
}

impl CallDtmf {
    /// The DTMF policy of `account` in `state` for call `call_id`: no configuration means no
    /// triggers (digits are received and logged, nothing matches).
    pub fn for_account(
        state: &DeviceState,
        account: &str,
        call_id: &str,
        bus: Arc<EventBus>,
        inter_digit: Duration,
    ) -> Self {
        let config =
            state.sip_accounts.get(account).and_then(|a| state.dtmf_configurations.get(&a.dtmf_configuration_id));
        let triggers = config
            .map(|c| {
                c.dtmf_trigger_id
                    .iter()
                    .filter_map(|t| state.dtmf_triggers.get(t))
                    .map(|t| Trigger { sequence: t.dtmf_sequence.clone(), event_id: t.dtmf_event_id.clone() })
                    .collect()
            })
            .unwrap_or_default();
        Self {
            call_id: call_id.to_owned(),
            rfc2833: config.is_none_or(|c| c.rfc2833),
            rfc2976: config.is_none_or(|c| c.rfc2976),
            matcher: Matcher::new(triggers, inter_digit),
            bus,
        }
    }

    /// A digit received on the call; emits the DTMF event of a completed trigger.
    pub fn digit(&mut self, digit: char, method: Method, now: Instant) {
        let allowed = match method {
            Method::Rfc2833 => self.rfc2833,
            Method::Rfc2976 => self.rfc2976,
        };
        if !allowed {
            tracing::info!(call = %self.call_id, %digit, ?method, "DTMF digit dropped: method disabled for this account");
            return;
        }
        tracing::debug!(call = %self.call_id, %digit, ?method, "DTMF digit");
        if let Some(trigger) = self.matcher.digit(digit, now) {
            let event = Event::new(
                topics::CALL_DTMF,
                false,
                &[("DTMFEventId", &trigger.event_id)],
                &[("CallId", &self.call_id)],
            );
            self.bus.publish(event);
        }
    }
}
