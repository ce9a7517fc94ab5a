//! SIP: message parsing and framing (sans I/O). The transports, transactions, registration and
//! calls of the user agent build on this.

pub mod address;
pub mod headers;
mod dialog;
pub mod digest;
pub mod message;
pub mod network;
pub mod registration;
pub mod sdp;
pub mod tls;
pub mod transport;
pub mod ua;
