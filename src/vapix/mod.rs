//! The VAPIX faces of the device: the Call service and its two formats.

pub mod call_service;
pub mod fault;
pub mod format;
