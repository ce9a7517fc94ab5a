//! Door actions: a DTMF event bound to "activate output N for S seconds", like the action rule
//! an installer sets up on the device. Bindings come from the profile (`DtmfActions`) and the
//! control API. A DTMF match reaches [`DoorActions`] directly ([`TriggerSink`]), never through
//! the lossy event bus; each output has one hold timer, which a new trigger extends.
//!
//! With a state file ([`DoorActions::keep_in`]), the bindings persist in its `DTMFActions`
//! section, in place of the profile's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use thiserror::Error;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::dtmf::TriggerSink;
use crate::io::IoPorts;
use crate::persist::{StateError, StateFile};
use crate::profile::{DtmfAction, PortDirection};

/// Most bindings at once.
const MAX_BINDINGS: usize = 100;

/// Longest DTMF event id of a binding (as the Call service's ids).
const MAX_EVENT_ID: usize = 128;

/// The state file section of the bindings.
const SECTION: &str = "DTMFActions";

/// Why a binding was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BindError {
    /// The port is an input.
    #[error("port {0} is an input")]
    Input(usize),
    /// No such port.
    #[error("no port {0}")]
    NoPort(usize),
    /// Seconds out of range.
    #[error("Seconds must be between 0.05 and 3600")]
    Seconds,
    /// Too many bindings.
    #[error("at most {MAX_BINDINGS} bindings")]
    TooMany,
    /// The DTMF event id is empty or too long.
    #[error("DTMFEventId must be 1 to {MAX_EVENT_ID} characters")]
    EventId,
    /// A state file's section does not hold bindings.
    #[error("{SECTION}: {0}")]
    Section(String),
    /// The binding could not be written to the state file (nothing changed).
    #[error("{0}")]
    Storage(String),
}

/// The bindings of a state file's `DTMFActions` section, or `None` when it has none; each is
/// checked as [`DoorActions::bind`] checks it when the device has its ports.
pub fn read_bindings(document: &serde_json::Value) -> Result<Option<Vec<DtmfAction>>, BindError> {
    let Some(section) = document.get(SECTION) else { return Ok(None) };
    let bindings: Vec<DtmfAction> =
        serde_json::from_value(section.clone()).map_err(|e| BindError::Section(e.to_string()))?;
    if bindings.len() > MAX_BINDINGS {
        return Err(BindError::TooMany);
    }
    Ok(Some(bindings))
}

