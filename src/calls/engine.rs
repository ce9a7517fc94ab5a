//! The call engine: the registry of calls, the state machine, timers and the VMS stream rules.
//!
//! State changes are synchronous functions on the registry (a `std::sync::Mutex` never held
//! across an `.await`); each one checks that the transition is legal, updates the call, and
//! publishes `tnsaxis:Call/StateChange` and, when the device's aggregate state moves,
//! `tnsaxis:Call/State`, so events always come in state order. Each call is owned by one task
//! that holds its timers (answer timeout, maximum duration, retention after it ended) and
//! follows its state through a `watch` channel.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use thiserror::Error;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::status::{new_call_id, now_rfc3339, CallState, CallStatus, CallType, Direction, Reason};
use super::vms::{Counts, StreamCounts, StreamKind};
use crate::events::{topics, Event, EventBus};
use crate::model::address::validate_sip_uri;
use crate::model::attribute::int_attribute;
use crate::store::Store;

/// The recipient that makes a call a VMS call.
pub const VMS_CALL: &str = "VMS_CALL";
/// The media source every call of this single-channel device uses.
const SOURCE: &str = "0";
/// Terminated calls kept for GetCallStatuses at most, however fast calls come and go.
const MAX_RETAINED: usize = 256;

/// How the engine behaves.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Every device timer runs this many times faster.
    pub time_scale: f64,
    /// Calls that may be in progress at once.
    pub max_calls: usize,
    /// How long a terminated call stays visible.
    pub retention: Duration,
    /// The device's address, for DeviceURI.
    pub device_host: String,
    /// Answer ringing incoming SIP calls after this long (device time, before scaling), or never.
    pub auto_answer: Option<Duration>,
    /// Where the engine's tasks (one per call, the stream follower) are tracked.
    pub tracker: TaskTracker,
    /// Where call state changes are counted.
    pub metrics: crate::metrics::DeviceMetrics,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            time_scale: 1.0,
            max_calls: 16,
            retention: Duration::from_secs(60),
            device_host: "127.0.0.1".into(),
            auto_answer: None,
            tracker: TaskTracker::new(),
            metrics: crate::metrics::DeviceMetrics::default(),
        }
    }
}

/// What the engine asks of the signalling backend (SIP) when the device acts on a SIP call.
/// Implementations only queue work: they are called with no lock held, from sync code.
pub trait Signalling: Send + Sync + std::fmt::Debug {
    /// The device answered ringing incoming call `id` (control API or auto-answer).
    fn answered(&self, id: &str);
    /// The device ends call `id` for `reason`: decline while ringing, CANCEL while calling, BYE
    /// when active.
    fn ended(&self, id: &str, reason: Reason);
    /// The device places call `id` to `to` through account `account`.
    fn place(&self, id: &str, to: &str, account: &str);
    /// The device sends DTMF `digits` on call `id`: RFC 4733 over RTP, or SIP INFO.
    fn send_dtmf(&self, id: &str, digits: &str, over_rtp: bool);
    /// The far end of call `id` keyed `digits`: they reach the call's DTMF decoder as RFC 4733
    /// digits would (triggers, events, door actions).
    fn keyed(&self, id: &str, digits: &str);
    /// Completes once every request made before it has been carried out.
    fn flushed(&self) -> tokio::sync::oneshot::Receiver<()>;
    /// The device is stopping: end every call on the wire and un-register; completes when that
    /// is done.
    fn wind_down(&self) -> tokio::sync::oneshot::Receiver<()>;
}

/// Audio payloads of the far end kept for a slow listener (one second at 20 ms).
const SPEECH_BACKLOG: usize = 50;

/// Longest a call stays Terminating: past Timer F (64*T1 = 32 s) of its BYE or CANCEL.
const TERMINATING_LIMIT: Duration = Duration::from_secs(40);

/// RTP packets of one call, counted by the media side and shown by the control API, and
/// the device's RTP totals (metrics) they add to.
#[derive(Debug, Default)]
pub struct MediaCounters {
    /// RTP packets sent.
    pub sent: AtomicU64,
    /// RTP packets received.
    pub received: AtomicU64,
    /// The device's totals.
    pub device: crate::metrics::RtpCounters,
    /// Where the call's packets are also written (`--pcap`).
    pub tap: Option<crate::capture::Tap>,
    /// Where the far end's audio goes, as µ-law (the device's [`CallEngine::speech`]).
    pub speech: Option<broadcast::Sender<Bytes>>,
}

impl MediaCounters {
    /// A packet of `bytes` sent.
    pub fn count_sent(&self, bytes: usize) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        self.device.packets_out.inc();
        self.device.bytes_out.inc_by(bytes as u64);
    }

    /// A packet of `bytes` received.
    pub fn count_received(&self, bytes: usize) {
        self.received.fetch_add(1, Ordering::Relaxed);
        self.device.packets_in.inc();
        self.device.bytes_in.inc_by(bytes as u64);
    }
}

/// Why the engine refused a request.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CallError {
    /// A malformed value.
    #[error("invalid value: {0}")]
    Invalid(String),
    /// No such call.
    #[error("not found: {0}")]
    NotFound(String),
    /// The device cannot do it now.
    #[error("failed: {0}")]
    Failed(String),
}

