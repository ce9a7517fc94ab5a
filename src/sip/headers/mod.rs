//! Typed SIP headers (RFC 3261 section 20 and the grammar of section 25), sans I/O: each header
//! the user agent builds or reads is parsed into a value and printed back, never edited as text.
//! Every type has `parse` (from the header value) and `Display` (to it), and a parse ∘ print
//! round-trip test at the bottom of its file.
//!
//! - [`Uri`]: `sip:`/`sips:` URIs with user, host, port, parameters and headers; other schemes
//!   (`tel:`, `urn:`) are kept whole.
//! - [`NameAddr`]: From, To, Contact, Route and Record-Route values (display name, URI, tag).
//! - [`Via`]: transport, sent-by, branch, `rport`, `received`.
//! - [`CSeq`]: sequence number and method.

mod cseq;
mod name_addr;
pub(crate) mod params;
mod uri;
mod via;

pub use cseq::CSeq;
pub use name_addr::NameAddr;
pub use params::Params;
pub use uri::{Host, Uri};
pub use via::{Via, MAGIC_COOKIE};

use thiserror::Error;

/// Why a header value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("malformed {header}: {why}")]
pub struct HeaderError {
    /// The header (or part) that was being read.
    pub header: &'static str,
    /// What was wrong.
    pub why: &'static str,
}

pub(crate) fn malformed(header: &'static str, why: &'static str) -> HeaderError {
    HeaderError { header, why }
}
