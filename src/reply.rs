//! Building HTTP responses: the body type every HTTP face answers with, and plain-text and
//! JSON responses. Below both the server (`http`) and the faces it routes to (`vapix`,
//! `control`), so neither imports the other for these.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};
use serde_json::Value;

/// The body of every response.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// A whole response body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed_unsync()
}

pub(crate) fn response(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// A plain-text response with exactly `text` as its body.
pub fn text_response(text: String) -> Response<Body> {
    response(StatusCode::OK, "text/plain; charset=utf-8", text)
}

/// A plain-text response.
pub fn plain(status: StatusCode, body: &str) -> Response<Body> {
    let text = if body.is_empty() { String::new() } else { format!("{body}\n") };
    response(status, "text/plain; charset=utf-8", text)
}

/// A JSON response.
pub fn json_response(status: StatusCode, value: &Value) -> Response<Body> {
    response(status, "application/json", serde_json::to_string(value).unwrap_or_default())
}