/// Everything a new call starts with.
#[derive(Debug, Clone, Copy)]
struct NewCall<'a> {
    direction: Direction,
    call_type: CallType,
    remote: &'a str,
    state: CallState,
    reason: Reason,
    /// How long it may stay Calling before NoAnswer.
    answer_timeout: Option<Duration>,
    /// The stream kind a VMS call belongs to.
    vms_kind: Option<StreamKind>,
}

impl<'a> NewCall<'a> {
    /// A call from or to `remote`, starting in `state` for `reason`.
    fn new(direction: Direction, call_type: CallType, remote: &'a str, state: CallState, reason: Reason) -> Self {
        Self { direction, call_type, remote, state, reason, answer_timeout: None, vms_kind: None }
    }
}

#[derive(Debug)]
struct Entry {
    status: CallStatus,
    state: watch::Sender<CallState>,
    /// The stream kind that answered (or started) this VMS call.
    vms_kind: Option<StreamKind>,
    /// RTP counters of a SIP call once media runs, and the SIP transport it was set up on.
    media: Option<(Arc<MediaCounters>, String)>,
    /// The reason a Terminating call will end with.
    ending: Option<Reason>,
}

/// The calls, in the order they were made, with how many are in each state: the call limit,
/// the device state and the retention cap are read from the counts and an index, not by walking
/// the calls (hundreds are retained, and a load test makes thousands a second).
#[derive(Debug, Default)]
struct Registry {
    /// By creation number: the order GetCallStatuses lists them in.
    calls: BTreeMap<u64, Entry>,
    /// Each call's creation number, by its id.
    numbers: HashMap<String, u64>,
    /// The creation numbers of the Terminated calls.
    terminated: BTreeSet<u64>,
    /// Calls in each [`CallState`], by its index.
    in_state: [usize; CallState::COUNT],
    next_number: u64,
    aggregate: CallState,
}

impl Registry {
    /// Adds call number `number`.
    fn insert(&mut self, number: u64, entry: Entry) {
        let state = entry.status.call_state;
        self.in_state[state as usize] += 1;
        if state == CallState::Terminated {
            self.terminated.insert(number);
        }
        self.numbers.insert(entry.status.call_id.clone(), number);
        self.calls.insert(number, entry);
    }

    /// Call `id`.
    fn get(&self, id: &str) -> Option<&Entry> {
        self.calls.get(self.numbers.get(id)?)
    }

    /// Call `id`, to change (its state only through [`Registry::set_state`]).
    fn get_mut(&mut self, id: &str) -> Option<&mut Entry> {
        self.calls.get_mut(self.numbers.get(id)?)
    }

    /// Every call, oldest first.
    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.calls.values()
    }

    /// Moves call `id` to `to` (its state watchers see it).
    fn set_state(&mut self, id: &str, to: CallState) {
        let Some(&number) = self.numbers.get(id) else { return };
        let Some(entry) = self.calls.get_mut(&number) else { return };
        let from = entry.status.call_state;
        self.in_state[from as usize] -= 1;
        self.in_state[to as usize] += 1;
        if to == CallState::Terminated {
            self.terminated.insert(number);
        } else if from == CallState::Terminated {
            self.terminated.remove(&number);
        }
        entry.status.call_state = to;
        entry.state.send_replace(to);
    }

    /// Calls in `state`.
    fn count(&self, state: CallState) -> usize {
        self.in_state[state as usize]
    }

    /// Calls not yet Terminated.
    fn in_progress(&self) -> usize {
        self.calls.len() - self.count(CallState::Terminated)
    }

    /// Forgets call `id`.
    fn remove(&mut self, id: &str) {
        let Some(number) = self.numbers.remove(id) else { return };
        if let Some(old) = self.calls.remove(&number) {
            self.in_state[old.status.call_state as usize] -= 1;
        }
        self.terminated.remove(&number);
    }

    /// Forgets every call.
    fn clear(&mut self) {
        let next_number = self.next_number;
        *self = Registry { next_number, aggregate: self.aggregate, ..Registry::default() };
    }

    /// Keeps at most [`MAX_RETAINED`] terminated calls, forgetting the oldest first.
    fn forget_oldest_terminated(&mut self) {
        while self.terminated.len() > MAX_RETAINED {
            let Some(oldest) = self.terminated.pop_first() else { return };
            if let Some(old) = self.calls.remove(&oldest) {
                self.numbers.remove(&old.status.call_id);
                self.in_state[CallState::Terminated as usize] -= 1;
            }
        }
    }
}

/// The calls of one device.
#[derive(Debug)]
pub struct CallEngine {
    config: EngineConfig,
    store: Arc<Store>,
    bus: Arc<EventBus>,
    streams: Arc<StreamCounts>,
    /// Held only for bookkeeping and publishing (no I/O, no `.await`).
    registry: Mutex<Registry>,
    shutdown: CancellationToken,
    /// The SIP user agent, once it runs.
    signalling: OnceLock<Arc<dyn Signalling>>,
    /// What the far ends of calls say, as µ-law payloads (RTSP audio plays it).
    speech: broadcast::Sender<Bytes>,
}

