//! The device's I/O ports (from its profile) and virtual inputs, with their events.
//!
//! A port is active when its state differs from its normal state (`open` by default). Every
//! change is published as `tns1:Device/tnsaxis:IO/Port` (source `port`, data `state` 0/1) or
//! `tns1:Device/tnsaxis:IO/VirtualInput` (source `port`, data `active` 0/1); the current values
//! are property events, so new subscribers see them first.
//!
//! With a state file ([`IoPorts::keep_in`]), each port's settings (name, usage, normal state)
//! persist in its `IOPorts` section; states do not: after a restart every port is at its normal
//! state, as on a device after power-up.

use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::events::{topics, Event, EventBus};
use crate::persist::{StateError, StateFile};
use crate::profile::{PortDirection, PortSpec};

/// Longest port name or usage text, in characters.
pub const MAX_PORT_TEXT: usize = 256;

/// The state file section of the port settings.
const SECTION: &str = "IOPorts";

/// Virtual inputs, numbered 1..=32 as VAPIX does.
pub const VIRTUAL_INPUTS: usize = 32;

/// Why an I/O request was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IoError {
    /// No such port.
    #[error("no port {0}")]
    NoSuchPort(String),
    /// The port is an input and cannot be set through the API.
    #[error("port {0} is an input")]
    NotAnOutput(usize),
    /// A value is not allowed.
    #[error("{0}")]
    Invalid(String),
    /// The change could not be written to the state file (nothing changed).
    #[error("{0}")]
    Storage(String),
}

/// One port's configuration and state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Port {
    /// Index from 0.
    pub index: usize,
    /// Name.
    pub name: String,
    /// Usage text.
    pub usage: String,
    /// Input or output.
    pub direction: PortDirection,
    /// `open` or `closed`: the inactive state.
    pub normal_state: &'static str,
    /// Whether the port is active.
    pub active: bool,
}

impl Port {
    /// The electrical state: `closed` or `open`.
    pub fn state(&self) -> &'static str {
        match (self.active, self.normal_state) {
            (false, s) => s,
            (true, "open") => "closed",
            (true, _) => "open",
        }
    }
}

/// One port's settings as the state file keeps them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct PortSettings {
    /// Index from 0.
    pub port: usize,
    /// Name.
    pub name: String,
    /// Usage text.
    pub usage: String,
    /// `open` or `closed`.
    pub normal_state: String,
}

/// The port settings of a state file's `IOPorts` section (absent: none), checked against a
/// device with `ports` ports: every index exists once, texts are bounded, states are valid.
pub fn read_port_settings(document: &Value, ports: usize) -> Result<Vec<PortSettings>, IoError> {
    let Some(section) = document.get(SECTION) else { return Ok(Vec::new()) };
    let settings: Vec<PortSettings> =
        serde_json::from_value(section.clone()).map_err(|e| IoError::Invalid(format!("{SECTION}: {e}")))?;
    let mut seen = vec![false; ports];
    for s in &settings {
        match seen.get_mut(s.port) {
            Some(true) => return Err(IoError::Invalid(format!("{SECTION}: port {} appears twice", s.port))),
            Some(seen) => *seen = true,
            None => return Err(IoError::Invalid(format!("{SECTION}: the profile has no port {}", s.port))),
        }
        check_text(&s.name)?;
        check_text(&s.usage)?;
        open_or_closed(&s.normal_state)?;
    }
    Ok(settings)
}

fn check_text(text: &str) -> Result<(), IoError> {
    if text.chars().count() > MAX_PORT_TEXT {
        return Err(IoError::Invalid(format!("port names and usage texts are at most {MAX_PORT_TEXT} characters")));
    }
    Ok(())
}

/// Changes one port accepts (portmanagement `setPorts`).
#[derive(Debug, Clone, Default)]
pub struct PortChange {
    /// New name.
    pub name: Option<String>,
    /// New usage.
    pub usage: Option<String>,
    /// New normal state: `open` or `closed`.
    pub normal_state: Option<String>,
    /// New state (outputs only): `open` or `closed`.
    pub state: Option<String>,
}

#[derive(Debug)]
struct IoState {
    ports: Vec<Port>,
    virtual_inputs: [bool; VIRTUAL_INPUTS],
}

/// The I/O of one device.
#[derive(Debug)]
pub struct IoPorts {
    /// Held only to read or change states and publish (no I/O).
    state: Mutex<IoState>,
    bus: Arc<EventBus>,
    /// The profile's ports, for a reset.
    specs: Vec<PortSpec>,
    /// Where the port settings persist (`--state`), if anywhere.
    file: OnceLock<Arc<StateFile>>,
}

