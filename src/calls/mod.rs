//! Calls: the state machine and its timers ([`engine`]), the CallStatus model ([`status`]) and
//! the stream counts that drive VMS calls ([`vms`]). Imports no HTTP face and no SIP.

pub mod engine;
pub mod status;
pub mod vms;

pub use engine::{CallEngine, CallError, EngineConfig, MediaCounters, Signalling, VMS_CALL};
pub use status::{CallState, CallStatus, Reason};
pub use vms::{StreamGuard, StreamKind};
