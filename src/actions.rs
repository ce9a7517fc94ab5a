//! Door actions: a DTMF event bound to "activate output N for S seconds", like the action rule
//! an installer sets up on the device. Bindings come from the profile (`DtmfActions`) and the
//! control API; a task follows the event bus and drives the outputs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use crate::events::{topics, EventBus};
use crate::io::IoPorts;
use crate::profile::PortDirection;

/// Most bindings at once.
const MAX_BINDINGS: usize = 100;

/// One binding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct DtmfAction {
    /// The DTMF event that fires it.
    #[serde(rename = "DTMFEventId")]
    pub dtmf_event_id: String,
    /// The output port to activate (index from 0, as portmanagement numbers them).
    pub port: usize,
    /// For how long, in seconds.
    pub seconds: f64,
}

/// The bindings of one device.
#[derive(Debug)]
pub struct DoorActions {
    /// Held only to read or change the map.
    bindings: Mutex<HashMap<String, DtmfAction>>,
    io: Arc<IoPorts>,
    time_scale: f64,
}

impl DoorActions {
    /// Starts following `bus` with the `initial` bindings (from the profile).
    pub fn start(
        bus: &Arc<EventBus>,
        io: Arc<IoPorts>,
        time_scale: f64,
        initial: &[DtmfAction],
        shutdown: CancellationToken,
    ) -> Arc<DoorActions> {
        let actions = Arc::new(DoorActions { bindings: Mutex::default(), io, time_scale });
        for a in initial {
            if let Err(e) = actions.bind(a.clone()) {
                tracing::warn!(error = %e, "profile DTMF action ignored");
            }
        }
        tokio::spawn(follow(actions.clone(), bus.clone(), shutdown));
        actions
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, DtmfAction>> {
        self.bindings.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds or replaces the binding of an event. The port must be an output.
    pub fn bind(&self, action: DtmfAction) -> Result<(), String> {
        match self.io.port(action.port) {
            Some(p) if p.direction == PortDirection::Output => {}
            Some(_) => return Err(format!("port {} is an input", action.port)),
            None => return Err(format!("no port {}", action.port)),
        }
        if !(action.seconds.is_finite() && (0.05..=3600.0).contains(&action.seconds)) {
            return Err("Seconds must be between 0.05 and 3600".into());
        }
        let mut map = self.lock();
        if map.len() >= MAX_BINDINGS && !map.contains_key(&action.dtmf_event_id) {
            return Err(format!("at most {MAX_BINDINGS} bindings"));
        }
        map.insert(action.dtmf_event_id.clone(), action);
        Ok(())
    }

    /// Every binding.
    pub fn list(&self) -> Vec<DtmfAction> {
        self.lock().values().cloned().collect()
    }
}

async fn follow(actions: Arc<DoorActions>, bus: Arc<EventBus>, shutdown: CancellationToken) {
    let mut live = bus.subscribe().live;
    loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => return,
            e = live.recv() => e,
        };
        let event = match event {
            Ok(e) => e,
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        };
        if event.topic != topics::CALL_DTMF {
            continue;
        }
        let Some(action) = event.source.get("DTMFEventId").and_then(|id| actions.lock().get(id).cloned()) else {
            continue;
        };
        if let Err(e) = actions.io.set_active(action.port, true, true) {
            tracing::warn!(error = %e, "door action failed");
            continue;
        }
        tracing::info!(event = %action.dtmf_event_id, port = action.port, "door opened by DTMF");
        let (io, hold) = (actions.io.clone(), Duration::from_secs_f64(action.seconds / actions.time_scale));
        tokio::spawn(async move {
            tokio::time::sleep(hold).await;
            let _ = io.set_active(action.port, false, true);
        });
    }
}
