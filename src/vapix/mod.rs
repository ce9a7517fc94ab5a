//! The VAPIX faces of the device: the Call service and its two formats, the event WebSocket
//! and the media endpoints that VMS calls count.

pub mod call_service;
pub mod event_stream;
pub mod fault;
pub mod format;
pub mod media;
