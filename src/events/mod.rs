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
    /// Its place in the device's event sequence, from 1 (set when published): a test reads
    /// what came after a cursor with `GET /emulator/v1/events?after=CURSOR`.
    pub cursor: u64,
}

impl Event {
    /// An event stamped now.
    pub fn new(topic: &'static str, property: bool, source: &[(&str, &str)], data: &[(&str, &str)]) -> Self {
        let pairs = |items: &[(&str, &str)]| items.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64;
        Self { topic, timestamp, source: pairs(source), data: pairs(data), property, cursor: 0 }
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
    /// The cursor of the latest event.
    cursor: u64,
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
    pub fn publish(&self, mut event: Event) {
        let mut state = self.lock();
        state.cursor += 1;
        event.cursor = state.cursor;
        let event = Arc::new(event);
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

    /// The log, oldest first: events after `after` (a cursor), optionally only those matching
    /// `topic`.
    pub fn log(&self, topic: Option<&str>, after: u64) -> Vec<Arc<Event>> {
        self.lock().log.iter().filter(|e| e.cursor > after && topic.is_none_or(|t| e.matches(t))).cloned().collect()
    }

    /// The cursor of the latest event (0 before any).
    pub fn cursor(&self) -> u64 {
        self.lock().cursor
    }

    /// Empties the log (the cursor keeps counting, so older cursors stay meaningful).
    pub fn clear_log(&self) {
        self.lock().log.clear();
    }

    /// Live subscribers now (event streams over WebSocket and RTSP, and the SIP side's own).
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
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
        assert_eq!(bus.log(None, 0).len(), LOG_CAPACITY);
        let last = bus.cursor();
        assert_eq!(last, (SUBSCRIBER_QUEUE + 10 + LOG_CAPACITY) as u64, "every event has its place");
        bus.publish(port("1"));
        assert_eq!(bus.log(None, last).len(), 1, "only what came after the cursor");
        bus.clear_log();
        assert!(bus.log(None, 0).is_empty());
        assert_eq!(bus.cursor(), last + 1);
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
