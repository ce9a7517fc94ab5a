//! The envelope of Axis' JSON CGIs (apidiscovery, basicdeviceinfo, portmanagement):
//! `{"apiVersion", "context", "method", "params"}` in, `{"apiVersion", "context", "method",
//! "data"}` or `{..., "error": {"code", "message"}}` out, always with HTTP 200 as devices do.

use hyper::StatusCode;
use serde_json::{json, Map, Value};

use crate::reply::{json_response, Body};

/// A JSON CGI error: the VAPIX code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// VAPIX error code, e.g. 2002 "method not supported".
    pub code: u16,
    /// What went wrong.
    pub message: String,
}

impl ApiError {
    /// An error with `code`.
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

/// `4002`: the body is not a JSON request.
pub const JSON_INPUT_ERROR: u16 = 4002;
/// `2002`: unknown method.
pub const METHOD_NOT_SUPPORTED: u16 = 2002;
/// `2100`/`4000`-style invalid parameter.
pub const INVALID_PARAMETER: u16 = 2003;
/// `1100`: the device failed (a change that could not be stored).
pub const INTERNAL_ERROR: u16 = 1100;

/// Decodes the request body, runs `handler(method, params)` and wraps its answer.
pub fn answer(
    body: &[u8],
    api_version: &str,
    handler: impl FnOnce(&str, &Map<String, Value>) -> Result<Value, ApiError>,
) -> hyper::Response<Body> {
    let request: Option<Map<String, Value>> = serde_json::from_slice(body).ok();
    let (method, context, result) = match &request {
        None => (String::new(), None, Err(ApiError::new(JSON_INPUT_ERROR, "the body is not a JSON object"))),
        Some(r) => {
            let method = r.get("method").and_then(Value::as_str).unwrap_or_default().to_owned();
            let params = r.get("params").and_then(Value::as_object).cloned().unwrap_or_default();
            let result = if method.is_empty() {
                Err(ApiError::new(JSON_INPUT_ERROR, "missing method"))
            } else {
                handler(&method, &params)
            };
            (method, r.get("context").cloned(), result)
        }
    };
    let mut out = json!({ "apiVersion": api_version, "method": method });
    if let Some(c) = context {
        out["context"] = c;
    }
    match result {
        Ok(data) => out["data"] = data,
        Err(e) => out["error"] = json!({ "code": e.code, "message": e.message }),
    }
    json_response(StatusCode::OK, &out)
}
