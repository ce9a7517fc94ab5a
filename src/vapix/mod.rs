//! The VAPIX faces of the device: the Call service and its two formats, the event WebSocket,
//! the media endpoints that VMS calls count, and the CGIs clients read the device with.

pub mod call_service;
pub mod device_info;
pub mod event_instances;
pub mod event_stream;
pub mod fault;
pub mod format;
pub mod io_cgi;
pub mod json_api;
pub mod media;