impl CallEngine {
    /// Starts the engine: publishes the initial `Idle` state and follows the stream counts.
    pub fn start(
        config: EngineConfig,
        store: Arc<Store>,
        bus: Arc<EventBus>,
        shutdown: CancellationToken,
    ) -> Arc<Self> {
        let engine = Arc::new(Self {
            config,
            store,
            bus,
            streams: Arc::new(StreamCounts::default()),
            registry: Mutex::new(Registry::default()),
            shutdown,
            signalling: OnceLock::new(),
            speech: broadcast::Sender::new(SPEECH_BACKLOG),
        });
        engine.bus.publish(state_event(CallState::Idle));
        engine.config.tracker.spawn(follow_streams(engine.clone()));
        engine
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Fresh RTP counters for a call's media, adding to the device's totals (and writing its
    /// packets to `tap`).
    pub fn media_counters(&self, tap: Option<crate::capture::Tap>) -> Arc<MediaCounters> {
        Arc::new(MediaCounters {
            device: self.config.metrics.rtp(),
            tap,
            speech: Some(self.speech.clone()),
            ..MediaCounters::default()
        })
    }

    /// The device's metrics.
    pub fn metrics(&self) -> &crate::metrics::DeviceMetrics {
        &self.config.metrics
    }

    /// Follows what the far ends of calls say: their audio payloads as µ-law, as they arrive.
    pub fn speech(&self) -> broadcast::Receiver<Bytes> {
        self.speech.subscribe()
    }

    /// The device's call state (`tnsaxis:Call/State`): Active, Calling or Idle.
    pub fn call_state(&self) -> CallState {
        self.lock().aggregate
    }

    /// The stream counters the media endpoints hold guards of.
    pub fn streams(&self) -> &Arc<StreamCounts> {
        &self.streams
    }

    /// A device duration scaled by `--time-scale`.
    pub fn scaled(&self, d: Duration) -> Duration {
        d.div_f64(self.config.time_scale)
    }

    /// Places an outgoing call to `VMS_CALL` or a SIP URI; returns its id.
    pub fn place_call(self: &Arc<Self>, to: &str, account: Option<&str>) -> Result<String, CallError> {
        let (sip, vms) = self.store.read(|s| {
            let account_ok = account.is_none_or(|a| s.sip_accounts.contains_key(a));
            (account_ok.then(|| s.sip_configuration.clone()), s.vms_call_configuration.clone())
        });
        let sip = sip.ok_or_else(|| CallError::Invalid(format!("no SIP account {:?}", account.unwrap_or_default())))?;
        if to == VMS_CALL {
            if !vms.enabled {
                return Err(CallError::Failed("VMS calls are disabled (VMSCallConfiguration.Enabled)".into()));
            }
            let timeout = Duration::from_secs(vms.timeout.into());
            let call = NewCall::new(Direction::Outgoing, CallType::Vms, to, CallState::Calling, Reason::Initiated);
            return self.create(NewCall { answer_timeout: Some(timeout), ..call });
        }
        validate_sip_uri(to, "To").map_err(|e| CallError::Invalid(e.to_string()))?;
        if !sip.sip_enabled {
            return Err(CallError::Failed("SIP is disabled (SIPConfiguration.SIPEnabled)".into()));
        }
        let signalling = self.signalling.get().cloned().ok_or_else(|| CallError::Failed("no SIP user agent".into()))?;
        let account = match account {
            Some(a) => a.to_owned(),
            None => self.store.read(|s| s.default_account().map(|a| a.id.clone())).unwrap_or_default(),
        };
        let timeout = Duration::from_secs(sip.calling_timeout.into());
        let call = NewCall::new(Direction::Outgoing, CallType::Sip, to, CallState::Calling, Reason::Initiated);
        let id = self.create(NewCall { answer_timeout: Some(timeout), ..call })?;
        if let Some(e) = self.lock().get_mut(&id) {
            e.status.sip_account_id = Some(account.clone());
        }
        signalling.place(&id, to, &account);
        Ok(id)
    }

    /// Creates a call and starts its task.
    fn create(self: &Arc<Self>, call: NewCall<'_>) -> Result<String, CallError> {
        let NewCall { direction, call_type, remote, state, reason, answer_timeout, vms_kind } = call;
        let device_uri = self.store.read(|s| {
            s.default_account().map(|a| a.sip_uri(&self.config.device_host, &s.sip_configuration)).unwrap_or_default()
        });
        let (id, state_rx) = {
            let mut reg = self.lock();
            let in_progress = reg.in_progress();
            // Over the limit an outgoing call is refused; an incoming one is recorded as Busy.
            let (state, reason) = match (in_progress >= self.config.max_calls, direction) {
                (false, _) => (state, reason),
                (true, Direction::Outgoing) => {
                    return Err(CallError::Failed(format!("{} calls already in progress", self.config.max_calls)))
                }
                (true, Direction::Incoming) => (CallState::Terminated, Reason::Busy),
            };
            let number = reg.next_number;
            let id = new_call_id(direction, number);
            reg.next_number += 1;
            let status = CallStatus {
                call_id: id.clone(),
                source: SOURCE.to_owned(),
                call_state: state,
                call_state_reason: reason,
                start_time: now_rfc3339(),
                stop_time: (state == CallState::Terminated).then(now_rfc3339),
                direction,
                device_uri,
                remote_uri: remote.to_owned(),
                call_type,
                audio_codec: (call_type == CallType::Vms).then(|| "PCMU".to_owned()),
                video_codec: None,
                sip_account_id: None,
            };
            let (tx, rx) = watch::channel(state);
            reg.insert(number, Entry { status, state: tx, vms_kind, media: None, ending: None });
            reg.forget_oldest_terminated();
            self.announce(&mut reg, &id, reason);
            (id, rx)
        };
        let max_duration = match call_type {
            CallType::Sip => {
                let seconds = self.store.read(|s| int_attribute(&s.sip_configuration.attribute, "MaxCallDuration"));
                (seconds > 0).then(|| Duration::from_secs(seconds.unsigned_abs()))
            }
            CallType::Vms => None,
        };
        let auto_answer = self
            .config
            .auto_answer
            .filter(|_| (direction, call_type, state) == (Direction::Incoming, CallType::Sip, CallState::Calling));
        let timers = CallTimers { answer_timeout, auto_answer, max_duration };
        self.config.tracker.spawn(own_call(self.clone(), id.clone(), state_rx, timers));
        Ok(id)
    }

    /// Moves call `id` to `to` for `reason` if that is a legal transition; returns whether it moved.
    pub fn transition(&self, id: &str, to: CallState, reason: Reason) -> bool {
        let mut reg = self.lock();
        let Some(from) = reg.get(id).map(|e| e.status.call_state) else { return false };
        let legal = matches!(
            (from, to),
            (CallState::Calling, CallState::Active | CallState::Terminating | CallState::Terminated)
                | (CallState::Active, CallState::Terminating | CallState::Terminated)
                | (CallState::Terminating, CallState::Terminated)
        );
        if !legal {
            return false;
        }
        reg.set_state(id, to);
        let Some(entry) = reg.get_mut(id) else { return false };
        if to == CallState::Terminating {
            // The spec gives no StateChange reason for it: the status shows the state (its
            // reason stays), the event comes when the call is Terminated.
            entry.ending = Some(reason);
            tracing::info!(call = %entry.status.call_id, "call state Terminating: BYE or CANCEL on the wire");
            return true;
        }
        entry.status.call_state_reason = reason;
        if to == CallState::Terminated {
            entry.status.stop_time = Some(now_rfc3339());
        }
        self.announce(&mut reg, id, reason);
        true
    }

    /// Ends call `id` on the wire: a SIP call that is up, or one the device is placing, goes
    /// Terminating while its BYE or CANCEL is in flight; the signalling reports the end with
    /// [`CallEngine::transition`] to Terminated. Returns whether the call was moved.
    pub fn ending(&self, id: &str, reason: Reason) -> bool {
        self.transition(id, CallState::Terminating, reason)
    }

    /// A call Terminating for longer than any BYE or CANCEL can take ends with the reason it
    /// was ending for.
    fn finish_ending(&self, id: &str) {
        let reason = self.lock().get(id).and_then(|e| e.ending).unwrap_or(Reason::Terminated);
        self.transition(id, CallState::Terminated, reason);
    }

    /// Publishes the StateChange of call `id`, then the device's State if it moved.
    fn announce(&self, reg: &mut Registry, id: &str, reason: Reason) {
        let Some(entry) = reg.get(id) else { return };
        let s = &entry.status;
        let direction = match s.direction {
            Direction::Incoming => "Incoming",
            Direction::Outgoing => "Outgoing",
        };
        self.config.metrics.call_state(direction, s.call_state.as_str(), reason.as_str());
        tracing::info!(
            call = %s.call_id,
            state = ?s.call_state,
            reason = reason.as_str(),
            remote = %s.remote_uri,
            "call state"
        );
        self.bus.publish(Event::new(
            topics::CALL_STATE_CHANGE,
            false,
            &[("Source", SOURCE)],
            &[
                ("Reason", reason.as_str()),
                ("CallId", &s.call_id),
                ("RemoteURI", &s.remote_uri),
                ("DeviceURI", &s.device_uri),
            ],
        ));
        let computed = if reg.count(CallState::Active) > 0 {
            CallState::Active
        } else if reg.count(CallState::Calling) > 0 {
            CallState::Calling
        } else {
            CallState::Idle
        };
        // A call still Terminating holds the device's state where it was until it has ended.
        let holding = reg.count(CallState::Terminating) > 0 && computed.rank() < reg.aggregate.rank();
        let aggregate = if holding { reg.aggregate } else { computed };
        if aggregate != reg.aggregate {
            reg.aggregate = aggregate;
            self.bus.publish(state_event(aggregate));
        }
    }

    /// A transition the device makes on its own (API, control, timers): the same as
    /// [`CallEngine::transition`], and a SIP call's signalling is told.
    fn device_transition(&self, id: &str, to: CallState, reason: Reason) -> bool {
        let (is_sip, on_the_wire) = self.lock().get(id).map_or((false, false), |e| {
            let s = &e.status;
            let sip = s.call_type == CallType::Sip;
            // A BYE (call up) or CANCEL (call being placed) will be in flight.
            let wire = s.call_state == CallState::Active
                || (s.call_state == CallState::Calling && s.direction == Direction::Outgoing);
            (sip, sip && wire)
        });
        let to = if to == CallState::Terminated && on_the_wire { CallState::Terminating } else { to };
        let moved = self.transition(id, to, reason);
        if let (true, true, Some(s)) = (moved, is_sip, self.signalling.get()) {
            match to {
                CallState::Active => s.answered(id),
                _ => s.ended(id, reason),
            }
        }
        moved
    }

    /// Ends call `id` (TerminateCall): a call that is calling or active becomes Terminated.
    pub fn terminate(&self, id: &str) -> Result<(), CallError> {
        let state = self.lock().get(id).map(|e| e.status.call_state);
        match state {
            Some(CallState::Calling | CallState::Active | CallState::Terminating) => {
                self.device_transition(id, CallState::Terminated, Reason::Terminated);
                Ok(())
            }
            _ => Err(CallError::NotFound(format!("no ongoing call {id:?}"))),
        }
    }

    /// Answers a ringing incoming call.
    pub fn answer(&self, id: &str) -> Result<(), CallError> {
        self.ringing_incoming(id)?;
        self.device_transition(id, CallState::Active, Reason::AcceptedByDevice);
        Ok(())
    }

    /// Declines a ringing incoming call.
    pub fn reject(&self, id: &str) -> Result<(), CallError> {
        self.ringing_incoming(id)?;
        self.device_transition(id, CallState::Terminated, Reason::Denied);
        Ok(())
    }

    /// Connects the SIP user agent (once).
    pub fn set_signalling(&self, signalling: Arc<dyn Signalling>) {
        let _ = self.signalling.set(signalling);
    }

    /// A new incoming SIP call from `remote`, ringing; over the call limit it is recorded Busy
    /// and refused. `denied` records a call the device refused outright (reason Denied).
    pub fn incoming_sip(
        self: &Arc<Self>,
        remote: &str,
        account: Option<&str>,
        denied: bool,
    ) -> Result<String, CallError> {
        let (state, reason) =
            if denied { (CallState::Terminated, Reason::Denied) } else { (CallState::Calling, Reason::Initiated) };
        // A call nobody answers or cancels rings for CallingTimeout, then ends NoAnswer (480 to
        // the caller), so stale INVITEs never hold the call slots.
        let ring_for = Duration::from_secs(self.store.read(|s| s.sip_configuration.calling_timeout).into());
        let call = NewCall::new(Direction::Incoming, CallType::Sip, remote, state, reason);
        let id = self.create(NewCall { answer_timeout: Some(ring_for), ..call })?;
        let mut reg = self.lock();
        if let Some(e) = reg.get_mut(&id) {
            e.status.sip_account_id = account.map(str::to_owned);
            if e.status.call_state == CallState::Terminated && !denied {
                return Err(CallError::Failed("busy".into()));
            }
        }
        Ok(id)
    }

    /// Sends DTMF on an active SIP call (control API); `over_rtp` picks RFC 4733, else SIP INFO.
    pub fn send_dtmf(&self, id: &str, digits: &str, over_rtp: bool) -> Result<(), CallError> {
        let signalling = self.active_sip_with_digits(id, digits)?;
        signalling.send_dtmf(id, digits, over_rtp);
        Ok(())
    }

    /// Digits keyed at the far end of active SIP call `id` (the control API's keypad, standing
    /// for the remote party): the call's DTMF decoder takes them as RFC 4733 digits.
    pub fn keyed(&self, id: &str, digits: &str) -> Result<(), CallError> {
        let signalling = self.active_sip_with_digits(id, digits)?;
        signalling.keyed(id, digits);
        Ok(())
    }

    /// The user agent, when `id` is an active SIP call and `digits` are 1 to 64 DTMF digits.
    fn active_sip_with_digits(&self, id: &str, digits: &str) -> Result<&Arc<dyn Signalling>, CallError> {
        let active_sip = self
            .lock()
            .get(id)
            .is_some_and(|e| e.status.call_type == CallType::Sip && e.status.call_state == CallState::Active);
        if !active_sip {
            return Err(CallError::NotFound(format!("no active SIP call {id:?}")));
        }
        if digits.is_empty()
            || digits.len() > 64
            || !digits.chars().all(|c| matches!(c, '0'..='9' | 'A'..='D' | '*' | '#'))
        {
            return Err(CallError::Invalid(format!("{digits:?} is not 1 to 64 DTMF digits (0-9, A-D, *, #)")));
        }
        self.signalling.get().ok_or_else(|| CallError::Failed("no SIP user agent".into()))
    }

    /// Records the media of a SIP call: its codec, the SIP transport (`UDP`, `TCP`, `TLS`) and
    /// its RTP counters.
    pub fn set_media(&self, id: &str, codec: &str, transport: &str, counters: Arc<MediaCounters>) {
        if let Some(e) = self.lock().get_mut(id) {
            e.status.audio_codec = Some(codec.to_owned());
            e.media = Some((counters, transport.to_owned()));
        }
    }

    /// RTP packets (sent, received) and the SIP transport of call `id`, once its media runs.
    pub fn media_counts(&self, id: &str) -> Option<(u64, u64, String)> {
        let reg = self.lock();
        let (m, transport) = reg.get(id)?.media.as_ref()?;
        Some((m.sent.load(Ordering::Relaxed), m.received.load(Ordering::Relaxed), transport.clone()))
    }

    fn ringing_incoming(&self, id: &str) -> Result<(), CallError> {
        let reg = self.lock();
        match reg.get(id) {
            Some(e) if e.status.direction == Direction::Incoming && e.status.call_state == CallState::Calling => Ok(()),
            _ => Err(CallError::NotFound(format!("no ringing incoming call {id:?}"))),
        }
    }

    /// The status of call `id`.
    pub fn status(&self, id: &str) -> Option<CallStatus> {
        self.lock().get(id).map(|e| e.status.clone())
    }

    /// Ends every call (on the wire too: the signalling has carried it out when this returns, or
    /// after a second), then forgets them all and restarts the call counters.
    pub async fn reset(&self) {
        let ongoing: Vec<String> = self
            .lock()
            .entries()
            .filter(|e| e.status.call_state != CallState::Terminated)
            .map(|e| e.status.call_id.clone())
            .collect();
        for id in ongoing {
            self.device_transition(&id, CallState::Terminated, Reason::Terminated);
        }
        if let Some(s) = self.signalling.get() {
            let _ = tokio::time::timeout(Duration::from_secs(1), s.flushed()).await;
        }
        let mut reg = self.lock();
        reg.clear(); // each call's task ends with its entry
        reg.next_number = 0;
        if reg.aggregate != CallState::Idle {
            reg.aggregate = CallState::Idle;
            self.bus.publish(state_event(CallState::Idle));
        }
    }

    /// The device is stopping: the signalling ends every call on the wire and un-registers;
    /// waits for that at most `within`.
    pub async fn wind_down(&self, within: Duration) {
        if let Some(s) = self.signalling.get() {
            let _ = tokio::time::timeout(within, s.wind_down()).await;
        }
    }

    /// Follows call `id`'s state: every change is seen (a `watch`, not the lossy event bus).
    pub fn watch(&self, id: &str) -> Option<watch::Receiver<CallState>> {
        self.lock().get(id).map(|e| e.state.subscribe())
    }

    /// The statuses of `ids` (unknown ids skipped), or of every call when `ids` is empty.
    pub fn statuses(&self, ids: &[String]) -> Vec<CallStatus> {
        let reg = self.lock();
        if ids.is_empty() {
            reg.entries().map(|e| e.status.clone()).collect()
        } else {
            ids.iter().filter_map(|id| reg.get(id)).map(|e| e.status.clone()).collect()
        }
    }

    /// Applies the VMS rules to new stream counts: each kind whose count reaches its threshold
    /// answers a calling outgoing VMS call, or else starts an incoming one; a kind that falls
    /// below its threshold ends the call it holds.
    fn on_stream_counts(self: &Arc<Self>, counts: Counts) {
        let config = self.store.read(|s| s.vms_call_configuration.clone());
        for kind in StreamKind::ALL {
            let threshold = kind.threshold(&config);
            let reached = threshold > 0 && i64::from(StreamCounts::of(&counts, kind)) >= i64::from(threshold);
            let held = self.lock().entries().find_map(|e| {
                (e.vms_kind == Some(kind) && e.status.call_state != CallState::Terminated)
                    .then(|| e.status.call_id.clone())
            });
            match (reached, held) {
                (true, None) if config.enabled => self.start_vms_call(kind),
                (false, Some(id)) => {
                    self.transition(&id, CallState::Terminated, Reason::Terminated);
                }
                _ => {}
            }
        }
    }

    fn start_vms_call(self: &Arc<Self>, kind: StreamKind) {
        let calling = {
            let mut reg = self.lock();
            let found = reg.calls.values_mut().find(|e| {
                e.status.call_type == CallType::Vms
                    && e.status.direction == Direction::Outgoing
                    && e.status.call_state == CallState::Calling
                    && e.vms_kind.is_none()
            });
            found.map(|e| {
                e.vms_kind = Some(kind);
                e.status.call_id.clone()
            })
        };
        let result = match calling {
            Some(id) => {
                self.transition(&id, CallState::Active, Reason::AcceptedByRemote);
                Ok(id)
            }
            None => {
                let call = NewCall::new(
                    Direction::Incoming,
                    CallType::Vms,
                    VMS_CALL,
                    CallState::Active,
                    Reason::AcceptedByDevice,
                );
                self.create(NewCall { vms_kind: Some(kind), ..call })
            }
        };
        if let Err(e) = result {
            tracing::warn!(?kind, error = %e, "stream did not become a VMS call");
        }
    }

    fn forget(&self, id: &str) {
        self.lock().remove(id);
    }
}

fn state_event(state: CallState) -> Event {
    Event::new(topics::CALL_STATE, true, &[("Source", SOURCE)], &[("CallState", state.as_str())])
}

/// The timers of one call, in device time (scaled when they start).
#[derive(Debug, Clone, Copy)]
struct CallTimers {
    /// How long it may stay Calling before NoAnswer.
    answer_timeout: Option<Duration>,
    /// When the device answers a ringing incoming call by itself (`--auto-answer`).
    auto_answer: Option<Duration>,
    /// The longest it may stay Active (MaxCallDuration).
    max_duration: Option<Duration>,
}

/// What a call's timer does when it fires.
#[derive(Debug, Clone, Copy)]
enum OnTimer {
    Answer,
    Move(CallState, Reason),
    Finish,
}

/// The task that owns one call's timers: auto-answer and NoAnswer while calling, the maximum
/// duration while active, and the retention after it ended.
async fn own_call(engine: Arc<CallEngine>, id: String, mut state: watch::Receiver<CallState>, timers: CallTimers) {
    let deadline = |d: Option<Duration>| d.map(|d| tokio::time::Instant::now() + engine.scaled(d));
    let answer_by = deadline(timers.answer_timeout);
    let mut auto_answer_at = deadline(timers.auto_answer);
    let mut end_by = None;
    loop {
        let current = *state.borrow_and_update();
        let (timer, on_timeout) = match current {
            CallState::Calling => match (auto_answer_at, answer_by) {
                (Some(a), b) if b.is_none_or(|b| a < b) => (Some(a), OnTimer::Answer),
                _ => (answer_by, OnTimer::Move(CallState::Terminated, Reason::NoAnswer)),
            },
            CallState::Active => {
                end_by = end_by.or_else(|| deadline(timers.max_duration));
                (end_by, OnTimer::Move(CallState::Terminated, Reason::Terminated))
            }
            CallState::Terminated | CallState::Idle => break,
            // A BYE or CANCEL ends within 64*T1 (Timer F, not scaled); this is only a backstop.
            CallState::Terminating => (Some(tokio::time::Instant::now() + TERMINATING_LIMIT), OnTimer::Finish),
        };
        let sleep = async {
            match timer {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = engine.shutdown.cancelled() => return,
            changed = state.changed() => if changed.is_err() { return },
            () = sleep => match on_timeout {
                OnTimer::Answer => {
                    auto_answer_at = None;
                    if let Err(e) = engine.answer(&id) {
                        tracing::debug!(id, error = %e, "auto-answer found the call no longer ringing");
                    }
                }
                OnTimer::Move(to, reason) => { engine.device_transition(&id, to, reason); }
                OnTimer::Finish => engine.finish_ending(&id),
            },
        }
    }
    // Retention ends early when the registry already forgot the call (too many ended calls):
    // its state sender is dropped with the entry, so no task outlives its call.
    tokio::select! {
        () = engine.shutdown.cancelled() => {}
        _ = state.changed() => {}
        () = tokio::time::sleep(engine.scaled(engine.config.retention)) => engine.forget(&id),
    }
}

/// Follows the stream counts for the engine's lifetime.
async fn follow_streams(engine: Arc<CallEngine>) {
    let mut counts = engine.streams.watch();
    loop {
        let current = *counts.borrow_and_update();
        engine.on_stream_counts(current);
        tokio::select! {
            () = engine.shutdown.cancelled() => return,
            changed = counts.changed() => if changed.is_err() { return },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> (Arc<CallEngine>, Arc<EventBus>) {
        let bus = Arc::new(EventBus::new());
        let config = EngineConfig { time_scale: 1000.0, ..EngineConfig::default() };
        (CallEngine::start(config, Arc::new(Store::new()), bus.clone(), CancellationToken::new()), bus)
    }

    fn reasons(bus: &EventBus) -> Vec<String> {
        bus.log(None, 0)
            .iter()
            .map(|e| {
                format!(
                    "{}={}",
                    e.topic.rsplit('/').next().unwrap_or(""),
                    e.data.values().next().cloned().unwrap_or_default()
                )
            })
            .collect()
    }

    #[tokio::test]
    async fn the_oldest_ended_calls_are_forgotten_first_and_the_counts_follow_every_change() {
        let (engine, _bus) = engine();
        let new = |state| NewCall::new(Direction::Incoming, CallType::Sip, "sip:a@b", state, Reason::Initiated);
        let ringing = engine.create(new(CallState::Calling)).expect("created");
        let ended: Vec<String> = (0..MAX_RETAINED + 10)
            .map(|_| {
                let id = engine.create(new(CallState::Calling)).expect("created");
                assert!(engine.transition(&id, CallState::Terminated, Reason::Terminated));
                id
            })
            .collect();
        let active = engine.create(new(CallState::Calling)).expect("created");
        engine.answer(&active).expect("answer");
        let kept: Vec<String> = engine.statuses(&[]).into_iter().map(|s| s.call_id).collect();
        // The ringing call is older than every ended one and stays; the ten oldest ended go.
        let mut expected = vec![ringing.clone()];
        expected.extend(ended[10..].iter().cloned());
        expected.push(active.clone());
        assert_eq!(kept, expected, "calls listed in the order they were made");
        let reg = engine.lock();
        for state in [CallState::Calling, CallState::Active, CallState::Terminating, CallState::Terminated] {
            let counted = reg.entries().filter(|e| e.status.call_state == state).count();
            assert_eq!(reg.count(state), counted, "{state:?}");
        }
        assert_eq!(reg.in_progress(), 2);
        assert_eq!(reg.aggregate, CallState::Active);
        drop(reg);
        engine.forget(&ended[20]);
        assert_eq!(engine.lock().count(CallState::Terminated), MAX_RETAINED - 1);
        assert!(engine.status(&ended[20]).is_none());
    }

    #[tokio::test]
    async fn incoming_calls_are_answered_or_rejected_only_while_ringing() {
        // Incoming ringing calls come from SIP; the engine's part is tested here directly.
        let (engine, bus) = engine();
        let id = engine
            .create(NewCall::new(Direction::Incoming, CallType::Sip, "sip:a@b", CallState::Calling, Reason::Initiated))
            .expect("created");
        engine.answer(&id).expect("answer");
        assert_eq!(engine.status(&id).map(|s| s.call_state), Some(CallState::Active));
        assert!(engine.answer(&id).is_err(), "an active call is not ringing");
        let other = engine
            .create(NewCall::new(Direction::Incoming, CallType::Sip, "sip:a@b", CallState::Calling, Reason::Initiated))
            .expect("created");
        engine.reject(&other).expect("reject");
        assert_eq!(engine.status(&other).map(|s| s.call_state_reason), Some(Reason::Denied));
        engine.terminate(&id).expect("terminate");
        // The signalling's BYE is answered.
        assert!(engine.transition(&id, CallState::Terminated, Reason::Terminated));
        assert_eq!(
            reasons(&bus),
            [
                "State=Idle",
                "StateChange=Initiated",
                "State=Calling",
                "StateChange=AcceptedByDevice",
                "State=Active",
                "StateChange=Initiated",
                "StateChange=Denied",
                "StateChange=Terminated",
                "State=Idle"
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_sip_call_the_device_ends_is_terminating_until_its_bye_is_answered() {
        let (engine, bus) = engine();
        let call = NewCall::new(Direction::Incoming, CallType::Sip, "sip:a@b", CallState::Calling, Reason::Initiated);
        let (first, second) = (engine.create(call).expect("created"), engine.create(call).expect("created"));
        for id in [&first, &second] {
            engine.answer(id).expect("answer");
            engine.terminate(id).expect("terminate");
        }
        let status = |id: &str| engine.status(id).map(|s| (s.call_state, s.call_state_reason));
        assert_eq!(status(&first), Some((CallState::Terminating, Reason::AcceptedByDevice)), "no reason of its own");
        let before = reasons(&bus);
        assert!(!before.iter().any(|e| e.contains("Terminated")), "no StateChange while ending: {before:?}");
        let last_state = before.iter().rev().find(|e| e.starts_with("State="));
        assert_eq!(last_state.map(String::as_str), Some("State=Active"), "the device stays Active meanwhile");
        // The signalling reports the first BYE answered.
        assert!(engine.transition(&first, CallState::Terminated, Reason::Terminated));
        assert_eq!(status(&first), Some((CallState::Terminated, Reason::Terminated)));
        assert_eq!(reasons(&bus)[before.len()..], ["StateChange=Terminated"], "still Active: one call is ending");
        // The second BYE is never answered: past Timer F the call ends anyway, with its reason.
        tokio::time::sleep(TERMINATING_LIMIT + Duration::from_secs(1)).await;
        assert_eq!(reasons(&bus)[before.len()..], ["StateChange=Terminated", "StateChange=Terminated", "State=Idle"]);
    }

    #[tokio::test]
    async fn illegal_transitions_are_ignored_and_the_call_limit_holds() {
        let (engine, _) = engine();
        let id = engine.place_call(VMS_CALL, None).expect("call");
        assert!(engine.transition(&id, CallState::Terminated, Reason::NoAnswer));
        assert!(!engine.transition(&id, CallState::Active, Reason::AcceptedByRemote));
        assert!(engine.terminate(&id).is_err());
        for _ in 0..16 {
            engine.place_call(VMS_CALL, None).expect("within the limit");
        }
        assert!(matches!(engine.place_call(VMS_CALL, None), Err(CallError::Failed(_))));
    }

    #[tokio::test(start_paused = true)]
    async fn incoming_calls_over_the_limit_are_busy_and_sip_calls_end_at_max_duration() {
        let (engine, _) = engine();
        engine
            .store
            .update(|s| {
                s.sip_configuration.attribute =
                    vec![crate::model::Attribute { name: "MaxCallDuration".into(), value: "5".into() }];
                Ok(())
            })
            .expect("attribute");
        let sip = engine
            .create(NewCall::new(
                Direction::Incoming,
                CallType::Sip,
                "sip:a@b",
                CallState::Active,
                Reason::AcceptedByDevice,
            ))
            .expect("created");
        for _ in 0..15 {
            engine.place_call(VMS_CALL, None).expect("within the limit");
        }
        let busy = engine
            .create(NewCall::new(
                Direction::Incoming,
                CallType::Vms,
                VMS_CALL,
                CallState::Active,
                Reason::AcceptedByDevice,
            ))
            .expect("recorded");
        let s = engine.status(&busy).expect("busy call");
        assert_eq!((s.call_state, s.call_state_reason), (CallState::Terminated, Reason::Busy));
        assert!(s.stop_time.is_some());
        // MaxCallDuration 5 s at time scale 1000 is 5 ms; then the BYE goes out.
        tokio::time::sleep(Duration::from_millis(10)).await;
        let s = engine.status(&sip).expect("sip call");
        assert_eq!(s.call_state, CallState::Terminating);
        assert!(engine.transition(&sip, CallState::Terminated, Reason::Terminated));
    }

    #[tokio::test(start_paused = true)]
    async fn an_unanswered_vms_call_times_out_with_no_answer_and_is_forgotten_later() {
        let bus = Arc::new(EventBus::new());
        let engine = CallEngine::start(EngineConfig::default(), Arc::new(Store::new()), bus, CancellationToken::new());
        let id = engine.place_call(VMS_CALL, None).expect("call");
        tokio::time::sleep(Duration::from_secs(29)).await;
        assert_eq!(engine.status(&id).map(|s| s.call_state), Some(CallState::Calling));
        tokio::time::sleep(Duration::from_secs(2)).await;
        let s = engine.status(&id).expect("still visible");
        assert_eq!((s.call_state, s.call_state_reason), (CallState::Terminated, Reason::NoAnswer));
        assert!(s.stop_time.is_some());
        tokio::time::sleep(Duration::from_secs(61)).await;
        assert_eq!(engine.status(&id), None, "terminated calls disappear after 60 s");
    }
}