fn open_or_closed(value: &str) -> Result<&'static str, IoError> {
    match value {
        "open" => Ok("open"),
        "closed" => Ok("closed"),
        other => Err(IoError::Invalid(format!("{other:?} is not open or closed"))),
    }
}

impl IoPorts {
    /// The ports of `specs`, all inactive; publishes their initial states.
    pub fn new(specs: &[PortSpec], bus: Arc<EventBus>) -> Self {
        let ports: Vec<Port> = specs
            .iter()
            .enumerate()
            .map(|(index, s)| Port {
                index,
                name: s.name.clone(),
                usage: String::new(),
                direction: s.direction,
                normal_state: "open",
                active: false,
            })
            .collect();
        for p in &ports {
            bus.publish(port_event(p.index, false));
        }
        Self {
            state: Mutex::new(IoState { ports, virtual_inputs: [false; VIRTUAL_INPUTS] }),
            bus,
            specs: specs.to_vec(),
            file: OnceLock::new(),
        }
    }

    /// Keeps the port settings in `file` from now on, restoring what its `IOPorts` section
    /// holds (refused when it breaks a rule); ports it does not list keep the profile's.
    pub fn keep_in(&self, file: Arc<StateFile>) -> Result<(), StateError> {
        let settings = read_port_settings(&file.document(), self.specs.len()).map_err(|e| file.refused(e))?;
        let mut state = self.lock();
        for s in settings {
            let Some(port) = state.ports.get_mut(s.port) else { continue }; // checked above
            port.name = s.name;
            port.usage = s.usage;
            port.normal_state = open_or_closed(&s.normal_state).map_err(|e| file.refused(e))?;
        }
        drop(state);
        let _ = self.file.set(file);
        Ok(())
    }

    /// Writes the port settings `ports` to the state file, if there is one.
    fn persist(&self, ports: &[Port]) -> Result<(), IoError> {
        match self.file.get() {
            Some(file) => save(file, ports),
            None => Ok(()),
        }
    }

