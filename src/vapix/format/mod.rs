//! The two request/response formats of `/vapix/call`, both over `serde_json::Value`:
//! JSON (`POST {"axcall:<Command>": {...}}`) and the simplified key-value format
//! (`GET ?format=simple&action=axcall:<Command>&Key_Sub=value`).

pub mod json;
pub mod simple;

use serde_json::Value;

use super::fault::Fault;

/// Prefix of every Call service action.
pub const ACTION_PREFIX: &str = "axcall:";

/// Which format a request arrived in; the response and any fault use the same one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON body in, JSON body out.
    Json,
    /// Query string in, `Key=Value` lines out.
    Simple,
}

/// A decoded request: the action with its prefix, and its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// `axcall:<Command>` as sent.
    pub action: String,
    /// The parameter object (simple-format values are all text or `null`).
    pub params: Value,
}

impl Format {
    /// The format a request to `/vapix/call` uses: simple when the query says `format=simple`.
    pub fn of_query(query: Option<&str>) -> Self {
        let simple =
            query.is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "format" && v == "simple"));
        if simple {
            Format::Simple
        } else {
            Format::Json
        }
    }

    /// Decodes a request in this format from the query string or the body.
    pub fn decode(self, query: Option<&str>, body: &[u8]) -> Result<Request, Fault> {
        match self {
            Format::Json => json::decode(body),
            Format::Simple => simple::decode(query.unwrap_or_default()),
        }
    }

    /// Encodes a response value.
    pub fn encode(self, value: &Value) -> String {
        match self {
            Format::Json => json::encode(value),
            Format::Simple => simple::encode(value),
        }
    }

    /// The response Content-Type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Simple => "text/plain; charset=utf-8",
        }
    }
}
