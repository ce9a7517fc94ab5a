//! The device's event bus: what the call engine and the I/O ports emit, fanned out to the
//! WebSocket event stream and kept in a bounded log.
//!
//! Property events (`tnsaxis:Call/State`, I/O port states) have one current value per source;
//! a new subscriber gets those values first. Each subscriber reads from a bounded
//! `tokio::sync::broadcast` queue: a slow one loses the oldest events, never blocks the device,
//! and its losses are counted in [`EventBus::dropped`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use indexmap::IndexMap;
use serde::Serialize;
use tokio::sync::broadcast;

/// Topics the device emits.
pub mod topics {
    /// Aggregate call state of the device (property).
    pub const CALL_STATE: &str = "tnsaxis:Call/State";
    /// One call's state change (stateless).
    pub const CALL_STATE_CHANGE: &str = "tnsaxis:Call/StateChange";
    /// A matched DTMF sequence (stateless).
    pub const CALL_DTMF: &str = "tnsaxis:Call/DTMF";
    /// A digital input or output port's state (property).
    pub const IO_PORT: &str = "tns1:Device/tnsaxis:IO/Port";
    /// A virtual input's state (property).
    pub const VIRTUAL_INPUT: &str = "tns1:Device/tnsaxis:IO/VirtualInput";
}

/// Events one subscriber may fall behind by before it loses the oldest.
pub const SUBSCRIBER_QUEUE: usize = 256;
/// Events kept in the log.
pub const LOG_CAPACITY: usize = 1000;

/// One event, in the shape of the Axis event stream's `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// e.g. `tnsaxis:Call/StateChange`.
    pub topic: &'static str,
    /// Milliseconds since the Unix epoch.
    pub timestamp: u64,
    /// Source items, e.g. `{"port": "0"}`.
    pub source: IndexMap<String, String>,
    /// Data items, e.g. `{"Reason": "Initiated", ...}`.
    pub data: IndexMap<String, String>,
    /// Whether the event carries a state (sent to new subscribers).
    pub property: bool,
}

impl Event {
    /// An event stamped now.
    pub fn new(topic: &'static str, property: bool, source: &[(&str, &str)], data: &[(&str, &str)]) -> Self {
        let pairs = |items: &[(&str, &str)]| items.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        Self { topic, timestamp, source: pairs(source), data: pairs(data), property }
    }

    /// Whether a topic filter selects this event: equal topics, or a filter ending in `//.`
    /// (the Axis wildcard for "this topic and below") that prefixes the topic.
    pub fn matches(&self, filter: &str) -> bool {
        match filter.strip_suffix("//.") {
            Some(prefix) => self.topic.starts_with(prefix),
            None => self.topic == filter,
        }
    }
}

/// What a new subscriber gets: the current property values, then the live queue.
#[derive(Debug)]
pub struct Subscription {
    /// Current values of every property event, oldest first.
    pub current: Vec<Arc<Event>>,
    /// Events published from now on.
    pub live: broadcast::Receiver<Arc<Event>>,
}

#[derive(Debug, Default)]
struct BusState {
    /// Current value per (topic, source).
    properties: IndexMap<(String, String), Arc<Event>>,
    log: VecDeque<Arc<Event>>,
}

/// The bus of one device.
#[derive(Debug)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
    /// Held only to publish or subscribe (no I/O), so a subscriber's snapshot and its live queue
    /// neither overlap nor leave a gap.
    state: Mutex<BusState>,
    dropped: AtomicU64,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// An empty bus.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(SUBSCRIBER_QUEUE);
        Self { tx, state: Mutex::default(), dropped: AtomicU64::new(0) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BusState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Publishes an event to every subscriber and the log.
    pub fn publish(&self, event: Event) {
        let event = Arc::new(event);
        let mut state = self.lock();
        if event.property {
            let source = serde_json::to_string(&event.source).unwrap_or_default();
            state.properties.insert((event.topic.to_owned(), source), event.clone());
        }
        if state.log.len() == LOG_CAPACITY {
            state.log.pop_front();
        }
        state.log.push_back(event.clone());
        tracing::debug!(topic = event.topic, data = ?event.data, "event");
        // No subscriber is not an error.
        let _ = self.tx.send(event);
    }

    /// Subscribes to every event from now on, with the current property values.
    pub fn subscribe(&self) -> Subscription {
        let state = self.lock();
        Subscription { current: state.properties.values().cloned().collect(), live: self.tx.subscribe() }
    }

    /// The log, oldest first, optionally only events matching `topic`.
    pub fn log(&self, topic: Option<&str>) -> Vec<Arc<Event>> {
        self.lock().log.iter().filter(|e| topic.is_none_or(|t| e.matches(t))).cloned().collect()
    }

    /// Records that a subscriber lost `n` events.
    pub fn count_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Ordering::Relaxed);
    }

    /// Events lost by slow subscribers so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(state: &str) -> Event {
        Event::new(topics::IO_PORT, true, &[("port", "0")], &[("state", state)])
    }

    #[test]
    fn new_subscribers_get_current_properties_then_live_events() {
        let bus = EventBus::new();
        bus.publish(port("1"));
        bus.publish(port("0"));
        bus.publish(Event::new(topics::CALL_STATE_CHANGE, false, &[], &[("Reason", "Initiated")]));
        let mut sub = bus.subscribe();
        assert_eq!(sub.current.len(), 1);
        assert_eq!(sub.current[0].data["state"], "0");
        bus.publish(port("1"));
        assert_eq!(sub.live.try_recv().map(|e| e.data["state"].clone()), Ok("1".to_owned()));
    }

    #[test]
    fn a_slow_subscriber_loses_the_oldest_and_the_log_is_bounded() {
        let bus = EventBus::new();
        let mut sub = bus.subscribe();
        for _ in 0..SUBSCRIBER_QUEUE + 10 {
            bus.publish(port("1"));
        }
        assert!(matches!(sub.live.try_recv(), Err(broadcast::error::TryRecvError::Lagged(10))));
        for _ in 0..LOG_CAPACITY {
            bus.publish(port("0"));
        }
        assert_eq!(bus.log(None).len(), LOG_CAPACITY);
    }

    #[test]
    fn topic_filters() {
        let e = Event::new(topics::CALL_STATE_CHANGE, false, &[], &[]);
        assert!(e.matches("tnsaxis:Call/StateChange"));
        assert!(e.matches("tnsaxis:Call//."));
        assert!(!e.matches("tnsaxis:Call/State"));
        assert!(!e.matches("tns1:Device//."));
    }
}