    /// Back to the profile's state: every port inactive with its profile name and no usage,
    /// every virtual input inactive; a change is published as it happens.
    pub fn reset(&self) {
        let mut state = self.lock();
        for (port, spec) in state.ports.iter_mut().zip(&self.specs) {
            port.name.clone_from(&spec.name);
            port.usage.clear();
            port.normal_state = "open";
            if port.active {
                port.active = false;
                self.bus.publish(port_event(port.index, false));
            }
        }
        if let Err(e) = self.persist(&state.ports) {
            tracing::error!(error = %e, "the port settings could not be reset in the state file");
        }
        for (i, input) in state.virtual_inputs.iter_mut().enumerate() {
            if *input {
                *input = false;
                let port = (i + 1).to_string();
                self.bus.publish(Event::new(topics::VIRTUAL_INPUT, true, &[("port", &port)], &[("active", "0")]));
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, IoState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every port.
    pub fn ports(&self) -> Vec<Port> {
        self.lock().ports.clone()
    }

    /// One port by index.
    pub fn port(&self, index: usize) -> Option<Port> {
        self.lock().ports.get(index).cloned()
    }

    /// Sets a port active or inactive; `outputs_only` refuses inputs (API requests may only
    /// drive outputs; the control API simulates inputs). Returns whether the state changed.
    pub fn set_active(&self, index: usize, active: bool, outputs_only: bool) -> Result<bool, IoError> {
        let mut state = self.lock();
        let port = state.ports.get_mut(index).ok_or_else(|| IoError::NoSuchPort(index.to_string()))?;
        if outputs_only && port.direction == PortDirection::Input {
            return Err(IoError::NotAnOutput(index));
        }
        let changed = port.active != active;
        if changed {
            port.active = active;
            self.bus.publish(port_event(index, active));
        }
        Ok(changed)
    }

    /// Applies `setPorts` changes, all or nothing.
    pub fn change(&self, changes: &[(usize, PortChange)]) -> Result<(), IoError> {
        let mut state = self.lock();
        let mut next = state.ports.clone();
        let mut events = Vec::new();
        for (index, c) in changes {
            let port = next.get_mut(*index).ok_or_else(|| IoError::NoSuchPort(index.to_string()))?;
            if let Some(name) = &c.name {
                check_text(name)?;
                port.name = name.clone();
            }
            if let Some(usage) = &c.usage {
                check_text(usage)?;
                port.usage = usage.clone();
            }
            if let Some(normal) = &c.normal_state {
                port.normal_state = open_or_closed(normal)?;
            }
            if let Some(s) = &c.state {
                if port.direction == PortDirection::Input {
                    return Err(IoError::NotAnOutput(*index));
                }
                let active = open_or_closed(s)? != port.normal_state;
                if active != port.active {
                    port.active = active;
                    events.push(port_event(*index, active));
                }
            }
        }
        let settings_changed = next
            .iter()
            .zip(&state.ports)
            .any(|(n, p)| (&n.name, &n.usage, n.normal_state) != (&p.name, &p.usage, p.normal_state));
        if settings_changed {
            self.persist(&next)?;
        }
        state.ports = next;
        events.into_iter().for_each(|e| self.bus.publish(e));
        Ok(())
    }

    /// Sets virtual input `n` (1..=32); returns whether its state changed.
    pub fn set_virtual(&self, n: usize, active: bool) -> Result<bool, IoError> {
        if !(1..=VIRTUAL_INPUTS).contains(&n) {
            return Err(IoError::NoSuchPort(format!("virtual input {n}")));
        }
        let mut state = self.lock();
        let changed = state.virtual_inputs[n - 1] != active;
        if changed {
            state.virtual_inputs[n - 1] = active;
            let (port, value) = (n.to_string(), if active { "1" } else { "0" });
            self.bus.publish(Event::new(topics::VIRTUAL_INPUT, true, &[("port", &port)], &[("active", value)]));
        }
        Ok(changed)
    }
}

/// Writes the settings of `ports` as the `IOPorts` section of `file`.
fn save(file: &StateFile, ports: &[Port]) -> Result<(), IoError> {
    let settings: Vec<PortSettings> = ports
        .iter()
        .map(|p| PortSettings {
            port: p.index,
            name: p.name.clone(),
            usage: p.usage.clone(),
            normal_state: p.normal_state.to_owned(),
        })
        .collect();
    let section = serde_json::to_value(settings).unwrap_or(Value::Null);
    file.save(serde_json::Map::from_iter([(SECTION.to_owned(), section)])).map_err(|e| IoError::Storage(e.to_string()))
}

fn port_event(index: usize, active: bool) -> Event {
    let port = index.to_string();
    Event::new(topics::IO_PORT, true, &[("port", &port)], &[("state", if active { "1" } else { "0" })])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io() -> (IoPorts, Arc<EventBus>) {
        let bus = Arc::new(EventBus::new());
        let specs = vec![
            PortSpec { name: "Call button".into(), direction: PortDirection::Input },
            PortSpec { name: "Door lock".into(), direction: PortDirection::Output },
        ];
        (IoPorts::new(&specs, bus.clone()), bus)
    }

    #[test]
    fn outputs_change_and_publish_inputs_are_refused_through_the_api() {
        let (io, bus) = io();
        assert_eq!(bus.subscribe().current.len(), 2, "initial port states");
        assert_eq!(io.set_active(1, true, true), Ok(true));
        assert_eq!(io.set_active(1, true, true), Ok(false), "no change, no event");
        assert_eq!(io.port(1).map(|p| p.state()), Some("closed"));
        assert_eq!(io.set_active(0, true, true), Err(IoError::NotAnOutput(0)));
        assert_eq!(io.set_active(0, true, false), Ok(true));
        assert!(io.set_active(9, true, false).is_err());
        let states: Vec<String> = bus.log(Some(topics::IO_PORT), 0).iter().map(|e| e.data["state"].clone()).collect();
        assert_eq!(states, ["0", "0", "1", "1"]);
    }

    #[test]
    fn set_ports_is_all_or_nothing() {
        let (io, _) = io();
        let rename = PortChange { name: Some("Lock".into()), ..Default::default() };
        let bad = PortChange { state: Some("ajar".into()), ..Default::default() };
        assert!(io.change(&[(1, rename.clone()), (1, bad)]).is_err());
        assert_eq!(io.port(1).map(|p| p.name), Some("Door lock".into()));
        io.change(&[(1, rename), (1, PortChange { state: Some("closed".into()), ..Default::default() })])
            .expect("valid");
        assert_eq!(io.port(1).map(|p| (p.name, p.active)), Some(("Lock".into(), true)));
    }

    #[test]
    fn virtual_inputs() {
        let (io, bus) = io();
        assert_eq!(io.set_virtual(1, true), Ok(true));
        assert_eq!(io.set_virtual(1, true), Ok(false));
        assert!(io.set_virtual(0, true).is_err() && io.set_virtual(33, true).is_err());
        assert_eq!(bus.log(Some(topics::VIRTUAL_INPUT), 0).len(), 1);
    }
}
