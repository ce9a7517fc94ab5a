//! DTMF: RFC 4733 decoding ([`rfc4733`]), SIP INFO bodies ([`info`]), trigger matching
//! ([`matcher`]), and [`CallDtmf`], which applies an account's DTMF configuration to one call's
//! digits and emits `tnsaxis:Call/DTMF` events.

pub mod info;
pub mod matcher;
pub mod rfc4733;

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::events::{topics, Event, EventBus};
use crate::metrics::DeviceMetrics;
use matcher::Matcher;
pub use matcher::Trigger;

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

/// Where a completed trigger goes at once, besides the event bus: the door actions, so a
/// DTMF code opens the door without riding a lossy event queue.
pub trait TriggerSink: Send + Sync + std::fmt::Debug {
    /// DTMF event `event_id` fired on call `call_id`.
    fn fired(&self, event_id: &str, call_id: &str);
}

/// An account's DTMF set-up as one call uses it: the methods honoured and the triggers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DtmfPolicy {
    /// Digits over RTP (RFC 2833/4733) count.
    pub rfc2833: bool,
    /// Digits by SIP INFO (RFC 2976) count.
    pub rfc2976: bool,
    /// Sequences and the DTMF event each fires.
    pub triggers: Vec<Trigger>,
}

/// The DTMF side of one call: the account's policy at the time the call started, the digits
/// heard so far, and where a match goes.
#[derive(Debug)]
pub struct CallDtmf {
    call_id: String,
    rfc2833: bool,
    rfc2976: bool,
    matcher: Matcher,
    bus: Arc<EventBus>,
    sink: Option<Arc<dyn TriggerSink>>,
    metrics: DeviceMetrics,
}

impl CallDtmf {
    /// The DTMF side of call `call_id` under `policy`; matches are published on `bus` and
    /// handed to `sink`; digits are counted in `metrics`.
    pub fn new(
        policy: DtmfPolicy,
        call_id: &str,
        bus: Arc<EventBus>,
        metrics: DeviceMetrics,
        sink: Option<Arc<dyn TriggerSink>>,
        inter_digit: Duration,
    ) -> Self {
        Self {
            call_id: call_id.to_owned(),
            rfc2833: policy.rfc2833,
            rfc2976: policy.rfc2976,
            matcher: Matcher::new(policy.triggers, inter_digit),
            bus,
            sink,
            metrics,
        }
    }

    /// A digit received on the call; emits the DTMF event of a completed trigger.
    pub fn digit(&mut self, digit: char, method: Method, now: Instant) {
        let (allowed, name) = match method {
            Method::Rfc2833 => (self.rfc2833, "RFC2833"),
            Method::Rfc2976 => (self.rfc2976, "RFC2976"),
        };
        self.metrics.dtmf_event(name);
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
            if let Some(sink) = &self.sink {
                sink.fired(&trigger.event_id, &self.call_id);
            }
            self.bus.publish(event);
        }
    }
}
