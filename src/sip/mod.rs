//! SIP: the device's user agent.
//!
//! | module | owns |
//! |---|---|
//! | [`message`] | syntax: start line, ordered headers, body, stream framing |
//! | [`headers`] | typed headers: URI, name-addr, Via, CSeq |
//! | [`sdp`] | the audio offer/answer, directions (hold) |
//! | [`transport`] | sockets, framing, the path table (a path names an address, not a socket) |
//! | [`connect`] | resolution, TCP connect and TLS hand-shake in tasks with time limits |
//! | `listeners` | the UDP/TCP/TLS listeners following SIPEnabled and the ports |
//! | [`transaction`] | RFC 3261 transactions and their timers, sans I/O |
//! | `agent` | the task that routes everything to the parts below |
//! | `uas`, `uac` | incoming and outgoing calls (dialogs in `dialog`) |
//! | [`registration`] | REGISTER per account, refresh, reconnect |
//! | `signalling` | the call engine's port into the agent |

pub mod address;
mod agent;
pub mod connect;
mod dialog;
pub mod digest;
pub mod headers;
mod listeners;
pub mod message;
pub mod registration;
mod reliable;
pub mod sdp;
pub mod session_timer;
mod signalling;
pub mod tls;
pub mod transaction;
pub mod transport;
mod uac;
mod uas;

pub use agent::{start, UaConfig};
pub use signalling::SipUa;
