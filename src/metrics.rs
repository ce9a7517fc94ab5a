//! Prometheus metrics (`/metrics`), kept with `prometheus-client` and served in the classic
//! text format that Prometheus and `promtool` read.
//!
//! One [`Metrics`] holds every family of a process: a single device's, or all of a fleet's,
//! where each sample carries the device's index as a `device` label. A device counts through
//! its [`DeviceMetrics`] handle. Label values come from closed sets (route classes, known
//! commands, SIP methods, states), never from raw input, so a peer cannot grow the families.
//! Per-packet counters (RTP) are resolved once per call ([`RtpCounters`]) so the media loop
//! only adds to atomics. The counters of requests, commands, SIP messages and call states are
//! counted per thread ([`Shards`]) and summed into their families before each scrape: counting
//! then touches neither a family's lock nor a count that every core writes.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::{EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::events::EventBus;

/// The `device` label of a fleet member; nothing for a single device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct DeviceLabel(Option<usize>);

impl EncodeLabelSet for DeviceLabel {
    fn encode(&self, encoder: &mut LabelSetEncoder<'_>) -> Result<(), std::fmt::Error> {
        match self.0 {
            Some(index) => [("device", index)].encode(encoder),
            None => Ok(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct HttpLabels {
    path: &'static str,
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CommandLabels {
    command: &'static str,
    /// The fault's code, empty when the command succeeded.
    fault: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct CallLabels {
    direction: &'static str,
    state: &'static str,
    reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct SipLabels {
    direction: &'static str,
    /// The request's method, or the response's status class `1xx` … `6xx`.
    message: &'static str,
    /// The response's status code, 0 for a request.
    status: u16,
    transport: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StatusLabels {
    status: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct DirectionLabels {
    direction: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MethodLabels {
    method: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

type Labeled<L> = (DeviceLabel, L);

/// The labels of a counter counted per thread, by family.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Hot {
    Http(HttpLabels),
    Command(CommandLabels),
    CallState(CallLabels),
    Sip(SipLabels),
}

/// The count one thread (at a time) adds to, for one counter.
type Shard = Arc<AtomicU64>;

/// Every per-thread count of a [`Metrics`], by device and labels.
#[derive(Debug, Default)]
struct Shards(Mutex<HashMap<(DeviceLabel, Hot), Vec<Shard>>>);

impl Shards {
    /// A shard of the counter `key` for the calling thread: one no thread holds any more (its
    /// thread ended or let it go), else a new one.
    fn take(&self, key: &(DeviceLabel, Hot)) -> Shard {
        let mut all = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let shards = all.entry(key.clone()).or_default();
        // Handles are cloned only here, under the lock: a count of one (the list's own) means
        // no thread holds it.
        if let Some(free) = shards.iter().find(|s| Arc::strong_count(s) == 1) {
            return free.clone();
        }
        let shard = Shard::default();
        shards.push(shard.clone());
        shard
    }

    /// Each counter's shards summed into its family.
    fn fold_into(&self, m: &Metrics) {
        let all = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for ((device, hot), shards) in all.iter() {
            let sum = shards.iter().map(|s| s.load(Ordering::Relaxed)).sum();
            let device = *device;
            let counter = match hot {
                Hot::Http(l) => m.http_requests.get_or_create(&(device, l.clone())).clone(),
                Hot::Command(l) => m.commands.get_or_create(&(device, l.clone())).clone(),
                Hot::CallState(l) => m.call_states.get_or_create(&(device, l.clone())).clone(),
                Hot::Sip(l) => m.sip_messages.get_or_create(&(device, l.clone())).clone(),
            };
            counter.inner().store(sum, Ordering::Relaxed);
        }
    }
}

/// Most shards a thread holds; past it the thread lets them all go (to be taken again).
const MAX_HELD_SHARDS: usize = 4096;

thread_local! {
    /// The shards this thread counts into, by [`Metrics`] id, device and labels.
    static HELD: RefCell<HashMap<(u64, DeviceLabel, Hot), Shard>> = RefCell::new(HashMap::new());
}

/// Numbers each [`Metrics`], so a thread's shards are never taken for another's.
static NEXT_METRICS_ID: AtomicU64 = AtomicU64::new(0);

/// Every metric family of the process.
#[derive(Debug)]
pub struct Metrics {
    /// Keys this instance's shards in [`HELD`].
    id: u64,
    shards: Shards,
    registry: Registry,
    http_requests: Family<Labeled<HttpLabels>, Counter>,
    commands: Family<Labeled<CommandLabels>, Counter>,
    call_states: Family<Labeled<CallLabels>, Counter>,
    sip_messages: Family<Labeled<SipLabels>, Counter>,
    registrations: Family<Labeled<StatusLabels>, Counter>,
    rtp_packets: Family<Labeled<DirectionLabels>, Counter>,
    rtp_bytes: Family<Labeled<DirectionLabels>, Counter>,
    dtmf_events: Family<Labeled<MethodLabels>, Counter>,
    event_subscribers: Family<DeviceLabel, Gauge>,
    events_dropped: Family<DeviceLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// The families, registered under the `doorsim` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("doorsim");
        let build_info = Family::<BuildLabels, Gauge>::default();
        build_info.get_or_create(&BuildLabels { version: env!("CARGO_PKG_VERSION") }).set(1);
        registry.register("build_info", "The doorsim build (value 1)", build_info);
        let m = Self {
            id: NEXT_METRICS_ID.fetch_add(1, Ordering::Relaxed),
            shards: Shards::default(),
            http_requests: Family::default(),
            commands: Family::default(),
            call_states: Family::default(),
            sip_messages: Family::default(),
            registrations: Family::default(),
            rtp_packets: Family::default(),
            rtp_bytes: Family::default(),
            dtmf_events: Family::default(),
            event_subscribers: Family::default(),
            events_dropped: Family::default(),
            registry: Registry::default(),
        };
        registry.register("http_requests", "HTTP requests by path class and status", m.http_requests.clone());
        registry.register("call_service_commands", "Call service commands by name and fault", m.commands.clone());
        registry.register(
            "call_state_changes",
            "Call state changes by direction, new state and reason",
            m.call_states.clone(),
        );
        registry.register(
            "sip_messages",
            "SIP messages in and out by method or status, and transport",
            m.sip_messages.clone(),
        );
        registry.register("sip_registrations", "REGISTER outcomes by final status", m.registrations.clone());
        registry.register("rtp_packets", "RTP packets in and out", m.rtp_packets.clone());
        registry.register("rtp_bytes", "RTP bytes in and out (RTP header and payload)", m.rtp_bytes.clone());
        registry.register("dtmf_events", "DTMF digits received by method", m.dtmf_events.clone());
        registry.register("event_subscribers", "Subscribers of the device's event bus", m.event_subscribers.clone());
        registry.register("events_dropped", "Events lost by slow subscribers", m.events_dropped.clone());
        Self { registry, ..m }
    }

    /// The handle a device counts through: `index` in a fleet, `None` for a single device.
    pub fn device(self: &Arc<Self>, index: Option<usize>) -> DeviceMetrics {
        DeviceMetrics { all: self.clone(), device: DeviceLabel(index) }
    }

    /// The text exposition of every family, in the classic Prometheus text format.
    pub fn render(&self) -> String {
        self.shards.fold_into(self);
        let mut open_metrics = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut open_metrics, &self.registry);
        classic(&open_metrics)
    }
}

/// One device's view of the process's [`Metrics`].
#[derive(Debug, Clone)]
pub struct DeviceMetrics {
    all: Arc<Metrics>,
    device: DeviceLabel,
}

impl Default for DeviceMetrics {
    /// A handle on metrics of its own (unit tests, tools).
    fn default() -> Self {
        Arc::new(Metrics::new()).device(None)
    }
}

/// The RTP counters of one device, resolved once for a call's media.
#[derive(Debug, Clone, Default)]
pub struct RtpCounters {
    pub packets_in: Counter,
    pub packets_out: Counter,
    pub bytes_in: Counter,
    pub bytes_out: Counter,
}

impl DeviceMetrics {
    /// An HTTP request to a path of class `path` answered with `status`.
    pub fn http_request(&self, path: &'static str, status: u16) {
        self.count(Hot::Http(HttpLabels { path, status }));
    }

    /// A Call service command (a known name) answered, with its fault code if it failed.
    pub fn command(&self, command: &'static str, fault: Option<&'static str>) {
        let labels = CommandLabels { command, fault: fault.unwrap_or_default() };
        self.count(Hot::Command(labels));
    }

    /// A call entered `state` for `reason`.
    pub fn call_state(&self, direction: &'static str, state: &'static str, reason: &'static str) {
        self.count(Hot::CallState(CallLabels { direction, state, reason }));
    }

    /// A SIP request with `method` received (`inbound`) or sent over `transport`.
    pub fn sip_request(&self, inbound: bool, method: &str, transport: &'static str) {
        self.sip_message(inbound, method_label(method.as_bytes()), 0, transport);
    }

    /// A SIP response with status `code` received (`inbound`) or sent over `transport`.
    pub fn sip_response(&self, inbound: bool, code: u16, transport: &'static str) {
        let class = ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"].get(usize::from(code / 100).wrapping_sub(1));
        let (message, code) = class.map_or(("other", 0), |c| (*c, code));
        self.sip_message(inbound, message, code, transport);
    }

    /// A serialized SIP message sent over `transport`, labelled from its first line.
    pub fn sip_sent(&self, bytes: &[u8], transport: &'static str) {
        match bytes.strip_prefix(b"SIP/2.0 ") {
            Some(rest) => {
                let code = rest.get(..3).and_then(|c| std::str::from_utf8(c).ok()?.parse().ok()).unwrap_or(0);
                self.sip_response(false, code, transport);
            }
            None => {
                let method = bytes.split(|b| *b == b' ').next().unwrap_or_default();
                self.sip_message(false, method_label(method), 0, transport);
            }
        }
    }

    fn sip_message(&self, inbound: bool, message: &'static str, status: u16, transport: &'static str) {
        let direction = if inbound { "in" } else { "out" };
        self.count(Hot::Sip(SipLabels { direction, message, status, transport }));
    }

    /// Adds one to the counter `labels` in this thread's shard of it.
    fn count(&self, labels: Hot) {
        HELD.with_borrow_mut(|held| {
            let key = (self.all.id, self.device, labels);
            if let Some(shard) = held.get(&key) {
                shard.fetch_add(1, Ordering::Relaxed);
                return;
            }
            let shard = self.all.shards.take(&(self.device, key.2.clone()));
            shard.fetch_add(1, Ordering::Relaxed);
            if held.len() >= MAX_HELD_SHARDS {
                held.clear();
            }
            held.insert(key, shard);
        });
    }

    /// A REGISTER ended with `status` (408 when the registrar did not answer).
    pub fn registration(&self, status: u16) {
        self.all.registrations.get_or_create(&(self.device, StatusLabels { status })).inc();
    }

    /// A DTMF digit received by `method` (`RFC2833` or `SIPINFO`).
    pub fn dtmf_event(&self, method: &'static str) {
        self.all.dtmf_events.get_or_create(&(self.device, MethodLabels { method })).inc();
    }

    /// The device's RTP counters.
    pub fn rtp(&self) -> RtpCounters {
        let counter = |family: &Family<Labeled<DirectionLabels>, Counter>, direction| {
            family.get_or_create(&(self.device, DirectionLabels { direction })).clone()
        };
        RtpCounters {
            packets_in: counter(&self.all.rtp_packets, "in"),
            packets_out: counter(&self.all.rtp_packets, "out"),
            bytes_in: counter(&self.all.rtp_bytes, "in"),
            bytes_out: counter(&self.all.rtp_bytes, "out"),
        }
    }

    /// Copies the event bus's own counts (subscribers, dropped events) in, before a scrape.
    pub fn observe_bus(&self, bus: &EventBus) {
        let subscribers = i64::try_from(bus.subscribers()).unwrap_or(i64::MAX);
        self.all.event_subscribers.get_or_create(&self.device).set(subscribers);
        let dropped = self.all.events_dropped.get_or_create(&self.device);
        dropped.inner().store(bus.dropped(), std::sync::atomic::Ordering::Relaxed);
    }

    /// The text exposition: the whole process's for a single device, this device's samples
    /// (and the process's build_info) for a fleet member.
    pub fn render(&self) -> String {
        let all = self.all.render();
        let Some(index) = self.device.0 else { return all };
        let own = format!("device=\"{index}\"");
        let mut out = String::with_capacity(all.len());
        // Comments, this device's samples, and the process's own (build_info).
        for line in all.lines().filter(|l| l.starts_with('#') || l.contains(&own) || !l.contains("device=\"")) {
            out.push_str(line);
            out.push('\n');
        }
        out
    }
}

/// The classic text format (version 0.0.4) of `prometheus-client`'s OpenMetrics text: a
/// counter's HELP and TYPE name its samples (`x_total`, where OpenMetrics names the family
/// `x`), and there is no `# EOF`. Debian's `promtool` and older Prometheus servers read this.
fn classic(open_metrics: &str) -> String {
    let mut out = String::with_capacity(open_metrics.len());
    let mut help: Option<&str> = None;
    for line in open_metrics.lines() {
        if line == "# EOF" {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = Some(rest);
            continue;
        }
        let Some((name, kind)) = line.strip_prefix("# TYPE ").and_then(|t| t.split_once(' ')) else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let suffix = if kind == "counter" { "_total" } else { "" };
        if let Some((_, text)) = help.take().and_then(|h| h.split_once(' ')) {
            out.push_str(&format!("# HELP {name}{suffix} {text}\n"));
        }
        out.push_str(&format!("# TYPE {name}{suffix} {kind}\n"));
    }
    out
}

/// A request's method label: from a closed list, `other` otherwise.
fn method_label(method: &[u8]) -> &'static str {
    const METHODS: [&str; 14] = [
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "REGISTER",
        "INFO",
        "UPDATE",
        "PRACK",
        "SUBSCRIBE",
        "NOTIFY",
        "MESSAGE",
        "REFER",
        "PUBLISH",
    ];
    METHODS.iter().find(|m| m.as_bytes() == method).copied().unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip_labels_come_from_closed_sets() {
        let m = DeviceMetrics::default();
        m.sip_sent(b"INVITE sip:door@x SIP/2.0\r\n", "UDP");
        m.sip_sent(b"SIP/2.0 486 Busy Here\r\n", "TCP");
        m.sip_sent(b"FOO sip:x SIP/2.0\r\n", "UDP");
        m.sip_response(true, 999, "TLS");
        m.sip_request(true, "BYE", "UDP");
        let text = m.render();
        for sample in [
            r#"doorsim_sip_messages_total{direction="out",message="INVITE",status="0",transport="UDP"} 1"#,
            r#"doorsim_sip_messages_total{direction="out",message="4xx",status="486",transport="TCP"} 1"#,
            r#"doorsim_sip_messages_total{direction="out",message="other",status="0",transport="UDP"} 1"#,
            r#"doorsim_sip_messages_total{direction="in",message="other",status="0",transport="TLS"} 1"#,
            r#"doorsim_sip_messages_total{direction="in",message="BYE",status="0",transport="UDP"} 1"#,
        ] {
            assert!(text.contains(sample), "{sample} in {text}");
        }
    }

    #[test]
    fn a_fleet_member_renders_its_own_samples() {
        let all = Arc::new(Metrics::new());
        let (a, b) = (all.device(Some(0)), all.device(Some(1)));
        a.http_request("call_service", 200);
        b.http_request("call_service", 401);
        let own = a.render();
        assert!(
            own.contains("doorsim_http_requests_total{device=\"0\",path=\"call_service\",status=\"200\"} 1"),
            "{own}"
        );
        assert!(!own.contains("device=\"1\""), "{own}");
        assert!(all.render().contains("device=\"1\""));
    }

    /// Counts made on many threads, some of them ended before others began, all reach the
    /// exposition, and an ended thread's shard is taken over instead of a new one made.
    #[test]
    fn counts_from_every_thread_add_up_and_ended_threads_shards_are_reused() {
        let all = Arc::new(Metrics::new());
        let device = all.device(None);
        for _ in 0..3 {
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    let device = device.clone();
                    std::thread::spawn(move || (0..1000).for_each(|_| device.http_request("call_service", 200)))
                })
                .collect();
            threads.into_iter().for_each(|t| t.join().expect("counting thread"));
        }
        device.http_request("call_service", 200);
        let text = all.render();
        let sample = r#"doorsim_http_requests_total{path="call_service",status="200"} 12001"#;
        assert!(text.contains(sample), "{sample} in {text}");
        let shards = all.shards.0.lock().expect("shards");
        let made = shards.values().map(Vec::len).sum::<usize>();
        assert!(made <= 5, "12 threads, 5 at most at once, made {made} shards");
    }
}