/// The bindings of one device and the outputs they hold open.
#[derive(Debug)]
pub struct DoorActions {
    /// Held only to read or change the map.
    bindings: Mutex<HashMap<String, DtmfAction>>,
    /// When each held output goes inactive again; a port is here while its timer task runs.
    held_until: Mutex<HashMap<usize, Instant>>,
    io: Arc<IoPorts>,
    time_scale: f64,
    shutdown: CancellationToken,
    /// The device's tasks (the hold timers).
    tracker: TaskTracker,
    /// The profile's bindings, for a reset.
    initial: Vec<DtmfAction>,
    /// Where the bindings persist (`--state`), if anywhere.
    file: OnceLock<Arc<StateFile>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl DoorActions {
    /// Door actions over `io` with the `initial` bindings (from the profile).
    pub fn new(
        io: Arc<IoPorts>,
        time_scale: f64,
        initial: &[DtmfAction],
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Arc<Self> {
        let mut actions = DoorActions {
            bindings: Mutex::default(),
            held_until: Mutex::default(),
            io,
            time_scale,
            shutdown,
            tracker,
            initial: Vec::new(),
            file: OnceLock::new(),
        };
        for a in initial {
            if let Err(e) = actions.bind(a.clone()) {
                tracing::warn!(error = %e, "profile DTMF action ignored");
            }
        }
        actions.initial = actions.list();
        Arc::new(actions)
    }

    /// Keeps the bindings in `file` from now on, restoring what its `DTMFActions` section holds
    /// (refused when a binding breaks a rule); without that section the profile's stay.
    pub fn keep_in(&self, file: Arc<StateFile>) -> Result<(), StateError> {
        if let Some(bindings) = read_bindings(&file.document()).map_err(|e| file.refused(e))? {
            let mut map = HashMap::new();
            for b in bindings {
                self.check(&b).map_err(|e| file.refused(format!("{SECTION} '{}': {e}", b.dtmf_event_id)))?;
                map.insert(b.dtmf_event_id.clone(), b);
            }
            *lock(&self.bindings) = map;
        }
        let _ = self.file.set(file);
        Ok(())
    }

    /// Whether `action` may be bound on this device: an output port, a bounded hold and id.
    fn check(&self, action: &DtmfAction) -> Result<(), BindError> {
        match self.io.port(action.port) {
            Some(p) if p.direction == PortDirection::Output => {}
            Some(_) => return Err(BindError::Input(action.port)),
            None => return Err(BindError::NoPort(action.port)),
        }
        if !(action.seconds.is_finite() && (0.05..=3600.0).contains(&action.seconds)) {
            return Err(BindError::Seconds);
        }
        if action.dtmf_event_id.is_empty() || action.dtmf_event_id.chars().count() > MAX_EVENT_ID {
            return Err(BindError::EventId);
        }
        Ok(())
    }

    /// Adds or replaces the binding of an event. The port must be an output. With a state file
    /// the binding is written there before it takes effect.
    pub fn bind(&self, action: DtmfAction) -> Result<(), BindError> {
        self.check(&action)?;
        let mut map = lock(&self.bindings);
        if map.len() >= MAX_BINDINGS && !map.contains_key(&action.dtmf_event_id) {
            return Err(BindError::TooMany);
        }
        let mut next = map.clone();
        next.insert(action.dtmf_event_id.clone(), action);
        if let Some(file) = self.file.get() {
            save(file, &next)?;
        }
        *map = next;
        Ok(())
    }

    /// Back to the profile's bindings (in the state file too); held outputs are released by
    /// the port reset.
    pub fn reset(&self) {
        let mut map = lock(&self.bindings);
        map.clear();
        map.extend(self.initial.iter().map(|a| (a.dtmf_event_id.clone(), a.clone())));
        lock(&self.held_until).clear();
        if let Some(Err(e)) = self.file.get().map(|file| save(file, &map)) {
            tracing::error!(error = %e, "the door actions could not be reset in the state file");
        }
    }

    /// Every binding.
    pub fn list(&self) -> Vec<DtmfAction> {
        lock(&self.bindings).values().cloned().collect()
    }

    /// Holds output `port` active until `until`, extending a hold in progress; one timer task
    /// per held output.
    fn hold(self: &Arc<Self>, port: usize, until: Instant) {
        let mut held = lock(&self.held_until);
        if let Some(current) = held.get_mut(&port) {
            *current = (*current).max(until);
            return;
        }
        held.insert(port, until);
        let this = self.clone();
        self.tracker.spawn(async move {
            loop {
                let Some(deadline) = lock(&this.held_until).get(&port).copied() else { return };
                if Instant::now() >= deadline {
                    break;
                }
                tokio::select! {
                    () = this.shutdown.cancelled() => return,
                    () = tokio::time::sleep_until(deadline) => {}
                }
            }
            lock(&this.held_until).remove(&port);
            let _ = this.io.set_active(port, false, true);
        });
    }
}

/// Writes `bindings` as the `DTMFActions` section of `file`, ordered by event id.
fn save(file: &StateFile, bindings: &HashMap<String, DtmfAction>) -> Result<(), BindError> {
    let mut list: Vec<&DtmfAction> = bindings.values().collect();
    list.sort_by(|a, b| a.dtmf_event_id.cmp(&b.dtmf_event_id));
    let section = serde_json::to_value(list).unwrap_or(serde_json::Value::Null);
    file.save(serde_json::Map::from_iter([(SECTION.to_owned(), section)]))
        .map_err(|e| BindError::Storage(e.to_string()))
}

/// The sink the SIP side hands DTMF matches to: the [`DoorActions`] of the device.
#[derive(Debug)]
pub struct DoorSink(pub Arc<DoorActions>);

impl TriggerSink for DoorSink {
    fn fired(&self, event_id: &str, call_id: &str) {
        let actions = &self.0;
        let Some(action) = lock(&actions.bindings).get(event_id).cloned() else { return };
        if let Err(e) = actions.io.set_active(action.port, true, true) {
            tracing::warn!(error = %e, "door action failed");
            return;
        }
        tracing::info!(event = event_id, call = call_id, port = action.port, "door opened by DTMF");
        let hold = Duration::from_secs_f64(action.seconds / actions.time_scale);
        actions.hold(action.port, Instant::now() + hold);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventBus;
    use crate::profile::PortSpec;

    fn door() -> (Arc<DoorActions>, Arc<IoPorts>) {
        let specs = [
            PortSpec { name: "Button".into(), direction: PortDirection::Input },
            PortSpec { name: "Lock".into(), direction: PortDirection::Output },
        ];
        let io = Arc::new(IoPorts::new(&specs, Arc::new(EventBus::new())));
        let binding = DtmfAction { dtmf_event_id: "open".into(), port: 1, seconds: 5.0 };
        (DoorActions::new(io.clone(), 1.0, &[binding], CancellationToken::new(), TaskTracker::new()), io)
    }

    fn active(io: &IoPorts) -> bool {
        io.port(1).is_some_and(|p| p.active)
    }

    #[tokio::test(start_paused = true)]
    async fn a_match_opens_the_door_at_once_and_a_second_one_extends_the_hold() {
        let (actions, io) = door();
        let sink = DoorSink(actions.clone());
        sink.fired("open", "call-1");
        assert!(active(&io), "the output goes active synchronously, with no queue in between");
        tokio::time::sleep(Duration::from_secs(3)).await;
        sink.fired("open", "call-1");
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(active(&io), "5.5 s after the first code, 2.5 s after the second: still held");
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(!active(&io), "released 5 s after the second code");
        assert!(lock(&actions.held_until).is_empty(), "its one timer ended");
        sink.fired("unbound", "call-1");
        assert!(!active(&io));
    }

    #[test]
    fn bindings_are_checked() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().expect("runtime");
        let _guard = rt.enter();
        let (actions, _) = door();
        let bind = |port, seconds| actions.bind(DtmfAction { dtmf_event_id: "x".into(), port, seconds });
        assert_eq!(bind(0, 1.0), Err(BindError::Input(0)));
        assert_eq!(bind(7, 1.0), Err(BindError::NoPort(7)));
        assert_eq!(bind(1, 0.0), Err(BindError::Seconds));
        assert_eq!(bind(1, 1.0), Ok(()));
    }
}
