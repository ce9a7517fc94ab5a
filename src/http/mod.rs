//! The HTTP server: routing, authentication and body limits in front of the HTTP faces
//! (`vapix`, `control`).

pub mod auth;
pub mod server;

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;

use crate::control::Control;
use crate::vapix::call_service::{CallService, RequestContext};
use crate::vapix::fault::Fault;
use crate::vapix::format::Format;
use auth::{Authenticator, Refusal};

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// Everything the HTTP server routes to.
#[derive(Debug)]
pub struct App {
    /// Checks credentials.
    pub auth: Authenticator,
    /// `/vapix/call`.
    pub call_service: CallService,
    /// `/emulator/v1/...`.
    pub control: Control,
}

type HttpResponse = Response<Full<Bytes>>;

fn response(status: StatusCode, content_type: &'static str, body: String) -> HttpResponse {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn plain(status: StatusCode, body: &str) -> HttpResponse {
    response(status, "text/plain; charset=utf-8", format!("{body}\n"))
}

fn json_response(status: StatusCode, value: &Value) -> HttpResponse {
    response(status, "application/json", Format::Json.encode(value))
}

impl App {
    /// Answers one request. `local` is the address the connection arrived on.
    pub async fn handle(&self, req: Request<Incoming>, local: SocketAddr) -> HttpResponse {
        let path = req.uri().path().to_owned();
        let is_vapix_call = path == "/vapix/call";
        if !is_vapix_call && !path.starts_with("/emulator/v1/") {
            return plain(StatusCode::NOT_FOUND, "404 Not Found");
        }
        let uri = req.uri().path_and_query().map_or(path.clone(), |pq| pq.as_str().to_owned());
        if let Err(refusal) = self.auth.check(req.method().as_str(), &uri, req.headers().get(AUTHORIZATION)) {
            return self.unauthorized(refusal);
        }
        let method = req.method().clone();
        let query = req.uri().query().map(str::to_owned);
        let format = Format::of_query(query.as_deref());
        let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(e) => {
                let fault = Fault::invalid_args(format!("request body rejected: {e} (limit {MAX_BODY} bytes)"));
                return fault_response(format, StatusCode::PAYLOAD_TOO_LARGE, &fault);
            }
        };
        if is_vapix_call {
            self.vapix_call(&method, format, query.as_deref(), &body, local)
        } else {
            match self.control.handle(&method, &path) {
                Some(Ok(value)) => json_response(StatusCode::OK, &value),
                Some(Err(status)) => plain(status, status.canonical_reason().unwrap_or("error")),
                None => plain(StatusCode::NOT_FOUND, "404 Not Found"),
            }
        }
    }

    fn unauthorized(&self, refusal: Refusal) -> HttpResponse {
        let mut r = plain(StatusCode::UNAUTHORIZED, "401 Unauthorized");
        for challenge in self.auth.challenges(refusal == Refusal::Stale) {
            r.headers_mut().append(WWW_AUTHENTICATE, challenge);
        }
        r
    }

    fn vapix_call(
        &self,
        method: &Method,
        format: Format,
        query: Option<&str>,
        body: &[u8],
        local: SocketAddr,
    ) -> HttpResponse {
        let request = match (method, format) {
            (&Method::GET, Format::Simple) | (&Method::POST, _) => format.decode(query, body),
            (&Method::GET, Format::Json) => {
                Err(Fault::invalid_args("use POST with a JSON body, or GET with format=simple&action=axcall:<Command>"))
            }
            _ => return plain(StatusCode::METHOD_NOT_ALLOWED, "405 Method Not Allowed"),
        };
        let ctx = RequestContext { device_host: host_of(local) };
        let result = request.and_then(|r| {
            tracing::debug!(action = %r.action, "call service request");
            self.call_service.handle(&r.action, &r.params, format == Format::Simple, &ctx)
        });
        match result {
            Ok(value) => response(StatusCode::OK, format.content_type(), format.encode(&value)),
            Err(fault) => {
                tracing::info!(code = fault.code, msg = ?fault.msg, "call service fault");
                fault_response(format, StatusCode::BAD_REQUEST, &fault)
            }
        }
    }
}

fn fault_response(format: Format, status: StatusCode, fault: &Fault) -> HttpResponse {
    response(status, format.content_type(), format.encode(&fault.to_value()))
}

/// The device's address as a URI host: IPv6 in brackets.
fn host_of(addr: SocketAddr) -> String {
    match addr {
        SocketAddr::V4(a) => a.ip().to_string(),
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => format!("[{}]", a.ip()),
        },
    }
}
